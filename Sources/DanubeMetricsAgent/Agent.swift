#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import DanubeMetricsWire
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTPCompression
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

    public init(ingestSocketPath: String) {
        self.ingestSocketPath = ingestSocketPath
    }
}

/// The daemon: ingest server -> aggregation store -> exposition -> HTTP server. A swift-service-lifecycle
/// `Service`: `run()` serves until graceful shutdown (SIGTERM), then stops accepting, drains and returns.
public final class Agent: Service, Sendable {
    public static let version = "0.1.0"

    public let configuration: AgentConfiguration
    public let store: AggregationStore
    public let stats: AgentStats
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let threadPool: NIOThreadPool
    private let state = NIOLockedValueBox(RunState())
    private let nextConnectionID = NIOLockedValueBox<ConnectionID>(0)

    private struct RunState {
        var ingest: Channel?
        var http: [Channel] = []
        var sweeper: RepeatedTask?
        var stopped = false
    }

    public init(configuration: AgentConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        store = AggregationStore(gaugeGrace: configuration.gaugeGrace)
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        stats = AgentStats(startTime: Double(now.tv_sec) + Double(now.tv_nsec) / 1e9)
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.eventLoopThreads))
        threadPool = NIOThreadPool(numberOfThreads: 1)
    }

    /// Addresses the HTTP server is bound to (useful when a port of 0 was asked for).
    public var httpAddresses: [SocketAddress] {
        state.withLockedValue { $0.http.compactMap(\.localAddress) }
    }

    /// Binds the ingest socket and every HTTP address and starts serving. Throws (and releases everything it
    /// bound) when any of them fails.
    public func start() async throws {
        threadPool.start()
        do {
            let ingestFD = try IngestSocket.bind(path: configuration.ingestSocketPath, mode: configuration.ingestSocketMode)
            let ingest = try await ingestBootstrap().withBoundSocket(ingestFD).get()
            state.withLockedValue { $0.ingest = ingest }
            for address in configuration.httpListen {
                let channel: Channel
                do {
                    channel = try await httpBootstrap().bind(host: address.host, port: address.port).get()
                } catch {
                    throw AgentConfigurationError("cannot listen on \(address): \(error)")
                }
                state.withLockedValue { $0.http.append(channel) }
            }
        } catch {
            await stop()
            throw error
        }
        let sweepEvery = TimeAmount.nanoseconds(max(Int64(250_000_000), configuration.gaugeGrace.nanoseconds / 4))
        let sweeper = group.next().scheduleRepeatedTask(initialDelay: sweepEvery, delay: sweepEvery) { [store] _ in
            store.expireGauges()
        }
        state.withLockedValue { $0.sweeper = sweeper }
        logger.info("agent ready", metadata: [
            "ingest_socket": "\(configuration.ingestSocketPath)",
            "http": "\(httpAddresses.map { "\($0)" }.joined(separator: ", "))",
        ])
    }

    /// Stops accepting, closes every connection, removes the ingest socket file and releases the threads.
    public func stop() async {
        let (ingest, http, sweeper, alreadyStopped) = state.withLockedValue { state in
            defer { state.stopped = true }
            return (state.ingest, state.http, state.sweeper, state.stopped)
        }
        guard !alreadyStopped else { return }
        sweeper?.cancel()
        if let ingest {
            try? await ingest.close()
            unlink(configuration.ingestSocketPath)
        }
        for channel in http { try? await channel.close() }
        try? await group.shutdownGracefully()
        try? await threadPool.shutdownGracefully()
        logger.info("agent stopped")
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
        let started = ContinuousClock.now
        var writer = ExpositionWriter(format: format, capacity: 1 << 20)
        store.render(into: &writer)
        stats.render(into: &writer, store: store, version: Self.version)
        writer.finish()
        stats.scraped(seconds: (ContinuousClock.now - started).seconds)
        return writer.bytes
    }

    // MARK: bootstraps

    private func ingestBootstrap() -> ServerBootstrap {
        let store = self.store, stats = self.stats, limits = configuration.limits, logger = self.logger
        let ids = nextConnectionID
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            // One read returns one SEQPACKET record; a record longer than the buffer is silently truncated, so
            // the buffer is one byte larger than the frame limit and an oversized frame is seen as such.
            .childChannelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: limits.maxFrameBytes + 1))
            .childChannelInitializer { channel in
                let id = ids.withLockedValue { value -> ConnectionID in
                    value += 1
                    return value
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        SourceHandler(id: id, store: store, stats: stats, limits: limits, logger: logger))
                }
            }
    }

    private func httpBootstrap() -> ServerBootstrap {
        let threadPool = self.threadPool
        let render: MetricsHTTPHandler.Renderer = { [self] format in renderMetrics(format: format) }
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(HTTPResponseCompressor())
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(render: render, threadPool: threadPool))
                }
            }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
