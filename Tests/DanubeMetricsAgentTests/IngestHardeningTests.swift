import DanubeMetricsAgent
import DanubeMetricsTestKit
import DanubeMetricsWire
import Foundation
import Testing

/// Who may connect, how many, how fast, and what a hostile peer's garbage does to the agent.
@Suite struct IngestHardeningTests {
    func refusal(_ source: RawSource) -> Refusal? {
        source.send(.hello(Hello(sourceName: "probe", pid: UInt64(getpid()), processStartMillis: 1, instanceID: 7, firstSequence: 1)))
        if case .refuse(let refusal)? = source.receive() { return refusal }
        return nil
    }

    @Test func aPeerWhoseUserAndGroupsAreNotAllowedIsRefusedAndLogged() async throws {
        let forbidden = try await TestAgent { $0.peerAccess = PeerAccess(users: [4_000_123], groups: [4_000_124]) }
        let refused = refusal(try RawSource(path: forbidden.socketPath))
        #expect(refused?.code == .notPermitted, "\(forbidden.logs.all)")
        #expect(refused?.message.contains("uid \(getuid())") == true)
        #expect(forbidden.logs.contains("connection refused", "peer_uid=\(getuid())", "peer_pid=\(getpid())"))
        #expect(try forbidden.samples()["danube_agent_connections_refused_total{reason=\"peer_credentials\"}"] == 1)
        await forbidden.stop()

        let byUser = try await TestAgent { $0.peerAccess = PeerAccess(users: [getuid()]) }
        #expect(try RawSource(path: byUser.socketPath).handshake() != nil)
        await byUser.stop()
        let byGroup = try await TestAgent { $0.peerAccess = PeerAccess(groups: [getgid()]) }
        #expect(try RawSource(path: byGroup.socketPath).handshake() != nil)
        await byGroup.stop()
    }

    @Test func sourcesBeyondTheCapAreRefusedUntilOneLeaves() async throws {
        let agent = try await TestAgent { $0.maxSources = 2 }
        var first: RawSource? = try RawSource(path: agent.socketPath)
        let second = try RawSource(path: agent.socketPath)
        #expect(first?.handshake(name: "one") != nil && second.handshake(name: "two") != nil)
        #expect(refusal(try RawSource(path: agent.socketPath))?.code == .limitExceeded)
        first = nil
        #expect(try eventually { try agent.samples()["danube_agent_sources_connected"] == 1 })
        #expect(try RawSource(path: agent.socketPath).handshake(name: "three") != nil)
        _ = first
        await agent.stop()
    }

    @Test func aSourceOverItsFrameRateIsSlowedDownNotDropped() async throws {
        let agent = try await TestAgent { $0.maxFramesPerSecondPerSource = 40 }
        let emitter = agent.emitter(name: "eager")
        let counter = try emitter.counter("test_paced_total")
        for _ in 0..<100 {
            counter.increment()
            emitter.flush()
        }
        #expect(emitter.waitUntilDelivered(timeout: .seconds(20)))
        let samples = try agent.samples()
        #expect(samples["test_paced_total"] == 100)
        #expect((samples["danube_agent_source_throttles_total"] ?? 0) > 0)
        emitter.shutdown()
        await agent.stop()
    }
}
