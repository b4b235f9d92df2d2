//! Danube's call sites, unchanged, compiled against danube-metrics renamed to `metrics`. Only `init_metrics`
//! differs from upstream's `broker_metrics.rs`: the install call (see docs/DANUBE-INTEGRATION.md).

use metrics::{counter, gauge, histogram};

pub(crate) struct Metric {
    pub name: &'static str,
    description: &'static str,
}

pub(crate) const TOPIC_MESSAGES_IN_TOTAL: Metric =
    Metric { name: "danube_topic_messages_in_total", description: "Total messages published to the topic (msg)." };
pub(crate) const BROKER_TOPICS_OWNED: Metric =
    Metric { name: "danube_broker_topics_owned", description: "Total number of topics served by broker" };
pub(crate) const PRODUCER_SEND_LATENCY_MS: Metric = Metric {
    name: "danube_producer_send_latency_ms",
    description: "End-to-end producer send latency in milliseconds (broker-side).",
};

pub(crate) fn init_metrics(socket: Option<std::path::PathBuf>, broker_id: u64) -> Option<metrics::Handle> {
    let handle = match metrics::install(metrics::Config {
        source_name: "danube-broker".into(),
        socket,
        global_labels: vec![("broker".into(), broker_id.to_string())],
        ..Default::default()
    }) {
        Ok(handle) => Some(handle),
        Err(e) => {
            eprintln!("failed to start the metrics emitter: {e}; broker continues without metrics");
            None
        }
    };
    metrics::describe_counter!(TOPIC_MESSAGES_IN_TOTAL.name, TOPIC_MESSAGES_IN_TOTAL.description);
    let _counter = metrics::counter!(TOPIC_MESSAGES_IN_TOTAL.name);
    metrics::describe_gauge!(BROKER_TOPICS_OWNED.name, BROKER_TOPICS_OWNED.description);
    let _gauge = metrics::gauge!(BROKER_TOPICS_OWNED.name);
    metrics::describe_histogram!(PRODUCER_SEND_LATENCY_MS.name, PRODUCER_SEND_LATENCY_MS.description);
    let _histogram = metrics::histogram!(PRODUCER_SEND_LATENCY_MS.name);
    handle
}

fn main() {
    let socket = std::env::args().nth(1).map(Into::into);
    let handle = init_metrics(socket, 7);
    let topic_name = String::from("/default/orders");
    gauge!(BROKER_TOPICS_OWNED.name).increment(1);
    for i in 0..1_000u32 {
        counter!(TOPIC_MESSAGES_IN_TOTAL.name, "topic" => topic_name.to_string()).increment(1);
        histogram!(PRODUCER_SEND_LATENCY_MS.name, "topic"=> topic_name.clone()).record(f64::from(i % 50));
    }
    if let Some(handle) = handle {
        let stats = handle.shutdown();
        std::process::exit(i32::from(stats.undelivered_series > 0));
    }
}
