import DanubeMetricsTestKit
import Foundation
import Testing

/// Every way a remote write receiver can misbehave, at once, against one agent process pushing to all of them: one
/// that hangs, one that answers byte by byte, 500 forever, 429 with a Retry-After of years, 413, a 1 GiB answer, and
/// a 200 that comes after the queue overflowed. The agent stays up, its memory bounded, its scrapes answered, and
/// each receiver's counters say what happened to it.
@Suite struct HostileReceiverTests {
    @Test func noReceiverCanCrashTheAgentOrMakeItHoldUnboundedMemory() async throws {
        let receivers: [String: MisbehavingReceiver] = try [
            "hang": MisbehavingReceiver(.hang),
            "slow": MisbehavingReceiver(.byteByByte(interval: .milliseconds(10))),
            "error": MisbehavingReceiver(.status(500)),
            "throttle": MisbehavingReceiver(.status(429, retryAfter: "999999999999")),
            "tooLarge": MisbehavingReceiver(.status(413)),
            "huge": MisbehavingReceiver(.hugeAnswer),
            "late": MisbehavingReceiver(.lateOK),
        ]
        defer { receivers.values.forEach { $0.stop() } }
        let socket = TestAgent.temporarySocketPath()
        let port = unusedPort()
        let agent = try ChildProcess(Executables.agent.path, [
            "--ingest-socket", socket, "--listen", "127.0.0.1:\(port)", "--log-format", "text", "--log-level", "error",
            "--remote-write-interval", "100ms", "--remote-write-timeout", "4s", "--remote-write-max-pending-samples", "3000",
            "--no-remote-write-agent-metrics", // pushes of the store's 1,000 samples, counted below
        ] + receivers.values.flatMap { ["--remote-write-url", $0.url] }, output: socket + ".log")
        defer { agent.stop() }
        #expect(eventually { (try? HTTPClient.get(port: port, path: "/healthz"))?.status == 200 })
        let emitter = TestAgent.emitter(socketPath: socket)
        for i in 0..<1_000 { try emitter.counter("test_receiver_total", labels: [("n", "\(i)")]).increment() }
        #expect(emitter.waitUntilDelivered(timeout: .seconds(10)))
        let startRSS = FloodTests.residentKiB(agent.pid)
        try #require(receivers["late"]).holdNext()

        func value(_ name: String, _ receiver: String, reason: String? = nil) throws -> Double {
            let samples = Samples(parsing: try HTTPClient.get(port: port, path: "/metrics").text)
            let url = try #require(receivers[receiver]).url
            return samples[reason.map { "\(name){reason=\"\($0)\",url=\"\(url)\"}" } ?? "\(name){url=\"\(url)\"}"] ?? -1
        }
        // The late receiver's request is held (within the timeout) until its queue overflowed (3 pushes of 1,000).
        #expect(try await eventuallyAsync(timeout: .seconds(20)) {
            try value("danube_agent_remote_write_samples_failed_total", "late") > 0
        })
        try #require(receivers["late"]).release()
        // The late receiver answers the requests queued behind the held one.
        #expect(await eventuallyAsync(timeout: .seconds(20)) { receivers["late"]?.accepted ?? 0 > 1 })
        // The hung receiver's first request has timed out.
        #expect(try await eventuallyAsync(timeout: .seconds(20)) {
            try value("danube_agent_remote_write_request_failures_total", "hang", reason: "timeout") >= 1
        })

        let endRSS = FloodTests.residentKiB(agent.pid)
        print("hostile receivers: RSS \(startRSS) KiB -> \(endRSS) KiB")
        #expect(agent.isRunning)
        // Everything the pusher queued is within the bound for every receiver.
        for name in receivers.keys {
            let pending = try value("danube_agent_remote_write_samples_pending", name)
            #expect(pending >= 0 && pending <= 3_000, "\(name): \(pending) pending")
        }
        #expect(try value("danube_agent_remote_write_samples_sent_total", "slow") > 0)
        #expect(try value("danube_agent_remote_write_request_failures_total", "error", reason: "status_5xx") >= 3)
        // A Retry-After of years waits 30 s at most: one request so far, retried later, never given up.
        #expect(try value("danube_agent_remote_write_request_failures_total", "throttle", reason: "status_429") >= 1)
        #expect(try value("danube_agent_remote_write_samples_failed_total", "tooLarge") > 0)
        #expect(try value("danube_agent_remote_write_samples_retried_total", "tooLarge") == 0)
        // The status line decides: a 1 GiB body is not read.
        #expect(try value("danube_agent_remote_write_samples_sent_total", "huge") >= 2_000)
        #expect(try value("danube_agent_remote_write_request_failures_total", "huge", reason: "timeout") == 0)
        let late = try #require(receivers["late"])
        #expect(try value("danube_agent_remote_write_samples_sent_total", "late") <= Double(late.accepted * 1_000))
        #expect(late.accepted > 1)
        #expect(startRSS > 0 && endRSS - startRSS < 64 * 1_024, "RSS \(startRSS) KiB -> \(endRSS) KiB")
        emitter.shutdown()
    }
}
