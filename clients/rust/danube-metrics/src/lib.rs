//! Emitter for `danube-metrics-agent`, a drop-in for the `metrics` 0.24 calls Danube makes.
//!
//! Switching a program from `metrics` + `metrics-exporter-prometheus` is two edits: the `use` line
//! (`use danube_metrics::{counter, gauge, histogram, describe_counter, ...}`) and the install call:
//!
//! ```no_run
//! let handle = danube_metrics::install(danube_metrics::Config {
//!     source_name: "danube-broker".into(),
//!     global_labels: vec![("broker".into(), "7".into())],
//!     ..Default::default()
//! })
//! .expect("metrics emitter");
//! danube_metrics::counter!("danube_topic_messages_in_total", "topic" => "/default/orders").increment(1);
//! handle.shutdown(); // final flush, waits (bounded) for the agent's acknowledgement
//! ```
//!
//! Updates land in per-thread cumulative cells (no lock, no syscall, no allocation once a series exists); a
//! background thread sends compact deltas to the agent over a Unix SEQPACKET socket (`docs/PROTOCOL.md`), with
//! exactly-once delivery across agent restarts and crashes. While the agent is away, updates keep accumulating
//! in place and are delivered after it comes back. Series recorded before `install` are delivered too.
#![warn(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod c_api;
mod catalog;
mod cells;
mod connection;
mod flusher;
mod handles;
mod identity;
mod macros;
mod registry;
mod stats;
pub mod wire;

pub use handles::{Counter, Gauge, Histogram, IntoF64};
pub use identity::{default_socket, FLUSH_INTERVAL_ENV, SOCKET_ENV};
#[doc(hidden)]
pub use macros::{__labels, LabelBuffer};
pub use registry::{
    buckets_for, DEFAULT_BUCKETS, DEFAULT_BYTES_BUCKETS, DEFAULT_MILLISECONDS_BUCKETS, DEFAULT_SECONDS_BUCKETS,
};
pub use stats::Stats;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Severity of the emitter's own log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// Where the emitter's log lines go; the default writes warnings and errors to stderr.
pub type LogFn = fn(Level, &str);

fn stderr_log(level: Level, message: &str) {
    if level >= Level::Warn {
        eprintln!("danube-metrics: {}: {message}", if level == Level::Error { "error" } else { "warning" });
    }
}

static LOG: OnceLock<LogFn> = OnceLock::new();

pub(crate) fn log(level: Level, message: &str) {
    (LOG.get().copied().unwrap_or(stderr_log))(level, message);
}

/// Units of `describe_*!`, as `metrics::Unit`. Accepted for call-site compatibility; the catalog states each
/// family's unit, so the unit is not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    Count,
    Percent,
    Seconds,
    Milliseconds,
    Microseconds,
    Nanoseconds,
    Tebibytes,
    Gigibytes,
    Mebibytes,
    Kibibytes,
    Bytes,
    TerabitsPerSecond,
    GigabitsPerSecond,
    MegabitsPerSecond,
    KilobitsPerSecond,
    BitsPerSecond,
    CountPerSecond,
}

/// Sets the help text of every series named `name` (what `describe_*!` call).
pub fn describe(name: &str, description: &str) {
    registry::registry().lock().help.insert(name.to_owned(), description.to_owned());
}

/// How the emitter finds and talks to the agent. Every field has a default (`..Default::default()`).
#[derive(Clone, Debug)]
pub struct Config {
    /// Shown in the agent's logs ("danube-broker"). Default: the process name.
    pub source_name: String,
    /// The agent's ingest socket. Default (`None`): [`default_socket`], the same rules as the Swift emitter.
    pub socket: Option<PathBuf>,
    /// Labels added to every series (Danube's `PrometheusBuilder::add_global_label("broker", id)`); a label
    /// the call site sets itself wins.
    pub global_labels: Vec<(String, String)>,
    /// How often deltas are sent. Default: `$DANUBE_METRICS_FLUSH_INTERVAL_MS`, else 200 ms.
    pub flush_interval: Duration,
    /// Reconnect delay: starts at the first, doubles per failure, stops at the second (100 ms, 5 s).
    pub reconnect_backoff: (Duration, Duration),
    /// How long a connect waits for WELCOME (2 s).
    pub handshake_timeout: Duration,
    /// Frames in flight before sending waits for acknowledgements (256): a slow agent throttles sending, not
    /// recording.
    pub max_unacknowledged_frames: usize,
    /// Frames unacknowledged this long (10 s) mean the connection is dead: it is replaced. Must exceed the
    /// agent's checkpoint interval.
    pub acknowledgement_timeout: Duration,
    /// How long [`Handle::shutdown`] waits for the agent to acknowledge everything (2 s).
    pub shutdown_timeout: Duration,
    /// Where log lines go (default: warnings and errors to stderr). Set once per process.
    pub log: Option<LogFn>,
}

