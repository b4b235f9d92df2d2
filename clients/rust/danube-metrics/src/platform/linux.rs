//! Linux: the ingest socket through a few libc calls (std has no SEQPACKET sockets), each through `cvt`, which
//! turns a negative result into the errno as an `io::Error`; and the process figures' system calls.

use super::Readiness;
use std::ffi::{c_int, c_long, c_ulong, c_void};
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
const SC_CLK_TCK: c_int = 2;
const SC_PAGESIZE: c_int = 30;
const RLIMIT_NOFILE: c_int = 7;

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

/// `struct rlimit`: two `rlim_t`, which is `unsigned long` on every Linux target (32 bits on 32-bit ones).
#[repr(C)]
struct Rlimit {
    current: c_ulong,
    maximum: c_ulong,
}

extern "C" {
    fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int;
    fn connect(fd: c_int, address: *const SockaddrUn, length: u32) -> c_int;
    fn send(fd: c_int, buffer: *const c_void, length: usize, flags: c_int) -> isize;
    fn recv(fd: c_int, buffer: *mut c_void, length: usize, flags: c_int) -> isize;
    /// `nfds_t` is `unsigned long`.
    fn poll(fds: *mut PollFd, count: c_ulong, timeout: c_int) -> c_int;
    fn getuid() -> u32;
    fn sysconf(name: c_int) -> c_long;
    fn getrlimit(resource: c_int, limits: *mut Rlimit) -> c_int;
}

/// -1 (or any negative result) becomes the current errno.
fn cvt<T: Default + PartialOrd>(result: T) -> io::Result<T> {
    if result < T::default() {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

/// A connected `SOCK_SEQPACKET` socket: one `send` is one record, one `recv` reads one.
pub(crate) struct Socket {
    fd: OwnedFd,
}

impl Socket {
    pub(crate) fn connect(path: &Path) -> io::Result<Socket> {
        let bytes = path.as_os_str().as_bytes();
        let mut address = SockaddrUn { sun_family: AF_UNIX as u16, sun_path: [0; 108] };
        if bytes.len() >= address.sun_path.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the socket path is longer than 107 bytes"));
        }
        address.sun_path[..bytes.len()].copy_from_slice(bytes);
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = cvt(unsafe { socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0) })?;
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: `address` is a valid, NUL-terminated sockaddr_un that outlives the call.
        cvt(unsafe { connect(fd.as_raw_fd(), &address, std::mem::size_of::<SockaddrUn>() as u32) })?;
        Ok(Socket { fd })
    }

    /// Sends one record without blocking (`WouldBlock` when the socket buffer is full).
    pub(crate) fn send(&self, record: &[u8]) -> io::Result<usize> {
        // SAFETY: the buffer is valid for `record.len()` bytes for the duration of the call.
        let n = unsafe { send(self.fd.as_raw_fd(), record.as_ptr().cast(), record.len(), MSG_DONTWAIT | MSG_NOSIGNAL) };
        cvt(n).map(|n| n as usize)
    }

    /// Reads one record without blocking; 0 when the peer closed.
    pub(crate) fn recv(&self, buffer: &mut [u8]) -> io::Result<usize> {
        // SAFETY: the buffer is valid and writable for its length.
        let n = unsafe { recv(self.fd.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len(), MSG_DONTWAIT) };
        cvt(n).map(|n| n as usize)
    }

    /// Waits up to `timeout_ms` for the socket to be ready; false on timeout.
    pub(crate) fn wait(&self, readiness: Readiness, timeout_ms: i32) -> bool {
        let events = if readiness == Readiness::Readable { POLLIN } else { POLLOUT };
        let mut fd = PollFd { fd: self.fd.as_raw_fd(), events, revents: 0 };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { poll(&mut fd, 1, timeout_ms) > 0 }
    }
}

/// The real user id.
pub(crate) fn uid() -> Option<u32> {
    // SAFETY: getuid(2) cannot fail.
    Some(unsafe { getuid() })
}

/// Clock ticks per second (`/proc` times are in ticks).
pub(crate) fn clock_ticks() -> u64 {
    // SAFETY: sysconf(3) with a valid name has no preconditions.
    (unsafe { sysconf(SC_CLK_TCK) }).max(1) as u64
}

pub(crate) fn page_size() -> u64 {
    // SAFETY: sysconf(3) with a valid name has no preconditions.
    (unsafe { sysconf(SC_PAGESIZE) }).max(1) as u64
}

/// The soft limit on open descriptors.
#[allow(clippy::unnecessary_cast)] // rlim_t is 32 bits wide on 32-bit targets
pub(crate) fn open_file_limit() -> Option<u64> {
    let mut limits = Rlimit { current: 0, maximum: 0 };
    // SAFETY: `limits` is a valid, writable struct rlimit.
    (unsafe { getrlimit(RLIMIT_NOFILE, &mut limits) } == 0).then_some(limits.current as u64)
}
