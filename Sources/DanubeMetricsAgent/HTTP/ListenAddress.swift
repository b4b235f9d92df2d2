/// An HTTP listen address as operators write it: `127.0.0.1:9470`, `[::1]:9470`, `0.0.0.0:9470` or `:9470`
/// (every interface).
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init(parsing text: String) throws {
        guard let colon = text.lastIndex(of: ":") else {
            throw AgentConfigurationError(.listenAddress, "listen address \"\(text)\" needs a port, as in 127.0.0.1:9470")
        }
        var host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else {
            throw AgentConfigurationError(.listenAddress, "listen address \"\(text)\" has no valid port (0-65535)")
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "::" }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Why the agent cannot start or go on as configured: `code` for callers and tests to switch on,
/// `description` the one line an operator reads (which setting, which path, and why).
public struct AgentConfigurationError: Error, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        /// A `--listen` address that does not parse.
        case listenAddress
        /// An address that cannot be bound (in use, not permitted, no such address).
        case listen
        /// The ingest socket path: taken by another process, not a socket, or not bindable.
        case ingestSocket
        /// The open-file limit leaves no descriptors for emitter connections.
        case descriptorBudget
        /// The state directory cannot be created, is not a directory, or cannot be written or synced.
        case stateDirectory
        /// A state file or log write failed.
        case stateWrite
        /// A saved state entry contradicts itself or the catalog.
        case stateEntry
        /// `--allow-user` / `--allow-group` names no such user or group.
        case unknownPrincipal
        /// Peer credentials of a connection cannot be read.
        case peerCredentials
        /// A `--remote-write-url` that cannot be used (not a URL, https, credentials in it).
        case remoteWriteURL
        /// Another remote write setting: interval, queue, request size, timeout.
        case remoteWrite
        /// The remote write bearer token file is unreadable or empty.
        case bearerToken
        /// An `--otlp-endpoint` that cannot be used (not a URL, https, credentials in it).
        case otlpEndpoint
        /// Another OTLP export setting: queue sizes, batch size, interval, timeout.
        case otlpExport
        /// The `--web.config.file` or a file it names: unreadable, invalid, a key that does not match its
        /// certificate, a hash that is not bcrypt.
        case webConfig
        /// A push's TLS files (`--remote-write-ca-file`, `-cert-file`, `-key-file`, their OTLP twins).
        case pushTLS
    }

    public var code: Code
    public var description: String
    public init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }
}
