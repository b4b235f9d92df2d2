//! The flusher's side of tracing: the finished spans of every thread's ring, as SPANS frames.

use crate::connection::{Connection, SendResult};
use crate::wire::{self, AttributeValue, FrameBuilder};

/// Sends every finished span on `connection`, in frames of at most `max_frame_bytes`, with the emitter's global
/// labels as resource attributes; returns (sent, dropped). An agent without span export (protocol version 3 or
/// older) gets none: they are dropped. Spans are best effort: a frame that cannot be sent now is dropped, not
/// kept for later.
pub(crate) fn send(connection: &Connection, global_labels: &[(String, String)], max_frame_bytes: usize) -> (u64, u64) {
    let spans = super::ring::drain();
    if spans.is_empty() {
        return (0, 0);
    }
    if connection.welcome.version < wire::SPANS_VERSION {
        return (0, spans.len() as u64);
    }
    let resource: Vec<(String, AttributeValue)> =
        global_labels.iter().map(|(k, v)| (k.clone(), AttributeValue::String(v.clone()))).collect();
    let new_frame = || {
        let mut frame = FrameBuilder::unsequenced(wire::frame_type::SPANS, max_frame_bytes);
        frame.append(|w| wire::spans::encode_attributes(w, &resource));
        frame
    };
    let (mut sent, mut dropped, mut oversized, mut in_frame) = (0u64, 0u64, 0u64, 0u64);
    let mut send = |frame: FrameBuilder, count: u64| {
        if matches!(connection.send(&frame.finish()), SendResult::Sent) {
            sent += count;
        } else {
            dropped += count;
        }
    };
    let mut frame = new_frame();
    for span in &spans {
        if !frame.append(|w| wire::encode_span(w, span)) {
            send(std::mem::replace(&mut frame, new_frame()), in_frame);
            in_frame = 0;
            if !frame.append(|w| wire::encode_span(w, span)) {
                oversized += 1; // larger than a frame: it cannot be sent
                continue;
            }
        }
        in_frame += 1;
    }
    if in_frame > 0 {
        send(frame, in_frame);
    }
    (sent, dropped + oversized)
}
