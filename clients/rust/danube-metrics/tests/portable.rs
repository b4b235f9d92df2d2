//! The portable platform layer (every target Danube ships but Linux), proven on Linux built with
//! `RUSTFLAGS="--cfg danube_metrics_force_portable"` (./dev test runs it): the same API compiles and records, no
//! socket is opened, the flusher warns once that nothing is delivered, and shutdown is bounded.
#![cfg(danube_metrics_force_portable)]

use danube_metrics::{counter, gauge, histogram, Level};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static LOGGED: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());

fn capture(level: Level, message: &str) {
    LOGGED.lock().unwrap().push((level, message.to_owned()));
}

#[test]
fn records_without_delivering_and_says_so_once() {
    const { assert!(!danube_metrics::platform::DELIVERS) };
    let handle = danube_metrics::install(danube_metrics::Config {
        source_name: "portable-broker".into(),
        flush_interval: Duration::from_millis(10),
        reconnect_backoff: (Duration::from_millis(5), Duration::from_millis(20)),
        log: Some(capture),
        ..Default::default()
    })
    .expect("install");
    for _ in 0..1_000 {
        counter!("danube_topic_messages_in_total", "topic" => "/default/orders").increment(1);
        histogram!("danube_producer_send_latency_ms", "topic" => "/default/orders").record(3.5);
    }
    gauge!("danube_broker_topics_owned").set(4.0);
    std::thread::sleep(Duration::from_millis(300)); // many flush intervals, many reconnect attempts
    let stats = handle.stats();
    assert!(!stats.connected && stats.connects == 0 && stats.connect_failures >= 5, "{stats:?}");
    assert_eq!(stats.last_error.as_deref(), Some(danube_metrics::platform::UNSUPPORTED));
    let totals = danube_metrics::recorded_totals();
    let messages = totals.iter().find(|t| t.name == "danube_topic_messages_in_total").expect("recorded");
    assert_eq!(messages.count, 1_000);

    let started = Instant::now();
    let stats = handle.shutdown_within(Duration::from_millis(200));
    assert!(started.elapsed() < Duration::from_secs(5), "shutdown took {:?}", started.elapsed());
    assert!(stats.undelivered_series >= 3, "{stats:?}");
    let logged = LOGGED.lock().unwrap();
    let warnings: Vec<_> = logged.iter().filter(|(_, m)| m.contains(danube_metrics::platform::UNSUPPORTED)).collect();
    assert_eq!(warnings.len(), 1, "said once, as a warning: {logged:?}");
    assert_eq!(warnings[0].0, Level::Warn);
}

#[test]
fn the_default_socket_needs_no_user_id() {
    std::env::remove_var(danube_metrics::SOCKET_ENV);
    if !std::path::Path::new("/run/danube-metrics-agent/ingest.sock").exists() {
        assert_eq!(danube_metrics::default_socket(), std::env::temp_dir().join("danube-metrics-agent/ingest.sock"));
    }
}
