@testable import DanubeMetricsAgent
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

    /// Supplementary groups come from SO_PEERGROUPS (the socket), not /proc, which systemd's
    /// `ProtectProc=invisible` hides: a load generator whose only match is a supplementary group is admitted.
    @Test func aSupplementaryGroupAdmitsAPeer() async throws {
        guard getuid() == 0 else {
            Issue.record("needs root to start a process with other groups (CI runs as root)")
            return
        }
        let agent = try await TestAgent { $0.peerAccess = PeerAccess(groups: [4_000_125]) }
        let output = Scratch.path("groups", suffix: ".log")
        let admitted = try ChildProcess("/usr/bin/setpriv", [
            "--regid", "4000126", "--groups", "4000127,4000125", Executables.loadgen.path,
            "--socket", agent.socketPath, "--threads", "1", "--messages", "50", "--drain-timeout", "5",
        ], output: output)
        #expect(ChildProcess.exitedCleanly(admitted.wait(timeout: .seconds(30))), "\((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")")
        let messages = try agent.samples().sum("danube_topic_messages_in_total")
        #expect(messages == 50, "\(messages)")
        let refused = try ChildProcess("/usr/bin/setpriv", [
            "--regid", "4000126", "--groups", "4000127", Executables.loadgen.path,
            "--socket", agent.socketPath, "--messages", "5", "--drain-timeout", "1",
        ], output: output)
        #expect(!ChildProcess.exitedCleanly(refused.wait(timeout: .seconds(30))))
        #expect(agent.logs.contains("connection refused", "peer_gid=4000126"))
        await agent.stop()
    }

    @Test func theGroupListOfSoPeergroupsEndsAtItsPadding() {
        var buffer = PeerCredentials.GroupBuffer(repeating: 0)
        #expect(PeerCredentials.groups(in: buffer) == [])
        buffer[0] = 0
        buffer[1] = 27
        buffer[2] = 1_000
        #expect(PeerCredentials.groups(in: buffer) == [0, 27, 1_000])
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
