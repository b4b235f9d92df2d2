@testable import DanubeMetricsAgent
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

/// The protobuf bytes against Prometheus' own schema: `Tests/prometheus/metrics.proto` (client_model's, unchanged)
/// compiled by protoc and parsed by Python's protobuf package, beside the real Prometheus above.
@Suite struct ProtobufSchemaTests {
    /// The families `decode_exposition.py` prints: protobuf's JSON mapping, plus whether the schema's own
    /// serializer writes the same bytes.
    static func decoded(_ stream: [UInt8]) throws -> [[String: Any]] {
        let input = Scratch.path("exposition", suffix: ".pb")
        let output = Scratch.path("exposition", suffix: ".json")
        defer { try? FileManager.default.removeItem(atPath: input); try? FileManager.default.removeItem(atPath: output) }
        try Data(stream).write(to: URL(fileURLWithPath: input))
        let script = TraceExportTests.repository + "/Tests/prometheus/decode_exposition.py"
        let process = try ChildProcess("/bin/sh", ["-c", "'\(try PythonTools.python())' '\(script)' < '\(input)'"], output: output)
        let status = process.wait(timeout: .seconds(120))
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        guard ChildProcess.exitedCleanly(status), let families = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]] else {
            throw HTTPClient.Failure(description: "decode_exposition.py failed: \(text)")
        }
        return families
    }

    /// Every family of the golden store parses with the real schema into the values the store holds, and is
    /// written exactly as the schema's serializer writes it (field numbers, types, order, nothing unknown).
    @Test func theGoldenStoreDecodesWithPrometheusSchema() throws {
        let stream = Array(ProtobufExposition.encode(MetricsSnapshot(store: ExpositionGoldenTests.goldenStore(), exemplars: true)).joined())
        let families = try Self.decoded(stream)
        let byName = Dictionary(uniqueKeysWithValues: families.compactMap { family in (family["name"] as? String).map { ($0, family) } })
        #expect(families.allSatisfy { $0["canonical"] as? Bool == true }, "\(families.filter { $0["canonical"] as? Bool != true })")
        #expect(families.count == 10)
        func metrics(_ name: String) -> [[String: Any]] { byName[name]?["metric"] as? [[String: Any]] ?? [] }
        #expect(byName["bytes_moved_total"]?["type"] as? String == "COUNTER")
        #expect((metrics("bytes_moved_total").first?["counter"] as? [String: Any])?["value"] as? Double == 123_456_789_012)
        let files = metrics("files_total")
        #expect(byName["files_total"]?["help"] as? String == "Files \"seen\"\nso far \\ all.")
        let tricky = files.last?["label"] as? [[String: String]]
        #expect(tricky == [["name": "a", "value": "plain"], ["name": "path", "value": "C:\\dir \"quoted\"\nnext"]])
        let exemplar = (files.last?["counter"] as? [String: Any])?["exemplar"] as? [String: Any]
        #expect(exemplar?["timestamp"] as? String == "2023-11-14T22:13:20.123Z", "\(String(describing: exemplar))")
        #expect(byName["depth"]?["type"] as? String == "GAUGE" && (metrics("depth").first?["gauge"] as? [String: Any])?["value"] as? Double == -2.5)
        #expect(metrics("danube_consumer_lag_messages").count == 1, "the derived gauge")
        let latency = metrics("latency_ms")
        let put = try #require(latency.first { ($0["label"] as? [[String: String]])?.first?["value"] == "put" }?["histogram"] as? [String: Any])
        let get = try #require(latency.first { ($0["label"] as? [[String: String]])?.first?["value"] == "get" }?["histogram"] as? [String: Any])
        #expect(put["sampleCount"] as? String == "17" && put["sampleSum"] as? Double == 123.5)
        #expect(put["schema"] as? Int == 3 && put["zeroThreshold"] as? Double == 0x1p-5)
        let spans = (put["positiveSpan"] as? [[String: Any]] ?? []).map { [$0["offset"] as? Int ?? 0, $0["length"] as? Int ?? 0] }
        #expect(spans == [[-10, 1], [33, 2], [25, 1]], "\(put)")
        #expect(put["positiveDelta"] as? [String] == ["5", "1", "-1", "-4"], "\(put)")
        #expect(get["schema"] == nil, "classic only: the native buckets do not hold every observation")
        let buckets = (get["bucket"] as? [[String: Any]] ?? []).map { $0["upperBound"] as? Double ?? ($0["upperBound"] as? String == "Infinity" ? .infinity : .nan) }
        #expect(buckets == [0.5, 10, 100, .infinity])
    }

    /// A whole `/metrics` of a running agent (its own families included) parses the same way.
    @Test func aRunningAgentsScrapeDecodesWithPrometheusSchema() async throws {
        let agent = try await TestAgent()
        let emitter = agent.emitter()
        try emitter.counter("schema_sent_total", labels: [("topic", "a")]).increment(by: 3)
        #expect(emitter.waitUntilDelivered())
        let families = try Self.decoded(try agent.scrape(accept: ProtobufExpositionTests.protobuf).body)
        #expect(families.allSatisfy { $0["canonical"] as? Bool == true })
        let names = Set(families.compactMap { $0["name"] as? String })
        #expect(names.isSuperset(of: ["schema_sent_total", "danube_agent_scrape_duration_seconds", "process_cpu_seconds_total"]), "\(names)")
        emitter.shutdown()
        await agent.stop()
    }
}
