@testable import DanubeMetricsAgent
import DanubeMetricsTestKit
import DanubeMetricsWire
import Foundation
import Testing

/// Idle and abandoned emitter connections against the open-file limit: the agent keeps descriptors for scrapes
/// and checkpoints, closes connections that never say HELLO, and a real emitter still gets in.
@Suite struct DescriptorBudgetTests {
    @Test func theSourceCapLeavesRoomForTheAgentsOwnDescriptors() {
        let budget = FileDescriptorBudget(limit: 1_024, httpMaxConnections: 64)
        #expect(budget.reserved == 224)
        #expect(budget.sourceCap(configured: 1_024) == 800)
        #expect(budget.sourceCap(configured: 100) == 100)
        #expect(FileDescriptorBudget(limit: 200, httpMaxConnections: 64).sourceCap(configured: 1_024) == 0)
    }

    @Test func aConnectionThatNeverSaysHelloIsRefusedAndClosed() async throws {
        let agent = try await TestAgent { $0.helloTimeout = .milliseconds(300) }
        let idle = try (0..<5).map { _ in try RawSource(path: agent.socketPath) }
        let started = ContinuousClock.now
        for source in idle {
            guard case .refuse(let refusal)? = source.receive() else {
                Issue.record("no REFUSE for an idle connection")
                continue
            }
            #expect(refusal.code == .limitExceeded && refusal.message.contains("no HELLO"))
            #expect(source.isClosedByAgent())
        }
        #expect(ContinuousClock.now - started < .seconds(3))
        let samples = try agent.samples()
        #expect(samples["danube_agent_connections_refused_total{reason=\"hello_timeout\"}"] == 5)
        // One log line per reason and window, not one per connection.
        #expect(agent.logs.all.filter { $0.contains("no HELLO in time") }.count <= 5)
        // A source that says HELLO in time is not affected.
        let emitter = agent.emitter()
        try emitter.counter("test_after_idle_total").increment(by: 3)
        #expect(emitter.waitUntilDelivered())
        try await Task.sleep(for: .milliseconds(500))
        #expect(try agent.samples()["test_after_idle_total"] == 3)
        emitter.shutdown()
        await agent.stop()
    }

    /// 400 idle connections against an agent process whose open-file limit is 300: it lowers its source cap (to 188),
    /// refuses the excess (counted, the log rate-limited), answers scrapes, keeps checkpointing, closes the idle
    /// ones after the HELLO timeout, and then serves a real emitter exactly.
    @Test func idleConnectionsBeyondTheDescriptorLimitStarveNothing() async throws {
        let socket = TestAgent.temporarySocketPath()
        let state = Scratch.makeDirectory("state")
        let port = unusedPort()
        let agent = try ChildProcess("/bin/sh", ["-c", "ulimit -n 300 && exec \"$0\" \"$@\"", Executables.agent.path,
            "--ingest-socket", socket, "--listen", "127.0.0.1:\(port)", "--state-dir", state, "--log-format", "text",
            "--http-max-connections", "8", "--hello-timeout", "5s", "--checkpoint-interval", "200ms",
        ], output: socket + ".log")
        defer { agent.stop() }
        #expect(eventually { (try? HTTPClient.get(port: port, path: "/healthz"))?.status == 200 })
        var idle: [RawSource] = []
        for _ in 0..<400 {
            guard let source = try? RawSource(path: socket) else { break }
            idle.append(source)
        }
        try await Task.sleep(for: .milliseconds(300))
        let started = ContinuousClock.now
        let scrape = try HTTPClient.get(port: port, path: "/metrics")
        #expect(scrape.status == 200 && ContinuousClock.now - started < .seconds(2))
        let during = Samples(parsing: scrape.text)
        #expect(during.sum("danube_agent_checkpoint_failures_total") == 0)
        // The excess is refused and counted (the accept queue may still hold some of it at the first scrape).
        #expect(eventually {
            let samples = Samples(parsing: (try? HTTPClient.get(port: port, path: "/metrics").text) ?? "")
            return (samples["danube_agent_connections_refused_total{reason=\"too_many_sources\"}"] ?? 0) >= 50
        })
        let log = { (try? String(contentsOfFile: socket + ".log", encoding: .utf8)) ?? "" }
        #expect(log().contains("fewer emitter connections than --max-sources") && log().contains("allowed=188"))
        #expect(log().components(separatedBy: "emitter connection refused: too many sources").count - 1 <= 6)
        // After the HELLO timeout the idle connections are gone and a real emitter delivers.
        try await Task.sleep(for: .seconds(6))
        idle.removeAll()
        let emitter = TestAgent.emitter(socketPath: socket, name: "after-idle")
        try emitter.counter("test_after_idle_total").increment(by: 7)
        #expect(emitter.waitUntilDelivered(timeout: .seconds(10)), "\(emitter.stats)")
        let after = Samples(parsing: try HTTPClient.get(port: port, path: "/metrics").text)
        #expect(after["test_after_idle_total"] == 7)
        #expect((after["danube_agent_connections_refused_total{reason=\"hello_timeout\"}"] ?? 0) >= 150)
        #expect(after.sum("danube_agent_checkpoint_failures_total") == 0)
        emitter.shutdown()
    }
}
