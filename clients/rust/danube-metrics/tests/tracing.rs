//! The span API without an agent: W3C trace context, sampling decided at the root and inherited, parents on one
//! thread and across threads, slow spans of unsampled traces, bounds, and the per-thread ring dropping its oldest.
//! Sampling is process-wide, so these run one at a time.

use danube_metrics::trace::{self, AttributeValue, Span, SpanContext, SpanKind, SpanStatus, TraceContextError};
use danube_metrics::wire::SpanRecord;
use std::sync::Mutex;
use std::time::Duration;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn finished() -> Vec<SpanRecord> {
    let mut spans = trace::take_finished_spans();
    spans.sort_by_key(|s| s.start_unix_nanos);
    spans
}

#[test]
fn traceparent_parses_formats_and_refuses_what_w3c_refuses() {
    let context = SpanContext::from_traceparent(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
    )
    .unwrap();
    assert_eq!(context.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(context.span_id_hex(), "00f067aa0ba902b7");
    assert!(context.sampled && context.remote);
    assert_eq!(context.traceparent(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    assert!(
        !SpanContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", None)
            .unwrap()
            .sampled
    );
    // A later version is read by its first four fields.
    assert!(
        SpanContext::from_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later", None).is_ok()
    );
    for (bad, why) in [
        ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", TraceContextError::Malformed),
        ("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", TraceContextError::Malformed),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", TraceContextError::Malformed),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", TraceContextError::Invalid),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", TraceContextError::Invalid),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceContextError::Invalid),
        ("garbage", TraceContextError::Malformed),
    ] {
        assert_eq!(SpanContext::from_traceparent(bad, None).unwrap_err(), why, "{bad}");
    }
    let long = "k=".to_owned() + &"v".repeat(600);
    assert_eq!(
        SpanContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Some(&long))
            .unwrap_err(),
        TraceContextError::TraceStateTooLong
    );
}

#[test]
fn a_sampled_trace_records_its_spans_with_their_parents_across_threads() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    trace::configure_sampling(1.0, None);
    let _ = finished();
    let remote =
        SpanContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Some("rojo=1"))
            .unwrap();
    let mut publish = Span::start_with_parent("publish", SpanKind::Producer, &remote);
    publish.set_attribute("messaging.system", "danube");
    publish.set_attribute("danube.producer_id", 7u64);
    publish.set_attribute("long", "x".repeat(1_000));
    let handed = publish.context();
    {
        let mut wal = Span::start("wal.append", SpanKind::Internal);
        wal.add_event("wal.fsync", &[("bytes", AttributeValue::Int(4_096))]);
        wal.set_error("disk full");
    }
    std::thread::spawn(move || {
        let mut dispatch = Span::start_with_parent("dispatch", SpanKind::Consumer, &handed);
        dispatch.set_ok();
        drop(Span::start("ack", SpanKind::Server));
    })
    .join()
    .unwrap();
    publish.end();
    let spans = finished();
    let by_name =
        |name: &str| spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no {name} in {spans:?}"));
    let (publish, wal, dispatch, ack) =
        (by_name("publish"), by_name("wal.append"), by_name("dispatch"), by_name("ack"));
    assert!(spans.iter().all(|s| s.trace_id == remote.trace_id), "one trace");
    assert_eq!((publish.parent_span_id, publish.parent_is_remote), (remote.span_id, true));
    assert_eq!(publish.trace_state, "rojo=1");
    assert_eq!(
        (wal.parent_span_id, dispatch.parent_span_id, ack.parent_span_id),
        (publish.span_id, publish.span_id, dispatch.span_id)
    );
    assert!(!wal.parent_is_remote && !dispatch.parent_is_remote);
    assert_eq!(publish.attributes[1], ("danube.producer_id".to_owned(), AttributeValue::Int(7)));
    assert_eq!(publish.attributes[2].1, AttributeValue::String("x".repeat(256)), "strings are bounded");
    assert_eq!((wal.status, wal.status_message.as_str()), (SpanStatus::Error, "disk full"));
    assert_eq!(dispatch.status, SpanStatus::Ok);
    assert_eq!(wal.events[0].name, "wal.fsync");
    assert!(wal.events[0].offset_nanos <= wal.duration_nanos);
    // Children inside the parent in time.
    for child in [wal, dispatch] {
        assert!(child.start_unix_nanos >= publish.start_unix_nanos);
        assert!(child.start_unix_nanos + child.duration_nanos <= publish.start_unix_nanos + publish.duration_nanos);
    }
}

#[test]
fn the_root_decides_and_children_follow() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    trace::configure_sampling(0.0, None);
    let _ = finished();
    {
        let root = Span::start("publish", SpanKind::Producer);
        assert!(!root.is_sampled());
        let child = Span::start("wal.append", SpanKind::Internal);
        assert!(!child.is_sampled(), "inherited");
    }
    // A remote parent's decision wins over the ratio.
    drop(Span::start_with_parent(
        "publish",
        SpanKind::Producer,
        &SpanContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None).unwrap(),
    ));
    assert_eq!(finished().len(), 1);
    // A ratio of a quarter samples about a quarter of the roots.
    trace::configure_sampling(0.25, None);
    let sampled = (0..4_000).filter(|_| Span::start("publish", SpanKind::Producer).is_sampled()).count();
    assert!((800..1_200).contains(&sampled), "{sampled} of 4,000");
    let _ = finished();
}

#[test]
fn a_slow_span_of_an_unsampled_trace_is_kept() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    trace::configure_sampling(0.0, Some(Duration::from_millis(20)));
    let _ = finished();
    drop(Span::start("fast", SpanKind::Internal));
    {
        let _slow = Span::start("slow", SpanKind::Producer);
        std::thread::sleep(Duration::from_millis(25));
    }
    let spans = finished();
    assert_eq!(spans.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), vec!["slow"]);
    assert!(spans[0].attributes.contains(&("danube.kept_as_slow".to_owned(), AttributeValue::Bool(true))));
    trace::configure_sampling(0.01, None);
}

#[test]
fn a_full_ring_drops_its_oldest_spans_and_counts_them() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    trace::configure_sampling(1.0, None);
    std::thread::spawn(|| {
        for _ in 0..600 {
            drop(Span::start("publish", SpanKind::Producer));
        }
        let mut last = Span::start("newest", SpanKind::Producer);
        last.set_attribute("n", 600i64);
    })
    .join()
    .unwrap();
    let spans = finished();
    assert_eq!(spans.len(), 512, "one ring's worth");
    assert!(spans.iter().any(|s| s.name == "newest"), "the newest kept, the oldest dropped");
    trace::configure_sampling(0.01, None);
}
