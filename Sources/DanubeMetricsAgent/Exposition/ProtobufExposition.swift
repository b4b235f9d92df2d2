import DanubeMetricsWire

/// The Prometheus protobuf exposition (`application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
/// encoding=delimited`): varint-length-prefixed `MetricFamily` messages, translated from the agent's own
/// OpenMetrics output (so every family, the agent's own included, and every exemplar are in it, with the same
/// values). Counters are named with `_total` as client libraries name them in protobuf; histograms carry their
/// classic buckets and, where the family records them, their native buckets (schema, zero bucket, spans and
/// deltas) from the `# native` lines the writer adds for this purpose: a scraper with native histograms enabled
/// gets those, an older one the classic buckets of the same message.
///
/// Hand-written rather than through swift-protobuf's generated messages, like the remote write encoder: the few
/// messages involved (metrics.proto: MetricFamily, Metric, LabelPair, Counter, Gauge, Histogram, Bucket, Exemplar,
/// Timestamp) are small and fixed, and a scrape of a large store would otherwise build an object per series. It
/// works on the text's bytes (label values are copied as they are unless escaped), one line at a time, with a
/// histogram's lines grouped as the writer emits them: consecutive, with the same labels.
enum ProtobufExposition {
    static let contentType = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"

    /// Translates a complete OpenMetrics exposition written by `ExpositionWriter` (not arbitrary text).
    static func encode(openMetrics text: [UInt8]) -> [UInt8] {
        var encoder = Encoder()
        text.withUnsafeBufferPointer { bytes in
            var start = 0
            while start < bytes.count {
                var end = start
                while end < bytes.count, bytes[end] != UInt8(ascii: "\n") { end += 1 }
                encoder.line(UnsafeBufferPointer(rebasing: bytes[start..<end]))
                start = end + 1
            }
        }
        encoder.finishFamily()
        return encoder.output
    }

    private struct Encoder {
        var output: [UInt8] = []
        var name: [UInt8] = []
        var help: [UInt8] = []
        var kind = Kind.untyped
        var family: [UInt8] = []
        var metric: [UInt8] = []
        /// The histogram being collected: its label set's bytes (without `le`), buckets, sum.
        var histogramKey: [UInt8] = []
        var histogramLabels: [UInt8] = []
        var buckets: [UInt8] = []
        var sum = 0.0
        /// Encoded native fields of the histogram being collected (empty when it has none).
        var native: [UInt8] = []
        var open = false

        enum Kind { case counter, gauge, histogram, untyped }

        mutating func line(_ line: UnsafeBufferPointer<UInt8>) {
            guard let first = line.first else { return }
            if first == UInt8(ascii: "#") {
                if starts(line, "# TYPE ") {
                    finishFamily()
                    let rest = UnsafeBufferPointer(rebasing: line[7...])
                    let space = rest.firstIndex(of: UInt8(ascii: " ")) ?? rest.endIndex
                    name = Array(rest[..<space])
                    let type = String(decoding: rest[min(rest.endIndex, space + 1)...], as: UTF8.self)
                    kind = type == "counter" ? .counter : type == "gauge" ? .gauge : type == "histogram" ? .histogram : .untyped
                    help = []
                } else if starts(line, "# HELP "), line.count >= 8 + name.count {
                    help = unescape(UnsafeBufferPointer(rebasing: line[(8 + name.count)...]), help: true)
                } else if kind == .histogram, open, starts(line, "# native ") {
                    native = nativeFields(UnsafeBufferPointer(rebasing: line[9...]))
                }
                return
            }
            sample(line)
        }

