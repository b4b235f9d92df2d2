import ArgumentParser
import DanubeMetricsAgent
import DanubeMetricsCatalog
import DanubeMetricsSystemd
import DanubeMetricsWire
import Foundation
import Logging
import ServiceLifecycle

@main
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "danube-metrics-agent",
        abstract: "Collect metric deltas from Danube emitters and serve them to Prometheus.",
        discussion: """
            Emitters (the Danube broker, the WAL writer) connect to the ingest socket and push compact binary \
            deltas; the agent aggregates them and serves Prometheus text and OpenMetrics on /metrics.

            The ingest socket defaults to $\(DefaultPaths.socketEnvironmentVariable) if set, else \
            /run/danube-metrics-agent/ingest.sock when run as root, else \
            $XDG_RUNTIME_DIR/danube-metrics-agent/ingest.sock, else /tmp/danube-metrics-agent-<uid>/ingest.sock.

            A <duration> is a number with a unit: ms, s, m, h or d (250ms, 15s, 7d); a bare number is seconds. \
            A <size> is a number of bytes with KiB, MiB, GiB or TiB (powers of 1024: 64MiB, 2GiB); a bare number \
            is bytes.
            """,
        version: BuildInfo.line)

    @Option(name: .customLong("ingest-socket"), help: ArgumentHelp("Path of the ingest socket.", valueName: "path"))
    var ingestSocket: String?

    @Option(name: .customLong("ingest-socket-mode"), help: ArgumentHelp("File mode of the ingest socket, in octal.", valueName: "mode"))
    var ingestSocketMode = "0660"

    @Option(name: .customLong("listen"), help: ArgumentHelp(
        "HTTP address to serve /metrics on; repeat for several (e.g. 127.0.0.1:9470, [::1]:9470, :9470). Default: $DANUBE_METRICS_LISTEN if set, else 127.0.0.1:9470.",
        valueName: "host:port"))
    var listen: [String] = []

    /// `--listen`, else `$DANUBE_METRICS_LISTEN` (as `./dev demo` reads it), else loopback on Prometheus' port.
    var listenAddresses: [String] {
        if !listen.isEmpty { return listen }
        return [ProcessInfo.processInfo.environment["DANUBE_METRICS_LISTEN"].flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1:9470"]
    }

    @Option(name: .customLong("web.config.file"), help: ArgumentHelp(
        "Web configuration file (the Prometheus exporters' format) for TLS, client certificates, basic auth and response headers on every HTTP listener; re-read within a second of a change. See docs/SECURITY.md.",
        valueName: "path"))
    var webConfigFile: String?

    @Flag(name: .customLong("hash-password"), help: ArgumentHelp(
        "Read a password from standard input (its first line) and print its bcrypt hash for the web configuration's basic_auth_users, then exit."))
    var hashPassword = false

    @Option(name: .customLong("gauge-grace"), parsing: .unconditional, help: ArgumentHelp(
        "How long a disconnected source's gauges stay on /metrics (e.g. 15s, 500ms).", valueName: "duration"))
    var gaugeGrace = DurationArgument(argument: "15s")!

    @Option(name: .customLong("state-dir"), help: ArgumentHelp(
        "Directory where counters, histograms and per-source sequences are saved at every checkpoint and restored on start; created when missing (default: $STATE_DIRECTORY, which systemd's StateDirectory= sets; otherwise nothing is kept).",
        valueName: "path"))
    var stateDirectory: String?

    @Option(name: .customLong("checkpoint-interval"), parsing: .unconditional, help: ArgumentHelp(
        "With a state directory: how often, at most, the state is written and sources acknowledged; /metrics, which shows what is durable, is up to this far behind (e.g. 100ms, 1s).",
        valueName: "duration"))
    var checkpointInterval = DurationArgument(argument: "100ms")!

    @OptionGroup(title: "Remote write and OTLP export")
    var push: PushOptions

    @Option(name: .customLong("forget-sources-after"), parsing: .unconditional, help: ArgumentHelp(
        "Forget an emitter instance away for this long (its sequence is no longer kept).", valueName: "duration"))
    var forgetSourcesAfter = DurationArgument(argument: "7d")!

    @Option(name: .customLong("allow-user"), help: ArgumentHelp(
        "A user (name or uid) allowed to connect to the ingest socket; repeat. With no --allow-user/--allow-group, the socket's file mode decides.",
        valueName: "user"))
    var allowUsers: [String] = []

    @Option(name: .customLong("allow-group"), help: ArgumentHelp(
        "A group (name or gid), primary or supplementary, allowed to connect to the ingest socket; repeat.", valueName: "group"))
    var allowGroups: [String] = []

    @Option(name: .customLong("max-sources"), parsing: .unconditional, help: ArgumentHelp(
        "Emitter connections served at once (lowered, with a warning, to what the open file limit allows).", valueName: "n"))
    var maxSources = 1_024

    @Option(name: .customLong("hello-timeout"), parsing: .unconditional, help: ArgumentHelp(
        "Time a new emitter connection has to say HELLO before it is closed.", valueName: "duration"))
    var helloTimeout = DurationArgument(argument: "10s")!

    @Option(name: .customLong("max-frames-per-second"), parsing: .unconditional, help: ArgumentHelp(
        "Frames per second one emitter connection may send before the agent stops reading it for a while (0: no limit).",
        valueName: "n"))
    var maxFramesPerSecond = 5_000

    @Option(name: .customLong("http-max-connections"), parsing: .unconditional, help: ArgumentHelp(
        "HTTP connections open at once; at the cap a new one evicts the oldest idle one.", valueName: "n"))
    var httpMaxConnections = 64

    @Option(name: .customLong("http-request-timeout"), parsing: .unconditional, help: ArgumentHelp(
        "Time an HTTP request may take to arrive (from connect or the previous response), e.g. 10s.", valueName: "duration"))
    var httpRequestTimeout = DurationArgument(argument: "10s")!

    @Option(name: .customLong("max-series-per-source"), parsing: .unconditional, help: ArgumentHelp("Most series one emitter connection may define.", valueName: "n"))
    var maxSeriesPerSource = WireLimits.default.maxSeriesPerConnection

    @Option(name: .customLong("max-series"), parsing: .unconditional, help: ArgumentHelp(
        "Most series the agent holds from all emitters; new series beyond it are refused (limit_exceeded, counted).", valueName: "n"))
    var maxSeries = AggregationStore.Limits().maxSeries

    @Option(name: .customLong("memory-limit"), parsing: .unconditional, help: ArgumentHelp(
        "Most memory the series may take (labels, values, buckets, native windows, as danube_agent_series_memory_bytes counts it), e.g. 2GiB; new series beyond it are refused.",
        valueName: "size"))
    var memoryLimit = ByteSizeArgument(argument: "2GiB")!

    @Option(name: .customLong("exemplar-memory-limit"), parsing: .unconditional, help: ArgumentHelp(
        "Most memory the latest exemplars may take, e.g. 64MiB; beyond it new ones are dropped (counted).", valueName: "size"))
    var exemplarMemoryLimit = ByteSizeArgument(argument: "64MiB")!

    @Option(name: .customLong("series-ttl"), parsing: .unconditional, help: ArgumentHelp(
        "Forget series no connected emitter has defined and nothing updated for this long, e.g. 1h (default: keep every series). A counter that comes back starts again from zero (a counter reset).",
        valueName: "duration"))
    var seriesTTL: DurationArgument?

    @Option(name: .customLong("catalog"), help: ArgumentHelp(
        "JSON file whose families replace or add to the built-in Danube catalog (see docs/CATALOG.md).", valueName: "path"))
    var catalogFile: String?

    @Option(name: .customLong("catalog-mode"), help: ArgumentHelp(
        "strict: refuse families the catalog does not know; permissive: accept them as uncatalogued families.",
        valueName: "mode"))
    var catalogMode = CatalogMode.permissive

    @Option(name: .customLong("max-series-per-family"), parsing: .unconditional, help: ArgumentHelp(
        "Series limit of each uncatalogued family (catalogued families carry their own).", valueName: "n"))
    var maxSeriesPerFamily = 10_000

    enum CatalogFormat: String, ExpressibleByArgument, CaseIterable {
        case markdown, json, rust
    }

    @Option(name: .customLong("print-catalog"), help: ArgumentHelp(
        "Print the catalog in use (built in, overlaid by --catalog) as markdown, json, or rust (the histogram bucket table of the Rust emitter), and exit.", valueName: "format"))
    var printCatalog: CatalogFormat?

    @Option(name: .customLong("log-level"), help: ArgumentHelp(
        "trace, debug, info, notice, warning (or warn), error or critical.", valueName: "level"))
    var logLevel = "info"

    enum LogFormat: String, ExpressibleByArgument, CaseIterable {
        /// `text` is logfmt: the name earlier versions used for their lines on stderr.
        case auto, journal, logfmt, json, text
    }

    @Option(name: .customLong("log-format"), help: ArgumentHelp(
        "journal (structured entries to journald), logfmt (ts=... level=... msg=\"...\" key=value lines on stderr; text is the same), json (one object per line on stderr), or auto: journal when stderr is connected to journald, else logfmt.",
        valueName: "format"))
    var logFormat = LogFormat.auto

    /// swift-log's level names, and `warn` as other tools spell it.
    static func level(_ text: String) -> Logger.Level? {
        text == "warn" ? .warning : Logger.Level(rawValue: text)
    }

    func validate() throws {
        guard Self.level(logLevel) != nil else {
            throw ValidationError("unknown log level \"\(logLevel)\"; use trace, debug, info, notice, warning (warn), error or critical")
        }
        guard mode_t(ingestSocketMode, radix: 8) != nil else {
            throw ValidationError("--ingest-socket-mode \"\(ingestSocketMode)\" is not an octal file mode such as 0660")
        }
        // Each check names only the option it is about, and the value given.
        try positive("--max-series-per-source", maxSeriesPerSource)
        try positive("--max-series", maxSeries)
        try positive("--memory-limit", memoryLimit.bytes, shown: memoryLimit.description)
        if let seriesTTL, seriesTTL.duration < .seconds(1) || seriesTTL.duration > SeriesActivity.maxTTL {
            throw ValidationError("--series-ttl \(seriesTTL) must be between 1s and 365d")
        }
        try positive("--max-series-per-family", maxSeriesPerFamily)
        if logFormat == .journal && !JournalLogHandler.isReachable() {
            throw ValidationError("--log-format journal: journald is not reachable at \(JournalLogHandler.socketPath), so every log line would be lost; use --log-format logfmt")
        }
        try positive("--hello-timeout", helloTimeout)
        try positive("--max-sources", maxSources)
        guard maxFramesPerSecond >= 0 else { throw ValidationError("--max-frames-per-second must not be negative (got \(maxFramesPerSecond))") }
        try positive("--http-max-connections", httpMaxConnections)
        try positive("--http-request-timeout", httpRequestTimeout)
        // Emitters replace a connection after 10 s without acknowledgement; checkpoints must come well within that.
        guard checkpointInterval.duration > .zero, checkpointInterval.duration <= .seconds(5) else {
            throw ValidationError("--checkpoint-interval \(checkpointInterval) must be positive and at most 5s (emitters give up on a connection after 10 s without acknowledgement)")
        }
        for user in allowUsers {
            do { _ = try PeerAccess.uid(user) } catch { throw ValidationError("--allow-user: \(error)") }
        }
        for group in allowGroups {
            do { _ = try PeerAccess.gid(group) } catch { throw ValidationError("--allow-group: \(error)") }
        }
        for address in listenAddresses {
            do { _ = try ListenAddress(parsing: address) } catch { throw ValidationError("\(error)") }
        }
        do { _ = try push.remoteWrite.targets() } catch { throw ValidationError("\(error)") }
        do { _ = try push.traceExport.parsedEndpoints() } catch { throw ValidationError("\(error)") }
    }

    private func positive(_ option: String, _ value: Int, shown: String? = nil) throws {
        guard value > 0 else { throw ValidationError("\(option) must be at least 1 (got \(shown ?? String(value)))") }
    }

    private func positive(_ option: String, _ value: DurationArgument) throws {
        guard value.duration > .zero else { throw ValidationError("\(option) must be longer than 0 (got \(value))") }
    }

    /// The built-in catalog, overlaid by the operator file if one is given.
    func loadCatalog() throws(CatalogError) -> Catalog {
        guard let catalogFile else { return BuiltinCatalog.catalog }
        return try BuiltinCatalog.catalog.overlaid(with: CatalogFile.load(path: catalogFile))
    }

    func run() async throws {
        let catalog: Catalog
        do {
            catalog = try loadCatalog()
        } catch {
            FileHandle.standardError.write(Data("danube-metrics-agent: \(error.message)\n".utf8))
            throw ExitCode(2)
        }
        if hashPassword {
            let password = readLine(strippingNewline: true) ?? ""
            guard !password.isEmpty, let hash = WebConfiguration.bcryptHash(password) else {
                FileHandle.standardError.write(Data("danube-metrics-agent: --hash-password: no password on standard input\n".utf8))
                throw ExitCode(2)
            }
            print(hash)
            return
        }
        switch printCatalog {
        case .markdown?:
            print(CatalogDocument.markdown(catalog), terminator: "")
            return
        case .json?:
            FileHandle.standardOutput.write(CatalogFile(catalog).encoded() + Data("\n".utf8))
            return
        case .rust?:
            print(RustCatalogTable.render(catalog), terminator: "")
            return
        case nil:
            break
        }
        let level = Self.level(logLevel)!
        let journal = logFormat == .journal || (logFormat == .auto && JournalLogHandler.stderrIsJournal)
        LoggingSystem.bootstrap { label in
            if journal {
                var handler = JournalLogHandler(label: label, identifier: "danube-metrics-agent")
                handler.logLevel = level
                return handler
            }
            var handler = LineLogHandler(label: label, format: logFormat == .json ? .json : .logfmt)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "danube-metrics-agent")
        let activated: ActivatedSockets
        do {
            activated = try ActivatedSockets.fromEnvironment()
        } catch {
            logger.critical("cannot use the sockets systemd passed", metadata: ["error": "\(error)"])
            throw ExitCode.failure
        }
        var configuration = AgentConfiguration(
            ingestSocketPath: ingestSocket ?? DefaultPaths.ingestSocket(environment: ProcessInfo.processInfo.environment))
        configuration.ingestSocketMode = mode_t(ingestSocketMode, radix: 8)!
        configuration.httpListen = try listenAddresses.map(ListenAddress.init(parsing:))
        configuration.webConfigFile = webConfigFile
        configuration.gaugeGrace = gaugeGrace.duration
        configuration.limits.maxSeriesPerConnection = maxSeriesPerSource
        configuration.stateDirectory = stateDirectory
            ?? ProcessInfo.processInfo.environment["STATE_DIRECTORY"].flatMap { $0.split(separator: ":").first.map(String.init) }
        configuration.checkpointInterval = checkpointInterval.duration
        configuration.remoteWrite = push.remoteWrite
        configuration.traceExport = push.traceExport
        configuration.sourceRetention = forgetSourcesAfter.duration
        configuration.peerAccess = PeerAccess(users: Set(try allowUsers.map(PeerAccess.uid)), groups: Set(try allowGroups.map(PeerAccess.gid)))
        configuration.maxSources = maxSources
        configuration.helloTimeout = helloTimeout.duration
        // Every emitter connection holds a descriptor: use all the hard limit allows (systemd's soft default is
        // 1024); the agent then derives its source cap from it.
        let descriptors = FileDescriptorBudget.raiseSoftLimit()
        if descriptors.after > descriptors.before {
            logger.info("raised the open file limit", metadata: ["from": "\(descriptors.before)", "to": "\(descriptors.after)"])
        }
        configuration.http.maxConnections = httpMaxConnections
        configuration.http.requestTimeout = httpRequestTimeout.duration
        configuration.maxFramesPerSecondPerSource = maxFramesPerSecond
        configuration.catalog = catalog
        configuration.catalogMode = catalogMode
        configuration.uncataloguedFamilyLimit = maxSeriesPerFamily
        configuration.storeLimits = AggregationStore.Limits(maxSeries: maxSeries, maxBytes: memoryLimit.bytes,
                                                            maxExemplarBytes: exemplarMemoryLimit.bytes, seriesTTL: seriesTTL?.duration)
        configuration.activatedIngestSocket = activated.ingest
        configuration.activatedHTTPSockets = activated.http
        let agent = try Agent(configuration: configuration, logger: logger, supervisor: SystemdSupervisor())
        // Only the web configuration is reloadable (it is also re-read within a second of a change; the rest is on
        // the command line, and a restart loses nothing), so SIGHUP must not kill the agent as its default action
        // would: it re-reads the web configuration if there is one.
        signal(SIGHUP, SIG_IGN)
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        hangup.setEventHandler { [webConfigFile] in
            if webConfigFile != nil {
                if !agent.reloadWebConfiguration() { logger.notice("SIGHUP: the web configuration is unchanged") }
            } else {
                logger.notice("SIGHUP ignored: configuration is on the command line; restart the service to change it")
            }
        }
        hangup.resume()
        defer { hangup.cancel() }
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: agent)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            logger.critical("agent failed", metadata: ["error": "\(error)"])
            throw ExitCode.failure
        }
    }
}
