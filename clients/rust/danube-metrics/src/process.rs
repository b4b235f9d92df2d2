//! The emitting process's health as gauges labelled with the emitter's source, like the Swift emitter's
//! `ProcessReporter`: CPU in use, resident memory, descriptors and their limit, threads and start time. The
//! agent's own `process_*` metrics describe the agent; these describe the broker. Sampled on the flusher thread
//! every 5 s from /proc/self (a few small reads), never on the hot path. Where there is no /proc (the portable
//! platform layer's targets), nothing is sampled.

use crate::handles::Gauge;
use crate::platform;
use std::time::{Duration, Instant};

/// How often the process is sampled.
pub(crate) const INTERVAL: Duration = Duration::from_secs(5);

/// The families, in the catalog's "Emitter process" area (`danube-metrics-agent --print-catalog markdown`).
pub(crate) const FAMILIES: [&str; 6] = [
    "danube_process_cpu_usage_cores",
    "danube_process_resident_memory_bytes",
    "danube_process_open_fds",
    "danube_process_max_fds",
    "danube_process_threads",
    "danube_process_start_time_seconds",
];

/// One reading of /proc/self.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Snapshot {
    pub cpu_seconds: f64,
    pub resident_bytes: f64,
    pub threads: f64,
    pub open_fds: f64,
    pub max_fds: f64,
    pub start_time_seconds: f64,
}

/// The fields of /proc/self/stat after "(comm)" (which may hold spaces): index 0 is field 3, the state.
pub(crate) fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    Some(stat[stat.rfind(')')? + 1..].split_whitespace().collect())
}

pub(crate) fn boot_time_seconds() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()
}

pub(crate) fn clock_ticks() -> u64 {
    platform::clock_ticks()
}

pub(crate) fn snapshot() -> Option<Snapshot> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields = stat_fields(&stat)?;
    // Field numbers as in proc(5): utime 14, stime 15, num_threads 20, starttime 22, rss 24 (pages).
    let field = |number: usize| fields.get(number - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let ticks = clock_ticks() as f64;
    let page_size = platform::page_size() as f64;
    // Less the descriptor that lists the directory.
    let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count().saturating_sub(1));
    let max_fds = platform::open_file_limit().unwrap_or(1024) as f64;
    Some(Snapshot {
        cpu_seconds: (field(14) + field(15)) / ticks,
        resident_bytes: field(24) * page_size,
        threads: field(20),
        open_fds: open_fds as f64,
        max_fds,
        start_time_seconds: boot_time_seconds()? as f64 + field(22) / ticks,
    })
}

/// The gauges of one source and when to sample next.
pub(crate) struct ProcessReporter {
    gauges: [Gauge; 6],
    previous: Option<(Instant, f64)>,
    next: Instant,
}

impl ProcessReporter {
    pub(crate) fn new(source: &str) -> ProcessReporter {
        let labels = [("source", source)];
        ProcessReporter {
            gauges: FAMILIES.map(|name| Gauge::register(name, &labels)),
            previous: None,
            next: Instant::now(),
        }
    }

    pub(crate) fn sample_if_due(&mut self, now: Instant) {
        if now < self.next {
            return;
        }
        self.next = now + INTERVAL;
        let Some(process) = snapshot() else { return };
        let [cpu, resident, open_fds, max_fds, threads, start_time] = &self.gauges;
        if let Some((at, cpu_seconds)) = self.previous {
            let elapsed = now.duration_since(at).as_secs_f64();
            if elapsed > 0.0 {
                cpu.set((process.cpu_seconds - cpu_seconds).max(0.0) / elapsed);
            }
        }
        self.previous = Some((now, process.cpu_seconds));
        resident.set(process.resident_bytes);
        open_fds.set(process.open_fds);
        max_fds.set(process.max_fds);
        threads.set(process.threads);
        start_time.set(process.start_time_seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_describes_this_process() {
        let process = snapshot().expect("/proc/self is readable");
        assert!(process.resident_bytes > 100_000.0, "{process:?}");
        assert!(
            process.threads >= 1.0 && process.open_fds >= 3.0 && process.max_fds >= process.open_fds,
            "{process:?}"
        );
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!(process.start_time_seconds > now - 3600.0 && process.start_time_seconds <= now + 1.0, "{process:?}");
    }

    #[test]
    fn comm_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let fields = stat_fields("42 (a) b (c)) S 1 2 3").unwrap();
        assert_eq!(fields, ["S", "1", "2", "3"]);
    }
}
