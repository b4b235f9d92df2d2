import DanubeMetricsAgent
import DanubeMetricsTestKit
import DanubeMetricsEmitter
import Foundation
import Testing

/// `/metrics` over real HTTP: formats, compression, other paths, and what Prometheus' own tools think of it.
@Suite struct HTTPTests {
    /// An agent fed a counter, a gauge and a histogram with labels that need escaping.
    private func fedAgent() async throws -> (TestAgent, Emitter) {
        let agent = try await TestAgent()
        let emitter = agent.emitter(name: "http-test")
        try emitter.counter("test_messages_total", labels: [("topic", "a\"b"), ("namespace", "ns\\1")], help: "Messages in.").increment(by: 12)
        try emitter.gauge("test_queue_depth", labels: [("queue", "line\nbreak")], help: "Depth.").set(3.5)
        let histogram = try emitter.histogram("test_latency_seconds", buckets: [0.01, 0.1, 1], labels: [("op", "send")], help: "Latency.")
        for value in [0.005, 0.05, 0.5, 5] { histogram.observe(value) }
        #expect(emitter.waitUntilDelivered())
        return (agent, emitter)
    }

    @Test func promtoolAcceptsAScrape() async throws {
        let (agent, emitter) = try await fedAgent()
        defer { emitter.shutdown() }
        let scrape = try agent.scrape()
        #expect(scrape.status == 200)
        #expect(scrape.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        let (status, output) = try runPromtool(["check", "metrics"], input: scrape.body)
        #expect(status == 0, "promtool: \(output)")
        #expect(output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "promtool: \(output)")
        await agent.stop()
    }

    @Test func openMetricsWhenAsked() async throws {
        let (agent, emitter) = try await fedAgent()
        defer { emitter.shutdown() }
        let scrape = try agent.scrape(accept: "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
        #expect(scrape.headers["content-type"] == "application/openmetrics-text; version=1.0.0; charset=utf-8")
        let lines = scrape.text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.last == "")
        #expect(lines.dropLast().last == "# EOF")
        #expect(lines.filter { $0 == "# EOF" }.count == 1)
        // Counter families drop _total in TYPE/HELP; their samples carry it.
        #expect(lines.contains("# TYPE test_messages counter"))
        #expect(lines.contains(#"test_messages_total{namespace="ns\\1",topic="a\"b"} 12"#))
        #expect(lines.contains("# TYPE danube_agent_connections counter"))
        #expect(!lines.contains { $0.hasPrefix("# TYPE") && $0.contains("_total ") })
        // Every sample belongs to a family declared before it.
        var families = Set<String>()
        for line in lines where !line.isEmpty {
            if line.hasPrefix("# TYPE ") {
                families.insert(String(line.split(separator: " ")[2]))
            } else if !line.hasPrefix("#") {
                let name = String(line.prefix { $0 != "{" && $0 != " " })
                let family = ["_total", "_bucket", "_sum", "_count"].reduce(name) { name, suffix in
                    name.hasSuffix(suffix) && families.contains(String(name.dropLast(suffix.count))) ? String(name.dropLast(suffix.count)) : name
                }
                #expect(families.contains(family), "\(line)")
            }
        }
        await agent.stop()
    }

    @Test func gzipWhenAccepted() async throws {
        let (agent, emitter) = try await fedAgent()
        defer { emitter.shutdown() }
        let plain = try agent.scrape()
        let compressed = try HTTPClient.get(port: agent.port, path: "/metrics", headers: [("Accept-Encoding", "gzip")])
        #expect(compressed.headers["content-encoding"] == "gzip")
        #expect(compressed.body.count < plain.body.count)
        let inflated = try gunzip(compressed.body)
        let withoutVolatile = { (text: String) in text.split(separator: "\n").filter { !Self.isVolatile($0) } }
        #expect(withoutVolatile(String(decoding: inflated, as: UTF8.self)) == withoutVolatile(plain.text))
        await agent.stop()
    }

    /// The agent's own and the process metrics change between two scrapes; what sources sent must not.
    static func isVolatile(_ line: Substring) -> Bool {
        line.contains("danube_agent_") || line.contains("process_")
    }

    @Test func scrapesAreDeterministic() async throws {
        let (agent, emitter) = try await fedAgent()
        defer { emitter.shutdown() }
        let first = try agent.scrape().text.split(separator: "\n").filter { !Self.isVolatile($0) }
        let second = try agent.scrape().text.split(separator: "\n").filter { !Self.isVolatile($0) }
        #expect(first == second)
        await agent.stop()
    }

    @Test func otherPathsAndMethods() async throws {
        let agent = try await TestAgent()
        #expect(try agent.scrape(path: "/healthz").status == 200)
        #expect(try agent.scrape(path: "/").status == 200)
        #expect(try agent.scrape(path: "/nope").status == 404)
        #expect(try agent.scrape(path: "/metrics?x=1").status == 200)
        let post = try HTTPClient.get(port: agent.port, path: "/metrics", method: "POST")
        #expect(post.status == 405)
        #expect(post.headers["allow"] == "GET, HEAD")
        let head = try HTTPClient.get(port: agent.port, path: "/metrics", method: "HEAD")
        #expect(head.status == 200)
        #expect(head.body.isEmpty)
        let samples = try agent.samples()
        #expect(samples["danube_agent_sources_connected"] == 0)
        #expect(samples["danube_agent_scrape_duration_seconds_count"]! >= 1)
        await agent.stop()
    }

    @Test func agentOwnMetricsCountTraffic() async throws {
        let (agent, emitter) = try await fedAgent()
        let samples = try agent.samples()
        #expect(samples["danube_agent_sources_connected"] == 1)
        #expect(samples["danube_agent_connections_total"] == 1)
        #expect(samples["danube_agent_frames_received_total{type=\"define\"}"]! >= 1)
        #expect(samples["danube_agent_frames_received_total{type=\"deltas\"}"]! >= 1)
        #expect(samples["danube_agent_deltas_applied_total"]! >= 3)
        #expect(samples["danube_agent_received_bytes_total"]! > 0)
        #expect(samples["danube_agent_series"] == 3)
        #expect(samples["danube_agent_decode_errors_total{reason=\"malformed\"}"] == 0)
        emitter.shutdown()
        await agent.stop()
    }
}

func runPromtool(_ arguments: [String], input: [UInt8]) throws -> (Int32, String) {
    try runTool("/usr/bin/promtool", arguments, input: input)
}

/// Runs a tool to the end with `input` on its standard input: its exit status and its output (stdout and stderr).
func runTool(_ executable: String, _ arguments: [String], input: [UInt8] = []) throws -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let stdin = Pipe(), output = Pipe()
    process.standardInput = stdin
    process.standardOutput = output
    process.standardError = output
    try process.run()
    stdin.fileHandleForWriting.write(Data(input))
    try stdin.fileHandleForWriting.close()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, text)
}

func gunzip(_ data: [UInt8]) throws -> [UInt8] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/gzip")
    process.arguments = ["-dc"]
    let stdin = Pipe(), output = Pipe()
    process.standardInput = stdin
    process.standardOutput = output
    try process.run()
    stdin.fileHandleForWriting.write(Data(data))
    try stdin.fileHandleForWriting.close()
    let result = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Array(result)
}
