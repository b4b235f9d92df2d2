//! Every target but Linux (and Linux with `--cfg danube_metrics_force_portable`): the same API, no socket to the
//! agent and no process figures. `Socket` has no values, so its methods cannot be reached.

use super::{Readiness, UNSUPPORTED};
use std::io;
use std::path::Path;

pub(crate) enum Socket {}

impl Socket {
    pub(crate) fn connect(_path: &Path) -> io::Result<Socket> {
        Err(io::Error::new(io::ErrorKind::Unsupported, UNSUPPORTED))
    }

    pub(crate) fn send(&self, _record: &[u8]) -> io::Result<usize> {
        match *self {}
    }

    pub(crate) fn recv(&self, _buffer: &mut [u8]) -> io::Result<usize> {
        match *self {}
    }

    pub(crate) fn wait(&self, _readiness: Readiness, _timeout_ms: i32) -> bool {
        match *self {}
    }
}

/// Not known here: the default socket path does not depend on it.
pub(crate) fn uid() -> Option<u32> {
    None
}

pub(crate) fn clock_ticks() -> u64 {
    100
}

pub(crate) fn page_size() -> u64 {
    4096
}

pub(crate) fn open_file_limit() -> Option<u64> {
    None
}
