//! Delivery to a real agent process (strict catalog, state directory): recording before the agent exists,
//! a refused series beside exact ones, and SIGKILLs of the agent while four threads record. Every counter,
//! bucket, count and sum on `/metrics` must equal what this process recorded.

mod support;

use danube_metrics::{counter, gauge, histogram};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::Agent;

fn record(topic: &str, n: u64) {
    for i in 0..n {
        counter!("danube_topic_messages_in_total", "topic" => topic.to_string()).increment(1);
        histogram!("danube_wal_flush_latency_ms", "topic" => topic).record((i % 700) as f64 * 0.9);
    }
}

#[test]
fn every_value_is_exact_across_a_late_agent_refusals_and_sigkills() {
    let mut agent = Agent::prepare("delivery", &["--catalog-mode", "strict"]);
    let handle = danube_metrics::install(danube_metrics::Config {
        source_name: "rust-test".into(),
        socket: Some(agent.socket()),
        global_labels: vec![("broker".into(), "3".into())],
        flush_interval: Duration::from_millis(50),
        reconnect_backoff: (Duration::from_millis(20), Duration::from_millis(200)),
        ..Default::default()
    })
    .expect("install");
    assert!(matches!(danube_metrics::install(Default::default()), Err(danube_metrics::Error::AlreadyInstalled)));

    // No agent yet: recording goes on in place.
    record("/default/orders", 1_000);
    handle.flush();
    assert_eq!(handle.stats().connects, 0);
    assert!(handle.stats().flushes_without_agent > 0);

    agent.start();
    assert!(handle.wait_until_delivered(Duration::from_secs(20)), "{:?}", handle.stats());
    let shown = agent.samples();
    assert_eq!(shown.get("danube_topic_messages_in_total{broker=\"3\",topic=\"/default/orders\"}"), Some(&1_000.0));
    assert_eq!(support::differences(&shown), Vec::<String>::new());
    // The emitter reports its process: this test process, with its threads and memory.
    let process =
        |name: &str| shown.get(&format!("{name}{{broker=\"3\",source=\"rust-test\"}}")).copied().unwrap_or(0.0);
    assert!(process("danube_process_threads") >= 1.0 && process("danube_process_resident_memory_bytes") > 1e6);
    // `absolute` raises a word outside the cells: it flags the counter's line, so the flusher still reads it.
    counter!("danube_topic_messages_in_total", "topic" => "/default/orders").absolute(5_000);
    assert!(handle.wait_until_delivered(Duration::from_secs(20)), "{:?}", handle.stats());
    let shown = agent.samples();
    assert_eq!(shown.get("danube_topic_messages_in_total{broker=\"3\",topic=\"/default/orders\"}"), Some(&5_000.0));
    // Exemplars (protocol version 2): the latest of a bucket is shown in OpenMetrics scrapes.
    let exemplar =
        danube_metrics::Exemplar::trace("4bf92f3577b34da6a3ce929d0e0e4736", Some("00f067aa0ba902b7")).unwrap();
    histogram!("danube_wal_flush_latency_ms", "topic" => "/default/orders").record_with_exemplar(3.5, &exemplar);
    assert!(danube_metrics::Exemplar::trace(&"a".repeat(130), None).is_err(), "OpenMetrics' 128 code points");
    assert!(handle.wait_until_delivered(Duration::from_secs(20)), "{:?}", handle.stats());
    let accept = "application/openmetrics-text; version=1.0.0";
    let shown_exemplar = (0..100).any(|_| {
        let text = support::get_accepting(agent.port, "/metrics", accept).unwrap_or_default();
        let found = text.lines().any(|l| {
            l.starts_with("danube_wal_flush_latency_ms_bucket")
                && l.contains("# {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\",span_id=\"00f067aa0ba902b7\"} 3.5 ")
        });
        if !found {
            std::thread::sleep(Duration::from_millis(50));
        }
        found
    });
    assert!(shown_exemplar, "no exemplar in the OpenMetrics scrape");
    // Native buckets (protocol version 3): a latency family of the catalog is recorded both ways, and every
    // observation of every series is in its native buckets.
    let protobuf = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";
    let body = support::get_bytes(agent.port, "/metrics", protobuf).expect("protobuf scrape");
    let natives = support::native_histograms(&body, "danube_wal_flush_latency_ms");
    assert!(!natives.is_empty(), "no danube_wal_flush_latency_ms histogram in the protobuf scrape");
    for (count, schema, native_total) in natives {
        assert_eq!((schema, native_total), (Some(6), count), "schema 3 (zigzag 6); native buckets hold all {count}");
    }
    let before_refusal = support::expected().len();

    // A series the strict catalog refuses is settled alone; the rest stays exact.
    counter!("danube_wal_fsync_total", "disk" => "sda").increment(1);
    gauge!("danube_broker_topics_owned").set(4.0);
    assert!(handle.wait_until_delivered(Duration::from_secs(20)), "{:?}", handle.stats());
    assert_eq!(handle.stats().refused_series, 1);
    counter!("bad name").increment(1);
    handle.flush();
    assert_eq!(handle.stats().rejected_registrations, 1);
    let shown = agent.samples();
    assert_eq!(shown.get("danube_broker_topics_owned{broker=\"3\"}"), Some(&4.0));
    assert!(shown
        .keys()
        .any(|k| k.starts_with("danube_agent_series_rejected_total") && k.contains("danube_wal_fsync_total")));
    assert_eq!(support::differences(&shown).len(), 1, "only the refused series is missing");
    assert_eq!(support::expected().len(), before_refusal + 1);

    // Four threads record while the agent is SIGKILLed and restarted three times.
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let topic = format!("/default/topic-{t}");
                while !stop.load(Ordering::Relaxed) {
                    record(&topic, 50);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        })
        .collect();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(400));
        agent.kill();
        std::thread::sleep(Duration::from_millis(150));
        agent.start();
    }
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert!(handle.wait_until_delivered(Duration::from_secs(30)), "{:?}", handle.stats());
    // Everything but the refused series.
    let differences: Vec<String> =
        support::differences(&agent.samples()).into_iter().filter(|d| !d.contains("disk=")).collect();
    assert!(
        differences.is_empty(),
        "{} samples differ, e.g. {:?}\n{}",
        differences.len(),
        &differences[..differences.len().min(5)],
        agent.log()
    );
    assert!(handle.stats().connects >= 4);

    let stats = handle.shutdown();
    assert_eq!((stats.undelivered_series, stats.unacknowledged_frames), (0, 0));
}
