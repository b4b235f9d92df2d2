import DanubeMetricsWire
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The Prometheus protobuf exposition (`application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
/// encoding=delimited`) of a snapshot: varint-length-prefixed `MetricFamily` messages, the same families, values
/// and exemplars as the OpenMetrics text. Counters are named with `_total` as client libraries name them in
/// protobuf; histograms carry their classic buckets and, where the family keeps them and they hold every
/// observation, their native buckets (schema, zero bucket, spans and deltas): a scraper with native histograms
/// enabled gets those, an older one the classic buckets of the same message.
///
/// Hand-written rather than through swift-protobuf's generated messages, like the remote write encoder: the few
/// messages involved (metrics.proto: MetricFamily, Metric, LabelPair, Counter, Gauge, Histogram, Bucket,
/// BucketSpan, Exemplar, Timestamp) are small and fixed, and a scrape of a large store would otherwise build an
/// object per series. The store's families are encoded in pieces on every core, as the text is, and each
/// family's header is written once its pieces' size is known (nothing is joined or copied again).
enum ProtobufExposition {
    static let contentType = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"

    private typealias P = ProtobufPrimitives

    /// The exposition as the chunks a response is built from: per family its header, then its metrics.
    static func encode(_ snapshot: MetricsSnapshot) -> [[UInt8]] {
        var planned: [(family: Int, slots: ArraySlice<UInt32>?)] = []
        for (index, family) in snapshot.families.enumerated() {
            guard case .stored(let slots, _) = family.series else {
                planned.append((index, nil))
                continue
            }
            let perPiece = max(1, 16_384 / (family.kind == .histogram ? family.bounds.count + 3 : 1))
            for start in stride(from: 0, to: slots.count, by: perPiece) {
                planned.append((index, slots[start..<min(slots.count, start + perPiece)]))
            }
        }
        let pieces = planned
        let parallel = pieces.count(where: { $0.slots != nil }) > 1
        let metrics = ConcurrentResults<[UInt8]>.map(pieces.count, parallel: parallel) { i in
            let family = snapshot.families[pieces[i].family]
            var encoder = MetricEncoder(family, exemplars: snapshot.exemplars)
            switch family.series {
            case .stored:
                encoder.encode(pieces[i].slots ?? [], state: snapshot.store)
            case .listed(let samples):
                for sample in samples { encoder.encode(sample) }
            }
            return encoder.output
        }
        var output: [[UInt8]] = []
        output.reserveCapacity(pieces.count + snapshot.families.count)
        var piece = 0
        for (index, family) in snapshot.families.enumerated() {
            var end = piece
            while end < pieces.count, pieces[end].family == index { end += 1 }
            output.append(header(family, metricBytes: metrics[piece..<end].reduce(0) { $0 + $1.count }))
            output += metrics[piece..<end].lazy.filter { !$0.isEmpty }
            piece = end
        }
        return output
    }

    /// The length prefix and the `MetricFamily` fields before its metrics: name (1), help (2), type (3).
    private static func header(_ family: MetricsSnapshot.Family, metricBytes: Int) -> [UInt8] {
        var fields: [UInt8] = []
        let name = family.kind == .counter ? ExpositionWriter.counterFamilyName(family.name) + "_total" : family.name
        delimited(1, Array(name.utf8), into: &fields)
        if !family.help.isEmpty { delimited(2, Array(family.help.utf8), into: &fields) }
        P.varint(3 << 3, into: &fields)
        P.varint(family.kind == .counter ? 0 : family.kind == .gauge ? 1 : 4, into: &fields)
        var out: [UInt8] = []
        P.varint(UInt64(fields.count + metricBytes), into: &out)
        return out + fields
    }

    /// Encodes `Metric` messages (field 4 of `MetricFamily`) of one family.
    private struct MetricEncoder {
        let kind: MetricKind
        let bounds: [Double]
        let native: NativeHistogramSpec?
        let nativeFirstIndex: Int64
        let exemplars: [Int: [ExemplarStore.Exemplar?]]
        var output: [UInt8] = []
        /// One metric, then one histogram's buckets, reused from series to series.
        private var metric: [UInt8] = []
        private var buckets: [UInt8] = []

        init(_ family: MetricsSnapshot.Family, exemplars: [Int: [ExemplarStore.Exemplar?]]) {
            kind = family.kind
            bounds = family.bounds
            if case .stored(let slots, let native) = family.series {
                self.native = native
                output.reserveCapacity(slots.count * (kind == .histogram ? 48 + 14 * (bounds.count + 1) : 64))
            } else {
                native = nil
            }
            nativeFirstIndex = Int64(native?.firstIndex ?? 0)
            self.exemplars = exemplars
            metric.reserveCapacity(512)
        }

