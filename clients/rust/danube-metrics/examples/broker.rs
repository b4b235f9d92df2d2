//! Records the way Danube's broker and WAL writer do (v0.15: `broker_metrics.rs`, `wal/writer.rs`): `Metric`
//! constants, a describe and a bare registration per name at start, then `counter!(NAME, "topic" =>
//! topic.to_string())` calls from 4 threads. Compared with upstream, only the `use` line and the install call
//! differ. With `--report` it prints, as JSON, what it recorded as the samples `/metrics` must show, so a test
//! can compare them exactly (the chaos command does, while it SIGKILLs the agent).
//!
//! cargo run --example broker -- --socket /run/danube-metrics-agent/ingest.sock --rate 2000
//! (beside `./dev demo`: `--socket .danube-metrics/ingest.sock` from the repository's root, as the demo prints)
//!
//! SIGTERM or SIGINT stops the workers, then `shutdown_within(--drain-timeout)` delivers what they recorded: the
//! shape of the signal handling docs/DANUBE-INTEGRATION.md adds to danube-broker.

use danube_metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) struct Metric {
    pub name: &'static str,
    description: &'static str,
}

const TOPIC_MESSAGES_IN_TOTAL: Metric =
    Metric { name: "danube_topic_messages_in_total", description: "Total messages published to the topic (msg)." };
const TOPIC_BYTES_IN_TOTAL: Metric =
    Metric { name: "danube_topic_bytes_in_total", description: "Total bytes published to the topic (bytes)" };
const PRODUCER_SEND_TOTAL: Metric = Metric {
    name: "danube_producer_send_total",
    description: "Total producer send attempts at the broker API boundary",
};
const BROKER_RPC_TOTAL: Metric =
    Metric { name: "danube_broker_rpc_total", description: "Total RPC requests handled by the broker" };
const WAL_APPEND_TOTAL: Metric = Metric { name: "danube_wal_append_total", description: "Total WAL appends" };
const WAL_APPEND_BYTES_TOTAL: Metric =
    Metric { name: "danube_wal_append_bytes_total", description: "Total WAL bytes appended" };
const WAL_FLUSH_TOTAL: Metric = Metric { name: "danube_wal_flush_total", description: "Total WAL flushes" };
const WAL_FILE_ROTATE_TOTAL: Metric =
    Metric { name: "danube_wal_file_rotate_total", description: "WAL file rotations" };
const TOPIC_ACTIVE_PRODUCERS: Metric =
    Metric { name: "danube_topic_active_producers", description: "Total number of producers per topic" };
const BROKER_TOPICS_OWNED: Metric =
    Metric { name: "danube_broker_topics_owned", description: "Total number of topics served by broker" };
const PRODUCER_SEND_LATENCY_MS: Metric = Metric {
    name: "danube_producer_send_latency_ms",
    description: "End-to-end producer send latency in milliseconds (broker-side).",
};
const TOPIC_MESSAGE_SIZE_BYTES: Metric = Metric {
    name: "danube_topic_message_size_bytes",
    description: "Distribution of incoming message sizes per topic (bytes)",
};
const WAL_FLUSH_LATENCY_MS: Metric =
    Metric { name: "danube_wal_flush_latency_ms", description: "WAL flush latency in milliseconds" };

const COUNTERS: [Metric; 8] = [
    TOPIC_MESSAGES_IN_TOTAL,
    TOPIC_BYTES_IN_TOTAL,
    PRODUCER_SEND_TOTAL,
    BROKER_RPC_TOTAL,
    WAL_APPEND_TOTAL,
    WAL_APPEND_BYTES_TOTAL,
    WAL_FLUSH_TOTAL,
    WAL_FILE_ROTATE_TOTAL,
];
const GAUGES: [Metric; 2] = [TOPIC_ACTIVE_PRODUCERS, BROKER_TOPICS_OWNED];
const HISTOGRAMS: [Metric; 3] = [PRODUCER_SEND_LATENCY_MS, TOPIC_MESSAGE_SIZE_BYTES, WAL_FLUSH_LATENCY_MS];

