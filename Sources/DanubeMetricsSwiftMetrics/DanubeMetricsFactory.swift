import CoreMetrics
import DanubeMetricsCatalog
import DanubeMetricsEmitter
import Logging
import Synchronization

/// A swift-metrics back end that records through a Danube emitter, so Swift code written against swift-metrics
/// reports to the agent: `MetricsSystem.bootstrap(DanubeMetricsFactory(emitter: emitter))`.
///
/// Mapping (names and label names are made Prometheus-safe: other characters become `_`):
/// - `Counter` -> counter, named with `_total` appended when missing; `FloatingPointCounter` accumulates
///   fractions and forwards whole increments (swift-metrics' default); `reset()` is ignored, because the agent
///   sums deltas from many processes and a counter only resets when its process restarts.
/// - `Gauge`/`Meter`/`Recorder(aggregate: false)` -> gauge.
/// - `Recorder` -> histogram with the catalog's buckets (and native buckets) for a catalogued family, else
///   `defaultBuckets`.
/// - `Timer` -> histogram in milliseconds when the name ends in `_ms` or the catalog says milliseconds (the
///   Danube convention; with the catalog's latency native buckets when it does not know the family), else in
///   seconds with `_seconds` appended when missing.
/// A metric the emitter cannot register (a type clash, a full registry) is logged once and records nothing.
/// `destroy` keeps the series: emitter series live as long as the process.
public final class DanubeMetricsFactory: MetricsFactory {
    public let emitter: Emitter
    public let catalog: Catalog
    public let defaultBuckets: [Double]
    /// Buckets for timers in seconds (the catalog's latency buckets, converted).
    public let timerSecondsBuckets: [Double]
    private let logger: Logger
    private let failed = Mutex<Set<String>>([])

    /// Prometheus' default histogram buckets.
    public static let prometheusDefaultBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    public init(emitter: Emitter, catalog: Catalog = BuiltinCatalog.catalog,
                defaultBuckets: [Double] = DanubeMetricsFactory.prometheusDefaultBuckets,
                logger: Logger = Logger(label: "danube.metrics.swift-metrics")) {
        self.emitter = emitter
        self.catalog = catalog
        self.defaultBuckets = defaultBuckets
        timerSecondsBuckets = BuiltinCatalog.latencyBuckets.map { $0 / 1_000 }
        self.logger = logger
    }

    // MARK: MetricsFactory

