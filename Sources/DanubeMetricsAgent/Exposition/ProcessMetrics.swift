#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// The standard `process_*` metrics every Prometheus exporter serves (the names client_golang and
/// client_python use), read from /proc/self at each scrape: a handful of small reads.
struct ProcessMetrics: Equatable {
    var cpuSeconds: Double
    var residentBytes: Double
    var virtualBytes: Double
    var openFileDescriptors: Double
    var maxFileDescriptors: Double
    var startTimeSeconds: Double

    /// This process now; nil where /proc cannot be read.
    static func current() -> ProcessMetrics? {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")"),
              let boot = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let bootLine = boot.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
              let bootSeconds = Double(bootLine.dropFirst(6).trimmingCharacters(in: .whitespaces))
        else { return nil }
        // Fields after "comm)": state is field 3; utime 14, stime 15, starttime 22, vsize 23, rss 24 (pages).
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        func field(_ number: Int) -> Double { fields.count > number - 3 ? Double(fields[number - 3]) ?? 0 : 0 }
        let ticks = Double(max(1, sysconf(Int32(_SC_CLK_TCK))))
        let pageSize = Double(max(1, sysconf(Int32(_SC_PAGESIZE))))
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count).map { max(0, $0 - 1) } ?? 0
        return ProcessMetrics(
            cpuSeconds: (field(14) + field(15)) / ticks,
            residentBytes: field(24) * pageSize,
            virtualBytes: field(23),
            openFileDescriptors: Double(descriptors),  // less the one listing the directory
            maxFileDescriptors: Double(FileDescriptorBudget.softLimit()),
            startTimeSeconds: bootSeconds + field(22) / ticks)
    }

    func render(into writer: inout ExpositionWriter) {
        func gauge(_ name: String, _ help: String, _ value: Double) {
            writer.family(name: name, kind: .gauge, help: help)
            writer.gauge(name, labels: "", value: value)
        }
        writer.family(name: "process_cpu_seconds_total", kind: .counter, help: "Total user and system CPU time spent in seconds.")
        writer.counter(writer.counterSampleName("process_cpu_seconds_total"), labels: "", integer: UInt64(cpuSeconds),
                       fraction: cpuSeconds - cpuSeconds.rounded(.down))
        gauge("process_resident_memory_bytes", "Resident memory size in bytes.", residentBytes)
        gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", virtualBytes)
        gauge("process_open_fds", "Number of open file descriptors.", openFileDescriptors)
        gauge("process_max_fds", "Maximum number of open file descriptors.", maxFileDescriptors)
        gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", startTimeSeconds)
    }
}
