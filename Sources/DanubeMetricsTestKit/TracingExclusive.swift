import Foundation

/// One test at a time may record or take spans: the rings of finished spans, the sampling and the emitter that
/// drains them are process-wide, and every suite of `swift test` runs in one process. An async lock (waiting
/// suspends, it holds no thread of the cooperative pool).
// @unchecked: `busy` and `waiters` are touched under `lock` only.
public final class TracingExclusive: @unchecked Sendable {
    public static let shared = TracingExclusive()

    private let lock = NSLock()
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public func run<T>(_ body: () async throws -> T) async rethrows -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            lock.lock()
            if busy {
                waiters.append(continuation)
                lock.unlock()
            } else {
                busy = true
                lock.unlock()
                continuation.resume()
            }
        }
    }

    private func release() {
        lock.lock()
        guard !waiters.isEmpty else {
            busy = false
            lock.unlock()
            return
        }
        let next = waiters.removeFirst()
        lock.unlock()
        next.resume()
    }
}
