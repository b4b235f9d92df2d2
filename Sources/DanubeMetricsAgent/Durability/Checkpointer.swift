import Foundation
import Logging
import Synchronization
import DanubeMetricsSync

/// What a checkpoint made durable: each source instance's last applied sequence. Delivered to every source
/// connection, which acknowledges up to it.
struct DurableSequences: Sendable {
    var sequences: [UInt64: UInt64]
}

/// Makes the store durable. On its own thread, every `interval` when something changed (or at once when a source
/// is waiting for its WELCOME), it captures the store (copy-on-write, a few microseconds under the lock) with the
/// series changed since the last checkpoint, appends those to the state log (fsync) or, when the log has grown as
/// large as the base (and at the first checkpoint), writes a new base (fsync, rename, fsync of the directory), then
/// publishes that state for `/metrics` and tells every source what is now durable. Sources are acknowledged only then, so a crash at any instant
/// loses nothing an emitter was told was delivered, and `/metrics` never shows a value a restarted agent would
/// not have: counters never go backwards across a crash.
public final class Checkpointer: Sendable {
    /// Called after each checkpoint with what it made durable (and when it fails, never).
    typealias Listener = @Sendable (DurableSequences) -> Void

    private struct Control {
        var waiters: [@Sendable (Bool) -> Void] = []
        var durableChangeCount: UInt64?
        var started = false
        var stopping = false
        var failing = false
        /// Whether the next checkpoint writes a whole base: at first, when the log outgrew the base, after a failure.
        var needsBase = true
        var baseBytes = 0
    }

    private let store: AggregationStore
    private let file: StateFile
    private let interval: Duration
    private let logger: Logger
    private let stats: AgentStats
    private let listener: Listener
    private let control = Mutex(Control())
    /// When the checkpoint in progress started (nil between checkpoints), for the watchdog.
    private let busySince = Mutex<ContinuousClock.Instant?>(nil)
    private let wakeup = MonotonicCondition()
    private let finished = DispatchSemaphore(value: 0)

    init(store: AggregationStore, file: StateFile, interval: Duration, stats: AgentStats, logger: Logger, listener: @escaping Listener) {
        self.store = store
        self.file = file
        self.interval = interval
        self.stats = stats
        self.logger = logger
        self.listener = listener
    }

    /// Publishes the store as restored (the state file already holds it) and starts the checkpoint thread.
    func start() {
        let state = store.capture()
        store.publish(state)
        control.withLock {
            $0.durableChangeCount = state.changes
            $0.started = true
        }
        let thread = Thread { [self] in run() }
        thread.name = "danube-metrics-checkpoint"
        thread.start()
    }

    /// Calls `body` (on the checkpoint thread) once everything applied so far is durable: true after a
    /// successful checkpoint, false when it failed or the agent is stopping.
    func whenDurable(_ body: @escaping @Sendable (Bool) -> Void) {
        let accepted = control.withLock { control -> Bool in
            guard !control.stopping else { return false }
            control.waiters.append(body)
            return true
        }
        guard accepted else { return body(false) }
        wakeup.lock()
        wakeup.signal()
        wakeup.unlock()
    }

    /// True while one checkpoint has been running for longer than `limit` (a write or fsync that hangs): the
    /// watchdog then stops its pings, since sources can no longer be acknowledged.
    func isStuck(longerThan limit: Duration) -> Bool {
        busySince.withLock { $0.map { ContinuousClock.now - $0 > limit } ?? false }
    }

    /// Ends the thread after a last checkpoint of everything applied so far.
    func stop() {
        let (alreadyStopping, started) = control.withLock { control -> (Bool, Bool) in
            defer { control.stopping = true }
            return (control.stopping, control.started)
        }
        guard !alreadyStopping, started else { return }
        wakeup.lock()
        wakeup.signal()
        wakeup.unlock()
        finished.wait()
    }

    private func run() {
        var next = ContinuousClock.now + interval
        while true {
            wakeup.lock()
            while control.withLock({ !$0.stopping && $0.waiters.isEmpty }) && ContinuousClock.now < next {
                wakeup.wait(timeout: next - ContinuousClock.now)
            }
            wakeup.unlock()
            next = ContinuousClock.now + interval
            let (waiters, stopping) = control.withLock { control in
                defer { control.waiters.removeAll() }
                return (control.waiters, control.stopping)
            }
            let ok = checkpoint()
            for waiter in waiters { waiter(ok && !stopping) }
            if stopping { break }
        }
        let late = control.withLock { control in
            defer { control.waiters.removeAll() }
            return control.waiters
        }
        for waiter in late { waiter(false) }
        finished.signal()
    }

    /// Writes the state if it changed since the last durable one; true when the state is durable afterwards.
    @discardableResult
    func checkpoint() -> Bool {
        // Nothing changed since the last durable state: no capture, no write.
        if control.withLock({ $0.durableChangeCount }) == store.changeCount { return true }
        let (needsBase, baseBytes) = control.withLock { ($0.needsBase, $0.baseBytes) }
        let cpuStarted = Self.threadCPUSeconds()
        // The store may ask for a whole base itself (series expired).
        let capture = store.captureForCheckpoint(all: needsBase || file.logSize > max(baseBytes, 1 << 20))
        let started = ContinuousClock.now
        busySince.withLock { $0 = started }
        defer { busySince.withLock { $0 = nil } }
        let (snapshot, changeCount, writeBase): (StoreSnapshot, UInt64, Bool)
        switch capture {
        case .all(let state): (snapshot, changeCount, writeBase) = (store.snapshot(of: state), state.changes, true)
        case .changes(let changes): (snapshot, changeCount, writeBase) = (store.snapshot(of: changes), changes.changes, false)
        }
        let bytes = StateFormat.encode(snapshot, writtenAt: Date().timeIntervalSince1970)
        do {
            if writeBase { try file.write(bytes) } else { try file.append(bytes) }
        } catch {
            // The changes taken with this capture are not durable: the next checkpoint writes everything.
            control.withLock { $0.needsBase = true }
            stats.checkpointFailed()
            let first = control.withLock { control -> Bool in
                defer { control.failing = true }
                return !control.failing
            }
            if first {
                logger.error("cannot write the state file; sources stay unacknowledged and keep their deltas until it works again",
                             metadata: ["state_file": "\(file.path)", "error": "\(error)"])
            }
            return false
        }
        let recovered = control.withLock { control -> Bool in
            defer {
                control.failing = false
                control.durableChangeCount = changeCount
                if writeBase {
                    control.needsBase = false
                    control.baseBytes = bytes.count
                }
            }
            return control.failing
        }
        if recovered { logger.notice("state file written again", metadata: ["state_file": "\(file.path)"]) }
        switch capture {
        case .all(let state): store.publish(state)
        case .changes(let changes): store.publish(changes)
        }
        stats.checkpointed(bytes: bytes.count, seconds: (ContinuousClock.now - started).seconds,
                           cpuSeconds: Self.threadCPUSeconds() - cpuStarted)
        listener(DurableSequences(sequences: Dictionary(uniqueKeysWithValues: snapshot.sources.map { ($0.instance, $0.sequence) })))
        return true
    }

    /// CPU time of the calling thread so far.
    static func threadCPUSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
