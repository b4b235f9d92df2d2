import Foundation
import NIOCore

/// Where one push receiver listens (a remote write receiver, an OTLP endpoint): checked at start, so a bad URL
/// stops the agent with one line instead of failing every push later.
public struct PushEndpoint: Sendable, Equatable {
    public let url: String
    let host: String
    let port: Int
    /// Path and query, as sent in the request line.
    let path: String
    /// `https://`: the request goes over TLS (`PushTLS`).
    let tls: Bool

    /// `option` names the command line option in errors (whose code is `code`); `example` shows a URL that would do.
    init(_ url: String, option: String, example: String, credentialsOption: String,
         code: AgentConfigurationError.Code = .remoteWriteURL) throws(AgentConfigurationError) {
        guard let parsed = URLComponents(string: url), let scheme = parsed.scheme?.lowercased(), let host = parsed.host, !host.isEmpty else {
            throw AgentConfigurationError(code, "\(option) \(url) is not a URL such as \(example)")
        }
        guard scheme == "http" || scheme == "https" else {
            throw AgentConfigurationError(code, "\(option) \(url): only http and https are supported")
        }
        guard parsed.user == nil, parsed.password == nil else {
            throw AgentConfigurationError(code, "\(option) \(url): credentials in the URL would be logged; use \(credentialsOption)")
        }
        self.url = url
        self.host = host
        tls = scheme == "https"
        port = parsed.port ?? (tls ? 443 : 80)
        let query = parsed.percentEncodedQuery.map { "?" + $0 } ?? ""
        path = (parsed.percentEncodedPath.isEmpty ? "/" : parsed.percentEncodedPath) + query
    }

    private init(url: String, host: String, port: Int, path: String, tls: Bool) {
        self.url = url
        self.host = host
        self.port = port
        self.path = path
        self.tls = tls
    }

    /// The same receiver at another path (its URL as given, for logs and labels).
    func withPath(_ path: String) -> PushEndpoint { PushEndpoint(url: url, host: host, port: port, path: path, tls: tls) }

    /// The name TLS sends (SNI) and checks the certificate against; nil for an IP address literal, which is
    /// checked against the certificate's IP SANs instead (a host such as `cafe.de`, all hex digits and dots, is a
    /// name).
    var serverName: String? {
        let literal = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return (try? SocketAddress(ipAddress: literal, port: 0)) == nil ? host : nil
    }

    /// The Host header: the port only when it is not the scheme's default.
    var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (tls ? 443 : 80) ? name : "\(name):\(port)"
    }
}
