//! Hot-path cost of the Rust emitter, in one run so the ratios hold on a noisy shared machine:
//! ns per update through a kept handle and through the macro (key lookup), 1 and 2 threads, the same and
//! distinct series, beside `AtomicU64::fetch_add` on one shared word (what `metrics`' atomic handles do).
//! Each case is measured twice: as a call-site cost (every update through a non-inlined call, as a call from
//! another crate or through a trait object pays) and as tight-loop throughput (the update inlined in the loop).
//!
//!   cargo bench --offline --bench hot_path            (prints a Markdown table; median of 5 runs per case)

use danube_metrics::{counter, histogram, Counter, Histogram};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::Instant;

const ITERATIONS: u64 = 20_000_000;
const RUNS: usize = 5;

static SHARED_WORD: AtomicU64 = AtomicU64::new(0);
const TOPICS: [&str; 2] = ["/default/orders", "/default/payments"];

/// One update of the case under test, for thread `t`.
type Update = fn(usize);

static HANDLES: std::sync::OnceLock<[Counter; 2]> = std::sync::OnceLock::new();
static HISTOGRAMS: std::sync::OnceLock<[Histogram; 2]> = std::sync::OnceLock::new();
/// Classic buckets only: a `_seconds` name gets 20 default buckets and no native ones.
static CLASSIC: std::sync::OnceLock<[Histogram; 2]> = std::sync::OnceLock::new();

#[inline(never)]
fn handle_increment(t: usize) {
    // The handles are resolved once; `get` is one load of an initialised OnceLock.
    HANDLES.get().unwrap()[t].increment(1);
}

#[inline(never)]
fn histogram_handle_record(t: usize) {
    HISTOGRAMS.get().unwrap()[t].record(3.7);
}

#[inline(never)]
fn classic_handle_record(t: usize) {
    CLASSIC.get().unwrap()[t].record(0.0037);
}

#[inline(never)]
fn macro_increment(t: usize) {
    counter!("bench_macro_total", "topic" => TOPICS[t]).increment(1);
}

#[inline(never)]
fn macro_to_string(t: usize) {
    counter!("bench_macro_string_total", "topic" => TOPICS[t].to_string()).increment(1);
}

/// A name known only at run time (not a literal): its hash is computed at every call.
static RUNTIME_NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();

#[inline(never)]
fn macro_runtime_name(t: usize) {
    counter!(RUNTIME_NAME.get().unwrap().as_str(), "topic" => TOPICS[t]).increment(1);
}

#[inline(never)]
fn shared_fetch_add(_: usize) {
    SHARED_WORD.fetch_add(1, Ordering::Relaxed);
}

/// Runs `work(series)` on `threads` threads started together (each on series `t` when `distinct`, else 0);
/// `work` warms up, then returns its ns per update. The mean over the threads.
fn per_thread(threads: usize, distinct: bool, work: impl Fn(usize, &Barrier) -> f64 + Sync) -> f64 {
    let barrier = Barrier::new(threads);
    let total: f64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, work) = (&barrier, &work);
                scope.spawn(move || work(if distinct { t } else { 0 }, barrier))
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    total / threads as f64
}

fn ns_per_update(start: Instant) -> f64 {
    start.elapsed().as_nanos() as f64 / ITERATIONS as f64
}

/// Call-site cost: every update through a non-inlined function pointer.
fn call_site(update: Update, threads: usize, distinct: bool) -> f64 {
    let update = black_box(update);
    per_thread(threads, distinct, |series, barrier| {
        update(series); // warm: registration, slab, chunk
        barrier.wait();
        let start = Instant::now();
        for _ in 0..ITERATIONS {
            update(black_box(series));
        }
        ns_per_update(start)
    })
}

/// Tight-loop throughput: the update inlined into the loop (a kept handle, or the shared word).
fn tight_loop(kind: &str, threads: usize, distinct: bool) -> f64 {
    per_thread(threads, distinct, |series, barrier| {
        let handle = counter!("bench_tight_total", "topic" => TOPICS[series]);
        let latency = histogram!("bench_tight_ms", "topic" => TOPICS[series]);
        let classic = histogram!("bench_tight_seconds", "topic" => TOPICS[series]);
        handle.increment(1);
        latency.record(1.0);
        classic.record(0.001);
        barrier.wait();
        let start = Instant::now();
        match kind {
            "handle" => (0..ITERATIONS).for_each(|_| handle.increment(black_box(1))),
            "histogram" => (0..ITERATIONS).for_each(|i| latency.record(black_box((i & 63) as f64))),
            "classic" => (0..ITERATIONS).for_each(|i| classic.record(black_box((i & 63) as f64 * 1e-3))),
            _ => (0..ITERATIONS).for_each(|_| {
                SHARED_WORD.fetch_add(black_box(1), Ordering::Relaxed);
            }),
        }
        ns_per_update(start)
    })
}

fn median(mut f: impl FnMut() -> f64) -> f64 {
    let mut samples: Vec<f64> = (0..RUNS).map(|_| f()).collect();
    samples.sort_by(f64::total_cmp);
    samples[RUNS / 2]
}

fn main() {
    let _ = RUNTIME_NAME.set(format!("bench_macro_{}_total", "runtime"));
    let _ = HANDLES.set(TOPICS.map(|t| counter!("bench_handle_total", "topic" => t)));
    let _ = HISTOGRAMS.set(TOPICS.map(|t| histogram!("bench_latency_ms", "topic" => t)));
    let _ = CLASSIC.set(TOPICS.map(|t| histogram!("bench_latency_seconds", "topic" => t)));
    let cases: [(&str, Update, &str); 7] = [
        ("`Counter::increment` on a kept handle", handle_increment, "handle"),
        ("`Histogram::record` on a kept handle (20 classic buckets only)", classic_handle_record, "classic"),
        (
            "`Histogram::record` on a kept handle (20 classic + 184 native buckets)",
            histogram_handle_record,
            "histogram",
        ),
        ("`counter!(NAME, \"topic\" => TOPIC).increment(1)` (macro: key lookup)", macro_increment, ""),
        (
            "`counter!` with `\"topic\" => topic.to_string()` (Danube's form, with the call site's allocation)",
            macro_to_string,
            "",
        ),
        ("`counter!(name, \"topic\" => TOPIC)` with a name known at run time", macro_runtime_name, ""),
        ("`AtomicU64::fetch_add` on one shared word (`metrics`' atomic handles)", shared_fetch_add, "shared"),
    ];
    println!("| case | threads | series | call-site ns/update | tight-loop ns/update |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, update, tight) in cases {
        let layouts: &[(usize, bool)] =
            if tight == "shared" { &[(1, false), (2, false)] } else { &[(1, false), (2, false), (2, true)] };
        for &(threads, distinct) in layouts {
            let call = median(|| call_site(update, threads, distinct));
            let tight_ns = if tight.is_empty() {
                "-".to_owned()
            } else {
                format!("{:.2}", median(|| tight_loop(tight, threads, distinct)))
            };
            let series = if threads == 1 {
                "one"
            } else if distinct {
                "distinct"
            } else {
                "same"
            };
            println!("| {name} | {threads} | {series} | {call:.2} | {tight_ns} |");
        }
    }
    println!(
        "\n{} iterations per thread and run, median of {RUNS} runs; {} thread slabs used.",
        ITERATIONS,
        danube_metrics::thread_slabs()
    );
}
