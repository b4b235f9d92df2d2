import DanubeMetricsWire
import Foundation
import DanubeMetricsTestKit

/// A fake agent that answers HELLO with WELCOME (protocol `version`, 1 by default) and then never acknowledges
/// anything: what an emitter sees of a hung agent, and, with `recordsFrames`, of an old agent (its frames are kept
/// for checks; with `acknowledges` each DEFINE and DELTAS frame is acknowledged as it arrives).
// @unchecked: its mutable state is read and written under `lock` only; `thread` is set once, in `init`.
final class SilentAgent: @unchecked Sendable {
    let path: String
    private let listener: Int32
    private var accepted: [Int32] = []
    private var received: [Frame] = []
    private var stopping = false
    private let lock = NSLock()
    private var thread: Thread?
    /// Signalled when the accepting thread has returned: only then are its descriptors closed (closed earlier, a
    /// number could be reused by the next agent's listener and served by this thread, with this agent's version).
    private let finished = DispatchSemaphore(value: 0)

    init(path: String, recordsFrames: Bool = false, acknowledges: Bool = false, version: UInt16 = 1) throws {
        self.path = path
        let listener = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0)
        self.listener = listener
        let rc = try UnixSocketAddress.withSockaddr(path: path) { bind(listener, $0, $1) }
        guard rc == 0, listen(listener, 8) == 0 else { throw HTTPClient.Failure(description: "bind \(path): errno \(errno)") }
        let finished = finished
        thread = Thread { [weak self] in
            defer { finished.signal() }
            while true {
                let fd = accept(listener, nil, nil)
                guard fd >= 0 else { return }
                self?.lock.withLock {
                    self?.accepted.append(fd)
                    if self?.stopping == true { shutdown(fd, Int32(SHUT_RDWR)) }
                }
                var buffer = [UInt8](repeating: 0, count: 1 << 17)
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                guard n > 0, case .hello? = try? FrameDecoder().decodeFrames(in: Array(buffer[0..<n])).first else { continue }
                let welcome = FrameEncoder.encode(.welcome(Welcome(version: version, maxFrameBytes: 65_536, maxSeries: 1_000, lastAppliedSequence: 0)))
                _ = welcome.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                while recordsFrames {
                    let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    guard n > 0, let frames = try? FrameDecoder().decodeFrames(in: Array(buffer[0..<n])) else { break }
                    self?.lock.withLock { self?.received += frames }
                    for frame in frames where acknowledges {
                        let sequence: UInt64
                        switch frame {
                        case .define(let batch): sequence = batch.sequence
                        case .deltas(let batch): sequence = batch.sequence
                        default: continue
                        }
                        let ack = FrameEncoder.encode(.ack(sequence))
                        _ = ack.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    }
                }
            }
        }
        thread?.start()
    }

    /// Frames received after WELCOME (with `recordsFrames`).
    var frames: [Frame] { lock.withLock { received } }

    /// Connections accepted so far.
    var connections: Int { lock.withLock { accepted.count } }

    /// Stops accepting, ends every connection, and returns once the accepting thread is gone.
    func stop() {
        let first = lock.withLock {
            defer { stopping = true }
            accepted.forEach { shutdown($0, Int32(SHUT_RDWR)) }
            return !stopping
        }
        guard first else { return }
        shutdown(listener, Int32(SHUT_RDWR)) // wakes accept(2)
        finished.wait()
        close(listener)
        lock.withLock { accepted.forEach { close($0) } }
        unlink(path)
    }
}
