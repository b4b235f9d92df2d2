import Foundation

/// The agent under measurement, as a separate process: a fresh directory of its own (state, ingest socket), an HTTP
/// port, the benchmarks' common options plus `arguments`. `start` returns once the ingest socket exists; `stop`
/// ends the process and removes the directory.
public final class BenchAgent {
    public let directory: String
    public let port = Int.random(in: 30_000..<40_000)
    public let process = Process()
    public var socketPath: String { "\(directory)/ingest.sock" }

    /// Makes the directory (removing what an earlier run left); start the agent with `start`.
    public init(name: String) {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(getpid())").path
        try? FileManager.default.removeItem(atPath: directory)
        try! FileManager.default.createDirectory(atPath: "\(directory)/state", withIntermediateDirectories: true)
    }

    public func start(path: String, arguments: [String]) {
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["--ingest-socket", socketPath, "--listen", "127.0.0.1:\(port)", "--state-dir", "\(directory)/state",
                             "--log-level", "error", "--max-series-per-family", "10000"] + arguments
        try! process.run()
        while !FileManager.default.fileExists(atPath: socketPath) { usleep(20_000) }
    }

    public func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
