#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Writes protobuf fields through a raw cursor into memory sized beforehand, for the `Metric` messages of the
/// store's series: a million-series scrape is mostly this loop, and appending to arrays byte by byte (a capacity
/// and uniqueness check each) cost more than the encoding. Hand-written for the same reason as `SampleWriter`;
/// callers compute each message's size before its length prefix (`LabelTextPairs`, `varintSize`).
struct ProtobufWriter {
    private(set) var cursor: UnsafeMutablePointer<UInt8>

    init(_ start: UnsafeMutablePointer<UInt8>) { cursor = start }

    @inline(__always)
    mutating func byte(_ value: UInt8) {
        cursor.pointee = value
        cursor += 1
    }

    @inline(__always)
    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            byte(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        byte(UInt8(v))
    }

    @inline(__always)
    mutating func varint(_ value: Int) { varint(UInt64(value)) }

    /// A fixed64 field's value: the double's bits, little-endian.
    @inline(__always)
    mutating func double(_ value: Double) {
        UnsafeMutableRawPointer(cursor).storeBytes(of: value.bitPattern.littleEndian, as: UInt64.self)
        cursor += 8
    }

    @inline(__always)
    mutating func bytes(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        memcpy(cursor, base, bytes.count)
        cursor += bytes.count
    }

    @inline(__always)
    mutating func bytes(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { self.bytes($0) }
    }

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

/// The pairs of a label text `a="x",b="y"` as the store keeps it (values escaped), found with `memchr`: label
/// texts are most of what a protobuf scrape reads, and most values have no escape.
enum LabelTextPairs {
    struct Pair {
        var name: Range<Int>
        /// The escaped value's bytes, between the quotes.
        var value: Range<Int>
        var escapes: Int

        var valueCount: Int { value.count - escapes }
        /// The `LabelPair` message's size.
        var innerSize: Int {
            2 + ProtobufPrimitives.varintSize(name.count) + name.count + ProtobufPrimitives.varintSize(valueCount) + valueCount
        }
        /// The `Metric.label` field's size with its tag and length.
        var fieldSize: Int { 1 + ProtobufPrimitives.varintSize(innerSize) + innerSize }
    }

    /// The most bytes the `Metric.label` fields of a label text take: a pair's 12 bytes of tags and lengths come
    /// with at least four bytes of text (`a=""` and its comma).
    static func maxFieldBytes(_ textCount: Int) -> Int { 4 * textCount + 12 }

    /// The `Metric.label` fields' size.
    @inline(__always)
    static func fieldsSize(_ text: UnsafeBufferPointer<UInt8>) -> Int {
        var size = 0
        forEach(text) { size += $0.fieldSize }
        return size
    }

    @inline(__always)
    static func forEach(_ text: UnsafeBufferPointer<UInt8>, _ body: (Pair) -> Void) {
        guard let base = text.baseAddress else { return }
        var at = 0
        while at < text.count {
            guard let equalsPointer = memchr(base + at, Int32(UInt8(ascii: "=")), text.count - at) else { return }
            let equals = UnsafeRawPointer(equalsPointer).assumingMemoryBound(to: UInt8.self) - base
            let valueStart = equals + 2
            guard valueStart <= text.count else { return }
            var end = valueStart
            while true {
                guard let quote = memchr(base + end, Int32(UInt8(ascii: "\"")), text.count - end) else { return }
                let next = UnsafeRawPointer(quote).assumingMemoryBound(to: UInt8.self) - base
                // A quote after an odd run of backslashes is escaped: go on after it.
                var run = 0
                while next - run - 1 >= valueStart, text[next - run - 1] == UInt8(ascii: "\\") { run += 1 }
                end = next
                if run % 2 == 0 { break }
                end += 1
            }
            var escapes = 0
            if memchr(base + valueStart, Int32(UInt8(ascii: "\\")), end - valueStart) != nil {
                var index = valueStart
                while index < end {
                    if text[index] == UInt8(ascii: "\\") { escapes += 1; index += 1 }
                    index += 1
                }
            }
            body(Pair(name: at..<equals, value: valueStart..<end, escapes: escapes))
            at = end + 2 // past `",`
        }
    }
}
