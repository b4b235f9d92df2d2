//! Span context and W3C trace context (`traceparent`, `tracestate`): what a span hands to its children, on this
//! thread, on another one, or in another process.

use crate::wire::TraceId;
use std::fmt::Write as _;
use std::sync::Arc;

/// Identifies a span and carries its trace's sampling decision: `Copy`-cheap (the `tracestate` is shared), so a
/// publish span's context can go with a message to the dispatcher thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanContext {
    pub trace_id: TraceId,
    pub span_id: u64,
    /// Decided once at the trace's root (or by the remote parent) and inherited.
    pub sampled: bool,
    /// It came from another process (parsed from a `traceparent`).
    pub remote: bool,
    /// W3C `tracestate`, as received.
    pub trace_state: Option<Arc<str>>,
}

/// Why a `traceparent` or `tracestate` was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceContextError {
    /// Not `version-traceid-parentid-flags` in lowercase hex of the right lengths.
    Malformed,
    /// Version `ff`, or an all-zero trace or span id.
    Invalid,
    /// A `tracestate` longer than the 512 bytes W3C allows.
    TraceStateTooLong,
}

impl std::fmt::Display for TraceContextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TraceContextError::Malformed => "traceparent is not version-traceid-parentid-flags in lowercase hex",
            TraceContextError::Invalid => "traceparent has version ff or an all-zero id",
            TraceContextError::TraceStateTooLong => "tracestate is longer than 512 bytes",
        })
    }
}

impl std::error::Error for TraceContextError {}

fn hex_u64(text: &str) -> Option<u64> {
    if text.len() != 16 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

impl SpanContext {
    /// Parses a W3C `traceparent` (`00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`) and an optional
    /// `tracestate`. A later version is read by its first four fields, as the spec asks.
    pub fn from_traceparent(traceparent: &str, tracestate: Option<&str>) -> Result<SpanContext, TraceContextError> {
        let fields: Vec<&str> = traceparent.trim().split('-').collect();
        if fields.len() < 4 || fields[0].len() != 2 || fields[3].len() != 2 {
            return Err(TraceContextError::Malformed);
        }
        let version = u8::from_str_radix(fields[0], 16).map_err(|_| TraceContextError::Malformed)?;
        if fields.len() > 4 && version == 0 {
            return Err(TraceContextError::Malformed);
        }
        let (Some(high), Some(low)) = (fields[1].get(..16).and_then(hex_u64), fields[1].get(16..).and_then(hex_u64))
        else {
            return Err(TraceContextError::Malformed);
        };
        let span_id = hex_u64(fields[2]).ok_or(TraceContextError::Malformed)?;
        let flags = u8::from_str_radix(fields[3], 16).map_err(|_| TraceContextError::Malformed)?;
        if version == 0xff || (high == 0 && low == 0) || span_id == 0 || fields[1].len() != 32 {
            return Err(TraceContextError::Invalid);
        }
        let trace_state = match tracestate.map(str::trim).filter(|s| !s.is_empty()) {
            Some(state) if state.len() > crate::wire::spans::MAX_TRACE_STATE_BYTES => {
                return Err(TraceContextError::TraceStateTooLong)
            }
            state => state.map(Arc::from),
        };
        Ok(SpanContext { trace_id: TraceId { high, low }, span_id, sampled: flags & 1 == 1, remote: true, trace_state })
    }

    /// This context as a `traceparent` to send on (version 00).
    pub fn traceparent(&self) -> String {
        let mut text = String::with_capacity(55);
        let _ = write!(
            text,
            "00-{:016x}{:016x}-{:016x}-{:02x}",
            self.trace_id.high,
            self.trace_id.low,
            self.span_id,
            u8::from(self.sampled)
        );
        text
    }

    /// The trace id as 32 lowercase hex digits (an exemplar's `trace_id`).
    pub fn trace_id_hex(&self) -> String {
        format!("{:016x}{:016x}", self.trace_id.high, self.trace_id.low)
    }

    /// The span id as 16 lowercase hex digits.
    pub fn span_id_hex(&self) -> String {
        format!("{:016x}", self.span_id)
    }
}
