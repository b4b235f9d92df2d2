import DanubeMetricsWire

/// Finds an observation's native bucket on the hot path: the zero bucket, or its place in the histogram's window.
/// The index is Prometheus' (`NativeHistogramSpec.index(ofBits:schema:mantissas:)`, which the agent uses and the
/// shared vectors check); here it is found without a search: `MantissaSlots` gives the slot in one compare.
// @unchecked: immutable; `slots` points at immortal, read-only tables.
@usableFromInline
struct NativeBuckets: @unchecked Sendable {
    /// Cell offset of the zero bucket from the histogram's first cell; the window follows it.
    @usableFromInline let zeroCell: UInt32
    /// Cell offset of the sum, after the window.
    @usableFromInline let sumCell: UInt32
    @usableFromInline let zeroThreshold: Double
    @usableFromInline let schema: Int
    @usableFromInline let firstIndex: Int
    @usableFromInline let lastOffset: Int
    /// The schema's slot table (its tables shared by every family of that schema, owned by the registry), kept
    /// here by value: one dependent load less per observation.
    @usableFromInline let slots: MantissaSlots

    init(spec: NativeHistogramSpec, zeroCell: UInt32, slots: MantissaSlots) {
        self.zeroCell = zeroCell
        sumCell = zeroCell &+ 1 &+ UInt32(spec.maxBuckets)
        zeroThreshold = spec.zeroThreshold
        schema = Int(spec.schema)
        firstIndex = spec.firstIndex
        lastOffset = Int(spec.maxBuckets) - 1
        self.slots = slots
    }

    /// The cell offset (from the histogram's first cell) counting `value` (not NaN).
    @inlinable @inline(__always)
    func cell(of value: Double) -> UInt32 {
        guard value > zeroThreshold else { return zeroCell }
        // Above the zero threshold the index is at least the window's first; above the window, its last bucket.
        let index = min(index(ofBits: value.bitPattern) &- firstIndex, lastOffset)
        return zeroCell &+ 1 &+ UInt32(truncatingIfNeeded: index)
    }

    /// Prometheus' bucket index of a positive value's bits (as `NativeHistogramSpec.index(ofBits:...)`).
    @inlinable @inline(__always)
    func index(ofBits bits: UInt64) -> Int {
        let exponent = Int(truncatingIfNeeded: (bits >> 52) & 0x7FF) &- 1023
        let mantissa = bits & 0x000F_FFFF_FFFF_FFFF
        guard schema > 0 else {
            let power = exponent &+ (mantissa == 0 ? 0 : 1) // ceil(log2(value))
            let shift = 0 &- schema // 0...4: masking shifts, no overflow checks on the hot path
            return (power &+ (1 &<< shift) &- 1) &>> shift
        }
        return slots.slot(of: mantissa) &+ (exponent &<< schema)
    }
}

/// A mantissa's slot in its power of two at schema s > 0 (the first j whose bound 2^(j/2^s) is not below it) in
/// one compare instead of a binary search over 2^s bounds: the mantissa's top s+1 bits index `guesses`, the first
/// slot whose bound reaches that cell. Consecutive bounds are more than a cell apart (2^(1/2^s) - 1 > 1/2^(s+1)),
/// so a cell holds at most one bound and the slot is the guess or the one after it.
// @unchecked: immutable; its pointers are immortal, read-only copies owned by the emitter's registry.
@usableFromInline
struct MantissaSlots: @unchecked Sendable {
    /// `NativeHistogramSpec.mantissaBounds(schema:)` and 2^52 after them (above every mantissa).
    @usableFromInline let mantissas: UnsafePointer<UInt64>
    @usableFromInline let guesses: UnsafePointer<UInt16>
    @usableFromInline let guessShift: UInt64

    /// Only for schemas 1...8 (Prometheus' largest); other schemas find the index without slots.
    init(schema: Int8) {
        let schema = min(max(schema, 1), 8)
        let bounds = NativeHistogramSpec.mantissaBounds(schema: schema) + [1 << 52]
        let mantissas = UnsafeMutablePointer<UInt64>.allocate(capacity: bounds.count)
        mantissas.initialize(from: bounds, count: bounds.count)
        let cells = 1 << (Int(schema) + 1)
        let shift = UInt64(52 - Int(schema) - 1)
        let guesses = UnsafeMutablePointer<UInt16>.allocate(capacity: cells)
        for cell in 0..<cells {
            let start = UInt64(cell) << shift
            guesses[cell] = UInt16(bounds.firstIndex { $0 >= start } ?? bounds.count - 1)
        }
        self.mantissas = UnsafePointer(mantissas)
        self.guesses = UnsafePointer(guesses)
        guessShift = shift
    }

    @inlinable @inline(__always)
    func slot(of mantissa: UInt64) -> Int {
        let guess = Int(guesses[Int(truncatingIfNeeded: mantissa &>> guessShift)])
        return mantissas[guess] < mantissa ? guess &+ 1 : guess
    }
}
