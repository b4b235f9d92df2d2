//! The client end of the agent's ingest socket, used only by the flusher thread: HELLO and WELCOME, and whole
//! frames in and out over the platform's socket (`platform::Socket`: `AF_UNIX`, `SOCK_SEQPACKET` on Linux).

use crate::platform::{Readiness, Socket, DELIVERS};
use crate::wire::{self, Frame, Hello, Limits, Welcome};
use std::io;
use std::path::Path;

pub(crate) enum SendResult {
    Sent,
    WouldBlock,
    Failed(String),
}

pub(crate) struct Connection {
    socket: Socket,
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
        let socket = Socket::connect(path).map_err(|e| {
            if !DELIVERS {
                e.to_string()
            } else if e.kind() == io::ErrorKind::PermissionDenied {
                format!("connect({}): {e}: {NOT_ADMITTED}", path.display())
            } else {
                format!("connect({}): {e}", path.display())
            }
        })?;
        // Larger than any frame: the agent may pack several small frames into one record.
        let limits = Limits { max_frame_bytes: 1 << 18, ..Limits::default() };
        let mut connection = Connection {
            socket,
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
        match self.socket.send(frame) {
            Ok(n) if n == frame.len() => SendResult::Sent,
            Ok(n) => SendResult::Failed(format!("short send of {n} of {} bytes", frame.len())),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => SendResult::WouldBlock,
            Err(e) => SendResult::Failed(format!("send(): {e}")),
        }
    }

    /// Sends, waiting for room up to `timeout_ms` (HELLO and GOODBYE).
    pub fn send_blocking(&self, frame: &[u8], timeout_ms: i32) -> SendResult {
        match self.send(frame) {
            SendResult::WouldBlock if self.socket.wait(Readiness::Writable, timeout_ms) => self.send(frame),
            other => other,
        }
    }

    /// The frames of one record, waiting up to `timeout_ms` (0: only what is there already); empty when none
    /// came. An error when the agent closed the connection or sent something undecodable.
    pub fn receive(&mut self, timeout_ms: i32) -> Result<Vec<Frame>, String> {
        if timeout_ms > 0 && !self.socket.wait(Readiness::Readable, timeout_ms) {
            return Ok(Vec::new());
        }
        match self.socket.recv(&mut self.buffer) {
            Ok(0) => Err("the agent closed the connection".to_owned()),
            Ok(n) => wire::decode_record(&self.buffer[..n], &self.limits)
                .map_err(|e| format!("undecodable frame from the agent: {e}")),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(Vec::new()),
            Err(e) => Err(format!("recv(): {e}")),
        }
    }
}
