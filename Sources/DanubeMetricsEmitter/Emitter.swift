import CDanubeCells
import DanubeMetricsWire
/// Part of `histogram(_:buckets:native:labels:help:)`, so callers need not import the wire module.
@_exported import struct DanubeMetricsWire.NativeHistogramSpec
import Foundation
import Logging
import Synchronization
import DanubeMetricsSync

/// How an emitter finds and talks to the agent.
public struct EmitterConfiguration: Sendable {
    /// The agent's ingest socket. Defaults to `DANUBE_METRICS_SOCKET`, else the installed service's socket when it
    /// exists, else the same default path as the agent.
    public var socketPath: String
    /// Shown in the agent's logs ("danube-broker", "danube-wal").
    public var sourceName: String
    /// How often the background flusher sends deltas. Defaults to `DANUBE_METRICS_FLUSH_INTERVAL_MS`, else 200 ms.
    public var flushInterval: Duration = .milliseconds(200)
    /// Reconnect delay: starts at the lower bound, doubles per failure, stops at the upper bound.
    public var reconnectBackoff: ClosedRange<Duration> = .milliseconds(100)...(.seconds(5))
    /// How long a connect waits for the agent's WELCOME.
    public var handshakeTimeout: Duration = .seconds(2)
    /// Frames in flight before the flusher waits for acknowledgements (a slow agent throttles sending, not recording).
    public var maxUnacknowledgedFrames = 256
    /// How long frames may stay unacknowledged before the connection is presumed dead and replaced.
    public var acknowledgementTimeout: Duration = .seconds(10)
    public var limits = WireLimits.default
    /// Whether this emitter reports its process's CPU, memory, descriptors and threads (`danube_process_*`, labelled
    /// with `sourceName`). One emitter per process is enough: turn it off on the others.
    public var reportsProcessMetrics = true
    /// Share of traces recorded, decided at each root span on its trace id (0 to 1; `Span`, docs/TRACING.md).
    public var traceSampleRatio = EmitterConfiguration.defaultTraceSampleRatio
    /// Whether this emitter sends the process's finished spans (they are process-wide, as the sampling is): with
    /// several emitters in one process (one per component), let one send them, or each takes some.
    public var sendsSpans = true
    public static let defaultTraceSampleRatio = 0.01
    /// Keep a span of an unsampled trace anyway when it took at least this long (nil: never; timing every span
    /// costs two clock reads).
    public var traceSlowThreshold: Duration?

    public init(
        socketPath: String = DefaultPaths.emitterSocket(environment: ProcessInfo.processInfo.environment),
        sourceName: String = ProcessInfo.processInfo.processName
    ) {
        self.socketPath = socketPath
        self.sourceName = sourceName
        if let text = ProcessInfo.processInfo.environment[Self.flushIntervalEnvironmentVariable],
           let millis = Int(text), millis > 0 {
            flushInterval = .milliseconds(millis)
        }
    }

    /// Environment variable that sets the default flush interval, in milliseconds.
    public static let flushIntervalEnvironmentVariable = "DANUBE_METRICS_FLUSH_INTERVAL_MS"
}

/// The API a process records metrics with. Resolve handles once (`counter`, `gauge`, `histogram`), keep them,
/// and update them on the hot path; a background thread delivers deltas to the agent every `flushInterval`.
///
///     let emitter = Emitter(configuration: .init(sourceName: "danube-broker"))
///     let messages = try emitter.counter("danube_topic_messages_in_total", labels: [("topic", "orders")])
///     messages.increment()
///     emitter.shutdown()   // final flush
public final class Emitter: Sendable {
    private struct Control {
        var stopping = false
        var shutdownTimeout: Duration = .seconds(2)
        var flushRequested: UInt64 = 0
        var flushCompleted: UInt64 = 0
        var stats = EmitterStats()
    }

    public let configuration: EmitterConfiguration
    let registry: SeriesRegistry
    private let control = Mutex(Control())
    private let wakeup = MonotonicCondition()
    private let finished = DispatchSemaphore(value: 0)
    private let logger: Logger

    public init(configuration: EmitterConfiguration = .init(), logger: Logger = Logger(label: "danube.metrics.emitter")) {
        self.configuration = configuration
        self.logger = logger
        // Sampling is process-wide: an emitter with the defaults leaves it as it is (one process may hold several).
        if configuration.traceSampleRatio != EmitterConfiguration.defaultTraceSampleRatio || configuration.traceSlowThreshold != nil {
            Tracing.configureSampling(ratio: configuration.traceSampleRatio, slow: configuration.traceSlowThreshold)
        }
        registry = SeriesRegistry(limits: configuration.limits)
        let registry = self.registry
        let thread = Thread { [self] in
            // The OS-level name (Foundation's `name` is not one on Linux), for `top -H` and profilers.
            dm_set_thread_name("danube-flusher")
            // Made here: the flusher and the process reporter belong to this thread alone.
            let flusher = Flusher(registry: registry, configuration: configuration, logger: logger)
            let reporter = configuration.reportsProcessMetrics ? Self.processReporter(registry, configuration, logger) : nil
            run(flusher, reporter)
        }
        thread.name = "danube-metrics-flusher"
        thread.start()
    }

