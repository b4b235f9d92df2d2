/// Finds an observation's classic bucket on the hot path: the first bound the value does not exceed, or +Inf.
///
/// A binary search over a latency layout's 19 bounds is five dependent compares per observation. Bounds are fixed
/// per family, so they are indexed once by the value's leading bits: its exponent and the top `cellBits` bits of
/// its mantissa name a *cell* (a power of two, or a part of one), `cellStarts` says how many bounds lie below the
/// cell, and a scan from there stops at the first bound not below the value (a +Inf sentinel ends it). The cell
/// width is chosen per layout so that a cell holds at most one bound where a table of `maxCells` allows it: the
/// latency layout needs whole powers of two, a linear one of 64 bounds 64 cells per power of two; either way an
/// observation costs one or two compares. Correct for any finite, strictly increasing bounds (the scan is only
/// longer where cells hold more: below the smallest positive bound, and past `maxCells`).
// @unchecked: immutable; its pointers are immortal, read-only copies owned by the emitter's registry.
@usableFromInline
struct ClassicBuckets: @unchecked Sendable {
    /// The bounds and +Inf after them.
    @usableFromInline let bounds: UnsafePointer<Double>
    /// Entry c: how many bounds lie below cell c's smallest value (entry 0 is 0: cell 0 also holds every value
    /// below the smallest positive bound's power of two, negatives and zeros included).
    @usableFromInline let cellStarts: UnsafePointer<UInt32>
    /// A value's cell: its bits shifted right by `cellShift` (sign, exponent and top mantissa bits) minus
    /// `lowestCell`, clamped to 0...lastCell.
    @usableFromInline let cellShift: Int64
    @usableFromInline let lowestCell: Int64
    @usableFromInline let lastCell: Int64
    /// The sum's cell offset from the histogram's first cell when it has no native buckets: after +Inf.
    @usableFromInline let sumCell: UInt32

    /// Cells indexed at most (4 KiB of starts per family).
    static let maxCells = 1024
    /// Mantissa bits a cell index takes at most: 64 cells per power of two.
    static let maxCellBits = 6

    /// Copies `values` (finite, strictly increasing) into immortal storage and indexes them.
    init(bounds values: [Double]) {
        let bounds = UnsafeMutablePointer<Double>.allocate(capacity: values.count + 1)
        bounds.initialize(from: values + [.infinity], count: values.count + 1)
        self.bounds = UnsafePointer(bounds)
        sumCell = UInt32(values.count) + 1
        let positive = values.filter { $0 > 0 }
        var layout = (shift: Int64(52), lowest: Int64(0), starts: [UInt32(0)])
        if let smallest = positive.first, let largest = positive.last {
            for bits in 0...Self.maxCellBits {
                let candidate = Self.cells(values, bits: bits, from: smallest, to: largest)
                if bits > 0 && candidate.starts.count > Self.maxCells { break }
                layout = candidate
                let mostInACell = zip(candidate.starts.dropFirst(), candidate.starts).map { $0 - $1 }.max() ?? 0
                if mostInACell <= 1 { break }
            }
        }
        let starts = UnsafeMutablePointer<UInt32>.allocate(capacity: layout.starts.count)
        starts.initialize(from: layout.starts, count: layout.starts.count)
        cellStarts = UnsafePointer(starts)
        cellShift = layout.shift
        lowestCell = layout.lowest
        lastCell = Int64(layout.starts.count - 1)
    }

    /// Cells of 2^-bits of a power of two from `smallest`'s to one past `largest`'s (at most `maxCells`).
    private static func cells(_ values: [Double], bits: Int, from smallest: Double, to largest: Double)
        -> (shift: Int64, lowest: Int64, starts: [UInt32])
    {
        let shift = Int64(52 - bits)
        let lowest = Int64(bitPattern: smallest.bitPattern) >> shift
        let last = min((Int64(bitPattern: largest.bitPattern) >> shift) - lowest + 1, Int64(maxCells - 1))
        var starts: [UInt32] = [0]
        var below = 0
        if last > 0 {
            for cell in 1...last {
                let edge = Double(bitPattern: UInt64(lowest + cell) << UInt64(shift))
                while below < values.count && values[below] < edge { below += 1 }
                starts.append(UInt32(below))
            }
        }
        return (shift, lowest, starts)
    }

    /// The bucket `value` (not NaN) falls in: the number of bounds below it.
    @inlinable @inline(__always)
    func bucket(of value: Double) -> Int {
        // An arithmetic shift of the bits: negative values and -0 get a negative cell, so cell 0.
        let cell = min(max((Int64(bitPattern: value.bitPattern) &>> cellShift) &- lowestCell, 0), lastCell)
        var bucket = Int(cellStarts[Int(cell)])
        while value > bounds[bucket] { bucket &+= 1 } // the last bound is +Inf
        return bucket
    }
}
