/// Appends protocol primitives to a byte array: LEB128 varints, little-endian fixed-width integers, IEEE-754
/// doubles and length-prefixed UTF-8 strings. Hand-written because the format is ours and tiny; a general
/// serialisation library would add a dependency and allocations for no gain.
public struct ByteWriter {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }

    public mutating func u8(_ value: UInt8) { bytes.append(value) }

    public mutating func u16(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
    }

    public mutating func u32(_ value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    public mutating func u64(_ value: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    public mutating func uvarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    public mutating func f64(_ value: Double) { u64(value.bitPattern) }

    public mutating func string(_ value: String) {
        var copy = value
        copy.withUTF8 { utf8 in
            uvarint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    public mutating func raw(_ data: [UInt8]) { bytes.append(contentsOf: data) }

    public mutating func raw(_ data: ArraySlice<UInt8>) { bytes.append(contentsOf: data) }

    /// Overwrites four bytes at `offset` with `value` (little-endian); used to patch a frame's length.
    public mutating func patchU32(at offset: Int, _ value: UInt32) {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> UInt32(8 * i)) }
    }

    /// Drops everything after `count` bytes; used to undo an item that did not fit a frame.
    public mutating func truncate(to count: Int) { bytes.removeSubrange(count...) }

    public mutating func removeAll() { bytes.removeAll(keepingCapacity: true) }
}
