import DanubeMetricsWire

/// Prometheus remote write 1.0 `WriteRequest` bodies (before snappy), encoded from the snapshot /metrics is
/// encoded from: every counter, gauge and histogram (`_bucket` with `le`, `_sum`, `_count`) as /metrics shows
/// them, one sample each at `timestamp` (milliseconds). With `nativeHistograms`, a histogram whose native buckets
/// hold every observation is also sent as a native histogram (`TimeSeries.histograms`, under the family's name),
/// as a protobuf scrape shows it; receivers must accept them (Prometheus: `--enable-feature=native-histograms`).
///
/// Written by hand rather than through swift-protobuf's generated messages: a push of a large store would first
/// build a message object per series and label (millions of allocations), only to serialize them at once. The
/// wire format of the three messages involved is small and fixed (types.proto: `TimeSeries{labels=1, samples=2}`,
/// `Label{name=1, value=2}`, `Sample{value=1 double, timestamp=2 int64}`, `TimeSeries.histograms=4` with
/// `Histogram{count_int=1, sum=3, schema=4, zero_threshold=5, zero_count_int=6, positive_spans=11,
/// positive_deltas=12, timestamp=15}`; remote.proto: `WriteRequest{timeseries=1}`).
struct RemoteWriteEncoder {
    struct Request {
        var body: [UInt8]
        var samples: Int
    }

    let maxSeriesPerRequest: Int
    var nativeHistograms = false

