@testable import DanubeMetricsAgent
import DanubeMetricsTestKit
import DanubeMetricsWire
import Foundation
import Testing

/// Is my broker alive? Per source name: connected or not, and when it was last seen; bounded.
@Suite struct SourceLivenessTests {
    @Test func aSourceIsConnectedWhileItsConnectionIsOpenAndStaysVisibleAfter() async throws {
        let agent = try await TestAgent()
        let emitter = agent.emitter(name: "danube-broker")
        try emitter.counter("test_liveness_total").increment()
        #expect(emitter.waitUntilDelivered())
        let before = Date().timeIntervalSince1970
        var samples = try agent.samples()
        #expect(samples["danube_agent_source_connected{source=\"danube-broker\"}"] == 1)
        let seen = samples["danube_agent_source_last_seen_timestamp_seconds{source=\"danube-broker\"}"] ?? 0
        #expect(seen > before - 10 && seen <= before + 1)
        emitter.shutdown()
        #expect(try eventually { try agent.samples()["danube_agent_source_connected{source=\"danube-broker\"}"] == 0 })
        samples = try agent.samples()
        #expect((samples["danube_agent_source_last_seen_timestamp_seconds{source=\"danube-broker\"}"] ?? 0) >= seen)
        await agent.stop()
    }

    /// A peer that says HELLO and leaves while its WELCOME waits for a checkpoint is not welcomed afterwards: it
    /// never shows as connected (it used to, forever).
    @Test func aPeerThatLeavesBeforeItsWelcomeIsNeverConnected() async throws {
        let agent = try await TestAgent { configuration in
            configuration.stateDirectory = Scratch.makeDirectory("state")
            configuration.checkpointInterval = .milliseconds(500)
        }
        for _ in 0..<5 {
            let source = try RawSource(path: agent.socketPath)
            source.send(.hello(Hello(sourceName: "early-leaver", pid: 1, processStartMillis: 1, instanceID: 77, firstSequence: 1)))
        } // each closes at once, before the next checkpoint
        try await Task.sleep(for: .seconds(1.5))
        #expect(try agent.samples()["danube_agent_source_connected{source=\"early-leaver\"}"] ?? 0 == 0)
        #expect(try agent.samples()["danube_agent_sources_connected"] == 0)
        await agent.stop()
    }

    @Test func theTableForgetsTheLongestGoneNameBeyondItsLimit() {
        let liveness = SourceLiveness(limit: 2)
        liveness.connected("a", now: 1)
        liveness.connected("b", now: 2)
        liveness.disconnected("a", now: 3)
        liveness.connected("c", now: 4)   // a (gone) is forgotten
        func rendered() -> String {
            var snapshot = MetricsSnapshot()
            liveness.collect(into: &snapshot)
            return String(decoding: TextExposition.encode(snapshot, format: .prometheusText).joined(), as: UTF8.self)
        }
        let text = rendered()
        #expect(!text.contains("source=\"a\"") && text.contains("source=\"b\"") && text.contains("source=\"c\""))
        liveness.connected("d", now: 5)   // b and c are connected: nothing is forgotten
        #expect(rendered().contains("source=\"d\""))
    }
}
