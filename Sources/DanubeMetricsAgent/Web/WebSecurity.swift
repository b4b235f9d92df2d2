import Dispatch
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// The web configuration in force for every HTTP listener and what it built: the TLS context, the users and the
/// decoy hash. Read at start (a bad file stops the agent with one line) and again within a second of the file or
/// any file it names changing (certificate rotation without a restart; exporter-toolkit re-reads at every
/// handshake to the same end). A change that does not load keeps the last good configuration, logged and counted
/// (`danube_agent_web_config_last_reload_successful`). Connections opened before a change keep what they started with.
final class WebSecurity: Sendable {
    /// One loaded configuration: what a new connection uses.
    struct Loaded: Sendable {
        let configuration: WebConfiguration
        let tls: NIOSSLContext?
        /// RequireAnyClientCert: a certificate must be presented, and any will do.
        let acceptsAnyClientCertificate: Bool
        /// Unknown users are checked against this (same cost as the real hashes).
        let decoy: String
        let files: WatchedFiles
    }

    enum AuthFailure: String, CaseIterable {
        /// No or malformed `Authorization: Basic`.
        case missing
        /// An unknown user or a wrong password.
        case wrong
        /// Too many verifications waiting: answered 429 without running bcrypt.
        case throttled
    }

    let path: String
    let verifier = BasicAuthVerifier()
    /// bcrypt runs here, one at a time, never on an event loop; at most `maxPendingVerifications` wait.
    private let authPool = NIOThreadPool(numberOfThreads: 1)
    static let maxPendingVerifications = 8
    private let pending = NIOLockedValueBox(0)
    private let penalties = NIOLockedValueBox(GuessPenalties())
    private let loaded: NIOLockedValueBox<Loaded>
    private let counters = NIOLockedValueBox(Counters())
    private let logger: Logger
    private let watcher = NIOLockedValueBox<RepeatedTask?>(nil)

    private struct Counters {
        var authFailures: [String: UInt64] = [:]
        var handshakeFailures: UInt64 = 0
        var reloads: UInt64 = 0
        var reloadFailures: UInt64 = 0
        var lastReloadSuccessful = true
        var lastReloadTime = Date().timeIntervalSince1970
    }

    init(path: String, logger: Logger) throws(AgentConfigurationError) {
        self.path = path
        self.logger = logger
        loaded = NIOLockedValueBox(try Self.load(path: path))
    }

    var current: Loaded { loaded.withLockedValue { $0 } }

