#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import DanubeMetricsProcess
import Foundation

/// Who this process is, for HELLO: pid and start time tell a restarted process from the one before it.
enum ProcessIdentity {
    static var pid: Int32 { getpid() }

    /// Start time of this process in Unix milliseconds, from /proc (boot time + start ticks); now if unreadable.
    static func startMillis() -> UInt64 {
        UInt64(((ProcessSnapshot.current()?.startTimeSeconds ?? Date().timeIntervalSince1970) * 1000).rounded())
    }
}
