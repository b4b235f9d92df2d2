import Synchronization

/// Keeps one misbehaving source from flooding the log: per key (source and kind of warning) at most `burst`
/// lines per `window`; the rest are counted, and the next line let through reports how many were suppressed.
public final class WarningLimiter: Sendable {
    private struct Entry {
        var windowStart: ContinuousClock.Instant
        var admitted = 0
        var suppressed = 0
    }

    private let entries = Mutex<[String: Entry]>([:])
    public let burst: Int
    public let window: Duration
    /// Bound on distinct keys; past it the table starts afresh (keys come from sources' names).
    private let maxKeys = 10_000

    public init(burst: Int = 5, window: Duration = .seconds(60)) {
        self.burst = burst
        self.window = window
    }

    /// nil: suppress this warning. Otherwise log it, reporting the returned number of suppressed ones (if > 0).
    public func admit(_ key: String, now: ContinuousClock.Instant = .now) -> Int? {
        entries.withLock { entries in
            if entries.count >= maxKeys && entries[key] == nil { entries.removeAll() }
            var entry = entries[key] ?? Entry(windowStart: now)
            var report = 0
            if now - entry.windowStart >= window {
                report = entry.suppressed
                entry = Entry(windowStart: now)
            }
            defer { entries[key] = entry }
            guard entry.admitted < burst else {
                entry.suppressed += 1
                return nil
            }
            entry.admitted += 1
            return report
        }
    }
}
