import DanubeMetricsTestKit
import Foundation

/// Test tools from PyPI (Arize Phoenix, a real OpenTelemetry trace backend; opentelemetry-proto, the official OTLP
/// schema; grpcio-tools, protoc for Prometheus' metrics.proto) in a virtual environment the tests make once per machine, under the user's cache directory: the first
/// run installs them (a minute or two), later runs reuse them. Suites running at once wait for one install.
enum PythonTools {
    static let packages = ["arize-phoenix", "opentelemetry-proto", "grpcio-tools"]
    static let directory = (ProcessInfo.processInfo.environment["XDG_CACHE_HOME"] ?? NSHomeDirectory() + "/.cache")
        + "/danube-metrics-agent-tests/venv"

    /// The venv's python, installing the packages first if they are not there yet.
    static func python() throws -> String {
        let marker = directory + "/installed-" + packages.joined(separator: "+")
        try FileManager.default.createDirectory(atPath: (directory as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let fd = open(directory + ".lock", O_CREAT | O_RDWR, 0o644)
        defer { close(fd) }
        flock(fd, LOCK_EX)
        defer { flock(fd, LOCK_UN) }
        if !FileManager.default.fileExists(atPath: marker) {
            try run("/usr/bin/python3", ["-m", "venv", directory])
            try run(directory + "/bin/pip", ["install", "--quiet", "--disable-pip-version-check"] + packages)
            _ = FileManager.default.createFile(atPath: marker, contents: nil)
        }
        return directory + "/bin/python"
    }

    static var phoenix: String { directory + "/bin/phoenix" }

    private static func run(_ executable: String, _ arguments: [String]) throws {
        let log = Scratch.path("pip", suffix: ".log")
        let process = try ChildProcess(executable, arguments, output: log)
        let status = process.wait(timeout: .seconds(900))
        guard ChildProcess.exitedCleanly(status) else {
            throw HTTPClient.Failure(description: "\(executable) \(arguments.joined(separator: " ")) failed: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
    }
}
