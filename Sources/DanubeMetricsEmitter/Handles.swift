import DanubeMetricsWire
import CDanubeCells

/// A monotonically increasing count. Resolve once with `Emitter.counter(...)`, then call `increment(by:)` on the
/// hot path: it touches only the calling thread's cell (no lock, no syscall, no allocation).
public struct Counter: Sendable, Hashable {
    @usableFromInline let cell: UInt32

    init(cell: UInt32) { self.cell = cell }

    @inlinable
    public func increment(by amount: UInt64 = 1) {
        dm_cell_add_u64(cell, amount)
    }

    /// As `increment(by:)`, and `exemplar` becomes this counter's latest (shown with it in OpenMetrics scrapes).
    public func increment(by amount: UInt64 = 1, exemplar: Exemplar) {
        dm_cell_add_u64(cell, amount)
        PendingExemplars.record(cell: cell, bucket: 0, value: Double(amount), exemplar: exemplar)
    }
}

/// A value that goes up and down. `set` is last-writer-wins on one shared word; `add` is a lock-free CAS loop.
/// The agent keeps the last value the emitter sent.
// @unchecked: the word is shared on purpose, and every access to it is an atomic load, store or CAS.
public struct Gauge: @unchecked Sendable, Hashable {
    /// Immortal storage owned by the emitter's registry: handles never outlive it.
    @usableFromInline let word: UnsafeMutablePointer<UInt64>

    init(word: UnsafeMutablePointer<UInt64>) { self.word = word }

    @inlinable
    public func set(_ value: Double) {
        dm_shared_store(word, value.bitPattern)
    }

    @inlinable
    public func add(_ delta: Double) {
        dm_shared_add_f64(word, delta)
    }

    @inlinable public func increment() { add(1) }
    @inlinable public func decrement() { add(-1) }

    /// The value as this process sees it now.
    public var value: Double { Double(bitPattern: dm_shared_load(word)) }
}

/// A distribution with fixed bucket upper bounds (+Inf implicit), and optionally native (exponential) buckets
/// beside them. `observe` finds the bucket by binary search and bumps per-thread cells: the bucket, the native
/// bucket when there are native buckets, and the sum. NaN observations are ignored.
// @unchecked: its pointers are immortal and read-only; the cells it bumps are the calling thread's own.
public struct Histogram: @unchecked Sendable, Hashable {
    // Three words, so that the handle passes in registers through an opaque call and fits an existential's
    // inline buffer (a 72-byte handle with the native finder inline was copied to the stack, or boxed, per call).
    /// Immortal copy of the bounds owned by the registry.
    @usableFromInline let bounds: UnsafePointer<Double>
    /// The family's native bucket finder (immortal, owned by the registry), or nil for classic buckets only.
    @usableFromInline let native: UnsafePointer<NativeBuckets>?
    @usableFromInline let firstCell: UInt32
    @usableFromInline let boundCount: UInt32

    init(firstCell: UInt32, bounds: UnsafePointer<Double>, boundCount: UInt32, native: UnsafePointer<NativeBuckets>?) {
        self.firstCell = firstCell
        self.bounds = bounds
        self.boundCount = boundCount
        self.native = native
    }

    @inlinable
    public func observe(_ value: Double) {
        if value.isNaN { return }
        let bucket = bucket(of: value)
        record(value, bucket: bucket)
        let span = dm_span_current_get()
        if span.flags & UInt64(DM_SPAN_SAMPLED) != 0 { link(value, bucket: bucket, span: span) }
    }

    /// An observation inside a sampled span becomes its bucket's exemplar, pointing at that span.
    @usableFromInline @inline(never)
    func link(_ value: Double, bucket: UInt32, span: dm_span_current) {
        let trace = TraceID(high: span.trace_high, low: span.trace_low)
        guard let exemplar = try? Exemplar(traceID: trace.description, spanID: SpanID.hex(span.span_id)) else { return }
        PendingExemplars.record(cell: firstCell, bucket: bucket, value: value, exemplar: exemplar)
    }

    /// As `observe(_:)`, and `exemplar` becomes the latest of the bucket `value` falls in.
    public func observe(_ value: Double, exemplar: Exemplar) {
        if value.isNaN { return }
        let bucket = bucket(of: value)
        record(value, bucket: bucket)
        PendingExemplars.record(cell: firstCell, bucket: bucket, value: value, exemplar: exemplar)
    }

    @inlinable @inline(__always)
    func record(_ value: Double, bucket: UInt32) {
        // Two calls so that, inlined, the classic one has a constant 0 and no native branch left. The classic sum
        // cell follows the +Inf bucket; with native buckets it follows the window.
        if let native {
            dm_histogram_observe(firstCell, bucket, native.pointee.cell(of: value), native.pointee.sumCell, value)
        } else {
            dm_histogram_observe(firstCell, bucket, 0, boundCount &+ 1, value)
        }
    }

    /// The bucket `value` falls in: the first bound it does not exceed, or +Inf (binary search).
    @inlinable
    func bucket(of value: Double) -> UInt32 {
        var low = 0
        var high = Int(boundCount)
        while low < high {
            let mid = (low &+ high) >> 1
            if value <= bounds[mid] { high = mid } else { low = mid &+ 1 }
        }
        return UInt32(truncatingIfNeeded: low)
    }
}

/// Ready-made bucket layouts.
public enum Buckets {
    /// `count` bounds: start, start*factor, start*factor^2, ...
    public static func exponential(start: Double, factor: Double, count: Int) -> [Double] {
        precondition(start > 0 && factor > 1 && count > 0, "exponential buckets need start > 0, factor > 1, count > 0")
        var bounds: [Double] = []
        var bound = start
        for _ in 0..<count {
            bounds.append(bound)
            bound *= factor
        }
        return bounds
    }

    /// `count` bounds: start, start+width, start+2*width, ...
    public static func linear(start: Double, width: Double, count: Int) -> [Double] {
        precondition(width > 0 && count > 0, "linear buckets need width > 0 and count > 0")
        return (0..<count).map { start + Double($0) * width }
    }

    /// Latencies in milliseconds, 0.1 ms to about 100 s.
    public static let latencyMilliseconds: [Double] = [
        0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000,
    ]
}
