import Logging
import NIOConcurrencyHelpers
import NIOSSL

/// How a push (remote write, OTLP) checks an `https://` receiver and proves who it is: the receiver's certificate
/// is verified against `caFile` (instead of the system's store, as Prometheus' `tls_config.ca_file` does) or the
/// system's CA store, and its name against the URL's host; `certFile` and `keyFile` add a client certificate.
/// Checked at start; the files are read again when they change (certificate rotation without a restart).
public struct PushTLS: Sendable, Equatable {
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?

    public init() {}

    var isEmpty: Bool { caFile == nil && certFile == nil && keyFile == nil }
    var files: [String] { [caFile, certFile, keyFile].compactMap { $0 } }

    /// Checks the settings and builds the context once; `prefix` names the options (`--remote-write`).
    func check(prefix: String, endpoints: [PushEndpoint]) throws(AgentConfigurationError) {
        guard !isEmpty else { return }
        if (certFile == nil) != (keyFile == nil) {
            throw AgentConfigurationError(.pushTLS, "\(prefix)-cert-file and \(prefix)-key-file go together")
        }
        if !endpoints.isEmpty, !endpoints.contains(where: \.tls) {
            throw AgentConfigurationError(.pushTLS, "\(prefix)-ca-file, -cert-file and -key-file apply to https:// receivers only, and none is")
        }
        _ = try context(prefix: prefix)
    }

    /// A client context from the files as they are now.
    func context(prefix: String) throws(AgentConfigurationError) -> NIOSSLContext {
        func certificates(_ path: String, _ option: String) throws(AgentConfigurationError) -> [NIOSSLCertificate] {
            let bytes = try WatchedFiles.read(path, what: "\(prefix)-\(option)", code: .pushTLS)
            guard let certificates = try? NIOSSLCertificate.fromPEMBytes(bytes), !certificates.isEmpty else {
                throw AgentConfigurationError(.pushTLS, "\(prefix)-\(option) \(path) holds no PEM certificate")
            }
            return certificates
        }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caFile { configuration.trustRoots = .certificates(try certificates(caFile, "ca-file")) }
        if let certFile, let keyFile {
            configuration.certificateChain = try certificates(certFile, "cert-file").map { .certificate($0) }
            let keyBytes = try WatchedFiles.read(keyFile, what: "\(prefix)-key-file", code: .pushTLS)
            guard let key = try? NIOSSLPrivateKey(bytes: keyBytes, format: .pem) else {
                throw AgentConfigurationError(.pushTLS, "\(prefix)-key-file \(keyFile) holds no usable private key (PEM, unencrypted)")
            }
            configuration.privateKey = .privateKey(key)
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw AgentConfigurationError(.pushTLS, "\(prefix) TLS settings cannot be used (does \(prefix)-key-file belong to \(prefix)-cert-file?): \(error)")
        }
    }
}

/// The client context a push uses, built on first use (off the event loops: reading the system's CA store
/// blocks) and again when one of its files changes; a change that does not load keeps the previous context
/// (logged once).
final class PushTLSContext: Sendable {
    private let settings: PushTLS
    private let prefix: String
    private let logger: Logger
    private let state = NIOLockedValueBox<(context: NIOSSLContext, files: WatchedFiles)?>(nil)

    init(_ settings: PushTLS, prefix: String, logger: Logger) {
        self.settings = settings
        self.prefix = prefix
        self.logger = logger
    }

    func context() throws(AgentConfigurationError) -> NIOSSLContext {
        if let current = state.withLockedValue({ $0 }), !current.files.changed { return current.context }
        let files = WatchedFiles(settings.files)
        do throws(AgentConfigurationError) {
            let context = try settings.context(prefix: prefix)
            state.withLockedValue { $0 = (context, files) }
            return context
        } catch {
            guard let previous = state.withLockedValue({ $0 }) else { throw error }
            // Keep the previous context until the files load again; say so once per change.
            state.withLockedValue { $0 = (previous.context, files) }
            logger.error("push TLS files changed and do not load; the previous ones stay in use", metadata: ["error": "\(error.description)"])
            return previous.context
        }
    }
}
