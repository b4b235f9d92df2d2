#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CMalloc
import DanubeMetricsCatalog
import Dispatch
import DanubeMetricsWire
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// Everything the agent needs to know to run.
public struct AgentConfiguration: Sendable {
    /// Path of the ingest socket (AF_UNIX, SOCK_SEQPACKET).
    public var ingestSocketPath: String
    /// File mode of the ingest socket: who may connect.
    public var ingestSocketMode: mode_t = 0o660
    /// Where `/metrics` is served.
    public var httpListen: [ListenAddress] = [ListenAddress(host: "127.0.0.1", port: 9470)]
    /// How long a departed source's gauges stay on `/metrics`.
    public var gaugeGrace: Duration = .seconds(15)
    public var limits = WireLimits.default
    public var eventLoopThreads = 2
    /// An ingest listener passed by systemd: used as it is, never bound, chmod-ed or unlinked by the agent.
    public var activatedIngestSocket: Int32?
    /// HTTP listeners passed by systemd; when present, `httpListen` is not bound.
    public var activatedHTTPSockets: [Int32] = []
    /// How often STATUS= is refreshed for a supervisor.
    public var statusInterval: Duration = .seconds(5)
    /// Where counters, histograms and per-source sequences are kept across restarts and crashes (nil: not
    /// kept, and sources are acknowledged as soon as their frames are applied).
    public var stateDirectory: String?
    /// How often, at most, the state file is written (only when something changed). Sources are acknowledged
    /// after each write, so this is also how long an emitter holds delivered deltas before it may forget them.
    public var checkpointInterval: Duration = .seconds(1)
    /// Connection cap, request timeout and size limit of the HTTP server.
    public var http = HTTPLimits()
    /// Who may connect to the ingest socket (SO_PEERCRED), beyond the socket file's mode.
    public var peerAccess = PeerAccess()
    /// Emitter connections open at once; more are refused. Lowered at start to what the open-file limit allows
    /// (`FileDescriptorBudget`), with a warning.
    public var maxSources = 1_024
    /// Time a new connection has to send HELLO; then it is refused and closed (an idle connection holds a
    /// descriptor and a source slot).
    public var helloTimeout: Duration = .seconds(10)
    /// Frames per second one connection may send; beyond it the agent stops reading that connection until the
    /// rate allows (backpressure: the emitter keeps its deltas, nothing is dropped). 0: no limit.
    public var maxFramesPerSecondPerSource = 5_000
    /// Bytes of series definitions (names, labels, help) one connection may make the agent hold.
    public var maxDefinitionBytesPerSource = 64 << 20
    /// Sources (emitter instances) away for longer than this are forgotten.
    public var sourceRetention: Duration = .seconds(7 * 24 * 3600)
    /// Repeated warnings about one source: at most `warningBurst` per `warningWindow`, the rest counted.
    public var warningBurst = 5
    public var warningWindow: Duration = .seconds(60)
    /// The families the agent knows (built in, possibly overlaid by an operator file); see `docs/CATALOG.md`.
    public var catalog: Catalog = BuiltinCatalog.catalog
    /// What happens to families the catalog does not know.
    public var catalogMode: CatalogMode = .permissive
    /// The series limit of each family the catalog does not know (catalogued families carry their own).
    public var uncataloguedFamilyLimit = 10_000
    /// Receivers the store is pushed to with Prometheus remote write (none: only scraped).
    public var remoteWrite = RemoteWriteConfiguration()

    public init(ingestSocketPath: String) {
        self.ingestSocketPath = ingestSocketPath
    }
}

/// The daemon: ingest server -> aggregation store -> exposition -> HTTP server. A swift-service-lifecycle
/// `Service`: `run()` serves until graceful shutdown (SIGTERM), then stops accepting, drains and returns.
public final class Agent: Service, Sendable {
    public static let version = BuildInfo.version

    public let configuration: AgentConfiguration
    public let store: AggregationStore
    public let stats: AgentStats
    /// Admits or refuses each series definition (catalog, limits) and counts refusals.
    public let gate: SeriesGate
    /// Per source name: connected or not, last seen.
    public let liveness: SourceLiveness
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let threadPool: NIOThreadPool
    private let state = NIOLockedValueBox(RunState())
    private let nextConnectionID = NIOLockedValueBox<ConnectionID>(0)
    /// Open HTTP connections, for the cap and its eviction of idle ones.
    private let httpConnections: HTTPConnections
    /// Writes the state file and acknowledges what it holds (nil without a state directory).
    private let checkpointer: Checkpointer?
    private let supervisor: AgentSupervisor?
    private let remoteWriter: RemoteWriter?

