import DanubeMetricsWire
import Foundation
import DanubeMetricsTestKit

/// A hand-driven emitter connection: sends arbitrary bytes as SEQPACKET records and reads what the agent answers.
/// Used to feed the agent malformed, truncated, oversized and out-of-order frames.
// @unchecked: one thread at a time receives (`pending` is its alone); sending is one system call on `fd`.
final class RawSource: @unchecked Sendable {
    let fd: Int32

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var sndbuf: Int32 = 1 << 20
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, socklen_t(MemoryLayout<Int32>.size))
        let rc = try UnixSocketAddress.withSockaddr(path: path) { connect(fd, $0, $1) }
        guard rc == 0 else { throw HTTPClient.Failure(description: "connect \(path): errno \(errno)") }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { sendBytes(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    func send(_ frame: Frame) { send(FrameEncoder.encode(frame)) }

    private var pending: [Frame] = []

    /// The next frame, or nil when the agent closed the connection (or nothing came within 5 s).
    func receive() -> Frame? {
        if pending.isEmpty {
            var buffer = [UInt8](repeating: 0, count: 1 << 18)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return nil }
            pending = (try? FrameDecoder().decodeFrames(in: Array(buffer[0..<n]))) ?? []
        }
        return pending.isEmpty ? nil : pending.removeFirst()
    }

    /// True when the agent has closed the connection (after any frames it sent first).
    func isClosedByAgent() -> Bool {
        for _ in 0..<16 where receive() == nil { return true }
        return false
    }

    /// HELLO + WELCOME with sequences starting at 1.
    @discardableResult
    func handshake(name: String = "raw-source", versions: ClosedRange<UInt16> = WireFormat.supportedVersions, instance: UInt64 = 42) -> Welcome? {
        send(.hello(Hello(minVersion: versions.lowerBound, maxVersion: versions.upperBound, sourceName: name, pid: UInt64(getpid()),
                          processStartMillis: 1, instanceID: instance, firstSequence: 1)))
        if case .welcome(let welcome) = receive() { return welcome }
        return nil
    }
}

/// send(2) under a name no type's `send` method shadows, from Glibc or Musl alike.
func sendBytes(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int, _ flags: Int32) -> Int {
    send(fd, buffer, count, flags)
}
