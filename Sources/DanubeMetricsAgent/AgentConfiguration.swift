#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import DanubeMetricsCatalog
import DanubeMetricsWire
import Logging

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
    /// 100 ms: `/metrics` (which shows only what is durable) is then at most about 120 ms behind what sources sent
    /// (p99, FreshnessBench; 1 s gave 1,005 ms), for about 1% of a core at 1M series (docs/BENCHMARKS.md).
    public var checkpointInterval: Duration = .milliseconds(100)
    /// Connection cap, request timeout and size limit of the HTTP server.
    public var http = HTTPLimits()
    /// TLS, client certificates, basic auth and response headers for every HTTP listener, in the Prometheus
    /// exporters' web configuration format (nil: plain HTTP, no authentication). See `WebConfiguration`.
    public var webConfigFile: String?
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
    /// Series and bytes the store holds at most (`--max-series`, `--memory-limit`).
    public var storeLimits = AggregationStore.Limits()
    /// Receivers the store is pushed to with Prometheus remote write (none: only scraped).
    public var remoteWrite = RemoteWriteConfiguration()
    /// OTLP receivers for the spans emitters send (none: emitters are told not to send any).
    public var traceExport = TraceExportConfiguration()

    public init(ingestSocketPath: String) {
        self.ingestSocketPath = ingestSocketPath
    }
}

extension AgentConfiguration {
    /// What must hold before anything is bound: descriptors for at least one source, remote write targets that
    /// parse, a usable state directory. Returns how many emitter connections the open-file limit allows
    /// (`maxSources` or fewer, with a warning).
    func preflight(logger: Logger) throws -> Int {
        let budget = FileDescriptorBudget.current(httpMaxConnections: http.maxConnections)
        let sourceCap = budget.sourceCap(configured: maxSources)
        guard sourceCap > 0 else {
            throw AgentConfigurationError(.descriptorBudget, "the open file limit (\(budget.limit)) leaves no room for emitter connections: the agent keeps \(budget.reserved) descriptors for itself (raise LimitNOFILE= or lower --http-max-connections)")
        }
        if sourceCap < maxSources {
            logger.warning("fewer emitter connections than --max-sources: the open file limit allows no more", metadata: [
                "max_sources": "\(maxSources)", "allowed": "\(sourceCap)", "open_file_limit": "\(budget.limit)",
                "reserved": "\(budget.reserved)",
            ])
        }
        _ = try remoteWrite.targets()
        _ = try traceExport.parsedEndpoints()
        if let stateDirectory { try StateFile(directory: stateDirectory).prepare() }
        return sourceCap
    }
}
