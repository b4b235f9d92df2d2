/// Everything `/metrics` shows, in the format a scrape asked for: the sources' families, then the agent's own
/// (its statistics, source liveness, process, remote write, refused series). Times every render for
/// `danube_agent_scrape_duration_seconds`.
struct MetricsRenderer: Sendable {
    let store: AggregationStore
    let stats: AgentStats
    let liveness: SourceLiveness
    let gate: SeriesGate
    let remoteWriter: RemoteWriter?
    let spanExporter: SpanExporter?
    let webSecurity: WebSecurity?

    /// The exposition as the chunks a response is built from (text is not joined; protobuf is one chunk).
    func render(_ format: ScrapeFormat) -> [[UInt8]] {
        switch format {
        case .text(let text): return writer(format: text).output
        case .protobuf: return [ProtobufExposition.encode(openMetrics: writer(format: .openMetrics, nativeHistograms: true).bytes)]
        }
    }

    func writer(format: ExpositionFormat, nativeHistograms: Bool = false) -> ExpositionWriter {
        let started = ContinuousClock.now
        // Read before rendering: memory figures must not count this scrape's own output (200 B per series).
        let process = ProcessMetrics.current()
        var writer = ExpositionWriter(format: format, capacity: 1 << 20)
        writer.nativeHistograms = nativeHistograms
        store.render(into: &writer)
        renderAgentSeries(into: &writer, process: process)
        writer.finish()
        stats.scraped(seconds: (ContinuousClock.now - started).seconds)
        return writer
    }

    /// The agent's own series alone, in the 0.0.4 text format (what remote write pushes of them).
    func agentSeriesText() -> [UInt8] {
        var writer = ExpositionWriter(format: .prometheusText, capacity: 64 << 10)
        renderAgentSeries(into: &writer, process: ProcessMetrics.current())
        writer.finish()
        return writer.bytes
    }

    private func renderAgentSeries(into writer: inout ExpositionWriter, process: ProcessMetrics?) {
        stats.render(into: &writer, store: store)
        liveness.render(into: &writer)
        process?.render(into: &writer)
        remoteWriter?.render(into: &writer)
        spanExporter?.render(into: &writer)
        webSecurity?.render(into: &writer)
        gate.render(into: &writer)
    }
}
