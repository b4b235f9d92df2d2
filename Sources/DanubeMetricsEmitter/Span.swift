import CDanubeCells
import DanubeMetricsWire
import Synchronization

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

    /// Queues a span measured elsewhere (a simulation, a bridge from another tracer) as if a `Span` had ended on
    /// this thread: it goes out with the next flush, through the same bounded ring.
    public static func record(_ span: SpanRecord) { push(span) }

    static func push(_ record: SpanRecord) {
        recorded.add(1, ordering: .relaxed)
        let displaced = dm_span_ring_push(Unmanaged.passRetained(FinishedSpan(record)).toOpaque())
        if let displaced {
            Unmanaged<FinishedSpan>.fromOpaque(displaced).release()
            droppedRingFull.add(1, ordering: .relaxed)
        }
    }

}

/// A finished span on its way through a ring (a class, so a ring slot holds one retained pointer).
final class FinishedSpan {
    let record: SpanRecord
    init(_ record: SpanRecord) { self.record = record }
}

/// What a recorded span collects, and a received `tracestate` (allocated only for spans that are recorded or
/// carry one, so that a span that is neither holds one nil reference, not several optionals).
final class SpanRecording {
    let recorded: Bool
    let traceState: String?
    var attributes: [SpanAttribute] = []
    var events: [SpanEvent] = []
    var status = SpanStatus.unset
    var statusMessage = ""

    init(recorded: Bool, traceState: String?) {
        self.recorded = recorded
        self.traceState = traceState
    }
}

/// One operation of a trace. Ends when it goes out of scope (or with `end()`); while it lives it is its thread's
/// current span, the parent of spans started there without one. Don't keep one across an `await` (the task may
/// resume on another thread): pass `context` on and start a child there.
public struct Span: ~Copyable {
    /// Static, as the Rust crate's `&'static str`: span names are the catalog's, never built per call (and a
    /// trivial field costs nothing to destroy).
    private let name: StaticString
    private let kind: SpanKind
    private let traceID: TraceID
    private let spanID: UInt64
    private let parentSpanID: UInt64
    private let parentIsRemote: Bool
    public let isSampled: Bool
    /// CLOCK_MONOTONIC nanoseconds at the start, 0 when the span is not timed (plain integers: an optional
    /// `ContinuousClock.Instant` went through value witnesses and tripled an unsampled span's cost).
    private let start: UInt64
    private let detail: SpanRecording?
    private let previous: dm_span_current

    /// A child of this thread's current span, or the root of a new trace (sampled as configured).
    public init(_ name: StaticString, kind: SpanKind = .internal) {
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
    public init(_ name: StaticString, kind: SpanKind = .internal, parent: SpanContext) {
        self.init(name, kind: kind, trace: parent.traceID, parent: parent.spanID, remote: parent.remote, sampled: parent.sampled,
                  traceState: parent.traceState)
    }

    private init(_ name: StaticString, kind: SpanKind, trace: TraceID, parent: UInt64, remote: Bool, sampled: Bool, traceState: String?) {
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
        start = keeps ? dm_monotonic_nanos() : 0
        detail = sampled || traceState != nil ? SpanRecording(recorded: sampled, traceState: traceState) : nil
        previous = dm_span_current_swap(dm_span_current(
            trace_high: trace.high, trace_low: trace.low, span_id: id,
            flags: UInt64(DM_SPAN_PRESENT) | (sampled ? UInt64(DM_SPAN_SAMPLED) : 0)))
    }

    /// What to hand to a child on another thread, or to send on as a `traceparent`.
    public var context: SpanContext {
        SpanContext(traceID: traceID, spanID: spanID == 0 ? dm_span_random() : spanID, sampled: isSampled, traceState: detail?.traceState)
    }

    /// What attributes, events and status go to: set for recorded spans only.
    private var recording: SpanRecording? { detail?.recorded == true ? detail : nil }

    /// Sets an attribute (recorded spans only; at most 32, strings cut to 256 bytes).
    public func setAttribute(_ key: String, _ value: AttributeValue) {
        guard let recording, recording.attributes.count < SpanLimits.maxAttributes else { return }
        recording.attributes.append(SpanAttribute(key, Self.bounded(value)))
    }

    /// Adds an event now (recorded spans only; at most 16, with up to 8 attributes each).
    public func addEvent(_ name: String, attributes: [SpanAttribute] = []) {
        guard let recording, start != 0, recording.events.count < SpanLimits.maxEvents else { return }
        let nanos = dm_monotonic_nanos() &- start
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
        guard start != 0 else { return }
        let duration = dm_monotonic_nanos() &- start
        let slow = Tracing.slowNanos.load(ordering: .relaxed)
        guard isSampled || (slow != 0 && duration >= slow) else { return }
        var attributes = recording?.attributes ?? []
        if !isSampled { attributes.append(SpanAttribute("danube.kept_as_slow", .bool(true))) }
        Tracing.push(SpanRecord(
            traceID: traceID, spanID: spanID, parentSpanID: parentSpanID, kind: kind, parentIsRemote: parentIsRemote,
            name: Self.truncated(name.description, SpanLimits.maxNameBytes), startUnixNanos: start &+ dm_unix_minus_monotonic(), durationNanos: duration,
            status: recording?.status ?? .unset, statusMessage: recording?.statusMessage ?? "", traceState: detail?.traceState ?? "",
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