        mutating func encode(_ slots: ArraySlice<UInt32>, state: AggregationStore.State) {
            let table = state.table
            state.values.withUnsafeBufferPointer { values in
                state.buckets.withUnsafeBufferPointer { bucketCounts in
                    slots.withUnsafeBufferPointer { slots in
                        for k in 0..<slots.count {
                            let index = Int(slots[k])
                            metric.removeAll(keepingCapacity: true)
                            ProtobufExposition.labels(table.text(index), into: &metric)
                            let value = values[index]
                            let seriesExemplars = exemplars.isEmpty ? nil : exemplars[index]
                            switch kind {
                            case .counter:
                                counter(value.counterInteger, value.counterFloat, exemplar: seriesExemplars?.first ?? nil)
                            case .gauge:
                                gauge(value.gauge)
                            case .histogram:
                                let first = Int(table[index].bucketStart)
                                let counts = UnsafeBufferPointer(rebasing: bucketCounts[first..<(first + bounds.count + 1)])
                                let count = histogramBuckets(counts, exemplars: seriesExemplars)
                                var nativeFields: [UInt8] = []
                                if let native, index < state.windows.count {
                                    nativeFields = Self.nativeFields(native, firstIndex: nativeFirstIndex, zero: bucketCounts[first + bounds.count + 1],
                                                               window: state.windows[index], count: count)
                                }
                                histogram(count: count, sum: value.sum, native: nativeFields)
                            }
                            finishMetric()
                        }
                    }
                }
            }
        }

        mutating func encode(_ sample: MetricsSnapshot.Sample) {
            metric.removeAll(keepingCapacity: true)
            var labels = sample.labels
            labels.withUTF8 { ProtobufExposition.labels($0, into: &metric) }
            switch sample.value {
            case .counter(let integer, let fraction):
                counter(integer, fraction, exemplar: nil)
            case .gauge(let value):
                gauge(value)
            case .histogram(let bucketCounts, let sum):
                let count = bucketCounts.withUnsafeBufferPointer { histogramBuckets($0, exemplars: nil) }
                histogram(count: count, sum: sum, native: [])
            }
            finishMetric()
        }

        private mutating func finishMetric() {
            delimited(4, metric, into: &output)
        }

        /// `Counter{value = 1, exemplar = 2}`.
        private mutating func counter(_ integer: UInt64, _ fraction: Double, exemplar: ExemplarStore.Exemplar?) {
            let encoded = exemplar.map(ProtobufExposition.exemplar) ?? []
            P.varint(3 << 3 | 2, into: &metric)
            P.varint(UInt64(9 + (encoded.isEmpty ? 0 : delimitedSize(encoded.count))), into: &metric)
            field(1, double: MetricsSnapshot.Value.counterValue(integer: integer, fraction: fraction), into: &metric)
            if !encoded.isEmpty { delimited(2, encoded, into: &metric) }
        }

        /// `Gauge{value = 1}`.
        private mutating func gauge(_ value: Double) {
            P.varint(2 << 3 | 2, into: &metric)
            P.varint(9, into: &metric)
            field(1, double: value, into: &metric)
        }

        /// `Bucket{cumulative_count = 1, upper_bound = 2, exemplar = 3}` for every classic bucket with +Inf, into
        /// `buckets`; returns the count of observations.
        private mutating func histogramBuckets(_ counts: UnsafeBufferPointer<UInt64>, exemplars: [ExemplarStore.Exemplar?]?) -> UInt64 {
            buckets.removeAll(keepingCapacity: true)
            var cumulative: UInt64 = 0
            for bucket in 0..<counts.count {
                cumulative &+= counts[bucket]
                let exemplar = exemplars.flatMap { bucket < $0.count ? $0[bucket] : nil }.map(ProtobufExposition.exemplar) ?? []
                P.varint(3 << 3 | 2, into: &buckets)
                P.varint(UInt64(1 + P.varintSize(cumulative) + 9 + (exemplar.isEmpty ? 0 : delimitedSize(exemplar.count))), into: &buckets)
                P.varint(1 << 3, into: &buckets)
                P.varint(cumulative, into: &buckets)
                field(2, double: bucket < bounds.count ? bounds[bucket] : .infinity, into: &buckets)
                if !exemplar.isEmpty { delimited(3, exemplar, into: &buckets) }
            }
            return cumulative
        }

        /// `Histogram{sample_count = 1, sample_sum = 2, bucket = 3, native fields}`.
        private mutating func histogram(count: UInt64, sum: Double, native: [UInt8]) {
            P.varint(7 << 3 | 2, into: &metric)
            P.varint(UInt64(1 + P.varintSize(count) + 9 + buckets.count + native.count), into: &metric)
            P.varint(1 << 3, into: &metric)
            P.varint(count, into: &metric)
            field(2, double: sum, into: &metric)
            metric += buckets
            metric += native
        }

