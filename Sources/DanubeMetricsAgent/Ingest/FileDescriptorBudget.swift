#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import DanubeMetricsProcess

/// How many emitter connections the process's open-file limit allows. Every connection holds a descriptor; so do
/// the state file and its directory during a checkpoint, the listeners, the event loops, the thread pool, the
/// journal socket and every HTTP connection (up to twice the HTTP cap during a burst). The source cap is kept
/// below the limit by that much, so scrapes and checkpoints never find the table full.
public struct FileDescriptorBudget: Sendable, Equatable {
    /// The soft limit (RLIMIT_NOFILE) the caps are derived from.
    public var limit: Int
    /// Descriptors kept for everything but emitter connections.
    public var reserved: Int

    /// Refused connections that may wait (a second at most) for their peer to read the REFUSE and close.
    public static let lingeringRefusals = 32

    /// Descriptors the agent needs besides emitter connections, with headroom: 64 for its own files, sockets,
    /// event loops and threads, the lingering refusals, and twice the HTTP connection cap.
    public init(limit: Int, httpMaxConnections: Int) {
        self.limit = limit
        reserved = 64 + Self.lingeringRefusals + 2 * httpMaxConnections
    }

    /// The budget of this process now.
    public static func current(httpMaxConnections: Int) -> FileDescriptorBudget {
        FileDescriptorBudget(limit: softLimit(), httpMaxConnections: httpMaxConnections)
    }

    /// Emitter connections allowed at once: the configured cap, lowered to what the limit leaves; 0 when the
    /// limit leaves nothing.
    public func sourceCap(configured: Int) -> Int {
        max(0, min(configured, limit - reserved))
    }

    public static func softLimit() -> Int { ProcessSnapshot.openFileLimit() }

    /// Raises the soft open-file limit to the hard one (what systemd's default of 1024 soft / 524288 hard is
    /// for: a daemon that needs many descriptors raises it itself). Returns the soft limit before and after.
    @discardableResult
    public static func raiseSoftLimit() -> (before: Int, after: Int) {
        var limits = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits) == 0 else { return (1_024, 1_024) }
        let before = Int(clamping: limits.rlim_cur)
        guard limits.rlim_cur < limits.rlim_max else { return (before, before) }
        limits.rlim_cur = limits.rlim_max
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits) == 0 else { return (before, before) }
        return (before, softLimit())
    }
}
