/// The decoded form of each frame. Encoding lives in `FrameEncoder`, decoding in `FrameDecoder`.

/// First frame of a connection, emitter -> agent.
public struct Hello: Sendable, Equatable {
    public var minVersion: UInt16
    public var maxVersion: UInt16
    /// What the source is ("danube-broker", "danube-wal"): shown in logs.
    public var sourceName: String
    public var pid: UInt64
    /// Process start time, Unix milliseconds: together with pid and instance it tells process restarts apart.
    public var processStartMillis: UInt64
    /// Random per emitter instance; stays the same across reconnects of that instance.
    public var instanceID: UInt64
    /// The sequence number of the first frame the emitter will send on this connection.
    public var firstSequence: UInt64

    public init(
        minVersion: UInt16 = WireFormat.supportedVersions.lowerBound,
        maxVersion: UInt16 = WireFormat.supportedVersions.upperBound,
        sourceName: String, pid: UInt64, processStartMillis: UInt64, instanceID: UInt64, firstSequence: UInt64
    ) {
        self.minVersion = minVersion
        self.maxVersion = maxVersion
        self.sourceName = sourceName
        self.pid = pid
        self.processStartMillis = processStartMillis
        self.instanceID = instanceID
        self.firstSequence = firstSequence
    }
}

/// Agent -> emitter answer to HELLO when the agent accepts the source.
public struct Welcome: Sendable, Equatable {
    public var version: UInt16
    public var maxFrameBytes: UInt64
    public var maxSeries: UInt64
    /// Highest sequence the agent already holds for this source instance; 0 when it holds none.
    public var lastAppliedSequence: UInt64

    public init(version: UInt16, maxFrameBytes: UInt64, maxSeries: UInt64, lastAppliedSequence: UInt64) {
        self.version = version
        self.maxFrameBytes = maxFrameBytes
        self.maxSeries = maxSeries
        self.lastAppliedSequence = lastAppliedSequence
    }
}

/// Agent -> emitter: the connection is refused or about to be closed, and why.
public struct Refusal: Sendable, Equatable {
    public var code: RefusalCode
    public var message: String

    public init(code: RefusalCode, message: String) {
        self.code = code
        self.message = message
    }
}

/// One label pair. Series keys keep labels sorted by name.
public struct Label: Sendable, Hashable, Comparable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    public static func < (a: Label, b: Label) -> Bool {
        a.name != b.name ? a.name < b.name : a.value < b.value
    }
}

/// A series definition: sent once per connection, before any delta that refers to its id.
public struct SeriesDefinition: Sendable, Equatable {
    public var id: UInt32
    public var kind: MetricKind
    public var name: String
    public var help: String
    public var labels: [Label]
    /// Histogram upper bounds, strictly increasing and finite; +Inf is implicit. Empty for other kinds.
    public var bounds: [Double]
    /// The exponential buckets a histogram also records (protocol version 3), or nil.
    public var native: NativeHistogramSpec?

    public init(id: UInt32, kind: MetricKind, name: String, help: String, labels: [Label], bounds: [Double] = [],
                native: NativeHistogramSpec? = nil) {
        self.id = id
        self.kind = kind
        self.name = name
        self.help = help
        self.labels = labels
        self.bounds = bounds
        self.native = native
    }

    /// Bucket indexes a HISTOGRAM delta of this series may name: the classic buckets with +Inf, then the zero
    /// bucket and the native window. 0 for counters and gauges.
    public var bucketCount: Int {
        kind == .histogram ? Self.histogramBucketCount(bounds: bounds.count, native: native) : 0
    }

    /// Buckets of a histogram with `bounds` bounds: classic with +Inf, then with native buckets the zero bucket and
    /// the window. The one statement of the layout, for definitions, the store and state files.
    public static func histogramBucketCount(bounds: Int, native: NativeHistogramSpec?) -> Int {
        bounds + 1 + (native.map { 1 + Int($0.maxBuckets) } ?? 0)
    }
}

/// One delta. `value` holds the counter increment, or the IEEE-754 bits of a float increment or gauge value.
/// Histogram deltas name a run of `BucketDelta`s in the batch (sparse: only buckets that changed) and a sum.
public struct Delta: Sendable, Equatable {
    public var op: DeltaOp
    public var seriesID: UInt32
    public var value: UInt64
    public var bucketStart: Int
    public var bucketCount: Int
    public var sum: Double

    public init(op: DeltaOp, seriesID: UInt32, value: UInt64 = 0, bucketStart: Int = 0, bucketCount: Int = 0, sum: Double = 0) {
        self.op = op
        self.seriesID = seriesID
        self.value = value
        self.bucketStart = bucketStart
        self.bucketCount = bucketCount
        self.sum = sum
    }