impl Default for Config {
    fn default() -> Config {
        let flush_millis =
            std::env::var(FLUSH_INTERVAL_ENV).ok().and_then(|v| v.parse::<u64>().ok()).filter(|v| *v > 0);
        Config {
            source_name: identity::process_name(),
            socket: None,
            global_labels: Vec::new(),
            flush_interval: Duration::from_millis(flush_millis.unwrap_or(200)),
            reconnect_backoff: (Duration::from_millis(100), Duration::from_secs(5)),
            handshake_timeout: Duration::from_secs(2),
            max_unacknowledged_frames: 256,
            acknowledgement_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(2),
            log: None,
        }
    }
}

/// A configuration checked by `install`.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub source_name: String,
    pub socket: PathBuf,
    pub global_labels: Vec<(String, String)>,
    pub reconnect_backoff: (Duration, Duration),
    pub handshake_timeout: Duration,
    pub max_unacknowledged_frames: usize,
    pub acknowledgement_timeout: Duration,
}

/// Why `install` failed.
#[derive(Debug)]
pub enum Error {
    /// An emitter was already installed in this process (one per process: its sequence numbers and instance
    /// id are what make delivery exact).
    AlreadyInstalled,
    /// A configuration value the agent would refuse, with what is wrong.
    InvalidConfig(String),
    /// The flusher thread could not be started.
    Spawn(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AlreadyInstalled => f.write_str("a danube-metrics emitter is already installed in this process"),
            Error::InvalidConfig(why) => write!(f, "invalid danube-metrics configuration: {why}"),
            Error::Spawn(e) => write!(f, "cannot start the danube-metrics flusher thread: {e}"),
        }
    }
}

impl std::error::Error for Error {}

fn validate(config: &Config) -> Result<Settings, Error> {
    let invalid = |why: String| Err(Error::InvalidConfig(why));
    let limits = wire::Limits::default();
    if config.source_name.is_empty() || config.source_name.len() > limits.max_source_name_bytes {
        return invalid(format!("source_name must be 1 to {} bytes", limits.max_source_name_bytes));
    }
    let socket = config.socket.clone().unwrap_or_else(default_socket);
    if socket.as_os_str().len() >= 108 {
        return invalid(format!("socket path {} is longer than 107 bytes", socket.display()));
    }
    for (i, (name, value)) in config.global_labels.iter().enumerate() {
        let valid = name
            .bytes()
            .enumerate()
            .all(|(j, b)| b == b'_' || b.is_ascii_alphabetic() || (j > 0 && b.is_ascii_digit()));
        if name.is_empty()
            || !valid
            || name.starts_with("__")
            || name == "le"
            || name.len() > limits.max_label_name_bytes
        {
            return invalid(format!("global label name \"{name}\" is not a valid label name"));
        }
        if value.len() > limits.max_label_value_bytes || config.global_labels[..i].iter().any(|(n, _)| n == name) {
            return invalid(format!("global label {name} is repeated or its value is too long"));
        }
    }
    if config.flush_interval.is_zero() || config.handshake_timeout.is_zero() || config.max_unacknowledged_frames == 0 {
        return invalid("flush_interval, handshake_timeout and max_unacknowledged_frames must be positive".to_owned());
    }
    if config.acknowledgement_timeout <= Duration::from_secs(5) {
        return invalid("acknowledgement_timeout must exceed the agent's longest checkpoint interval, 5 s".to_owned());
    }
    if config.reconnect_backoff.0.is_zero() || config.reconnect_backoff.0 > config.reconnect_backoff.1 {
        return invalid("reconnect_backoff must be (positive first, not below the first)".to_owned());
    }
    Ok(Settings {
        source_name: config.source_name.clone(),
        socket,
        global_labels: config.global_labels.clone(),
        reconnect_backoff: config.reconnect_backoff,
        handshake_timeout: config.handshake_timeout,
        max_unacknowledged_frames: config.max_unacknowledged_frames,
        acknowledgement_timeout: config.acknowledgement_timeout,
    })
}

#[derive(Default)]
struct Control {
    stopping: bool,
    stopped: bool,
    shutdown_timeout: Duration,
    flush_requested: u64,
    flush_completed: u64,
    stats: Stats,
}

