import DanubeMetricsProcess

/// Reports the emitting process's health as gauges labelled with the emitter's source: CPU in use, resident
/// memory, descriptors against their limit, threads and start time. The agent's own `process_*` metrics describe
/// the agent; these describe the broker, so one dashboard shows both. Sampled on the flusher thread every
/// `interval` (a few small /proc reads), never on the hot path.
final class ProcessReporter {
    static let interval: Duration = .seconds(5)

    private let cpu: Gauge
    private let resident: Gauge
    private let openFileDescriptors: Gauge
    private let maxFileDescriptors: Gauge
    private let threads: Gauge
    private let startTime: Gauge
    private var previous: (at: ContinuousClock.Instant, cpuSeconds: Double)?
    private var nextSample = ContinuousClock.now

    /// The families of `DanubeFamily`'s "Emitter process" area (the emitter does not depend on the catalog).
    static let families: [(name: String, help: String)] = [
        ("danube_process_cpu_usage_cores", "CPU the emitting process used over the last few seconds, in cores (1 = one core busy)."),
        ("danube_process_resident_memory_bytes", "Resident memory of the emitting process."),
        ("danube_process_open_fds", "File descriptors the emitting process has open."),
        ("danube_process_max_fds", "The emitting process's open-file limit."),
        ("danube_process_threads", "Threads of the emitting process."),
        ("danube_process_start_time_seconds", "Start time of the emitting process, in seconds since the Unix epoch."),
    ]

    init(registry: SeriesRegistry, source: String) throws(EmitterError) {
        var gauges: [Gauge] = []
        for family in Self.families {
            let series = try registry.register(kind: .gauge, name: family.name, help: family.help, labels: [("source", source)], bounds: [])
            gauges.append(Gauge(word: series.gaugeWord!))
        }
        (cpu, resident, openFileDescriptors, maxFileDescriptors, threads, startTime) =
            (gauges[0], gauges[1], gauges[2], gauges[3], gauges[4], gauges[5])
    }

    /// Samples when due.
    func sampleIfDue(now: ContinuousClock.Instant = .now) {
        guard now >= nextSample, let process = ProcessSnapshot.current() else { return }
        nextSample = now + Self.interval
        if let previous, now > previous.at {
            cpu.set(max(0, process.cpuSeconds - previous.cpuSeconds) / (now - previous.at).seconds)
        }
        previous = (now, process.cpuSeconds)
        resident.set(process.residentBytes)
        openFileDescriptors.set(process.openFileDescriptors)
        maxFileDescriptors.set(process.maxFileDescriptors)
        threads.set(process.threads)
        startTime.set(process.startTimeSeconds)
    }
}
