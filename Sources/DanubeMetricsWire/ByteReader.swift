/// Reads protocol primitives from a byte buffer, failing with a `WireError` instead of trapping on bad input.
public struct ByteReader {
    private let base: UnsafeRawBufferPointer
    public private(set) var offset: Int

    public init(_ base: UnsafeRawBufferPointer, offset: Int = 0) {
        self.base = base
        self.offset = offset
    }

    public var remaining: Int { base.count - offset }
    public var isAtEnd: Bool { offset >= base.count }

    private mutating func need(_ n: Int, _ what: String) throws(WireError) {
        if n > remaining { throw WireError(.truncated, "\(what) runs past the end of the frame") }
    }

    public mutating func u8(_ what: String = "byte") throws(WireError) -> UInt8 {
        try need(1, what)
        defer { offset += 1 }
        return base[offset]
    }

    public mutating func u16(_ what: String = "u16") throws(WireError) -> UInt16 { try littleEndian(what) }
    public mutating func u32(_ what: String = "u32") throws(WireError) -> UInt32 { try littleEndian(what) }
    public mutating func u64(_ what: String = "u64") throws(WireError) -> UInt64 { try littleEndian(what) }

    private mutating func littleEndian<T: FixedWidthInteger & UnsignedInteger>(_ what: String) throws(WireError) -> T {
        let size = MemoryLayout<T>.size
        try need(size, what)
        var value: T = 0
        for i in 0..<size { value |= T(base[offset + i]) << (8 * i) }
        offset += size
        return value
    }

    public mutating func uvarint(_ what: String = "varint") throws(WireError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            try need(1, what)
            let byte = base[offset]
            offset += 1
            if shift == 63 && byte > 1 { throw WireError(.malformed, "\(what) overflows 64 bits") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                if byte == 0 && shift > 0 { throw WireError(.malformed, "\(what) is not minimally encoded") }
                return result
            }
            shift += 7
            if shift > 63 { throw WireError(.malformed, "\(what) is longer than 10 bytes") }
        }
    }

    /// A varint that must fit in 32 bits (series ids, bucket indexes).
    public mutating func uvarint32(_ what: String) throws(WireError) -> UInt32 {
        let v = try uvarint(what)
        guard v <= UInt64(UInt32.max) else { throw WireError(.malformed, "\(what) \(v) exceeds 32 bits") }
        return UInt32(v)
    }

    public mutating func f64(_ what: String = "double") throws(WireError) -> Double {
        Double(bitPattern: try u64(what))
    }

    /// A length-prefixed UTF-8 string of at most `limit` bytes.
    public mutating func string(_ what: String, limit: Int) throws(WireError) -> String {
        let length = try uvarint("\(what) length")
        guard length <= UInt64(limit) else {
            throw WireError(.limitExceeded, "\(what) is \(length) bytes, the limit is \(limit)")
        }
        let n = Int(length)
        try need(n, what)
        let slice = UnsafeRawBufferPointer(rebasing: base[offset..<offset + n])
        offset += n
        guard let text = String(validating: slice, as: UTF8.self) else {
            throw WireError(.malformed, "\(what) is not valid UTF-8")
        }
        return text
    }

    public mutating func bytes(_ n: Int, _ what: String) throws(WireError) -> [UInt8] {
        try need(n, what)
        defer { offset += n }
        return Array(base[offset..<offset + n])
    }
}
