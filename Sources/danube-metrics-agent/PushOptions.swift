import ArgumentParser
import DanubeMetricsAgent
import Foundation

/// Where the agent pushes (Prometheus remote write, OTLP spans) and how it authenticates there.
struct PushOptions: ParsableArguments {
    @Option(name: .customLong("remote-write-url"), help: ArgumentHelp(
        "Also push every series with Prometheus remote write to this receiver (http:// or https://host:port/path; repeatable), e.g. a Prometheus with --web.enable-remote-write-receiver, Mimir, Thanos Receive or VictoriaMetrics.",
        valueName: "url"))
    var remoteWriteURLs: [String] = []

    @Option(name: .customLong("remote-write-interval"), parsing: .unconditional, help: ArgumentHelp(
        "How often the whole store is pushed to each remote write receiver.", valueName: "duration"))
    var remoteWriteInterval = DurationArgument(argument: "15s")!

    @Option(name: .customLong("remote-write-bearer-token-file"), help: ArgumentHelp(
        "File holding a bearer token for the remote write receivers (read before each request).", valueName: "path"))
    var remoteWriteBearerTokenFile: String?

    @Option(name: .customLong("remote-write-basic-auth-user"), help: ArgumentHelp(
        "Basic auth user for the remote write receivers (with --remote-write-basic-auth-password-file).", valueName: "user"))
    var remoteWriteBasicAuthUser: String?

    @Option(name: .customLong("remote-write-basic-auth-password-file"), help: ArgumentHelp(
        "File holding the basic auth password (read before each request).", valueName: "path"))
    var remoteWriteBasicAuthPasswordFile: String?

    @Option(name: .customLong("remote-write-header"), help: ArgumentHelp(
        "An extra header on every remote write request, e.g. \"X-Scope-OrgID: tenant-a\" (repeatable).", valueName: "name: value"))
    var remoteWriteHeaders: [String] = []

    @Option(name: .customLong("remote-write-ca-file"), help: ArgumentHelp(
        "CA certificate(s) (PEM) the https remote write receivers' certificates must chain to, instead of the system's store.", valueName: "path"))
    var remoteWriteCAFile: String?

    @Option(name: .customLong("remote-write-cert-file"), help: ArgumentHelp(
        "Client certificate (PEM) for https remote write receivers that require one (with --remote-write-key-file).", valueName: "path"))
    var remoteWriteCertFile: String?

    @Option(name: .customLong("remote-write-key-file"), help: ArgumentHelp(
        "The client certificate's private key (PEM, unencrypted).", valueName: "path"))
    var remoteWriteKeyFile: String?

    @Option(name: .customLong("remote-write-max-pending-samples"), help: ArgumentHelp(
        "Samples queued per receiver while it is down; beyond it the oldest are dropped (later pushes carry the same cumulative values).",
        valueName: "count"))
    var remoteWriteMaxPendingSamples = 2_000_000

    @Option(name: .customLong("remote-write-timeout"), parsing: .unconditional, help: ArgumentHelp(
        "How long one remote write request may take, from connecting to the response's status line; then it is retried.",
        valueName: "duration"))
    var remoteWriteTimeout = DurationArgument(argument: "30s")!

    @Flag(name: .customLong("remote-write-native-histograms"), help: ArgumentHelp(
        "Also push the latency families' native histograms; the receivers must accept them (Prometheus: --enable-feature=native-histograms)."))
    var remoteWriteNativeHistograms = false

    @Flag(name: .customLong("remote-write-agent-metrics"), inversion: .prefixedNo, help: ArgumentHelp(
        "Also push the agent's own danube_agent_* and process_* series, so that alerts on the agent work without a scrape."))
    var remoteWriteAgentMetrics = true

    @Option(name: .customLong("otlp-endpoint"), help: ArgumentHelp(
        "Export the spans emitters record with OTLP/HTTP protobuf to this receiver (http:// or https://host:4318/v1/traces; repeatable), e.g. an OpenTelemetry Collector, Tempo, Jaeger or Phoenix. Without one, emitters send no spans.",
        valueName: "url"))
    var otlpEndpoints: [String] = []

    @Option(name: .customLong("otlp-bearer-token-file"), help: ArgumentHelp(
        "File holding a bearer token for the OTLP receivers (read before each request).", valueName: "path"))
    var otlpBearerTokenFile: String?