        mutating func sample(_ line: UnsafeBufferPointer<UInt8>) {
            var at = 0
            while at < line.count, line[at] != UInt8(ascii: "{"), line[at] != UInt8(ascii: " ") { at += 1 }
            let suffix = UnsafeBufferPointer(rebasing: line[min(name.count, at)..<at])
            var labels = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
            if at < line.count, line[at] == UInt8(ascii: "{") {
                let close = closingBrace(line, from: at)
                labels = UnsafeBufferPointer(rebasing: line[(at + 1)..<close])
                at = close + 1
            }
            while at < line.count, line[at] == UInt8(ascii: " ") { at += 1 }
            var valueEnd = at
            while valueEnd < line.count, line[valueEnd] != UInt8(ascii: " ") { valueEnd += 1 }
            guard let value = number(UnsafeBufferPointer(rebasing: line[at..<valueEnd])) else { return }
            let exemplar = valueEnd + 3 < line.count ? encodedExemplar(UnsafeBufferPointer(rebasing: line[(valueEnd + 3)...])) : nil
            switch kind {
            case .counter:
                guard equal(suffix, "_total") else { return }
                metric.removeAll(keepingCapacity: true)
                encodeLabels(labels, skippingLe: false, into: &metric)
                // Counter{value = 1, exemplar = 2}, written in place.
                appendVarint(3 << 3 | 2, to: &metric)
                appendVarint(UInt64(9 + (exemplar.map { delimitedSize($0.count) } ?? 0)), to: &metric)
                appendField(1, double: value, to: &metric)
                if let exemplar { delimited(2, exemplar, into: &metric) }
                delimited(4, metric, into: &family)
            case .gauge, .untyped:
                guard suffix.isEmpty else { return }
                metric.removeAll(keepingCapacity: true)
                encodeLabels(labels, skippingLe: false, into: &metric)
                appendVarint((kind == .gauge ? 2 : 5) << 3 | 2, to: &metric)
                appendVarint(9, to: &metric)
                appendField(1, double: value, to: &metric)
                delimited(4, metric, into: &family)
            case .histogram:
                if equal(suffix, "_bucket") {
                    let (key, bound) = splitLe(labels)
                    if !open || !key.elementsEqual(histogramKey) { startHistogram(key, labels) }
                    // Bucket{cumulative_count = 1, upper_bound = 2, exemplar = 3}, written in place.
                    let count = ProtobufPrimitives.count(value)
                    appendVarint(3 << 3 | 2, to: &buckets)
                    appendVarint(UInt64(1 + ProtobufPrimitives.varintSize(count) + 9 + (exemplar.map { delimitedSize($0.count) } ?? 0)), to: &buckets)
                    appendField(1, varint: count, to: &buckets)
                    appendField(2, double: bound, to: &buckets)
                    if let exemplar { delimited(3, exemplar, into: &buckets) }
                } else if equal(suffix, "_sum") {
                    if !open || !labels.elementsEqual(histogramKey) { startHistogram(labels, labels) }
                    sum = value
                } else if equal(suffix, "_count") {
                    if !open || !labels.elementsEqual(histogramKey) { startHistogram(labels, labels) }
                    metric.removeAll(keepingCapacity: true)
                    metric += histogramLabels
                    // Histogram{sample_count = 1, sample_sum = 2, bucket = 3, native fields}, written in place.
                    let count = ProtobufPrimitives.count(value)
                    appendVarint(7 << 3 | 2, to: &metric)
                    appendVarint(UInt64(1 + ProtobufPrimitives.varintSize(count) + 9 + buckets.count + native.count), to: &metric)
                    appendField(1, varint: count, to: &metric)
                    appendField(2, double: sum, to: &metric)
                    metric += buckets
                    metric += native
                    delimited(4, metric, into: &family)
                    open = false
                }
            }
        }

        mutating func startHistogram(_ key: UnsafeBufferPointer<UInt8>, _ labels: UnsafeBufferPointer<UInt8>) {
            histogramKey = Array(key)
            histogramLabels.removeAll(keepingCapacity: true)
            encodeLabels(labels, skippingLe: true, into: &histogramLabels)
            buckets.removeAll(keepingCapacity: true)
            native.removeAll(keepingCapacity: true)
            sum = 0
            open = true
        }

        mutating func finishFamily() {
            guard !name.isEmpty else { return }
            var message: [UInt8] = []
            delimited(1, kind == .counter ? name + Array("_total".utf8) : name, into: &message)
            if !help.isEmpty { delimited(2, help, into: &message) }
            message += field(3, varint: kind == .counter ? 0 : kind == .gauge ? 1 : kind == .histogram ? 4 : 3)
            message += family
            appendVarint(UInt64(message.count), to: &output)
            output += message
            family.removeAll(keepingCapacity: true)
            name = []
            open = false
        }
    }

