#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Writes exposition bytes through a raw cursor into memory sized beforehand (`ExpositionSizing`), for the sample
/// lines of large families: one bounds check per piece instead of one per append, label sets and per-family
/// prefixes copied with `memcpy`, integers formatted in place. Hand-written because this loop is what a
/// million-series scrape costs; `ExpositionWriter` keeps the simple, checked appends for everything else.
struct SampleWriter {
    private(set) var cursor: UnsafeMutablePointer<UInt8>

    init(_ start: UnsafeMutablePointer<UInt8>) { cursor = start }

    @inline(__always)
    mutating func write(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        memcpy(cursor, base, bytes.count)
        cursor += bytes.count
    }

    @inline(__always)
    mutating func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    @inline(__always)
    mutating func write(_ bytes: UnsafeBufferPointer<UInt8>) {
        write(UnsafeRawBufferPointer(bytes))
    }

    @inline(__always)
    mutating func byte(_ value: UInt8) {
        cursor.pointee = value
        cursor += 1
    }

    /// Eight bytes, little-endian (a protobuf fixed64, `ProtobufWriter`).
    @inline(__always)
    mutating func littleEndian(_ word: UInt64) {
        UnsafeMutableRawPointer(cursor).storeBytes(of: word.littleEndian, as: UInt64.self)
        cursor += 8
    }

    /// Decimal digits written in place: counted first, then filled from the last.
    mutating func integer(_ value: UInt64) {
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        var v = value
        var position = cursor + digits
        repeat {
            position -= 1
            position.pointee = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v % 10)
            v /= 10
        } while v > 0
        cursor += digits
    }

    mutating func signedInteger(_ value: Int) {
        if value < 0 { byte(UInt8(ascii: "-")) }
        integer(UInt64(value.magnitude))
    }

    /// As `ExpositionWriter`: integral values without a fraction (exact up to 2^53), others in Swift's shortest
    /// round-trip form.
    mutating func double(_ value: Double) {
        if value.isFinite, value == value.rounded(), abs(value) < 9_007_199_254_740_992 {
            if value < 0 { byte(UInt8(ascii: "-")) }
            integer(UInt64(abs(value)))
        } else {
            var text = ExpositionWriter.formatDouble(value)
            text.withUTF8 { write($0) }
        }
    }

    /// The most bytes `integer` or `double` writes: `-1.7976931348623157e+308` is 24.
    static let maxNumberBytes = 32
}
