/// Per-connection budgets beyond the wire limits, and the stages of a connection.
struct SourceRates: Sendable {
    /// Frames per second before the agent stops reading the connection for a while (0: no limit).
    var framesPerSecond: Int
    /// Bytes of series definitions the connection may make the agent hold.
    var definitionBytes: Int
    /// Time the connection has to send HELLO.
    var helloTimeout: Duration = .seconds(10)
}

extension SourceHandler {
    /// Where the connection is, with what belongs to that stage (the instance it claimed once HELLO is read).
    enum Phase: Equatable {
        case awaitingHello
        /// HELLO claimed `instance`; WELCOME waits for a checkpoint (or for the sequence check).
        case welcoming(instance: UInt64)
        case active(instance: UInt64)
        /// Nothing more is read; `claimed` is released when the connection closes (nil once it has been).
        case closing(claimed: UInt64?)

        var claimedInstance: UInt64? {
            switch self {
            case .awaitingHello: nil
            case .welcoming(let instance), .active(let instance): instance
            case .closing(let claimed): claimed
            }
        }

        var isClosing: Bool { if case .closing = self { true } else { false } }
    }
}