    /// `Histogram` fields 5 (schema), 6 (zero threshold), 7 (zero count), 12 and 13 (positive spans and deltas,
    /// `NativeSpans`), from `<schema> <threshold> <zero> <index>:<count>...`. Reads the bytes in place: a scrape
    /// has one such line per native histogram.
    private static func nativeFields(_ line: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var at = 0
        func token() -> UnsafeBufferPointer<UInt8> {
            while at < line.count, line[at] == UInt8(ascii: " ") { at += 1 }
            let start = at
            while at < line.count, line[at] != UInt8(ascii: " ") { at += 1 }
            return UnsafeBufferPointer(rebasing: line[start..<at])
        }
        guard let schema = integer(token()), let threshold = number(token()), let zero = integer(token()) else { return [] }
        var out: [UInt8] = []
        out.reserveCapacity(32 + 2 * (line.count - at))
        appendVarint(5 << 3, to: &out)
        appendVarint(ProtobufPrimitives.zigzag(schema), to: &out)
        appendVarint(6 << 3 | 1, to: &out)
        ProtobufPrimitives.double(threshold, into: &out)
        appendVarint(7 << 3, to: &out)
        appendVarint(UInt64(clamping: zero), to: &out)
        var spans = NativeSpans()
        while true {
            let pair = token()
            guard !pair.isEmpty else { break }
            guard let colon = pair.firstIndex(of: UInt8(ascii: ":")),
                  let index = integer(UnsafeBufferPointer(rebasing: pair[..<colon])),
                  let count = integer(UnsafeBufferPointer(rebasing: pair[(colon + 1)...])) else { return [] }
            spans.append(index: index, count: count)
        }
        spans.encode(spanField: 12, deltaField: 13, packed: false, into: &out)
        return out
    }

