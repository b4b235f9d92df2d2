#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// One reading of this process's resource use from /proc/self (Linux): what the agent serves as the standard
/// `process_*` metrics, and what emitters report for the broker's process. Written by hand: no Swift library
/// reads /proc, and the reading is a few small files (no allocation-free need: it runs every few seconds).
public struct ProcessSnapshot: Equatable, Sendable {
    public var cpuSeconds: Double
    public var residentBytes: Double
    public var virtualBytes: Double
    public var threads: Double
    public var openFileDescriptors: Double
    public var maxFileDescriptors: Double
    /// Start time of the process, in seconds since the Unix epoch.
    public var startTimeSeconds: Double

    /// This process now; nil where /proc cannot be read.
    public static func current() -> ProcessSnapshot? {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let fields = statFields(stat),
              let bootSeconds = bootTimeSeconds()
        else { return nil }
        // Field numbers as in proc(5): utime 14, stime 15, num_threads 20, starttime 22, vsize 23, rss 24 (pages).
        func field(_ number: Int) -> Double { fields.count > number - 3 ? Double(fields[number - 3]) ?? 0 : 0 }
        let ticks = Double(max(1, sysconf(Int32(_SC_CLK_TCK))))
        let pageSize = Double(max(1, sysconf(Int32(_SC_PAGESIZE))))
        // Less the descriptor that lists the directory.
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count).map { max(0, $0 - 1) } ?? 0
        return ProcessSnapshot(
            cpuSeconds: (field(14) + field(15)) / ticks,
            residentBytes: field(24) * pageSize,
            virtualBytes: field(23),
            threads: field(20),
            openFileDescriptors: Double(descriptors),
            maxFileDescriptors: Double(openFileLimit()),
            startTimeSeconds: bootSeconds + field(22) / ticks)
    }

    /// The soft RLIMIT_NOFILE (RLIM_INFINITY reads as a very large number).
    public static func openFileLimit() -> Int {
        var limits = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits) == 0 else { return 1_024 }
        return Int(clamping: min(limits.rlim_cur, rlim_t(Int.max / 2)))
    }

    /// The fields after "(comm)", which may itself hold spaces and parentheses: field 3 (state) comes first.
    private static func statFields(_ stat: String) -> [Substring]? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].split(separator: " ")
    }

    private static func bootTimeSeconds() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("btime ") })
        else { return nil }
        return Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
    }
}
