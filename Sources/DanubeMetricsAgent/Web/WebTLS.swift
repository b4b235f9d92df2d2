import NIOCore
import NIOSSL

/// Builds the server's TLS context from `tls_server_config` (swift-nio-ssl, BoringSSL), and the handlers a TLS
/// connection starts with.
enum WebTLS {
    /// Reads the certificate chain, key and client CAs now: an unreadable file, a key that is not the
    /// certificate's, or PEM without a certificate is an error naming it.
    static func context(_ tls: WebConfiguration.TLSServer) throws(AgentConfigurationError) -> NIOSSLContext {
        let chain = try certificates(tls.certificate, what: "cert_file")
        let keyBytes = try pem(tls.key, what: "key_file")
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw AgentConfigurationError(.webConfig, "key_file\(label(tls.key)) holds no usable private key (PEM, unencrypted): \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = tls.minVersion
        configuration.maximumTLSVersion = tls.maxVersion
        if !tls.cipherSuites.isEmpty { configuration.cipherSuiteValues = tls.cipherSuites }
        if !tls.curves.isEmpty { configuration.curves = tls.curves }
        if let clientCA = tls.clientCA {
            configuration.trustRoots = .certificates(try certificates(clientCA, what: "client_ca_file"))
            // Clients with several certificates pick the one this CA issued.
            configuration.sendCANameList = true
        }
        switch tls.clientAuth {
        case .noClientCert, .requestClientCert:
            // RequestClientCert asks without requiring or checking: nothing served depends on who the client is.
            configuration.certificateVerification = .none
        case .verifyClientCertIfGiven:
            configuration.certificateVerification = .optionalVerification
        case .requireAnyClientCert, .requireAndVerifyClientCert:
            configuration.certificateVerification = .noHostnameVerification
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw AgentConfigurationError(.webConfig, "tls_server_config cannot be used (does key_file belong to cert_file?): \(error)")
        }
    }

    /// The TLS handler that opens a connection: RequireAnyClientCert takes whatever certificate is shown.
    static func handler(_ loaded: WebSecurity.Loaded, context: NIOSSLContext) -> NIOSSLServerHandler {
        guard loaded.acceptsAnyClientCertificate else { return NIOSSLServerHandler(context: context) }
        return NIOSSLServerHandler(context: context) { _, promise in promise.succeed(.certificateVerified) }
    }

    private static func label(_ source: WebConfiguration.PEMSource) -> String {
        if case .file(let path) = source { return " \(path)" }
        return " (inline)"
    }

    private static func pem(_ source: WebConfiguration.PEMSource, what: String) throws(AgentConfigurationError) -> [UInt8] {
        switch source {
        case .file(let path): return try WatchedFiles.read(path, what: what, code: .webConfig)
        case .inline(let text): return Array(text.utf8)
        }
    }

    static func certificates(_ source: WebConfiguration.PEMSource, what: String) throws(AgentConfigurationError) -> [NIOSSLCertificate] {
        let bytes = try pem(source, what: what)
        let parsed = try? NIOSSLCertificate.fromPEMBytes(bytes)
        guard let parsed, !parsed.isEmpty else {
            throw AgentConfigurationError(.webConfig, "\(what)\(label(source)) holds no PEM certificate")
        }
        return parsed
    }
}

/// Counts TLS handshakes that fail (`danube_agent_http_tls_handshake_failures_total`) and closes their connection.
final class TLSFailureCounter: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny
    private let security: WebSecurity

    init(security: WebSecurity) {
        self.security = security
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is NIOSSLError || error is BoringSSLError { security.handshakeFailed() }
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }
}