    private static func processReporter(_ registry: SeriesRegistry, _ configuration: EmitterConfiguration, _ logger: Logger) -> ProcessReporter? {
        do throws(EmitterError) {
            return try ProcessReporter(registry: registry, source: configuration.sourceName)
        } catch {
            logger.warning("cannot report process metrics", metadata: ["reason": "\(error.message)"])
            return nil
        }
    }

    // MARK: handles

    public func counter(_ name: String, labels: [(String, String)] = [], help: String = "") throws(EmitterError) -> Counter {
        Counter(cell: try registry.register(kind: .counter, name: name, help: help, labels: labels, bounds: []).firstCell)
    }

    public func gauge(_ name: String, labels: [(String, String)] = [], help: String = "") throws(EmitterError) -> Gauge {
        Gauge(word: try registry.register(kind: .gauge, name: name, help: help, labels: labels, bounds: []).gaugeWord!)
    }

    /// A histogram with classic `buckets` and, with `native`, exponential buckets recorded beside them (served to
    /// scrapers that ask for protobuf as Prometheus native histograms). A family's series all use the same
    /// buckets; the agent's catalog decides them for its families (`DanubeMetrics` resolves them from it).
    public func histogram(
        _ name: String, buckets: [Double], native: NativeHistogramSpec? = nil, labels: [(String, String)] = [], help: String = ""
    ) throws(EmitterError) -> Histogram {
        let series = try registry.register(kind: .histogram, name: name, help: help, labels: labels, bounds: buckets, native: native)
        // The handle derives its sum cell: after +Inf, or after the native window.
        assert((series.native.map { $0.pointee.sumCell } ?? UInt32(buckets.count + 1)) == series.countCells)
        return Histogram(firstCell: series.firstCell, classic: series.classic!, native: series.native)
    }

    // MARK: delivery

    /// A copy of the delivery statistics as of the last flush.
    public var stats: EmitterStats { control.withLock { $0.stats } }

    /// Runs one flush now and waits for it (the background thread keeps its own schedule too).
    public func flush() {
        let ticket = control.withLock { state -> UInt64 in
            state.flushRequested += 1
            return state.flushRequested
        }
        wakeup.lock()
        wakeup.signal()
        while control.withLock({ $0.flushCompleted < ticket && !$0.stopping }) {
            wakeup.wait(timeout: .milliseconds(50))
        }
        wakeup.unlock()
    }

    /// Flushes until the agent has acknowledged everything recorded so far, or `timeout` passes.
    /// Returns true when nothing is left undelivered.
    @discardableResult
    public func waitUntilDelivered(timeout: Duration = .seconds(5)) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            flush()
            let stats = self.stats
            if stats.connected && stats.undeliveredSeries == 0 && stats.unacknowledgedFrames == 0 { return true }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return false
    }

    /// Final flush (waiting up to `timeout` for acknowledgements), GOODBYE, and the flusher thread ends.
    /// Handles stay valid but their updates are no longer delivered. The flusher thread keeps the emitter alive
    /// until this is called.
    @discardableResult
    public func shutdown(timeout: Duration = .seconds(2)) -> EmitterStats {
        let alreadyStopping = control.withLock { state -> Bool in
            defer {
                state.stopping = true
                state.shutdownTimeout = timeout
            }
            return state.stopping
        }
        if !alreadyStopping {
            control.withLock { $0.flushRequested += 1 }
            wakeup.lock()
            wakeup.signal()
            wakeup.unlock()
            finished.wait()
        }
        return stats
    }

    private func run(_ flusher: Flusher, _ reporter: ProcessReporter?) {
        while true {
            reporter?.sampleIfDue()
            let (stopping, requested) = control.withLock { ($0.stopping, $0.flushRequested) }
            if stopping {
                finalFlush(flusher)
                finished.signal()
                return
            }
            flusher.flush()
            control.withLock { state in
                state.stats = flusher.stats
                state.flushCompleted = max(state.flushCompleted, requested)
            }
            wakeup.lock()
            wakeup.broadcast()
            let deadline = ContinuousClock.now + configuration.flushInterval
            while control.withLock({ !$0.stopping && $0.flushRequested == requested }), ContinuousClock.now < deadline {
                if !wakeup.wait(timeout: deadline - ContinuousClock.now) { break }
            }
            wakeup.unlock()
        }
    }

    private func finalFlush(_ flusher: Flusher) {
        let deadline = ContinuousClock.now + control.withLock { $0.shutdownTimeout }
        // Until everything is acknowledged or the timeout: reconnecting if the agent went away meanwhile (it may
        // be restarting) or has not come up yet (it may be starting, or socket-activated on the first connect).
        repeat {
            flusher.flush()
            if flusher.stats.connected {
                flusher.awaitAcknowledgements(millis: 20)
            } else {
                Thread.sleep(forTimeInterval: 0.02)
            }
        } while flusher.hasUndelivered && ContinuousClock.now < deadline
        flusher.close()
        let stats = flusher.stats
        control.withLock { state in
            state.stats = stats
            state.flushCompleted = state.flushRequested
        }
        if stats.undeliveredSeries > 0 {
            logger.warning("emitter stopped with undelivered metrics", metadata: ["series": "\(stats.undeliveredSeries)"])
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
