import CDanubeCells
import DanubeMetricsWire
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Sampling of traces and the finished spans waiting for the flusher: the Rust crate's `trace` module, the same
/// rules. A share of root spans is recorded (decided on the trace id, 1% by default), children follow their
/// parent, a remote parent's decision wins, and with a slow threshold a span of an unsampled trace is kept anyway
/// when it took at least that long.
public enum Tracing {
    /// Root spans whose trace id's low 64 bits are below this are sampled (ratio × 2^64).
    static let sampleBelow = Atomic<UInt64>(UInt64.max / 100)
    /// Unsampled spans at least this long are kept; 0: off.
    static let slowNanos = Atomic<UInt64>(0)
    static let recorded = Atomic<UInt64>(0)
    static let droppedRingFull = Atomic<UInt64>(0)

    /// Sets the sampling of traces started from now on: the share of root spans recorded (0 to 1) and the
    /// duration from which an unsampled span is kept anyway (nil: never). `Emitter` sets it from its configuration.
    public static func configureSampling(ratio: Double, slow: Duration?) {
        let ratio = ratio.isNaN ? 0 : min(1, max(0, ratio))
        sampleBelow.store(ratio >= 1 ? .max : UInt64(ratio * 18_446_744_073_709_551_616.0), ordering: .relaxed)
        let nanos = slow.map { max(1, UInt64(clamping: $0.components.seconds) &* 1_000_000_000 &+ UInt64($0.components.attoseconds / 1_000_000_000)) } ?? 0
        slowNanos.store(nanos, ordering: .relaxed)
    }

    /// Takes every finished span waiting on every thread's ring, as the flusher does (for tests and tools without
    /// an emitter).
    public static func takeFinishedSpans() -> [SpanRecord] {
        var spans: [SpanRecord] = []
        let capacity = 1_024
        let buffer = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: capacity)
        defer { buffer.deallocate() }
        while true {
            let taken = dm_span_ring_drain(buffer, capacity)
            for i in 0..<taken {
                guard let pointer = buffer[i] else { continue }
                spans.append(Unmanaged<FinishedSpan>.fromOpaque(pointer).takeRetainedValue().record)
            }
            if taken < capacity { return spans }
        }
    }

    static func push(_ record: SpanRecord) {
        recorded.add(1, ordering: .relaxed)
        let displaced = dm_span_ring_push(Unmanaged.passRetained(FinishedSpan(record)).toOpaque())
        if let displaced {
            Unmanaged<FinishedSpan>.fromOpaque(displaced).release()
            droppedRingFull.add(1, ordering: .relaxed)
        }
    }

    /// Unix nanoseconds of `instant`, from one anchor taken once (one clock read per start and end).
    static func unixNanos(_ instant: ContinuousClock.Instant) -> UInt64 {
        let (at, unix) = anchor
        let offset = instant - at
        let nanos = offset.components.seconds &* 1_000_000_000 &+ offset.components.attoseconds / 1_000_000_000
        return nanos >= 0 ? unix &+ UInt64(nanos) : unix &- UInt64(-nanos)
    }

    private static let anchor: (ContinuousClock.Instant, UInt64) = {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return (ContinuousClock.now, UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec))
    }()
}

/// A finished span on its way through a ring (a class, so a ring slot holds one retained pointer).
final class FinishedSpan {
    let record: SpanRecord
    init(_ record: SpanRecord) { self.record = record }
}

/// What a recorded span collects (allocated only for spans that are recorded).
final class SpanRecording {
    var attributes: [SpanAttribute] = []
    var events: [SpanEvent] = []
    var status = SpanStatus.unset
    var statusMessage = ""
}

/// One operation of a trace. Ends when it goes out of scope (or with `end()`); while it lives it is its thread's
/// current span, the parent of spans started there without one. Don't keep one across an `await` (the task may
/// resume on another thread): pass `context` on and start a child there.
public struct Span: ~Copyable {
    private let name: String
    private let kind: SpanKind
    private let traceID: TraceID
    private let spanID: UInt64
    private let parentSpanID: UInt64
    private let parentIsRemote: Bool
    public let isSampled: Bool
    private let start: ContinuousClock.Instant?
    private let recording: SpanRecording?
    private let traceState: String?
    private let previous: dm_span_current

    /// A child of this thread's current span, or the root of a new trace (sampled as configured).
    public init(_ name: String, kind: SpanKind = .internal) {
        let current = dm_span_current_get()
        if current.flags & UInt64(DM_SPAN_PRESENT) != 0 {
            self.init(name, kind: kind, trace: TraceID(high: current.trace_high, low: current.trace_low), parent: current.span_id,
                      remote: false, sampled: current.flags & UInt64(DM_SPAN_SAMPLED) != 0, traceState: nil)
        } else {
            let low = dm_span_random()
            let sampled = low < Tracing.sampleBelow.load(ordering: .relaxed)
            let high = sampled || Tracing.slowNanos.load(ordering: .relaxed) != 0 ? dm_span_random() : 0
            self.init(name, kind: kind, trace: TraceID(high: high, low: low), parent: 0, remote: false, sampled: sampled, traceState: nil)
        }
    }

