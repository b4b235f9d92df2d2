//! Protocol v1 frames: encoding and decoding, byte for byte as `docs/PROTOCOL.md` specifies and as the Swift
//! reference (`Sources/DanubeMetricsWire`) writes them. Golden vectors in `Tests/golden-frames` keep both in step.
//!
//! Hand-written because the format is small and ours; a serialisation crate would be a dependency for no gain.

use std::fmt;

/// The first four bytes of every HELLO body.
pub const MAGIC: [u8; 4] = *b"DNBM";
/// Protocol versions this crate speaks.
pub const VERSION: u16 = 1;
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
    fn new(code: RefusalCode, message: impl Into<String>) -> WireError {
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

/// Any frame of protocol v1.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Hello(Hello),
    Welcome(Welcome),
    Refuse { code: RefusalCode, message: String },
    Define { sequence: u64, definitions: Vec<Definition> },
    Deltas { sequence: u64, deltas: Vec<Delta> },
    Ack(u64),
    SeriesRefused { id: u32, code: RefusalCode, message: String },
    Goodbye(u64),
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
            max_series: 100_000,
        }
    }
}

// MARK: encoding

/// Appends protocol primitives to a byte vector.
#[derive(Default, Debug)]
pub struct Writer {
    pub bytes: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    pub fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.bytes.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.bytes.push(v as u8);
    }
    pub fn string(&mut self, s: &str) {
        self.uvarint(s.len() as u64);
        self.bytes.extend_from_slice(s.as_bytes());
    }
}

/// Starts a frame of `frame_type` in `w` (cleared): length placeholder, type, flags.
pub fn begin(w: &mut Writer, frame_type: u8) {
    w.bytes.clear();
    w.u32(0);
    w.u8(frame_type);
    w.u8(0);
}

/// Patches the length of the frame that starts at `start`.
pub fn finish(w: &mut Writer, start: usize) {
    let length = (w.bytes.len() - start - 4) as u32;
    w.bytes[start..start + 4].copy_from_slice(&length.to_le_bytes());
}

pub fn encode_definition(w: &mut Writer, d: &Definition) {
    w.uvarint(u64::from(d.id));
    w.u8(d.kind as u8);
    w.string(&d.name);
    w.string(&d.help);
    w.uvarint(d.labels.len() as u64);
    for (name, value) in &d.labels {
        w.string(name);
        w.string(value);
    }
    if d.kind == Kind::Histogram {
        w.uvarint(d.bounds.len() as u64);
        for bound in &d.bounds {
            w.u64(bound.to_bits());
        }
    }
}

pub fn encode_delta(w: &mut Writer, d: &Delta) {
    match d {
        Delta::CounterAdd { id, increment } => {
            w.u8(1);
            w.uvarint(u64::from(*id));
            w.uvarint(*increment);
        }
        Delta::CounterAddFloat { id, bits } | Delta::GaugeSet { id, bits } | Delta::GaugeAdd { id, bits } => {
            let op = match d {
                Delta::CounterAddFloat { .. } => 2,
                Delta::GaugeSet { .. } => 3,
                _ => 4,
            };
            w.u8(op);
            w.uvarint(u64::from(*id));
            w.u64(*bits);
        }
        Delta::Histogram { id, buckets, sum_bits } => {
            w.u8(5);
            w.uvarint(u64::from(*id));
            w.uvarint(buckets.len() as u64);
            for (index, count) in buckets {
                w.uvarint(u64::from(*index));
                w.uvarint(*count);
            }
            w.u64(*sum_bits);
        }
    }
}

/// Encodes one whole frame.
pub fn encode(frame: &Frame) -> Vec<u8> {
    let mut w = Writer::default();
    let frame_type = match frame {
        Frame::Hello(_) => frame_type::HELLO,
        Frame::Welcome(_) => frame_type::WELCOME,
        Frame::Refuse { .. } => frame_type::REFUSE,
        Frame::Define { .. } => frame_type::DEFINE,
        Frame::Deltas { .. } => frame_type::DELTAS,
        Frame::Ack(_) => frame_type::ACK,
        Frame::SeriesRefused { .. } => frame_type::SERIES_REFUSED,
        Frame::Goodbye(_) => frame_type::GOODBYE,
    };
    begin(&mut w, frame_type);
    match frame {
        Frame::Hello(h) => {
            w.bytes.extend_from_slice(&MAGIC);
            w.u16(h.min_version);
            w.u16(h.max_version);
            w.string(&h.source_name);
            w.uvarint(h.pid);
            w.uvarint(h.start_millis);
            w.u64(h.instance_id);
            w.uvarint(h.first_sequence);
        }
        Frame::Welcome(x) => {
            w.u16(x.version);
            w.uvarint(x.max_frame_bytes);
            w.uvarint(x.max_series);
            w.uvarint(x.last_applied);
        }
        Frame::Refuse { code, message } => {
            w.u8(code.byte());
            w.string(message);
        }
        Frame::Define { sequence, definitions } => {
            w.uvarint(*sequence);
            definitions.iter().for_each(|d| encode_definition(&mut w, d));
        }
        Frame::Deltas { sequence, deltas } => {
            w.uvarint(*sequence);
            deltas.iter().for_each(|d| encode_delta(&mut w, d));
        }
        Frame::Ack(s) | Frame::Goodbye(s) => w.uvarint(*s),
        Frame::SeriesRefused { id, code, message } => {
            w.uvarint(u64::from(*id));
            w.u8(code.byte());
            w.string(message);
        }
    }
    finish(&mut w, 0);
    w.bytes
}

