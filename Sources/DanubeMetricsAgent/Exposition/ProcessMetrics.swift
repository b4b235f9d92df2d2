import CMalloc
import DanubeMetricsProcess

/// The standard `process_*` metrics every Prometheus exporter serves (the names client_golang and
/// client_python use), read from /proc/self at each scrape (`ProcessSnapshot`: a handful of small reads).
/// Beside them, `danube_agent_heap_in_use_bytes`: what the allocator holds for live objects, which tells the
/// agent's own memory apart from freed memory the allocator keeps (RSS counts both).
struct ProcessMetrics: Equatable {
    let process: ProcessSnapshot
    /// Bytes of live allocations (glibc's `mallinfo2`); nil on other C libraries.
    var heapInUseBytes: Double?

    /// This process now; nil where /proc cannot be read.
    static func current() -> ProcessMetrics? {
        ProcessSnapshot.current().map { ProcessMetrics(process: $0, heapInUseBytes: heapInUse()) }
    }

    static func heapInUse() -> Double? {
        let bytes = dm_heap_in_use()
        return bytes < 0 ? nil : Double(bytes)
    }

    func collect(into snapshot: inout MetricsSnapshot) {
        func gauge(_ name: String, _ help: String, _ value: Double) {
            snapshot.family(name: name, kind: .gauge, help: help)
            snapshot.gauge(labels: "", value: value)
        }
        let cpuSeconds = process.cpuSeconds
        snapshot.family(name: "process_cpu_seconds_total", kind: .counter, help: "Total user and system CPU time spent in seconds.")
        snapshot.counter(labels: "", integer: UInt64(cpuSeconds),
                         fraction: cpuSeconds - cpuSeconds.rounded(.down))
        gauge("process_resident_memory_bytes", "Resident memory size in bytes.", process.residentBytes)
        gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", process.virtualBytes)
        gauge("process_open_fds", "Number of open file descriptors.", process.openFileDescriptors)
        gauge("process_max_fds", "Maximum number of open file descriptors.", process.maxFileDescriptors)
        gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", process.startTimeSeconds)
        if let heapInUseBytes {
            gauge("danube_agent_heap_in_use_bytes",
                  "Bytes the agent's allocator holds for live objects; resident memory minus this is freed memory not yet returned.",
                  heapInUseBytes)
        }
    }
}