    /// A decimal integer with an optional `-`, as the writer formats them.
    private static func integer(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard !bytes.isEmpty else { return nil }
        let negative = bytes[0] == UInt8(ascii: "-")
        // Saturating, never wrapping: the store holds counts up to 2^63 - 1, and a wrapped count would turn
        // into a negative bucket delta.
        var value: Int64 = 0
        for byte in bytes[(negative ? 1 : 0)...] {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow) = value.multipliedReportingOverflow(by: 10)
            let (next, carry) = times10.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            value = overflow || carry ? .max : next
        }
        return negative ? -value : value
    }

    // MARK: reading the text

    private static func starts(_ line: UnsafeBufferPointer<UInt8>, _ prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard line.count >= count else { return false }
        return (0..<count).allSatisfy { line[$0] == prefix.utf8Start[$0] }
    }

    private static func equal(_ bytes: UnsafeBufferPointer<UInt8>, _ text: StaticString) -> Bool {
        bytes.count == text.utf8CodeUnitCount && (0..<bytes.count).allSatisfy { bytes[$0] == text.utf8Start[$0] }
    }

    /// The index of the `}` closing the label set that opens at `open` (braces inside quoted values do not count).
    private static func closingBrace(_ line: UnsafeBufferPointer<UInt8>, from open: Int) -> Int {
        var quoted = false, index = open + 1
        while index < line.count {
            switch line[index] {
            case UInt8(ascii: "\\") where quoted: index += 1
            case UInt8(ascii: "\""): quoted.toggle()
            case UInt8(ascii: "}") where !quoted: return index
            default: break
            }
            index += 1
        }
        return line.count - 1
    }

    private static func number(_ bytes: UnsafeBufferPointer<UInt8>) -> Double? {
        // Most values are counts: up to 15 digits are read in place, exactly (no String).
        if !bytes.isEmpty, bytes.count <= 15, bytes.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            return Double(bytes.reduce(UInt64(0)) { $0 * 10 + UInt64($1 - UInt8(ascii: "0")) })
        }
        let text = String(decoding: bytes, as: UTF8.self)
        switch text {
        case "+Inf": return .infinity
        case "-Inf": return -.infinity
        case "NaN": return .nan
        default: return Double(text)
        }
    }

    /// The label text without its `le` pair (the writer puts `le` last), and the bound.
    private static func splitLe(_ labels: UnsafeBufferPointer<UInt8>) -> (UnsafeBufferPointer<UInt8>, Double) {
        var index = labels.count - 1
        while index >= 0, !(labels[index] == UInt8(ascii: "l") && index + 3 < labels.count && labels[index + 1] == UInt8(ascii: "e")
                               && labels[index + 2] == UInt8(ascii: "=") && (index == 0 || labels[index - 1] == UInt8(ascii: ","))) { index -= 1 }
        guard index >= 0 else { return (labels, .infinity) }
        let bound = number(UnsafeBufferPointer(rebasing: labels[(index + 4)..<(labels.count - 1)])) ?? .infinity
        return (UnsafeBufferPointer(rebasing: labels[..<max(0, index - 1)]), bound)
    }

    /// `Metric.label` entries for `a="x",b="y"` (values unescaped), `le` left out when asked.
    private static func encodeLabels(_ labels: UnsafeBufferPointer<UInt8>, skippingLe: Bool, into out: inout [UInt8]) {
        var at = 0
        while at < labels.count {
            var equals = at
            while equals < labels.count, labels[equals] != UInt8(ascii: "=") { equals += 1 }
            let nameBytes = UnsafeBufferPointer(rebasing: labels[at..<equals])
            var end = equals + 2, escaped = false
            while end < labels.count, labels[end] != UInt8(ascii: "\"") {
                if labels[end] == UInt8(ascii: "\\") { escaped = true; end += 1 }
                end += 1
            }
            let raw = UnsafeBufferPointer(rebasing: labels[min(equals + 2, end)..<min(end, labels.count)])
            if !(skippingLe && equal(nameBytes, "le")) {
                // LabelPair{name = 1, value = 2}, written in place (a value with escapes is unescaped first).
                func pair(_ value: UnsafeBufferPointer<UInt8>) {
                    appendVarint(1 << 3 | 2, to: &out)
                    appendVarint(UInt64(delimitedSize(nameBytes.count) + delimitedSize(value.count)), to: &out)
                    appendVarint(1 << 3 | 2, to: &out)
                    appendVarint(UInt64(nameBytes.count), to: &out)
                    out.append(contentsOf: nameBytes)
                    appendVarint(2 << 3 | 2, to: &out)
                    appendVarint(UInt64(value.count), to: &out)
                    out.append(contentsOf: value)
                }
                if escaped { unescape(raw, help: false).withUnsafeBufferPointer { pair($0) } } else { pair(raw) }
            }
            at = end + 2 // past `",`
        }
    }

    /// `{labels} value [timestamp]` after ` # `, as an encoded `Exemplar`.
    private static func encodedExemplar(_ text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard text.first == UInt8(ascii: "{") else { return nil }
        let close = closingBrace(text, from: 0)
        var message: [UInt8] = []
        encodeLabels(UnsafeBufferPointer(rebasing: text[1..<close]), skippingLe: false, into: &message)
        let fields = String(decoding: text[(close + 1)...], as: UTF8.self).split(separator: " ")
        guard let first = fields.first, let value = Double(first) else { return nil }
        message += field(2, double: value)
        if fields.count > 1, let timestamp = Double(fields[1]) {
            let seconds = timestamp.rounded(.down)
            let nanos = max(0, min(999_999_999, ((timestamp - seconds) * 1e9).rounded()))
            delimited(3, field(1, varint: UInt64(bitPattern: Int64(seconds))) + field(2, varint: UInt64(nanos)), into: &message)
        }
        return message
    }

    /// Escapes undone: `\\`, `\"` and `\n` in label values; `\\` and `\n` in HELP.
    private static func unescape(_ raw: UnsafeBufferPointer<UInt8>, help: Bool) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var index = 0
        while index < raw.count {
            if raw[index] == UInt8(ascii: "\\"), index + 1 < raw.count {
                index += 1
                out.append(raw[index] == UInt8(ascii: "n") ? UInt8(ascii: "\n") : raw[index])
            } else {
                out.append(raw[index])
            }
            index += 1
        }
        return out
    }

    // MARK: protobuf

    private static func delimited(_ field: UInt64, _ body: [UInt8], into out: inout [UInt8]) {
        appendVarint(field << 3 | 2, to: &out)
        appendVarint(UInt64(body.count), to: &out)
        out += body
    }

    /// Bytes a length-delimited field of `count` bytes takes with its tag (a field number below 16).
    private static func delimitedSize(_ count: Int) -> Int { 1 + ProtobufPrimitives.varintSize(UInt64(count)) + count }

    private static func appendField(_ field: UInt64, varint value: UInt64, to out: inout [UInt8]) {
        appendVarint(field << 3, to: &out)
        appendVarint(value, to: &out)
    }

    private static func appendField(_ field: UInt64, double value: Double, to out: inout [UInt8]) {
        appendVarint(field << 3 | 1, to: &out)
        ProtobufPrimitives.double(value, into: &out)
    }

    private static func field(_ field: UInt64, varint value: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        appendVarint(field << 3, to: &out)
        appendVarint(value, to: &out)
        return out
    }

    private static func field(_ field: UInt64, double value: Double) -> [UInt8] {
        var out: [UInt8] = []
        appendVarint(field << 3 | 1, to: &out)
        ProtobufPrimitives.double(value, into: &out)
        return out
    }

    private static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        ProtobufPrimitives.varint(value, into: &out)
    }
}
