import DanubeMetricsWire

/// The two exposition formats the agent serves.
public enum ExpositionFormat: Sendable, Hashable {
    /// Prometheus text format 0.0.4.
    case prometheusText
    /// OpenMetrics 1.0.0 text.
    case openMetrics

    public var contentType: String {
        switch self {
        case .prometheusText: return "text/plain; version=0.0.4; charset=utf-8"
        case .openMetrics: return "application/openmetrics-text; version=1.0.0; charset=utf-8"
        }
    }
}

/// Writes families and samples in either format straight into a byte buffer. Hand-written: the agent renders
/// from its own store (no client-library registry to hand it to), and writing bytes directly, with label sets
/// escaped once at definition time and integers formatted without `String`, keeps a 100k-series scrape fast.
public struct ExpositionWriter {
    public let format: ExpositionFormat
    /// What was written before the last `append(_:)` of pieces, and those pieces, in order.
    private var chunks: [[UInt8]] = []
    /// Where small writes go.
    private var current: [UInt8] = []

    public init(format: ExpositionFormat, capacity: Int = 1 << 16) {
        self.format = format
        current.reserveCapacity(capacity)
    }

    /// Everything written, as one array (a copy when pieces were appended).
    public var bytes: [UInt8] {
        guard !chunks.isEmpty else { return current }
        var joined: [UInt8] = []
        joined.reserveCapacity(output.reduce(0) { $0 + $1.count })
        for chunk in output { joined.append(contentsOf: chunk) }
        return joined
    }

    /// Everything written, as the chunks it was made of: a response is built from these without joining them.
    public var output: [[UInt8]] {
        current.isEmpty ? chunks : chunks + [current]
    }

    // MARK: families

    /// HELP and TYPE lines. In OpenMetrics a counter family is named without its `_total` suffix.
    public mutating func family(name: String, kind: MetricKind, help: String) {
        let familyName = format == .openMetrics && kind == .counter ? Self.counterFamilyName(name) : name
        if format == .openMetrics { typeLine(familyName, kind) }
        append("# HELP ")
        append(familyName)
        append(" ")
        appendEscaped(help, quotes: format == .openMetrics)
        append("\n")
        if format == .prometheusText { typeLine(familyName, kind) }
    }

    private mutating func typeLine(_ name: String, _ kind: MetricKind) {
        append("# TYPE ")
        append(name)
        append(" ")
        append(kind.description)
        append("\n")
    }

    /// The sample name of a counter: as defined in 0.0.4; `<family>_total` in OpenMetrics.
    public func counterSampleName(_ name: String) -> String {
        format == .openMetrics ? Self.counterFamilyName(name) + "_total" : name
    }

    static func counterFamilyName(_ name: String) -> String {
        name.hasSuffix("_total") ? String(name.dropLast(6)) : name
    }

    // MARK: samples

    public mutating func counter(_ sampleName: String, labels: String, integer: UInt64, fraction: Double) {
        sampleStart(sampleName, labels: labels)
        if fraction == 0 { appendInteger(integer) } else { appendDouble(Double(integer) + fraction) }
        append("\n")
    }

    public mutating func gauge(_ name: String, labels: String, value: Double) {
        sampleStart(name, labels: labels)
        appendDouble(value)
        append("\n")
    }

    /// `_bucket` lines with cumulative counts (ending in `le="+Inf"`), then `_sum` and `_count`.
    /// `bucketCounts` holds per-bucket (not cumulative) counts, one more than `bounds` (the +Inf bucket).
    public mutating func histogram<C: Collection>(
        _ name: String, labels: String, bounds: [String], bucketCounts: C, sum: Double
    ) where C.Element == UInt64 {
        var cumulative: UInt64 = 0
        var index = 0
        for count in bucketCounts {
            cumulative &+= count
            append(name)
            append("_bucket{")
            if !labels.isEmpty {
                append(labels)
                append(",")
            }
            append("le=\"")
            append(index < bounds.count ? bounds[index] : "+Inf")
            append("\"} ")
            appendInteger(cumulative)
            append("\n")
            index += 1
        }
        sampleStart(name, suffix: "_sum", labels: labels)
        appendDouble(sum)
        append("\n")
        sampleStart(name, suffix: "_count", labels: labels)
        appendInteger(cumulative)
        append("\n")
    }

    /// OpenMetrics requires `# EOF` as the last line; 0.0.4 has no terminator.
    public mutating func finish() {
        if format == .openMetrics { append("# EOF\n") }
    }

    // MARK: formatting

    /// A bucket bound as an `le` value. Integral bounds keep a ".0" as OpenMetrics' canonical form asks.
    public static func boundText(_ bound: Double) -> String {
        formatDouble(bound)
    }

    static func formatDouble(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        return value.description
    }

    private mutating func sampleStart(_ name: String, suffix: String = "", labels: String) {
        append(name)
        append(suffix)
        if !labels.isEmpty {
            append("{")
            append(labels)
            append("}")
        }
        append(" ")
    }

    mutating func append(_ text: String) {
        current.append(contentsOf: text.utf8)
    }

    /// Bytes rendered elsewhere (pieces of large families), kept as they are, in order.
    mutating func append(_ rendered: [[UInt8]]) {
        if !current.isEmpty { chunks.append(current) }
        chunks.append(contentsOf: rendered.lazy.filter { !$0.isEmpty })
        current = []
        current.reserveCapacity(1 << 12)
    }

    private mutating func appendEscaped(_ text: String, quotes: Bool) {
        LabelText.escape(text, quotes: quotes, into: &current)
    }

    private mutating func appendInteger(_ value: UInt64) {
        if value < 10 {
            current.append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0) // 24 bytes of room for 20 digits
        withUnsafeMutableBytes(of: &digits) { buffer in
            var v = value
            var i = buffer.count
            while v > 0 {
                i -= 1
                buffer[i] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            }
            current.append(contentsOf: buffer[i...])
        }
    }

    /// Integral values print without a fraction (exact up to 2^53); others in Swift's shortest round-trip form.
    private mutating func appendDouble(_ value: Double) {
        if value.isFinite, value == value.rounded(), abs(value) < 9_007_199_254_740_992 {
            if value < 0 {
                append("-")
                appendInteger(UInt64(-value))
            } else {
                appendInteger(UInt64(value))
            }
        } else {
            append(Self.formatDouble(value))
        }
    }
}
