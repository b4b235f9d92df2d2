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
/// beside them. `observe` finds the buckets (`ClassicBuckets`, `NativeBuckets`: a table lookup and a compare or
/// two each) and bumps per-thread cells: the bucket, the native bucket when there are native buckets, and the sum.
/// NaN observations are ignored.
// @unchecked: its pointers are immortal and read-only; the cells it bumps are the calling thread's own.
public struct Histogram: @unchecked Sendable, Hashable {
    // Three words, so that the handle passes in registers through an opaque call and fits an existential's
    // inline buffer (a 72-byte handle with the native finder inline was copied to the stack, or boxed, per call).
    /// The family's classic bucket finder (immortal, owned by the registry).
    @usableFromInline let classic: UnsafePointer<ClassicBuckets>
    /// The family's native bucket finder (immortal, owned by the registry), or nil for classic buckets only.
    @usableFromInline let native: UnsafePointer<NativeBuckets>?
    @usableFromInline let firstCell: UInt32

    init(firstCell: UInt32, classic: UnsafePointer<ClassicBuckets>, native: UnsafePointer<NativeBuckets>?) {
        self.firstCell = firstCell
        self.classic = classic
        self.native = native
    }

    @inlinable
    public func observe(_ value: Double) {
        // One unsigned compare of the bits keeps NaN, the infinities and negative values (rare in a histogram of
        // latencies or sizes) off the fast path, which then adds to the sum untested.
        guard value.bitPattern < Double.infinity.bitPattern else { return observeOffFastPath(value) }
        // Native buckets out of line: their registers would otherwise give the classic path a stack frame.
        guard native != nil else { return observeClassic(value, adding: value) }
        observeWithNative(value)
    }

    /// `observe(_:)` with native buckets. Only `self` and `value`, so that the call finds them in the registers
    /// `observe` got them in: a jump, no moves.
    @usableFromInline @inline(never)
    func observeWithNative(_ value: Double) {
        observe(value, native: native.unsafelyUnwrapped, adding: value)
    }

    /// Counts `value` in its classic bucket and adds `sum` to the sum (no native buckets).
    @inlinable @inline(__always)
    func observeClassic(_ value: Double, adding sum: Double) {
        let bucket = classic.pointee.bucket(of: value)
        dm_histogram_observe(firstCell, bucket, classic.pointee.sumCell, sum)
        linkIfSampled(value, bucket: bucket)
    }

    /// Counts `value` in its classic and native buckets and adds `sum` to the sum.
    @inlinable @inline(__always)
    func observe(_ value: Double, native: UnsafePointer<NativeBuckets>, adding sum: Double) {
        let bucket = classic.pointee.bucket(of: value)
        dm_histogram_observe_native(firstCell, bucket, native.pointee.cell(of: value), native.pointee.sumCell, sum)
        linkIfSampled(value, bucket: bucket)
    }

    /// Negative values, -0, NaN and the infinities. NaN is ignored. An infinite observation counts in its bucket
    /// but not in the sum: one +Inf would make the sum, and every delta after it (Inf - Inf), NaN for good.
    @usableFromInline @inline(never)
    func observeOffFastPath(_ value: Double) {
        if !value.isNaN { record(value, adding: value.isFinite ? value : 0) }
    }

    /// Counts `value` (not NaN) in its buckets and adds `sum` to the sum.
    func record(_ value: Double, adding sum: Double) {
        if let native { observe(value, native: native, adding: sum) } else { observeClassic(value, adding: sum) }
    }

    /// An observation inside a sampled span becomes its bucket's exemplar.
    @inlinable @inline(__always)
    func linkIfSampled(_ value: Double, bucket: Int) {
        if dm_span_current_get().flags & UInt64(DM_SPAN_SAMPLED) != 0 { link(value, bucket: bucket) }
    }

    /// An observation inside a sampled span becomes its bucket's exemplar, pointing at that span.
    @usableFromInline @inline(never)
    func link(_ value: Double, bucket: Int) {
        let span = dm_span_current_get()
        let trace = TraceID(high: span.trace_high, low: span.trace_low)
        guard let exemplar = try? Exemplar(traceID: trace.description, spanID: SpanID.hex(span.span_id)) else { return }
        PendingExemplars.record(cell: firstCell, bucket: UInt32(truncatingIfNeeded: bucket), value: value, exemplar: exemplar)
    }

    /// As `observe(_:)`, and `exemplar` becomes the latest of the bucket `value` falls in.
    public func observe(_ value: Double, exemplar: Exemplar) {
        if value.isNaN { return }
        record(value, adding: value.isFinite ? value : 0)
        // Recorded after any sampled span's: this one is the bucket's latest.
        let bucket = UInt32(truncatingIfNeeded: classic.pointee.bucket(of: value))
        PendingExemplars.record(cell: firstCell, bucket: bucket, value: value, exemplar: exemplar)
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
