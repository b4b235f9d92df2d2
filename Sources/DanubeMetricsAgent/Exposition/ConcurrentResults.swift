/// Results of `DispatchQueue.concurrentPerform`, one slot per iteration, each written by exactly the worker that
/// runs that iteration (so no two threads touch one slot) and read after `concurrentPerform` returns.
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
