@testable import DanubeMetricsAgent
import DanubeMetricsTestKit
import DanubeMetricsWire
import Foundation
import Logging
import Testing

/// Remote write into a real Prometheus (Debian's 2.42, `--web.enable-remote-write-receiver`).
@Suite(.serialized) struct RemoteWriteTests {
    /// The straightforward encoding the encoder's per-series splicing must equal: one `WriteRequest.timeseries`
    /// entry with the sample's whole label set sorted by name (`__name__` among them) and encoded from scratch.
    private static func referenceTimeSeries(name: String, labels: [Label], value: Double, timestamp: Int64, into writer: inout ByteWriter) {
        var all = labels
        all.append(Label("__name__", name))
        all.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        let labelSizes = all.map { 2 + ProtobufPrimitives.varintSize($0.name.utf8.count) + $0.name.utf8.count + ProtobufPrimitives.varintSize($0.value.utf8.count) + $0.value.utf8.count }
        let sampleSize = 1 + 8 + 1 + ProtobufPrimitives.varintSize(UInt64(bitPattern: timestamp))
        let size = labelSizes.reduce(0) { $0 + 1 + ProtobufPrimitives.varintSize($1) + $1 } + 1 + ProtobufPrimitives.varintSize(sampleSize) + sampleSize
        writer.u8(0x0A) // WriteRequest.timeseries, length-delimited
        writer.uvarint(UInt64(size))
        for (label, labelSize) in zip(all, labelSizes) {
            writer.u8(0x0A) // TimeSeries.labels
            writer.uvarint(UInt64(labelSize))
            writer.u8(0x0A) // Label.name
            writer.string(label.name)
            writer.u8(0x12) // Label.value
            writer.string(label.value)
        }
        writer.u8(0x12) // TimeSeries.samples
        writer.uvarint(UInt64(sampleSize))
        writer.u8(0x09) // Sample.value, fixed64
        writer.f64(value)
        writer.u8(0x10) // Sample.timestamp, varint (int64: negative values take ten bytes)
        writer.uvarint(UInt64(bitPattern: timestamp))
    }

    private static func prometheusValue(_ prometheus: PrometheusServer, _ query: String) throws -> Double? {
        try prometheus.value(query)
    }

