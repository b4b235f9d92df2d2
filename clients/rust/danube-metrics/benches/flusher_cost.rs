//! The flusher at scale, as the Swift `FlusherCost`: 100,000 counters, 8 recording threads that have each
//! touched every series, 1% of the series changing per 200 ms flush, delivered to a release agent; prints the
//! flusher thread's CPU (from /proc/self/task).
//!
//!   swift build -c release --product danube-metrics-agent     (at the repository root)
//!   cargo bench --offline --bench flusher_cost [-- SERIES SECONDS]

use danube_metrics::{install, Config, Counter};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const THREADS: usize = 8;

fn main() {
    let numbers: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let series = numbers.first().copied().unwrap_or(100_000);
    let seconds = numbers.get(1).copied().unwrap_or(20) as u64;
    let agent_path = std::env::var("AGENT")
        .unwrap_or_else(|_| format!("{}/../../../.build/release/danube-metrics-agent", env!("CARGO_MANIFEST_DIR")));
    let directory = std::env::temp_dir().join(format!("flusher-cost-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("scratch directory");
    let socket = directory.join("ingest.sock");
    let port = 30_000 + std::process::id() % 10_000;
    let mut agent = Command::new(&agent_path)
        .args(["--ingest-socket", socket.to_str().unwrap(), "--listen", &format!("127.0.0.1:{port}")])
        .args(["--log-level", "error", "--log-format", "text", "--max-series-per-family", "200000"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{agent_path}: {e} (build it: swift build -c release --product danube-metrics-agent)")
        });
    while !socket.exists() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let config = Config { socket: Some(socket), process_metrics: false, ..Config::default() };
    let handle = install(config).expect("install");
    let labels: Vec<String> = (0..series).map(|i| i.to_string()).collect();
    let counters: Arc<Vec<Counter>> =
        Arc::new(labels.iter().map(|n| Counter::register("flusher_cost_total", &[("n", n)])).collect());

    // Every thread touches every series, so each thread's slab covers all of them.
    let warm: Vec<_> = (0..THREADS)
        .map(|_| {
            let counters = Arc::clone(&counters);
            std::thread::spawn(move || counters.iter().for_each(|c| c.increment(1)))
        })
        .collect();
    warm.into_iter().for_each(|t| t.join().unwrap());
    assert!(handle.wait_until_delivered(Duration::from_secs(60)), "the agent did not take the series");

    let stop = Arc::new(AtomicBool::new(false));
    let per_flush = series / 100;
    let running: Vec<_> = (0..THREADS)
        .map(|t| {
            let (counters, stop) = (Arc::clone(&counters), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    // This thread's share of the 1% changing this interval.
                    for i in (t..per_flush).step_by(THREADS) {
                        counters[(round * per_flush + i * 97) % series].increment(1);
                    }
                    round += 1;
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        })
        .collect();
    let before = flusher_cpu();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let used = flusher_cpu() - before;
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    running.into_iter().for_each(|t| t.join().unwrap());
    handle.shutdown();
    let _ = agent.kill();
    let _ = agent.wait();
    let _ = std::fs::remove_dir_all(&directory);
    println!(
        "{series} series x {THREADS} threads, 1% changing per 200 ms flush: flusher {:.2}% of a core ({:.1} ms per flush)",
        used / elapsed * 100.0,
        used / (elapsed / 0.2) * 1_000.0
    );
}

/// CPU seconds of the flusher thread (named "danube-metrics-flusher", cut to 15 bytes by the kernel).
fn flusher_cpu() -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("danube-metrics-") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let fields: Vec<&str> =
            stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
        if fields.len() > 12 {
            total += (fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0)) / ticks;
        }
    }
    total
}
