import DanubeMetricsWire

/// Finds an observation's native bucket on the hot path: the zero bucket, or its place in the histogram's window
/// (`NativeHistogramSpec.index(ofBits:schema:mantissas:)`, inlined, with the bounds' mantissas kept here).
// @unchecked: immutable; `mantissas` points at an immortal, read-only copy.
@usableFromInline
struct NativeBuckets: @unchecked Sendable, Hashable {
    /// Cell offset of the zero bucket from the histogram's first cell; the window follows it.
    @usableFromInline let zeroCell: UInt32
    /// Cell offset of the sum, after the window.
    @usableFromInline let sumCell: UInt32
    @usableFromInline let zeroThreshold: Double
    @usableFromInline let schema: Int
    @usableFromInline let firstIndex: Int
    @usableFromInline let lastOffset: Int
    /// Immortal copy of `NativeHistogramSpec.mantissaBounds(schema:)` owned by the registry (unused at schema <= 0).
    @usableFromInline let mantissas: UnsafePointer<UInt64>

    init(spec: NativeHistogramSpec, zeroCell: UInt32, mantissas: UnsafePointer<UInt64>) {
        self.zeroCell = zeroCell
        sumCell = zeroCell &+ 1 &+ UInt32(spec.maxBuckets)
        zeroThreshold = spec.zeroThreshold
        schema = Int(spec.schema)
        firstIndex = spec.firstIndex
        lastOffset = Int(spec.maxBuckets) - 1
        self.mantissas = mantissas
    }

    /// The cell offset (from the histogram's first cell) counting `value` (not NaN).
    @inlinable
    func cell(of value: Double) -> UInt32 {
        guard value > zeroThreshold else { return zeroCell }
        // Above the zero threshold the index is at least the window's first; above the window, its last bucket.
        let index = min(NativeHistogramSpec.index(ofBits: value.bitPattern, schema: schema, mantissas: mantissas) &- firstIndex, lastOffset)
        return zeroCell &+ 1 &+ UInt32(truncatingIfNeeded: index)
    }
}
