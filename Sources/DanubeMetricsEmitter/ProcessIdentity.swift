#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// Who this process is, for HELLO: pid and start time tell a restarted process from the one before it.
enum ProcessIdentity {
    static var pid: Int32 { getpid() }

    /// Start time of this process in Unix milliseconds, from /proc (boot time + start ticks); now if unreadable.
    static func startMillis() -> UInt64 {
        let fallback = UInt64(Date().timeIntervalSince1970 * 1000)
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")"),
              let boot = try? String(contentsOfFile: "/proc/stat", encoding: .utf8)
        else { return fallback }
        // Fields after "comm)": state is field 3, starttime is field 22.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let ticks = UInt64(fields[19]),
              let line = boot.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
              let bootSeconds = UInt64(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
        else { return fallback }
        let hz = UInt64(max(1, sysconf(Int32(_SC_CLK_TCK))))
        return bootSeconds * 1000 + ticks * 1000 / hz
    }
}
