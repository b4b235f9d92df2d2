import NIOSSL

/// The web configuration file (`--web.config.file`) in the format Prometheus and its exporters read
/// (exporter-toolkit): `tls_server_config`, `http_server_config` and `basic_auth_users`. Read strictly as they do:
/// an unknown key, a bad value or a missing half of a certificate/key pair is an error naming the key, so a typo
/// never leaves `/metrics` open. Relative file paths are taken from the file's own directory.
///
/// Not supported, refused by name rather than ignored: `client_allowed_sans` (issue client certificates only to
/// scrapers from their own CA instead), `rate_limit`, and `curve_preferences` names BoringSSL lacks.
public struct WebConfiguration: Sendable, Equatable {
    /// How a client certificate is asked for, by exporter-toolkit's names.
    public enum ClientAuth: String, Sendable, CaseIterable {
        case noClientCert = "NoClientCert"
        case requestClientCert = "RequestClientCert"
        case requireAnyClientCert = "RequireAnyClientCert"
        case verifyClientCertIfGiven = "VerifyClientCertIfGiven"
        case requireAndVerifyClientCert = "RequireAndVerifyClientCert"
    }

    /// A PEM file's path, or the PEM itself inline (`cert` rather than `cert_file`).
    public enum PEMSource: Sendable, Equatable {
        case file(String)
        case inline(String)
    }

    public struct TLSServer: Sendable, Equatable {
        public var certificate: PEMSource
        public var key: PEMSource
        public var clientCA: PEMSource?
        public var clientAuth: ClientAuth = .noClientCert
        public var minVersion: TLSVersion = .tlsv12
        public var maxVersion: TLSVersion = .tlsv13
        /// TLS 1.2 cipher suites, in order (TLS 1.3's are fixed, as in Go); empty: BoringSSL's defaults.
        public var cipherSuites: [NIOTLSCipher] = []
        public var curves: [NIOTLSCurve] = []
        /// Accepted for compatibility; as in Go since 1.17, the server's order is used whatever it says.
        public var preferServerCipherSuites = true

        /// The files this configuration reads (re-read when they change).
        var files: [String] {
            [certificate, key, clientCA].compactMap { source in
                if case .file(let path) = source { return path }
                return nil
            }
        }
    }

    /// Plain HTTP when nil.
    public var tls: TLSServer?
    /// User name -> bcrypt hash. Empty: no authentication.
    public var basicAuthUsers: [String: String] = [:]
    /// Response headers added to every answer (only the security headers exporter-toolkit allows).
    public var headers: [String: String] = [:]

    public init() {}

    /// Headers that may be set, with their allowed values where the set is closed (as exporter-toolkit).
    static let allowedHeaders: [String: [String]] = [
        "Strict-Transport-Security": [], "X-Content-Type-Options": ["nosniff"], "X-Frame-Options": ["deny", "sameorigin"],
        "X-XSS-Protection": [], "Content-Security-Policy": [],
    ]

