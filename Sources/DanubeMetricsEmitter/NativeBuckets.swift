import DanubeMetricsWire

/// Finds an observation's native bucket on the hot path: the zero bucket, or its place in the histogram's window
/// (`NativeHistogramSpec`). No floating-point log: the exponent comes from the value's bits and, for schemas above
/// 0, a binary search over the mantissas of the 2^schema bucket bounds inside one power of two (3 comparisons at
/// schema 3). Prometheus' convention: upper bounds are inclusive.
@usableFromInline
struct NativeBuckets: @unchecked Sendable, Hashable {
    /// Cell offset of the zero bucket from the histogram's first cell; the window follows it.
    @usableFromInline let zeroCell: UInt32
    @usableFromInline let zeroThreshold: Double
    @usableFromInline let schema: Int
    @usableFromInline let firstIndex: Int
    @usableFromInline let lastOffset: Int
    /// Immortal copy of `NativeHistogramSpec.mantissaBounds(schema:)` owned by the registry (empty at schema <= 0).
    @usableFromInline let mantissas: UnsafePointer<UInt64>
    @usableFromInline let mantissaCount: Int

    init(spec: NativeHistogramSpec, zeroCell: UInt32, mantissas: UnsafePointer<UInt64>) {
        self.zeroCell = zeroCell
        zeroThreshold = spec.zeroThreshold
        schema = Int(spec.schema)
        firstIndex = spec.firstIndex
        lastOffset = Int(spec.maxBuckets) - 1
        self.mantissas = mantissas
        mantissaCount = spec.schema > 0 ? 1 << Int(spec.schema) : 0
    }

    /// The cell offset (from the histogram's first cell) counting `value` (not NaN).
    @inlinable
    func cell(of value: Double) -> UInt32 {
        guard value > zeroThreshold else { return zeroCell }
        let bits = value.bitPattern
        let exponent = Int(truncatingIfNeeded: (bits >> 52) & 0x7FF) &- 1023
        let mantissa = bits & 0x000F_FFFF_FFFF_FFFF
        var index: Int
        if mantissaCount > 0 {
            var low = 0, high = mantissaCount
            while low < high {
                let mid = (low &+ high) >> 1
                if mantissas[mid] < mantissa { low = mid &+ 1 } else { high = mid }
            }
            index = low &+ (exponent << schema)
        } else {
            let power = exponent &+ (mantissa == 0 ? 0 : 1)
            index = (power &+ (1 << -schema) &- 1) >> -schema
        }
        // Above the zero threshold the index is at least the window's first; above the window, its last bucket.
        index = min(index &- firstIndex, lastOffset)
        return zeroCell &+ 1 &+ UInt32(truncatingIfNeeded: index)
    }
}
