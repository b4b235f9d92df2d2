import DanubeMetricsWire
import Foundation
import Synchronization

/// The agent's own counters, rendered under `danube_agent_` next to what sources send. Plain atomics: ingest
/// bumps them once per frame, a scrape reads them once.
public final class AgentStats: Sendable {
    let connectionsAccepted = Atomic<UInt64>(0)
    let sourcesConnected = Atomic<Int>(0)
    let defineFrames = Atomic<UInt64>(0)
    let deltaFrames = Atomic<UInt64>(0)
    let controlFrames = Atomic<UInt64>(0)
    let bytesReceived = Atomic<UInt64>(0)
    let deltasApplied = Atomic<UInt64>(0)
    let deltasIgnored = Atomic<UInt64>(0)
    let connectionsRefused = Mutex<[String: UInt64]>([:])
    let sourcesThrottled = Atomic<UInt64>(0)
    private let errors = Mutex<[RefusalCode: UInt64]>([:])
    private let checkpoints = Mutex(Checkpoints())
    private let scrapes = Mutex(ScrapeDurations())
    let startTime: Double

    /// Reasons a connection is closed for, listed even at zero so dashboards see stable series.
    static let errorReasons: [RefusalCode] = [
        .malformed, .truncated, .oversized, .unsupportedVersion, .outOfOrder, .limitExceeded, .unknownSeries,
        .kindMismatch, .unexpectedFrame,
    ]

    private struct ScrapeDurations {
        static let bounds: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
        var counts = [UInt64](repeating: 0, count: bounds.count + 1)
        var sum: Double = 0
    }

    private struct Checkpoints {
        var written: UInt64 = 0
        var failed: UInt64 = 0
        var lastBytes = 0
        var lastSeconds: Double = 0
        var lastTime: Double = 0
        var cpuSeconds: Double = 0
    }

    /// `cpuSeconds`: what the checkpoint thread spent (`seconds` also counts waiting for the disk).
    func checkpointed(bytes: Int, seconds: Double, cpuSeconds: Double) {
        let now = Date().timeIntervalSince1970
        checkpoints.withLock { state in
            state.written += 1
            state.cpuSeconds += cpuSeconds
            state.lastBytes = bytes
            state.lastSeconds = seconds
            state.lastTime = now
        }
    }

    func checkpointFailed() { checkpoints.withLock { $0.failed += 1 } }

    /// A connection refused before HELLO (peer credentials, source cap), by reason.
    func connectionRefused(_ reason: String) { connectionsRefused.withLock { $0[reason, default: 0] += 1 } }

    public init(startTime: Double) {
        self.startTime = startTime
    }

    func protocolError(_ code: RefusalCode) {
        errors.withLock { $0[code, default: 0] += 1 }
    }

    public func protocolErrors(_ code: RefusalCode) -> UInt64 {
        errors.withLock { $0[code] ?? 0 }
    }

    public var sources: Int { sourcesConnected.load(ordering: .relaxed) }
    public var applied: UInt64 { deltasApplied.load(ordering: .relaxed) }

    func scraped(seconds: Double) {
        scrapes.withLock { state in
            let index = ScrapeDurations.bounds.firstIndex { seconds <= $0 } ?? ScrapeDurations.bounds.count
            state.counts[index] += 1
            state.sum += seconds
        }
    }

