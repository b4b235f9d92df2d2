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
}
