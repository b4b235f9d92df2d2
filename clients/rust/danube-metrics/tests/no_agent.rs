//! An agent that never starts: recording never blocks, and shutdown keeps trying until its bound, then says
//! what was not delivered.

use danube_metrics::counter;
use std::time::{Duration, Instant};

#[test]
fn shutdown_without_an_agent_is_bounded_and_reports_what_was_lost() {
    let handle = danube_metrics::install(danube_metrics::Config {
        socket: Some(format!("/tmp/dma-rust-nowhere-{}/ingest.sock", std::process::id()).into()),
        flush_interval: Duration::from_millis(20),
        log: Some(|_, _| {}),
        process_metrics: false,
        ..Default::default()
    })
    .expect("install");
    let started = Instant::now();
    for _ in 0..100_000 {
        counter!("danube_topic_messages_in_total", "topic" => "/default/orders").increment(1);
    }
    assert!(started.elapsed() < Duration::from_secs(2), "recording blocked without an agent");
    let started = Instant::now();
    let stats = handle.shutdown_within(Duration::from_millis(600));
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(550) && took < Duration::from_secs(5), "shutdown took {took:?}");
    assert_eq!(stats.connects, 0);
    assert!(stats.connect_failures >= 2, "it kept trying: {stats:?}");
    assert_eq!(stats.undelivered_series, 1);
    assert!(stats.last_error.unwrap_or_default().contains("connect("));
}

#[test]
fn a_bad_configuration_is_refused_with_the_reason() {
    let bad = |config: danube_metrics::Config| match danube_metrics::install(config) {
        Err(danube_metrics::Error::InvalidConfig(why)) => why,
        other => panic!("accepted: {:?}", other.map(|_| ())),
    };
    assert!(bad(danube_metrics::Config { global_labels: vec![("bad-name".into(), "x".into())], ..Default::default() })
        .contains("bad-name"));
    assert!(bad(danube_metrics::Config { source_name: String::new(), ..Default::default() }).contains("source_name"));
    assert!(bad(danube_metrics::Config { socket: Some("/tmp/".repeat(30).into()), ..Default::default() })
        .contains("longer than 107"));
    assert!(bad(danube_metrics::Config { acknowledgement_timeout: Duration::from_secs(1), ..Default::default() })
        .contains("checkpoint"));
}
