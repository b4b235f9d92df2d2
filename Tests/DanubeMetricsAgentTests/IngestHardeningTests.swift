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

    /// A peer that floods refused definitions and never reads its SERIES_REFUSED answers: the agent stops reading
    /// it once its answers fill the outbound buffer (64 KiB), instead of queueing one answer per definition.
    @Test func aPeerThatNeverReadsItsRefusalsIsNotReadEither() async throws {
        let agent = try await TestAgent { $0.catalogMode = .strict }
        let flooder = try RawSource(path: agent.socketPath)
        var small: Int32 = 4_096
        setsockopt(flooder.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        #expect(flooder.handshake(name: "flooder") != nil)
        var sent = 0
        for frame in 0..<2_000 {
            let definitions = (0..<50).map { i in
                SeriesDefinition(id: UInt32(frame * 50 + i), kind: .counter, name: "unplanned_\(frame)_\(i)_total", help: "", labels: [])
            }
            let bytes = FrameEncoder.encode(.define(DefineBatch(sequence: UInt64(frame + 1), definitions: definitions)))
            let n = bytes.withUnsafeBytes { sendBytes(flooder.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
            guard n == bytes.count else { break }
            sent += 50
        }
        try await Task.sleep(for: .milliseconds(1_500))
        let refused = try agent.samples().sum("danube_agent_series_rejected_total")
        // Answers are ~90 bytes: what fits the socket buffers and 64 KiB, not one per definition sent.
        #expect(refused < 20_000, "\(refused) of \(sent) definitions answered while the peer read nothing")
        print("flood: \(Int(refused)) of \(sent) refused definitions answered while the peer read nothing")
        #expect(sent > Int(refused), "the flood was not larger than what the agent answered (\(sent) sent)")
        // Another source is served meanwhile.
        let bystander = agent.emitter(name: "bystander")
        try bystander.counter("danube_wal_fsync_total", labels: [("namespace", "n"), ("topic", "t"), ("partition", "0")]).increment()
        #expect(bystander.waitUntilDelivered())
        bystander.shutdown()
        await agent.stop()
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
