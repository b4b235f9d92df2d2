import Dispatch

/// Results of `DispatchQueue.concurrentPerform`, one slot per iteration, each written by exactly the worker that
/// runs that iteration (so no two threads touch one slot) and read after `concurrentPerform` returns.
// @unchecked: each slot is written by one worker, and read only after `concurrentPerform` returns.
final class ConcurrentResults<Element>: @unchecked Sendable {
    private let storage: UnsafeMutableBufferPointer<Element>

    init(count: Int, initial: Element) {
        storage = .allocate(capacity: count)
        storage.initialize(repeating: initial)
    }

    subscript(index: Int) -> Element {
        get { storage[index] }
        set { storage[index] = newValue }
    }

    var all: [Element] { Array(storage) }

    deinit {
        storage.deinitialize()
        storage.deallocate()
    }
}

extension ConcurrentResults where Element: Sendable {
    /// `work(i)` for every i below `count`, on every core when `parallel`, in order.
    static func map(_ count: Int, parallel: Bool, _ work: @Sendable (Int) -> Element) -> [Element] where Element: ExpressibleByArrayLiteral {
        let results = ConcurrentResults<Element>(count: count, initial: [])
        if parallel {
            DispatchQueue.concurrentPerform(iterations: count) { results[$0] = work($0) }
        } else {
            for i in 0..<count { results[i] = work(i) }
        }
        return results.all
    }
}
