//! What differs between the targets Danube ships. Linux has everything: the agent's ingest socket (`AF_UNIX`,
//! `SOCK_SEQPACKET`), the user id that picks the default socket path, and the process figures (`/proc`,
//! `sysconf`, `getrlimit`). Every other target (macOS has no SEQPACKET Unix sockets; Windows has no Unix
//! sockets for std at all), and Linux built with `--cfg danube_metrics_force_portable`, compiles the same API
//! from `portable`: recording works as usual (the cells are plain atomics), nothing is delivered to an agent
//! (connecting fails with `UNSUPPORTED`, which the flusher logs once as a warning), and no process figures are
//! sampled. `Sink::Exporter` (an in-process `/metrics`) works on every target: it needs only std's TCP.

#[cfg(all(target_os = "linux", not(danube_metrics_force_portable)))]
mod linux;
#[cfg(all(target_os = "linux", not(danube_metrics_force_portable)))]
pub(crate) use linux::{clock_ticks, open_file_limit, page_size, uid, Socket};

#[cfg(not(all(target_os = "linux", not(danube_metrics_force_portable))))]
mod portable;
#[cfg(not(all(target_os = "linux", not(danube_metrics_force_portable))))]
pub(crate) use portable::{clock_ticks, open_file_limit, page_size, uid, Socket};

/// Whether this build can reach an agent at all (false: the portable layer).
pub const DELIVERS: bool = cfg!(all(target_os = "linux", not(danube_metrics_force_portable)));

/// Why a portable build delivers nothing: the flusher's first (and only) warning.
pub const UNSUPPORTED: &str = "this platform has no SEQPACKET Unix sockets (the agent's ingest socket is Linux-only): \
    metrics are recorded here but not delivered";

/// What a readiness wait is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Readiness {
    Readable,
    Writable,
}
