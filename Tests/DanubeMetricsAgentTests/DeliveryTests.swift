import DanubeMetricsAgent
import DanubeMetricsEmitter
import Foundation
import Synchronization
import Testing

/// Emitter -> real SEQPACKET socket -> agent -> real HTTP scrape: values must arrive exactly.
@Suite struct DeliveryTests {
    @Test func threadsTimesIncrementsArriveExactly() async throws {
        let agent = try await TestAgent()
        let emitter = agent.emitter()
        let counter = try emitter.counter("test_requests_total", labels: [("path", "/a")], help: "Requests.")
        let threads = 8, increments = 50_000
        let group = DispatchGroup()
        for _ in 0..<threads {
            group.enter()
            Thread {
                for _ in 0..<increments { counter.increment() }
                group.leave()
            }.start()
        }
        group.wait()
        #expect(emitter.waitUntilDelivered())
        #expect(try agent.samples()["test_requests_total{path=\"/a\"}"] == Double(threads * increments))
        emitter.shutdown()
        await agent.stop()
    }

    @Test func gaugesKeepTheLastValueAndAdd() async throws {
        let agent = try await TestAgent()
        let emitter = agent.emitter()
        let depth = try emitter.gauge("test_queue_depth", labels: [("queue", "q1")], help: "Depth.")
        let balance = try emitter.gauge("test_balance")
        depth.set(42)
        depth.set(17.5)
        balance.add(10)
        balance.add(-2.25)
        balance.increment()
        #expect(emitter.waitUntilDelivered())
        let samples = try agent.samples()
        #expect(samples["test_queue_depth{queue=\"q1\"}"] == 17.5)
        #expect(samples["test_balance"] == 8.75)
        depth.set(-3)
        #expect(emitter.waitUntilDelivered())
        #expect(try agent.samples()["test_queue_depth{queue=\"q1\"}"] == -3)
        emitter.shutdown()
        await agent.stop()
    }

    @Test func histogramBucketsEdgesSumAndCountAreExact() async throws {
        let agent = try await TestAgent()
        let emitter = agent.emitter()
        let latency = try emitter.histogram("test_latency_ms", buckets: [1, 5, 10], labels: [("op", "put")], help: "Latency.")
        // Values on a bound fall into that bound's bucket (le is "less or equal"); above the last bound is +Inf.
        for value in [0.5, 1, 1, 3, 5, 7.5, 10, 11, 1000] { latency.observe(value) }
        latency.observe(.nan) // ignored
        let threads = 4
        let group = DispatchGroup()
        for _ in 0..<threads {
            group.enter()
            Thread {
                for _ in 0..<1000 { latency.observe(2) }
                group.leave()
            }.start()
        }
        group.wait()
        #expect(emitter.waitUntilDelivered())
        let samples = try agent.samples()
        let labels = "op=\"put\""
        let expected: [(String, Double)] = [
            ("test_latency_ms_bucket{\(labels),le=\"1.0\"}", 3),
            ("test_latency_ms_bucket{\(labels),le=\"5.0\"}", 4005),
            ("test_latency_ms_bucket{\(labels),le=\"10.0\"}", 4007),
            ("test_latency_ms_bucket{\(labels),le=\"+Inf\"}", 4009),
            ("test_latency_ms_count{\(labels)}", 4009),
        ]
        for (key, value) in expected {
            #expect(samples[key] == value, "\(key)")
        }
        #expect(samples["test_latency_ms_sum{\(labels)}"] == 0.5 + 1 + 1 + 3 + 5 + 7.5 + 10 + 11 + 1000 + 8000)
        emitter.shutdown()
        await agent.stop()
    }

    @Test func exitedThreadsLoseNothing() async throws {
        let agent = try await TestAgent()
        let emitter = agent.emitter()
        let counter = try emitter.counter("test_short_lived_total")
        // Many short-lived threads, a few at a time: each exits and hands its cells on.
        for _ in 0..<20 {
            let group = DispatchGroup()
            for _ in 0..<4 {
                group.enter()
                Thread {
                    for _ in 0..<1000 { counter.increment() }
                    group.leave()
                }.start()
            }
            group.wait()
        }
        #expect(emitter.waitUntilDelivered())
        #expect(try agent.samples()["test_short_lived_total"] == 80_000)
        emitter.shutdown()
        await agent.stop()
    }

