import Foundation

/// Where remote write requests go, and how: checked at start, so a bad URL or an unreadable token file stops
/// the agent with one line instead of failing every push later.
public struct RemoteWriteConfiguration: Sendable {
    /// Receivers (`http://` or `https://host:port/path`); each gets every sample, through a queue of its own.
    public var urls: [String] = []
    /// How often the whole store is pushed (one sample per series each time).
    public var interval: Duration = .seconds(15)
    /// Bearer token or basic auth, and extra headers (`PushCredentials`).
    public var credentials = PushCredentials()
    /// CA, client certificate and key for `https://` receivers.
    public var tls = PushTLS()
    /// Read before every request (so a rotated token is picked up); sent as `Authorization: Bearer`.
    public var bearerTokenFile: String? {
        get { credentials.bearerTokenFile }
        set { credentials.bearerTokenFile = newValue }
    }
    /// Samples queued per receiver while it is down or slow; beyond it the oldest requests are dropped (values
    /// are cumulative: a later sample carries everything, so only resolution is lost) and counted as failed.
    public var maxPendingSamples = 2_000_000
    /// Time series per request (Prometheus' own `max_samples_per_send` is 2,000 by default).
    public var maxSeriesPerRequest = 2_000
    public var requestTimeout: Duration = .seconds(30)
    /// Also push native histograms (as `/metrics` serves them in protobuf). Off by default: a receiver without
    /// native histogram support refuses the whole request (Prometheus needs `--enable-feature=native-histograms`).
    public var nativeHistograms = false
    /// Also push the agent's own series (`danube_agent_*`, `process_*`), so that its health alerts work in a
    /// push-only deployment.
    public var includeAgentSeries = true

    public init() {}

    /// The receivers, parsed; throws a one-line reason for the first bad one, a token file that cannot be read, or
    /// TLS files that do not load.
    public func targets() throws(AgentConfigurationError) -> [RemoteWriteTarget] {
        try credentials.check(prefix: "--remote-write")
        guard interval > .zero, maxPendingSamples > 0, maxSeriesPerRequest > 0, requestTimeout > .zero else {
            throw AgentConfigurationError(.remoteWrite, "remote write: interval, queue size, request size and timeout must be positive")
        }
        let endpoints = try urls.map { url throws(AgentConfigurationError) in
            try PushEndpoint(url, option: "--remote-write-url", example: "http://mimir:9009/api/v1/push",
                             credentialsOption: "--remote-write-basic-auth-user and --remote-write-basic-auth-password-file")
        }
        try tls.check(prefix: "--remote-write", endpoints: endpoints)
        return endpoints
    }
}

/// A remote write receiver's address.
public typealias RemoteWriteTarget = PushEndpoint
