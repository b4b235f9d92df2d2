import DanubeMetricsEmitter
import DanubeMetricsTestKit
import DanubeMetricsWire
import Foundation
import Synchronization
import Testing

/// Everything a hostile or broken peer can do, at once, against an agent process: random and crafted frames,
/// abandoned and idle emitter connections, slowloris and oversized HTTP requests, a client that pipelines scrapes
/// and never reads, and concurrent scrapes. The agent must stay up, its memory within a bound of where it
/// started, every scrape answered within its timeout, and a well-behaved emitter's count exact. The figures it
/// prints are in docs/RELIABILITY.md.
@Suite struct HostileRunTests {
    @Test func theAgentSurvivesEveryAttackAtOnceAndBystandersStayExact() async throws {
        let socket = TestAgent.temporarySocketPath()
        let port = unusedPort()
        let agent = try ChildProcess(Executables.agent.path, [
            "--ingest-socket", socket, "--listen", "127.0.0.1:\(port)", "--log-format", "text", "--log-level", "error",
            "--state-dir", Scratch.makeDirectory("hostile-state"), "--hello-timeout", "1s", "--http-request-timeout", "2s",
            "--http-max-connections", "32", "--checkpoint-interval", "200ms",
        ], output: socket + ".log")
        defer { agent.stop() }
        #expect(eventually { (try? HTTPClient.get(port: port, path: "/healthz"))?.status == 200 })
        let bystander = TestAgent.emitter(socketPath: socket, name: "bystander")
        let counter = try bystander.counter("test_bystander_total")
        let histogram = try bystander.histogram("test_bystander_ms", buckets: [1, 10, 100])
        var recorded: UInt64 = 0
        func record(_ n: Int) {
            for i in 0..<n {
                counter.increment()
                histogram.observe(Double(i % 200))
            }
            recorded += UInt64(n)
        }
        record(1_000)
        #expect(bystander.waitUntilDelivered(timeout: .seconds(10)))
        let startRSS = FloodTests.residentKiB(agent.pid)

        // Scrapes from four threads throughout; the slowest is what a scraper saw.
        let stop = Atomic<Bool>(false)
        let slowest = Mutex<Duration>(.zero)
        let failedScrapes = Atomic<Int>(0)
        let scrapers = (0..<4).map { _ in
            Thread {
                while !stop.load(ordering: .relaxed) {
                    let started = ContinuousClock.now
                    if (try? HTTPClient.get(port: port, path: "/metrics"))?.status == 200 {
                        slowest.withLock { $0 = max($0, ContinuousClock.now - started) }
                    } else {
                        failedScrapes.add(1, ordering: .relaxed)
                    }
                    Thread.sleep(forTimeInterval: 0.05)
                }
            }
        }
        scrapers.forEach { $0.start() }

        var random = SplitMix(seed: 2_026)
        // Idle emitter connections that never say HELLO (closed by the agent after the HELLO timeout).
        var idle = (0..<300).compactMap { _ in try? RawSource(path: socket) }
        // Slowloris HTTP clients, an oversized header, a pipelining client that never reads.
        let slow = (0..<40).compactMap { _ in try? HTTPHardeningTests.RawHTTP(port: port) }
        slow.forEach { $0.send("GET /metrics HTTP/1.1\r\nHost: x\r\n") }
        let huge = try HTTPHardeningTests.RawHTTP(port: port)
        huge.send("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 40_000))\r\n\r\n")
        let greedy = try HTTPHardeningTests.RawHTTP(port: port)
        greedy.send(String(repeating: "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", count: 500))
        for round in 0..<3_000 {
            switch round % 3 {
            case 0: try FloodTests.attack(socket, &random)        // random and crafted frames
            case 1: _ = try? RawSource(path: socket)               // connect and abandon
            default:                                               // HELLO, then abandon
                let source = try? RawSource(path: socket)
                source?.handshake(name: "abandoned-\(round)")
            }
            record(3)
            if round % 500 == 0 { slow.forEach { $0.send("X-Slow-\(round): y\r\n") } }
        }
        idle.removeAll()
        try await Task.sleep(for: .seconds(2))
        stop.store(true, ordering: .relaxed)
        while scrapers.contains(where: \.isExecuting) { try await Task.sleep(for: .milliseconds(20)) }

        #expect(bystander.waitUntilDelivered(timeout: .seconds(20)), "\(bystander.stats)")
        let samples = Samples(parsing: try HTTPClient.get(port: port, path: "/metrics").text)
        let endRSS = FloodTests.residentKiB(agent.pid)
        let worst = slowest.withLock { $0 }
        print("hostile run: RSS \(startRSS) KiB at start, \(endRSS) KiB after; slowest of the concurrent scrapes \(worst); \(failedScrapes.load(ordering: .relaxed)) scrapes failed; bystander \(recorded) recorded")
        #expect(agent.isRunning)
        #expect(samples["test_bystander_total"] == Double(recorded))
        #expect(samples["test_bystander_ms_count"] == Double(recorded))
        #expect(worst < .seconds(2), "a scrape took \(worst)")
        #expect(failedScrapes.load(ordering: .relaxed) == 0)
        #expect(samples.sum("danube_agent_checkpoint_failures_total") == 0)
        #expect(samples.sum("danube_agent_decode_errors_total") >= 900)
        #expect(samples["danube_agent_connections_refused_total{reason=\"hello_timeout\"}"] ?? 0 >= 300)
        // Within 32 MiB of where it started after the warm-up, and no per-attack growth.
        #expect(startRSS > 0 && endRSS - startRSS < 32 * 1_024, "RSS \(startRSS) KiB -> \(endRSS) KiB")
        bystander.shutdown()
    }

