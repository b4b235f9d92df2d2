@testable import DanubeMetricsAgent
import DanubeMetricsTestKit
import Foundation
import Synchronization

/// A remote write receiver on 127.0.0.1 that misbehaves on purpose, one way per instance: what a broken or hostile
/// receiver can do to the agent's sender. Plain sockets and a thread per connection, so that it can do what no real
/// server would (answer byte by byte, stream an endless body, hold a request until released).
final class MisbehavingReceiver: Sendable {
    enum Behaviour: Sendable {
        /// Reads the request and never answers.
        case hang
        /// Answers `status` (with `Retry-After` when given) to every request.
        case status(Int, retryAfter: String? = nil)
        /// Answers 200, one byte every `interval`.
        case byteByByte(interval: Duration)
        /// Answers 200 with a 1 GiB body, streamed until the agent closes the connection.
        case hugeAnswer
        /// Answers 200 at once, except to the first request after `holdNext()`, which it answers only after
        /// `release()`.
        case lateOK
    }

    let port: Int
    let behaviour: Behaviour
    private let listener: Int32
    private let holding = Atomic<Bool>(false)
    private let released = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    private let requestCount = Atomic<Int>(0)
    private let answeredOK = Atomic<Int>(0)
    private let lastHead = Mutex<String?>(nil)
    /// Signalled when the accepting thread has returned: the listener is closed only then (closed earlier, its
    /// number could be reused by another test's socket while the thread still calls accept(2) on it).
    private let acceptLoopDone = DispatchSemaphore(value: 0)

    init(_ behaviour: Behaviour) throws {
        self.behaviour = behaviour
        var bound: (Int32, Int)?
        while bound == nil {
            let port = unusedPort()
            if let fd = boundLoopbackSocket(port: port) { bound = (fd, port) }
        }
        (listener, port) = bound!
        guard listen(listener, 64) == 0 else { throw POSIXError(.EADDRINUSE) }
        let thread = Thread { [self] in
            acceptLoop()
            acceptLoopDone.signal()
        }
        thread.start()
    }

    var url: String { "http://127.0.0.1:\(port)/api/v1/write" }
    /// Requests read whole so far.
    var requests: Int { requestCount.load(ordering: .acquiring) }
    /// The head (request line and headers, lowercased) of the last request read.
    var lastRequestHead: String? { lastHead.withLock { $0 } }
    /// Requests answered 200 so far.
    var accepted: Int { answeredOK.load(ordering: .acquiring) }

    func holdNext() { holding.store(true, ordering: .releasing) }

    func release() { released.store(true, ordering: .releasing) }

    /// Stops accepting and returns once the accepting thread is gone; idempotent.
    func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        shutdown(listener, Int32(SHUT_RDWR)) // wakes accept(2)
        acceptLoopDone.wait()
        close(listener)
    }

    private func acceptLoop() {
        while !stopped.load(ordering: .acquiring) {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            var timeout = timeval(tv_sec: 30, tv_usec: 0)
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            Thread { [self] in
                defer { close(connection) }
                serve(connection)
            }.start()
        }
    }

    private func serve(_ connection: Int32) {
        guard readRequest(connection) else { return }
        requestCount.add(1, ordering: .acquiringAndReleasing)
        switch behaviour {
        case .hang:
            while !stopped.load(ordering: .acquiring), wait(connection) {}
        case .status(let status, let retryAfter):
            let extra = retryAfter.map { "Retry-After: \($0)\r\n" } ?? ""
            if write(connection, "HTTP/1.1 \(status) Misbehaving\r\n\(extra)Content-Length: 0\r\n\r\n"), status == 200 {
                answeredOK.add(1, ordering: .releasing)
            }
        case .byteByByte(let interval):
            for byte in Self.ok.utf8 {
                guard !stopped.load(ordering: .acquiring), sendAll(connection, [byte]) else { return }
                Thread.sleep(forTimeInterval: interval.seconds)
            }
            answeredOK.add(1, ordering: .releasing)
        case .hugeAnswer:
            write(connection, "HTTP/1.1 200 OK\r\nContent-Length: \(1 << 30)\r\n\r\n")
            answeredOK.add(1, ordering: .releasing)
            let chunk = [UInt8](repeating: 0x61, count: 64 * 1_024)
            for _ in 0..<(1 << 14) where !stopped.load(ordering: .acquiring) {
                guard sendAll(connection, chunk) else { return }
            }
        case .lateOK:
            let held = holding.compareExchange(expected: true, desired: false, ordering: .acquiringAndReleasing).exchanged
            while held, !released.load(ordering: .acquiring), !stopped.load(ordering: .acquiring) {
                Thread.sleep(forTimeInterval: 0.01)
            }
            if write(connection, Self.ok) { answeredOK.add(1, ordering: .releasing) }
        }
    }

    private static let ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

    /// Reads a request head and its `Content-Length` body; false when the peer went away first.
    private func readRequest(_ connection: Int32) -> Bool {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1_024)
        var expected: Int?
        while expected.map({ received.count < $0 }) ?? true {
            let n = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return false }
            received += chunk[0..<n]
            if expected == nil, let end = received.firstRange(of: Array("\r\n\r\n".utf8)) {
                let head = String(decoding: received[..<end.lowerBound], as: UTF8.self).lowercased()
                lastHead.withLock { $0 = head }
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                expected = end.upperBound + length
            }
        }
        return true
    }

    /// Waits for the peer to close (false) or for a second to pass (true).
    private func wait(_ connection: Int32) -> Bool {
        var descriptor = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 1_000) == 0
    }

    @discardableResult
    private func write(_ connection: Int32, _ text: String) -> Bool { sendAll(connection, Array(text.utf8)) }

    private func sendAll(_ connection: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { sendBytes(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return false }
            offset += n
        }
        return true
    }
}
