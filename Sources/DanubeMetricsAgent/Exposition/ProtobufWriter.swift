/// Writes protobuf fields through a raw cursor into memory sized beforehand, for the `Metric` messages of the
/// store's series: a million-series scrape is mostly this loop, and appending to arrays byte by byte (a capacity
/// and uniqueness check each) cost more than the encoding. The cursor is `SampleWriter`'s (the text encoder's);
/// callers compute each message's size before its length prefix (`LabelTextPairs`, `varintSize`).
struct ProtobufWriter {
    private(set) var raw: SampleWriter

    init(_ start: UnsafeMutablePointer<UInt8>) { raw = SampleWriter(start) }

    var cursor: UnsafeMutablePointer<UInt8> { raw.cursor }

    @inline(__always)
    mutating func byte(_ value: UInt8) { raw.byte(value) }

    @inline(__always)
    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            raw.byte(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        raw.byte(UInt8(v))
    }

    @inline(__always)
    mutating func varint(_ value: Int) { varint(UInt64(value)) }

    /// A fixed64 field's value: the double's bits, little-endian.
    @inline(__always)
    mutating func double(_ value: Double) { raw.littleEndian(value.bitPattern) }

    @inline(__always)
    mutating func bytes(_ bytes: UnsafeBufferPointer<UInt8>) { raw.write(bytes) }

    @inline(__always)
    mutating func bytes(_ bytes: [UInt8]) { raw.write(bytes) }

    /// `Metric.label` entries (`LabelPair{name = 1, value = 2}`) for a label text, values unescaped.
    mutating func labels(_ text: UnsafeBufferPointer<UInt8>) {
        LabelTextPairs.forEach(text) { pair in
            byte(1 << 3 | 2)
            varint(pair.innerSize)
            byte(1 << 3 | 2)
            varint(pair.name.count)
            bytes(UnsafeBufferPointer(rebasing: text[pair.name]))
            byte(2 << 3 | 2)
            varint(pair.valueCount)
            if pair.escapes == 0 {
                bytes(UnsafeBufferPointer(rebasing: text[pair.value]))
            } else {
                var index = pair.value.lowerBound
                while index < pair.value.upperBound {
                    if text[index] == UInt8(ascii: "\\"), index + 1 < pair.value.upperBound {
                        index += 1
                        byte(text[index] == UInt8(ascii: "n") ? UInt8(ascii: "\n") : text[index])
                    } else {
                        byte(text[index])
                    }
                    index += 1
                }
            }
        }
    }

    /// Encodes into a new array of at most `bound` bytes.
    static func encode(bound: Int, _ body: (inout ProtobufWriter) -> Void) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: bound) { output, count in
            guard let base = output.baseAddress else { return }
            var writer = ProtobufWriter(base)
            body(&writer)
            count = writer.cursor - base
        }
    }
}

extension ProtobufWriter {
    enum ScalarType {
        /// `Metric.counter` (field 3): `Counter{value = 1, exemplar = 2}`.
        case counter
        /// `Metric.gauge` (field 2): `Gauge{value = 1}`.
        case gauge
    }

    /// One `Metric` (field 4 of `MetricFamily`) with a counter's or gauge's value (an exemplar only on counters).
    mutating func scalarMetric(labels text: UnsafeBufferPointer<UInt8>, type: ScalarType, value: Double, exemplar: [UInt8]?) {
        let inner = 9 + (exemplar.map { Self.delimitedSize($0.count) } ?? 0)
        byte(4 << 3 | 2)
        varint(LabelTextPairs.fieldsSize(text) + 1 + ProtobufPrimitives.varintSize(inner) + inner)
        labels(text)
        byte(type == .counter ? 3 << 3 | 2 : 2 << 3 | 2)
        varint(inner)
        byte(1 << 3 | 1)
        double(value)
        if let exemplar {
            byte(2 << 3 | 2)
            varint(exemplar.count)
            bytes(exemplar)
        }
    }

    /// One `Metric` with `Histogram{sample_count = 1, sample_sum = 2, bucket = 3, native fields}` (field 7):
    /// `Bucket{cumulative_count = 1, upper_bound = 2, exemplar = 3}` for every classic bucket (`counts` per bucket,
    /// +Inf last), sizes computed first. `exemplars` are encoded, by bucket.
    mutating func histogramMetric(labels text: UnsafeBufferPointer<UInt8>, counts: UnsafeBufferPointer<UInt64>, bounds: [Double],
                                  sum: Double, exemplars: [[UInt8]?]?, nativeFields: [UInt8]) {
        func exemplar(_ bucket: Int) -> [UInt8]? {
            guard let exemplars, bucket < exemplars.count else { return nil }
            return exemplars[bucket]
        }
        var cumulative: UInt64 = 0, bucketsSize = 0
        for bucket in 0..<counts.count {
            cumulative &+= counts[bucket]
            let size = 1 + ProtobufPrimitives.varintSize(cumulative) + 9 + (exemplar(bucket).map { Self.delimitedSize($0.count) } ?? 0)
            bucketsSize += 1 + ProtobufPrimitives.varintSize(size) + size
        }
        let inner = 1 + ProtobufPrimitives.varintSize(cumulative) + 9 + bucketsSize + nativeFields.count
        byte(4 << 3 | 2)
        varint(LabelTextPairs.fieldsSize(text) + 1 + ProtobufPrimitives.varintSize(inner) + inner)
        labels(text)
        byte(7 << 3 | 2)
        varint(inner)
        byte(1 << 3)
        varint(cumulative)
        byte(2 << 3 | 1)
        double(sum)
        var running: UInt64 = 0
        for bucket in 0..<counts.count {
            running &+= counts[bucket]
            let encodedExemplar = exemplar(bucket)
            byte(3 << 3 | 2)
            varint(1 + ProtobufPrimitives.varintSize(running) + 9 + (encodedExemplar.map { Self.delimitedSize($0.count) } ?? 0))
            byte(1 << 3)
            varint(running)
            byte(2 << 3 | 1)
            double(bucket < bounds.count ? bounds[bucket] : .infinity)
            if let encodedExemplar {
                byte(3 << 3 | 2)
                varint(encodedExemplar.count)
                bytes(encodedExemplar)
            }
        }
        bytes(nativeFields)
    }

    /// Bytes a length-delimited field of `count` bytes takes with its tag (a field number below 16).
    static func delimitedSize(_ count: Int) -> Int { 1 + ProtobufPrimitives.varintSize(UInt64(count)) + count }
}
