@testable import DanubeMetricsAgent
import NIOCore
import NIOEmbedded
import DanubeMetricsTestKit
import Foundation
import Synchronization
import Testing

/// Slow and oversized HTTP requests against a scrape that must not wait for them.
@Suite struct HTTPHardeningTests {
    /// A TCP connection to the agent that the test writes to by hand.
    final class RawHTTP {
        let fd: Int32
        init(port: Int) throws {
            fd = try HTTPClient.connect(port: port, timeoutSeconds: 5)
        }
        deinit { close(fd) }
        @discardableResult
        func send(_ text: String) -> Bool {
            let bytes = Array(text.utf8)
            return bytes.withUnsafeBytes { sendBytes(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
        }
        /// What the server sent until it closed (or 5 s passed).
        func readAll() -> String {
            var out: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4_096)
            while true {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                out += chunk[0..<n]
            }
            return String(decoding: out, as: UTF8.self)
        }
    }

    /// Times a scrape; fails the test if it does not succeed.
    func timedScrape(_ agent: TestAgent) throws -> Duration {
        let started = ContinuousClock.now
        let result = try agent.scrape()
        #expect(result.status == 200)
        return ContinuousClock.now - started
    }

    /// Scrapes the agent has rendered so far (its own scrape-duration histogram counts them).
    func renders(_ agent: TestAgent) throws -> Double {
        try agent.samples()["danube_agent_scrape_duration_seconds_count"] ?? 0
    }