    @Test func agentStartedAfterTheEmitterReceivesWhatWasRecorded() async throws {
        let path = TestAgent.temporarySocketPath()
        let emitter = TestAgent.emitter(socketPath: path)
        let counter = try emitter.counter("test_early_total")
        let gauge = try emitter.gauge("test_early_gauge")
        counter.increment(by: 1234)
        gauge.set(9)
        emitter.flush()
        let stats = emitter.stats
        #expect(!stats.connected)
        #expect(stats.flushesWithoutAgent > 0)
        #expect(stats.undeliveredSeries == 2)

        let agent = try await TestAgent(socketPath: path)
        #expect(emitter.waitUntilDelivered())
        let samples = try agent.samples()
        #expect(samples["test_early_total"] == 1234)
        #expect(samples["test_early_gauge"] == 9)
        emitter.shutdown()
        await agent.stop()
    }

    @Test func agentRestartedMidRunGetsWhatWasRecordedWhileItWasAway() async throws {
        let first = try await TestAgent()
        let path = first.socketPath
        let emitter = first.emitter()
        let counter = try emitter.counter("test_restart_total")
        let histogram = try emitter.histogram("test_restart_ms", buckets: [1, 10])
        counter.increment(by: 100)
        histogram.observe(5)
        #expect(emitter.waitUntilDelivered())
        #expect(try first.samples()["test_restart_total"] == 100)
        await first.stop()

        // Nobody listens now: recording goes on and is kept in the cells.
        counter.increment(by: 250)
        histogram.observe(0.5)
        histogram.observe(50)
        emitter.flush()
        #expect(eventually { !emitter.stats.connected })

        let second = try await TestAgent(socketPath: path)
        #expect(emitter.waitUntilDelivered())
        let samples = try second.samples()
        // A restarted agent starts from zero (a counter reset to Prometheus) and receives exactly what it missed.
        #expect(samples["test_restart_total"] == 250)
        #expect(samples["test_restart_ms_count"] == 2)
        #expect(samples["test_restart_ms_bucket{le=\"1.0\"}"] == 1)
        #expect(samples["test_restart_ms_sum"] == 50.5)
        #expect(emitter.stats.connects == 2)
        emitter.shutdown()
        await second.stop()
    }

    @Test func departedSourcesGaugesExpireButCountersStay() async throws {
        let agent = try await TestAgent(gaugeGrace: .milliseconds(300))
        let emitter = agent.emitter()
        try emitter.gauge("test_departing_gauge").set(5)
        try emitter.counter("test_departing_total").increment(by: 3)
        #expect(emitter.waitUntilDelivered())
        #expect(try agent.samples()["test_departing_gauge"] == 5)
        emitter.shutdown()
        #expect(try eventually { try agent.samples()["test_departing_gauge"] == nil })
        #expect(try agent.samples()["test_departing_total"] == 3)
        await agent.stop()
    }

    @Test func severalEmitterProcessesAtOnce() async throws {
        let agent = try await TestAgent()
        let processes = 3
        var reports: [Process] = []
        var pipes: [Pipe] = []
        for index in 0..<processes {
            let process = Process()
            process.executableURL = Executables.loadgen
            process.arguments = [
                "--socket", agent.socketPath, "--messages", "3000", "--rate", "0", "--threads", "2",
                "--namespaces", "1", "--topics", "2", "--partitions", "2", "--flush-interval-ms", "20",
                "--source-prefix", "proc\(index)", "--report",
            ]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            reports.append(process)
            pipes.append(pipe)
        }
        var expected: [String: Double] = [:]
        for (process, pipe) in zip(reports, pipes) {
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            let report = try JSONSerialization.jsonObject(with: data) as! [String: Any]
            for (key, value) in report["counters"] as! [String: Int] { expected[canonical(key), default: 0] += Double(value) }
        }
        #expect(expected.values.reduce(0, +) > 0)
        #expect(expected["danube_topic_messages_in_total{namespace=\"ns0\",partition=\"0\",topic=\"topic-0\"}"] != nil)
        let samples = try agent.samples()
        for (key, value) in expected {
            #expect(samples[key] == value, "\(key)")
        }
        #expect(samples.sum("danube_topic_messages_in_total") == Double(processes * 2 * 3000))
        await agent.stop()
    }

    /// `name{b="2",a="1"}` -> `name{a="1",b="2"}` (the agent sorts labels by name).
    private func canonical(_ key: String) -> String {
        guard let open = key.firstIndex(of: "{") else { return key }
        let labels = key[key.index(after: open)..<key.index(before: key.endIndex)].split(separator: ",").sorted()
        return "\(key[..<open]){\(labels.joined(separator: ","))}"
    }
}

