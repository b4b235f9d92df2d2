import DanubeMetricsAgent
import DanubeMetricsEmitter
import DanubeMetricsTestKit
import Foundation
import Testing

/// The protobuf exposition, read by a real Prometheus 2.42 with `--enable-feature=native-histograms` (which asks
/// for protobuf first): every series it stores equals the text exposition, exemplars included.
@Suite(.serialized) struct ProtobufExpositionTests {
    static let protobuf = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"

    @Test func negotiationPrefersTheHighestQuality() {
        #expect(ContentNegotiation.scrapeFormat(forAccept: "\(Self.protobuf);q=0.8,application/openmetrics-text;version=1.0.0;q=0.7") == .protobuf)
        #expect(ContentNegotiation.scrapeFormat(forAccept: "\(Self.protobuf);q=0.5,application/openmetrics-text;version=1.0.0;q=0.7") == .text(.openMetrics))
        #expect(ContentNegotiation.scrapeFormat(forAccept: "application/vnd.google.protobuf;proto=other;encoding=delimited") == .text(.prometheusText))
        #expect(ContentNegotiation.scrapeFormat(forAccept: "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text") == .text(.prometheusText))
        #expect(ContentNegotiation.format(forAccept: Self.protobuf) == .prometheusText, "the text-only API never answers protobuf")
    }

    @Test func prometheusReadsTheSameSeriesThroughProtobuf() async throws {
        let agent = try await TestAgent()
        let emitter = agent.emitter()
        try emitter.counter("pb_sent_total", labels: [("topic", "/a \"q\"\\n")], help: "Sent.\nTwo lines.").increment(by: 41)
        try emitter.gauge("pb_depth", labels: [("queue", "q1")]).set(-2.5)
        let latency = try emitter.histogram("pb_latency_ms", buckets: [1, 10], labels: [("op", "put")])
        for value in [0.5, 3, 50] { latency.observe(value) }
        latency.observe(4, exemplar: try Exemplar(traceID: "4bf92f3577b34da6a3ce929d0e0e4736"))
        #expect(emitter.waitUntilDelivered())
        let response = try agent.scrape(accept: Self.protobuf)
        #expect(response.headers["content-type"]?.hasPrefix("application/vnd.google.protobuf") == true, "\(response.headers)")

        let prometheus = try PrometheusServer(agentPort: agent.port, ruleFiles: [], flags: ["--enable-feature=native-histograms,exemplar-storage"])
        defer { prometheus.stop() }
        let shown = try agent.samples()
        let keys = shown.values.keys.filter { $0.hasPrefix("pb_") }
        let expectedSeries = 7 // counter, gauge, and the histogram's buckets le 1, 10, +Inf, sum and count
        #expect(keys.count == expectedSeries)
        var stored: [String: Double] = [:]
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, stored.count < keys.count {
            for key in keys where stored[key] == nil {
                if let first = try? prometheus.query(key).first, let value = first["value"] as? [Any], let text = value.last as? String {
                    stored[key] = Double(text)
                }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        for key in keys { #expect(stored[key] == shown[key], "\(key): Prometheus \(String(describing: stored[key])), /metrics \(String(describing: shown[key])) \(prometheus.log)") }
        let applied = try prometheus.query("danube_agent_deltas_applied_total").first
        #expect(applied != nil, "the agent's own counters arrive too")
        let now = Date().timeIntervalSince1970
        let exemplars = (try? prometheus.exemplars("pb_latency_ms_bucket", start: now - 300, end: now + 60)) ?? []
        let labels = exemplars.flatMap { ($0["exemplars"] as? [[String: Any]]) ?? [] }.compactMap { $0["labels"] as? [String: String] }
        #expect(labels.contains { $0["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" }, "\(exemplars)")
        emitter.shutdown()
        await agent.stop()
    }
}
