import DanubeMetricsWire
import Foundation
import DanubeMetricsTestKit
import Testing

/// The agent binary under `systemd-socket-activate` (systemd's own tool for passing LISTEN_FDS) and with a
/// NOTIFY_SOCKET it reports to: real sockets, real processes.
@Suite(.serialized) struct SocketActivationTests {
    private static func freePort() -> Int { unusedPort() }

    private static func log(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    @Test func ingestSocketActivationStartsTheAgentOnFirstConnection() throws {
        let directory = URL(fileURLWithPath: TestAgent.temporarySocketPath()).deletingLastPathComponent()
        let socket = directory.appendingPathComponent("activated-\(UUID().uuidString.prefix(6)).sock").path
        let port = Self.freePort()
        let output = directory.appendingPathComponent("activation-\(port).log").path
        let activator = try ChildProcess("/usr/bin/systemd-socket-activate", [
            "--seqpacket", "-l", socket, "--fdname=ingest",
            Executables.agent.path, "--listen", "127.0.0.1:\(port)",
        ], output: output)
        defer { activator.stop() }
        #expect(eventually { FileManager.default.fileExists(atPath: socket) })
        #expect(!Self.log(output).contains("agent ready")) // nothing runs until somebody connects

        let loadgen = try ChildProcess(Executables.loadgen.path, [
            "--socket", socket, "--messages", "500", "--rate", "0", "--threads", "1",
            "--namespaces", "1", "--topics", "1", "--partitions", "1", "--flush-interval-ms", "20",
        ], output: "/dev/null")
        #expect(ChildProcess.exitedCleanly(loadgen.wait(timeout: .seconds(30))))
        let scraped = try eventually {
            let text = try HTTPClient.get(port: port, path: "/metrics").text
            return Samples(parsing: text).sum("danube_topic_messages_in_total") == 500
        }
        #expect(scraped, "\(Self.log(output))")
        #expect(Self.log(output).contains("socket activation"))
        #expect(ChildProcess.exitedCleanly(activator.stop()))
        // The activated socket belongs to the activator: the agent did not remove it.
        #expect(FileManager.default.fileExists(atPath: socket))
    }

    @Test func httpSocketActivationServesTheQueuedScrape() throws {
        let port = Self.freePort()
        let output = Scratch.path("http-activation", suffix: ".log")
        let activator = try ChildProcess("/usr/bin/systemd-socket-activate", [
            "-l", "127.0.0.1:\(port)", "--fdname=http",
            Executables.agent.path, "--ingest-socket", TestAgent.temporarySocketPath(),
        ], output: output)
        defer { activator.stop() }
        var result: HTTPResult?
        _ = eventually { result = try? HTTPClient.get(port: port, path: "/healthz"); return result != nil }
        #expect(result?.status == 200, "\(Self.log(output))")
    }

    @Test func aSocketOfTheWrongKindIsAClearError() throws {
        let port = Self.freePort()
        let output = Scratch.path("wrong-activation", suffix: ".log")
        let activator = try ChildProcess("/usr/bin/systemd-socket-activate", [
            "-l", "127.0.0.1:\(port)", "--fdname=ingest", Executables.agent.path,
        ], output: output)
        defer { activator.stop() }
        _ = eventually { (try? HTTPClient.get(port: port, path: "/")) != nil || Self.log(output).contains("agent") }
        #expect(eventually { Self.log(output).contains("is not a listening AF_UNIX SOCK_SEQPACKET socket") }, "\(Self.log(output))")
    }

    @Test func notifiesReadyWatchdogAndStopping() throws {
        let notifySocket = Scratch.path("notify", suffix: ".sock")
        let listener = try NotifyListener(path: notifySocket)
        let port = Self.freePort()
        let output = Scratch.path("notify", suffix: ".log")
        let agent = try ChildProcess(Executables.agent.path, [
            "--ingest-socket", TestAgent.temporarySocketPath(), "--listen", "127.0.0.1:\(port)",
        ], environment: ["NOTIFY_SOCKET": notifySocket, "WATCHDOG_USEC": "400000"], output: output)
        defer { agent.stop() }
        let ready = listener.next(timeout: 10)
        #expect(ready?.contains("READY=1") == true, "\(Self.log(output))")
        #expect(ready?.contains("STATUS=0 sources, 0 series") == true)
        var pings = 0
        while pings < 3, let message = listener.next(timeout: 1) {
            if message.contains("WATCHDOG=1") { pings += 1 }
        }
        #expect(pings == 3)

        // A frozen agent stops pinging: that is what makes systemd restart it.
        agent.signal(SIGSTOP)
        listener.drain()
        #expect(listener.next(timeout: 1) == nil)
        agent.signal(SIGCONT)
        #expect(listener.next(timeout: 2)?.contains("WATCHDOG=1") == true)

        agent.signal(SIGTERM)
        var stopping = false
        while let message = listener.next(timeout: 5) {
            if message.contains("STOPPING=1") { stopping = true; break }
        }
        #expect(stopping)
        #expect(ChildProcess.exitedCleanly(agent.wait()))
    }
}

/// The receiving end of NOTIFY_SOCKET: an AF_UNIX datagram socket, as systemd binds it.
final class NotifyListener {
    let fd: Int32
    let path: String

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        let rc = try UnixSocketAddress.withSockaddr(path: path) { bind(fd, $0, $1) }
        guard rc == 0 else { throw HTTPClient.Failure(description: "bind \(path): errno \(errno)") }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// The next notification, or nil when none came within `timeout` seconds.
    func next(timeout: Double) -> String? {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, Int32(timeout * 1000)) > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : nil
    }

    /// Discards what is already queued.
    func drain() {
        while next(timeout: 0) != nil {}
    }
}