/// Paths of the package's own executables, built next to the test bundle.
enum Executables {
    static var directory: URL {
        let executable = URL(fileURLWithPath: try! FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        var directory = executable.deletingLastPathComponent()
        while directory.path != "/" && !FileManager.default.fileExists(atPath: directory.appendingPathComponent("danube-metrics-loadgen").path) {
            directory = directory.deletingLastPathComponent()
        }
        return directory
    }

    static var loadgen: URL { directory.appendingPathComponent("danube-metrics-loadgen") }
    static var agent: URL { directory.appendingPathComponent("danube-metrics-agent") }
}

/// A restart with a state directory: what the agent applied is kept, what it had not is re-sent, nothing twice.
@Suite struct RestartTests {
    @Test func restartWhileEmittersPushLosesAndDuplicatesNothing() async throws {
        let stateDirectory = Scratch.makeDirectory("state")
        let socketPath = TestAgent.temporarySocketPath()
        var agent = try await TestAgent(socketPath: socketPath) { $0.stateDirectory = stateDirectory }
        let emitter = agent.emitter()
        let counter = try emitter.counter("test_restart_exact_total")
        let histogram = try emitter.histogram("test_restart_exact_ms", buckets: [1, 10])
        let stop = DispatchSemaphore(value: 0)
        let recorded = ManagedCount()
        let worker = Thread {
            while stop.wait(timeout: .now()) == .timedOut {
                for _ in 0..<100 {
                    counter.increment()
                    histogram.observe(5)
                }
                recorded.add(100)
                Thread.sleep(forTimeInterval: 0.001)
            }
        }
        worker.start()
        for _ in 0..<3 {
            try await Task.sleep(for: .milliseconds(150))
            await agent.stop()
            try await Task.sleep(for: .milliseconds(100))
            agent = try await TestAgent(socketPath: socketPath) { $0.stateDirectory = stateDirectory }
        }
        try await Task.sleep(for: .milliseconds(150))
        stop.signal()
        while worker.isExecuting { try await Task.sleep(for: .milliseconds(5)) }
        #expect(emitter.waitUntilDelivered(), "\(emitter.stats) \(agent.logs.all.suffix(20))")
        let samples = try agent.samples()
        #expect(recorded.value > 0)
        #expect(samples["test_restart_exact_total"] == Double(recorded.value))
        #expect(samples["test_restart_exact_ms_count"] == Double(recorded.value))
        #expect(samples["test_restart_exact_ms_sum"] == Double(recorded.value) * 5)
        #expect(agent.logs.contains("restored saved state"))
        // Kept up to date while running, so that a crash restarts from it.
        #expect(FileManager.default.fileExists(atPath: "\(stateDirectory)/state.bin"))
        emitter.shutdown()
        await agent.stop()
    }

    @Test func anUnusableStateFileIsMovedAsideAndTheAgentStarts() async throws {
        let stateDirectory = Scratch.makeDirectory("state")
        #expect(FileManager.default.createFile(atPath: "\(stateDirectory)/state.json", contents: Data("{not json".utf8)))
        let agent = try await TestAgent { $0.stateDirectory = stateDirectory }
        #expect(agent.logs.contains("saved state is unusable"))
        #expect(!FileManager.default.fileExists(atPath: "\(stateDirectory)/state.json"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: stateDirectory).contains { $0.hasPrefix("state.json.unusable-") })
        #expect(try agent.scrape().status == 200)
        await agent.stop()
    }
}

/// A counter the worker thread bumps and the test reads.
final class ManagedCount: Sendable {
    private let count = Mutex(0)
    func add(_ n: Int) { count.withLock { $0 += n } }
    var value: Int { count.withLock { $0 } }
}

/// An agent that takes frames and never acknowledges them does not hold an emitter's deltas forever.
@Suite struct AcknowledgementTimeoutTests {
    @Test func anEmitterReplacesAConnectionThatIsNeverAcknowledged() throws {
        let silent = try SilentAgent(path: TestAgent.temporarySocketPath())
        defer { silent.stop() }
        let emitter = TestAgent.emitter(socketPath: silent.path, name: "patient")
        try emitter.counter("test_unanswered_total").increment()
        #expect(eventually(timeout: .seconds(10)) { emitter.stats.disconnects >= 1 && silent.connections >= 2 })
        // Reconnected, with the unacknowledged deltas rolled back to be sent again.
        // (The silent agent counts the connection when it accepts it; the emitter's stats catch up at its next flush.)
        #expect(eventually(timeout: .seconds(5)) { emitter.stats.connects >= 2 && emitter.stats.undeliveredSeries == 1 }, "\(emitter.stats)")
        emitter.shutdown(timeout: .milliseconds(100))
    }
}
