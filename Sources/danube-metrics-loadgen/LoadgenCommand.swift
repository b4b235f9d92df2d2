import ArgumentParser
import DanubeMetricsEmitter
import DanubeMetricsWire
import Foundation
import Synchronization

@main
struct LoadgenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "danube-metrics-loadgen",
        abstract: "A simulated Danube cluster that pushes every family of the Danube metric catalog to the agent.",
        discussion: """
            Three emitters (sources "<prefix>-broker", "<prefix>-wal" and "<prefix>-cloud") record through the \
            typed catalog API. Worker threads record each message's path: publish, WAL append with fsync batches \
            and rotations, cloud upload of rotated files (some fail and are retried), dispatch to every \
            subscription, acks and redeliveries; producers and consumers come and go, subscription progress is \
            committed, and the broker goes through a leader election. Even-numbered topics are reliable. With \
            --messages it stops after that many messages per thread, flushes, and (with --report) prints what it \
            recorded as JSON, so totals can be checked at /metrics.
            """)

    @Option(help: ArgumentHelp("Agent ingest socket (default: as the agent's).", valueName: "path"))
    var socket: String?

    @Option(help: "Worker threads recording metrics.")
    var threads = 2

    @Option(help: "Namespaces to simulate.")
    var namespaces = 2

    @Option(help: "Topics per namespace.")
    var topics = 4

    @Option(help: "Partitions per topic.")
    var partitions = 2

    @Option(help: "Messages per second per thread; 0 for as fast as possible.")
    var rate = 2_000

    @Option(help: "Stop after this many messages per thread (default: run until interrupted).")
    var messages: Int?

    @Option(name: .customLong("flush-interval-ms"), help: "Emitter flush interval in milliseconds.")
    var flushIntervalMs = 200

    @Option(name: .customLong("source-prefix"), help: "Prefix of the three source names (<prefix>-broker, <prefix>-wal, <prefix>-cloud).")
    var sourcePrefix = "danube"

    @Flag(help: "Print what was recorded (and delivery statistics) as JSON when done.")
    var report = false

    @Option(name: .customLong("start-delay-ms"), help: "Milliseconds between defining every series (at zero) and the first message, so a scraper sees them empty first.")
    var startDelayMs = 0

    @Option(name: .customLong("record-latencies"), help: ArgumentHelp("Write every producer send latency observed to this file, one per line, when done (for checking quantiles).", valueName: "path"))
    var recordLatencies: String?

    @Option(name: .customLong("trace-ids"), help: ArgumentHelp(
        "Write the trace id of every message traced (one in 1,000: publish, WAL append, dispatch, ack spans) to this file, one per line, when done.",
        valueName: "path"))
    var traceIDs: String?

    @Option(name: .customLong("drain-timeout"), help: "Seconds to wait, when stopping, for the agent to acknowledge everything (reconnecting if it is restarting).")
    var drainTimeout = 2.0

    func validate() throws {
        guard threads > 0, namespaces > 0, topics > 0, partitions > 0 else {
            throw ValidationError("--threads, --namespaces, --topics and --partitions must be positive")
        }
        guard rate >= 0, flushIntervalMs > 0, (messages ?? 1) >= 0, drainTimeout >= 0, startDelayMs >= 0 else {
            throw ValidationError("--rate, --messages and --start-delay-ms must not be negative, --flush-interval-ms must be positive")
        }
        guard recordLatencies == nil || messages != nil else {
            throw ValidationError("--record-latencies needs --messages (the latencies are kept in memory until the end)")
        }
    }

    func run() throws {
        func emitter(_ name: String) -> Emitter {
            var configuration = EmitterConfiguration(sourceName: "\(sourcePrefix)-\(name)")
            if let socket { configuration.socketPath = socket }
            configuration.flushInterval = .milliseconds(flushIntervalMs)
            // The three sources share this process: the broker's emitter reports its health and sends the spans.
            configuration.reportsProcessMetrics = name == "broker"
            configuration.sendsSpans = name == "broker"
            return Emitter(configuration: configuration)
        }
        let broker = emitter("broker")
        let wal = emitter("wal")
        let cloud = emitter("cloud")
        let simulation = try SimulatedBroker(broker: broker, wal: wal, cloud: cloud, namespaces: namespaces, topics: topics, partitions: partitions)
        let stop = StopFlag.shared
        signal(SIGINT) { _ in StopFlag.shared.set() }
        signal(SIGTERM) { _ in StopFlag.shared.set() }
        FileHandle.standardError.write(Data("loadgen: \(threads) threads, \(simulation.partitions.count) partitions, socket \(broker.configuration.socketPath)\n".utf8))

        if startDelayMs > 0 {
            // Every series was resolved above; the first flushes define them, at zero.
            Thread.sleep(forTimeInterval: Double(startDelayMs) / 1_000)
        }
        let tallies = TallyBox(partitions: simulation.partitions.count)
        let edge = try EdgeGateway(emitter: broker)
        let upstream = try UpstreamCallSites(emitter: broker)
        let cluster = Thread { ClusterActivity(simulation: simulation, edge: edge, upstream: upstream).run(stop: stop, done: tallies) }
        cluster.start()
        let workers = (0..<threads).map { index in
            let thread = Thread {
                var worker = Worker(simulation: simulation, seed: UInt64(index + 1), recordsLatencies: recordLatencies != nil)
                let tally = worker.run(messages: messages, rate: rate, stop: stop)
                tallies.add(tally)
            }
            thread.start()
            return thread
        }
        _ = workers
        tallies.waitFor(threads)
        stop.set()
        tallies.waitFor(threads + 1)
        // The three drain at once: stopping takes at most one drain timeout, not three.
        let drain = Duration.milliseconds(Int64(drainTimeout * 1_000))
        let emitters = [("broker", broker), ("wal", wal), ("cloud", cloud)]
        let stats = Mutex<[String: EmitterStats]>([:])
        // One thread each (a dispatch queue would run no more of them at once than there are cores).
        let drained = DispatchGroup()
        for (name, emitter) in emitters {
            drained.enter()
            Thread {
                let result = emitter.shutdown(timeout: drain)
                stats.withLock { $0[name] = result }
                drained.leave()
            }.start()
        }
        drained.wait()
        if let recordLatencies {
            let lines = (tallies.total.sendLatencies ?? []).map { "\($0)\n" }.joined()
            try lines.write(toFile: recordLatencies, atomically: true, encoding: .utf8)
        }
        if let traceIDs {
            try tallies.total.traceIDs.map { "\($0)\n" }.joined().write(toFile: traceIDs, atomically: true, encoding: .utf8)
        }
        if report {
            let recorded = emitters.flatMap { $0.1.recordedTotals() }
            print(tallies.json(simulation: simulation, stats: stats.withLock { $0 }, recorded: recorded))
        }
        let final = stats.withLock { $0 }
        let undelivered = final.values.reduce(0) { $0 + $1.undeliveredSeries }
        if undelivered > 0 {
            let reasons = Set(final.values.compactMap(\.lastError)).sorted().joined(separator: "; ")
            FileHandle.standardError.write(Data("danube-metrics-loadgen: \(undelivered) series not delivered to the agent at \(broker.configuration.socketPath) within the drain timeout (\(drainTimeout) s): \(reasons.isEmpty ? "not acknowledged" : reasons)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// Set from the SIGINT/SIGTERM handler (an atomic store is async-signal-safe), read by the workers.
final class StopFlag: Sendable {
    static let shared = StopFlag()
    private let stopped = Atomic<Bool>(false)
    func set() { stopped.store(true, ordering: .relaxed) }
    var isSet: Bool { stopped.load(ordering: .relaxed) }
}
