//! The running emitter: `install` starts the flusher thread, `Handle` talks to it (flush, statistics, a bounded
//! shutdown). The thread owns the `Flusher`; the handle and the thread share only a small mutex-guarded control
//! block and a condition variable.

use crate::config::{validate, Config, Error, Sink};
use crate::flusher::Flusher;
use crate::process::ProcessReporter;
use crate::{log, Level, Stats, LOG};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Control {
    stopping: bool,
    stopped: bool,
    shutdown_timeout: Duration,
    flush_requested: u64,
    flush_completed: u64,
    stats: Stats,
}

pub(crate) struct Shared {
    control: Mutex<Control>,
    changed: Condvar,
    pub(crate) global_labels: Vec<(String, String)>,
    /// Where `Sink::Exporter` serves `/metrics`.
    exporter: Option<std::net::SocketAddr>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

static INSTALLED: AtomicBool = AtomicBool::new(false);
pub(crate) static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();

/// Starts delivering to the agent: checks `config`, starts the flusher thread and returns its handle. One
/// emitter per process. Never waits for the agent: if it is not there yet, recording goes on and is delivered
/// once it is.
pub fn install(config: Config) -> Result<Handle, Error> {
    let settings = validate(&config)?;
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Err(Error::AlreadyInstalled);
    }
    if let Some(log) = config.log {
        let _ = LOG.set(log);
    }
    crate::trace::configure_sampling(config.trace_sample_ratio, config.trace_slow_threshold);
    if let Sink::Exporter(address) = config.sink {
        // No flusher: the exporter reads the cells at each scrape, and there is nothing to deliver or drain.
        let bound = crate::exporter::start(address, settings.global_labels.clone()).map_err(|e| {
            INSTALLED.store(false, Ordering::SeqCst);
            Error::Exporter(address, e)
        })?;
        let shared = Arc::new(Shared {
            control: Mutex::new(Control { stopped: true, ..Control::default() }),
            changed: Condvar::new(),
            global_labels: settings.global_labels,
            exporter: Some(bound),
        });
        let _ = SHARED.set(shared.clone());
        log(Level::Info, &format!("serving /metrics on {bound} (Sink::Exporter)"));
        return Ok(Handle { shared });
    }
    let shared = Arc::new(Shared {
        control: Mutex::new(Control { shutdown_timeout: config.shutdown_timeout, ..Control::default() }),
        changed: Condvar::new(),
        global_labels: settings.global_labels.clone(),
        exporter: None,
    });
    let _ = SHARED.set(shared.clone());
    let interval = config.flush_interval;
    let process_source = settings.process_metrics.then(|| settings.source_name.clone());
    let thread_shared = shared.clone();
    std::thread::Builder::new()
        .name("danube-metrics-flusher".to_owned())
        .spawn(move || {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run(Flusher::new(settings), &thread_shared, interval, process_source)
            }));
            if ran.is_err() {
                // Never leave `flush` or `shutdown` waiting on a thread that is gone.
                log(Level::Error, "the metrics flusher thread failed; metrics are no longer delivered");
                let mut control = thread_shared.lock();
                control.stopped = true;
                thread_shared.changed.notify_all();
            }
        })
        .map_err(|e| {
            INSTALLED.store(false, Ordering::SeqCst);
            Error::Spawn(e)
        })?;
    Ok(Handle { shared })
}

fn run(mut flusher: Flusher, shared: &Shared, interval: Duration, process_source: Option<String>) {
    let mut process = process_source.map(|source| ProcessReporter::new(&source));
    loop {
        if let Some(process) = process.as_mut() {
            process.sample_if_due(Instant::now());
        }
        let (stopping, requested, timeout) = {
            let control = shared.lock();
            (control.stopping, control.flush_requested, control.shutdown_timeout)
        };
        if stopping {
            let stats = drain(&mut flusher, timeout);
            let mut control = shared.lock();
            control.stats = stats;
            control.stopped = true;
            control.flush_completed = control.flush_requested;
            shared.changed.notify_all();
            return;
        }
        flusher.flush(false);
        let mut control = shared.lock();
        control.stats = flusher.stats.clone();
        control.flush_completed = control.flush_completed.max(requested);
        shared.changed.notify_all();
        let deadline = Instant::now() + interval;
        while !control.stopping && control.flush_requested == requested {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            control = shared.changed.wait_timeout(control, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

/// The running emitter. Dropping it leaves the flusher running (like an installed `metrics` recorder); call
/// [`Handle::shutdown`] before the process exits so that the last updates are delivered. Clones share the one
/// emitter: a signal-handling task can hold one and shut down from there (see [`Handle::shutdown_within`]).
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// Where `Sink::Exporter` serves `/metrics` (the port bound, when 0 was asked for); `None` for the agent.
    pub fn exporter_address(&self) -> Option<std::net::SocketAddr> {
        self.shared.exporter
    }

    /// A copy of the delivery statistics as of the last flush.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    /// Runs one flush now and waits for it.
    pub fn flush(&self) {
        let mut control = self.shared.lock();
        control.flush_requested += 1;
        let ticket = control.flush_requested;
        self.shared.changed.notify_all();
        while control.flush_completed < ticket && !control.stopped {
            control = self.shared.changed.wait(control).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Flushes until the agent has acknowledged everything recorded so far, or `timeout` passes; true when
    /// nothing is left undelivered.
    pub fn wait_until_delivered(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.flush();
            let stats = self.stats();
            if stats.connected && stats.undelivered_series == 0 && stats.unacknowledged_frames == 0 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Final flush, waiting up to `Config::shutdown_timeout` for the agent's acknowledgement (reconnecting if
    /// it is restarting), then GOODBYE; the flusher thread ends. Returns the final statistics: a non-zero
    /// `undelivered_series` says what did not reach the agent.
    pub fn shutdown(&self) -> Stats {
        let timeout = self.shared.lock().shutdown_timeout;
        self.shutdown_within(timeout)
    }

    /// [`Handle::shutdown`] with its own bound: it returns within `timeout` plus one handshake timeout (a connect
    /// in progress), from any thread, any number of times (once stopped, at once, with the final statistics).
    /// It blocks: from an async signal handler, call it through `tokio::task::spawn_blocking` (or after the
    /// runtime's other tasks ended), as docs/DANUBE-INTEGRATION.md shows.
    pub fn shutdown_within(&self, timeout: Duration) -> Stats {
        let mut control = self.shared.lock();
        if control.stopped {
            return control.stats.clone();
        }
        control.shutdown_timeout = timeout;
        control.stopping = true;
        self.shared.changed.notify_all();
        while !control.stopped {
            control = self.shared.changed.wait(control).unwrap_or_else(|p| p.into_inner());
        }
        control.stats.clone()
    }
}

/// Keeps flushing until everything is acknowledged or `timeout` passes, reconnecting if the agent went away
/// (it may be restarting) or is not there yet; then GOODBYE. Returns the final statistics.
fn drain(flusher: &mut Flusher, timeout: Duration) -> Stats {
    let deadline = Instant::now() + timeout;
    loop {
        flusher.flush(true);
        if !flusher.has_undelivered() || Instant::now() >= deadline {
            break;
        }
        if flusher.stats.connected {
            flusher.await_acks(20);
        } else {
            std::thread::sleep(Duration::from_millis(50).min(deadline.saturating_duration_since(Instant::now())));
        }
    }
    flusher.close();
    if flusher.stats.undelivered_series > 0 {
        log(
            Level::Warn,
            &format!(
                "emitter stopped with {} series not delivered to the metrics agent",
                flusher.stats.undelivered_series
            ),
        );
    }
    flusher.stats.clone()
}