    /// The agent binary with `arguments` (uncatalogued families of up to 1M series), ready to serve.
    static func startAgent(_ arguments: [String], healthy: (Int) -> Bool = { port in (try? HTTPClient.get(port: port, path: "/healthz"))?.status == 200 })
        throws -> (agent: ChildProcess, socket: String, port: Int) {
        let socket = TestAgent.temporarySocketPath()
        let port = unusedPort()
        let agent = try ChildProcess(Executables.agent.path, [
            "--ingest-socket", socket, "--listen", "127.0.0.1:\(port)", "--log-format", "text", "--log-level", "error",
            "--max-series-per-family", "1000000",
        ] + arguments, output: socket + ".log")
        #expect(eventually { healthy(port) })
        return (agent, socket, port)
    }

    /// Native histograms from a flood of definitions: three connections in turn (two at a time allowed) each define
    /// 40,000 native series (4 families of 10,000, 256-bucket windows) and fill 8 buckets of each. The store stops
    /// at `--memory-limit` (refusing new series as limit_exceeded, and window buckets new to a series), its memory
    /// stays there and the agent's RSS with it (100,000 such series took 522 MiB, 2 KiB per empty window and
    /// copy), and scrapes of every format go on.
    @Test func aNativeDefinitionFloodStaysWithinTheMemoryLimit() async throws {
        let limit = 16 << 20
        let (agent, socket, port) = try Self.startAgent(["--max-sources", "2", "--memory-limit", "\(limit)"])
        defer { agent.stop() }
        let startRSS = FloodTests.residentKiB(agent.pid)
        let native = NativeHistogramSpec(schema: 3, zeroThreshold: 0x1p-5, maxBuckets: 256)
        for connection in 0..<3 {
            let source = try RawSource(path: socket)
            #expect(source.handshake(name: "flood-\(connection)", instance: UInt64(100 + connection)) != nil)
            // The agent answers refused series; read them so that it keeps reading.
            let reading = Atomic<Bool>(true)
            let reader = Thread { while reading.load(ordering: .relaxed), source.receive() != nil {} }
            reader.start()
            var sequence: UInt64 = 1
            for first in stride(from: 0, to: 40_000, by: 500) {
                let definitions = (first..<first + 500).map { id in
                    SeriesDefinition(id: UInt32(id), kind: .histogram, name: "test_flood_\(id % 4)_ms", help: "",
                                     labels: [Label("c", "\(connection)"), Label("n", "\(id)")], bounds: [1, 10], native: native)
                }
                source.send(.define(DefineBatch(sequence: sequence, definitions: definitions)))
                sequence += 1
            }
            for first in stride(from: 0, to: 40_000, by: 500) {
                var batch = DeltaBatch(sequence: sequence)
                for id in first..<first + 500 {
                    let buckets = (0..<8).map { BucketDelta(index: UInt32(4 + 20 * $0 + id % 7), count: 1) }
                    batch.deltas.append(Delta(op: .histogram, seriesID: UInt32(id), bucketStart: batch.buckets.count, bucketCount: 8, sum: 8))
                    batch.buckets += buckets
                }
                source.send(.deltas(batch))
                sequence += 1
            }
            // Applied once the agent has read every DELTAS frame sent so far.
            var finished = false
            for _ in 0..<60 where !finished {
                try await Task.sleep(for: .milliseconds(500))
                finished = (try? HTTPClient.get(port: port, path: "/metrics").text)
                    .map { Samples(parsing: $0)["danube_agent_frames_received_total{type=\"deltas\"}"] ?? 0 } == Double(80 * (connection + 1))
            }
            #expect(finished)
            // Closed before the next one (the reader would otherwise hold it open until its receive timed out,
            // and a third connection would pass --max-sources).
            reading.store(false, ordering: .relaxed)
            shutdown(source.fd, Int32(SHUT_RDWR))
            #expect(eventually { (try? HTTPClient.get(port: port, path: "/metrics").text).map { Samples(parsing: $0)["danube_agent_sources_connected"] } == 0 })
        }
        let text = try HTTPClient.get(port: port, path: "/metrics").text
        let protobuf = try HTTPClient.get(port: port, path: "/metrics", headers: [("Accept", ProtobufExpositionTests.protobuf)])
        let samples = Samples(parsing: text)
        let endRSS = FloodTests.residentKiB(agent.pid)
        let held = samples["danube_agent_series_memory_bytes"] ?? .infinity
        print("native flood: \(samples["danube_agent_series"] ?? 0) series held in \(held) bytes (limit \(limit)); RSS \(startRSS) -> \(endRSS) KiB; text \(text.utf8.count) B, protobuf \(protobuf.body.count) B")
        #expect(agent.isRunning)
        #expect(protobuf.status == 200)
        #expect(held <= Double(limit) + 65_536 && held > Double(limit) * 0.9, "the limit, give or take one frame's window buckets")
        #expect(samples["danube_agent_native_buckets_dropped_total"] ?? 0 > 0)
        #expect(samples.sum("danube_agent_series_rejected_total") > 0)
        #expect((samples.values.first { $0.key.contains("reason=\"memory_limit\"") }?.value ?? 0) > 0)
        // The store's bound, the scrape's own buffers and the allocator's slack.
        #expect(endRSS - startRSS < 3 * limit / 1_024, "RSS \(startRSS) KiB -> \(endRSS) KiB")
    }

