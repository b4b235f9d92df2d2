#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import DanubeMetricsWire

/// A blocking-free client end of the ingest socket (AF_UNIX, SOCK_SEQPACKET), used only by the flusher thread.
/// Plain POSIX rather than swift-nio: the emitter runs inside other programs and must stay small, and one
/// socket driven by one thread needs no event loop.
final class AgentConnection {
    enum SendResult { case sent, wouldBlock, failed(String) }

    private let fd: Int32
    private let decoder: FrameDecoder
    private var receiveBuffer: [UInt8]
    private(set) var welcome = Welcome(version: 0, maxFrameBytes: 0, maxSeries: 0, lastAppliedSequence: 0)

    private init(fd: Int32, limits: WireLimits) {
        self.fd = fd
        // Larger than any frame: the agent may pack several small frames into one record.
        var receiveLimits = limits
        receiveLimits.maxFrameBytes = max(limits.maxFrameBytes, 1 << 18)
        decoder = FrameDecoder(limits: receiveLimits)
        receiveBuffer = [UInt8](repeating: 0, count: receiveLimits.maxFrameBytes + 1)
    }

    /// Connects, sends HELLO and waits up to `timeoutMillis` for WELCOME (or REFUSE).
    static func open(path: String, hello: Hello, timeoutMillis: Int32, limits: WireLimits) throws(EmitterError) -> AgentConnection {
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw EmitterError(.connectionFailed, "socket(): \(errnoText())") }
        let connection = AgentConnection(fd: fd, limits: limits) // closes fd on every path from here
        let rc: Int32
        do {
            rc = try UnixSocketAddress.withSockaddr(path: path) { address, length in connect(fd, address, length) }
        } catch {
            throw EmitterError(.connectionFailed, "\(error)")
        }
        guard rc == 0 else {
            if errno == EACCES || errno == EPERM {
                throw EmitterError(.notPermitted, "connect(\(path)): \(errnoText()): this process may not write to the agent's socket "
                    + "(the installed agent admits the group danube-metrics: give this user that group, then restart this process)")
            }
            throw EmitterError(.connectionFailed, "connect(\(path)): \(errnoText())")
        }
        guard case .sent = connection.sendBlocking(FrameEncoder.encode(.hello(hello)), timeoutMillis: timeoutMillis) else {
            throw EmitterError(.connectionFailed, "could not send HELLO to \(path)")
        }
        let frames = try connection.receive(timeoutMillis: timeoutMillis)
        guard let frame = frames.first else {
            throw EmitterError(.connectionFailed, "no WELCOME from \(path) within \(timeoutMillis) ms")
        }
        switch frame {
        case .welcome(let welcome): connection.welcome = welcome
        case .refuse(let refusal): throw EmitterError(.refusedByAgent(refusal.code), "agent refused the connection: \(refusal.code): \(refusal.message)")
        default: throw EmitterError(.connectionFailed, "agent answered HELLO with \(frame.type)")
        }
        return connection
    }

    deinit { close(fd) }

    /// Sends one frame without blocking; `.wouldBlock` when the socket buffer is full (the agent is slow).
    func send(_ frame: [UInt8]) -> SendResult {
        let n = frame.withUnsafeBytes { sendRecord(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
        if n == frame.count { return .sent }
        if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return .wouldBlock }
        return .failed(n < 0 ? "send(): \(Self.errnoText())" : "short send of \(n) of \(frame.count) bytes")
    }

    /// Sends, waiting for room up to `timeoutMillis` (used for HELLO and GOODBYE).
    func sendBlocking(_ frame: [UInt8], timeoutMillis: Int32) -> SendResult {
        var result = send(frame)
        if case .wouldBlock = result, wait(events: Int16(POLLOUT), timeoutMillis: timeoutMillis) {
            result = send(frame)
        }
        return result
    }

    /// Receives one record's frames, waiting up to `timeoutMillis` (0: only what is already there); empty when
    /// none came. Throws when the agent closed the connection or sent something undecodable.
    func receive(timeoutMillis: Int32 = 0) throws(EmitterError) -> [Frame] {
        if timeoutMillis > 0 && !wait(events: Int16(POLLIN), timeoutMillis: timeoutMillis) { return [] }
        let n = receiveBuffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if n < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return [] }
            throw EmitterError(.connectionFailed, "recv(): \(Self.errnoText())")
        }
        if n == 0 { throw EmitterError(.connectionFailed, "the agent closed the connection") }
        do {
            return try receiveBuffer.withUnsafeBytes { raw in
                try decoder.decodeFrames(in: UnsafeRawBufferPointer(rebasing: raw[0..<n]))
            }
        } catch {
            throw EmitterError(.connectionFailed, "undecodable frame from the agent: \(error)")
        }
    }

    private func wait(events: Int16, timeoutMillis: Int32) -> Bool {
        var pfd = pollfd(fd: fd, events: events, revents: 0)
        let rc = poll(&pfd, 1, timeoutMillis)
        return rc > 0
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// send(2) under a name the type's own `send` does not shadow, from Glibc or Musl alike.
private func sendRecord(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int, _ flags: Int32) -> Int {
    send(fd, buffer, count, flags)
}
