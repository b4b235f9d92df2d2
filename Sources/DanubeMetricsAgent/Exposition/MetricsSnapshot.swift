import DanubeMetricsWire

/// What one scrape or push shows, taken once: every family with its series, in the order they are shown. The
/// encoders (`TextExposition` for 0.0.4 and OpenMetrics, `ProtobufExposition`, `RemoteWriteEncoder`) read this
/// and nothing else, as metrics-exporter-prometheus' encoders read its `Snapshot`; nothing in the store or in the
/// agent's components writes exposition bytes.
///
/// The store's families point into a captured store state (copy-on-write arrays taken under its lock, not copied
/// per series: a million series cost no allocation per series here); the agent's own families and the gauges the
/// agent derives carry their few samples by value.
struct MetricsSnapshot {
    struct Family: Sendable {
        /// As defined (a counter usually ends in `_total`; the encoders name it per format).
        var name: String
        var kind: MetricKind
        var help: String
        /// A histogram's bucket bounds, without +Inf.
        var bounds: [Double] = []
        var series: Series
    }

    enum Series: Sendable {
        /// Series of `store` by slot, in label order, and the family's native bucket layout.
        case stored(slots: [UInt32], native: NativeHistogramSpec?)
        /// Samples built when the snapshot was taken.
        case listed([Sample])
    }

    struct Sample: Sendable, Equatable {
        /// The label set as `LabelText.encode` writes it (values escaped), the form the store keeps
        /// series in: text formats copy it as it is, the protobuf and remote write encoders read the pairs off it.
        var labels: String
        var value: Value
    }

    enum Value: Sendable, Equatable {
        case counter(integer: UInt64, fraction: Double)
        case gauge(Double)
        /// Per-bucket counts (not cumulative), one more than the family's bounds (the +Inf bucket), and the sum.
        case histogram(bucketCounts: [UInt64], sum: Double)
    }

    var families: [Family] = []
    /// The captured store state that `.stored` families read.
    var store = AggregationStore.State()
    /// The latest exemplars by series slot; empty unless taken for a format that shows them.
    var exemplars: [Int: [ExemplarStore.Exemplar?]] = [:]

    // MARK: families built by hand (the agent's own)

    /// Starts a family; the samples added next belong to it. A family without samples is shown (HELP and TYPE).
    mutating func family(name: String, kind: MetricKind, help: String, bounds: [Double] = []) {
        families.append(Family(name: name, kind: kind, help: help, bounds: bounds, series: .listed([])))
    }

    mutating func counter(labels: String = "", integer: UInt64, fraction: Double = 0) {
        add(Sample(labels: labels, value: .counter(integer: integer, fraction: fraction)))
    }

    mutating func gauge(labels: String = "", value: Double) {
        add(Sample(labels: labels, value: .gauge(value)))
    }

    mutating func histogram(labels: String = "", bucketCounts: [UInt64], sum: Double) {
        add(Sample(labels: labels, value: .histogram(bucketCounts: bucketCounts, sum: sum)))
    }

    private mutating func add(_ sample: Sample) {
        guard let last = families.indices.last, case .listed(var samples) = families[last].series else {
            assertionFailure("a sample added before its family, or to a stored one")
            return
        }
        families[last].series = .listed([]) // the array uniquely referenced while it grows
        samples.append(sample)
        families[last].series = .listed(samples)
    }
}

extension MetricsSnapshot.Value {
    /// A counter's value as one double (exact for integers up to 2^53).
    static func counterValue(integer: UInt64, fraction: Double) -> Double {
        fraction == 0 ? Double(integer) : Double(integer) + fraction
    }
}