        /// `Histogram` fields 5 (schema), 6 (zero threshold), 7 (zero count), 12 and 13 (positive spans and
        /// deltas, `NativeSpans`); nothing when the native buckets do not hold every observation (an emitter
        /// without native buckets contributed to the series): classic buckets only then.
        private static func nativeFields(_ native: NativeHistogramSpec, firstIndex: Int64, zero: UInt64, window: NativeWindow, count: UInt64) -> [UInt8] {
            guard zero &+ window.total == count else { return [] }
            var out: [UInt8] = []
            P.varint(5 << 3, into: &out)
            P.varint(P.zigzag(Int64(native.schema)), into: &out)
            field(6, double: native.zeroThreshold, into: &out)
            P.varint(7 << 3, into: &out)
            P.varint(min(zero, UInt64(Int64.max)), into: &out)
            var spans = NativeSpans()
            window.forEach { position, bucketCount in spans.append(index: firstIndex &+ Int64(position), count: Int64(clamping: bucketCount)) }
            spans.encode(spanField: 12, deltaField: 13, packed: false, into: &out)
            return out
        }
    }

    // MARK: fields

    /// `Metric.label` entries for a label text `a="x",b="y"` as the store keeps it (values unescaped; a value
    /// without escapes is copied as it is).
    static func labels(_ text: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        guard let base = text.baseAddress else { return }
        var at = 0
        while at < text.count {
            // memchr: label texts are most of what a scrape reads, and most values have no escape.
            guard let equalsPointer = memchr(base + at, Int32(UInt8(ascii: "=")), text.count - at) else { return }
            let equals = UnsafeRawPointer(equalsPointer).assumingMemoryBound(to: UInt8.self) - base
            let valueStart = equals + 2
            guard valueStart <= text.count else { return }
            var end = valueStart, escapes = 0
            while true {
                guard let quote = memchr(base + end, Int32(UInt8(ascii: "\"")), text.count - end) else { return }
                let next = UnsafeRawPointer(quote).assumingMemoryBound(to: UInt8.self) - base
                // A quote preceded by an odd number of backslashes is escaped: count the run and go on after it.
                var run = 0
                while next - run - 1 >= valueStart, text[next - run - 1] == UInt8(ascii: "\\") { run += 1 }
                end = next
                if run % 2 == 0 { break }
                end += 1
            }
            if memchr(base + valueStart, Int32(UInt8(ascii: "\\")), end - valueStart) != nil {
                var index = valueStart
                while index < end {
                    if text[index] == UInt8(ascii: "\\") { escapes += 1; index += 1 }
                    index += 1
                }
            }
            let nameCount = equals - at, valueCount = end - valueStart - escapes
            P.varint(1 << 3 | 2, into: &out)
            P.varint(UInt64(delimitedSize(nameCount) + delimitedSize(valueCount)), into: &out)
            P.varint(1 << 3 | 2, into: &out)
            P.varint(UInt64(nameCount), into: &out)
            out.append(contentsOf: UnsafeBufferPointer(rebasing: text[at..<equals]))
            P.varint(2 << 3 | 2, into: &out)
            P.varint(UInt64(valueCount), into: &out)
            if escapes == 0 {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: text[valueStart..<end]))
            } else {
                var index = valueStart
                while index < end {
                    if text[index] == UInt8(ascii: "\\"), index + 1 < end {
                        index += 1
                        out.append(text[index] == UInt8(ascii: "n") ? UInt8(ascii: "\n") : text[index])
                    } else {
                        out.append(text[index])
                    }
                    index += 1
                }
            }
            at = end + 2 // past `",`
        }
    }

    /// An `Exemplar{label = 1, value = 2, timestamp = 3}`. Exemplar times arrive in milliseconds: the timestamp
    /// is taken from them exactly (not from the seconds' double, which is 1e-7 s off at today's dates), with zero
    /// fields left out as protobuf writes them; no timestamp when the time is not one a `Timestamp` holds.
    static func exemplar(_ exemplar: ExemplarStore.Exemplar) -> [UInt8] {
        var out: [UInt8] = []
        var text = exemplar.labelText
        text.withUTF8 { labels($0, into: &out) }
        field(2, double: exemplar.value, into: &out)
        if let millis = Int64(exactly: (exemplar.timestamp * 1_000).rounded()) {
            let seconds = millis >= 0 ? millis / 1_000 : (millis - 999) / 1_000
            let nanos = (millis - seconds * 1_000) * 1_000_000
            var timestamp: [UInt8] = []
            if seconds != 0 {
                P.varint(1 << 3, into: &timestamp)
                P.varint(UInt64(bitPattern: seconds), into: &timestamp)
            }
            if nanos != 0 {
                P.varint(2 << 3, into: &timestamp)
                P.varint(UInt64(nanos), into: &timestamp)
            }
            delimited(3, timestamp, into: &out)
        }
        return out
    }

    private static func delimited(_ field: UInt64, _ body: [UInt8], into out: inout [UInt8]) {
        P.varint(field << 3 | 2, into: &out)
        P.varint(UInt64(body.count), into: &out)
        out += body
    }

    /// Bytes a length-delimited field of `count` bytes takes with its tag (a field number below 16).
    private static func delimitedSize(_ count: Int) -> Int { 1 + P.varintSize(UInt64(count)) + count }

    private static func field(_ field: UInt64, double value: Double, into out: inout [UInt8]) {
        P.varint(field << 3 | 1, into: &out)
        P.double(value, into: &out)
    }
}
