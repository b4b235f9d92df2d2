import DanubeMetricsWire

/// The Prometheus protobuf exposition (`application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
/// encoding=delimited`): varint-length-prefixed `MetricFamily` messages, translated from the agent's own
/// OpenMetrics output (so every family, the agent's own included, and every exemplar are in it, with the same
/// values). Counters are named with `_total` as client libraries name them in protobuf; histograms carry their
/// classic buckets.
///
/// Hand-written rather than through swift-protobuf's generated messages, like the remote write encoder: the few
/// messages involved (metrics.proto: MetricFamily, Metric, LabelPair, Counter, Gauge, Histogram, Bucket, Exemplar,
/// Timestamp) are small and fixed, and a scrape of a large store would otherwise build an object per series.
enum ProtobufExposition {
    static let contentType = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"

    private struct Sample {
        var labels: [Label]
        var value: Double
        var exemplar: (labels: [Label], value: Double, timestamp: Double?)?
    }

    /// Translates a complete OpenMetrics exposition written by `ExpositionWriter` (not arbitrary text).
    static func encode(openMetrics text: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        var name = "", help = "", kind = ""
        var samples: [(suffix: String, sample: Sample)] = []
        func flush() {
            if !name.isEmpty { output += family(name: name, help: help, kind: kind, samples: samples) }
            samples.removeAll(keepingCapacity: true)
        }
        for line in text.split(separator: UInt8(ascii: "\n")) {
            if line.starts(with: "# TYPE ".utf8) {
                flush()
                let fields = String(decoding: line.dropFirst(7), as: UTF8.self).split(separator: " ", maxSplits: 1)
                name = String(fields[0])
                kind = fields.count > 1 ? String(fields[1]) : "unknown"
                help = ""
            } else if line.starts(with: "# HELP ".utf8) {
                let rest = String(decoding: line.dropFirst(7), as: UTF8.self)
                help = unescapeHelp(String(rest.dropFirst(name.utf8.count + 1)))
            } else if line.first == UInt8(ascii: "#") {
                continue // # EOF, # UNIT
            } else if let (sampleName, sample) = parseSample(line) {
                samples.append((String(sampleName.dropFirst(name.count)), sample))
            }
        }
        flush()
        return output
    }

    /// `name{labels} value [# {labels} value [timestamp]]`, as `ExpositionWriter` writes it.
    private static func parseSample(_ line: ArraySlice<UInt8>) -> (String, Sample)? {
        let text = String(decoding: line, as: UTF8.self)
        var rest = Substring(text)
        let nameEnd = rest.firstIndex { $0 == "{" || $0 == " " } ?? rest.endIndex
        let sampleName = String(rest[..<nameEnd])
        rest = rest[nameEnd...]
        var labels: [Label] = []
        if rest.first == "{" {
            guard let (parsed, after) = parseLabels(rest) else { return nil }
            labels = parsed
            rest = after
        }
        rest = rest.drop { $0 == " " }
        let valueEnd = rest.firstIndex(of: " ") ?? rest.endIndex
        guard let value = parseDouble(rest[..<valueEnd]) else { return nil }
        rest = rest[valueEnd...]
        var sample = Sample(labels: labels, value: value)
        if let marker = rest.range(of: " # ") {
            var exemplar = rest[marker.upperBound...]
            guard let (exemplarLabels, after) = parseLabels(exemplar) else { return nil }
            exemplar = after.drop { $0 == " " }
            let fields = exemplar.split(separator: " ")
            guard let first = fields.first, let exemplarValue = parseDouble(first) else { return nil }
            sample.exemplar = (exemplarLabels, exemplarValue, fields.count > 1 ? parseDouble(fields[1]) : nil)
        }
        return (sampleName, sample)
    }

    /// `{a="x",b="y"}` at the start of `text`, and what follows it.
    private static func parseLabels(_ text: Substring) -> ([Label], Substring)? {
        guard text.first == "{", let close = closingBrace(text) else { return nil }
        let inner = text[text.index(after: text.startIndex)..<close]
        let labels = ExpositionWriter.labels(fromText: String(inner))
        return labels.map { ($0, text[text.index(after: close)...]) }
    }

    /// The `}` closing the label set at the start of `text` (braces inside quoted values do not count).
    private static func closingBrace(_ text: Substring) -> Substring.Index? {
        var quoted = false, escaped = false
        for index in text.indices {
            let character = text[index]
            if escaped { escaped = false } else if character == "\\" { escaped = quoted } else if character == "\"" {
                quoted.toggle()
            } else if character == "}" && !quoted { return index }
        }
        return nil
    }

    private static func parseDouble(_ text: Substring) -> Double? {
        switch text {
        case "+Inf": return .infinity
        case "-Inf": return -.infinity
        case "NaN": return .nan
        default: return Double(text)
        }
    }