    /// What Prometheus stores equals /metrics; a receiver that is down for a while loses nothing still queued.
    @Test func aReceiverDownForAWhileGetsEverythingQueuedAndEqualsMetrics() async throws {
        let port = unusedPort()
        let agent = try await TestAgent { configuration in
            configuration.remoteWrite.urls = ["http://127.0.0.1:\(port)/api/v1/write"]
            configuration.remoteWrite.interval = .milliseconds(300)
            configuration.remoteWrite.includeAgentSeries = false // counts the store's 7 samples per push
        }
        let emitter = agent.emitter()
        try emitter.counter("rw_requests_total", labels: [("path", "/a \"quoted\"")]).increment(by: 41)
        try emitter.gauge("rw_queue_depth", labels: [("queue", "q1")]).set(2.5)
        let latency = try emitter.histogram("rw_latency_ms", buckets: [1, 10], labels: [("op", "put")])
        for value in [0.5, 3, 3, 50] { latency.observe(value) }
        #expect(emitter.waitUntilDelivered())

        // Nobody listens yet: pushes are queued and retried.
        #expect(try await eventuallyAsync { try agent.samples()["danube_agent_remote_write_samples_retried_total{url=\"http://127.0.0.1:\(port)/api/v1/write\"}"] ?? 0 > 0 })
        try await Task.sleep(for: .seconds(1.5))
        let pendingWhileDown = try agent.samples()["danube_agent_remote_write_samples_pending{url=\"http://127.0.0.1:\(port)/api/v1/write\"}"] ?? 0
        #expect(pendingWhileDown >= 3 * 7, "several pushes of 7 samples each are waiting")

        let prometheus = try PrometheusServer(remoteWriteReceiverOn: port)
        defer { prometheus.stop() }
        let url = "url=\"http://127.0.0.1:\(port)/api/v1/write\""
        #expect(try await eventuallyAsync(timeout: .seconds(30)) {
            try agent.samples()["danube_agent_remote_write_samples_pending{\(url)}"] == 0
                && (try agent.samples()["danube_agent_remote_write_samples_sent_total{\(url)}"] ?? 0) >= pendingWhileDown
        }, "\(prometheus.log)")
        #expect(try agent.samples()["danube_agent_remote_write_samples_failed_total{\(url)}"] == 0)

        // Every push queued while Prometheus was down arrived (one sample each, 300 ms apart).
        let pushesWhileDown = pendingWhileDown / 7
        let stored = try Self.prometheusValue(prometheus, "count_over_time(rw_requests_total[10m])") ?? 0
        #expect(stored >= pushesWhileDown, "stored \(stored) samples, \(pushesWhileDown) pushes were queued")

        // Every series of the emitter equals /metrics.
        let shown = try agent.samples()
        let compared = shown.values.keys.filter { $0.hasPrefix("rw_") }
        let expectedSeries = 7 // counter, gauge, and the histogram's buckets le 1, 10, +Inf, sum and count
        #expect(compared.count == expectedSeries, "\(compared)")
        for key in compared {
            let value = try Self.prometheusValue(prometheus, key)
            #expect(value == shown[key], "\(key): Prometheus \(String(describing: value)), /metrics \(String(describing: shown[key]))")
        }
        emitter.shutdown()
        await agent.stop()
    }

    @Test func aRefusingReceiverDropsInsteadOfRetrying() async throws {
        // A Prometheus without the receiver answers 404 to /api/v1/write: a 4xx other than 429 is not retried.
        let prometheus = try PrometheusServer(remoteWriteReceiverOn: unusedPort(), enabled: false)
        defer { prometheus.stop() }
        #expect(await eventuallyAsync { (try? HTTPClient.get(port: prometheus.port, path: "/-/ready"))?.status == 200 })
        let url = "http://127.0.0.1:\(prometheus.port)/api/v1/write"
        let agent = try await TestAgent { $0.remoteWrite.urls = [url]; $0.remoteWrite.interval = .milliseconds(200) }
        let emitter = agent.emitter()
        try emitter.counter("rw_refused_total").increment()
        #expect(emitter.waitUntilDelivered())
        #expect(try await eventuallyAsync { try agent.samples()["danube_agent_remote_write_samples_failed_total{url=\"\(url)\"}"] ?? 0 > 0 })
        let samples = try agent.samples()
        #expect(samples["danube_agent_remote_write_samples_retried_total{url=\"\(url)\"}"] == 0)
        #expect(samples["danube_agent_remote_write_samples_sent_total{url=\"\(url)\"}"] == 0)
        #expect(agent.logs.contains("remote write request dropped", "HTTP 404"))
        emitter.shutdown()
        await agent.stop()
    }

    /// The agent's own series go to remote write from the snapshot /metrics is encoded from: every sample, labels
    /// unescaped and sorted, histograms as `_bucket` (cumulative), `_sum` and `_count`.
    @Test func theAgentsOwnSeriesArePushedFromTheSnapshot() {
        var snapshot = MetricsSnapshot()
        snapshot.family(name: "danube_agent_source_up", kind: .gauge, help: "h")
        snapshot.gauge(labels: LabelText.encode([Label("source", "a \"b\"\\c\nd"), Label("instance", "1")]), value: 1)
        snapshot.family(name: "danube_agent_x_total", kind: .counter, help: "h")
        snapshot.counter(integer: 12, fraction: 0.5)
        snapshot.family(name: "danube_agent_d_seconds", kind: .histogram, help: "h", bounds: [0.1])
        snapshot.histogram(bucketCounts: [2, 1], sum: .infinity)
        snapshot.family(name: "danube_agent_empty", kind: .gauge, help: "no samples")
        let requests = RemoteWriteEncoder(maxSeriesPerRequest: 100).requests(snapshot, timestamp: 1_000)
        var reference = ByteWriter()
        for (name, labels, value) in [
            ("danube_agent_source_up", [Label("instance", "1"), Label("source", "a \"b\"\\c\nd")], 1.0),
            ("danube_agent_x_total", [], 12.5),
            ("danube_agent_d_seconds_bucket", [Label("le", "0.1")], 2),
            ("danube_agent_d_seconds_bucket", [Label("le", "+Inf")], 3),
            ("danube_agent_d_seconds_sum", [], .infinity),
            ("danube_agent_d_seconds_count", [], 3),
        ] {
            Self.referenceTimeSeries(name: name, labels: labels, value: value, timestamp: 1_000, into: &reference)
        }
        #expect(requests.map(\.samples) == [6])
        #expect(requests.first?.body == reference.bytes)
    }

    /// TLS sends a host name as SNI (and checks the certificate against it), but never an IP address literal.
    @Test func theServerNameIsTheHostUnlessItIsAnAddress() throws {
        func name(_ url: String) throws -> String? {
            try PushEndpoint(url, option: "--remote-write-url", example: "", credentialsOption: "").serverName
        }
        #expect(try name("https://mimir.example:443/push") == "mimir.example")
        #expect(try name("https://cafe.de/push") == "cafe.de")
        #expect(try name("https://127.0.0.1:9090/push") == nil)
        #expect(try name("https://[::1]:9090/push") == nil)
    }

    @Test func badSettingsFailAtStartWithOneLine() throws {
        func error(_ configure: (inout RemoteWriteConfiguration) -> Void) -> AgentConfigurationError.Code? {
            var configuration = RemoteWriteConfiguration()
            configure(&configuration)
            do {
                _ = try configuration.targets()
                return nil
            } catch {
                #expect(!error.description.contains("\n"), "one line: \(error)")
                return error.code
            }
        }
        #expect(error { $0.urls = ["ftp://mimir/api/v1/push"] } == .remoteWriteURL)
        #expect(error { $0.urls = ["https://mimir/api/v1/push"] } == nil, "the system's CA store")
        #expect(error { $0.urls = ["https://mimir/x"]; $0.tls.caFile = "/nonexistent/ca.crt" } == .pushTLS)
        #expect(error { $0.urls = ["https://mimir/x"]; $0.tls.caFile = "/etc/hostname" } == .pushTLS, "no PEM certificate in it")
        #expect(error { $0.urls = ["https://mimir/x"]; $0.tls.certFile = "/etc/hostname" } == .pushTLS, "a certificate needs its key")
        #expect(error { $0.urls = ["http://mimir/x"]; $0.tls.caFile = "/etc/ssl/certs/ca-certificates.crt" } == .pushTLS, "no https receiver")
        #expect(error { $0.urls = ["mimir:9009"] } == .remoteWriteURL)
        #expect(error { $0.urls = ["http://user:secret@mimir/api/v1/push"] } == .remoteWriteURL)
        #expect(error { $0.urls = ["http://mimir/x"]; $0.bearerTokenFile = "/nonexistent/token" } == .bearerToken)
        #expect(error { $0.urls = ["http://mimir/x"]; $0.interval = .zero } == .remoteWrite)
        let password = Scratch.path("password", suffix: ".txt")
        try "secret\n".write(toFile: password, atomically: true, encoding: .utf8)
        #expect(error { $0.urls = ["http://mimir/x"]; $0.bearerTokenFile = password; $0.credentials.basicAuthUser = "u"; $0.credentials.basicAuthPasswordFile = password } == .bearerToken)
        #expect(error { $0.urls = ["http://mimir/x"]; $0.credentials.basicAuthUser = "u" } == .bearerToken, "a user needs a password file")
        #expect(error { $0.urls = ["http://mimir/x"]; $0.credentials.basicAuthUser = "a:b"; $0.credentials.basicAuthPasswordFile = password } == .bearerToken)
        #expect(error { $0.urls = ["http://mimir/x"]; $0.credentials.basicAuthUser = "u"; $0.credentials.basicAuthPasswordFile = "/nonexistent" } == .bearerToken)
        #expect(error { $0.urls = ["http://mimir/x"]; $0.credentials.headers = ["Authorization": "Bearer x"] } == .remoteWrite)
        #expect(error { $0.urls = ["http://mimir/x"]; $0.credentials.headers = ["Bad Name": "x"] } == .remoteWrite)
        #expect(error { $0.urls = ["http://mimir/x"]; $0.credentials.headers = ["X-Scope-OrgID": "a\r\nb"] } == .remoteWrite)
        #expect(error { $0.urls = ["http://mimir/x"]; $0.credentials.headers = ["X-Scope-OrgID": "tenant-a"]
            $0.credentials.basicAuthUser = "u"; $0.credentials.basicAuthPasswordFile = password } == nil)
        #expect(error { $0.urls = ["http://mimir:9009/api/v1/push?tenant=a"] } == nil)
        // A library caller building an agent is told too, at once (it used to get an agent pushing nowhere).
        var configuration = AgentConfiguration(ingestSocketPath: TestAgent.temporarySocketPath())
        configuration.remoteWrite.urls = ["mimir:9009"]
        #expect(throws: AgentConfigurationError.self) { _ = try Agent(configuration: configuration, logger: Logger(label: "test")) }
        var configured = RemoteWriteConfiguration()
        configured.urls = ["http://mimir:9009/api/v1/push?tenant=a"]
        let target = try #require(try configured.targets().first)
        #expect(target.host == "mimir" && target.port == 9009 && target.path == "/api/v1/push?tenant=a")
    }

    /// The body is a snappy block of a WriteRequest whose labels are sorted with `__name__` among them.
    @Test func requestsAreSnappyBlocksOfSortedTimeSeries() throws {
        var writer = ByteWriter()
        Self.referenceTimeSeries(name: "m_total", labels: [Label("b", "2"), Label("A", "1")], value: 1.5, timestamp: 1_000, into: &writer)
        let body = writer.bytes
        #expect(Snappy.uncompress(Snappy.compress(body)) == body)
        #expect(Snappy.uncompress([0xff, 0xff, 0xff]) == nil)
        // WriteRequest.timeseries(1) { labels(1) { name(1) value(2) } ... samples(2) { value(1) fixed64, timestamp(2) } }
        let text = String(decoding: body.filter { $0 >= 0x20 && $0 < 0x7f }, as: UTF8.self)
        #expect(text.range(of: "A1")!.lowerBound < text.range(of: "__name__m_total")!.lowerBound)
        #expect(text.range(of: "__name__m_total")!.lowerBound < text.range(of: "b2")!.lowerBound)
        #expect(body.first == 0x0A && Int(body[1]) == body.count - 2)
        // samples: tag, length 12, value tag + 8 bytes, timestamp tag + varint 1000 (2 bytes)
        let sample = Array(body.suffix(14))
        #expect(sample[0] == 0x12 && sample[1] == 12 && sample[2] == 0x09 && sample[11] == 0x10 && Array(sample[12...]) == [0xE8, 0x07])
        #expect(Double(bitPattern: sample[3..<11].reversed().reduce(0) { $0 << 8 | UInt64($1) }) == 1.5)
    }

    /// The fast path (labels encoded once per series, `__name__` and `le` spliced in) writes exactly what encoding
    /// each sample's sorted label set from scratch writes.
    @Test func labelsEncodedOncePerSeriesEqualSortingEverySample() {
        let sets: [[Label]] = [
            [], [Label("A", "upper")], [Label("A", "1"), Label("a", "2"), Label("ka", "3"), Label("topic", "/t \"q\"")],
            [Label("lf", "x"), Label("m", "ü")], [Label("Z", "z"), Label("zz", "")],
        ]
        for labels in sets {
            for extra in [nil, Label("le", "2.5")] {
                var reference = ByteWriter(), fast = ByteWriter()
                Self.referenceTimeSeries(name: "m_bucket", labels: labels + (extra.map { [$0] } ?? []), value: 7, timestamp: 1_700_000_000_000, into: &reference)
                RemoteWriteEncoder.SeriesLabels(labels).timeSeries(
                    name: RemoteWriteEncoder.label("__name__", "m_bucket"), extra: extra.map { RemoteWriteEncoder.label($0.name, $0.value) } ?? [],
                    value: 7, timestamp: 1_700_000_000_000, into: &fast)
                #expect(fast.bytes == reference.bytes, "\(labels) \(String(describing: extra))")
            }
        }
    }

    /// A receiver that accepts connections and never answers holds a request for `requestTimeout` only, and the
    /// queue behind it stays within `maxPendingSamples` (the oldest requests are dropped and counted).
    @Test func aHungReceiverHoldsNeitherARequestNorTheQueueForever() async throws {
        let port = unusedPort()
        let listener = try #require(boundLoopbackSocket(port: port))
        defer { close(listener) }
        #expect(listen(listener, 64) == 0) // never accepted: the kernel completes handshakes, nobody reads
        let url = "http://127.0.0.1:\(port)/api/v1/write"
        let agent = try await TestAgent { configuration in
            configuration.remoteWrite.urls = [url]
            configuration.remoteWrite.interval = .milliseconds(100)
            configuration.remoteWrite.requestTimeout = .milliseconds(300)
            configuration.remoteWrite.maxPendingSamples = 5
            configuration.remoteWrite.includeAgentSeries = false // one sample per push
        }
        let emitter = agent.emitter()
        try emitter.counter("rw_hung_total").increment()
        #expect(emitter.waitUntilDelivered())
        let labels = "{url=\"\(url)\"}"
        #expect(try await eventuallyAsync {
            let samples = try agent.samples()
            return (samples["danube_agent_remote_write_samples_retried_total\(labels)"] ?? 0) >= 2
                && (samples["danube_agent_remote_write_samples_failed_total\(labels)"] ?? 0) > 0
        })
        #expect(try agent.samples()["danube_agent_remote_write_samples_pending\(labels)"] ?? .infinity <= 5)
        #expect(agent.logs.contains("remote write failing", "no response within"))
        emitter.shutdown()
        await agent.stop()
    }

    /// A receiver that answers 200 late, after the queue overflowed while its request was in flight: the request in
    /// flight is never dropped for room, its 200 removes that request and no other, and every request is counted
    /// once, as sent or failed (the agent used to remove another request and trap on a negative pending count).
    @Test func aLate200AfterTheQueueOverflowedCountsEveryRequestOnce() async throws {
        let receiver = try MisbehavingReceiver(.lateOK)
        defer { receiver.stop() }
        let agent = try await TestAgent { configuration in
            configuration.remoteWrite.urls = [receiver.url]
            configuration.remoteWrite.interval = .milliseconds(50)
            configuration.remoteWrite.requestTimeout = .seconds(20)
            configuration.remoteWrite.maxPendingSamples = 4
            configuration.remoteWrite.maxSeriesPerRequest = 2
        }
        let emitter = agent.emitter()
        // Three series: each push is a request of two samples and one of one, and the queue holds four, so the
        // request in flight (two) is what overflow drops first and the queue's head is then a request of one.
        for path in ["a", "b", "c"] { try emitter.counter("rw_late_total", labels: [("path", path)]).increment() }
        #expect(emitter.waitUntilDelivered())
        let labels = "{url=\"\(receiver.url)\"}"
        // Once every push carries the three series, a request of two is held while later pushes overflow the queue.
        #expect(await eventuallyAsync { receiver.accepted > 0 })
        receiver.holdNext()
        let held = receiver.requests + 1
        #expect(try await eventuallyAsync {
            let failed = try agent.samples()["danube_agent_remote_write_samples_failed_total\(labels)"] ?? 0
            return receiver.requests == held && failed >= 10
        })
        receiver.release()
        #expect(await eventuallyAsync { receiver.accepted >= held + 10 })
        receiver.stop()
        let samples = try agent.samples()
        let sent = samples["danube_agent_remote_write_samples_sent_total\(labels)"] ?? -1
        let pending = samples["danube_agent_remote_write_samples_pending\(labels)"] ?? -1
        #expect(pending >= 0 && pending <= 4)
        #expect(sent >= Double(receiver.accepted - 1) && sent <= Double(2 * receiver.accepted), "sent \(sent), receiver accepted \(receiver.accepted)")
        emitter.shutdown()
        await agent.stop()
    }

    /// An unreadable bearer token file holds the request back (logged, counted, retried): it is never sent without
    /// credentials.
    /// Into a Prometheus receiver that itself requires basic auth (`--web.config.file`, bcrypt): the right password
    /// is stored, a wrong one is refused (401, dropped and counted, never retried), a password file that cannot be
    /// read sends nothing.
    @Test func basicAuthIntoAReceiverThatRequiresIt() async throws {
        let hash = Scratch.path("hash", suffix: ".txt")
        let python = try ChildProcess("/usr/bin/python3", ["-W", "ignore", "-c",
            "import crypt, sys; open(sys.argv[1], 'w').write(crypt.crypt('secret', crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 4)))", hash],
            output: hash + ".log")
        #expect(ChildProcess.exitedCleanly(python.wait(timeout: .seconds(30))))
        let webConfig = Scratch.path("web", suffix: ".yml")
        try "basic_auth_users:\n  danube: \(try String(contentsOfFile: hash, encoding: .utf8))\n".write(toFile: webConfig, atomically: true, encoding: .utf8)
        let port = unusedPort()
        let prometheus = try PrometheusServer(remoteWriteReceiverOn: port, flags: ["--web.config.file=\(webConfig)"])
        defer { prometheus.stop() }
        prometheus.authorization = "Basic " + Data("danube:secret".utf8).base64EncodedString()
        let right = Scratch.path("right", suffix: ".txt"), wrong = Scratch.path("wrong", suffix: ".txt")
        try "secret\n".write(toFile: right, atomically: true, encoding: .utf8)
        try "guess\n".write(toFile: wrong, atomically: true, encoding: .utf8)
        let url = "http://127.0.0.1:\(port)/api/v1/write"
        let agent = try await TestAgent { configuration in
            configuration.remoteWrite.urls = [url]
            configuration.remoteWrite.interval = .milliseconds(200)
            configuration.remoteWrite.credentials.basicAuthUser = "danube"
            configuration.remoteWrite.credentials.basicAuthPasswordFile = right
            configuration.remoteWrite.credentials.headers = ["X-Scope-OrgID": "tenant-a"]
        }
        let emitter = agent.emitter()
        try emitter.counter("rw_auth_total").increment(by: 5)
        #expect(emitter.waitUntilDelivered())
        #expect(await eventuallyAsync(timeout: .seconds(30)) { (try? Self.prometheusValue(prometheus, "rw_auth_total")) == 5 }, "\(prometheus.log)")
        await agent.stop()

        let refused = try await TestAgent { configuration in
            configuration.remoteWrite.urls = [url]
            configuration.remoteWrite.interval = .milliseconds(200)
            configuration.remoteWrite.credentials.basicAuthUser = "danube"
            configuration.remoteWrite.credentials.basicAuthPasswordFile = wrong
        }
        let refusedEmitter = refused.emitter()
        try refusedEmitter.counter("rw_auth_refused_total").increment()
        #expect(refusedEmitter.waitUntilDelivered())
        let failures = "danube_agent_remote_write_request_failures_total{reason=\"status_4xx\",url=\"\(url)\"}"
        #expect(try await eventuallyAsync { (try refused.samples()[failures] ?? 0) >= 1 })
        #expect(try refused.samples()["danube_agent_remote_write_request_failures_total{reason=\"status_5xx\",url=\"\(url)\"}"] == 0)
        #expect(refused.logs.contains("remote write request dropped", "401"))
        #expect((try? Self.prometheusValue(prometheus, "rw_auth_refused_total")) == nil, "nothing stored with the wrong password")
        refusedEmitter.shutdown()
        await refused.stop()
    }

    @Test func anUnreadableTokenFileSendsNothingWithoutCredentials() async throws {
        let receiver = try MisbehavingReceiver(.status(200))
        defer { receiver.stop() }
        let token = Scratch.path("token", suffix: ".txt")
        try "secret\n".write(toFile: token, atomically: true, encoding: .utf8)
        let agent = try await TestAgent { configuration in
            configuration.remoteWrite.urls = [receiver.url]
            configuration.remoteWrite.interval = .milliseconds(100)
            configuration.remoteWrite.bearerTokenFile = token
        }
        try FileManager.default.removeItem(atPath: token)
        let emitter = agent.emitter()
        try emitter.counter("rw_token_total").increment()
        #expect(emitter.waitUntilDelivered())
        let failures = "danube_agent_remote_write_request_failures_total{reason=\"credentials\",url=\"\(receiver.url)\"}"
        #expect(try await eventuallyAsync { (try agent.samples()[failures] ?? 0) >= 2 })
        #expect(receiver.requests == 0)
        #expect(agent.logs.contains("remote write credentials unreadable", token))
        try "secret\n".write(toFile: token, atomically: true, encoding: .utf8)
        #expect(await eventuallyAsync(timeout: .seconds(15)) { receiver.accepted > 0 })
        emitter.shutdown()
        await agent.stop()
    }
}
