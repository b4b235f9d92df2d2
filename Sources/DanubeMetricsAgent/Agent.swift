#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CMalloc
import DanubeMetricsCatalog
import DanubeMetricsWire
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

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
    /// Which new ingest connections become sources; the open ones.
    private let admission: SourceAdmission
    private let warnings: WarningLimiter
    private let renderer: MetricsRenderer
    /// Open HTTP connections, for the cap and its eviction of idle ones.
    private let httpConnections: HTTPConnections
    /// Writes the state file and acknowledges what it holds (nil without a state directory).
    private let checkpointer: Checkpointer?
    private let supervisor: AgentSupervisor?
    private let remoteWriter: RemoteWriter?
    /// Exports emitters' spans with OTLP (nil without `--otlp-endpoint`).
    private let spanExporter: SpanExporter?
    private let renders: SharedRenders
    /// TLS and basic auth of the HTTP listeners (nil without `--web.config.file`).
    private let webSecurity: WebSecurity?

    private struct RunState {
        var ingest: Channel?
        var http: [Channel] = []
        var tasks: [RepeatedTask] = []
        var stopped = false
    }

    /// Throws, with one line, when remote write receivers are configured that cannot be used (a URL that does not
    /// parse, a token file that cannot be read): an agent is never built that silently pushes nowhere.
    public init(configuration: AgentConfiguration, logger: Logger, supervisor: AgentSupervisor? = nil) throws(AgentConfigurationError) {
        // First, before any thread is started: nothing is left running when this throws.
        let remoteWriteTargets = configuration.remoteWrite.urls.isEmpty ? [] : try configuration.remoteWrite.targets()
        let otlpEndpoints = try configuration.traceExport.parsedEndpoints()
        webSecurity = try configuration.webConfigFile.map { path throws(AgentConfigurationError) in try WebSecurity(path: path, logger: logger) }
        self.configuration = configuration
        self.logger = logger
        self.supervisor = supervisor
        store = AggregationStore(gaugeGrace: configuration.gaugeGrace, derived: ReliableBacklog.derivations(configuration.catalog),
                                 tracksChanges: configuration.stateDirectory != nil, limits: configuration.storeLimits)
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
            configuration: configuration.remoteWrite, targets: remoteWriteTargets, group: group, logger: logger)
        spanExporter = otlpEndpoints.isEmpty ? nil : SpanExporter(configuration: configuration.traceExport, endpoints: otlpEndpoints,
                                                                  group: group, logger: logger)
        // One limiter for a source's warnings, whether about its connection or its frames.
        warnings = WarningLimiter(burst: configuration.warningBurst, window: configuration.warningWindow)
        let admission = SourceAdmission(access: configuration.peerAccess, stats: stats, warnings: warnings, logger: logger)
        self.admission = admission
        renderer = MetricsRenderer(store: store, stats: stats, liveness: liveness, gate: gate, remoteWriter: remoteWriter,
                                   spanExporter: spanExporter, webSecurity: webSecurity)
        let renderer = self.renderer
        renders = SharedRenders(threadPool: threadPool) { format, gzip in
            let chunks = renderer.render(format)
            if gzip { return ByteBuffer(bytes: GzipEncoder.gzip(chunks)) }
            var body = ByteBuffer()
            body.reserveCapacity(chunks.reduce(0) { $0 + $1.count })
            for chunk in chunks { body.writeBytes(chunk) }
            return body
        }
        let store = self.store, stats = self.stats
        checkpointer = configuration.stateDirectory.map { directory in
            Checkpointer(store: store, file: StateFile(directory: directory), interval: configuration.checkpointInterval,
                         stats: stats, logger: logger) { durable in
                // Acknowledge on each connection's own event loop.
                for channel in admission.openSources {
                    channel.eventLoop.execute { channel.pipeline.fireUserInboundEventTriggered(durable) }
                }
            }
        }
    }

    /// Addresses the HTTP server is bound to (useful when a port of 0 was asked for).
    public var httpAddresses: [SocketAddress] {
        state.withLockedValue { $0.http.compactMap(\.localAddress) }
    }

    /// Binds the ingest socket and every HTTP address and starts serving. Throws (and releases everything it
    /// bound) when any of them fails.
    public func start() async throws {
        do {
            admission.cap = try configuration.preflight(logger: logger)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        // A scrape allocates its whole response for a moment (about 200 bytes per series): blocks from 512 KiB up
        // get mappings of their own, so that memory goes back to the system once the response is sent instead
        // of staying in the heap (glibc's default after the first large free).
        _ = dm_return_large_blocks(512 << 10)
        threadPool.start()
        webSecurity?.start(on: group.next())
        if let directory = configuration.stateDirectory { StateFile(directory: directory).restore(into: store, gate: gate, logger: logger) }
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
                    throw AgentConfigurationError(.listen, "cannot listen on \(address): \(Self.describe(error))")
                }
                state.withLockedValue { $0.http.append(channel) }
            }
        } catch {
            await stop(afterFailedStart: true)
            throw error
        }
        let housekeeping = Housekeeping(configuration: configuration, store: store, stats: stats, checkpointer: checkpointer,
                                        supervisor: supervisor, logger: logger) { [self] rate in statusLine(deltasPerSecond: rate) }
        let tasks = housekeeping.schedule(on: group)
        state.withLockedValue { $0.tasks = tasks }
        let renderer = self.renderer
        remoteWriter?.start { renderer.snapshot(exemplars: false, agentSeries: $0) }
        spanExporter?.start()
        logger.info("agent ready", metadata: [
            "ingest_socket": "\(configuration.activatedIngestSocket.map { "fd \($0) (socket activation)" } ?? configuration.ingestSocketPath)",
            "http": "\(httpAddresses.map(\.hostAndPort).joined(separator: ","))",
        ])
        supervisor?.ready(status: statusLine())
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
        for source in admission.stop() { try? await source.close() }
        for channel in http { try? await channel.close() }
        // The last checkpoint, after every connection closed: what was applied is durable, and the WELCOME of a
        // restarted agent tells each emitter so.
        checkpointer?.stop()
        remoteWriter?.stop()
        spanExporter?.stop()
        await webSecurity?.stop()
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

    /// Re-reads `--web.config.file` if it or a file it names changed (SIGHUP; it is also checked every second).
    /// False when nothing changed or the change did not load (the previous configuration stays, logged).
    @discardableResult
    public func reloadWebConfiguration() -> Bool { webSecurity?.reloadIfChanged() ?? false }

    /// The complete `/metrics` exposition: sources' families, then the agent's own.
    public func renderMetrics(format: ExpositionFormat) -> [UInt8] {
        Array(renderer.render(.text(format)).joined())
    }

    /// The exposition in any scrape format, as the chunks a response is built from.
    public func renderMetrics(scrape format: ScrapeFormat) -> [[UInt8]] {
        renderer.render(format)
    }

    // MARK: bootstraps

    private func ingestBootstrap() -> ServerBootstrap {
        let store = self.store, stats = self.stats, gate = self.gate, limits = configuration.limits, logger = self.logger
        let liveness = self.liveness, checkpointer = self.checkpointer, admission = self.admission, warnings = self.warnings
        let spans = spanExporter.map { exporter in SpanIntake(exporter: exporter, hostName: SpanIntake.localHostName) }
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
                admission.admit(channel) { id, peer in
                    SourceHandler(id: id, store: store, gate: gate, stats: stats, limits: limits, rates: rates, warnings: warnings,
                                  checkpointer: checkpointer, peer: peer, logger: logger, liveness: liveness, spans: spans)
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

    private func httpBootstrap() -> ServerBootstrap {
        let renders = self.renders
        let limits = configuration.http, connections = httpConnections, security = webSecurity
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer(Self.acceptBackoff)
            .childChannelInitializer { channel in
                // The connection counts against the cap, and HTTPGuard's request timeout runs, from the accept on:
                // a TLS handshake that stalls is closed like a request that does not arrive.
                guard connections.admit(channel) else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    let web = security?.current
                    if let security, let web, let tls = web.tls {
                        try pipeline.addHandler(WebTLS.handler(web, context: tls))
                        try pipeline.addHandler(TLSFailureCounter(security: security))
                    }
                    try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
                    if let headers = web?.configuration.headers, !headers.isEmpty { try pipeline.addHandler(ResponseHeaders(headers)) }
                    try pipeline.addHandler(HTTPGuard(limits: limits, connections: connections))
                    if let security, let web, !web.configuration.basicAuthUsers.isEmpty {
                        try pipeline.addHandler(BasicAuthHandler(security: security, loaded: web))
                    }
                    try pipeline.addHandler(MetricsHTTPHandler(renders: renders))
                }
            }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