    /// The same flood, with `--series-ttl`: three connections in turn each define 20,000 series against
    /// `--max-series 20001` and close. Each one's series are forgotten one ttl after it closed, so the next one
    /// fits; a bystander connection that defined a series and never updated it keeps it, since it is connected.
    @Test func closedConnectionsSeriesAreForgottenAfterTheTTLAndLeaveRoom() async throws {
        let (agent, socket, port) = try Self.startAgent(["--max-series", "20001", "--series-ttl", "1s"])
        defer { agent.stop() }
        func samples() -> Samples { Samples(parsing: (try? HTTPClient.get(port: port, path: "/metrics").text) ?? "") }
        let bystander = try RawSource(path: socket)
        #expect(bystander.handshake(name: "bystander", instance: 99) != nil)
        bystander.send(.define(DefineBatch(sequence: 1, definitions: [
            SeriesDefinition(id: 0, kind: .counter, name: "test_bystander_total", help: "", labels: []),
        ])))
        #expect(eventually { samples()["danube_agent_series"] == 1 })
        let startRSS = FloodTests.residentKiB(agent.pid)
        for connection in 0..<3 {
            var source: RawSource? = try RawSource(path: socket)
            #expect(source?.handshake(name: "churn-\(connection)", instance: UInt64(100 + connection)) != nil)
            var sequence: UInt64 = 1
            for first in stride(from: 0, to: 20_000, by: 1_000) {
                source?.send(.define(DefineBatch(sequence: sequence, definitions: (first..<first + 1_000).map { id in
                    SeriesDefinition(id: UInt32(id), kind: .counter, name: "test_churn_total", help: "",
                                     labels: [Label("c", "\(connection)"), Label("n", "\(id)")])
                })))
                sequence += 1
                source?.send(.deltas(DeltaBatch(sequence: sequence, deltas: (first..<first + 1_000).map {
                    Delta(op: .counterAdd, seriesID: UInt32($0), value: 1)
                })))
                sequence += 1
            }
            #expect(eventually { samples().sum("test_churn_total") == 20_000 }, "connection \(connection): every series fits")
            #expect(samples().sum("danube_agent_series_rejected_total") == 0)
            source = nil
            #expect(eventually { samples()["danube_agent_series"] == 1 }, "forgotten a ttl after the connection closed")
            #expect(samples()["danube_agent_series_expired_total"] == Double(20_000 * (connection + 1)))
        }
        let end = samples()
        #expect(end["test_bystander_total"] == 0, "a connected source's series stays")
        #expect(end["danube_agent_series_memory_bytes"] ?? .infinity < 1_024)
        let endRSS = FloodTests.residentKiB(agent.pid)
        print("series ttl churn: RSS \(startRSS) -> \(endRSS) KiB after 60,000 series came and went")
        #expect(endRSS - startRSS < 48 * 1_024, "RSS \(startRSS) KiB -> \(endRSS) KiB")
        #expect(agent.isRunning)
        _ = bystander
    }

