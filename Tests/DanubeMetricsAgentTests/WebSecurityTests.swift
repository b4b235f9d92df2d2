@testable import DanubeMetricsAgent
import DanubeMetricsTestKit
import Foundation
import Synchronization
import Testing

/// `--web.config.file`: the exporter-toolkit format read strictly, TLS and client certificates against curl and
/// Debian's Prometheus, bcrypt basic auth, reloads, and what a guesser costs.
@Suite(.serialized) struct WebSecurityTests {
    /// An agent with `yaml` as its web configuration (written next to the certificates).
    private func agent(_ pki: TestCertificates, _ yaml: String, configure: (inout AgentConfiguration) -> Void = { _ in }) async throws -> (TestAgent, String) {
        let path = "\(pki.directory)/web.yml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let agent = try await TestAgent { configuration in
            configuration.webConfigFile = path
            configure(&configuration)
        }
        return (agent, path)
    }

    private func url(_ agent: TestAgent, _ path: String = "/metrics") -> String { "https://localhost:\(agent.port)\(path)" }

    @Test func theExporterToolkitFormatIsReadStrictly() throws {
        let yaml = """
            tls_server_config:
              cert_file: server.crt
              key_file: /etc/keys/server.key
              client_auth_type: RequireAndVerifyClientCert
              client_ca_file: ca.crt
              min_version: TLS13
              cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
              curve_preferences: [X25519, CurveP256]
              prefer_server_cipher_suites: false
            http_server_config:
              http2: false
              headers:
                Strict-Transport-Security: max-age=31536000
                X-Frame-Options: deny
            basic_auth_users:
              prometheus: $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi
            """
        let parsed = try WebConfiguration.parse(yaml, directory: "/etc/agent")
        let tls = try #require(parsed.tls)
        #expect(tls.certificate == .file("/etc/agent/server.crt"))
        #expect(tls.key == .file("/etc/keys/server.key"))
        #expect(tls.clientCA == .file("/etc/agent/ca.crt"))
        #expect(tls.clientAuth == .requireAndVerifyClientCert)
        #expect(tls.minVersion == .tlsv13 && tls.maxVersion == .tlsv13)
        #expect(tls.cipherSuites == [.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256])
        #expect(tls.curves == [.x25519, .secp256r1])
        #expect(parsed.headers == ["Strict-Transport-Security": "max-age=31536000", "X-Frame-Options": "deny"])
        #expect(parsed.basicAuthUsers.keys.sorted() == ["prometheus"])
        // exporter-toolkit: a TLS section that sets nothing is plain HTTP; an empty file is no configuration.
        #expect(try WebConfiguration.parse("tls_server_config: {}\n", directory: "/").tls == nil)
        #expect(try WebConfiguration.parse("", directory: "/") == WebConfiguration())
        #expect(try WebConfiguration.parse("tls_server_config:\nhttp_server_config: ~\n", directory: "/") == WebConfiguration())
        // YAML 1.1 booleans, as Go's yaml.v2 reads them; a quoted "yes" is a string.
        #expect(try WebConfiguration.parse("tls_server_config:\n  cert_file: a\n  key_file: b\n  prefer_server_cipher_suites: no\n",
                                           directory: "/").tls?.preferServerCipherSuites == false)
        // Anchors and aliases resolve; an alias bomb stops at the node bound instead of filling memory.
        let anchored = try WebConfiguration.parse("x: &u $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\n".replacingOccurrences(of: "x: ", with: "basic_auth_users:\n  a: ") + "  b: *u\n", directory: "/")
        #expect(anchored.basicAuthUsers["a"] == anchored.basicAuthUsers["b"] && anchored.basicAuthUsers.count == 2)
        var bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...8 { bomb += "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n" }
        #expect(throws: AgentConfigurationError.self) { try WebConfiguration.parse(bomb, directory: "/") }

        let refused: [(String, String)] = [
            ("tls_server_config: [", "not YAML: did not find expected node content at line 2, column 1"),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  prefer_server_cipher_suites: \"yes\"\n", "must be true or false"),
            ("tls_server_config:\n  cert_file: a\n  cert_file: b\n", "cert_file is given twice"),
            ("tls_server_config:\n  cert_fil: a.crt\n", "unknown key cert_fil"),
            ("tls_server_config:\n  cert_file: a.crt\n", "missing one of key or key_file"),
            ("tls_server_config:\n  key_file: a.key\n", "missing one of cert or cert_file"),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Sometimes\n", "client_auth_type \"Sometimes\""),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n", "needs client_ca_file"),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n", "asks for no client certificate"),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS14\n", "min_version \"TLS14\""),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  max_version: TLS12\n", "min_version is above max_version"),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_NULL]\n", "unknown \"TLS_NULL\""),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: [x]\n", "client_allowed_sans is not supported"),
            ("http_server_config:\n  headers:\n    Server: danube\n", "Server can not be configured"),
            ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n", "X-Frame-Options \"allow\""),
            ("basic_auth_users:\n  prometheus: secret\n", "basic_auth_users.prometheus is not a bcrypt hash"),
            ("basic_auth_users:\n  prometheus: $2y$10$short\n", "not a bcrypt hash"),
            ("rate_limit:\n  burst: 3\n", "rate_limit is not supported"),
            ("basic_auth_users: [a]\n", "basic_auth_users must be a mapping"),
        ]
        for (yaml, fragment) in refused {
            #expect {
                try WebConfiguration.parse(yaml, directory: "/")
            } throws: { error in
                let error = error as! AgentConfigurationError
                return error.code == .webConfig && error.description.contains(fragment) && !error.description.contains("\n")
            }
        }
    }

    /// What an operator gets wrong in the files the configuration names stops the agent at start, with one line.
    @Test func unusableFilesStopTheAgentAtStart() throws {
        let pki = try TestCertificates()
        let cases: [(String, String)] = [
            ("tls_server_config:\n  cert_file: server.crt\n  key_file: missing.key\n", "missing.key cannot be read: No such file or directory"),
            ("tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n", "does key_file belong to cert_file?"),
            ("tls_server_config:\n  cert_file: server.key\n  key_file: server.key\n", "holds no PEM certificate"),
            ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.crt\n", "holds no usable private key"),
        ]
        for (yaml, fragment) in cases {
            let path = "\(pki.directory)/bad.yml"
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
            var configuration = AgentConfiguration(ingestSocketPath: TestAgent.temporarySocketPath())
            configuration.webConfigFile = path
            #expect {
                _ = try Agent(configuration: configuration, logger: LogCapture().logger)
            } throws: { error in
                let error = error as! AgentConfigurationError
                return error.code == .webConfig && error.description.hasPrefix("--web.config.file \(path): ")
                    && error.description.contains(fragment) && !error.description.contains("\n")
            }
        }
    }

    /// Debian's Prometheus scrapes through the shipped https job (CA file, basic auth password file); without
    /// credentials, with wrong ones or in plain HTTP nothing is served, and each refusal is counted.
    @Test func prometheusScrapesOverTLSWithBasicAuth() async throws {
        let pki = try TestCertificates()
        let hash = try TestCertificates.bcrypt("scrape-secret")
        let (agent, _) = try await self.agent(pki, """
            tls_server_config:
              cert_file: server.crt
              key_file: server.key
            http_server_config:
              headers:
                X-Content-Type-Options: nosniff
            basic_auth_users:
              prometheus: \(hash)
            """)
        let emitter = agent.emitter()
        try emitter.counter("tls_scraped_total").increment(by: 7)
        #expect(emitter.waitUntilDelivered())
        let password = "\(pki.directory)/password"
        try "scrape-secret\n".write(toFile: password, atomically: true, encoding: .utf8)
        let job = try String(contentsOf: PackagingTests.prometheusFiles.appendingPathComponent("scrape-job-https.yml"), encoding: .utf8)
            .replacingOccurrences(of: "/etc/prometheus/danube-metrics-agent-ca.crt", with: pki.caCert)
            .replacingOccurrences(of: "/etc/prometheus/danube-metrics-agent.password", with: password)
            .replacingOccurrences(of: "\"localhost:9470\"", with: "\"localhost:\(agent.port)\"")
        let prometheus = try PrometheusServer(scrapeJob: job)
        defer { prometheus.stop() }
        #expect(eventually(timeout: .seconds(30)) {
            (try? prometheus.query("tls_scraped_total{job=\"danube-metrics-agent\",cluster=\"danube\"}"))?.first.map { ($0["value"] as! [Any])[1] as! String } == "7"
        }, "\(prometheus.log)")

        let authorized = try curl(url(agent), ["--cacert", pki.caCert, "-u", "prometheus:scrape-secret", "-D", "-"])
        #expect(authorized.status == 200 && authorized.body.contains("tls_scraped_total 7"))
        #expect(authorized.body.lowercased().contains("x-content-type-options: nosniff"))
        for options in [[], ["-u", "prometheus:guess"]] {
            let refused = try curl(url(agent), ["--cacert", pki.caCert, "-D", "-"] + options)
            #expect(refused.status == 401, "\(options)")
            #expect(refused.body.contains("WWW-Authenticate: Basic realm=\"danube-metrics-agent\""))
            #expect(!refused.body.contains("tls_scraped_total"))
        }
        // The address just guessed wrong: its next unknown credentials wait a second, unhashed.
        let throttled = try curl(url(agent), ["--cacert", pki.caCert, "-D", "-", "-u", "nobody:scrape-secret"])
        #expect(throttled.status == 429 && throttled.body.contains("Retry-After: 1") && !throttled.body.contains("tls_scraped_total"))
        // Every path is behind authentication, and plain HTTP gets no answer from a TLS listener.
        #expect(try curl(url(agent, "/healthz"), ["--cacert", pki.caCert]).status == 401)
        #expect(try curl("http://127.0.0.1:\(agent.port)/metrics", []).status == 0)
        // An expired or untrusted server certificate is refused by the client (checked in the remote write tests).
        let metrics = try curl(url(agent), ["--cacert", pki.caCert, "-u", "prometheus:scrape-secret"]).body
        let samples = Samples(parsing: metrics)
        #expect(samples["danube_agent_http_auth_failures_total{reason=\"missing\"}"] == 2)
        #expect(samples["danube_agent_http_auth_failures_total{reason=\"wrong\"}"] == 1)
        #expect(samples["danube_agent_http_auth_failures_total{reason=\"throttled\"}"] == 1)
        #expect((samples["danube_agent_http_tls_handshake_failures_total"] ?? 0) >= 1)
        emitter.shutdown()
        await agent.stop()
    }

    /// A scrape of several MiB (many TLS records) arrives complete and equal to the plain render.
    @Test func aLargeScrapeArrivesWholeOverTLS() async throws {
        let pki = try TestCertificates()
        let (agent, _) = try await self.agent(pki, "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n") {
            $0.uncataloguedFamilyLimit = 20_000
        }
        let emitter = agent.emitter()
        let padding = String(repeating: "p", count: 120)
        for index in 0..<20_000 { try emitter.counter("tls_big_total", labels: [("n", "\(index)"), ("pad", padding)]).increment(by: UInt64(index)) }
        #expect(emitter.waitUntilDelivered(timeout: .seconds(30)))
        let scrape = try curl(url(agent), ["--cacert", pki.caCert])
        #expect(scrape.status == 200)
        let lines = { (text: String) in text.split(separator: "\n").filter { $0.hasPrefix("tls_big_total") } }
        let served = lines(scrape.body)
        #expect(scrape.body.utf8.count > 3 << 20)
        #expect(served.count == 20_000 && served == lines(String(decoding: agent.agent.renderMetrics(format: .prometheusText), as: UTF8.self)))
        emitter.shutdown()
        await agent.stop()
    }

    /// RequireAndVerifyClientCert: Prometheus with a certificate from the CA scrapes; without one, or with one from
    /// another CA, the handshake fails (counted).
    @Test func aRequiredClientCertificateIsChecked() async throws {
        let pki = try TestCertificates()
        let (agent, _) = try await self.agent(pki, """
            tls_server_config:
              cert_file: server.crt
              key_file: server.key
              client_auth_type: RequireAndVerifyClientCert
              client_ca_file: ca.crt
            """)
        let prometheus = try PrometheusServer(scrapeJob: """
              - job_name: mtls
                scheme: https
                tls_config: {ca_file: \(pki.caCert), cert_file: \(pki.clientCert), key_file: \(pki.clientKey)}
                static_configs: [{targets: ["localhost:\(agent.port)"]}]
            """)
        defer { prometheus.stop() }
        #expect(eventually(timeout: .seconds(30)) {
            (try? prometheus.query("up{job=\"mtls\"} == 1"))?.isEmpty == false
        }, "\(prometheus.log)")
        #expect(try curl(url(agent), ["--cacert", pki.caCert]).status == 0)
        #expect(try curl(url(agent), ["--cacert", pki.caCert, "--cert", pki.rogueCert, "--key", pki.rogueKey]).status == 0)
        let withCertificate = try curl(url(agent), ["--cacert", pki.caCert, "--cert", pki.clientCert, "--key", pki.clientKey])
        #expect(withCertificate.status == 200)
        #expect((Samples(parsing: withCertificate.body)["danube_agent_http_tls_handshake_failures_total"] ?? 0) >= 2)
        await agent.stop()
    }

    /// A certificate replaced on disk is served from the next connection on (checked every second, here by hand);
    /// a change that does not load leaves the previous configuration in force, and says so.
    @Test func rotatedCertificatesAreServedWithoutARestart() async throws {
        let pki = try TestCertificates()
        let served = "\(pki.directory)/served.crt"
        try FileManager.default.copyItem(atPath: pki.expiredCert, toPath: served)
        let (agent, path) = try await self.agent(pki, "tls_server_config:\n  cert_file: served.crt\n  key_file: server.key\n")
        let expired = try curl(url(agent), ["--cacert", pki.caCert])
        #expect(expired.status == 0 && expired.body.contains("expired"), "\(expired.body)")
        // As certificate tools do: the new file renamed over the old one.
        try FileManager.default.copyItem(atPath: pki.serverCert, toPath: served + ".new")
        #expect(rename(served + ".new", served) == 0)
        #expect(agent.agent.reloadWebConfiguration())
        #expect(try curl(url(agent), ["--cacert", pki.caCert]).status == 200)
        #expect(!agent.agent.reloadWebConfiguration(), "nothing changed since")

        try "tls_server_config:\n  cert_file: served.crt\n  key_file: nowhere.key\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(!agent.agent.reloadWebConfiguration())
        let after = try curl(url(agent), ["--cacert", pki.caCert])
        #expect(after.status == 200, "the previous configuration stays in force")
        let samples = Samples(parsing: after.body)
        #expect(samples["danube_agent_web_config_last_reload_successful"] == 0)
        #expect(samples["danube_agent_web_config_reloads_total"] == 1)
        #expect(samples["danube_agent_web_config_reload_failures_total"] == 1)
        #expect(agent.logs.contains("web configuration not reloaded", "nowhere.key cannot be read"))
        await agent.stop()
    }

    /// An address that guessed wrong waits a second before its next guess is hashed; the table of addresses is
    /// bounded and drops the penalty that ends soonest (time by hand).
    @Test func aWrongGuessCostsTheGuesserASecond() {
        var penalties = GuessPenalties()
        let start = ContinuousClock.now
        penalties.penalize("192.0.2.1", now: start)
        #expect(penalties.isPenalized("192.0.2.1", now: start + .milliseconds(999)))
        #expect(!penalties.isPenalized("192.0.2.1", now: start + .seconds(1)))
        #expect(!penalties.isPenalized("192.0.2.2", now: start))
        for index in 0..<GuessPenalties.maxAddresses + 10 {
            penalties.penalize("10.\(index >> 16).\((index >> 8) & 255).\(index & 255)", now: start + .microseconds(index))
        }
        #expect(penalties.count == GuessPenalties.maxAddresses)
        #expect(penalties.isPenalized("10.0.16.9", now: start + .milliseconds(5)), "the newest stay")
        #expect(!penalties.isPenalized("192.0.2.1", now: start + .microseconds(1)), "the soonest to end went first")
    }

    /// A flood of wrong guesses costs one verification thread: beyond 8 waiting, or once the address guessed wrong
    /// within the last second, guesses are answered 429 without hashing, and a scraper whose credentials were
    /// verified once is served from the cache meanwhile.
    @Test func guessesAreBoundedAndAVerifiedScraperIsServedMeanwhile() async throws {
        let pki = try TestCertificates()
        // Cost 12: about 0.2 s per verification, so guesses pile up.
        let hash = try TestCertificates.bcrypt("right", cost: 12)
        let (agent, _) = try await self.agent(pki, "basic_auth_users:\n  prometheus: \(hash)\n")
        let right = [("Authorization", "Basic " + Data("prometheus:right".utf8).base64EncodedString())]
        #expect(try HTTPClient.get(port: agent.port, path: "/metrics", headers: right).status == 200)

        let statuses = Mutex<[Int]>([])
        let guessers = (0..<32).map { index in
            Thread {
                let guess = [("Authorization", "Basic " + Data("prometheus:guess-\(index)".utf8).base64EncodedString())]
                let status = (try? HTTPClient.get(port: agent.port, path: "/metrics", headers: guess).status) ?? -1
                statuses.withLock { $0.append(status) }
            }
        }
        for guesser in guessers { guesser.start() }
        // Once the verifications are full (a guess was answered 429), the verified scraper is still answered:
        // it needs neither bcrypt nor a place in the queue.
        #expect(eventually(timeout: .seconds(30)) { statuses.withLock { $0.contains(429) } })
        #expect(try HTTPClient.get(port: agent.port, path: "/metrics", headers: right).status == 200)
        #expect(statuses.withLock { $0.count } < guessers.count, "guesses were still waiting for verification")
        #expect(eventually(timeout: .seconds(60)) { statuses.withLock { $0.count } == guessers.count })
        let answers = statuses.withLock { $0 }
        #expect(Set(answers).isSubset(of: [401, 429]), "\(answers)")
        let throttled = answers.filter { $0 == 429 }.count
        let samples = Samples(parsing: try HTTPClient.get(port: agent.port, path: "/metrics", headers: right).text)
        #expect(samples["danube_agent_http_auth_failures_total{reason=\"throttled\"}"] == Double(throttled))
        #expect(samples["danube_agent_http_auth_failures_total{reason=\"wrong\"}"] == Double(32 - throttled))
        await agent.stop()
    }
}