    static let versions: [String: TLSVersion] = ["TLS10": .tlsv1, "TLS11": .tlsv11, "TLS12": .tlsv12, "TLS13": .tlsv13]
    private static let rank: [TLSVersion: Int] = [.tlsv1: 0, .tlsv11: 1, .tlsv12: 2, .tlsv13: 3]
    static let curveNames: [String: NIOTLSCurve] = [
        "CurveP256": .secp256r1, "CurveP384": .secp384r1, "CurveP521": .secp521r1, "X25519": .x25519,
        "X25519MLKEM768": .x25519_MLKEM768,
    ]
    static let cipherNames: [String: NIOTLSCipher] = Dictionary(uniqueKeysWithValues: [
        ("TLS_RSA_WITH_AES_128_CBC_SHA", .TLS_RSA_WITH_AES_128_CBC_SHA), ("TLS_RSA_WITH_AES_256_CBC_SHA", .TLS_RSA_WITH_AES_256_CBC_SHA),
        ("TLS_RSA_WITH_AES_128_GCM_SHA256", .TLS_RSA_WITH_AES_128_GCM_SHA256),
        ("TLS_RSA_WITH_AES_256_GCM_SHA384", .TLS_RSA_WITH_AES_256_GCM_SHA384),
        ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", .TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA),
        ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", .TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA),
        ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", .TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA),
        ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", .TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA),
        ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
        ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384),
        ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
        ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
        ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
        ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
    ])

    /// A `basic_auth_users` entry's hash for `password`: bcrypt at `cost` (10, as htpasswd -B) with a random salt.
    public static func bcryptHash(_ password: String, cost: Int = 10) -> String? {
        BasicAuthVerifier.hash(password: Array(password.utf8), cost: cost)
    }

    /// Parses the file's text; `directory` resolves relative paths. Throws one line naming the key at fault.
    public static func parse(_ text: String, directory: String) throws(AgentConfigurationError) -> WebConfiguration {
        let root: YAMLNode?
        do {
            root = try YAMLNode.parse(text)
        } catch {
            throw AgentConfigurationError(.webConfig, "not YAML: \(error.description)")
        }
        var configuration = WebConfiguration()
        guard let root else { return configuration }  // an empty file: plain HTTP, no authentication
        let top = try mapping(root, "the file", keys: ["tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"])
        if top["rate_limit"] != nil { throw AgentConfigurationError(.webConfig, "rate_limit is not supported by this agent") }
        if let tls = top["tls_server_config"] { configuration.tls = try parseTLS(tls, directory: directory) }
        if let http = top["http_server_config"] {
            let fields = try mapping(http, "http_server_config", keys: ["headers", "http2"])
            if let http2 = fields["http2"] { _ = try bool(http2, "http_server_config.http2") }  // HTTP/1.1 is served either way
            if let headers = fields["headers"] {
                for (name, value) in try mapping(headers, "http_server_config.headers", keys: nil) {
                    let value = try string(value, "http_server_config.headers.\(name)")
                    guard let allowed = allowedHeaders[name] else {
                        throw AgentConfigurationError(.webConfig, "http_server_config.headers: \(name) can not be configured (only \(allowedHeaders.keys.sorted().joined(separator: ", ")))")
                    }
                    guard allowed.isEmpty || allowed.contains(value), !value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
                        throw AgentConfigurationError(.webConfig, "http_server_config.headers: \(name) \"\(value)\" is not one of \(allowed.joined(separator: ", "))")
                    }
                    configuration.headers[name] = value
                }
            }
        }
        if let users = top["basic_auth_users"] {
            for (user, hash) in try mapping(users, "basic_auth_users", keys: nil) {
                guard !user.isEmpty, !user.contains(":") else { throw AgentConfigurationError(.webConfig, "basic_auth_users: \"\(user)\" is not a user name") }
                let hash = try string(hash, "basic_auth_users.\(user)")
                guard BasicAuthVerifier.isBcrypt(hash) else {
                    throw AgentConfigurationError(.webConfig, "basic_auth_users.\(user) is not a bcrypt hash (make one with htpasswd -nBC 10 \(user))")
                }
                configuration.basicAuthUsers[user] = hash
            }
        }
        return configuration
    }

    private static func parseTLS(_ node: YAMLNode, directory: String) throws(AgentConfigurationError) -> TLSServer? {
        let fields = try mapping(node, "tls_server_config", keys: [
            "cert_file", "key_file", "cert", "key", "client_ca_file", "client_ca", "client_auth_type", "min_version", "max_version",
            "cipher_suites", "curve_preferences", "prefer_server_cipher_suites", "client_allowed_sans",
        ])
        func source(_ fileKey: String, _ inlineKey: String) throws(AgentConfigurationError) -> PEMSource? {
            let file = try fields[fileKey].map { node throws(AgentConfigurationError) in try string(node, "tls_server_config.\(fileKey)") } ?? ""
            let inline = try fields[inlineKey].map { node throws(AgentConfigurationError) in try string(node, "tls_server_config.\(inlineKey)") } ?? ""
            if !file.isEmpty, !inline.isEmpty { throw AgentConfigurationError(.webConfig, "tls_server_config: \(fileKey) and \(inlineKey) exclude each other") }
            if !file.isEmpty { return .file(file.hasPrefix("/") ? file : directory + "/" + file) }
            return inline.isEmpty ? nil : .inline(inline)
        }
        let certificate = try source("cert_file", "cert"), key = try source("key_file", "key"), clientCA = try source("client_ca_file", "client_ca")
        let authName = try fields["client_auth_type"].map { node throws(AgentConfigurationError) in try string(node, "tls_server_config.client_auth_type") } ?? ""
        // As exporter-toolkit: a section that sets nothing means plain HTTP.
        if certificate == nil, key == nil, clientCA == nil, authName.isEmpty { return nil }
        guard let certificate else { throw AgentConfigurationError(.webConfig, "tls_server_config: missing one of cert or cert_file") }
        guard let key else { throw AgentConfigurationError(.webConfig, "tls_server_config: missing one of key or key_file") }
        var tls = TLSServer(certificate: certificate, key: key, clientCA: clientCA)
        if authName == "RequireClientCert" {
            tls.clientAuth = .requireAnyClientCert  // exporter-toolkit's old name
        } else if !authName.isEmpty {
            guard let auth = ClientAuth(rawValue: authName) else {
                throw AgentConfigurationError(.webConfig, "tls_server_config.client_auth_type \"\(authName)\" is not one of \(ClientAuth.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            tls.clientAuth = auth
        }
        if clientCA != nil, tls.clientAuth == .noClientCert {
            throw AgentConfigurationError(.webConfig, "tls_server_config: client_ca_file is set but client_auth_type asks for no client certificate")
        }
        if tls.clientAuth == .requireAndVerifyClientCert || tls.clientAuth == .verifyClientCertIfGiven, clientCA == nil {
            throw AgentConfigurationError(.webConfig, "tls_server_config: client_auth_type \(tls.clientAuth.rawValue) needs client_ca_file")
        }
        if fields["client_allowed_sans"] != nil {
            throw AgentConfigurationError(.webConfig, "tls_server_config.client_allowed_sans is not supported by this agent: issue scrapers' certificates from a CA of their own")
        }
        for (key, keyPath) in [("min_version", \TLSServer.minVersion), ("max_version", \TLSServer.maxVersion)] {
            guard let node = fields[key] else { continue }
            let name = try string(node, "tls_server_config.\(key)")
            guard let version = versions[name] else {
                throw AgentConfigurationError(.webConfig, "tls_server_config.\(key) \"\(name)\" is not one of TLS10, TLS11, TLS12, TLS13")
            }
            tls[keyPath: keyPath] = version
        }
        if rank[tls.minVersion, default: 0] > rank[tls.maxVersion, default: 0] { throw AgentConfigurationError(.webConfig, "tls_server_config: min_version is above max_version") }
        if let node = fields["cipher_suites"] {
            tls.cipherSuites = try list(node, "tls_server_config.cipher_suites", from: cipherNames)
        }
        if let node = fields["curve_preferences"] {
            tls.curves = try list(node, "tls_server_config.curve_preferences", from: curveNames)
        }
        if let node = fields["prefer_server_cipher_suites"] { tls.preferServerCipherSuites = try bool(node, "tls_server_config.prefer_server_cipher_suites") }
        return tls
    }

    // MARK: strict reading of YAML nodes

    /// A mapping's entries by key; `keys` (when given) are the only ones allowed.
    private static func mapping(_ node: YAMLNode, _ what: String, keys: Set<String>?) throws(AgentConfigurationError) -> [String: YAMLNode] {
        if case .scalar(let text, plain: true) = node, ["", "~", "null", "Null", "NULL"].contains(text) { return [:] }  // a key with no value
        guard case .mapping(let mapping) = node else { throw AgentConfigurationError(.webConfig, "\(what) must be a mapping") }
        var fields: [String: YAMLNode] = [:]
        for pair in mapping {
            let value = pair.value
            guard let name = pair.key.string else { throw AgentConfigurationError(.webConfig, "\(what): a key is not a string") }
            if let keys, !keys.contains(name) {
                throw AgentConfigurationError(.webConfig, "\(what): unknown key \(name) (known: \(keys.sorted().joined(separator: ", ")))")
            }
            guard fields.updateValue(value, forKey: name) == nil else { throw AgentConfigurationError(.webConfig, "\(what): \(name) is given twice") }
        }
        return fields
    }

    private static func string(_ node: YAMLNode, _ what: String) throws(AgentConfigurationError) -> String {
        guard let text = node.string else { throw AgentConfigurationError(.webConfig, "\(what) must be a string") }
        return text
    }

    private static func bool(_ node: YAMLNode, _ what: String) throws(AgentConfigurationError) -> Bool {
        guard let value = node.bool else { throw AgentConfigurationError(.webConfig, "\(what) must be true or false") }
        return value
    }

    private static func list<Value>(_ node: YAMLNode, _ what: String, from names: [String: Value]) throws(AgentConfigurationError) -> [Value] {
        guard case .sequence(let sequence) = node else { throw AgentConfigurationError(.webConfig, "\(what) must be a list") }
        var values: [Value] = []
        for item in sequence {
            let name = try string(item, what)
            guard let value = names[name] else {
                throw AgentConfigurationError(.webConfig, "\(what): unknown \"\(name)\" (known: \(names.keys.sorted().joined(separator: ", ")))")
            }
            values.append(value)
        }
        return values
    }
}
