/// The protobuf wire primitives the hand-written encoders share (`ProtobufExposition`, `NativeSpans`,
/// `RemoteWriteEncoder`): varints, their sizes, zigzag for signed fields, little-endian doubles.
enum ProtobufPrimitives {
    static func varint(_ value: UInt64, into out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    static func varintSize(_ value: UInt64) -> Int { max(1, (64 - value.leadingZeroBitCount + 6) / 7) }

    static func varintSize(_ value: Int) -> Int { varintSize(UInt64(value)) }

    /// A count field from a value the text exposition wrote as a number: negative and NaN as 0, at least 2^64 as
    /// the largest count (a conversion that traps on them is never made on what came from outside).
    static func count(_ value: Double) -> UInt64 {
        guard value > 0 else { return 0 }
        return value < 18_446_744_073_709_551_616 ? UInt64(value) : .max
    }

    static func zigzag(_ value: Int64) -> UInt64 { UInt64(bitPattern: (value << 1) ^ (value >> 63)) }

    /// A fixed64 field's value: the double's bits, little-endian.
    static func double(_ value: Double, into out: inout [UInt8]) {
        for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8(truncatingIfNeeded: value.bitPattern >> UInt64(shift))) }
    }
}
