import DanubeMetricsEmitter
import DanubeMetricsTestKit
import DanubeMetricsWire
import Foundation
import Testing

/// Exemplars from the Swift API to an OpenMetrics scrape, and into Prometheus' exemplar storage.
@Suite(.serialized) struct ExemplarTests {
    static let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"

    @Test func theLatestExemplarPerBucketAndCounterIsShownInOpenMetricsOnly() async throws {
        let agent = try await TestAgent()
        let emitter = agent.emitter()
        let latency = try emitter.histogram("ex_latency_ms", buckets: [1, 10], labels: [("op", "put")])
        let sent = try emitter.counter("ex_sent_total")
        latency.observe(0.5, exemplar: try Exemplar(traceID: "0af7651916cd43dd8448eb211c80319c", spanID: "b7ad6b7169203331"))
        latency.observe(0.7, exemplar: try Exemplar(traceID: Self.traceID, spanID: "00f067aa0ba902b7")) // replaces the first
        latency.observe(50)
        sent.increment(by: 3, exemplar: try Exemplar(traceID: Self.traceID))
        #expect(emitter.waitUntilDelivered())
        #expect(try await eventuallyAsync { try agent.scrape(accept: "application/openmetrics-text; version=1.0.0").text.contains("ex_sent_total 3 # {") })
        let text = try agent.scrape(accept: "application/openmetrics-text; version=1.0.0").text
        let bucket = text.split(separator: "\n").first { $0.hasPrefix("ex_latency_ms_bucket{op=\"put\",le=\"1.0\"}") } ?? ""
        #expect(bucket.hasPrefix("ex_latency_ms_bucket{op=\"put\",le=\"1.0\"} 2 # {trace_id=\"\(Self.traceID)\",span_id=\"00f067aa0ba902b7\"} 0.7 1"), "\(bucket)")
        #expect(text.contains("ex_latency_ms_bucket{op=\"put\",le=\"+Inf\"} 3\n"), "no exemplar where none was recorded")
        #expect(text.contains("ex_sent_total 3 # {trace_id=\"\(Self.traceID)\"} 3"), "\(text.split(separator: "\n").filter { $0.hasPrefix("ex_sent") })")
        #expect(try !agent.scrape().text.contains("# {"), "the Prometheus text format has no exemplars")
        emitter.shutdown()
        await agent.stop()
    }

    @Test func labelsBeyondOpenMetricsLimitsAreRefusedWhenMade() {
        #expect { try Exemplar(traceID: String(repeating: "a", count: 130)) } throws: { ($0 as? EmitterError)?.code == .invalidExemplar }
        #expect { try Exemplar(labels: [("bad-name", "x")]) } throws: { ($0 as? EmitterError)?.code == .invalidExemplar }
        #expect(throws: Never.self) { try Exemplar(traceID: Self.traceID, spanID: "00f067aa0ba902b7") }
    }

    @Test func anExemplarFrameOnAVersion1ConnectionIsRefused() throws {
        let frame = FrameEncoder.encode(.exemplars([ExemplarUpdate(seriesID: 0, bucket: 0, value: 1, timestampMillis: 1, labels: [Label("trace_id", "x")])]))
        #expect(try FrameDecoder().decode(frame) == .exemplars([ExemplarUpdate(seriesID: 0, bucket: 0, value: 1, timestampMillis: 1, labels: [Label("trace_id", "x")])]))
        let tooLong = FrameEncoder.encode(.exemplars([ExemplarUpdate(seriesID: 0, bucket: 0, value: 1, timestampMillis: 1,
                                                                     labels: [Label("trace_id", String(repeating: "a", count: 130))])]))
        #expect(throws: WireError.self) { try FrameDecoder().decode(tooLong) }
    }

    /// Prometheus 2.42 with `--enable-feature=exemplar-storage` scrapes the agent (OpenMetrics) and returns the
    /// trace id from /api/v1/query_exemplars.
    @Test func prometheusStoresTheExemplars() async throws {
        let agent = try await TestAgent()
        let emitter = agent.emitter()
        let latency = try emitter.histogram("ex_publish_latency_ms", buckets: [1, 10, 100], labels: [("topic", "/default/orders")])
        for value in [0.4, 5, 50] { latency.observe(value) }
        latency.observe(42, exemplar: try Exemplar(traceID: Self.traceID, spanID: "00f067aa0ba902b7"))
        #expect(emitter.waitUntilDelivered())
        let prometheus = try PrometheusServer(agentPort: agent.port, ruleFiles: [], flags: ["--enable-feature=exemplar-storage"])
        defer { prometheus.stop() }
        var found: [[String: Any]] = []
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let now = Date().timeIntervalSince1970
            found = (try? prometheus.exemplars("ex_publish_latency_ms_bucket", start: now - 300, end: now + 60)) ?? []
            if !found.isEmpty { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let exemplars = found.flatMap { ($0["exemplars"] as? [[String: Any]]) ?? [] }
        let labels = exemplars.compactMap { $0["labels"] as? [String: String] }
        #expect(labels.contains { $0["trace_id"] == Self.traceID && $0["span_id"] == "00f067aa0ba902b7" }, "\(found) \(prometheus.log)")
        #expect(exemplars.contains { ($0["value"] as? String) == "42" })
        emitter.shutdown()
        await agent.stop()
    }

    /// The load generator traces one message in a thousand: the same trace id on its publish, WAL append and
    /// dispatch latencies, so a slow bucket of any of them leads to the same trace.
    @Test func theLoadGeneratorTracesAMessageAcrossItsPath() async throws {
        let agent = try await TestAgent()
        let loadgen = try ChildProcess(Executables.loadgen.path, [
            "--socket", agent.socketPath, "--messages", "20000", "--rate", "0", "--threads", "1", "--flush-interval-ms", "20",
        ], output: Scratch.path("loadgen-traces", suffix: ".log"))
        #expect(ChildProcess.exitedCleanly(loadgen.wait(timeout: .seconds(60))))
        let text = try agent.scrape(accept: "application/openmetrics-text; version=1.0.0").text
        var families: [String: Set<String>] = [:] // trace id -> families showing it
        for line in text.split(separator: "\n") {
            guard let marker = line.range(of: "# {trace_id=\""), let end = line[marker.upperBound...].firstIndex(of: "\"") else { continue }
            let family = String(line[..<(line.range(of: "_bucket{")?.lowerBound ?? line.startIndex)])
            families[String(line[marker.upperBound..<end]), default: []].insert(family)
        }
        let path: Set = ["danube_producer_send_latency_ms", "danube_wal_append_latency_ms", "danube_topic_dispatch_latency_ms"]
        #expect(families.values.contains { path.isSubset(of: $0) }, "\(families.values.map { $0.sorted() }.prefix(5))")
        await agent.stop()
    }
}