    @Test func aClientThatPipelinesAndNeverReadsHoldsOneResponseNotOnePerRequest() async throws {
        let agent = try await TestAgent { $0.http.responseTimeout = .seconds(2) }
        let emitter = agent.emitter()
        for i in 0..<2_000 { try emitter.counter("test_pipelining_total", labels: [("n", "\(i)")]).increment() }
        #expect(emitter.waitUntilDelivered())
        let greedy = try RawHTTP(port: agent.port)
        var small: Int32 = 4_096
        setsockopt(greedy.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        let before = try renders(agent)
        #expect(greedy.send(String(repeating: "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", count: 2_000)))
        try await Task.sleep(for: .milliseconds(1_500))
        // Responses go out until the kernel's socket buffers are full (a few MB on loopback: tens of these ~80 KB
        // responses), then the next request waits; without that, all 2,000 were rendered and queued in memory.
        let rendered = try renders(agent) - before
        #expect(rendered < 200, "\(rendered) responses rendered for a client that reads nothing")
        // It holds its connection no longer than the response timeout; scrapes go on meanwhile.
        try await Task.sleep(for: .milliseconds(1_500))
        #expect(greedy.readAll().hasPrefix("HTTP/1.1 200 OK"))
        #expect(try renders(agent) - before < 250)
        #expect(try timedScrape(agent) < .seconds(2))
        emitter.shutdown()
        await agent.stop()
    }

    /// Scrapes of one format that arrive together share renders: 40 concurrent protobuf scrapes of 20,000 series
    /// cost a few renders, not 40 in a row on the render thread; every scrape gets the whole body.
    @Test func concurrentScrapesOfOneFormatShareARender() async throws {
        let agent = try await TestAgent()
        let emitter = agent.emitter()
        for i in 0..<20_000 { try emitter.counter("test_shared_\(i % 4)_total", labels: [("n", "\(i)")]).increment() }
        #expect(emitter.waitUntilDelivered(timeout: .seconds(20)))
        let before = try renders(agent)
        let sizes = Mutex<[Int]>([])
        let threads = (0..<40).map { _ in
            Thread {
                let body = (try? agent.scrape(accept: ProtobufExpositionTests.protobuf))?.body.count ?? 0
                sizes.withLock { $0.append(body) }
            }
        }
        threads.forEach { $0.start() }
        #expect(await eventuallyAsync(timeout: .seconds(60)) { sizes.withLock { $0.count } == 40 })
        let rendered = try renders(agent) - before - 1 // the scrape that reads the count renders too
        let all = sizes.withLock { $0 }
        // Renders differ only in the agent's own figures (scrape counts and times): within a few hundred bytes.
        #expect(all.allSatisfy { $0 > 400_000 && abs($0 - all[0]) < 1_000 }, "every scrape got the whole body: \(Set(all))")
        #expect(rendered <= 10, "\(rendered) renders for 40 scrapes")
        emitter.shutdown()
        await agent.stop()
    }

    @Test func slowlorisClientsNeitherDelayAScrapeNorStayForever() async throws {
        let agent = try await TestAgent { configuration in
            configuration.http.maxConnections = 16
            configuration.http.requestTimeout = .seconds(2)
        }
        // Twice the connection cap of clients that trickle a request byte by byte and never finish it.
        let slow = try (0..<32).map { _ in try RawHTTP(port: agent.port) }
        for client in slow { client.send("GET /metrics HTTP/1.1\r\nHost: x\r\n") }
        // A slowloris holds its connections for long; connections younger than the eviction age are spared.
        try await Task.sleep(for: .milliseconds(300))
        var slowest = Duration.zero
        for round in 0..<10 {
            for client in slow { client.send("X-Slow-\(round): y\r\n") }
            slowest = max(slowest, try timedScrape(agent))
            try await Task.sleep(for: .milliseconds(100))
        }
        // Every scrape got through (the cap evicted idle slow clients); none waited for them.
        #expect(slowest < .seconds(2), "slowest scrape \(slowest)")
        // A client that never completes its request is closed after the request timeout.
        let lingering = try RawHTTP(port: agent.port)
        lingering.send("GET /metrics HTTP/1.1\r\n")
        let started = ContinuousClock.now
        #expect(lingering.readAll().isEmpty)
        #expect(ContinuousClock.now - started < .seconds(4))
        await agent.stop()
    }

    @Test func oversizedRequestsAreRefusedWhileScrapesGoOn() async throws {
        let agent = try await TestAgent()
        let big = try RawHTTP(port: agent.port)
        big.send("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 40_000))\r\n\r\n")
        let answer = big.readAll()
        #expect(answer.hasPrefix("HTTP/1.1 431") || answer.hasPrefix("HTTP/1.1 400"), "\(answer.prefix(80))")
        let body = try RawHTTP(port: agent.port)
        body.send("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + String(repeating: "b", count: 100_000))
        #expect(body.readAll().hasPrefix("HTTP/1.1 413"))
        let huge = try RawHTTP(port: agent.port)
        huge.send("GET /metrics HTTP/1.1\r\nHost: x\r\n")
        for _ in 0..<64 { if !huge.send("X-Flood: \(String(repeating: "c", count: 16_000))\r\n") { break } }
        #expect(huge.readAll().hasPrefix("HTTP/1.1 4"))
        #expect(try timedScrape(agent) < .seconds(2))
        let post = try RawHTTP(port: agent.port)
        post.send("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        #expect(post.readAll().hasPrefix("HTTP/1.1 405"))
        await agent.stop()
    }
}

/// The connection cap's eviction policy, step by step on a fake clock.
@Suite struct HTTPConnectionCapTests {
    @Test func evictsTheOldestIdleConnectionButSparesYoungAndBusyOnes() throws {
        let connections = HTTPConnections(limit: 2, evictionAge: .milliseconds(250))
        let start = NIODeadline.now()
        let channels = (0..<8).map { _ in EmbeddedChannel() }
        func open(_ index: Int) -> Bool { channels[index].isActive }
        for channel in channels { try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait() }
        #expect(connections.admit(channels[0], now: start) && connections.admit(channels[1], now: start))
        // At the cap, but both are young: the third is let in above it.
        #expect(connections.admit(channels[2], now: start + .milliseconds(100)))
        #expect(open(0) && open(1) && open(2))
        // Later, the oldest idle one makes room.
        #expect(connections.admit(channels[3], now: start + .milliseconds(300)))
        #expect(!open(0) && open(1))
        // A connection being answered is never evicted: the next oldest idle one goes.
        connections.setBusy(channels[1], true)
        #expect(connections.admit(channels[4], now: start + .milliseconds(600)))
        #expect(open(1) && !open(2))
        // The one admitted at 300 ms is old enough by now; then only young and busy ones are left.
        #expect(connections.admit(channels[5], now: start + .milliseconds(610)))
        #expect(!open(3))
        #expect(connections.admit(channels[6], now: start + .milliseconds(620)))
        // Twice the cap, none evictable: a new one is refused.
        #expect(connections.count == 4)
        #expect(!connections.admit(channels[7], now: start + .milliseconds(630)))
    }
}
