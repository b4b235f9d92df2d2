/// Protocol constants. `docs/PROTOCOL.md` specifies every byte; keep the two in step.
public enum WireFormat {
    /// The first four bytes of every HELLO body: "DNBM".
    public static let magic: [UInt8] = [0x44, 0x4E, 0x42, 0x4D]
    /// Protocol versions this build speaks. Version 2 adds EXEMPLARS frames, version 3 native histograms
    /// (definition kind 4), version 4 SPANS frames; everything else is as in version 1.
    public static let supportedVersions: ClosedRange<UInt16> = 1...4
    /// The first version with EXEMPLARS frames.
    public static let exemplarsVersion: UInt16 = 2
    /// The first version whose histograms may carry native buckets.
    public static let nativeHistogramsVersion: UInt16 = 3
    /// The first version with SPANS frames. An agent that exports no traces speaks at most the version before.
    public static let spansVersion: UInt16 = 4
    /// DEFINE's kind byte for a histogram with native buckets (version 3): decoded as `.histogram` with `native`.
    public static let nativeHistogramKindByte: UInt8 = 4
    /// OpenMetrics' limit on an exemplar's label set: names and values together, in code points.
    public static let maxExemplarLabelCodePoints = 128
    /// Bytes in front of every frame body: u32 length (LE) + u8 type + u8 flags.
    public static let headerSize = 6
}

/// The type byte of a frame.
public enum FrameType: UInt8, Sendable, CaseIterable {
    case hello = 0x01
    case welcome = 0x02
    case refuse = 0x03
    case define = 0x10
    case deltas = 0x11
    case ack = 0x12
    case seriesRefused = 0x13
    case goodbye = 0x14
    case exemplars = 0x15
    case spans = 0x16
}

/// What a series is. The agent keeps counters as sums, gauges as last values, histograms as bucket counts.
public enum MetricKind: UInt8, Sendable, CustomStringConvertible {
    case counter = 1
    case gauge = 2
    case histogram = 3

    public var description: String {
        switch self {
        case .counter: return "counter"
        case .gauge: return "gauge"
        case .histogram: return "histogram"
        }
    }
}

/// The op byte of one delta inside a DELTAS frame.
public enum DeltaOp: UInt8, Sendable {
    case counterAdd = 1
    case counterAddFloat = 2
    case gaugeSet = 3
    case gaugeAdd = 4
    case histogram = 5

    /// The kind of series this op may refer to.
    public var kind: MetricKind {
        switch self {
        case .counterAdd, .counterAddFloat: return .counter
        case .gaugeSet, .gaugeAdd: return .gauge
        case .histogram: return .histogram
        }
    }
}

/// Why the agent refused a connection, a frame or a series. Sent in REFUSE and SERIES_REFUSED frames.
public enum RefusalCode: UInt8, Sendable, CustomStringConvertible {
    case malformed = 1
    case truncated = 2
    case oversized = 3
    case unsupportedVersion = 4
    case outOfOrder = 5
    case limitExceeded = 6
    case unknownSeries = 7
    case kindMismatch = 8
    case unexpectedFrame = 9
    case invalidName = 10
    case conflictingDefinition = 11
    case shuttingDown = 12
    /// The series breaks the agent's metric catalog (type, labels, label values, buckets, unknown family).
    case catalogViolation = 13
    /// The series would exceed its family's series limit.
    case cardinalityLimit = 14
    /// The peer's user or group may not send metrics to this agent (SO_PEERCRED).
    case notPermitted = 15
    case other = 255

    public var description: String {
        switch self {
        case .malformed: return "malformed"
        case .truncated: return "truncated"
        case .oversized: return "oversized"
        case .unsupportedVersion: return "unsupported_version"
        case .outOfOrder: return "out_of_order"
        case .limitExceeded: return "limit_exceeded"
        case .unknownSeries: return "unknown_series"
        case .kindMismatch: return "kind_mismatch"
        case .unexpectedFrame: return "unexpected_frame"
        case .invalidName: return "invalid_name"
        case .conflictingDefinition: return "conflicting_definition"
        case .shuttingDown: return "shutting_down"
        case .catalogViolation: return "catalog_violation"
        case .cardinalityLimit: return "cardinality_limit"
        case .notPermitted: return "not_permitted"
        case .other: return "other"
        }
    }
}

/// A protocol violation, with the code sent to the peer and a message for the log.
public struct WireError: Error, Equatable, CustomStringConvertible, Sendable {
    public var code: RefusalCode
    public var message: String

    public init(_ code: RefusalCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

/// Hard limits of protocol v1. The decoder enforces the per-item ones; the agent enforces the per-connection ones.
public struct WireLimits: Sendable, Equatable {
    public var maxFrameBytes: Int = 65_536
    public var maxSourceNameBytes: Int = 128
    public var maxNameBytes: Int = 200
    public var maxHelpBytes: Int = 1_024
    public var maxLabelsPerSeries: Int = 16
    public var maxLabelNameBytes: Int = 100
    public var maxLabelValueBytes: Int = 256
    public var maxBucketsPerHistogram: Int = 64
    /// Native buckets of one histogram (its window, the zero bucket apart).
    public var maxNativeBuckets: Int = 256
    public var maxSeriesPerConnection: Int = 100_000

    public init() {}

    /// Most bucket indexes one HISTOGRAM delta may name: classic with +Inf, the zero bucket, the native window.
    public var maxBucketIndexesPerDelta: Int { maxBucketsPerHistogram + 2 + maxNativeBuckets }

    public static let `default` = WireLimits()
}