struct Shared {
    control: Mutex<Control>,
    changed: Condvar,
    global_labels: Vec<(String, String)>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

static INSTALLED: AtomicBool = AtomicBool::new(false);
static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();

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
    let shared = Arc::new(Shared {
        control: Mutex::new(Control { shutdown_timeout: config.shutdown_timeout, ..Control::default() }),
        changed: Condvar::new(),
        global_labels: settings.global_labels.clone(),
    });
    let _ = SHARED.set(shared.clone());
    let interval = config.flush_interval;
    let thread_shared = shared.clone();
    std::thread::Builder::new()
        .name("danube-metrics-flusher".to_owned())
        .spawn(move || {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run(flusher::Flusher::new(settings), &thread_shared, interval)
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

fn run(mut flusher: flusher::Flusher, shared: &Shared, interval: Duration) {
    loop {
        let (stopping, requested, timeout) = {
            let control = shared.lock();
            (control.stopping, control.flush_requested, control.shutdown_timeout)
        };
        if stopping {
            let stats = flusher::drain(&mut flusher, timeout);
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
/// [`Handle::shutdown`] before the process exits so that the last updates are delivered.
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
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
    pub fn shutdown(self) -> Stats {
        let timeout = self.shared.lock().shutdown_timeout;
        self.shutdown_within(timeout)
    }

    /// [`Handle::shutdown`] with its own bound.
    pub fn shutdown_within(self, timeout: Duration) -> Stats {
        let mut control = self.shared.lock();
        control.shutdown_timeout = timeout;
        control.stopping = true;
        self.shared.changed.notify_all();
        while !control.stopped {
            control = self.shared.changed.wait(control).unwrap_or_else(|p| p.into_inner());
        }
        control.stats.clone()
    }
}

/// What this process has recorded into one counter or histogram since it started (every thread's cells,
/// live and exited), with labels as the agent shows them: the global labels added, sorted by name.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedTotal {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub kind: wire::Kind,
    /// A counter's value; a histogram's observation count.
    pub count: u64,
    /// Histograms: upper bounds and per-bucket (not cumulative) counts, one more than the bounds (+Inf).
    pub bounds: Vec<f64>,
    pub buckets: Vec<u64>,
    pub sum: f64,
}

impl RecordedTotal {
    /// The samples `/metrics` must show for this total, keyed as the agent renders them (labels sorted, `le`
    /// last, histogram buckets cumulative): `name{labels} value`, or `name_bucket{..,le=".."}`, `name_count`,
    /// `name_sum`. For end-to-end checks against a scrape.
    pub fn samples(&self) -> Vec<(String, f64)> {
        let key = |name: &str, labels: &[(String, String)]| {
            let text: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            if text.is_empty() {
                name.to_owned()
            } else {
                format!("{name}{{{}}}", text.join(","))
            }
        };
        if self.kind != wire::Kind::Histogram {
            return vec![(key(&self.name, &self.labels), self.count as f64)];
        }
        let mut samples = Vec::with_capacity(self.buckets.len() + 2);
        let mut cumulative = 0u64;
        for (i, count) in self.buckets.iter().enumerate() {
            cumulative = cumulative.wrapping_add(*count);
            let mut labels = self.labels.clone();
            labels.push(("le".into(), self.bounds.get(i).map_or("+Inf".into(), |b| format!("{b:?}"))));
            samples.push((key(&format!("{}_bucket", self.name), &labels), cumulative as f64));
        }
        samples.push((key(&format!("{}_count", self.name), &self.labels), self.count as f64));
        samples.push((key(&format!("{}_sum", self.name), &self.labels), self.sum));
        samples
    }
}

/// Totals of every counter and histogram registered so far (gauges have none), for end-to-end checks.
pub fn recorded_totals() -> Vec<RecordedTotal> {
    let globals = SHARED.get().map(|s| s.global_labels.clone()).unwrap_or_default();
    let series = registry::registry().lock().series.clone();
    series
        .iter()
        .filter(|s| s.kind != wire::Kind::Gauge)
        .map(|s| {
            let mut labels: Vec<(String, String)> =
                s.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            for (k, v) in &globals {
                if !labels.iter().any(|(name, _)| name == k) {
                    labels.push((k.clone(), v.clone()));
                }
            }
            labels.sort();
            let values = flusher::read(s);
            let histogram = s.kind == wire::Kind::Histogram;
            RecordedTotal {
                name: s.name.to_string(),
                labels,
                kind: s.kind,
                count: values.iter().fold(0u64, |a, b| a.wrapping_add(*b)),
                bounds: s.bounds.to_vec(),
                buckets: if histogram { values } else { Vec::new() },
                sum: if histogram { cells::sum_f64(s.first_cell + s.bounds.len() as u32 + 1) } else { 0.0 },
            }
        })
        .collect()
}

/// Slabs of per-thread cells created so far: bounded by the peak number of threads recording at once.
pub fn thread_slabs() -> u32 {
    cells::slab_count()
}