// MARK: decoding

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], WireError> {
        if self.bytes.len() - self.at < n {
            return Err(WireError::new(RefusalCode::Truncated, format!("{what} runs past the end of the frame")));
        }
        let slice = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(slice)
    }
    fn u8(&mut self, what: &str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.take(2, what)?.try_into().unwrap_or_default()))
    }
    fn u64(&mut self, what: &str) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().unwrap_or_default()))
    }
    fn uvarint(&mut self, what: &str) -> Result<u64, WireError> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = self.u8(what)?;
            let group = u64::from(byte & 0x7F);
            if i == 9 && (byte > 1) {
                return Err(WireError::new(RefusalCode::Malformed, format!("{what} does not fit 64 bits")));
            }
            value |= group << (7 * i);
            if byte & 0x80 == 0 {
                if i > 0 && byte == 0 {
                    return Err(WireError::new(RefusalCode::Malformed, format!("{what} is not minimally encoded")));
                }
                return Ok(value);
            }
        }
        Err(WireError::new(RefusalCode::Malformed, format!("{what} is longer than 10 bytes")))
    }
    fn uvarint32(&mut self, what: &str) -> Result<u32, WireError> {
        let v = self.uvarint(what)?;
        u32::try_from(v).map_err(|_| WireError::new(RefusalCode::Malformed, format!("{what} {v} does not fit 32 bits")))
    }
    fn string(&mut self, what: &str, limit: usize) -> Result<String, WireError> {
        let length = self.uvarint(what)?;
        if length > limit as u64 {
            return Err(WireError::new(
                RefusalCode::LimitExceeded,
                format!("{what} is {length} bytes, the limit is {limit}"),
            ));
        }
        let bytes = self.take(length as usize, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| WireError::new(RefusalCode::Malformed, format!("{what} is not valid UTF-8")))
    }
    fn at_end(&self) -> bool {
        self.at == self.bytes.len()
    }
}

/// Decodes every frame of one record (one SEQPACKET message holds one or more whole frames).
pub fn decode_record(record: &[u8], limits: &Limits) -> Result<Vec<Frame>, WireError> {
    if record.len() > limits.max_frame_bytes {
        return Err(WireError::new(RefusalCode::Oversized, "record exceeds the frame size limit"));
    }
    if record.is_empty() {
        return Err(WireError::new(RefusalCode::Truncated, "empty record"));
    }
    let mut frames = Vec::new();
    let mut offset = 0;
    while offset < record.len() {
        let remaining = record.len() - offset;
        if remaining < HEADER_SIZE {
            return Err(WireError::new(RefusalCode::Truncated, "shorter than a frame header"));
        }
        let length = u32::from_le_bytes(record[offset..offset + 4].try_into().unwrap_or_default()) as usize;
        if length > limits.max_frame_bytes {
            return Err(WireError::new(RefusalCode::Malformed, "frame declares more bytes than the limit"));
        }
        if length < 2 {
            return Err(WireError::new(RefusalCode::Malformed, "frame declares less than its type and flags"));
        }
        if length > remaining - 4 {
            return Err(WireError::new(RefusalCode::Truncated, "frame is shorter than its declared length"));
        }
        frames.push(decode_frame(&record[offset + 4..offset + 4 + length], limits)?);
        offset += 4 + length;
    }
    Ok(frames)
}

