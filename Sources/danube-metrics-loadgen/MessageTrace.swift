import DanubeMetrics
import DanubeMetricsTestKit
import DanubeMetricsWire
import Foundation

/// The trace of one sampled message, as a traced broker would record it: `publish` (producer; for half of them
/// the child of the producer's own span, received as a `traceparent`), and inside it `wal.append` (with its fsync
/// as an event) for reliable topics, then per subscription `dispatch` (consumer) and inside that `ack` (server).
/// Durations are the simulated latencies the histograms observe, and each observation's exemplar points at its
/// span, so a slow bucket opens the trace that made it. Recorded with `Tracing.record` (the simulated times are
/// not the wall clock's), through the same ring and flusher as a `Span`.
struct MessageTrace {
    let trace: TraceID
    let publishID: UInt64
    private let producerSpanID: UInt64
    private let start: UInt64
    private let attributes: [SpanAttribute]
    private var children: [SpanRecord] = []
    /// Nanoseconds after the start where the next step begins.
    private var cursor: UInt64 = 50_000

    init(random: inout SplitMix, partition: SimulatedBroker.Partition) {
        trace = TraceID(high: random.next() | 1, low: random.next() | 1)
        publishID = random.next() | 1
        producerSpanID = random.next(below: 2) == 0 ? random.next() | 1 : 0
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        start = UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
        attributes = [
            SpanAttribute("messaging.system", .string("danube")),
            SpanAttribute("messaging.destination.name", .string("/\(partition.namespace)/\(partition.topic)")),
            SpanAttribute("danube.namespace", .string(partition.namespace)),
            SpanAttribute("danube.partition", .int(Int64(partition.index))),
            SpanAttribute("messaging.message.id", .string(String(random.next(), radix: 16))),
            SpanAttribute("danube.producer_id", .int(Int64(random.next(below: 1_000)))),
        ]
    }

    /// The exemplar of an observation made in span `span` of this trace.
    func exemplar(_ span: UInt64) -> Exemplar? {
        try? Exemplar(traceID: trace.description, spanID: SpanID.hex(span))
    }

    static func nanos(_ milliseconds: Double) -> UInt64 { UInt64(max(0, milliseconds) * 1_000_000) }

    /// The WAL append, `milliseconds` long, from the cursor; its id.
    mutating func walAppend(_ milliseconds: Double, fsync: Bool, random: inout SplitMix) -> UInt64 {
        let id = random.next() | 1, duration = Self.nanos(milliseconds)
        let events = fsync ? [SpanEvent(name: "wal.fsync", offsetNanos: duration * 9 / 10)] : []
        children.append(span(id, parent: publishID, name: "wal.append", kind: .internal, at: cursor, duration: duration,
                             extra: [SpanAttribute("danube.segment", .int(Int64(random.next(below: 64))))], events: events))
        cursor += duration
        return id
    }

    /// Dispatch to subscription `subscription` (`dispatch` milliseconds), then its ack (`ack` milliseconds)
    /// inside it; their ids.
    mutating func deliver(subscription: String, dispatch: Double, ack: Double, random: inout SplitMix) -> (dispatch: UInt64, ack: UInt64) {
        let dispatchID = random.next() | 1, ackID = random.next() | 1
        let sending = Self.nanos(dispatch), acking = Self.nanos(ack)
        let name = [SpanAttribute("danube.subscription", .string(subscription)), SpanAttribute("danube.consumer_id", .int(Int64(random.next(below: 1_000))))]
        children.append(span(dispatchID, parent: publishID, name: "dispatch", kind: .consumer, at: cursor, duration: sending + acking,
                             extra: name + [SpanAttribute("messaging.operation.type", .string("process"))]))
        children.append(span(ackID, parent: dispatchID, name: "ack", kind: .server, at: cursor + sending, duration: acking,
                             extra: name + [SpanAttribute("messaging.operation.type", .string("settle"))]))
        return (dispatchID, ackID)
    }

    /// Records every span: `publish` lasts until its last child ends (and at least `milliseconds`).
    func record(publish milliseconds: Double) {
        let end = max(Self.nanos(milliseconds), children.map { $0.startUnixNanos - start + $0.durationNanos }.max() ?? 0)
        var publish = span(publishID, parent: producerSpanID, name: "publish", kind: .producer, at: 0, duration: end + 20_000,
                           extra: [SpanAttribute("messaging.operation.type", .string("publish"))])
        publish.parentIsRemote = producerSpanID != 0
        publish.status = .ok
        Tracing.record(publish)
        for child in children { Tracing.record(child) }
    }

    private func span(_ id: UInt64, parent: UInt64, name: String, kind: SpanKind, at offset: UInt64, duration: UInt64,
                      extra: [SpanAttribute], events: [SpanEvent] = []) -> SpanRecord {
        SpanRecord(traceID: trace, spanID: id, parentSpanID: parent, kind: kind, name: name, startUnixNanos: start + offset,
                   durationNanos: duration, attributes: attributes + extra, events: events)
    }
}