    public func makeCounter(label: String, dimensions: [(String, String)]) -> CounterHandler {
        var name = Self.metricName(label)
        if !name.hasSuffix("_total") { name += "_total" }
        let handle = register(name) { () throws(EmitterError) in try emitter.counter(name, labels: Self.labels(dimensions)) }
        return handle.map { CounterBackend($0) } ?? NoOpBackend()
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> MeterHandler {
        gauge(label, dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> RecorderHandler {
        guard aggregate else { return gauge(label, dimensions) }
        let name = Self.metricName(label)
        let buckets = catalog.family(named: name)?.buckets ?? defaultBuckets
        let native = catalog.family(named: name)?.native
        let handle = register(name) { () throws(EmitterError) in
            try emitter.histogram(name, buckets: buckets, native: native, labels: Self.labels(dimensions))
        }
        return handle.map { HistogramBackend($0, nanosecondsPerUnit: 1) } ?? NoOpBackend()
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> TimerHandler {
        var name = Self.metricName(label)
        let milliseconds = name.hasSuffix("_ms") || catalog.family(named: name)?.unit == "milliseconds"
        if !milliseconds && !name.hasSuffix("_seconds") { name += "_seconds" }
        let buckets = catalog.family(named: name)?.buckets ?? (milliseconds ? BuiltinCatalog.latencyBuckets : timerSecondsBuckets)
        // Millisecond timers record native buckets as the catalog's latency families do.
        let native = catalog.family(named: name).map(\.native) ?? (milliseconds ? BuiltinCatalog.latencyNative : nil)
        let handle = register(name) { () throws(EmitterError) in
            try emitter.histogram(name, buckets: buckets, native: native, labels: Self.labels(dimensions))
        }
        return handle.map { HistogramBackend($0, nanosecondsPerUnit: milliseconds ? 1e6 : 1e9) } ?? NoOpBackend()
    }

    public func destroyCounter(_ handler: CounterHandler) {}
    public func destroyRecorder(_ handler: RecorderHandler) {}
    public func destroyTimer(_ handler: TimerHandler) {}
    public func destroyMeter(_ handler: MeterHandler) {}

    // MARK: helpers

    private func gauge(_ label: String, _ dimensions: [(String, String)]) -> GaugeBackend & MeterHandler & RecorderHandler {
        let name = Self.metricName(label)
        let handle = register(name) { () throws(EmitterError) in try emitter.gauge(name, labels: Self.labels(dimensions)) }
        return GaugeBackend(handle)
    }

    private func register<Handle>(_ name: String, _ body: () throws(EmitterError) -> Handle) -> Handle? {
        do {
            return try body()
        } catch {
            if failed.withLock({ $0.insert(name).inserted }) {
                logger.error("swift-metrics metric not recorded", metadata: ["metric": "\(name)", "error": "\(error)"])
            }
            return nil
        }
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`: anything else becomes `_`; a leading digit gets a `_` in front.
    static func metricName(_ label: String) -> String { sanitize(label, allowColon: true) }

    static func labels(_ dimensions: [(String, String)]) -> [(String, String)] {
        dimensions.map { (sanitize($0.0, allowColon: false), $0.1) }
    }

    private static func sanitize(_ text: String, allowColon: Bool) -> String {
        var scalars = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            let ok = scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "_" || (allowColon && scalar == ":"))
            scalars.append(ok ? scalar : "_")
        }
        if let first = scalars.first, ("0"..."9").contains(first) || scalars.isEmpty { scalars.insert("_", at: scalars.startIndex) }
        return scalars.isEmpty ? "_" : String(scalars)
    }
}

final class CounterBackend: CounterHandler {
    let counter: DanubeMetricsEmitter.Counter
    init(_ counter: DanubeMetricsEmitter.Counter) { self.counter = counter }
    func increment(by amount: Int64) { if amount > 0 { counter.increment(by: UInt64(amount)) } }
    func reset() {}
}

final class GaugeBackend: MeterHandler, RecorderHandler {
    let gauge: DanubeMetricsEmitter.Gauge?
    init(_ gauge: DanubeMetricsEmitter.Gauge?) { self.gauge = gauge }
    func set(_ value: Int64) { gauge?.set(Double(value)) }
    func set(_ value: Double) { gauge?.set(value) }
    func increment(by amount: Double) { gauge?.add(amount) }
    func decrement(by amount: Double) { gauge?.add(-amount) }
    func record(_ value: Int64) { set(value) }
    func record(_ value: Double) { set(value) }
}

final class HistogramBackend: RecorderHandler, TimerHandler {
    let histogram: DanubeMetricsEmitter.Histogram
    let nanosecondsPerUnit: Double
    init(_ histogram: DanubeMetricsEmitter.Histogram, nanosecondsPerUnit: Double) {
        self.histogram = histogram
        self.nanosecondsPerUnit = nanosecondsPerUnit
    }
    func record(_ value: Int64) { histogram.observe(Double(value)) }
    func record(_ value: Double) { histogram.observe(value) }
    func recordNanoseconds(_ duration: Int64) { histogram.observe(Double(duration) / nanosecondsPerUnit) }
}

final class NoOpBackend: CounterHandler, RecorderHandler, TimerHandler {
    func increment(by: Int64) {}
    func reset() {}
    func record(_ value: Int64) {}
    func record(_ value: Double) {}
    func recordNanoseconds(_ duration: Int64) {}
}
