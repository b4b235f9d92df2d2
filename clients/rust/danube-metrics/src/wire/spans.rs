//! SPANS frames (protocol version 4): finished spans of sampled traces, field for field what an OTLP span holds.
//! Byte for byte as `docs/PROTOCOL.md` and the Swift reference (`Sources/DanubeMetricsWire/Spans.swift`) say.

use super::decode::Reader;
use super::{RefusalCode, WireError, Writer};

/// Limits of SPANS frames beyond the frame size (the Swift reference's `SpanLimits`).
pub const MAX_NAME_BYTES: usize = 128;
pub const MAX_ATTRIBUTES: usize = 32;
pub const MAX_EVENTS: usize = 16;
pub const MAX_EVENT_ATTRIBUTES: usize = 8;
pub const MAX_KEY_BYTES: usize = 100;
pub const MAX_STRING_VALUE_BYTES: usize = 256;
pub const MAX_STATUS_MESSAGE_BYTES: usize = 256;
/// W3C trace context's bound on `tracestate`.
pub const MAX_TRACE_STATE_BYTES: usize = 512;

/// 16 bytes as in `traceparent`, the high half first; never all zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceId {
    pub high: u64,
    pub low: u64,
}

/// OTLP's span kinds, with their numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    Unspecified = 0,
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

/// OTLP's status codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanStatus {
    Unset = 0,
    Ok = 1,
    Error = 2,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AttributeValue {
    String(String),
    Int(i64),
    /// Its IEEE-754 bits travel as they are.
    Double(f64),
    Bool(bool),
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpanEvent {
    pub name: String,
    /// After the span's start; at most its duration.
    pub offset_nanos: u64,
    pub attributes: Vec<(String, AttributeValue)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpanRecord {
    pub trace_id: TraceId,
    pub span_id: u64,
    /// 0 for a root span.
    pub parent_span_id: u64,
    pub kind: SpanKind,
    /// The parent came from another process (a `traceparent` received).
    pub parent_is_remote: bool,
    pub name: String,
    pub start_unix_nanos: u64,
    pub duration_nanos: u64,
    pub status: SpanStatus,
    pub status_message: String,
    pub trace_state: String,
    pub attributes: Vec<(String, AttributeValue)>,
    pub events: Vec<SpanEvent>,
}

/// A SPANS frame: attributes of the emitting process (OTLP resource attributes), then spans.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpanBatch {
    pub resource: Vec<(String, AttributeValue)>,
    pub spans: Vec<SpanRecord>,
}

pub fn encode_attributes(w: &mut Writer, attributes: &[(String, AttributeValue)]) {
    w.uvarint(attributes.len() as u64);
    for (key, value) in attributes {
        w.string(key);
        match value {
            AttributeValue::String(v) => {
                w.u8(1);
                w.string(v);
            }
            AttributeValue::Int(v) => {
                w.u8(2);
                w.u64(*v as u64);
            }
            AttributeValue::Double(v) => {
                w.u8(3);
                w.u64(v.to_bits());
            }
            AttributeValue::Bool(v) => {
                w.u8(4);
                w.u8(u8::from(*v));
            }
        }
    }
}

/// Appends one span to a SPANS frame being built.
pub fn encode_span(w: &mut Writer, span: &SpanRecord) {
    w.bytes.extend_from_slice(&span.trace_id.high.to_be_bytes());
    w.bytes.extend_from_slice(&span.trace_id.low.to_be_bytes());
    w.bytes.extend_from_slice(&span.span_id.to_be_bytes());
    w.bytes.extend_from_slice(&span.parent_span_id.to_be_bytes());
    w.u8(span.kind as u8);
    w.u8(u8::from(span.parent_is_remote));
    w.string(&span.name);
    w.uvarint(span.start_unix_nanos);
    w.uvarint(span.duration_nanos);
    w.u8(span.status as u8);
    w.string(&span.status_message);
    w.string(&span.trace_state);
    encode_attributes(w, &span.attributes);
    w.uvarint(span.events.len() as u64);
    for event in &span.events {
        w.string(&event.name);
        w.uvarint(event.offset_nanos);
        encode_attributes(w, &event.attributes);
    }
}

fn malformed(message: impl Into<String>) -> WireError {
    WireError::new(RefusalCode::Malformed, message)
}

fn big_endian(r: &mut Reader<'_>, what: &str) -> Result<u64, WireError> {
    Ok(u64::from_be_bytes(r.take(8, what)?.try_into().unwrap_or_default()))
}

fn attributes(r: &mut Reader<'_>, limit: usize, owner: &str) -> Result<Vec<(String, AttributeValue)>, WireError> {
    let count = r.uvarint("attribute count")?;
    if count > limit as u64 {
        return Err(WireError::new(
            RefusalCode::LimitExceeded,
            format!("{owner} has {count} attributes, the limit is {limit}"),
        ));
    }
    let mut attributes = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let key = r.string("attribute key", MAX_KEY_BYTES)?;
        if key.is_empty() {
            return Err(malformed(format!("an attribute of {owner} has an empty key")));
        }
        let value = match r.u8("attribute type")? {
            1 => AttributeValue::String(r.string("attribute value", MAX_STRING_VALUE_BYTES)?),
            2 => AttributeValue::Int(r.u64("attribute value")? as i64),
            3 => AttributeValue::Double(f64::from_bits(r.u64("attribute value")?)),
            4 => match r.u8("attribute value")? {
                0 => AttributeValue::Bool(false),
                1 => AttributeValue::Bool(true),
                other => return Err(malformed(format!("boolean {key} is {other}"))),
            },
            other => return Err(malformed(format!("attribute {key} has unknown type {other}"))),
        };
        attributes.push((key, value));
    }
    Ok(attributes)
}

