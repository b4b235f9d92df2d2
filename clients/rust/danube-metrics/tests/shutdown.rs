//! Shutdown from a signal-handling task: a clone of the handle shuts the emitter down from another thread while
//! the main thread does too; both return within the bound, and later calls return at once. And an emitter that
//! never reaches its agent says so with one warning, at its first failure, naming the socket.

use danube_metrics::{counter, Level};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static LOGGED: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());

fn capture(level: Level, message: &str) {
    LOGGED.lock().unwrap().push((level, message.to_owned()));
}

#[test]
fn a_clone_shuts_down_from_another_thread_within_the_bound_and_the_first_failure_warns_once() {
    let socket = format!("/tmp/dma-rust-shutdown-{}/ingest.sock", std::process::id());
    let handle = danube_metrics::install(danube_metrics::Config {
        socket: Some(socket.clone().into()),
        flush_interval: Duration::from_millis(10),
        reconnect_backoff: (Duration::from_millis(5), Duration::from_millis(20)),
        log: Some(capture),
        process_metrics: false,
        ..Default::default()
    })
    .expect("install");
    counter!("danube_topic_messages_in_total", "topic" => "/default/orders").increment(3);
    std::thread::sleep(Duration::from_millis(200)); // several failed attempts

    let signal_task = handle.clone();
    let started = Instant::now();
    let from_signal = std::thread::spawn(move || signal_task.shutdown_within(Duration::from_millis(300)));
    let from_main = handle.shutdown_within(Duration::from_millis(300));
    let from_signal = from_signal.join().expect("signal thread");
    assert!(started.elapsed() < Duration::from_secs(5), "shutdown took {:?}", started.elapsed());
    assert_eq!(from_main.undelivered_series, 1);
    assert_eq!(from_signal.undelivered_series, 1);
    let again = Instant::now();
    assert_eq!(handle.shutdown().undelivered_series, 1);
    assert!(again.elapsed() < Duration::from_millis(100), "a stopped emitter answers at once");

    let logged = LOGGED.lock().unwrap();
    let warnings: Vec<_> =
        logged.iter().filter(|(level, message)| *level >= Level::Warn && message.contains("cannot reach")).collect();
    assert!(from_main.connect_failures >= 3, "{from_main:?}");
    assert_eq!(warnings.len(), 1, "one warning for many failures: {logged:?}");
    assert!(
        warnings[0].1.contains("cannot reach the metrics agent at") && warnings[0].1.contains(&socket),
        "{warnings:?}"
    );
}
