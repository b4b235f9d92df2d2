@testable import DanubeMetricsAgent
import DanubeMetricsTestKit
import Foundation
import Testing

/// A misconfiguration stops the agent at start with one clear line and a non-zero exit, before READY.
@Suite struct StartupChecksTests {
    @Test func aMissingStateDirectoryIsCreatedWithItsParents() async throws {
        let directory = Scratch.path("state") + "/nested/deeper"
        let agent = try await TestAgent { $0.stateDirectory = directory }
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) && isDirectory.boolValue)
        let emitter = agent.emitter()
        try emitter.counter("test_state_created_total").increment()
        #expect(emitter.waitUntilDelivered())
        #expect(FileManager.default.fileExists(atPath: "\(directory)/state.bin"))
        emitter.shutdown()
        await agent.stop()
    }

    /// A second agent on the same ingest path does not steal it, and a path that is not a socket is not replaced.
    @Test func anIngestPathInUseOrNotASocketFailsTheStart() async throws {
        let first = try await TestAgent()
        for path in [first.socketPath, "/etc/hostname"] {
            do {
                let second = try await TestAgent(socketPath: path)
                await second.stop()
                Issue.record("a second agent started on \(path)")
            } catch {
                #expect((error as? AgentConfigurationError)?.code == .ingestSocket, "\(error)")
            }
        }
        #expect(try first.scrape().status == 200)
        await first.stop()
    }

    /// Not a directory, cannot be created, not writable: each stops the start, naming the directory.
    @Test(arguments: ["/etc/hostname", "/proc/danube-metrics-nowhere/state", "/proc/danube-metrics-nowhere", "/proc/self"])
    func anUnusableStateDirectoryFailsTheStart(directory: String) async throws {
        do {
            let agent = try await TestAgent { $0.stateDirectory = directory }
            await agent.stop()
            Issue.record("started with --state-dir \(directory)")
        } catch {
            #expect((error as? AgentConfigurationError)?.code == .stateDirectory, "\(error)")
            #expect("\(error)".components(separatedBy: directory).count == 2, "names the directory once: \(error)")
        }
    }

    @Test func theDaemonExitsNonZeroWithOneLineAndNeverSaysReady() throws {
        let output = Scratch.path("bad-state", suffix: ".log")
        let agent = try ChildProcess(Executables.agent.path, [
            "--ingest-socket", TestAgent.temporarySocketPath(), "--listen", "127.0.0.1:0", "--state-dir", "/etc/hostname",
            "--log-format", "text",
        ], output: output)
        let status = agent.wait(timeout: .seconds(20))
        #expect(!ChildProcess.exitedCleanly(status))
        let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        let lines = log.split(separator: "\n")
        #expect(lines.filter { $0.contains("critical") || $0.contains("error") }.count == 1, "\(log)")
        #expect(log.contains("the state directory /etc/hostname is not a directory"))
        #expect(!log.contains("agent ready"))
    }

    /// Without journald, `--log-format journal` would drop every line: refused at start (this host runs no
    /// journald outside the e2e test's namespaces; where one runs, the agent must start and serve instead).
    @Test func journalLoggingWithoutAJournalIsRefusedAtStart() throws {
        let output = Scratch.path("journal", suffix: ".log")
        let port = unusedPort()
        let agent = try ChildProcess(Executables.agent.path, [
            "--ingest-socket", TestAgent.temporarySocketPath(), "--listen", "127.0.0.1:\(port)", "--log-format", "journal",
        ], output: output)
        defer { agent.stop() }
        if FileManager.default.fileExists(atPath: "/run/systemd/journal/socket") {
            #expect(eventually { (try? HTTPClient.get(port: port, path: "/healthz"))?.status == 200 })
        } else {
            #expect(!ChildProcess.exitedCleanly(agent.wait(timeout: .seconds(20))))
            let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            #expect(log.contains("journald is not reachable at /run/systemd/journal/socket"), "\(log)")
        }
    }

    /// Conventions of other tools: `--log-level warn`, the real error for a negative duration, one option named per
    /// bad value, files that cannot be read or parsed said where and why, a failed bind reported once (no "agent
    /// stopped" first, no stray parenthesis), Prometheus' health paths.
    @Test func conventionsOfOtherExporters() async throws {
        func run(_ arguments: [String]) throws -> (Int32, String) {
            let output = Scratch.path("conventions", suffix: ".log")
            let process = try ChildProcess(Executables.agent.path, arguments, output: output)
            let status = process.wait(timeout: .seconds(20))
            return (status, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
        }
        let badCatalog = Scratch.path("bad-catalog", suffix: ".json")
        try "{\n  \"version\": 1,\n  \"families\": [ {\"name\": \"x\",, }]\n}\n".write(toFile: badCatalog, atomically: true, encoding: .utf8)
        let (warn, _) = try run(["--log-level", "warn", "--print-catalog", "json"])
        #expect(ChildProcess.exitedCleanly(warn))
        let (negative, negativeText) = try run(["--checkpoint-interval", "-5"])
        #expect(!ChildProcess.exitedCleanly(negative))
        #expect(negativeText.contains("The value '-5' is invalid for '--checkpoint-interval"), "\(negativeText)")
        for (arguments, line) in [
            (["--remote-write-url", "http://mimir/push", "--remote-write-header", "Authorization: x"], "--remote-write-header Authorization is set by the agent itself"),
            (["--otlp-endpoint", "http://tempo:4318", "--otlp-basic-auth-user", "u"], "--otlp-basic-auth-user and --otlp-basic-auth-password-file go together"),
            (["--web.config.file", "/nonexistent/web.yml"], "--web.config.file /nonexistent/web.yml: file /nonexistent/web.yml cannot be read: No such file or directory"),
            // Each check names only the option it is about, with the value given.
            (["--max-sources", "-1"], "--max-sources must be at least 1 (got -1)"),
            (["--max-frames-per-second", "-1"], "--max-frames-per-second must not be negative (got -1)"),
            (["--http-request-timeout", "0s"], "--http-request-timeout must be longer than 0 (got 0s)"),
            (["--catalog", "/nonexistent/catalog.json"], "cannot read catalog file /nonexistent/catalog.json: No such file or directory"),
            (["--catalog", badCatalog], "catalog file \(badCatalog), line 3, column 30: expected a key in double quotes, found ','"),
        ] {
            let (status, text) = try run(arguments)
            #expect(!ChildProcess.exitedCleanly(status))
            #expect(text.contains(line), "\(text)")
        }
        let help = try run(["--help"]).1.split(whereSeparator: \.isWhitespace).joined(separator: " ") // as wrapped
        #expect(help.contains("A <duration> is a number with a unit") && help.contains("a bare number is seconds"), "--help says the units")
        for ttl in ["0", "500ms", "400d"] {
            let (status, text) = try run(["--series-ttl", ttl])
            #expect(!ChildProcess.exitedCleanly(status))
            #expect(text.contains("--series-ttl \(ttl) must be between 1s and 365d"), "\(text)")
        }
        let agent = try await TestAgent()
        let (bind, bindText) = try run(["--ingest-socket", TestAgent.temporarySocketPath(), "--listen", "127.0.0.1:\(agent.port)",
                                        "--log-format", "text"])
        #expect(!ChildProcess.exitedCleanly(bind))
        #expect(bindText.contains("cannot listen on 127.0.0.1:\(agent.port): Address already in use (errno 98)"), "\(bindText)")
        #expect(!bindText.contains("agent stopped") && !bindText.contains("in use)"), "\(bindText)")
        for path in ["/-/healthy", "/-/ready", "/healthz"] {
            #expect(try HTTPClient.get(port: agent.port, path: path).status == 200, "\(path)")
        }
        await agent.stop()
    }
}

