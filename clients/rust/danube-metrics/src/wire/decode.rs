//! Decoding: one record (one SEQPACKET message) into whole frames, checking structure and per-item limits, so a
//! bad frame is refused as a whole with the code the protocol gives it.

use super::{
    frame_type, Definition, Delta, ExemplarUpdate, Frame, Hello, Kind, Limits, RefusalCode, Welcome, WireError,
    HEADER_SIZE, MAGIC, MAX_EXEMPLAR_LABEL_CODE_POINTS,
};

pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], WireError> {
        if self.bytes.len() - self.at < n {
            return Err(WireError::new(RefusalCode::Truncated, format!("{what} runs past the end of the frame")));
        }
        let slice = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(slice)
    }
    pub(super) fn u8(&mut self, what: &str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }
    pub(super) fn u16(&mut self, what: &str) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.take(2, what)?.try_into().unwrap_or_default()))
    }
    pub(super) fn u64(&mut self, what: &str) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().unwrap_or_default()))
    }
    pub(super) fn uvarint(&mut self, what: &str) -> Result<u64, WireError> {
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
    pub(super) fn uvarint32(&mut self, what: &str) -> Result<u32, WireError> {
        let v = self.uvarint(what)?;
        u32::try_from(v).map_err(|_| WireError::new(RefusalCode::Malformed, format!("{what} {v} does not fit 32 bits")))
    }
    pub(super) fn string(&mut self, what: &str, limit: usize) -> Result<String, WireError> {
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
    pub(super) fn at_end(&self) -> bool {
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
    if !matches!(frame_type, 0x01..=0x03 | 0x10..=0x16) {
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
        frame_type::EXEMPLARS => decode_exemplars(&mut r, limits)?,
        frame_type::SPANS => Frame::Spans(super::spans::decode_spans(&mut r)?),
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

fn decode_exemplars(r: &mut Reader<'_>, limits: &Limits) -> Result<Frame, WireError> {
    let mut exemplars = Vec::new();
    while !r.at_end() {
        let id = r.uvarint32("series id")?;
        let bucket = r.uvarint32("bucket")?;
        if bucket as usize > limits.max_buckets {
            return Err(WireError::new(RefusalCode::LimitExceeded, format!("exemplar bucket {bucket}")));
        }
        let value = f64::from_bits(r.u64("exemplar value")?);
        if !value.is_finite() {
            return Err(WireError::new(RefusalCode::Malformed, "exemplar value is not finite"));
        }
        let timestamp_millis = r.uvarint("exemplar timestamp")?;
        let count = r.uvarint("exemplar label count")?;
        if count > (MAX_EXEMPLAR_LABEL_CODE_POINTS / 2) as u64 {
            return Err(WireError::new(RefusalCode::LimitExceeded, format!("{count} exemplar labels")));
        }
        let limit = MAX_EXEMPLAR_LABEL_CODE_POINTS * 4;
        let mut labels = Vec::new();
        for _ in 0..count {
            labels.push((r.string("exemplar label name", limit)?, r.string("exemplar label value", limit)?));
        }
        if let Some(problem) = ExemplarUpdate::problem(&labels) {
            return Err(WireError::new(RefusalCode::LimitExceeded, problem));
        }
        exemplars.push(ExemplarUpdate { id, bucket, value, timestamp_millis, labels });
    }
    Ok(Frame::Exemplars(exemplars))
}

fn decode_define(r: &mut Reader<'_>, limits: &Limits) -> Result<Frame, WireError> {
    let sequence = r.uvarint("sequence")?;
    let mut definitions = Vec::new();
    while !r.at_end() {
        let id = r.uvarint32("series id")?;
        let kind_byte = r.u8("kind")?;
        let kind = match kind_byte {
            1 => Kind::Counter,
            2 => Kind::Gauge,
            3 | super::NATIVE_HISTOGRAM_KIND => Kind::Histogram,
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
        let mut native = None;
        if kind_byte == super::NATIVE_HISTOGRAM_KIND {
            let spec = crate::native::NativeSpec {
                schema: r.u8("native schema")? as i8,
                zero_threshold: f64::from_bits(r.u64("native zero threshold")?),
                max_buckets: u16::try_from(r.uvarint("native bucket count")?).unwrap_or(u16::MAX),
            };
            if let Some(problem) = spec.problem() {
                let code = if usize::from(spec.max_buckets) > limits.max_native_buckets {
                    RefusalCode::LimitExceeded
                } else {
                    RefusalCode::Malformed
                };
                return Err(WireError::new(code, format!("{name}: {problem}")));
            }
            native = Some(spec);
        }
        definitions.push(Definition { id, kind, name, help, labels, bounds, native });
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
                if changed > (limits.max_buckets + 2 + limits.max_native_buckets) as u64 {
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
                let sum_bits = r.u64("histogram sum")?;
                if !f64::from_bits(sum_bits).is_finite() {
                    return Err(WireError::new(RefusalCode::Malformed, "histogram sum delta is not finite"));
                }
                Delta::Histogram { id, buckets, sum_bits }
            }
        });
    }
    Ok(Frame::Deltas { sequence, deltas })
}
