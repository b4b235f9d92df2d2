import DanubeMetricsEmitter
import DanubeMetricsTestKit
import Foundation
import Synchronization
import Testing

/// An emitter that was never welcomed still waits out its drain: the agent may be starting (or about to be
/// socket-activated), and what it cannot deliver is reported.
@Suite struct DrainTests {
    @Test func withoutAnAgentShutdownKeepsTryingUntilItsTimeoutAndReportsTheRest() throws {
        let logs = LogCapture()
        let socket = Scratch.path("nowhere", suffix: ".sock")
        let emitter = TestAgent.emitter(socketPath: socket, logger: logs.logger)
        try emitter.counter("test_never_delivered_total").increment(by: 3)
        let started = ContinuousClock.now
        let stats = emitter.shutdown(timeout: .milliseconds(600))
        let took = ContinuousClock.now - started
        #expect(took >= .milliseconds(550) && took < .seconds(5), "shutdown took \(took)")
        #expect(stats.connects == 0 && stats.connectFailures >= 2)
        #expect(stats.undeliveredSeries == 1)
        // Said at the first failure, once, with the socket: a program pointed at the wrong path says so at once
        // (as the Rust emitter does: clients/rust/danube-metrics/tests/shutdown.rs).
        let warnings = logs.all.filter { $0.contains("level=warning") && $0.contains("msg=\"cannot reach the metrics agent") }
        #expect(warnings.count == 1 && warnings.first?.contains("socket=\(socket)") == true, "\(logs.all)")
    }

    @Test func anAgentThatComesUpDuringTheDrainGetsEverything() async throws {
        let socket = TestAgent.temporarySocketPath()
        let emitter = TestAgent.emitter(socketPath: socket)
        try emitter.counter("test_late_agent_total").increment(by: 11)
        let done = DispatchSemaphore(value: 0)
        let result = ManagedStats()
        // A generous drain: the agent below starts on Swift's cooperative pool, which other suites' blocking waits
        // can hold for many seconds on a 2-core machine; the drain ends as soon as everything is delivered.
        Thread {
            result.stats = emitter.shutdown(timeout: .seconds(60))
            done.signal()
        }.start()
        try await Task.sleep(for: .milliseconds(500))
        let agent = try await TestAgent(socketPath: socket)
        while done.wait(timeout: .now()) == .timedOut { try await Task.sleep(for: .milliseconds(20)) }
        #expect(result.stats?.undeliveredSeries == 0 && result.stats?.connects == 1)
        #expect(try agent.samples()["test_late_agent_total"] == 11)
        await agent.stop()
    }

    @Test func theLoadGeneratorSaysWhatItCouldNotDeliverAndFails() throws {
        let output = Scratch.path("loadgen", suffix: ".log")
        let loadgen = try ChildProcess(Executables.loadgen.path, [
            "--socket", Scratch.path("nowhere", suffix: ".sock"), "--messages", "10", "--drain-timeout", "1",
        ], output: output)
        let started = ContinuousClock.now
        let status = loadgen.wait(timeout: .seconds(20))
        #expect(ContinuousClock.now - started >= .milliseconds(900))
        #expect(!ChildProcess.exitedCleanly(status))
        let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(log.contains("series not delivered to the agent at") && log.contains("No such file or directory"), "\(log)")
    }
}

final class ManagedStats: Sendable {
    private let value = Mutex<EmitterStats?>(nil)
    var stats: EmitterStats? {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}
