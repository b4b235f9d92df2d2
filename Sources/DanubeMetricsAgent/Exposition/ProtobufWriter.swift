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