    /// The requests for `snapshot` (at most `maxSeriesPerRequest` time series each).
    func requests(_ snapshot: MetricsSnapshot, timestamp: Int64) -> [Request] {
        let state = snapshot.store
        var requests: [Request] = []
        var writer = ByteWriter(capacity: 64 * maxSeriesPerRequest)
        var count = 0
        func add(_ labels: SeriesLabels, _ name: [UInt8], _ extra: [UInt8] = [], value: Double? = nil, histogram: [UInt8] = []) {
            if let value {
                labels.timeSeries(name: name, extra: extra, value: value, timestamp: timestamp, into: &writer)
            } else {
                labels.histogramSeries(name: name, histogram: histogram, into: &writer)
            }
            count += 1
            if count == maxSeriesPerRequest {
                requests.append(Request(body: writer.bytes, samples: count))
                writer.removeAll()
                count = 0
            }
        }
        for family in snapshot.families {
            let name = Self.label("__name__", family.name)
            let bucketName = Self.label("__name__", family.name + "_bucket")
            let sumName = Self.label("__name__", family.name + "_sum"), countName = Self.label("__name__", family.name + "_count")
            let bounds = (family.bounds.map(ExpositionWriter.boundText) + ["+Inf"]).map { Self.label("le", $0) }
            /// `_bucket` (cumulative, with `le`), `_sum` and `_count` samples; returns the count.
            func classic(_ labels: SeriesLabels, _ counts: ArraySlice<UInt64>, sum: Double) -> UInt64 {
                var cumulative: UInt64 = 0
                for (bound, perBucket) in zip(bounds, counts) {
                    cumulative &+= perBucket
                    add(labels, bucketName, bound, value: Double(cumulative))
                }
                add(labels, sumName, value: sum)
                add(labels, countName, value: Double(cumulative))
                return cumulative
            }
            switch family.series {
            case .stored(let slots, let familyNative):
                let native = nativeHistograms ? familyNative : nil
                let firstIndex = native?.firstIndex ?? 0 // once per family: it derives the bucket bounds
                for index in slots.lazy.map(Int.init) {
                    let value = state.values[index]
                    let labels = SeriesLabels(state.table.labels(index))
                    switch family.kind {
                    case .counter:
                        add(labels, name, value: Double(value.counterInteger) + value.counterFloat)
                    case .gauge:
                        add(labels, name, value: value.gauge)
                    case .histogram:
                        let start = Int(state.table[index].bucketStart)
                        let count = classic(labels, state.buckets[start..<(start + bounds.count)], sum: value.sum)
                        if let native, let histogram = Self.nativeHistogram(
                            native, firstIndex: firstIndex, zero: state.buckets[start + bounds.count], window: state.window(index),
                            count: count, sum: value.sum, timestamp: timestamp) {
                            add(labels, name, histogram: histogram)
                        }
                    }
                }
            case .listed(let samples):
                for sample in samples {
                    let labels = SeriesLabels((LabelText.decode(sample.labels) ?? [])
                        .sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) })
                    switch sample.value {
                    case .counter(let integer, let fraction):
                        add(labels, name, value: MetricsSnapshot.Value.counterValue(integer: integer, fraction: fraction))
                    case .gauge(let value):
                        add(labels, name, value: value)
                    case .histogram(let bucketCounts, let sum):
                        _ = classic(labels, bucketCounts[...], sum: sum)
                    }
                }
            }
        }
        if count > 0 { requests.append(Request(body: writer.bytes, samples: count)) }
        return requests
    }

    /// A `Histogram` message of native buckets (the zero bucket's count, and the window's non-empty buckets), or
    /// nil when they do not hold every observation (an emitter without native buckets fed the series).
    static func nativeHistogram(_ native: NativeHistogramSpec, firstIndex: Int, zero: UInt64, window: NativeWindow, count: UInt64, sum: Double,
                                timestamp: Int64) -> [UInt8]? {
        guard zero &+ window.total == count else { return nil }
        var body: [UInt8] = []
        typealias P = ProtobufPrimitives
        func tag(_ field: UInt64, _ type: UInt64) { P.varint(field << 3 | type, into: &body) }
        func double(_ value: Double) { P.double(value, into: &body) }
        tag(1, 0); P.varint(count, into: &body)
        tag(3, 1); double(sum)
        tag(4, 0); P.varint(P.zigzag(Int64(native.schema)), into: &body)
        tag(5, 1); double(native.zeroThreshold)
        tag(6, 0); P.varint(zero, into: &body)
        var spans = NativeSpans()
        let first = Int64(firstIndex)
        window.forEach { position, bucketCount in spans.append(index: first + Int64(position), count: Int64(clamping: bucketCount)) }
        spans.encode(spanField: 11, deltaField: 12, packed: true, into: &body)
        tag(15, 0); P.varint(UInt64(bitPattern: timestamp), into: &body)
        return body
    }

    /// One `TimeSeries.labels` entry (tag, length, `Label{name, value}`), encoded.
    static func label(_ name: String, _ value: String) -> [UInt8] {
        var writer = ByteWriter(capacity: 8 + name.utf8.count + value.utf8.count)
        let size = 2 + ProtobufPrimitives.varintSize(name.utf8.count) + name.utf8.count + ProtobufPrimitives.varintSize(value.utf8.count) + value.utf8.count
        writer.u8(0x0A)
        writer.uvarint(UInt64(size))
        writer.u8(0x0A)
        writer.string(name)
        writer.u8(0x12)
        writer.string(value)
        return writer.bytes
    }

    /// A series' labels encoded once (sorted by name, as stored), with where `__name__` and `le` go among them:
    /// every sample of the series (22 for a histogram of 19 bounds) copies them instead of sorting and encoding.
    struct SeriesLabels {
        let encoded: [UInt8]
        /// Byte offsets in `encoded` before which `__name__` and `le` sort.
        let nameAt: Int
        let leAt: Int

        init(_ labels: [Label]) {
            var encoded: [UInt8] = []
            var nameAt: Int?, leAt: Int?
            for label in labels {
                if nameAt == nil, "__name__".utf8.lexicographicallyPrecedes(label.name.utf8) { nameAt = encoded.count }
                if leAt == nil, "le".utf8.lexicographicallyPrecedes(label.name.utf8) { leAt = encoded.count }
                encoded += RemoteWriteEncoder.label(label.name, label.value)
            }
            self.encoded = encoded
            self.nameAt = nameAt ?? encoded.count
            self.leAt = leAt ?? encoded.count
        }

        /// One `WriteRequest.timeseries` entry: these labels, `name` (an encoded `__name__` label) and `extra` (an
        /// encoded `le` label, or nothing) in name order, and one sample.
        func timeSeries(name: [UInt8], extra: [UInt8], value: Double, timestamp: Int64, into writer: inout ByteWriter) {
            let sampleSize = 1 + 8 + 1 + ProtobufPrimitives.varintSize(UInt64(bitPattern: timestamp))
            let size = encoded.count + name.count + extra.count + 1 + ProtobufPrimitives.varintSize(sampleSize) + sampleSize
            writer.u8(0x0A) // WriteRequest.timeseries
            writer.uvarint(UInt64(size))
            writeLabels(name: name, extra: extra, into: &writer)
            writer.u8(0x12) // TimeSeries.samples
            writer.uvarint(UInt64(sampleSize))
            writer.u8(0x09)
            writer.f64(value)
            writer.u8(0x10)
            writer.uvarint(UInt64(bitPattern: timestamp))
        }

        /// One `WriteRequest.timeseries` entry: these labels with `name`, and one native histogram.
        func histogramSeries(name: [UInt8], histogram: [UInt8], into writer: inout ByteWriter) {
            let size = encoded.count + name.count + 1 + ProtobufPrimitives.varintSize(histogram.count) + histogram.count
            writer.u8(0x0A) // WriteRequest.timeseries
            writer.uvarint(UInt64(size))
            writeLabels(name: name, extra: [], into: &writer)
            writer.u8(0x22) // TimeSeries.histograms
            writer.uvarint(UInt64(histogram.count))
            writer.raw(histogram[...])
        }

        private func writeLabels(name: [UInt8], extra: [UInt8], into writer: inout ByteWriter) {
            // `__name__` sorts before every lowercase name, so it never comes after `le`.
            var position = 0
            for (at, bytes) in [(nameAt, name), (extra.isEmpty ? encoded.count : leAt, extra)] where !bytes.isEmpty {
                writer.raw(encoded[position..<max(position, at)])
                writer.raw(bytes)
                position = max(position, at)
            }
            writer.raw(encoded[position...])
        }
    }
}
