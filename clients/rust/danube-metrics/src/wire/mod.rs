//! Protocol frames (versions 1 to 4): encoding and decoding, byte for byte as `docs/PROTOCOL.md` specifies and as the Swift
//! reference (`Sources/DanubeMetricsWire`) writes them. Golden vectors in `Tests/golden-frames` keep both in step.
//!
//! Hand-written because the format is small and ours; a serialisation crate would be a dependency for no gain.

use std::fmt;

mod decode;
mod encode;
pub mod spans;

pub use decode::decode_record;
pub use encode::{begin, encode, encode_definition, encode_delta, encode_exemplar, finish, FrameBuilder, Writer};
pub use spans::{encode_span, AttributeValue, SpanBatch, SpanEvent, SpanKind, SpanRecord, SpanStatus, TraceId};

/// The first four bytes of every HELLO body.
pub const MAGIC: [u8; 4] = *b"DNBM";
/// Protocol versions this crate speaks: 1, 2 (EXEMPLARS frames), 3 (native histograms) and 4 (SPANS frames).
pub const VERSION: u16 = 4;
/// The lowest version this crate speaks.
pub const MIN_VERSION: u16 = 1;
/// The first version with EXEMPLARS frames.
pub const EXEMPLARS_VERSION: u16 = 2;
/// The first version whose histograms may carry native buckets (DEFINE kind byte 4).
pub const NATIVE_HISTOGRAMS_VERSION: u16 = 3;
/// DEFINE's kind byte for a histogram with native buckets.
pub const NATIVE_HISTOGRAM_KIND: u8 = 4;
/// The first version with SPANS frames: an agent that exports no traces speaks 3 at most.
pub const SPANS_VERSION: u16 = 4;
/// OpenMetrics' limit on an exemplar's labels: names and values together, in code points.
pub const MAX_EXEMPLAR_LABEL_CODE_POINTS: usize = 128;
/// Bytes in front of every frame body: u32 length + u8 type + u8 flags.
pub const HEADER_SIZE: usize = 6;

/// Frame type bytes.
pub mod frame_type {
    pub const HELLO: u8 = 0x01;
    pub const WELCOME: u8 = 0x02;
    pub const REFUSE: u8 = 0x03;
    pub const DEFINE: u8 = 0x10;
    pub const DELTAS: u8 = 0x11;
    pub const ACK: u8 = 0x12;
    pub const SERIES_REFUSED: u8 = 0x13;
    pub const GOODBYE: u8 = 0x14;
    pub const EXEMPLARS: u8 = 0x15;
    pub const SPANS: u8 = 0x16;
}

/// What a series is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Counter = 1,
    Gauge = 2,
    Histogram = 3,
}

/// Why the agent refused a connection, a frame or a series (REFUSE, SERIES_REFUSED).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalCode {
    Malformed,
    Truncated,
    Oversized,
    UnsupportedVersion,
    OutOfOrder,
    LimitExceeded,
    UnknownSeries,
    KindMismatch,
    UnexpectedFrame,
    InvalidName,
    ConflictingDefinition,
    ShuttingDown,
    CatalogViolation,
    CardinalityLimit,
    NotPermitted,
    /// Any code this crate does not know (255 on the wire).
    Other,
}

const CODES: [(RefusalCode, u8, &str); 16] = [
    (RefusalCode::Malformed, 1, "malformed"),
    (RefusalCode::Truncated, 2, "truncated"),
    (RefusalCode::Oversized, 3, "oversized"),
    (RefusalCode::UnsupportedVersion, 4, "unsupported_version"),
    (RefusalCode::OutOfOrder, 5, "out_of_order"),
    (RefusalCode::LimitExceeded, 6, "limit_exceeded"),
    (RefusalCode::UnknownSeries, 7, "unknown_series"),
    (RefusalCode::KindMismatch, 8, "kind_mismatch"),
    (RefusalCode::UnexpectedFrame, 9, "unexpected_frame"),
    (RefusalCode::InvalidName, 10, "invalid_name"),
    (RefusalCode::ConflictingDefinition, 11, "conflicting_definition"),
    (RefusalCode::ShuttingDown, 12, "shutting_down"),
    (RefusalCode::CatalogViolation, 13, "catalog_violation"),
    (RefusalCode::CardinalityLimit, 14, "cardinality_limit"),
    (RefusalCode::NotPermitted, 15, "not_permitted"),
    (RefusalCode::Other, 255, "other"),
];

impl RefusalCode {
    /// The code's byte; codes this crate does not know read as `Other`.
    pub fn from_byte(byte: u8) -> RefusalCode {
        CODES.iter().find(|c| c.1 == byte).map_or(RefusalCode::Other, |c| c.0)
    }

