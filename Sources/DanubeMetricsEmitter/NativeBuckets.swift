import DanubeMetricsWire

/// Finds an observation's native bucket on the hot path: the zero bucket, or its place in the histogram's window.
/// The index is Prometheus' (`NativeHistogramSpec.index(ofBits:schema:mantissas:)`, which the agent uses and the
/// shared vectors check); here it is found without a search or a branch on the schema: `MantissaSlots` gives the
/// mantissa's slot in one compare, and one formula covers every schema (see `cell(of:)`).
// @unchecked: immutable; `slots` points at immortal, read-only tables.
@usableFromInline
struct NativeBuckets: @unchecked Sendable {
    /// Cell offset of the zero bucket from the histogram's first cell; the window follows it.
    @usableFromInline let zeroCell: UInt32
    /// Cell offset of the first sum cell, after the window.
    @usableFromInline let sumCell: UInt32
    @usableFromInline let zeroThreshold: Double
    /// 2^max(schema, 0): the biased exponent's scale (a multiply: no shift count to move into a register).
    @usableFromInline let exponentScale: Int
    /// max(-schema, 0): how many powers of two a bucket of a schema <= 0 spans, as a shift.
    @usableFromInline let indexShift: Int
    /// Added before `indexShift`: minus the exponent's bias (1023, shifted), plus 2^indexShift - 1 (rounds up).
    @usableFromInline let bias: Int
    /// From Prometheus' index to a cell offset: the window's first bucket (`firstIndex`) is cell `zeroCell + 1`.
    @usableFromInline let cellOffset: Int
    /// The window's last cell, which also counts everything above the window.
    @usableFromInline let lastCell: Int
    /// The schema's slot table (shared by every family of that schema, owned by the registry), kept here by
    /// value: one dependent load less per observation.
    @usableFromInline let slots: MantissaSlots

    /// `slots` must be the schema's (`MantissaSlots(schema: max(spec.schema, 0))`).
    init(spec: NativeHistogramSpec, zeroCell: UInt32, slots: MantissaSlots) {
        self.zeroCell = zeroCell
        sumCell = zeroCell &+ 1 &+ UInt32(spec.maxBuckets)
        zeroThreshold = spec.zeroThreshold
        exponentScale = 1 << max(Int(spec.schema), 0)
        indexShift = max(-Int(spec.schema), 0)
        bias = ((1 << indexShift) - 1) - 1023 * exponentScale
        cellOffset = Int(zeroCell) + 1 - spec.firstIndex
        lastCell = Int(zeroCell) + Int(spec.maxBuckets)
        self.slots = slots
    }

    /// The cell offset (from the histogram's first cell) counting `value` (not NaN).
    ///
    /// Above the threshold (> 0) a value's bits are a biased exponent e and a mantissa m in slot j of its power of
    /// two; Prometheus' index is j + (e - 1023) << s for a schema s > 0, and ceil of (e - 1023 + j) / 2^-s for
    /// s <= 0 (slot j of schema 0 is 1 for any m above 0, as ceil(log2) wants). Both are
    /// (j + e * exponentScale + bias) >> indexShift: the scale or the shift is always 1 or 0.
    @inlinable @inline(__always)
    func cell(of value: Double) -> Int {
        guard value > zeroThreshold else { return Int(zeroCell) }
        let bits = value.bitPattern
        let exponent = Int(truncatingIfNeeded: bits &>> 52) // no sign bit: the value is above a positive threshold
        let slot = slots.slot(of: bits & 0x000F_FFFF_FFFF_FFFF)
        let index = (slot &+ exponent &* exponentScale &+ bias) &>> indexShift
        // Above the zero threshold the index is at least the window's first; above the window, its last bucket.
        return min(index &+ cellOffset, lastCell)
    }
}

/// A mantissa's slot in its power of two at schema s > 0 (the first j whose bound 2^(j/2^s) is not below it) in
/// one compare instead of a binary search over 2^s bounds: the mantissa's top 9 bits (`cellBits`) index
/// `guesses`, the first slot whose bound reaches that cell. Consecutive bounds are more than a cell apart
/// (2^(1/2^s) - 1 > 1/2^(s+1) >= 1/2^9 for s <= 8), so a cell holds at most one bound and the slot is the guess or
/// the one after it. The same 9 bits for every schema: a constant shift, where a per-schema one costs a register.
// @unchecked: immutable; its pointers are immortal, read-only copies owned by the emitter's registry.
@usableFromInline
struct MantissaSlots: @unchecked Sendable {
    /// `NativeHistogramSpec.mantissaBounds(schema:)` and 2^52 after them (above every mantissa).
    @usableFromInline let mantissas: UnsafePointer<UInt64>
    /// 2^cellBits entries.
    @usableFromInline let guesses: UnsafePointer<UInt16>
    @usableFromInline static var cellBits: UInt64 { 9 }

    /// For schemas 0...8 (Prometheus' largest); schemas below 0 use schema 0's (a slot of 1 for any mantissa but
    /// 0, the one bound of schema 0 being the power of two itself).
    init(schema: Int8) {
        let schema = min(max(schema, 0), 8)
        let bounds = (schema == 0 ? [0] : NativeHistogramSpec.mantissaBounds(schema: schema)) + [1 << 52]
        let mantissas = UnsafeMutablePointer<UInt64>.allocate(capacity: bounds.count)
        mantissas.initialize(from: bounds, count: bounds.count)
        let cells = 1 << Self.cellBits
        let guesses = UnsafeMutablePointer<UInt16>.allocate(capacity: cells)
        for cell in 0..<cells {
            let start = UInt64(cell) << (52 - Self.cellBits)
            guesses[cell] = UInt16(bounds.firstIndex { $0 >= start } ?? bounds.count - 1)
        }
        self.mantissas = UnsafePointer(mantissas)
        self.guesses = UnsafePointer(guesses)
    }

    @inlinable @inline(__always)
    func slot(of mantissa: UInt64) -> Int {
        let guess = Int(guesses[Int(truncatingIfNeeded: mantissa &>> (52 - Self.cellBits))])
        return mantissas[guess] < mantissa ? guess &+ 1 : guess
    }
}