const TOPICS: [&str; 4] = ["/default/orders", "/default/payments", "/analytics/clicks", "/analytics/views"];

/// As upstream's `init_metrics` does after installing the exporter: a describe and a bare registration per name.
fn init_metrics() {
    for metric in COUNTERS {
        describe_counter!(metric.name, metric.description);
        let _counter = counter!(metric.name);
    }
    for metric in GAUGES {
        describe_gauge!(metric.name, metric.description);
        let _gauge = gauge!(metric.name);
    }
    for metric in HISTOGRAMS {
        describe_histogram!(metric.name, metric.description);
        let _histogram = histogram!(metric.name);
    }
}

/// One published message, recorded like `producer_handler.rs`, `topic.rs` and `wal_storage.rs` do.
fn publish(topic_name: &str, size: u64, latency_ms: f64) {
    histogram!(TOPIC_MESSAGE_SIZE_BYTES.name, "topic" => topic_name.to_string()).record(size as f64);
    counter!(TOPIC_MESSAGES_IN_TOTAL.name, "topic" => topic_name.to_string()).increment(1);
    counter!(TOPIC_BYTES_IN_TOTAL.name, "topic" => topic_name.to_string()).increment(size);
    counter!(WAL_APPEND_TOTAL.name, "topic"=> topic_name.to_string()).increment(1);
    counter!(WAL_APPEND_BYTES_TOTAL.name, "topic"=> topic_name.to_string()).increment(size);
    histogram!(PRODUCER_SEND_LATENCY_MS.name, "topic"=> topic_name.to_string()).record(latency_ms);
    counter!(BROKER_RPC_TOTAL.name, "service"=>"producer", "method"=>"send_message", "result"=>"ok").increment(1);
    counter!(
        PRODUCER_SEND_TOTAL.name,
        "topic" => topic_name.to_string(),
        "result" => "ok",
        "error_code" => "OK",
    )
    .increment(1);
}

/// A WAL flush, as `wal/writer.rs::process_flush()` records it.
fn flushed(topic: Option<String>, elapsed_ms: f64) {
    if let Some(t) = topic {
        histogram!(WAL_FLUSH_LATENCY_MS.name, "topic"=> t.clone()).record(elapsed_ms);
        counter!(WAL_FLUSH_TOTAL.name, "topic"=> t.clone()).increment(1);
    } else {
        histogram!(WAL_FLUSH_LATENCY_MS.name).record(elapsed_ms);
        counter!(WAL_FLUSH_TOTAL.name).increment(1);
    }
}

