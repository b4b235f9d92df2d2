//! The emitter's configuration: defaults shared with the Swift emitter, and the checks `install` makes so a
//! configuration the agent would refuse fails at once with the reason.

use crate::{default_socket, identity, wire, LogFn, FLUSH_INTERVAL_ENV};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where recorded metrics go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sink {
    /// Delivered to danube-metrics-agent over its ingest socket (the default).
    #[default]
    Agent,
    /// Served by this process on `/metrics` at this address (Prometheus text format), as
    /// metrics-exporter-prometheus did: for deployments that scrape the process itself. Nothing is sent to an
    /// agent, and the socket settings are not used.
    Exporter(SocketAddr),
}

/// How the emitter finds and talks to the agent. Every field has a default (`..Default::default()`).
#[derive(Clone, Debug)]
pub struct Config {
    /// The agent (default) or an in-process `/metrics` endpoint ([`Sink`]).
    pub sink: Sink,
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
    /// Report this process's CPU, memory, descriptors and threads as `danube_process_*{source}` every 5 s
    /// (default: yes), so dashboards show the broker's health beside the agent's.
    pub process_metrics: bool,
    /// Share of traces recorded, decided at each root span on its trace id (0 to 1; default 0.01).
    pub trace_sample_ratio: f64,
    /// Keep a span of an unsampled trace anyway when it took at least this long (default: `None`, never).
    /// Timing every span costs two clock reads per span.
    pub trace_slow_threshold: Option<Duration>,
}

impl Default for Config {
    fn default() -> Config {
        let flush_millis =
            std::env::var(FLUSH_INTERVAL_ENV).ok().and_then(|v| v.parse::<u64>().ok()).filter(|v| *v > 0);
        Config {
            sink: Sink::Agent,
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
            process_metrics: true,
            trace_sample_ratio: 0.01,
            trace_slow_threshold: None,
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
    pub process_metrics: bool,
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
    /// `Sink::Exporter`'s address could not be bound (in use, not permitted).
    Exporter(SocketAddr, std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AlreadyInstalled => f.write_str("a danube-metrics emitter is already installed in this process"),
            Error::InvalidConfig(why) => write!(f, "invalid danube-metrics configuration: {why}"),
            Error::Spawn(e) => write!(f, "cannot start the danube-metrics flusher thread: {e}"),
            Error::Exporter(address, e) => write!(f, "cannot serve /metrics on {address}: {e}"),
        }
    }
}

impl std::error::Error for Error {}

pub(crate) fn validate(config: &Config) -> Result<Settings, Error> {
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
        if !crate::registry::valid_name(name, false)
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
    if !(0.0..=1.0).contains(&config.trace_sample_ratio) {
        return invalid("trace_sample_ratio must be between 0 and 1".to_owned());
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
        process_metrics: config.process_metrics,
    })
}
