/// Everything `/metrics` shows, in the format a scrape asked for: one snapshot (`MetricsSnapshot`) of the
/// sources' families, then the agent's own (its statistics, source liveness, process, remote write, refused
/// series), and the format's encoder. Times every render for `danube_agent_scrape_duration_seconds`.
struct MetricsRenderer: Sendable {
    let store: AggregationStore
    let stats: AgentStats
    let liveness: SourceLiveness
    let gate: SeriesGate
    let remoteWriter: RemoteWriter?
    let spanExporter: SpanExporter?
    let webSecurity: WebSecurity?

    /// The exposition as the chunks a response is built from (not joined).
    func render(_ format: ScrapeFormat) -> [[UInt8]] {
        let started = ContinuousClock.now
        let output = switch format {
        case .text(let text): TextExposition.encode(snapshot(exemplars: text == .openMetrics), format: text)
        case .protobuf: ProtobufExposition.encode(snapshot(exemplars: true))
        }
        stats.scraped(seconds: (ContinuousClock.now - started).seconds)
        return output
    }

    /// What `/metrics` shows, taken now; exemplars only when asked (the 0.0.4 text and remote write have none).
    func snapshot(exemplars: Bool, agentSeries: Bool = true) -> MetricsSnapshot {
        // Read before taking the store: memory figures must not count this scrape's own output.
        let process = agentSeries ? ProcessMetrics.current() : nil
        var snapshot = MetricsSnapshot(store: store, exemplars: exemplars)
        guard agentSeries else { return snapshot }
        stats.collect(into: &snapshot, store: store)
        liveness.collect(into: &snapshot)
        process?.collect(into: &snapshot)
        remoteWriter?.collect(into: &snapshot)
        spanExporter?.collect(into: &snapshot)
        webSecurity?.collect(into: &snapshot)
        gate.collect(into: &snapshot)
        return snapshot
    }
}
