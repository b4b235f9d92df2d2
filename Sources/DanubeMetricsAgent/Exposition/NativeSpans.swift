/// Prometheus' sparse layout of native histogram buckets, shared by the protobuf exposition and remote write:
/// runs of consecutive bucket indexes (spans: the first offset absolute, each later one the gap after the previous
/// run) and each bucket's count as the difference to the one before (deltas). Append non-empty buckets in index
/// order.
struct NativeSpans {
    private(set) var spans: [(offset: Int64, length: UInt64)] = []
    private(set) var deltas: [Int64] = []
    private var previousIndex: Int64?
    private var previousCount: Int64 = 0

    mutating func append(index: Int64, count: Int64) {
        if let previous = previousIndex, index == previous + 1 {
            spans[spans.count - 1].length += 1
        } else {
            spans.append((previousIndex.map { index - $0 - 1 } ?? index, 1))
        }
        deltas.append(count - previousCount)
        previousIndex = index
        previousCount = count
    }

    /// `BucketSpan` messages (`offset` sint32 = 1, `length` uint32 = 2) as field `spanField`, then the deltas as
    /// field `deltaField` (sint64; unpacked, as the proto2 exposition declares them, or packed, as proto3 remote
    /// write does; parsers take either). A histogram without buckets gets one empty span, which marks it native
    /// for every Prometheus version.
    func encode(spanField: UInt64, deltaField: UInt64, packed: Bool, into out: inout [UInt8]) {
        for span in spans.isEmpty ? [(0, 0)] : spans {
            let offset = Self.zigzag(span.offset)
            Self.varint(spanField << 3 | 2, into: &out)
            Self.varint(UInt64(2 + Self.varintSize(offset) + Self.varintSize(span.length)), into: &out)
            Self.varint(1 << 3, into: &out)
            Self.varint(offset, into: &out)
            Self.varint(2 << 3, into: &out)
            Self.varint(span.length, into: &out)
        }
        guard !deltas.isEmpty else { return }
        if packed {
            Self.varint(deltaField << 3 | 2, into: &out)
            Self.varint(UInt64(deltas.reduce(0) { $0 + Self.varintSize(Self.zigzag($1)) }), into: &out)
            for delta in deltas { Self.varint(Self.zigzag(delta), into: &out) }
        } else {
            for delta in deltas {
                Self.varint(deltaField << 3, into: &out)
                Self.varint(Self.zigzag(delta), into: &out)
            }
        }
    }

    static func zigzag(_ value: Int64) -> UInt64 { UInt64(bitPattern: (value << 1) ^ (value >> 63)) }

    static func varintSize(_ value: UInt64) -> Int { max(1, (64 - value.leadingZeroBitCount + 6) / 7) }

    static func varint(_ value: UInt64, into out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }
}
