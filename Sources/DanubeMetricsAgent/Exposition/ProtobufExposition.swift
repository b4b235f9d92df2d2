import DanubeMetricsWire

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
            switch family.series {
            case .stored(_, let native):
                return StoredMetrics(family, native: native, exemplars: snapshot.exemplars).encode(pieces[i].slots ?? [], state: snapshot.store)
            case .listed(let samples):
                return listedMetrics(family, samples)
            }
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

    /// The `Metric` messages (field 4 of `MetricFamily`) of one piece of a stored family, through a raw writer
    /// into memory sized beforehand; each message's size is computed before it is written.
    private struct StoredMetrics {
        let kind: MetricKind
        let bounds: [Double]
        let native: NativeHistogramSpec?
        let nativeFirstIndex: Int64
        let exemplars: [Int: [ExemplarStore.Exemplar?]]

        init(_ family: MetricsSnapshot.Family, native: NativeHistogramSpec?, exemplars: [Int: [ExemplarStore.Exemplar?]]) {
            kind = family.kind
            bounds = family.bounds
            self.native = native
            nativeFirstIndex = Int64(native?.firstIndex ?? 0)
            self.exemplars = exemplars
        }

        func encode(_ slots: ArraySlice<UInt32>, state: AggregationStore.State) -> [UInt8] {
            let table = state.table
            return state.values.withUnsafeBufferPointer { values in
                state.buckets.withUnsafeBufferPointer { buckets in
                    slots.withUnsafeBufferPointer { slots in
                        let bound = byteBound(slots, table: table, windows: state.windows)
                        return ProtobufWriter.encode(bound: bound) { writer in
                            for k in 0..<slots.count {
                                write(Int(slots[k]), table: table, values: values, buckets: buckets, windows: state.windows, into: &writer)
                            }
                        }
                    }
                }
            }
        }

        /// The most bytes the metrics of `slots` take.
        private func byteBound(_ slots: UnsafeBufferPointer<UInt32>, table: SeriesTable, windows: [NativeWindow]) -> Int {
            let perSeries = kind == .histogram ? 32 + (bounds.count + 1) * 24 : 24
            var total = slots.count * perSeries
            for k in 0..<slots.count {
                let index = Int(slots[k])
                total += LabelTextPairs.maxFieldBytes(table.text(index).count)
                if native != nil, index < windows.count { total += 48 + 40 * windows[index].count }
                for exemplar in exemplars.isEmpty ? [] : exemplars[index] ?? [] {
                    total += exemplar.map { 64 + LabelTextPairs.maxFieldBytes($0.labelText.utf8.count) } ?? 0
                }
            }
            return total
        }

        @inline(__always)
        private func write(_ index: Int, table: SeriesTable, values: UnsafeBufferPointer<AggregationStore.Value>,
                           buckets: UnsafeBufferPointer<UInt64>, windows: [NativeWindow], into writer: inout ProtobufWriter) {
            let text = table.text(index)
            let value = values[index]
            let seriesExemplars = exemplars.isEmpty ? nil : exemplars[index].map { $0.map { $0.map(ProtobufExposition.exemplar) } }
            switch kind {
            case .counter:
                writer.scalarMetric(labels: text, type: .counter, value: MetricsSnapshot.Value.counterValue(
                    integer: value.counterInteger, fraction: value.counterFloat), exemplar: seriesExemplars?.first ?? nil)
            case .gauge:
                writer.scalarMetric(labels: text, type: .gauge, value: value.gauge, exemplar: nil)
            case .histogram:
                let first = Int(table[index].bucketStart)
                let counts = UnsafeBufferPointer(rebasing: buckets[first..<(first + bounds.count + 1)])
                var nativeFields: [UInt8] = []
                if let native, index < windows.count {
                    let count = counts.reduce(0, &+)
                    nativeFields = ProtobufExposition.nativeFields(native, firstIndex: nativeFirstIndex, zero: buckets[first + bounds.count + 1],
                                                                   window: windows[index], count: count)
                }
                writer.histogramMetric(labels: text, counts: counts, bounds: bounds, sum: value.sum, exemplars: seriesExemplars,
                                       nativeFields: nativeFields)
            }
        }
    }

    /// The `Metric` messages of a family built by hand (the agent's own, derived gauges): few, through the same
    /// writer with a generous bound.
    private static func listedMetrics(_ family: MetricsSnapshot.Family, _ samples: [MetricsSnapshot.Sample]) -> [UInt8] {
        let bound = samples.reduce(0) { total, sample in
            let buckets = if case .histogram(let counts, _) = sample.value { counts.count } else { 0 }
            return total + 32 + 24 * buckets + LabelTextPairs.maxFieldBytes(sample.labels.utf8.count)
        }
        return ProtobufWriter.encode(bound: bound) { writer in
            for sample in samples {
                var labels = sample.labels
                labels.withUTF8 { text in
                    switch sample.value {
                    case .counter(let integer, let fraction):
                        writer.scalarMetric(labels: text, type: .counter, value: MetricsSnapshot.Value.counterValue(integer: integer, fraction: fraction),
                                            exemplar: nil)
                    case .gauge(let value):
                        writer.scalarMetric(labels: text, type: .gauge, value: value, exemplar: nil)
                    case .histogram(let counts, let sum):
                        counts.withUnsafeBufferPointer {
                            writer.histogramMetric(labels: text, counts: $0, bounds: family.bounds, sum: sum, exemplars: nil, nativeFields: [])
                        }
                    }
                }
            }
        }
    }

    /// `Histogram` fields 5 (schema), 6 (zero threshold), 7 (zero count), 12 and 13 (positive spans and deltas,
    /// `NativeSpans`); nothing when the native buckets do not hold every observation (an emitter without native
    /// buckets contributed to the series): classic buckets only then.
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

    // MARK: fields

    /// `Metric.label` entries for a label text `a="x",b="y"` as the store keeps it (values unescaped).
    static func labels(_ text: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        out += ProtobufWriter.encode(bound: LabelTextPairs.maxFieldBytes(text.count)) { $0.labels(text) }
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


    private static func field(_ field: UInt64, double value: Double, into out: inout [UInt8]) {
        P.varint(field << 3 | 1, into: &out)
        P.double(value, into: &out)
    }
}
