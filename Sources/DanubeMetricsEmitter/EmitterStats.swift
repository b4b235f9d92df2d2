/// What the emitter has delivered and what it could not (yet). Read with `Emitter.stats`.
public struct EmitterStats: Sendable, Equatable {
    /// A handshake with the agent is established now.
    public var connected = false
    /// Successful handshakes (the first connection and every reconnect).
    public var connects: UInt64 = 0
    /// Connection or handshake attempts that failed.
    public var connectFailures: UInt64 = 0
    /// Established connections that were lost.
    public var disconnects: UInt64 = 0
    public var framesSent: UInt64 = 0
    public var bytesSent: UInt64 = 0
    public var deltasSent: UInt64 = 0
    /// Frames the agent acknowledged as applied.
    public var framesAcknowledged: UInt64 = 0
    public var lastAcknowledgedSequence: UInt64 = 0
    /// Flush ticks that found no agent to deliver to (deltas kept accumulating in place).
    public var flushesWithoutAgent: UInt64 = 0
    /// Flush ticks cut short because the agent was not reading fast enough.
    public var flushesThrottled: UInt64 = 0
    /// Series whose current value differs from what the agent acknowledged: not delivered yet.
    public var undeliveredSeries = 0
    /// Frames sent but not yet acknowledged.
    public var unacknowledgedFrames = 0
    /// Series the agent refused (their updates are not delivered).
    public var refusedSeries = 0
    public var registeredSeries = 0
    public var lastError: String?
    /// Spans recorded (sampled, or kept for being slow).
    public var spansRecorded: UInt64 = 0
    /// Spans sent to the agent (SPANS frames).
    public var spansSent: UInt64 = 0
    /// Spans dropped when sending: the agent takes no spans (protocol version 3 or older: it exports no traces),
    /// or the socket was full.
    public var spansDropped: UInt64 = 0
    /// Spans dropped on a recording thread: its ring was full (the agent away or slow), the oldest went.
    public var spansDroppedRingFull: UInt64 = 0

    public init() {}
}
