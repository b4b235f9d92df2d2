import DanubeMetricsWire

/// The flusher's side of tracing: the finished spans of every thread's ring, as SPANS frames (the Rust crate's
/// `trace::send`).
enum SpanSender {
    /// Sends every finished span on `connection` (protocol version 4; an agent without span export gets none: they
    /// are dropped and counted). Best effort: a frame that cannot be sent now is dropped, not kept.
    static func send(on connection: AgentConnection, maxFrameBytes: Int, stats: inout EmitterStats) {
        let spans = Tracing.takeFinishedSpans()
        stats.spansRecorded = Tracing.recorded.load(ordering: .relaxed)
        stats.spansDroppedRingFull = Tracing.droppedRingFull.load(ordering: .relaxed)
        guard !spans.isEmpty else { return }
        guard connection.welcome.version >= WireFormat.spansVersion else {
            stats.spansDropped += UInt64(spans.count)
            return
        }
        func newFrame() -> FrameBuilder {
            var builder = FrameBuilder(type: .spans, maxFrameBytes: maxFrameBytes)
            _ = builder.append { FrameEncoder.encode([SpanAttribute](), into: &$0) }
            return builder
        }
        var builder = newFrame()
        func send(_ frame: FrameBuilder) {
            let count = UInt64(frame.items - 1)
            if case .sent = connection.send(frame.finish()) { stats.spansSent += count } else { stats.spansDropped += count }
        }
        for span in spans where !builder.append({ FrameEncoder.encode(span, into: &$0) }) {
            send(builder)
            builder = newFrame()
            if !builder.append({ FrameEncoder.encode(span, into: &$0) }) { stats.spansDropped += 1 } // larger than a frame
        }
        if builder.items > 1 { send(builder) }
    }
}
