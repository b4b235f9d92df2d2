//! The client end of the agent's ingest socket: `AF_UNIX`, `SOCK_SEQPACKET`, used only by the flusher thread.
//! std has no SEQPACKET sockets, so a few libc calls are declared here; each goes through `cvt`, which turns -1
//! into the errno as an `io::Error`.

use crate::wire::{self, Frame, Hello, Limits, Welcome};
use std::ffi::{c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const AF_UNIX: c_int = 1;
const SOCK_SEQPACKET: c_int = 5;
const SOCK_CLOEXEC: c_int = 0o2_000_000;
const MSG_DONTWAIT: c_int = 0x40;
const MSG_NOSIGNAL: c_int = 0x4000;
const POLLIN: i16 = 0x1;
const POLLOUT: i16 = 0x4;

#[repr(C)]
struct SockaddrUn {
    sun_family: u16,
    sun_path: [u8; 108],
}

#[repr(C)]
struct PollFd {
    fd: c_int,
    events: i16,
    revents: i16,
}

extern "C" {
    fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int;
    fn connect(fd: c_int, address: *const SockaddrUn, length: u32) -> c_int;
    fn send(fd: c_int, buffer: *const c_void, length: usize, flags: c_int) -> isize;
    fn recv(fd: c_int, buffer: *mut c_void, length: usize, flags: c_int) -> isize;
    fn poll(fds: *mut PollFd, count: u64, timeout: c_int) -> c_int;
}

/// -1 (or any negative result) becomes the current errno.
fn cvt<T: Default + PartialOrd>(result: T) -> io::Result<T> {
    if result < T::default() {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

pub(crate) enum SendResult {
    Sent,
    WouldBlock,
    Failed(String),
}

pub(crate) struct Connection {
    fd: OwnedFd,
    buffer: Vec<u8>,
    limits: Limits,
    pub welcome: Welcome,
}

/// Why a connection the socket's mode or group refuses will not succeed by retrying; the flusher logs such a
/// failure as a warning (an agent that is not there yet is only a debug line).
pub const NOT_ADMITTED: &str = "this process may not write to the agent's socket (the installed agent admits the \
    group danube-metrics: give this user that group, then restart this process)";

impl Connection {
    /// Connects, sends HELLO and waits up to `timeout_ms` for WELCOME (or REFUSE).
    pub fn open(path: &Path, hello: &Hello, timeout_ms: i32) -> Result<Connection, String> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw =
            cvt(unsafe { socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0) }).map_err(|e| format!("socket(): {e}"))?;
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut address = SockaddrUn { sun_family: AF_UNIX as u16, sun_path: [0; 108] };
        let bytes = path.as_os_str().as_bytes();
        if bytes.len() >= address.sun_path.len() {
            return Err(format!("socket path {} is longer than 107 bytes", path.display()));
        }
        address.sun_path[..bytes.len()].copy_from_slice(bytes);
        // SAFETY: `address` is a valid, NUL-terminated sockaddr_un that outlives the call.
        cvt(unsafe { connect(fd.as_raw_fd(), &address, std::mem::size_of::<SockaddrUn>() as u32) }).map_err(|e| {
            if e.kind() == io::ErrorKind::PermissionDenied {
                format!("connect({}): {e}: {NOT_ADMITTED}", path.display())
            } else {
                format!("connect({}): {e}", path.display())
            }
        })?;
        // Larger than any frame: the agent may pack several small frames into one record.
        let limits = Limits { max_frame_bytes: 1 << 18, ..Limits::default() };
        let mut connection = Connection {
            fd,
            buffer: vec![0; limits.max_frame_bytes + 1],
            limits,
            welcome: Welcome { version: 0, max_frame_bytes: 0, max_series: 0, last_applied: 0 },
        };
        if !matches!(
            connection.send_blocking(&wire::encode(&Frame::Hello(hello.clone())), timeout_ms),
            SendResult::Sent
        ) {
            return Err(format!("could not send HELLO to {}", path.display()));
        }
        let frames = connection.receive(timeout_ms)?;
        match frames.into_iter().next() {
            Some(Frame::Welcome(welcome)) => connection.welcome = welcome,
            Some(Frame::Refuse { code, message }) => {
                return Err(format!("agent refused the connection: {code}: {message}"))
            }
            Some(other) => return Err(format!("agent answered HELLO with {other:?}")),
            None => return Err(format!("no WELCOME from {} within {timeout_ms} ms", path.display())),
        }
        Ok(connection)
    }

    /// Sends one frame without blocking; `WouldBlock` when the socket buffer is full (the agent is slow).
    pub fn send(&self, frame: &[u8]) -> SendResult {
        // SAFETY: the buffer is valid for `frame.len()` bytes for the duration of the call.
        let n = unsafe { send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), MSG_DONTWAIT | MSG_NOSIGNAL) };
        match cvt(n) {
            Ok(n) if n as usize == frame.len() => SendResult::Sent,
            Ok(n) => SendResult::Failed(format!("short send of {n} of {} bytes", frame.len())),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => SendResult::WouldBlock,
            Err(e) => SendResult::Failed(format!("send(): {e}")),
        }
    }

    /// Sends, waiting for room up to `timeout_ms` (HELLO and GOODBYE).
    pub fn send_blocking(&self, frame: &[u8], timeout_ms: i32) -> SendResult {
        match self.send(frame) {
            SendResult::WouldBlock if self.wait(POLLOUT, timeout_ms) => self.send(frame),
            other => other,
        }
    }

    /// The frames of one record, waiting up to `timeout_ms` (0: only what is there already); empty when none
    /// came. An error when the agent closed the connection or sent something undecodable.
    pub fn receive(&mut self, timeout_ms: i32) -> Result<Vec<Frame>, String> {
        if timeout_ms > 0 && !self.wait(POLLIN, timeout_ms) {
            return Ok(Vec::new());
        }
        // SAFETY: the buffer is valid and writable for its length.
        let n = unsafe { recv(self.fd.as_raw_fd(), self.buffer.as_mut_ptr().cast(), self.buffer.len(), MSG_DONTWAIT) };
        match cvt(n) {
            Ok(0) => Err("the agent closed the connection".to_owned()),
            Ok(n) => wire::decode_record(&self.buffer[..n as usize], &self.limits)
                .map_err(|e| format!("undecodable frame from the agent: {e}")),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(Vec::new()),
            Err(e) => Err(format!("recv(): {e}")),
        }
    }

    fn wait(&self, events: i16, timeout_ms: i32) -> bool {
        let mut fd = PollFd { fd: self.fd.as_raw_fd(), events, revents: 0 };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { poll(&mut fd, 1, timeout_ms) > 0 }
    }
}
