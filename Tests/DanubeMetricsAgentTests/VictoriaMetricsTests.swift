@testable import DanubeMetricsAgent
import DanubeMetricsTestKit
import DanubeMetricsWire
import Foundation
import Testing

/// Remote write into Debian's VictoriaMetrics 1.79, a second real receiver beside Prometheus: what it stores equals
/// `/metrics`, the sources' series and the agent's own; the tenant header reaches the receiver (VictoriaMetrics'
/// single node ignores it, so a capture beside it shows it).
@Suite(.serialized) struct VictoriaMetricsTests {
    /// A `victoria-metrics` process on a fresh port and directory.
    final class VictoriaMetrics {
        let port = unusedPort()
        let directory = Scratch.makeDirectory("victoria-metrics")
        private let process: ChildProcess

        init() throws {
            process = try ChildProcess("/usr/bin/victoria-metrics", [
                "-httpListenAddr=127.0.0.1:\(port)", "-storageDataPath=\(directory)/data", "-retentionPeriod=1",
                "-search.latencyOffset=0s", "-search.disableCache", "-loggerLevel=ERROR",
            ], output: "\(directory)/victoria-metrics.log")
            #expect(eventually(timeout: .seconds(30)) { (try? HTTPClient.get(port: port, path: "/health"))?.status == 200 }, "\(log)")
        }

        var url: String { "http://127.0.0.1:\(port)/api/v1/write" }
        var log: String { (try? String(contentsOfFile: "\(directory)/victoria-metrics.log", encoding: .utf8)) ?? "" }

        func stop() { _ = process.stop() }

        /// The latest value of every series an instant query returns, as samples.
        func latest(_ selector: String) throws -> [ShownSamples.Sample] {
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            let result = try HTTPClient.get(port: port, path: "/api/v1/query?query=\(selector.addingPercentEncoding(withAllowedCharacters: allowed)!)")
            let object = try JSONSerialization.jsonObject(with: Data(result.body)) as? [String: Any]
            let vector = (object?["data"] as? [String: Any])?["result"] as? [[String: Any]] ?? []
            return vector.compactMap { series in
                guard var labels = series["metric"] as? [String: String], let name = labels.removeValue(forKey: "__name__"),
                      let value = (series["value"] as? [Any])?.last as? String, let number = Double(value) else { return nil }
                return ShownSamples.Sample(name: name, labels: labels.map { Label($0.key, $0.value) }.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) },
                                          value: number)
            }
        }
    }

    /// `/metrics`' series whose name starts with `prefix`, as samples.
    private func shown(_ agent: TestAgent, _ prefix: String) throws -> [ShownSamples.Sample] {
        ShownSamples.samples(fromText: try agent.scrape().body).filter { $0.name.hasPrefix(prefix) }
    }

    private func sorted(_ samples: [ShownSamples.Sample]) -> [ShownSamples.Sample] {
        samples.sorted { "\($0.name)\($0.labels)" < "\($1.name)\($1.labels)" }
    }

    @Test func victoriaMetricsStoresWhatMetricsShows() async throws {
        let victoria = try VictoriaMetrics()
        defer { victoria.stop() }
        let capture = try MisbehavingReceiver(.status(204))
        defer { capture.stop() }
        let agent = try await TestAgent { configuration in
            configuration.remoteWrite.urls = [victoria.url, capture.url]
            configuration.remoteWrite.interval = .milliseconds(200)
            configuration.remoteWrite.credentials.headers = ["X-Scope-OrgID": "tenant-a"]
        }
        let emitter = agent.emitter()
        try emitter.counter("vm_requests_total", labels: [("path", "/a \"quoted\" \\ path")]).increment(by: 41)
        try emitter.counter("vm_requests_total", labels: [("path", "/b")]).increment(by: 2)
        try emitter.gauge("vm_queue_depth", labels: [("queue", "q1")]).set(-2.5)
        let latency = try emitter.histogram("vm_latency_ms", buckets: [1, 10], labels: [("op", "put")])
        for value in [0.5, 3, 3, 50] { latency.observe(value) }
        #expect(emitter.waitUntilDelivered())

        let expected = sorted(try shown(agent, "vm_"))
        #expect(expected.count == 8, "two counters, a gauge, a histogram's three buckets, sum and count: \(expected)")
        #expect(await eventuallyAsync(timeout: .seconds(30)) { (try? sorted(victoria.latest("{__name__=~\"vm_.*\"}"))) == expected },
                "stored \((try? victoria.latest("{__name__=~\"vm_.*\"}")) ?? []) \(victoria.log)")
        // The agent's own series too: the ones that stand still while nothing happens are equal.
        for name in ["danube_agent_series", "danube_agent_sources_connected", "danube_agent_families"] {
            let local = try shown(agent, name).filter { $0.name == name }
            #expect(await eventuallyAsync(timeout: .seconds(30)) { (try? victoria.latest(name)) == local }, "\(name)")
        }
        #expect(try victoria.latest("process_resident_memory_bytes").first?.value ?? 0 > 1_000_000)
        #expect(await eventuallyAsync { capture.requests > 0 })
        #expect(capture.lastRequestHead?.contains("\r\nx-scope-orgid: tenant-a") == true, "\(capture.lastRequestHead ?? "")")
        emitter.shutdown()
        await agent.stop()
    }
}
