//! Encoding: primitives, whole frames, and the pieces the flusher fills DEFINE and DELTAS frames with.

use super::{frame_type, Definition, Delta, ExemplarUpdate, Frame, Kind, MAGIC};

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
    let native = if d.kind == Kind::Histogram { d.native } else { None };
    w.u8(if native.is_some() { super::NATIVE_HISTOGRAM_KIND } else { d.kind as u8 });
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
    if let Some(spec) = native {
        w.u8(spec.schema as u8);
        w.u64(spec.zero_threshold.to_bits());
        w.uvarint(u64::from(spec.max_buckets));
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

/// One item of an EXEMPLARS frame.
pub fn encode_exemplar(w: &mut Writer, e: &ExemplarUpdate) {
    w.uvarint(u64::from(e.id));
    w.uvarint(u64::from(e.bucket));
    w.u64(e.value.to_bits());
    w.uvarint(e.timestamp_millis);
    w.uvarint(e.labels.len() as u64);
    for (k, v) in &e.labels {
        w.string(k);
        w.string(v);
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
        Frame::Exemplars(_) => frame_type::EXEMPLARS,
        Frame::Spans(_) => frame_type::SPANS,
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
        Frame::Exemplars(exemplars) => exemplars.iter().for_each(|e| encode_exemplar(&mut w, e)),
        Frame::Spans(batch) => {
            super::spans::encode_attributes(&mut w, &batch.resource);
            batch.spans.iter().for_each(|s| super::spans::encode_span(&mut w, s));
        }
    }
    finish(&mut w, 0);
    w.bytes
}

/// One frame being filled: header, sequence, then items until the agent's frame limit.
pub struct FrameBuilder {
    writer: Writer,
    max_bytes: usize,
}

impl FrameBuilder {
    pub fn new(frame_type: u8, sequence: u64, max_bytes: usize) -> FrameBuilder {
        let mut writer = Writer::default();
        begin(&mut writer, frame_type);
        writer.uvarint(sequence);
        FrameBuilder { writer, max_bytes }
    }

    /// A frame without a sequence (EXEMPLARS).
    pub fn unsequenced(frame_type: u8, max_bytes: usize) -> FrameBuilder {
        let mut writer = Writer::default();
        begin(&mut writer, frame_type);
        FrameBuilder { writer, max_bytes }
    }

    /// Appends one item; false (and the item undone) when it would make the frame too long.
    pub fn append(&mut self, encode: impl FnOnce(&mut Writer)) -> bool {
        let mark = self.writer.bytes.len();
        encode(&mut self.writer);
        if self.writer.bytes.len() > self.max_bytes {
            self.writer.bytes.truncate(mark);
            return false;
        }
        true
    }

    pub fn finish(mut self) -> Vec<u8> {
        finish(&mut self.writer, 0);
        self.writer.bytes
    }
}