/// The standard process metrics and the build info every exporter serves; `--version` says the same.
@Suite struct ProcessMetricsTests {
    @Test func aScrapeCarriesProcessMetricsAndBuildInfo() async throws {
        let agent = try await TestAgent()
        let samples = try agent.samples()
        let now = Date().timeIntervalSince1970
        #expect((samples["process_resident_memory_bytes"] ?? 0) > 1_000_000)
        #expect((samples["process_virtual_memory_bytes"] ?? 0) >= (samples["process_resident_memory_bytes"] ?? 1))
        #expect((samples["process_open_fds"] ?? 0) >= 3)
        #expect((samples["process_max_fds"] ?? 0) >= (samples["process_open_fds"] ?? 1))
        #expect((samples["process_cpu_seconds_total"] ?? -1) >= 0)
        // Live heap: more than nothing, less than everything resident plus what is mapped but untouched.
        let heap = samples["danube_agent_heap_in_use_bytes"] ?? 0
        #expect(heap > 100_000 && heap < (samples["process_virtual_memory_bytes"] ?? 0))
        let start = samples["process_start_time_seconds"] ?? 0
        #expect(start > now - 86_400 && start <= now + 1, "\(start) vs now \(now)")
        let buildInfo = samples.values.keys.first { $0.hasPrefix("danube_agent_build_info{") } ?? ""
        #expect(buildInfo.contains("version=\"\(BuildInfo.version)\"") && buildInfo.contains("revision=\"")
                && buildInfo.contains("swift_version=\"\(BuildInfo.swiftVersion)\""), "\(buildInfo)")
        await agent.stop()

        let output = Scratch.path("version", suffix: ".log")
        let version = try ChildProcess(Executables.agent.path, ["--version"], output: output)
        #expect(ChildProcess.exitedCleanly(version.wait()))
        let printed = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(printed.trimmingCharacters(in: .whitespacesAndNewlines) == BuildInfo.line)
        #expect(printed.contains(BuildInfo.version) && printed.contains(BuildInfo.revision) && printed.contains("Swift \(BuildInfo.swiftVersion)"))
    }
}