pub(super) fn decode_spans(r: &mut Reader<'_>) -> Result<SpanBatch, WireError> {
    let mut batch = SpanBatch { resource: attributes(r, MAX_ATTRIBUTES, "the resource")?, spans: Vec::new() };
    while !r.at_end() {
        let trace_id = TraceId { high: big_endian(r, "trace id")?, low: big_endian(r, "trace id")? };
        let span_id = big_endian(r, "span id")?;
        let parent_span_id = big_endian(r, "parent span id")?;
        if (trace_id.high == 0 && trace_id.low == 0) || span_id == 0 {
            return Err(malformed("a span's trace id and span id may not be zero"));
        }
        let kind = match r.u8("span kind")? {
            0 => SpanKind::Unspecified,
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => return Err(malformed("unknown span kind")),
        };
        let flags = r.u8("span flags")?;
        if flags > 1 {
            return Err(malformed(format!("reserved span flags 0x{flags:x} are set")));
        }
        let name = r.string("span name", MAX_NAME_BYTES)?;
        if name.is_empty() {
            return Err(malformed("a span has no name"));
        }
        let start_unix_nanos = r.uvarint("span start")?;
        let duration_nanos = r.uvarint("span duration")?;
        let status = match r.u8("span status")? {
            0 => SpanStatus::Unset,
            1 => SpanStatus::Ok,
            2 => SpanStatus::Error,
            _ => return Err(malformed(format!("unknown status of span {name}"))),
        };
        let status_message = r.string("status message", MAX_STATUS_MESSAGE_BYTES)?;
        let trace_state = r.string("tracestate", MAX_TRACE_STATE_BYTES)?;
        let span_attributes = attributes(r, MAX_ATTRIBUTES, &format!("span {name}"))?;
        let event_count = r.uvarint("event count")?;
        if event_count > MAX_EVENTS as u64 {
            return Err(WireError::new(
                RefusalCode::LimitExceeded,
                format!("span {name} has {event_count} events, the limit is {MAX_EVENTS}"),
            ));
        }
        let mut events = Vec::with_capacity(event_count as usize);
        for _ in 0..event_count {
            let event_name = r.string("event name", MAX_NAME_BYTES)?;
            let offset_nanos = r.uvarint("event time")?;
            if offset_nanos > duration_nanos {
                return Err(malformed(format!("event {event_name} is after the end of span {name}")));
            }
            let attributes = attributes(r, MAX_EVENT_ATTRIBUTES, &format!("event {event_name}"))?;
            events.push(SpanEvent { name: event_name, offset_nanos, attributes });
        }
        batch.spans.push(SpanRecord {
            trace_id,
            span_id,
            parent_span_id,
            kind,
            parent_is_remote: flags == 1,
            name,
            start_unix_nanos,
            duration_nanos,
            status,
            status_message,
            trace_state,
            attributes: span_attributes,
            events,
        });
    }
    Ok(batch)
}
