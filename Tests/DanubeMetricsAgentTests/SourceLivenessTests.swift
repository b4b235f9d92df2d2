@testable import DanubeMetricsAgent
import DanubeMetricsTestKit
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

    @Test func theTableForgetsTheLongestGoneNameBeyondItsLimit() {
        let liveness = SourceLiveness(limit: 2)
        liveness.connected("a", now: 1)
        liveness.connected("b", now: 2)
        liveness.disconnected("a", now: 3)
        liveness.connected("c", now: 4)   // a (gone) is forgotten
        var writer = ExpositionWriter(format: .prometheusText, capacity: 1_024)
        liveness.render(into: &writer)
        let text = String(decoding: writer.bytes, as: UTF8.self)
        #expect(!text.contains("source=\"a\"") && text.contains("source=\"b\"") && text.contains("source=\"c\""))
        liveness.connected("d", now: 5)   // b and c are connected: nothing is forgotten
        writer = ExpositionWriter(format: .prometheusText, capacity: 1_024)
        liveness.render(into: &writer)
        #expect(String(decoding: writer.bytes, as: UTF8.self).contains("source=\"d\""))
    }
}