    private static func unescapeHelp(_ text: String) -> String {
        guard text.contains("\\") else { return text }
        var result = "", escaped = false
        for character in text {
            if escaped {
                result.append(character == "n" ? "\n" : character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else {
                result.append(character)
            }
        }
        return result
    }

    // MARK: encoding

    /// One delimited `MetricFamily`.
    private static func family(name: String, help: String, kind: String, samples: [(suffix: String, sample: Sample)]) -> [UInt8] {
        var metrics: [[UInt8]] = []
        var familyName = name
        var type: UInt64 = 3 // UNTYPED
        switch kind {
        case "counter":
            type = 0
            familyName = name + "_total"
            metrics = samples.filter { $0.suffix == "_total" }.map { metric($0.sample.labels, field: 3, body: counter($0.sample)) }
        case "gauge":
            type = 1
            metrics = samples.filter { $0.suffix.isEmpty }.map { metric($0.sample.labels, field: 2, body: double(1, $0.sample.value)) }
        case "histogram":
            type = 4
            metrics = histograms(samples)
        default:
            metrics = samples.filter { $0.suffix.isEmpty }.map { metric($0.sample.labels, field: 5, body: double(1, $0.sample.value)) }
        }
        var message = string(1, familyName) + (help.isEmpty ? [] : string(2, help)) + varint(3, type)
        for metric in metrics { message += delimited(4, metric) }
        var output: [UInt8] = []
        appendVarint(UInt64(message.count), to: &output)
        return output + message
    }

    private static func counter(_ sample: Sample) -> [UInt8] {
        double(1, sample.value) + (sample.exemplar.map { delimited(2, exemplar($0)) } ?? [])
    }

    /// One `Metric` per label set: its `_bucket` samples (cumulative, with exemplars), `_sum` and `_count`.
    private static func histograms(_ samples: [(suffix: String, sample: Sample)]) -> [[UInt8]] {
        var order: [[Label]] = []
        var parts: [[Label]: (buckets: [UInt8], sum: Double, count: Double)] = [:]
        for (suffix, sample) in samples {
            let labels = sample.labels.filter { $0.name != "le" }
            if parts[labels] == nil {
                order.append(labels)
                parts[labels] = ([], 0, 0)
            }
            switch suffix {
            case "_bucket":
                guard let bound = sample.labels.first(where: { $0.name == "le" }).flatMap({ parseDouble(Substring($0.value)) }) else { continue }
                var bucket = varint(1, UInt64(sample.value)) + double(2, bound)
                if let example = sample.exemplar { bucket += delimited(3, exemplar(example)) }
                parts[labels]!.buckets += delimited(3, bucket)
            case "_sum": parts[labels]!.sum = sample.value
            case "_count": parts[labels]!.count = sample.value
            default: break
            }
        }
        return order.map { labels in
            let part = parts[labels]!
            return metric(labels, field: 7, body: varint(1, UInt64(part.count)) + double(2, part.sum) + part.buckets)
        }
    }

    private static func exemplar(_ exemplar: (labels: [Label], value: Double, timestamp: Double?)) -> [UInt8] {
        var message = exemplar.labels.flatMap { delimited(1, string(1, $0.name) + string(2, $0.value)) } + double(2, exemplar.value)
        if let timestamp = exemplar.timestamp {
            let seconds = timestamp.rounded(.down)
            let nanos = ((timestamp - seconds) * 1e9).rounded()
            message += delimited(3, varint(1, UInt64(bitPattern: Int64(seconds))) + varint(2, UInt64(max(0, min(999_999_999, nanos)))))
        }
        return message
    }

    private static func metric(_ labels: [Label], field: UInt64, body: [UInt8]) -> [UInt8] {
        labels.flatMap { delimited(1, string(1, $0.name) + string(2, $0.value)) } + delimited(field, body)
    }

    private static func delimited(_ field: UInt64, _ body: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        appendVarint(field << 3 | 2, to: &output)
        appendVarint(UInt64(body.count), to: &output)
        return output + body
    }

    private static func string(_ field: UInt64, _ text: String) -> [UInt8] { delimited(field, Array(text.utf8)) }

    private static func varint(_ field: UInt64, _ value: UInt64) -> [UInt8] {
        var output: [UInt8] = []
        appendVarint(field << 3, to: &output)
        appendVarint(value, to: &output)
        return output
    }

    private static func double(_ field: UInt64, _ value: Double) -> [UInt8] {
        var output: [UInt8] = []
        appendVarint(field << 3 | 1, to: &output)
        for shift in stride(from: 0, to: 64, by: 8) { output.append(UInt8(truncatingIfNeeded: value.bitPattern >> UInt64(shift))) }
        return output
    }

    private static func appendVarint(_ value: UInt64, to output: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            output.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        output.append(UInt8(v))
    }
}
