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
//!
//! Linux delivers; other targets (macOS, Windows) compile the same API and record without delivering, saying so
//! once (`platform`).
#![warn(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod c_api;
mod catalog;
mod cells;
mod changes;
mod classic;
mod config;
mod connection;
mod emitter;
mod exemplars;
mod exporter;
mod flusher;
mod handles;
mod identity;
mod macros;
mod native;
pub mod platform;
mod process;
mod registry;
mod series_set;
mod stats;
mod totals;
pub mod trace;
pub mod wire;

pub use config::{Config, Error, Sink};
pub use emitter::{install, Handle};
pub use exemplars::Exemplar;
pub use totals::{recorded_totals, RecordedTotal};

pub use handles::{Counter, Gauge, Histogram, IntoF64};
pub use identity::{default_socket, FLUSH_INTERVAL_ENV, SOCKET_ENV};
#[doc(hidden)]
pub use macros::{__labels, LabelBuffer};
pub use native::NativeSpec;
#[doc(hidden)]
pub use registry::name_hash as __name_hash;
pub use registry::{
    buckets_for, DEFAULT_BUCKETS, DEFAULT_BYTES_BUCKETS, DEFAULT_MILLISECONDS_BUCKETS, DEFAULT_SECONDS_BUCKETS,
};
pub use stats::Stats;

use std::sync::OnceLock;

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

pub(crate) static LOG: OnceLock<LogFn> = OnceLock::new();

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

/// Slabs of per-thread cells created so far: bounded by the peak number of threads recording at once.
pub fn thread_slabs() -> u32 {
    cells::slab_count()
}