    /// TLS on the HTTP listener: clients that open a connection and never start the handshake, or stop in the
    /// middle of their ClientHello, count against the connection cap like any idle connection (evicted for a
    /// scraper) and are closed after the request timeout; scrapes over TLS go on meanwhile.
    @Test func stalledTLSHandshakesAreEvictedAndClosedAfterTheRequestTimeout() async throws {
        let pki = try TestCertificates()
        let config = "\(pki.directory)/web.yml"
        try "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n".write(toFile: config, atomically: true, encoding: .utf8)
        let (agent, _, port) = try Self.startAgent(["--web.config.file", config, "--http-request-timeout", "1s", "--http-max-connections", "8"],
                                                   healthy: { port in (try? curl("https://localhost:\(port)/healthz", ["--cacert", pki.caCert]))?.status == 200 })
        defer { agent.stop() }
        let stalled = try (0..<24).map { _ in try HTTPHardeningTests.RawHTTP(port: port) }
        // Half send nothing; half a TLS record header announcing 512 bytes of ClientHello and then 9 of them.
        let partialHello: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03, 0x00, 0x01, 0x02]
        for client in stalled.prefix(12) {
            _ = partialHello.withUnsafeBytes { sendBytes(client.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        try await Task.sleep(for: .milliseconds(300))
        for _ in 0..<5 {
            let scrape = try curl("https://localhost:\(port)/metrics", ["--cacert", pki.caCert])
            #expect(scrape.status == 200, "\(scrape.body)")
        }
        // Every stalled connection is closed by the agent (readAll returns on close; its socket timeout is 5 s).
        for client in stalled {
            var buffer = [UInt8](repeating: 0, count: 64)
            let read = buffer.withUnsafeMutableBytes { recv(client.fd, $0.baseAddress, $0.count, 0) }
            #expect(read == 0 || (read < 0 && errno == ECONNRESET), "a stalled handshake is still open (read \(read), errno \(errno))")
        }
        #expect(agent.isRunning)
    }
}