    /// Starts the verification thread and the check for changes (every second, off the event loops: building a
    /// TLS context reads files).
    func start(on loop: EventLoop) {
        authPool.start()
        let queue = DispatchQueue(label: "danube-metrics-agent.web-config", qos: .utility)
        let task = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [self] _ in
            queue.async { self.reloadIfChanged() }
        }
        watcher.withLockedValue { $0 = task }
    }

    func stop() async {
        watcher.withLockedValue { $0?.cancel() }
        try? await authPool.shutdownGracefully()
    }

    /// Reads the configuration again when a file changed. Returns whether it reloaded (tests call it by hand).
    @discardableResult
    func reloadIfChanged() -> Bool {
        guard current.files.changed else { return false }
        do throws(AgentConfigurationError) {
            let fresh = try Self.load(path: path)
            loaded.withLockedValue { $0 = fresh }
            counters.withLockedValue {
                $0.reloads &+= 1
                $0.lastReloadSuccessful = true
                $0.lastReloadTime = Date().timeIntervalSince1970
            }
            logger.info("web configuration reloaded", metadata: ["file": "\(path)", "tls": "\(fresh.tls != nil)",
                                                                 "users": "\(fresh.configuration.basicAuthUsers.count)"])
            return true
        } catch {
            let firstFailure = counters.withLockedValue { counters in
                defer { counters.lastReloadSuccessful = false }
                counters.reloadFailures &+= 1
                return counters.lastReloadSuccessful
            }
            // Logged once per bad state, not every second while it stays bad.
            if firstFailure { logger.error("web configuration not reloaded, the previous one stays in force: \(error.description)") }
            return false
        }
    }

    /// Reads and checks the file and everything it names; one line on any fault.
    static func load(path: String) throws(AgentConfigurationError) -> Loaded {
        func prefixed(_ error: AgentConfigurationError) -> AgentConfigurationError {
            AgentConfigurationError(.webConfig, "--web.config.file \(path): \(error.description)")
        }
        do throws(AgentConfigurationError) {
            let text = String(decoding: try WatchedFiles.read(path, what: "file", code: .webConfig), as: UTF8.self)
            let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
            let configuration = try WebConfiguration.parse(text, directory: directory.isEmpty ? "/" : directory)
            // Stamped before the files are read: a change while reading is seen at the next check.
            let files = WatchedFiles([path] + (configuration.tls?.files ?? []))
            let tls = try configuration.tls.map { tls throws(AgentConfigurationError) in try WebTLS.context(tls) }
            let cost = configuration.basicAuthUsers.values.map(BasicAuthVerifier.cost).max() ?? 10
            return Loaded(configuration: configuration, tls: tls, acceptsAnyClientCertificate: configuration.tls?.clientAuth == .requireAnyClientCert,
                          decoy: BasicAuthVerifier.decoy(cost: cost), files: files)
        } catch {
            throw prefixed(error)
        }
    }

    // MARK: authentication

    /// Runs bcrypt for one request off the event loops; nil when too many are waiting already or the client's
    /// address guessed wrong within the last second (the request is answered 429 without any hashing, so a flood
    /// of guesses costs one thread at most, and one address one bcrypt run per second).
    func verify(user: String, password: [UInt8], hash: String?, decoy: String, from address: String?, on loop: EventLoop) -> EventLoopFuture<Bool>? {
        if let address, penalties.withLockedValue({ $0.isPenalized(address, now: .now) }) { return nil }
        let admitted = pending.withLockedValue { pending in
            guard pending < Self.maxPendingVerifications else { return false }
            pending += 1
            return true
        }
        guard admitted else { return nil }
        let verifier = self.verifier
        return authPool.runIfActive(eventLoop: loop) {
            verifier.verify(user: user, password: password, hash: hash, decoy: decoy)
        }.always { [pending] _ in pending.withLockedValue { $0 -= 1 } }
    }

    func authFailed(_ reason: AuthFailure) { counters.withLockedValue { $0.authFailures[reason.rawValue, default: 0] &+= 1 } }

    /// Wrong credentials from `address`: its next unknown ones wait a second (`GuessPenalties`).
    func guessedWrong(from address: String?) {
        guard let address else { return }
        penalties.withLockedValue { $0.penalize(address, now: .now) }
    }
    func handshakeFailed() { counters.withLockedValue { $0.handshakeFailures &+= 1 } }

    func authFailures(_ reason: AuthFailure) -> UInt64 { counters.withLockedValue { $0.authFailures[reason.rawValue] ?? 0 } }
    var handshakeFailures: UInt64 { counters.withLockedValue { $0.handshakeFailures } }

    func collect(into snapshot: inout MetricsSnapshot) {
        let counts = counters.withLockedValue { $0 }
        snapshot.family(name: "danube_agent_http_auth_failures_total", kind: .counter,
                        help: "HTTP requests refused by basic auth (--web.config.file), by reason: missing credentials, wrong ones, or too many waiting for verification.")
        for reason in AuthFailure.allCases {
            snapshot.counter(labels: "reason=\"\(reason.rawValue)\"", integer: counts.authFailures[reason.rawValue] ?? 0, fraction: 0)
        }
        for (metric, help, value) in [
            ("danube_agent_http_tls_handshake_failures_total", "TLS handshakes on the HTTP listeners that failed (no or untrusted client certificate, bad protocol).", counts.handshakeFailures),
            ("danube_agent_web_config_reloads_total", "Times the web configuration was read again after a change and loaded.", counts.reloads),
            ("danube_agent_web_config_reload_failures_total", "Times a changed web configuration did not load (the previous one stayed in force).", counts.reloadFailures),
        ] {
            snapshot.family(name: metric, kind: .counter, help: help)
            snapshot.counter(labels: "", integer: value, fraction: 0)
        }
        snapshot.family(name: "danube_agent_web_config_last_reload_successful", kind: .gauge, help: "1 when the web configuration file as it is now is in force.")
        snapshot.gauge(labels: "", value: counts.lastReloadSuccessful ? 1 : 0)
        snapshot.family(name: "danube_agent_web_config_last_reload_success_timestamp_seconds", kind: .gauge,
                        help: "Unix time the web configuration was last loaded.")
        snapshot.gauge(labels: "", value: counts.lastReloadTime)
    }
}
