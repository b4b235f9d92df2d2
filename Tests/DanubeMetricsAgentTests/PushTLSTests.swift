import DanubeMetricsAgent
import DanubeMetricsTestKit
import Foundation
import Testing

/// Remote write and OTLP export to `https://` receivers: a Prometheus receiver that itself requires TLS, a client
/// certificate and basic auth; an OTLP receiver requiring a client certificate; receivers whose certificate is
/// untrusted or expired, refused with a clear error and counted.
@Suite(.serialized) struct PushTLSTests {
    /// An OTLP receiver (Tests/otlp) serving HTTPS with `certificate`; requiring a client certificate from
    /// `clientCA` when given.
    private func otlpReceiver(_ pki: TestCertificates, certificate: String, clientCA: String? = nil) throws -> (ChildProcess, Int, String) {
        let port = unusedPort()
        let output = Scratch.path("otlp-tls", suffix: ".jsonl")
        var environment = ["OTLP_RECEIVER_CERT": certificate, "OTLP_RECEIVER_KEY": pki.serverKey]
        if let clientCA { environment["OTLP_RECEIVER_CLIENT_CA"] = clientCA }
        let receiver = try ChildProcess(try PythonTools.python(), [TraceExportTests.repository + "/Tests/otlp/otlp_receiver.py", "\(port)", output],
                                        environment: environment, output: output + ".log")
        #expect(eventually { boundLoopbackSocket(port: port).map { close($0); return false } ?? true })
        return (receiver, port, output)
    }

    /// Into Debian's Prometheus with `--web.config.file`: TLS from the test CA, RequireAndVerifyClientCert and
    /// bcrypt basic auth. What it stores equals `/metrics`, the agent's own series included.
    @Test func remoteWriteIntoAPrometheusRequiringTLSAClientCertificateAndBasicAuth() async throws {
        let pki = try TestCertificates()
        let webConfig = "\(pki.directory)/prometheus-web.yml"
        try """
            tls_server_config:
              cert_file: \(pki.serverCert)
              key_file: \(pki.serverKey)
              client_auth_type: RequireAndVerifyClientCert
              client_ca_file: \(pki.caCert)
            basic_auth_users:
              danube: \(try TestCertificates.bcrypt("secret"))
            """.write(toFile: webConfig, atomically: true, encoding: .utf8)
        let port = unusedPort()
        let prometheus = try PrometheusServer(remoteWriteReceiverOn: port, flags: ["--web.config.file=\(webConfig)"])
        defer { prometheus.stop() }
        prometheus.curlTLS = ["--cacert", pki.caCert, "--cert", pki.clientCert, "--key", pki.clientKey]
        prometheus.authorization = "Basic " + Data("danube:secret".utf8).base64EncodedString()
        let password = "\(pki.directory)/password"
        try "secret\n".write(toFile: password, atomically: true, encoding: .utf8)
        let agent = try await TestAgent { configuration in
            configuration.remoteWrite.urls = ["https://localhost:\(port)/api/v1/write"]
            configuration.remoteWrite.interval = .milliseconds(200)
            configuration.remoteWrite.tls.caFile = pki.caCert
            configuration.remoteWrite.tls.certFile = pki.clientCert
            configuration.remoteWrite.tls.keyFile = pki.clientKey
            configuration.remoteWrite.credentials.basicAuthUser = "danube"
            configuration.remoteWrite.credentials.basicAuthPasswordFile = password
        }
        let emitter = agent.emitter()
        try emitter.counter("rw_tls_total").increment(by: 5)
        #expect(emitter.waitUntilDelivered())
        #expect(await eventuallyAsync(timeout: .seconds(30)) { (try? prometheus.value("rw_tls_total")) == 5 }, "\(prometheus.log)")
        // The agent's own health series go with the sources' (alerts on the agent work without a scrape).
        #expect(await eventuallyAsync(timeout: .seconds(30)) { (try? prometheus.value("danube_agent_sources_connected")) == 1 })
        #expect((try prometheus.value("process_resident_memory_bytes") ?? 0) > 1_000_000)
        #expect(await eventuallyAsync(timeout: .seconds(30)) { (try? prometheus.value("danube_agent_remote_write_samples_sent_total")) ?? 0 > 0 })
        emitter.shutdown()
        await agent.stop()
    }

    /// OTLP export over HTTPS with a client certificate the receiver checks; the same settings as remote write.
    @Test func otlpExportPresentsItsClientCertificate() async throws {
        let pki = try TestCertificates()
        let (receiver, port, output) = try otlpReceiver(pki, certificate: pki.serverCert, clientCA: pki.caCert)
        defer { receiver.stop() }
        let agent = try await TestAgent {
            $0.traceExport.endpoints = ["https://localhost:\(port)"]
            $0.traceExport.exportInterval = .milliseconds(100)
            $0.traceExport.tls.caFile = pki.caCert
            $0.traceExport.tls.certFile = pki.clientCert
            $0.traceExport.tls.keyFile = pki.clientKey
            $0.traceExport.credentials.headers = ["X-Scope-OrgID": "tenant-b"]
        }
        let source = try TraceExportTests.source(agent)
        source.send(.spans(TraceExportTests.publishTrace(TraceExportTests.trace, base: TraceExportTests.now())))
        #expect(await eventuallyAsync(timeout: .seconds(20)) { TraceExportTests.lines(output).count == 4 },
                "\((try? String(contentsOfFile: output + ".log", encoding: .utf8)) ?? "")")
        for span in TraceExportTests.lines(output) {
            #expect(span["client"] as? String == "client" && span["tenant"] as? String == "tenant-b")
        }
        await agent.stop()
    }

    /// A receiver whose certificate is not from the configured CA, or has expired: nothing is sent, each attempt
    /// is counted under reason "tls", and the log says what is wrong with the certificate.
    @Test func untrustedAndExpiredReceiversAreRefusedClearly() async throws {
        let pki = try TestCertificates()
        for (certificate, caFile, what) in [(pki.serverCert, "\(pki.directory)/rogue-ca.crt", "untrusted"), (pki.expiredCert, pki.caCert, "expired")] {
            let (receiver, port, output) = try otlpReceiver(pki, certificate: certificate)
            defer { receiver.stop() }
            let url = "https://localhost:\(port)/api/v1/write"
            let agent = try await TestAgent { configuration in
                configuration.remoteWrite.urls = [url]
                configuration.remoteWrite.interval = .milliseconds(100)
                configuration.remoteWrite.tls.caFile = caFile
            }
            let emitter = agent.emitter()
            try emitter.counter("rw_refused_tls_total").increment()
            #expect(emitter.waitUntilDelivered())
            let failures = "danube_agent_remote_write_request_failures_total{reason=\"tls\",url=\"\(url)\"}"
            #expect(try await eventuallyAsync { (try agent.samples()[failures] ?? 0) >= 2 }, "\(what)")
            #expect(agent.logs.contains("remote write failing", "the receiver's certificate was refused", "CERTIFICATE_VERIFY_FAILED"),
                    "\(what): \(agent.logs.all.filter { $0.contains("remote write") })")
            #expect(TraceExportTests.lines(output).isEmpty)
            emitter.shutdown()
            await agent.stop()
        }
    }
}
