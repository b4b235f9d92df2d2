import DanubeMetricsProcess

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
        ProcessSnapshot.current().map { process in
            ProcessMetrics(
                cpuSeconds: process.cpuSeconds, residentBytes: process.residentBytes, virtualBytes: process.virtualBytes,
                openFileDescriptors: process.openFileDescriptors, maxFileDescriptors: process.maxFileDescriptors,
                startTimeSeconds: process.startTimeSeconds)
        }
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
