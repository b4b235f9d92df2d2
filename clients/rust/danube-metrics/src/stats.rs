//! What the emitter has delivered and what it could not (yet): the Swift emitter's `EmitterStats`.

/// A copy of the delivery statistics as of the last flush. Read with [`Handle::stats`](crate::Handle::stats).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// A handshake with the agent is established now.
    pub connected: bool,
    /// Successful handshakes (the first connection and every reconnect).
    pub connects: u64,
    /// Connection or handshake attempts that failed (the agent away, or refusing this process).
    pub connect_failures: u64,
    /// Established connections that were lost.
    pub disconnects: u64,
    pub frames_sent: u64,
    pub bytes_sent: u64,
    pub deltas_sent: u64,
    /// Frames the agent acknowledged as applied (and, with a state directory, durable).
    pub frames_acknowledged: u64,
    pub last_acknowledged_sequence: u64,
    /// Flush ticks that found no agent (deltas kept accumulating in place).
    pub flushes_without_agent: u64,
    /// Flush ticks cut short because the agent was not reading fast enough.
    pub flushes_throttled: u64,
    /// Series whose current value differs from what the agent acknowledged.
    pub undelivered_series: usize,
    /// Frames sent but not yet acknowledged.
    pub unacknowledged_frames: usize,
    /// Series the agent refused on this connection (their updates are not delivered).
    pub refused_series: usize,
    pub registered_series: usize,
    /// Macro calls or registrations refused before reaching the agent (a bad name or labels, another type
    /// under the same name, the series limit): their handles record nowhere. Each name is logged once.
    pub rejected_registrations: u64,
    /// Spans recorded (sampled, or kept for being slow).
    pub spans_recorded: u64,
    /// Spans sent to the agent (SPANS frames).
    pub spans_sent: u64,
    /// Spans dropped when sending: the agent takes no spans (protocol version 3 or older: it exports no
    /// traces), or the socket was full.
    pub spans_dropped: u64,
    /// Spans dropped on a recording thread: its ring was full (the agent away or slow), the oldest went.
    pub spans_dropped_ring_full: u64,
    /// Why the last connection attempt failed or the last connection was lost.
    pub last_error: Option<String>,
}
