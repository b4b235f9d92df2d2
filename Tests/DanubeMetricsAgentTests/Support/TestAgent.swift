import DanubeMetricsAgent
import DanubeMetricsTestKit
import DanubeMetricsEmitter
import Foundation
import Logging
import NIOCore
import Synchronization

/// Log lines captured from an agent under test.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }

    func contains(_ fragments: String...) -> Bool {
        all.contains { line in fragments.allSatisfy { line.contains($0) } }
    }

    var logger: Logger {
        Logger(label: "test-agent") { label in CapturingHandler(capture: self, label: label) }
    }

    private struct CapturingHandler: LogHandler {
        let capture: LogCapture
        let label: String
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        /// The line the agent's logfmt handler writes, so checks read what an operator reads.
        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            capture.append(LineLogHandler.line(.logfmt, label: label, level: event.level, message: event.message, metadata: merged))
        }
    }
}

/// A real agent on a temporary socket and an ephemeral HTTP port.
final class TestAgent: Sendable {
    let agent: Agent
    let logs: LogCapture
    let socketPath: String
    let port: Int

    static func temporarySocketPath() -> String {
        Scratch.path("ingest", suffix: ".sock")
    }

    init(socketPath: String = TestAgent.temporarySocketPath(), gaugeGrace: Duration = .seconds(15),
         configure: (inout AgentConfiguration) -> Void = { _ in }) async throws {
        var configuration = AgentConfiguration(ingestSocketPath: socketPath)
        configuration.httpListen = [ListenAddress(host: "127.0.0.1", port: 0)]
        configuration.gaugeGrace = gaugeGrace
        // Tests' emitters give up on a connection after 1 s without acknowledgement; checkpoint well within it.
        configuration.checkpointInterval = .milliseconds(50)
        configure(&configuration)
        logs = LogCapture()
        agent = try Agent(configuration: configuration, logger: logs.logger)
        try await agent.start()
        self.socketPath = socketPath
        port = agent.httpAddresses.first!.port!
    }

    func stop() async { await agent.stop() }

    func scrape(accept: String? = nil, path: String = "/metrics") throws -> HTTPResult {
        var headers: [(String, String)] = []
        if let accept { headers.append(("Accept", accept)) }
        return try HTTPClient.get(port: port, path: path, headers: headers)
    }

    /// Samples of a Prometheus text scrape.
    func samples() throws -> Samples { Samples(parsing: try scrape().text) }

    /// An emitter that flushes every 20 ms to this agent; without its process metrics unless asked, so tests
    /// see only the series they record.
    /// `spans`: it sends the process's finished spans (process-wide: only tests holding `TracingExclusive` ask).
    func emitter(name: String = "test-emitter", processMetrics: Bool = false, spans: Bool = false) -> Emitter {
        TestAgent.emitter(socketPath: socketPath, name: name, processMetrics: processMetrics, spans: spans)
    }

    static func emitter(socketPath: String, name: String = "test-emitter", processMetrics: Bool = false, spans: Bool = false,
                        logger: Logger = Logger(label: "danube.metrics.emitter")) -> Emitter {
        var configuration = EmitterConfiguration(socketPath: socketPath, sourceName: name)
        configuration.reportsProcessMetrics = processMetrics
        configuration.sendsSpans = spans
        configuration.flushInterval = .milliseconds(20)
        configuration.reconnectBackoff = .milliseconds(10)...(.milliseconds(100))
        configuration.acknowledgementTimeout = .seconds(1)
        return Emitter(configuration: configuration, logger: logger)
    }
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(10), _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: 0.02)
    }
    return try condition()
}

/// A TCP port on 127.0.0.1 nobody listens on now, below Linux's ephemeral range (32768 and up), so that no other
/// test's outgoing connection or port-0 listener can take it before the caller binds it.
func unusedPort() -> Int {
    while true {
        let port = Int.random(in: 10_000..<32_000)
        if let fd = boundLoopbackSocket(port: port) {
            close(fd)
            return port
        }
    }
}

/// A TCP socket bound to 127.0.0.1:`port` (not listening yet), or nil when the port is taken.
func boundLoopbackSocket(port: Int) -> Int32? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    let bound = HTTPClient.withLoopbackAddress(port: port) { bind(fd, $0, $1) }
    if bound == 0 { return fd }
    close(fd)
    return nil
}

/// As `eventually`, for async tests: waits with `Task.sleep`, so it does not hold a thread of Swift's cooperative
/// pool, which other suites' agents need meanwhile (a 2-core machine has two).
func eventuallyAsync(timeout: Duration = .seconds(10), _ condition: () throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try condition()
}
