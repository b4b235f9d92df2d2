#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A lock and condition variable whose timed waits run on the monotonic clock. Foundation's `NSCondition` waits
/// until a `Date`, that is on the wall clock: a wall-clock step back (NTP, an operator, a VM resumed) in the middle
/// of a wait stretches it by the step, which stalls an emitter's flusher or the agent's checkpoints and remote
/// write for as long. Written by hand because neither Foundation nor Synchronization offers a condition variable
/// with a monotonic timed wait; this is the POSIX one with `pthread_condattr_setclock(CLOCK_MONOTONIC)`.
// @unchecked: a pthread mutex and condition variable, made to be used from many threads; never moved or freed early.
public final class MonotonicCondition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }
    public func signal() { pthread_cond_signal(condition) }
    public func broadcast() { pthread_cond_broadcast(condition) }

    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Waits (holding the lock) until signalled; spurious wake-ups happen, so callers loop on their predicate.
    public func wait() { pthread_cond_wait(condition, mutex) }

    /// Waits (holding the lock) until signalled or `timeout` has passed on the monotonic clock; false when it
    /// passed. Spurious wake-ups happen, so callers loop on their predicate.
    @discardableResult
    public func wait(timeout: Duration) -> Bool {
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        // At most a year: far enough for any caller, and the sum below cannot overflow.
        let (seconds, attoseconds) = min(max(timeout, .zero), .seconds(31_536_000)).components
        var nanoseconds = Int(deadline.tv_nsec) + Int(attoseconds / 1_000_000_000)
        deadline.tv_sec += time_t(seconds) + time_t(nanoseconds / 1_000_000_000)
        nanoseconds %= 1_000_000_000
        deadline.tv_nsec = .init(nanoseconds)
        return pthread_cond_timedwait(condition, mutex, &deadline) == 0
    }
}