    private struct RunState {
        var ingest: Channel?
        /// Open emitter connections, closed explicitly on stop (one accepted while stopping is closed at once).
        var sources: [ObjectIdentifier: Channel] = [:]
        var http: [Channel] = []
        var tasks: [RepeatedTask] = []
        var stopped = false
        /// Emitter connections allowed at once (`maxSources` within the descriptor budget).
        var sourceCap = 0
    }

    public init(configuration: AgentConfiguration, logger: Logger, supervisor: AgentSupervisor? = nil) {
        self.configuration = configuration
        self.logger = logger
        self.supervisor = supervisor
        store = AggregationStore(gaugeGrace: configuration.gaugeGrace, derived: ReliableBacklog.derivations(configuration.catalog),
                                 tracksChanges: configuration.stateDirectory != nil)
        gate = SeriesGate(catalog: configuration.catalog, mode: configuration.catalogMode,
                          uncataloguedFamilyLimit: configuration.uncataloguedFamilyLimit, store: store, logger: logger)
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        stats = AgentStats(startTime: Double(now.tv_sec) + Double(now.tv_nsec) / 1e9)
        liveness = SourceLiveness(limit: configuration.maxSources)
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.eventLoopThreads))
        threadPool = NIOThreadPool(numberOfThreads: 1)
        httpConnections = HTTPConnections(limit: max(1, configuration.http.maxConnections), evictionAge: configuration.http.evictionAge)
        remoteWriter = configuration.remoteWrite.urls.isEmpty ? nil : RemoteWriter(
            store: store, configuration: configuration.remoteWrite, targets: (try? configuration.remoteWrite.targets()) ?? [],
            group: group, logger: logger)
        let runState = state, store = self.store, stats = self.stats
        checkpointer = configuration.stateDirectory.map { directory in
            Checkpointer(store: store, file: StateFile(directory: directory), interval: configuration.checkpointInterval,
                         stats: stats, logger: logger) { durable in
                // Acknowledge on each connection's own event loop.
                for channel in runState.withLockedValue({ Array($0.sources.values) }) {
                    channel.eventLoop.execute { channel.pipeline.fireUserInboundEventTriggered(durable) }
                }
            }
        }
    }

    /// Addresses the HTTP server is bound to (useful when a port of 0 was asked for).
    public var httpAddresses: [SocketAddress] {
        state.withLockedValue { $0.http.compactMap(\.localAddress) }
    }

    /// What must hold before anything is bound: descriptors for at least one source, a usable state directory.
    private func checkBeforeStart() throws {
        let budget = FileDescriptorBudget.current(httpMaxConnections: configuration.http.maxConnections)
        let sourceCap = budget.sourceCap(configured: configuration.maxSources)
        guard sourceCap > 0 else {
            throw AgentConfigurationError("the open file limit (\(budget.limit)) leaves no room for emitter connections: the agent keeps \(budget.reserved) descriptors for itself (raise LimitNOFILE= or lower --http-max-connections)")
        }
        if sourceCap < configuration.maxSources {
            logger.warning("fewer emitter connections than --max-sources: the open file limit allows no more", metadata: [
                "max_sources": "\(configuration.maxSources)", "allowed": "\(sourceCap)", "open_file_limit": "\(budget.limit)",
                "reserved": "\(budget.reserved)",
            ])
        }
        state.withLockedValue { $0.sourceCap = sourceCap }
        _ = try configuration.remoteWrite.targets()
        if let directory = configuration.stateDirectory { try StateFile(directory: directory).prepare() }
    }

    /// Binds the ingest socket and every HTTP address and starts serving. Throws (and releases everything it
    /// bound) when any of them fails.
    public func start() async throws {
        do {
            try checkBeforeStart()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        // A scrape allocates its whole response for a moment (about 200 bytes per series): blocks from 512 KiB up
        // get mappings of their own, so that memory goes back to the system once the response is sent instead
        // of staying in the heap (glibc's default after the first large free).
        _ = dm_return_large_blocks(512 << 10)
        threadPool.start()
        if let directory = configuration.stateDirectory { restoreState(from: directory) }
        checkpointer?.start()
        do {
            let ingestFD = try configuration.activatedIngestSocket
                ?? IngestSocket.bind(path: configuration.ingestSocketPath, mode: configuration.ingestSocketMode)
            let ingest = try await ingestBootstrap().withBoundSocket(ingestFD).get()
            state.withLockedValue { $0.ingest = ingest }
            for fd in configuration.activatedHTTPSockets {
                let channel = try await httpBootstrap().withBoundSocket(fd).get()
                state.withLockedValue { $0.http.append(channel) }
            }
            for address in configuration.activatedHTTPSockets.isEmpty ? configuration.httpListen : [] {
                let channel: Channel
                do {
                    channel = try await httpBootstrap().bind(host: address.host, port: address.port).get()
                } catch {
                    throw AgentConfigurationError("cannot listen on \(address): \(Self.describe(error))")
                }
                state.withLockedValue { $0.http.append(channel) }
            }
        } catch {
            await stop(afterFailedStart: true)
            throw error
        }
        scheduleHousekeeping()
        remoteWriter?.start()
        logger.info("agent ready", metadata: [
            "ingest_socket": "\(configuration.activatedIngestSocket.map { "fd \($0) (socket activation)" } ?? configuration.ingestSocketPath)",
            "http": "\(httpAddresses.map { "\($0)" }.joined(separator: ", "))",
        ])
        supervisor?.ready(status: statusLine())
    }

    /// Gauge expiry, STATUS= refreshes and the watchdog, all as repeated tasks on the event loops.
    private func scheduleHousekeeping() {
        var tasks: [RepeatedTask] = []
        let sweepEvery = TimeAmount.nanoseconds(max(Int64(250_000_000), configuration.gaugeGrace.nanoseconds / 4))
        let retention = configuration.sourceRetention.seconds
        tasks.append(group.next().scheduleRepeatedTask(initialDelay: sweepEvery, delay: sweepEvery) { [store, logger] _ in
            store.expireGauges()
            let forgotten = store.forgetSources(awayLongerThan: retention, now: SourceHandler.now())
            if forgotten > 0 { logger.info("forgot sources away longer than the retention", metadata: ["sources": "\(forgotten)"]) }
        })
        // Defining many series at once (a broker starting) leaves its decoded definitions free inside the heap,
        // which glibc keeps: every 10 s, when 4 MiB more are free than at the last trim, they go back to the
        // system (off the event loops, one trim at a time).
        let trimEvery = TimeAmount.seconds(10)
        let trimQueue = DispatchQueue(label: "danube-metrics-agent.heap-trim", qos: .utility)
        tasks.append(group.next().scheduleRepeatedTask(initialDelay: trimEvery, delay: trimEvery) { _ in
            trimQueue.async { _ = dm_release_free_heap(4 << 20) }
        })
        if let supervisor {
            let every = TimeAmount.nanoseconds(configuration.statusInterval.nanoseconds)
            let lastApplied = NIOLockedValueBox((stats.applied, ContinuousClock.now))
            tasks.append(group.next().scheduleRepeatedTask(initialDelay: every, delay: every) { [self] _ in
                let now = ContinuousClock.now
                let applied = stats.applied
                let rate = lastApplied.withLockedValue { last -> Double in
                    defer { last = (applied, now) }
                    return Double(applied &- last.0) / max(0.001, (now - last.1).seconds)
                }
                supervisor.status(statusLine(deltasPerSecond: rate))
            })
            if let timeout = supervisor.watchdogTimeout {
                tasks += Watchdog(group: group, store: store, checkpointer: checkpointer, timeout: timeout, supervisor: supervisor).schedule()
            }
        }
        state.withLockedValue { $0.tasks = tasks }
    }

    private func restoreState(from directory: String) {
        let file = StateFile(directory: directory)
        switch file.read(into: store) {
        case .none:
            logger.info("no saved state", metadata: ["state_file": "\(file.path)"])
        case .loaded(let snapshot, let path, let records, let ignored):
            logger.info("restored saved state", metadata: [
                "state_file": "\(path)", "series": "\(snapshot.series.count)", "sources": "\(snapshot.sources.count)",
                "log_records": "\(records)",
            ])
            if let ignored {
                logger.warning("the rest of the state log was not applied", metadata: ["state_log": "\(file.logPath)", "reason": "\(ignored)"])
            }
        case .unusable(let path, let reason, let movedTo):
            logger.error("saved state is unusable; moved aside, starting empty", metadata: [
                "state_file": "\(path)", "moved_to": "\(movedTo)", "reason": "\(reason)",
            ])
        }
    }

    /// A short summary for STATUS=.
    public func statusLine(deltasPerSecond: Double? = nil) -> String {
        var line = "\(stats.sources) sources, \(store.seriesCount) series"
        if let deltasPerSecond { line += ", \(Int(deltasPerSecond.rounded())) deltas/s" }
        return line
    }

    /// Stops accepting, closes every connection, removes the ingest socket file and releases the threads.
    public func stop() async {
        await stop(afterFailedStart: false)
    }

    /// A start that failed releases what it bound without logging a stop: the caller reports the failure.
    private func stop(afterFailedStart: Bool) async {
        let (ingest, http, tasks, alreadyStopped) = state.withLockedValue { state in
            defer { state.stopped = true }
            return (state.ingest, state.http, state.tasks, state.stopped)
        }
        guard !alreadyStopped else { return }
        supervisor?.stopping(status: "stopping: closing \(stats.sources) sources")
        for task in tasks { task.cancel() }
        if let ingest {
            try? await ingest.close()
            // An activated socket belongs to systemd, which keeps queueing connections while the agent is down.
            if configuration.activatedIngestSocket == nil { unlink(configuration.ingestSocketPath) }
        }
        for source in state.withLockedValue({ Array($0.sources.values) }) { try? await source.close() }
        for channel in http { try? await channel.close() }
        // The last checkpoint, after every connection closed: what was applied is durable, and the WELCOME of a
        // restarted agent tells each emitter so.
        checkpointer?.stop()
        remoteWriter?.stop()
        try? await group.shutdownGracefully()
        try? await threadPool.shutdownGracefully()
        if !afterFailedStart { logger.info("agent stopped") }
    }

    /// `Service` entry point: start, serve until graceful shutdown is requested, stop.
    public func run() async throws {
        try await start()
        try? await gracefulShutdown()
        logger.info("shutting down")
        await stop()
    }

    /// The complete `/metrics` exposition: sources' families, then the agent's own.
    public func renderMetrics(format: ExpositionFormat) -> [UInt8] {
        renderMetricsWriter(format: format).bytes
    }

    /// The exposition in any scrape format, as the chunks a response is built from.
    public func renderMetrics(scrape format: ScrapeFormat) -> [[UInt8]] {
        switch format {
        case .text(let text): return renderMetricsWriter(format: text).output
        case .protobuf: return [ProtobufExposition.encode(openMetrics: renderMetricsWriter(format: .openMetrics, nativeHistograms: true).bytes)]
        }
    }

    /// The exposition as the chunks it was rendered in (what a response is built from, without joining them).
    func renderMetricsWriter(format: ExpositionFormat, nativeHistograms: Bool = false) -> ExpositionWriter {
        let started = ContinuousClock.now
        // Read before rendering: memory figures must not count this scrape's own output (200 B per series).
        let process = ProcessMetrics.current()
        var writer = ExpositionWriter(format: format, capacity: 1 << 20)
        writer.nativeHistograms = nativeHistograms
        store.render(into: &writer)
        stats.render(into: &writer, store: store)
        liveness.render(into: &writer)
        process?.render(into: &writer)
        remoteWriter?.render(into: &writer)
        gate.render(into: &writer)
        writer.finish()
        stats.scraped(seconds: (ContinuousClock.now - started).seconds)
        return writer
    }

    // MARK: bootstraps

    private func ingestBootstrap() -> ServerBootstrap {
        let store = self.store, stats = self.stats, gate = self.gate, limits = configuration.limits, logger = self.logger
        let liveness = self.liveness
        let ids = nextConnectionID
        let warnings = WarningLimiter(burst: configuration.warningBurst, window: configuration.warningWindow)
        let checkpointer = self.checkpointer
        let runState = state
        let access = configuration.peerAccess
        let rates = SourceRates(framesPerSecond: configuration.maxFramesPerSecondPerSource,
                                definitionBytes: configuration.maxDefinitionBytesPerSource, helloTimeout: configuration.helloTimeout)
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelInitializer(Self.acceptBackoff)
            // One read returns one SEQPACKET record; a record longer than the buffer is silently truncated, so
            // the buffer is one byte larger than the frame limit and an oversized frame is seen as such.
            .childChannelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: limits.maxFrameBytes + 1))
            // What the agent may queue for one emitter that does not read (SERIES_REFUSED, ACK) before it stops
            // reading that emitter's frames.
            .childChannelOption(.writeBufferWaterMark, value: ChannelOptions.Types.WriteBufferWaterMark(low: 32 << 10, high: 64 << 10))
            .childChannelInitializer { channel in
                let id = ids.withLockedValue { value -> ConnectionID in
                    value += 1
                    return value
                }
                let key = ObjectIdentifier(channel)
                return PeerCredentials.of(channel).flatMap { peer in
                    let (verdict, maxSources) = runState.withLockedValue { state -> (RefusalCode?, Int) in
                        if state.stopped { return (.shuttingDown, state.sourceCap) }
                        if !access.admits(peer) { return (.notPermitted, state.sourceCap) }
                        if state.sources.count >= state.sourceCap { return (.limitExceeded, state.sourceCap) }
                        state.sources[key] = channel
                        return (nil, state.sourceCap)
                    }
                    /// Refusals are counted always and logged at most a few times a minute per reason.
                    func refused(_ reason: String, _ message: Logger.Message, _ extra: Logger.Metadata = [:]) {
                        stats.connectionRefused(reason)
                        guard let suppressed = warnings.admit("refused\u{0}\(reason)") else { return }
                        var metadata = who.merging(extra) { $1 }
                        if suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
                        logger.warning(message, metadata: metadata)
                    }
                    let who: Logger.Metadata = ["peer_pid": "\(peer.pid)", "peer_uid": "\(peer.uid)", "peer_gid": "\(peer.gid)", "connection": "\(id)"]
                    switch verdict {
                    case nil:
                        break
                    case .notPermitted?:
                        refused("peer_credentials", "emitter connection refused: its user and groups are not allowed")
                        return Self.refuse(channel, .notPermitted, "uid \(peer.uid) (gid \(peer.gid)) may not send metrics to this agent")
                    case .limitExceeded?:
                        refused("too_many_sources", "emitter connection refused: too many sources", ["max_sources": "\(maxSources)"])
                        return Self.refuse(channel, .limitExceeded, "this agent already serves \(maxSources) sources")
                    case let code?:
                        return Self.refuse(channel, code, "the agent is stopping")
                    }
                    channel.closeFuture.whenComplete { _ in _ = runState.withLockedValue { $0.sources.removeValue(forKey: key) } }
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            SourceHandler(id: id, store: store, gate: gate, stats: stats, limits: limits, rates: rates,
                                          warnings: warnings, checkpointer: checkpointer, peer: peer, logger: logger,
                                          liveness: liveness))
                    }
                }
            }
    }

    /// An error as one readable clause: a system call's error as its strerror text and errno (NIO's own
    /// description of an IOError repeats the call and has a stray parenthesis).
    static func describe(_ error: Error) -> String {
        if let io = error as? IOError { return "\(String(cString: strerror(io.errnoCode))) (errno \(io.errnoCode))" }
        return "\(error)"
    }

    /// When accept fails for lack of descriptors (EMFILE, ENFILE) or memory, stop accepting for a second instead
    /// of retrying at once: the listening socket stays readable, and without this an event loop spins at full CPU.
    /// NIO adds it only to its async bootstraps.
    @Sendable private static func acceptBackoff(_ channel: Channel) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(AcceptBackoffHandler()) }
    }

    /// REFUSE instead of WELCOME once the connection is active, then close: the emitter logs why.
    private static func refuse(_ channel: Channel, _ code: RefusalCode, _ message: String) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(RefusingHandler(refusal: Refusal(code: code, message: message)))
        }
    }

    private func httpBootstrap() -> ServerBootstrap {
        let threadPool = self.threadPool
        let render: MetricsHTTPHandler.Renderer = { [self] format, gzip in
            let chunks = renderMetrics(scrape: format)
            if gzip { return ByteBuffer(bytes: GzipEncoder.gzip(chunks)) }
            var body = ByteBuffer()
            body.reserveCapacity(chunks.reduce(0) { $0 + $1.count })
            for chunk in chunks { body.writeBytes(chunk) }
            return body
        }
        let limits = configuration.http, connections = httpConnections
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer(Self.acceptBackoff)
            .childChannelInitializer { channel in
                guard connections.admit(channel) else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(HTTPGuard(limits: limits, connections: connections))
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(render: render, threadPool: threadPool))
                }
            }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