    @Option(name: .customLong("otlp-basic-auth-user"), help: ArgumentHelp(
        "Basic auth user for the OTLP receivers (with --otlp-basic-auth-password-file).", valueName: "user"))
    var otlpBasicAuthUser: String?

    @Option(name: .customLong("otlp-basic-auth-password-file"), help: ArgumentHelp(
        "File holding the OTLP basic auth password (read before each request).", valueName: "path"))
    var otlpBasicAuthPasswordFile: String?

    @Option(name: .customLong("otlp-header"), help: ArgumentHelp(
        "An extra header on every OTLP request, e.g. \"X-Scope-OrgID: tenant-a\" (repeatable).", valueName: "name: value"))
    var otlpHeaders: [String] = []

    @Option(name: .customLong("otlp-ca-file"), help: ArgumentHelp(
        "CA certificate(s) (PEM) the https OTLP receivers' certificates must chain to, instead of the system's store.", valueName: "path"))
    var otlpCAFile: String?

    @Option(name: .customLong("otlp-cert-file"), help: ArgumentHelp(
        "Client certificate (PEM) for https OTLP receivers that require one (with --otlp-key-file).", valueName: "path"))
    var otlpCertFile: String?

    @Option(name: .customLong("otlp-key-file"), help: ArgumentHelp(
        "The client certificate's private key (PEM, unencrypted).", valueName: "path"))
    var otlpKeyFile: String?

    @Option(name: .customLong("otlp-max-queued-spans"), help: ArgumentHelp(
        "Spans held per OTLP receiver while it is down or slow; beyond it the oldest are dropped (counted).", valueName: "count"))
    var otlpMaxQueuedSpans = TraceExportConfiguration().maxQueuedSpans

    /// `"Name: value"` headers, as curl writes them; one without a colon keeps an empty name (refused by the check).
    static func credentials(bearerTokenFile: String?, user: String?, passwordFile: String?, headers: [String]) -> PushCredentials {
        var credentials = PushCredentials()
        credentials.bearerTokenFile = bearerTokenFile
        credentials.basicAuthUser = user
        credentials.basicAuthPasswordFile = passwordFile
        for header in headers {
            let parts = header.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let name = parts.count == 2 ? parts[0].trimmingCharacters(in: .whitespaces) : ""
            credentials.headers[name] = parts.count == 2 ? parts[1].trimmingCharacters(in: .whitespaces) : header
        }
        return credentials
    }

    static func tls(ca: String?, cert: String?, key: String?) -> PushTLS {
        var tls = PushTLS()
        tls.caFile = ca
        tls.certFile = cert
        tls.keyFile = key
        return tls
    }

    var traceExport: TraceExportConfiguration {
        var traceExport = TraceExportConfiguration()
        traceExport.endpoints = otlpEndpoints
        traceExport.maxQueuedSpans = otlpMaxQueuedSpans
        traceExport.tls = Self.tls(ca: otlpCAFile, cert: otlpCertFile, key: otlpKeyFile)
        traceExport.credentials = Self.credentials(bearerTokenFile: otlpBearerTokenFile, user: otlpBasicAuthUser,
                                                   passwordFile: otlpBasicAuthPasswordFile, headers: otlpHeaders)
        return traceExport
    }

    var remoteWrite: RemoteWriteConfiguration {
        var remoteWrite = RemoteWriteConfiguration()
        remoteWrite.urls = remoteWriteURLs
        remoteWrite.interval = remoteWriteInterval.duration
        remoteWrite.tls = Self.tls(ca: remoteWriteCAFile, cert: remoteWriteCertFile, key: remoteWriteKeyFile)
        remoteWrite.credentials = Self.credentials(bearerTokenFile: remoteWriteBearerTokenFile, user: remoteWriteBasicAuthUser,
                                                   passwordFile: remoteWriteBasicAuthPasswordFile, headers: remoteWriteHeaders)
        remoteWrite.maxPendingSamples = remoteWriteMaxPendingSamples
        remoteWrite.requestTimeout = remoteWriteTimeout.duration
        remoteWrite.nativeHistograms = remoteWriteNativeHistograms
        remoteWrite.includeAgentSeries = remoteWriteAgentMetrics
        return remoteWrite
    }

}
