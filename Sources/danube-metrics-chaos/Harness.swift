import DanubeMetricsTestKit
import DanubeMetricsWire
import Foundation

/// The processes of a chaos run: one agent (restarted after every SIGKILL) and the emitter processes, with the
/// listener this command holds for socket-activated starts, as systemd's socket unit would.
final class Harness {
    let directory: String
    let socketPath: String
    let port: Int
    let binaries: String
    let rate: Int
    /// A program to run as the emitter instead of the load generator (see `--emitter-command`).
    let emitterCommand: String?
    var random: SplitMix
    private var agent: ChildProcess?
    private var heldListener: Int32?
    private var emitters: [Int: ChildProcess] = [:]
    private var stopping: [(process: ChildProcess, report: String)] = []
    private var finishedReports: [String] = []
    private var generation = 0
    private(set) var agentStarts = 0
    private(set) var activatedStarts = 0
    private(set) var replacedEmitters = 0

    init(directory: String, rate: Int, seed: UInt64, emitterCommand: String? = nil) throws {
        self.directory = directory
        self.rate = rate
        self.emitterCommand = emitterCommand
        socketPath = "\(directory)/ingest.sock"
        random = SplitMix(seed: seed)
        port = 20_000 + Int(getpid() % 20_000)
        binaries = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            .deletingLastPathComponent().path
    }

    // MARK: agent

    func startAgent(activated: Bool) throws {
        let agentPath = "\(binaries)/danube-metrics-agent"
        let arguments = ["--ingest-socket", socketPath, "--listen", "127.0.0.1:\(port)", "--state-dir", "\(directory)/state",
                         "--log-format", "logfmt"]
        agentStarts += 1
        if activated {
            activatedStarts += 1
            let listener = try heldListener ?? listen()
            heldListener = listener
            // systemd sets LISTEN_PID after fork; a shell that execs the agent keeps its pid.
            agent = try ChildProcess("/bin/sh", ["-c", "LISTEN_PID=$$ exec \"$0\" \"$@\"", agentPath] + arguments,
                                     environment: ["LISTEN_FDS": "1", "LISTEN_FDNAMES": "ingest"],
                                     output: "\(directory)/agent.log", extraFileDescriptors: [listener])
        } else {
            if let listener = heldListener {
                close(listener)
                unlink(socketPath)
                heldListener = nil
            }
            agent = try ChildProcess(agentPath, arguments, output: "\(directory)/agent.log")
        }
    }

    func killAgent() {
        agent?.signal(SIGKILL)
        agent?.wait()
    }

    /// The ingest listener systemd's socket unit would hold: it outlives every agent process started on it.
    private func listen() throws -> Int32 {
        unlink(socketPath)
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        let rc = try UnixSocketAddress.withSockaddr(path: socketPath) { bind(fd, $0, $1) }
        guard fd >= 0, rc == 0, listenOn(fd, 256) == 0 else {
            throw HTTPClient.Failure(description: "cannot listen on \(socketPath): errno \(errno)")
        }
        return fd
    }

    func waitUntilAgentServes() throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if (try? HTTPClient.get(port: port, path: "/healthz"))?.status == 200 { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw HTTPClient.Failure(description: "the agent did not serve /healthz within 30 s; see \(directory)/agent.log")
    }

    // MARK: emitters

    func startEmitter(_ slot: Int) throws {
        generation += 1
        let report = "\(directory)/emitter-\(generation).json"
        let common = ["--socket", socketPath, "--rate", "\(rate)", "--flush-interval-ms", "100", "--report", "--drain-timeout", "120"]
        if let emitterCommand {
            emitters[slot] = try ChildProcess(emitterCommand, common + ["--source-name", "chaos-\(generation)"],
                                              output: report, errors: "\(directory)/emitter-\(generation).log")
        } else {
            emitters[slot] = try ChildProcess("\(binaries)/danube-metrics-loadgen", common + [
                "--threads", "1", "--namespaces", "1", "--topics", "2", "--partitions", "2", "--source-prefix", "chaos-\(generation)",
            ], output: report, errors: "\(directory)/emitter-\(generation).log")
        }
        reports[slot] = report
    }

    private var reports: [Int: String] = [:]

    /// Stops the emitter in `slot` gracefully (it drains and reports) and starts a new process, a new source.
    func replaceEmitter(_ slot: Int) throws {
        if let process = emitters[slot], let report = reports[slot] {
            process.signal(SIGTERM)
            stopping.append((process, report))
        }
        replacedEmitters += 1
        try startEmitter(slot)
    }

    func reapStoppedEmitters() {
        stopping.removeAll { entry in
            guard !entry.process.isRunning else { return false }
            finishedReports.append(entry.report)
            return true
        }
    }

    /// Stops every emitter (each drains to the running agent) and returns their reports.
    func stopAllEmitters() throws -> [[String: Any]] {
        for process in emitters.values { process.signal(SIGTERM) }
        let all = stopping + emitters.keys.map { (emitters[$0]!, reports[$0]!) }
        var paths = finishedReports
        for (process, report) in all {
            let status = process.wait(timeout: .seconds(180))
            guard ChildProcess.exitedCleanly(status) else {
                throw HTTPClient.Failure(description: "emitter with report \(report) ended with status \(status)")
            }
            paths.append(report)
        }
        emitters.removeAll()
        stopping.removeAll()
        return try paths.map { path in
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            guard let report = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw HTTPClient.Failure(description: "\(path) is not a report")
            }
            return report
        }
    }

    // MARK: verdict

    func compare(expected: [String: Double]) throws -> Verdict {
        // /metrics shows the last durable state: give the agent a few checkpoints to catch up.
        var verdict = Verdict()
        let deadline = ContinuousClock.now + .seconds(15)
        repeat {
            verdict = Verdict(expected: expected, shown: Samples(parsing: try HTTPClient.get(port: port, path: "/metrics").text))
            if verdict.mismatches.isEmpty { break }
            Thread.sleep(forTimeInterval: 0.2)
        } while ContinuousClock.now < deadline
        return verdict
    }

    /// The latency histograms of a protobuf scrape (what Prometheus with native histograms reads): how many there
    /// are, and the ones whose native buckets are missing or do not hold every observation (the agent lost or
    /// double-applied native deltas across its SIGKILLs, or could not restore them).
    func nativeHistogramProblems() throws -> (checked: Int, problems: [String]) {
        let accept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
        let body = try HTTPClient.get(port: port, path: "/metrics", headers: [("Accept", accept)]).body
        var problems: [String] = []
        let histograms = ProtobufMessage.histograms(in: body) { $0.hasSuffix("_ms") }
        for (family, histogram) in histograms {
            let count = histogram.varint(1) ?? 0
            guard let buckets = histogram.nativeBuckets else {
                problems.append("\(family): a histogram of \(count) observations has no native buckets")
                continue
            }
            let native = (histogram.varint(7) ?? 0) + buckets.values.reduce(0, +)
            if native != count { problems.append("\(family): native buckets hold \(native) of \(count) observations") }
        }
        return (histograms.count, problems)
    }

    /// Stops every process and closes the held listener; safe to call more than once.
    func cleanUp() {
        for process in emitters.values { process.signal(SIGKILL); process.wait() }
        emitters.removeAll()
        agent?.stop()
        agent = nil
        if let heldListener { close(heldListener) }
        heldListener = nil
    }
}

/// listen(2) under a name the type's own `listen` does not shadow, from Glibc or Musl alike.
private func listenOn(_ fd: Int32, _ backlog: Int32) -> Int32 {
    listen(fd, backlog)
}