    /// A child of `parent`: a span handed over from another thread, or a `traceparent` received (whose sampling
    /// decision it follows).
    public init(_ name: String, kind: SpanKind = .internal, parent: SpanContext) {
        self.init(name, kind: kind, trace: parent.traceID, parent: parent.spanID, remote: parent.remote, sampled: parent.sampled,
                  traceState: parent.traceState)
    }

    private init(_ name: String, kind: SpanKind, trace: TraceID, parent: UInt64, remote: Bool, sampled: Bool, traceState: String?) {
        let keeps = sampled || Tracing.slowNanos.load(ordering: .relaxed) != 0
        // A span that can never be recorded gets its id only if `context` asks for one.
        let id = keeps ? dm_span_random() : 0
        self.name = name
        self.kind = kind
        traceID = trace
        spanID = id
        parentSpanID = parent
        parentIsRemote = remote
        isSampled = sampled
        start = keeps ? ContinuousClock.now : nil
        recording = sampled ? SpanRecording() : nil
        self.traceState = traceState
        previous = dm_span_current_swap(dm_span_current(
            trace_high: trace.high, trace_low: trace.low, span_id: id,
            flags: UInt64(DM_SPAN_PRESENT) | (sampled ? UInt64(DM_SPAN_SAMPLED) : 0)))
    }

    /// What to hand to a child on another thread, or to send on as a `traceparent`.
    public var context: SpanContext {
        SpanContext(traceID: traceID, spanID: spanID == 0 ? dm_span_random() : spanID, sampled: isSampled, traceState: traceState)
    }

    /// Sets an attribute (recorded spans only; at most 32, strings cut to 256 bytes).
    public func setAttribute(_ key: String, _ value: AttributeValue) {
        guard let recording, recording.attributes.count < SpanLimits.maxAttributes else { return }
        recording.attributes.append(SpanAttribute(key, Self.bounded(value)))
    }

    /// Adds an event now (recorded spans only; at most 16, with up to 8 attributes each).
    public func addEvent(_ name: String, attributes: [SpanAttribute] = []) {
        guard let recording, let start, recording.events.count < SpanLimits.maxEvents else { return }
        let offset = ContinuousClock.now - start
        let nanos = UInt64(clamping: offset.components.seconds) &* 1_000_000_000 &+ UInt64(offset.components.attoseconds / 1_000_000_000)
        recording.events.append(SpanEvent(name: name, offsetNanos: nanos,
                                          attributes: attributes.prefix(SpanLimits.maxEventAttributes).map { SpanAttribute($0.key, Self.bounded($0.value)) }))
    }

    /// Marks the operation failed, with a message (cut to 256 bytes).
    public func setError(_ message: String) {
        recording?.status = .error
        recording?.statusMessage = Self.truncated(message, SpanLimits.maxStatusMessageBytes)
    }

    /// Marks the operation successful.
    public func setOK() { recording?.status = .ok }

    /// Ends the span now (as leaving its scope does).
    public consuming func end() {}

    deinit {
        dm_span_current_set(previous)
        guard let start else { return }
        let elapsed = ContinuousClock.now - start
        let duration = UInt64(clamping: elapsed.components.seconds) &* 1_000_000_000 &+ UInt64(elapsed.components.attoseconds / 1_000_000_000)
        let slow = Tracing.slowNanos.load(ordering: .relaxed)
        guard isSampled || (slow != 0 && duration >= slow) else { return }
        var attributes = recording?.attributes ?? []
        if !isSampled { attributes.append(SpanAttribute("danube.kept_as_slow", .bool(true))) }
        Tracing.push(SpanRecord(
            traceID: traceID, spanID: spanID, parentSpanID: parentSpanID, kind: kind, parentIsRemote: parentIsRemote,
            name: Self.truncated(name, SpanLimits.maxNameBytes), startUnixNanos: Tracing.unixNanos(start), durationNanos: duration,
            status: recording?.status ?? .unset, statusMessage: recording?.statusMessage ?? "", traceState: traceState ?? "",
            attributes: attributes, events: recording?.events ?? []))
    }

    private static func bounded(_ value: AttributeValue) -> AttributeValue {
        if case .string(let text) = value, text.utf8.count > SpanLimits.maxStringValueBytes {
            return .string(truncated(text, SpanLimits.maxStringValueBytes))
        }
        return value
    }

    static func truncated(_ text: String, _ limit: Int) -> String {
        guard text.utf8.count > limit else { return text }
        var end = text.utf8.index(text.utf8.startIndex, offsetBy: limit)
        while end > text.startIndex, !text.unicodeScalars.indices.contains(end) { end = text.utf8.index(before: end) }
        return String(text[..<end])
    }
}
