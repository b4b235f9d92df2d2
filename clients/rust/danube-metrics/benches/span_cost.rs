//! What a span costs at the call site, beside a counter increment, in one run (ratios hold on a noisy machine):
//! a span of an unsampled trace (the common case at a 1% ratio), the same with a slow threshold set (it is timed),
//! and a sampled span (recorded into its thread's ring; the ring is emptied every 256 spans, as the flusher
//! would, and that is counted in). Each through a non-inlined call, median of 5 runs.
//!
//!   cargo bench --offline --bench span_cost

use danube_metrics::trace::{self, Span, SpanKind};
use danube_metrics::{counter, Counter};
use std::hint::black_box;
use std::time::{Duration, Instant};

const ITERATIONS: u64 = 5_000_000;

static COUNTER: std::sync::OnceLock<Counter> = std::sync::OnceLock::new();

#[inline(never)]
fn increment() {
    COUNTER.get().unwrap().increment(1);
}

#[inline(never)]
fn span() {
    black_box(Span::start("publish", SpanKind::Producer));
}

#[inline(never)]
fn span_with_attribute() {
    let mut span = Span::start("publish", SpanKind::Producer);
    span.set_attribute("messaging.destination.name", "/default/orders");
    black_box(span);
}

fn measure(work: fn(), drain: bool) -> f64 {
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            for i in 0..ITERATIONS {
                work();
                if drain && i % 256 == 255 {
                    black_box(trace::take_finished_spans());
                }
            }
            start.elapsed().as_nanos() as f64 / ITERATIONS as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[2]
}

fn main() {
    let _ = COUNTER.set(counter!("bench_span_reference_total"));
    if std::env::var_os("UNSAMPLED_ONLY").is_some() {
        // For a profiler: the unsampled span alone.
        trace::configure_sampling(0.0, None);
        println!("{:.2}", (0..10).map(|_| measure(span, false)).fold(f64::MAX, f64::min));
        return;
    }
    println!("| case | ns per call |");
    println!("| --- | --- |");
    println!("| `Counter::increment` on a kept handle (reference) | {:.2} |", measure(increment, false));
    trace::configure_sampling(0.0, None);
    println!("| span start + end, trace not sampled | {:.2} |", measure(span, false));
    println!("| the same with an attribute set (ignored: not recorded) | {:.2} |", measure(span_with_attribute, false));
    trace::configure_sampling(0.0, Some(Duration::from_millis(100)));
    println!("| span start + end, not sampled, slow threshold set (timed) | {:.2} |", measure(span, false));
    trace::configure_sampling(1.0, None);
    println!("| span start + end, sampled (recorded, drained every 256) | {:.2} |", measure(span, true));
    println!("| the same with one string attribute | {:.2} |", measure(span_with_attribute, true));
}