    pub fn byte(self) -> u8 {
        CODES.iter().find(|c| c.0 == self).map_or(255, |c| c.1)
    }

    /// The snake-case name `docs/PROTOCOL.md` uses.
    pub fn name(self) -> &'static str {
        CODES.iter().find(|c| c.0 == self).map_or("other", |c| c.2)
    }
}

impl fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A frame that cannot be decoded, with the code the protocol gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    pub code: RefusalCode,
    pub message: String,
}

impl WireError {
    pub(crate) fn new(code: RefusalCode, message: impl Into<String>) -> WireError {
        WireError { code, message: message.into() }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for WireError {}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub min_version: u16,
    pub max_version: u16,
    pub source_name: String,
    pub pid: u64,
    pub start_millis: u64,
    pub instance_id: u64,
    pub first_sequence: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Welcome {
    pub version: u16,
    pub max_frame_bytes: u64,
    pub max_series: u64,
    pub last_applied: u64,
}

/// One series definition of a DEFINE frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Definition {
    pub id: u32,
    pub kind: Kind,
    pub name: String,
    pub help: String,
    pub labels: Vec<(String, String)>,
    pub bounds: Vec<f64>,
    /// The native buckets a histogram records too (version 3), or `None`.
    pub native: Option<crate::native::NativeSpec>,
}

/// One delta of a DELTAS frame. Float values travel as their IEEE-754 bits, so NaN payloads round-trip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delta {
    CounterAdd {
        id: u32,
        increment: u64,
    },
    CounterAddFloat {
        id: u32,
        bits: u64,
    },
    GaugeSet {
        id: u32,
        bits: u64,
    },
    GaugeAdd {
        id: u32,
        bits: u64,
    },
    /// `(bucket index, count)` pairs with strictly increasing indexes; index = bound count means +Inf.
    Histogram {
        id: u32,
        buckets: Vec<(u32, u64)>,
        sum_bits: u64,
    },
}

/// The latest exemplar of a counter (bucket 0) or of one histogram bucket (protocol version 2).
#[derive(Clone, Debug, PartialEq)]
pub struct ExemplarUpdate {
    pub id: u32,
    pub bucket: u32,
    pub value: f64,
    /// When it was recorded, Unix milliseconds.
    pub timestamp_millis: u64,
    pub labels: Vec<(String, String)>,
}

impl ExemplarUpdate {
    /// Why `labels` cannot be an exemplar's (OpenMetrics' rules), if they cannot.
    pub fn problem(labels: &[(String, String)]) -> Option<String> {
        let code_points: usize = labels.iter().map(|(k, v)| k.chars().count() + v.chars().count()).sum();
        if code_points > MAX_EXEMPLAR_LABEL_CODE_POINTS {
            return Some(format!(
                "exemplar labels have {code_points} code points, OpenMetrics allows {MAX_EXEMPLAR_LABEL_CODE_POINTS}"
            ));
        }
        if let Some((bad, _)) = labels.iter().find(|(k, _)| !crate::registry::valid_name(k, false)) {
            return Some(format!("\"{bad}\" is not a label name"));
        }
        let mut names: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        (names.len() != labels.len()).then(|| "exemplar label names repeat".to_owned())
    }
}

/// Any frame of protocol versions 1 to 4.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Hello(Hello),
    Welcome(Welcome),
    Refuse {
        code: RefusalCode,
        message: String,
    },
    Define {
        sequence: u64,
        definitions: Vec<Definition>,
    },
    Deltas {
        sequence: u64,
        deltas: Vec<Delta>,
    },
    Ack(u64),
    SeriesRefused {
        id: u32,
        code: RefusalCode,
        message: String,
    },
    Goodbye(u64),
    /// Version 2: latest exemplars; not sequenced.
    Exemplars(Vec<ExemplarUpdate>),
    /// Version 4: finished spans of sampled traces; not sequenced (best effort).
    Spans(SpanBatch),
}

/// Per-item limits of protocol v1 (the agent's defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_frame_bytes: usize,
    pub max_source_name_bytes: usize,
    pub max_name_bytes: usize,
    pub max_help_bytes: usize,
    pub max_labels: usize,
    pub max_label_name_bytes: usize,
    pub max_label_value_bytes: usize,
    pub max_buckets: usize,
    pub max_native_buckets: usize,
    pub max_series: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame_bytes: 65_536,
            max_source_name_bytes: 128,
            max_name_bytes: 200,
            max_help_bytes: 1_024,
            max_labels: 16,
            max_label_name_bytes: 100,
            max_label_value_bytes: 256,
            max_buckets: 64,
            max_native_buckets: 256,
            max_series: 100_000,
        }
    }
}
