import Foundation

/// How a push (remote write, OTLP) authenticates and which headers it adds: a bearer token file, or basic auth
/// (a user and a password file), both read before every request so that rotated secrets are picked up without a
/// restart, and extra headers (`X-Scope-OrgID` for Mimir's tenants). Checked at start; a secret file that cannot be
/// read later fails that request (retried, counted as `credentials`): a request never goes without its credentials.
public struct PushCredentials: Sendable, Equatable {
    public var bearerTokenFile: String?
    public var basicAuthUser: String?
    public var basicAuthPasswordFile: String?
    /// Extra request headers, by name.
    public var headers: [String: String] = [:]

    public init() {}

    /// Headers the push itself sets, or credentials set another way: not accepted as extra headers.
    static let reservedHeaders: Set<String> = ["host", "content-length", "content-type", "content-encoding", "authorization",
                                               "connection", "transfer-encoding", "user-agent", "x-prometheus-remote-write-version"]

    /// Checks the settings and that the secret files can be read now; `prefix` names the options (`--remote-write`).
    func check(prefix: String) throws(AgentConfigurationError) {
        if bearerTokenFile != nil, basicAuthUser != nil || basicAuthPasswordFile != nil {
            throw AgentConfigurationError(.bearerToken, "\(prefix)-bearer-token-file and \(prefix)-basic-auth-* exclude each other")
        }
        if (basicAuthUser == nil) != (basicAuthPasswordFile == nil) {
            throw AgentConfigurationError(.bearerToken, "\(prefix)-basic-auth-user and \(prefix)-basic-auth-password-file go together")
        }
        if let user = basicAuthUser, user.isEmpty || user.contains(":") || user.unicodeScalars.contains(where: { $0.value < 0x20 }) {
            throw AgentConfigurationError(.bearerToken, "\(prefix)-basic-auth-user \"\(user)\" is empty or holds a colon or a control character")
        }
        for (name, value) in headers {
            let token = CharacterSet(charactersIn: "!#$%&'*+-.^_`|~").union(.alphanumerics)
            guard !name.isEmpty, name.unicodeScalars.allSatisfy({ $0.isASCII && token.contains($0) }) else {
                throw AgentConfigurationError(.remoteWrite, "\(prefix)-header \"\(name)\" is not a header name")
            }
            guard !Self.reservedHeaders.contains(name.lowercased()) else {
                throw AgentConfigurationError(.remoteWrite, "\(prefix)-header \(name) is set by the agent itself (credentials have options of their own)")
            }
            guard !value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
                throw AgentConfigurationError(.remoteWrite, "\(prefix)-header \(name) has a control character in its value")
            }
        }
        _ = try requestHeaders()
    }

    /// The headers of one request: `Authorization` from the secret file read now, then the extra ones.
    func requestHeaders() throws(AgentConfigurationError) -> [(String, String)] {
        var result: [(String, String)] = []
        if let file = bearerTokenFile {
            result.append(("Authorization", "Bearer \(try Self.readSecret(file, what: "bearer token"))"))
        } else if let user = basicAuthUser, let file = basicAuthPasswordFile {
            let pair = Data("\(user):\(try Self.readSecret(file, what: "basic auth password"))".utf8).base64EncodedString()
            result.append(("Authorization", "Basic \(pair)"))
        }
        return result + headers.sorted { $0.key < $1.key }
    }

    /// A secret file's content, without surrounding whitespace; empty or unreadable is an error.
    static func readSecret(_ path: String, what: String) throws(AgentConfigurationError) -> String {
        do {
            let secret = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !secret.isEmpty else { throw AgentConfigurationError(.bearerToken, "\(what) file \(path) is empty") }
            return secret
        } catch let error as AgentConfigurationError {
            throw error
        } catch {
            throw AgentConfigurationError(.bearerToken, "\(what) file \(path) cannot be read: \(error.localizedDescription)")
        }
    }
}
