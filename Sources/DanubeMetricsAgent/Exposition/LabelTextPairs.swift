#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

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
