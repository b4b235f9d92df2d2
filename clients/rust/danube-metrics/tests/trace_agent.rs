//! Spans delivered to a real agent that exports traces: SPANS frames on protocol version 4, a histogram
//! observed inside a sampled span carries that span as its exemplar, and an agent that exports no traces gets
//! none (the emitter drops and counts them).

mod support;

use danube_metrics::histogram;
use danube_metrics::trace::{Span, SpanKind};
use std::time::{Duration, Instant};
use support::Agent;

fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "{what} within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn spans_reach_the_agent_and_latency_exemplars_point_at_them() {
    // The receiver is never up: the agent speaks version 4 and counts what it received.
    let mut agent = Agent::prepare("trace", &["--otlp-endpoint", "http://127.0.0.1:9/v1/traces"]);
    agent.start();
    let handle = danube_metrics::install(danube_metrics::Config {
        source_name: "rust-trace-test".into(),
        socket: Some(agent.socket()),
        flush_interval: Duration::from_millis(50),
        trace_sample_ratio: 1.0,
        ..Default::default()
    })
    .expect("install");
    let (trace_id, span_id) = {
        let publish = Span::start("publish", SpanKind::Producer);
        let _wal = Span::start("wal.append", SpanKind::Internal);
        histogram!("danube_wal_flush_latency_ms", "topic" => "/default/orders").record(1.5);
        let context = publish.context();
        (context.trace_id_hex(), _wal.context().span_id_hex())
    };
    handle.flush();
    wait_for("two spans sent", || handle.stats().spans_sent == 2);
    wait_for("two spans received", || agent.samples().get("danube_agent_spans_received_total") == Some(&2.0));
    assert!(handle.wait_until_delivered(Duration::from_secs(20)), "{:?}", handle.stats());
    let openmetrics =
        support::get_accepting(agent.port, "/metrics", "application/openmetrics-text; version=1.0.0").unwrap();
    let line = openmetrics
        .lines()
        .find(|l| l.starts_with("danube_wal_flush_latency_ms_bucket") && l.contains("trace_id"))
        .unwrap_or_else(|| panic!("no exemplar in\n{openmetrics}"));
    assert!(
        line.contains(&format!("trace_id=\"{trace_id}\"")) && line.contains(&format!("span_id=\"{span_id}\"")),
        "{line}"
    );
    assert_eq!(handle.stats().spans_dropped, 0);

    // An agent that exports no traces speaks version 3: spans recorded meanwhile are dropped and counted.
    agent.kill();
    let mut plain = Agent::prepare("trace-plain", &[]);
    let _ = std::fs::remove_dir_all(&plain.dir); // it takes over the first agent's directory (and removes it)
    plain.dir = agent.dir.clone();
    plain.port = agent.port;
    plain.start();
    wait_for("the emitter back", || handle.stats().connected);
    drop(Span::start("publish", SpanKind::Producer));
    handle.flush();
    wait_for("the span dropped", || handle.stats().spans_dropped == 1);
    assert!(!plain.samples().contains_key("danube_agent_spans_received_total"));
    handle.shutdown();
}