struct Options {
    socket: Option<String>,
    source_name: String,
    broker_id: String,
    threads: usize,
    rate: u64,
    messages: u64,
    flush_interval_ms: u64,
    drain_timeout: f64,
    report: bool,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        socket: None,
        // Not the load generator's danube-broker: beside `./dev demo`, both show on the same /metrics.
        source_name: "danube-broker-example".into(),
        broker_id: "1".into(),
        threads: 4,
        rate: 2_000,
        messages: 0,
        flush_interval_ms: 200,
        drain_timeout: 10.0,
        report: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let number = |text: String| text.parse::<f64>().map_err(|_| format!("{flag}: \"{text}\" is not a number"));
        match flag.as_str() {
            "--socket" => o.socket = Some(value()?),
            "--source-name" => o.source_name = value()?,
            "--broker-id" => o.broker_id = value()?,
            "--threads" => o.threads = number(value()?)? as usize,
            "--rate" => o.rate = number(value()?)? as u64,
            "--messages" => o.messages = number(value()?)? as u64,
            "--flush-interval-ms" => o.flush_interval_ms = number(value()?)? as u64,
            "--drain-timeout" => o.drain_timeout = number(value()?)?,
            "--report" => o.report = true,
            "--help" => return Err("usage: broker [--socket PATH] [--source-name S] [--broker-id ID] [--threads N] [--rate MSG/S] [--messages N] [--flush-interval-ms MS] [--drain-timeout S] [--report]".into()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if o.threads == 0 || o.rate == 0 || o.flush_interval_ms == 0 {
        return Err("--threads, --rate and --flush-interval-ms must be positive".into());
    }
    Ok(o)
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: i32) {
    STOP.store(true, Ordering::SeqCst);
}

extern "C" {
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
}

fn main() {
    let options = parse().unwrap_or_else(|e| {
        eprintln!("broker: {e}");
        std::process::exit(2);
    });
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        signal(15, on_signal);
        signal(2, on_signal);
    }
    let handle = danube_metrics::install(danube_metrics::Config {
        source_name: options.source_name.clone(),
        socket: options.socket.clone().map(Into::into),
        global_labels: vec![("broker".into(), options.broker_id.clone())],
        flush_interval: Duration::from_millis(options.flush_interval_ms),
        ..Default::default()
    })
    .unwrap_or_else(|e| {
        eprintln!("broker: {e}");
        std::process::exit(2);
    });
    init_metrics();
    gauge!(BROKER_TOPICS_OWNED.name).increment(TOPICS.len() as f64);

    let published = Arc::new(AtomicU64::new(0));
    let per_thread_rate = (options.rate as f64 / options.threads as f64).max(1.0);
    let workers: Vec<_> = (0..options.threads)
        .map(|index| {
            let published = published.clone();
            let limit = options.messages;
            std::thread::Builder::new()
                .name(format!("worker-{index}"))
                .spawn(move || {
                    let topic = TOPICS[index % TOPICS.len()];
                    gauge!(TOPIC_ACTIVE_PRODUCERS.name, "topic" => topic.to_string()).increment(1);
                    let started = Instant::now();
                    let mut sent = 0u64;
                    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ index as u64;
                    while !STOP.load(Ordering::Relaxed) {
                        if limit > 0 && published.fetch_add(1, Ordering::Relaxed) >= limit {
                            break;
                        }
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        publish(topic, 64 + state % 20_000, (state % 5_000) as f64 / 100.0);
                        sent += 1;
                        if sent % 8 == 0 {
                            flushed(Some(topic.to_string()), (state % 900) as f64 / 10.0);
                        }
                        if sent % 500 == 0 {
                            counter!(WAL_FILE_ROTATE_TOTAL.name, "topic"=> topic.to_string(), "reason"=> "size")
                                .increment(1);
                        }
                        let due = started + Duration::from_secs_f64(sent as f64 / per_thread_rate);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait.min(Duration::from_millis(100)));
                        }
                    }
                    flushed(None, 0.5);
                })
                .expect("worker thread")
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().expect("worker"));
    let stats = handle.shutdown_within(Duration::from_secs_f64(options.drain_timeout));
    if options.report {
        println!("{}", report(&stats));
    }
    if stats.undelivered_series > 0 || stats.unacknowledged_frames > 0 {
        eprintln!("broker: {} series not delivered ({:?})", stats.undelivered_series, stats.last_error);
        std::process::exit(1);
    }
}

/// `{"recorded": {"sample": value, ...}, "delivery": {...}}`: every counter and histogram sample `/metrics`
/// must show for what this process recorded (histogram buckets cumulative, `le` last, as the agent renders).
fn report(stats: &danube_metrics::Stats) -> String {
    let samples: Vec<(String, f64)> =
        danube_metrics::recorded_totals().iter().flat_map(danube_metrics::RecordedTotal::samples).collect();
    let entries: Vec<String> =
        samples.iter().map(|(k, v)| format!("\"{}\": {v:?}", k.replace('\\', "\\\\").replace('"', "\\\""))).collect();
    format!(
        "{{\"recorded\": {{{}}}, \"delivery\": {{\"undelivered_series\": {}, \"unacknowledged_frames\": {}, \"connects\": {}, \"frames_sent\": {}, \"refused_series\": {}, \"last_error\": \"{}\"}}}}",
        entries.join(", "),
        stats.undelivered_series,
        stats.unacknowledged_frames,
        stats.connects,
        stats.frames_sent,
        stats.refused_series,
        stats.last_error.clone().unwrap_or_default().replace('"', "'")
    )
}
