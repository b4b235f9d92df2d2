import DanubeMetricsWire
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Decides whether a new ingest connection may become a source, before any frame is read: the agent is not
/// stopping, the peer's credentials are allowed (`PeerAccess`), and the source cap is not reached. Keeps the open
/// connections (closed explicitly on stop, told when a checkpoint is durable). A refused peer gets REFUSE with the
/// reason, then the connection closes; refusals are counted always and logged at most a few times a minute per
/// reason (`WarningLimiter`), so a peer retrying in a loop cannot flood the journal.
final class SourceAdmission: Sendable {
    private struct State {
        var sources: [ObjectIdentifier: Channel] = [:]
        var cap = 0
        var stopped = false
    }

    private let state = NIOLockedValueBox(State())
    private let nextID = NIOLockedValueBox<ConnectionID>(0)
    private let access: PeerAccess
    private let stats: AgentStats
    private let warnings: WarningLimiter
    private let logger: Logger

    init(access: PeerAccess, stats: AgentStats, warnings: WarningLimiter, logger: Logger) {
        self.access = access
        self.stats = stats
        self.warnings = warnings
        self.logger = logger
    }

    /// Emitter connections allowed at once (`maxSources` within the descriptor budget).
    var cap: Int {
        get { state.withLockedValue { $0.cap } }
        set { state.withLockedValue { $0.cap = newValue } }
    }

    /// Connections admitted and still open.
    var openSources: [Channel] { state.withLockedValue { Array($0.sources.values) } }

    /// From now on every new connection is refused (`shutting_down`); returns the open ones, for closing.
    func stop() -> [Channel] {
        state.withLockedValue { state in
            state.stopped = true
            return Array(state.sources.values)
        }
    }

    /// Reads the peer's credentials, then either admits the connection (kept until it closes) and adds the
    /// handlers `install` makes for it, or installs a REFUSE that says why.
    func admit(_ channel: Channel, install: @escaping @Sendable (ConnectionID, PeerCredentials) throws -> ChannelHandler) -> EventLoopFuture<Void> {
        let id = nextID.withLockedValue { value -> ConnectionID in
            value += 1
            return value
        }
        let key = ObjectIdentifier(channel)
        return PeerCredentials.of(channel).flatMap { [self] peer in
            let (verdict, cap) = state.withLockedValue { state -> (RefusalCode?, Int) in
                if state.stopped { return (.shuttingDown, state.cap) }
                if !access.admits(peer) { return (.notPermitted, state.cap) }
                if state.sources.count >= state.cap { return (.limitExceeded, state.cap) }
                state.sources[key] = channel
                return (nil, state.cap)
            }
            let who: Logger.Metadata = ["peer_pid": "\(peer.pid)", "peer_uid": "\(peer.uid)", "peer_gid": "\(peer.gid)", "connection": "\(id)"]
            switch verdict {
            case nil:
                break
            case .notPermitted?:
                refused("peer_credentials", "emitter connection refused: its user and groups are not allowed", who)
                return Self.refuse(channel, .notPermitted, "uid \(peer.uid) (gid \(peer.gid)) may not send metrics to this agent")
            case .limitExceeded?:
                refused("too_many_sources", "emitter connection refused: too many sources", who.merging(["max_sources": "\(cap)"]) { $1 })
                return Self.refuse(channel, .limitExceeded, "this agent already serves \(cap) sources")
            case let code?:
                return Self.refuse(channel, code, "the agent is stopping")
            }
            channel.closeFuture.whenComplete { [state] _ in _ = state.withLockedValue { $0.sources.removeValue(forKey: key) } }
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(try install(id, peer))
            }
        }
    }

    private func refused(_ reason: String, _ message: Logger.Message, _ metadata: Logger.Metadata) {
        stats.connectionRefused(reason)
        guard let suppressed = warnings.admit("refused\u{0}\(reason)") else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
        logger.warning(message, metadata: metadata)
    }

    /// REFUSE instead of WELCOME once the connection is active, then close: the emitter logs why.
    private static func refuse(_ channel: Channel, _ code: RefusalCode, _ message: String) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(RefusingHandler(refusal: Refusal(code: code, message: message)))
        }
    }
}