    func collect(into snapshot: inout MetricsSnapshot, store: AggregationStore) {
        func counter(_ name: String, _ help: String, _ value: UInt64) {
            snapshot.family(name: name, kind: .counter, help: help)
            snapshot.counter(labels: "", integer: value, fraction: 0)
        }
        func gauge(_ name: String, _ help: String, _ value: Double, labels: String = "") {
            snapshot.family(name: name, kind: .gauge, help: help)
            snapshot.gauge(labels: labels, value: value)
        }
        gauge("danube_agent_build_info", "Build of the running agent: version, source revision, Swift compiler.", 1, labels: BuildInfo.labels)
        gauge("danube_agent_start_time_seconds", "Unix time the agent started.", startTime)
        gauge("danube_agent_sources_connected", "Emitter connections open now.", Double(sources))
        counter("danube_agent_connections_total", "Emitter connections accepted.", connectionsAccepted.load(ordering: .relaxed))
        snapshot.family(name: "danube_agent_frames_received_total", kind: .counter, help: "Frames received from emitters, by frame type.")
        snapshot.counter(labels: "type=\"control\"", integer: controlFrames.load(ordering: .relaxed), fraction: 0)
        snapshot.counter(labels: "type=\"define\"", integer: defineFrames.load(ordering: .relaxed), fraction: 0)
        snapshot.counter(labels: "type=\"deltas\"", integer: deltaFrames.load(ordering: .relaxed), fraction: 0)
        counter("danube_agent_received_bytes_total", "Bytes of frames received from emitters.", bytesReceived.load(ordering: .relaxed))
        counter("danube_agent_deltas_applied_total", "Deltas applied to the store.", deltasApplied.load(ordering: .relaxed))
        counter("danube_agent_deltas_ignored_total", "Deltas for refused series, dropped.", deltasIgnored.load(ordering: .relaxed))
        counter("danube_agent_counts_saturated_total", "Deltas that would have taken a counter or bucket count past 2^63-1; the count stays there.",
                store.saturations)
        snapshot.family(name: "danube_agent_decode_errors_total", kind: .counter, help: "Emitter connections closed for a protocol violation, by reason.")
        let errorCounts = errors.withLock { $0 }
        for reason in Self.errorReasons {
            snapshot.counter(labels: "reason=\"\(reason)\"", integer: errorCounts[reason] ?? 0, fraction: 0)
        }
        snapshot.family(name: "danube_agent_connections_refused_total", kind: .counter, help: "Emitter connections refused before HELLO, by reason.")
        let refused = connectionsRefused.withLock { $0 }
        for reason in ["hello_timeout", "peer_credentials", "too_many_sources"] {
            snapshot.counter(labels: "reason=\"\(reason)\"", integer: refused[reason] ?? 0, fraction: 0)
        }
        counter("danube_agent_source_throttles_total", "Times a source sent frames faster than allowed and was not read for a while.", sourcesThrottled.load(ordering: .relaxed))
        let checkpoint = checkpoints.withLock { $0 }
        counter("danube_agent_checkpoints_total", "State files written (each makes what sources sent durable, then acknowledged).", checkpoint.written)
        counter("danube_agent_checkpoint_failures_total", "State file writes that failed (sources stay unacknowledged meanwhile).", checkpoint.failed)
        gauge("danube_agent_last_checkpoint_timestamp_seconds", "Unix time of the last state file written.", checkpoint.lastTime)
        gauge("danube_agent_last_checkpoint_duration_seconds", "Time the last checkpoint took to encode and write.", checkpoint.lastSeconds)
        snapshot.family(name: "danube_agent_checkpoint_cpu_seconds_total", kind: .counter,
                        help: "CPU time the checkpoints used (capture, encode, write, publish), without waiting for the disk.")
        snapshot.counter(labels: "",
                         integer: UInt64(checkpoint.cpuSeconds), fraction: checkpoint.cpuSeconds - checkpoint.cpuSeconds.rounded(.down))
        gauge("danube_agent_last_checkpoint_bytes", "Bytes the last checkpoint wrote: a whole base, or a log record of what changed.", Double(checkpoint.lastBytes))
        gauge("danube_agent_series", "Series held in the store.", Double(store.seriesCount))
        counter("danube_agent_series_expired_total", "Series forgotten after --series-ttl with no update and no emitter connected that defined them.",
                store.expiredSeries)
        gauge("danube_agent_series_limit", "Most series the store holds (--max-series); new ones beyond are refused.", Double(store.limits.maxSeries))
        gauge("danube_agent_series_memory_bytes", "Memory the series take: labels, values, buckets and native windows, live and published.",
              Double(store.heldBytes))
        counter("danube_agent_native_buckets_dropped_total",
                "Native bucket counts dropped: new to their window while the series took their memory limit (the series is then served classic only).",
                store.nativeBucketsDropped)
        gauge("danube_agent_exemplar_memory_bytes", "Memory the latest exemplars take.", Double(store.exemplars.bytes))
        counter("danube_agent_exemplars_dropped_total", "Exemplars dropped: the exemplars took their memory limit already.", store.exemplars.dropped)
        gauge("danube_agent_series_memory_limit_bytes", "Most memory the series may take (--memory-limit); new ones beyond are refused.",
              Double(store.limits.maxBytes))
        gauge("danube_agent_families", "Metric families held in the store.", Double(store.familyCount))
        let durations = scrapes.withLock { $0 }
        snapshot.family(name: "danube_agent_scrape_duration_seconds", kind: .histogram, help: "Time to render /metrics.",
                        bounds: ScrapeDurations.bounds)
        snapshot.histogram(bucketCounts: durations.counts, sum: durations.sum)
    }
}
