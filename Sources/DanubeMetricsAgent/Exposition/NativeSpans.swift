/// Prometheus' sparse layout of native histogram buckets, shared by the protobuf exposition and remote write:
/// runs of consecutive bucket indexes (spans: the first offset absolute, each later one the gap after the previous
/// run) and each bucket's count as the difference to the one before (deltas). Append non-empty buckets in index
/// order.
struct NativeSpans {
    private typealias P = ProtobufPrimitives

    private(set) var spans: [(offset: Int64, length: UInt64)] = []
    private(set) var deltas: [Int64] = []
    private var previousIndex: Int64?
    private var previousCount: Int64 = 0

    /// Counts below 0 count as 0, so that the difference of two counts always fits; indexes come in increasing
    /// order from the store (their differences are small, and wrap rather than trap if they were not).
    mutating func append(index: Int64, count: Int64) {
        let count = max(0, count)
        if let previous = previousIndex, index == previous &+ 1 {
            spans[spans.count - 1].length += 1
        } else {
            spans.append((previousIndex.map { index &- $0 &- 1 } ?? index, 1))
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
            let offset = P.zigzag(span.offset)
            P.varint(spanField << 3 | 2, into: &out)
            P.varint(UInt64(2 + P.varintSize(offset) + P.varintSize(span.length)), into: &out)
            P.varint(1 << 3, into: &out)
            P.varint(offset, into: &out)
            P.varint(2 << 3, into: &out)
            P.varint(span.length, into: &out)
        }
        guard !deltas.isEmpty else { return }
        if packed {
            P.varint(deltaField << 3 | 2, into: &out)
            P.varint(UInt64(deltas.reduce(0) { $0 + P.varintSize(P.zigzag($1)) }), into: &out)
            for delta in deltas { P.varint(P.zigzag(delta), into: &out) }
        } else {
            for delta in deltas {
                P.varint(deltaField << 3, into: &out)
                P.varint(P.zigzag(delta), into: &out)
            }
        }
    }
}