fn decode_frame(bytes: &[u8], limits: &Limits) -> Result<Frame, WireError> {
    let mut r = Reader { bytes, at: 0 };
    let frame_type = r.u8("frame type")?;
    let flags = r.u8("flags")?;
    if !matches!(frame_type, 0x01..=0x03 | 0x10..=0x14) {
        return Err(WireError::new(RefusalCode::Malformed, format!("unknown frame type 0x{frame_type:x}")));
    }
    if flags != 0 {
        return Err(WireError::new(RefusalCode::Malformed, "reserved flags are set"));
    }
    let frame = match frame_type {
        frame_type::HELLO => {
            if r.take(4, "magic")? != MAGIC {
                return Err(WireError::new(RefusalCode::Malformed, "bad magic"));
            }
            let min_version = r.u16("min version")?;
            let max_version = r.u16("max version")?;
            if min_version > max_version {
                return Err(WireError::new(RefusalCode::Malformed, "empty version range"));
            }
            Frame::Hello(Hello {
                min_version,
                max_version,
                source_name: r.string("source name", limits.max_source_name_bytes)?,
                pid: r.uvarint("pid")?,
                start_millis: r.uvarint("start millis")?,
                instance_id: r.u64("instance id")?,
                first_sequence: r.uvarint("first sequence")?,
            })
        }
        frame_type::WELCOME => Frame::Welcome(Welcome {
            version: r.u16("version")?,
            max_frame_bytes: r.uvarint("max frame bytes")?,
            max_series: r.uvarint("max series")?,
            last_applied: r.uvarint("last applied")?,
        }),
        frame_type::REFUSE => {
            Frame::Refuse { code: RefusalCode::from_byte(r.u8("refusal code")?), message: r.string("message", 4096)? }
        }
        frame_type::DEFINE => decode_define(&mut r, limits)?,
        frame_type::DELTAS => decode_deltas(&mut r, limits)?,
        frame_type::ACK => Frame::Ack(r.uvarint("sequence")?),
        frame_type::GOODBYE => Frame::Goodbye(r.uvarint("sequence")?),
        _ => Frame::SeriesRefused {
            id: r.uvarint32("series id")?,
            code: RefusalCode::from_byte(r.u8("refusal code")?),
            message: r.string("message", 4096)?,
        },
    };
    if !r.at_end() {
        return Err(WireError::new(RefusalCode::Malformed, "unexpected bytes after the frame"));
    }
    Ok(frame)
}

fn decode_define(r: &mut Reader<'_>, limits: &Limits) -> Result<Frame, WireError> {
    let sequence = r.uvarint("sequence")?;
    let mut definitions = Vec::new();
    while !r.at_end() {
        let id = r.uvarint32("series id")?;
        let kind = match r.u8("kind")? {
            1 => Kind::Counter,
            2 => Kind::Gauge,
            3 => Kind::Histogram,
            other => return Err(WireError::new(RefusalCode::Malformed, format!("unknown kind {other}"))),
        };
        let name = r.string("metric name", limits.max_name_bytes)?;
        let help = r.string("help", limits.max_help_bytes)?;
        let label_count = r.uvarint("label count")?;
        if label_count > limits.max_labels as u64 {
            return Err(WireError::new(RefusalCode::LimitExceeded, "too many labels"));
        }
        let mut labels = Vec::with_capacity(label_count as usize);
        for _ in 0..label_count {
            let label = r.string("label name", limits.max_label_name_bytes)?;
            labels.push((label, r.string("label value", limits.max_label_value_bytes)?));
        }
        let mut bounds = Vec::new();
        if kind == Kind::Histogram {
            let count = r.uvarint("bucket count")?;
            if count > limits.max_buckets as u64 {
                return Err(WireError::new(RefusalCode::LimitExceeded, "too many buckets"));
            }
            for _ in 0..count {
                let bound = f64::from_bits(r.u64("bucket bound")?);
                if !bound.is_finite() || bounds.last().is_some_and(|last| *last >= bound) {
                    return Err(WireError::new(RefusalCode::Malformed, "bounds must be finite and increasing"));
                }
                bounds.push(bound);
            }
        }
        definitions.push(Definition { id, kind, name, help, labels, bounds });
    }
    Ok(Frame::Define { sequence, definitions })
}

fn decode_deltas(r: &mut Reader<'_>, limits: &Limits) -> Result<Frame, WireError> {
    let sequence = r.uvarint("sequence")?;
    let mut deltas = Vec::new();
    while !r.at_end() {
        let op = r.u8("delta op")?;
        if !(1..=5).contains(&op) {
            return Err(WireError::new(RefusalCode::Malformed, format!("unknown delta op {op}")));
        }
        let id = r.uvarint32("series id")?;
        deltas.push(match op {
            1 => Delta::CounterAdd { id, increment: r.uvarint("counter increment")? },
            2 => {
                let bits = r.u64("counter increment")?;
                let value = f64::from_bits(bits);
                if !value.is_finite() || value < 0.0 {
                    return Err(WireError::new(RefusalCode::Malformed, "float increment is not finite and >= 0"));
                }
                Delta::CounterAddFloat { id, bits }
            }
            3 => Delta::GaugeSet { id, bits: r.u64("gauge value")? },
            4 => Delta::GaugeAdd { id, bits: r.u64("gauge delta")? },
            _ => {
                // 5, HISTOGRAM: the op was checked above.
                let changed = r.uvarint("changed bucket count")?;
                if changed > limits.max_buckets as u64 + 1 {
                    return Err(WireError::new(RefusalCode::LimitExceeded, "too many buckets in a delta"));
                }
                let mut buckets = Vec::with_capacity(changed as usize);
                let mut previous: i64 = -1;
                for _ in 0..changed {
                    let index = r.uvarint32("bucket index")?;
                    if i64::from(index) <= previous {
                        return Err(WireError::new(RefusalCode::Malformed, "bucket indexes are not increasing"));
                    }
                    previous = i64::from(index);
                    buckets.push((index, r.uvarint("bucket count")?));
                }
                Delta::Histogram { id, buckets, sum_bits: r.u64("histogram sum")? }
            }
        });
    }
    Ok(Frame::Deltas { sequence, deltas })
}
