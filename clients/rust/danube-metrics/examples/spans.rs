//! Records TRACES sampled publish traces (publish → wal.append → dispatch → ack: four spans each) and waits until
//! the agent has them: the load for measuring the agent's cost per span exported (docs/BENCHMARKS.md).
//!
//!   cargo run --release --example spans -- SOCKET TRACES

use danube_metrics::trace::{span_attributes as key, spans, Span};
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let socket = args.next().expect("socket path");
    let traces: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let handle = danube_metrics::install(danube_metrics::Config {
        source_name: "span-load".into(),
        socket: Some(socket.into()),
        flush_interval: Duration::from_millis(20),
        trace_sample_ratio: 1.0,
        process_metrics: false,
        ..Default::default()
    })
    .expect("install");
    while !handle.stats().connected {
        handle.flush();
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    for n in 0..traces {
        let mut publish = Span::start(spans::PUBLISH, spans::PUBLISH_KIND);
        publish.set_attribute(key::MESSAGING_SYSTEM, "danube");
        publish.set_attribute(key::MESSAGING_DESTINATION_NAME, "/default/orders");
        publish.set_attribute(key::DANUBE_PRODUCER_ID, n);
        {
            let mut wal = Span::start(spans::WAL_APPEND, spans::WAL_APPEND_KIND);
            wal.add_event("wal.fsync", &[]);
        }
        let dispatch = Span::start(spans::DISPATCH, spans::DISPATCH_KIND);
        drop(Span::start(spans::ACK, spans::ACK_KIND));
        drop(dispatch);
        if n % 100 == 99 {
            // 400 spans per flush, about 40,000 a second: rings hold 512 and the agent's queue 20,000, so a
            // burst much faster than the export would be dropped (and counted) rather than measured.
            handle.flush();
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let expected = traces * 4;
    while handle.stats().spans_sent + handle.stats().spans_dropped + handle.stats().spans_dropped_ring_full < expected {
        handle.flush();
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = handle.stats();
    println!(
        "{} spans sent, {} dropped (ring full {}), in {:.2} s",
        stats.spans_sent,
        stats.spans_dropped,
        stats.spans_dropped_ring_full,
        started.elapsed().as_secs_f64()
    );
    handle.shutdown();
}
