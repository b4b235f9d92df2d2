//! Golden vectors shared with the Swift suite (`Tests/golden-frames`, written by the Swift encoder): every
//! record decodes and re-encodes byte-identically, every bad one is refused with the code its name gives. A
//! change of the format on either side fails both suites.

use danube_metrics::wire::{self, AttributeValue, Delta, Frame, Limits, RefusalCode, SpanKind, SpanStatus, TraceId};
use std::path::PathBuf;

fn directory() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../Tests/golden-frames")
}

fn files(suffix: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(directory())
        .expect("Tests/golden-frames is readable")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn every_golden_record_decodes_and_reencodes_byte_identically() {
    let records = files(".frames");
    assert!(records.len() >= 18, "expected the Swift suite's vectors, found {}", records.len());
    for (name, bytes) in records {
        let frames = wire::decode_record(&bytes, &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let reencoded: Vec<u8> = frames.iter().flat_map(wire::encode).collect();
        assert_eq!(reencoded, bytes, "{name} re-encodes differently");
    }
}

#[test]
fn golden_records_hold_what_the_swift_test_wrote() {
    let read =
        |name: &str| wire::decode_record(&std::fs::read(directory().join(name)).unwrap(), &Limits::default()).unwrap();
    let Frame::Hello(hello) = &read("hello.frames")[0] else { panic!("hello.frames holds no HELLO") };
    assert_eq!(
        (hello.source_name.as_str(), hello.pid, hello.instance_id),
        ("danube-broker", 4242, 0x0123_4567_89AB_CDEF)
    );
    let Frame::Deltas { sequence, deltas } = &read("deltas-every-op.frames")[0] else { panic!("no DELTAS") };
    assert_eq!(*sequence, 3);
    assert_eq!(deltas[1], Delta::CounterAdd { id: 0, increment: u64::MAX });
    assert_eq!(deltas[4], Delta::GaugeSet { id: 1, bits: (-0.0f64).to_bits() });
    assert_eq!(
        deltas[6],
        Delta::Histogram { id: 2, buckets: vec![(0, 1), (4, 128), (5, 300)], sum_bits: 1234.5f64.to_bits() }
    );
    let Frame::Define { definitions, .. } = &read("define-every-kind.frames")[0] else { panic!("no DEFINE") };
    assert_eq!(definitions[2].labels, vec![("topic".to_owned(), "/default/ordérs ✓".to_owned())]);
    assert_eq!(definitions[2].bounds, vec![0.05, 0.1, 1.0, 2.5, 300_000.0]);
    assert_eq!(
        read("series-refused-unknown-code.frames")[0],
        Frame::SeriesRefused { id: 0, code: RefusalCode::Other, message: "?".into() }
    );
    assert_eq!(read("record-several-frames.frames").len(), 3);
    let Frame::Spans(batch) = &read("spans.frames")[0] else { panic!("no SPANS") };
    let publish = &batch.spans[0];
    assert_eq!(publish.trace_id, TraceId { high: 0x4BF9_2F35_77B3_4DA6, low: 0xA3CE_929D_0E0E_4736 });
    assert_eq!((publish.span_id, publish.parent_span_id), (0x00F0_67AA_0BA9_02B7, 0x1122_3344_5566_7788));
    assert_eq!(
        (publish.kind, publish.parent_is_remote, publish.name.as_str()),
        (SpanKind::Producer, true, "publish /default/orders")
    );
    assert_eq!(publish.attributes[2], ("danube.producer_id".to_owned(), AttributeValue::Int(-7)));
    assert_eq!((publish.events[0].name.as_str(), publish.events[0].offset_nanos), ("wal.fsync", 2_000_000));
    assert_eq!(batch.spans[1].status, SpanStatus::Error);
    assert_eq!(batch.resource[0], ("service.version".to_owned(), AttributeValue::String("0.15.1".into())));
}

#[test]
fn every_bad_vector_is_refused_with_its_code() {
    let bad = files(".bin");
    assert!(bad.len() >= 10);
    for (name, bytes) in bad {
        let expected = name.split('-').nth(1).unwrap();
        match wire::decode_record(&bytes, &Limits::default()) {
            Ok(frames) => panic!("{name} decoded as {frames:?}"),
            Err(error) => assert_eq!(error.code.name(), expected, "{name}: {error}"),
        }
    }
}

/// SplitMix64: a small std-only generator for seeded random frames.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn text(&mut self) -> String {
        (0..self.below(12)).map(|_| ['a', 'z', '_', '/', 'ü', '✓', '0'][self.below(7) as usize]).collect()
    }
}

#[test]
fn seeded_random_frames_round_trip() {
    let mut random = SplitMix(7);
    for _ in 0..2_000 {
        let deltas = (0..random.below(6))
            .map(|_| {
                let id = random.next() as u32;
                match random.below(5) {
                    0 => Delta::CounterAdd { id, increment: random.next() >> random.below(64) },
                    1 => Delta::CounterAddFloat { id, bits: (random.below(1 << 20) as f64 / 8.0).to_bits() },
                    2 => Delta::GaugeSet { id, bits: random.next() },
                    3 => Delta::GaugeAdd { id, bits: random.next() },
                    _ => {
                        let mut index = 0u32;
                        let buckets = (0..random.below(8))
                            .map(|_| {
                                index += 1 + random.below(4) as u32;
                                (index, random.next() >> 20)
                            })
                            .collect();
                        Delta::Histogram { id, buckets, sum_bits: random.next() }
                    }
                }
            })
            .collect();
        let frames = [
            Frame::Deltas { sequence: random.next() >> random.below(64), deltas },
            Frame::Refuse { code: RefusalCode::from_byte(random.below(16) as u8), message: random.text() },
            Frame::Ack(random.next()),
        ];
        for frame in frames {
            let bytes = wire::encode(&frame);
            let decoded = wire::decode_record(&bytes, &Limits::default()).unwrap();
            assert_eq!(wire::encode(&decoded[0]), bytes);
        }
    }
}
