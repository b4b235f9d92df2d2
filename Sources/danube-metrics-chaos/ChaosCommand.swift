import ArgumentParser
import DanubeMetricsTestKit
import Foundation

@main
struct ChaosCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "danube-metrics-chaos",
        abstract: "Kill the agent again and again while emitters push, then check that /metrics equals what they recorded.",
        discussion: """
            Starts the agent (with a state directory) and several load generator processes, then for --duration \
            seconds: lets the agent run a random while, kills it with SIGKILL, restarts it (binding its own \
            socket, or socket-activated from a listener this command holds the way systemd does), and every few \
            kills stops one emitter process gracefully and starts a new one (a new source). At the end it stops \
            every emitter, sums what they report they recorded, and compares every counter and every histogram \
            bucket and count on /metrics with it, exactly (histogram sums, being floating point, to 1e-9 \
            relative). Exits 1 on any difference.
            """)

    @Option(help: "Seconds of chaos.")
    var duration = 60.0

    @Option(help: "Emitter (load generator) processes running at once.")
    var emitters = 3

    @Option(help: "Messages per second per emitter process.")
    var rate = 500

    @Option(name: .customLong("min-uptime"), help: "Shortest time the agent runs before it is killed, seconds.")
    var minUptime = 0.1

    @Option(name: .customLong("max-uptime"), help: "Longest time the agent runs before it is killed, seconds.")
    var maxUptime = 1.5

    @Option(name: .customLong("emitter-restart-every"), help: "Replace one emitter process every this many kills (0: never).")
    var emitterRestartEvery = 3

    enum Activation: String, ExpressibleByArgument, CaseIterable { case plain, activated, mixed }

    @Option(help: "How the agent gets its ingest socket: plain (binds it), activated (passed in), mixed (random per start).")
    var activation = Activation.mixed

    @Option(name: .customLong("emitter-command"), help: ArgumentHelp(
        "Run this program as the emitter instead of danube-metrics-loadgen (e.g. the Rust crate's broker example). It gets --socket, --rate, --source-name, --flush-interval-ms, --drain-timeout and --report, stops on SIGTERM after draining, and prints a report whose \"recorded\" object maps samples to the values /metrics must show.",
        valueName: "path"))
    var emitterCommand: String?

    @Option(help: "Seed of the random schedule.")
    var seed: UInt64 = 1

    @Option(name: .customLong("work-dir"), help: "Directory for the state, sockets and logs (default: a new one under /tmp).")
    var workDirectory: String?

    func validate() throws {
        guard duration > 0, emitters > 0, rate > 0, minUptime > 0, maxUptime >= minUptime, emitterRestartEvery >= 0 else {
            throw ValidationError("--duration, --emitters, --rate and the uptimes must be positive, --max-uptime at least --min-uptime")
        }
    }

    func run() throws {
        let directory = workDirectory ?? "/tmp/danube-metrics-chaos-\(getpid())"
        try FileManager.default.createDirectory(atPath: "\(directory)/state", withIntermediateDirectories: true)
        let harness = try Harness(directory: directory, rate: rate, seed: seed, emitterCommand: emitterCommand)
        defer { harness.cleanUp() }
        let started = ContinuousClock.now
        var random = harness.random
        func startAgent() throws {
            let activated: Bool
            switch activation {
            case .plain: activated = false
            case .activated: activated = true
            case .mixed: activated = random.next(below: 2) == 1
            }
            try harness.startAgent(activated: activated)
        }
        try startAgent()
        try harness.waitUntilAgentServes()
        for index in 0..<emitters { try harness.startEmitter(index) }
        var kills = 0
        while ContinuousClock.now - started < .milliseconds(Int64(duration * 1_000)) {
            Thread.sleep(forTimeInterval: minUptime + Double(random.next(below: 1_000)) / 1_000 * (maxUptime - minUptime))
            harness.killAgent()
            kills += 1
            Thread.sleep(forTimeInterval: Double(random.next(below: 300)) / 1_000)
            try startAgent()
            if emitterRestartEvery > 0 && kills % emitterRestartEvery == 0 {
                try harness.replaceEmitter(Int(random.next(below: UInt64(emitters))))
            }
            harness.reapStoppedEmitters()
        }
        try harness.waitUntilAgentServes()
        let reports = try harness.stopAllEmitters()
        let verdict = try harness.compare(expected: Report.expected(from: reports))
        let native = try harness.nativeHistogramProblems()
        let seconds = (ContinuousClock.now - started).components.seconds
        print("""
            danube-metrics-chaos: \(seconds) s, \(kills) SIGKILLs of the agent (\(harness.activatedStarts) of \(harness.agentStarts) \
            starts socket-activated), \(reports.count) emitter processes (\(harness.replacedEmitters) replaced), \
            \(Int(Report.messages(in: reports))) messages recorded
            compared \(verdict.compared) samples (\(verdict.counterSamples) counter, \(verdict.histogramSamples) histogram \
            bucket/count/sum): \(verdict.mismatches.count) differ; counter total \(Int(verdict.counterTotal)) recorded, \
            \(Int(verdict.counterTotalShown)) on /metrics
            """)
        for line in verdict.mismatches.prefix(10) { print("  differs: \(line)") }
        print("native histograms (protobuf scrape): \(native.checked) latency histograms, \(native.problems.count) incomplete")
        for line in native.problems.prefix(10) { print("  incomplete: \(line)") }
        // Every line every agent process printed, restarts and SIGKILLs included, is a logfmt entry.
        let log = (try? String(contentsOfFile: "\(directory)/agent.log", encoding: .utf8)) ?? ""
        let logLines = log.split(separator: "\n").count
        let badLines = Logfmt.badEntries(in: log)
        print("agent log: \(logLines) lines, \(badLines.count) not logfmt entries (ts, level, logger, msg first)")
        for line in badLines.prefix(10) { print("  not logfmt: \(line)") }
        if !verdict.mismatches.isEmpty || verdict.compared == 0 || !native.problems.isEmpty || !badLines.isEmpty || logLines < kills {
            print("logs in \(directory)")
            throw ExitCode.failure
        }
        if workDirectory == nil {
            harness.cleanUp()
            try? FileManager.default.removeItem(atPath: directory)  // kept only when something differed
        }
    }
}