    public var doubleValue: Double { Double(bitPattern: value) }
}

/// One changed histogram bucket and how many observations it gained: an index into bounds (bounds.count means
/// +Inf), or beyond: bounds.count + 1 is the native zero bucket, bounds.count + 2 + k the native window's bucket k.
public struct BucketDelta: Sendable, Equatable {
    public var index: UInt32
    public var count: UInt64

    public init(index: UInt32, count: UInt64) {
        self.index = index
        self.count = count
    }
}

/// A decoded DELTAS frame.
public struct DeltaBatch: Sendable, Equatable {
    public var sequence: UInt64
    public var deltas: [Delta]
    public var buckets: [BucketDelta]

    public init(sequence: UInt64, deltas: [Delta] = [], buckets: [BucketDelta] = []) {
        self.sequence = sequence
        self.deltas = deltas
        self.buckets = buckets
    }
}

/// A decoded DEFINE frame.
public struct DefineBatch: Sendable, Equatable {
    public var sequence: UInt64
    public var definitions: [SeriesDefinition]

    public init(sequence: UInt64, definitions: [SeriesDefinition]) {
        self.sequence = sequence
        self.definitions = definitions
    }
}

/// Agent -> emitter: this one series was refused; deltas for it will be ignored.
public struct SeriesRefusal: Sendable, Equatable {
    public var seriesID: UInt32
    public var code: RefusalCode
    public var message: String

    public init(seriesID: UInt32, code: RefusalCode, message: String) {
        self.seriesID = seriesID
        self.code = code
        self.message = message
    }
}

/// The latest exemplar of a counter or of one histogram bucket (protocol version 2): the observation or
/// increment that a trace points at.
public struct ExemplarUpdate: Sendable, Equatable {
    public var seriesID: UInt32
    /// A histogram's bucket index (its bound count means +Inf); 0 for a counter.
    public var bucket: UInt32
    public var value: Double
    /// When it was recorded, Unix milliseconds.
    public var timestampMillis: UInt64
    /// Usually `trace_id` and `span_id`; at most `WireFormat.maxExemplarLabelCodePoints` code points in all.
    public var labels: [Label]

    public init(seriesID: UInt32, bucket: UInt32, value: Double, timestampMillis: UInt64, labels: [Label]) {
        self.seriesID = seriesID
        self.bucket = bucket
        self.value = value
        self.timestampMillis = timestampMillis
        self.labels = labels
    }

    /// Why these labels cannot be an exemplar's (OpenMetrics' rules), or nil.
    public static func problem(with labels: [Label]) -> String? {
        let codePoints = labels.reduce(0) { $0 + $1.name.unicodeScalars.count + $1.value.unicodeScalars.count }
        if codePoints > WireFormat.maxExemplarLabelCodePoints {
            return "exemplar labels have \(codePoints) code points, OpenMetrics allows \(WireFormat.maxExemplarLabelCodePoints)"
        }
        if let bad = labels.first(where: { !SeriesRules.isValidLabelName($0.name) }) { return "\"\(bad.name)\" is not a label name" }
        if Set(labels.map(\.name)).count != labels.count { return "exemplar label names repeat" }
        return nil
    }
}

/// Any frame of protocol versions 1 to 4.
public enum Frame: Sendable, Equatable {
    case hello(Hello)
    case welcome(Welcome)
    case refuse(Refusal)
    case define(DefineBatch)
    case deltas(DeltaBatch)
    /// Agent -> emitter: every frame up to and including this sequence has been applied.
    case ack(UInt64)
    case seriesRefused(SeriesRefusal)
    /// Emitter -> agent: a clean shutdown; the last frame sent had this sequence.
    case goodbye(UInt64)
    /// Emitter -> agent, version 2: latest exemplars. Not sequenced or acknowledged: they are samples of traffic,
    /// and a newer one replaces an older one.
    case exemplars([ExemplarUpdate])
    /// Emitter -> agent, version 4: finished spans of sampled traces. Not sequenced or acknowledged (best effort).
    case spans(SpanBatch)

    public var type: FrameType {
        switch self {
        case .hello: return .hello
        case .welcome: return .welcome
        case .refuse: return .refuse
        case .define: return .define
        case .deltas: return .deltas
        case .ack: return .ack
        case .seriesRefused: return .seriesRefused
        case .goodbye: return .goodbye
        case .exemplars: return .exemplars
        case .spans: return .spans
        }
    }
}
