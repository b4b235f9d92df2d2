import DanubeMetricsAgent
import DanubeMetricsEmitter
import DanubeMetricsWire
import Foundation
import Testing

/// Bad frames close only the offending connection, with REFUSE and a log line; other sources go on exactly.
@Suite struct ProtocolViolationTests {
    /// Runs `attack` against the agent while a well-behaved emitter keeps counting, then checks the count.
    private func withBystander(_ attack: (TestAgent) throws -> Void) async throws {
        let agent = try await TestAgent()
        let emitter = agent.emitter(name: "bystander")
        let counter = try emitter.counter("test_bystander_total")
        counter.increment(by: 10)
        #expect(emitter.waitUntilDelivered())
        try attack(agent)
        counter.increment(by: 5)
        #expect(emitter.waitUntilDelivered())
        #expect(try agent.samples()["test_bystander_total"] == 15)
        #expect(emitter.stats.connects == 1)
        emitter.shutdown()
        await agent.stop()
    }

    private func expectRefusal(_ source: RawSource, _ code: RefusalCode, sourceLocation: SourceLocation = #_sourceLocation) {
        var frame = source.receive()
        while case .ack = frame { frame = source.receive() }
        guard case .refuse(let refusal) = frame else {
            Issue.record("expected REFUSE \(code)", sourceLocation: sourceLocation)
            return
        }
        #expect(refusal.code == code, sourceLocation: sourceLocation)
        #expect(source.isClosedByAgent(), sourceLocation: sourceLocation)
    }

    @Test func garbageBeforeHello() async throws {
        try await withBystander { agent in
            let source = try RawSource(path: agent.socketPath)
            source.send(Array("GET / HTTP/1.1\r\n\r\n".utf8))
            expectRefusal(source, .malformed)
            #expect(agent.logs.contains("closing emitter connection", "malformed"))
        }
    }

    @Test func unsupportedVersionIsRefusedClearly() async throws {
        try await withBystander { agent in
            let source = try RawSource(path: agent.socketPath)
            source.send(.hello(Hello(minVersion: 4, maxVersion: 5, sourceName: "future", pid: 1, processStartMillis: 1, instanceID: 1, firstSequence: 1)))
            expectRefusal(source, .unsupportedVersion)
            #expect(agent.logs.contains("closing emitter connection", "unsupported_version", "source=future"))
            #expect(agent.agent.stats.protocolErrors(.unsupportedVersion) == 1)
        }
    }

    @Test func truncatedFrame() async throws {
        try await withBystander { agent in
            let source = try RawSource(path: agent.socketPath)
            #expect(source.handshake() != nil)
            var frame = FrameEncoder.encode(.deltas(DeltaBatch(sequence: 1)))
            frame.removeLast()
            source.send(frame)
            expectRefusal(source, .truncated)
            #expect(agent.logs.contains("closing emitter connection", "truncated", "source=raw-source"))
        }
    }

    /// A version 1 emitter is still served (WELCOME says 1), and an EXEMPLARS frame is not part of version 1.
    @Test func exemplarsOnAVersion1ConnectionAreUnexpected() async throws {
        try await withBystander { agent in
            let source = try RawSource(path: agent.socketPath)
            #expect(source.handshake(versions: 1...1)?.version == 1)
            source.send(.define(DefineBatch(sequence: 1, definitions: [SeriesDefinition(id: 0, kind: .counter, name: "v1_total", help: "", labels: [])])))
            source.send(.exemplars([ExemplarUpdate(seriesID: 0, bucket: 0, value: 1, timestampMillis: 1, labels: [Label("trace_id", "a")])]))
            expectRefusal(source, .unexpectedFrame)
        }
    }

    @Test func oversizedFrame() async throws {
        try await withBystander { agent in
            let source = try RawSource(path: agent.socketPath)
            #expect(source.handshake() != nil)
            var builder = FrameBuilder(type: .deltas, sequence: 1, maxFrameBytes: 200_000)
            for _ in 0..<30_000 {
                _ = builder.append { FrameEncoder.encode(Delta(op: .counterAdd, seriesID: 0, value: 1), buckets: EmptyCollection(), into: &$0) }
            }
            source.send(builder.finish())
            expectRefusal(source, .oversized)
            #expect(agent.logs.contains("oversized", "source=raw-source"))
        }
    }

    @Test func outOfOrderSequence() async throws {
        try await withBystander { agent in
            let source = try RawSource(path: agent.socketPath)
            #expect(source.handshake() != nil)
            source.send(.define(DefineBatch(sequence: 1, definitions: [SeriesDefinition(id: 0, kind: .counter, name: "raw_total", help: "", labels: [])])))
            source.send(.deltas(DeltaBatch(sequence: 2, deltas: [Delta(op: .counterAdd, seriesID: 0, value: 7)])))
            #expect(try eventually { try agent.samples()["raw_total"] == 7 })
            source.send(.deltas(DeltaBatch(sequence: 4, deltas: [Delta(op: .counterAdd, seriesID: 0, value: 1000)])))
            expectRefusal(source, .outOfOrder)
            #expect(agent.logs.contains("closing emitter connection", "out_of_order", "sequence 4 arrived where 3 was expected"))
            // What was applied before the bad frame stays; the bad frame changed nothing.
            #expect(try agent.samples()["raw_total"] == 7)
        }
    }

    @Test func deltaForUndefinedSeriesAndWrongKind() async throws {
        try await withBystander { agent in
            let undefined = try RawSource(path: agent.socketPath)
            #expect(undefined.handshake() != nil)
            undefined.send(.deltas(DeltaBatch(sequence: 1, deltas: [Delta(op: .counterAdd, seriesID: 3, value: 1)])))
            expectRefusal(undefined, .unknownSeries)

            let wrongKind = try RawSource(path: agent.socketPath)
            #expect(wrongKind.handshake() != nil)
            wrongKind.send(.define(DefineBatch(sequence: 1, definitions: [SeriesDefinition(id: 0, kind: .gauge, name: "raw_gauge", help: "", labels: [])])))
            // The first delta is fine, the second is not: the whole frame is rejected, nothing of it applied.
            wrongKind.send(.deltas(DeltaBatch(sequence: 2, deltas: [
                Delta(op: .gaugeSet, seriesID: 0, value: (1.0).bitPattern), Delta(op: .counterAdd, seriesID: 0, value: 1),
            ])))
            expectRefusal(wrongKind, .kindMismatch)
            #expect(try agent.samples()["raw_gauge"] == nil)
        }
    }

    @Test func anIdDefinedTwiceInOneFrameRejectsTheWholeFrame() async throws {
        try await withBystander { agent in
            let source = try RawSource(path: agent.socketPath)
            #expect(source.handshake() != nil)
            source.send(.define(DefineBatch(sequence: 1, definitions: [
                SeriesDefinition(id: 0, kind: .counter, name: "twice_first_total", help: "", labels: []),
                SeriesDefinition(id: 0, kind: .counter, name: "twice_second_total", help: "", labels: []),
            ])))
            expectRefusal(source, .malformed)
            #expect(agent.agent.store.seriesCount == 1) // only the bystander's series
        }
    }

    @Test func frameBeforeHelloAndAgentOnlyFrames() async throws {
        try await withBystander { agent in
            let early = try RawSource(path: agent.socketPath)
            early.send(.deltas(DeltaBatch(sequence: 1)))
            expectRefusal(early, .unexpectedFrame)
            let confused = try RawSource(path: agent.socketPath)
            #expect(confused.handshake() != nil)
            confused.send(.welcome(Welcome(version: 1, maxFrameBytes: 1, maxSeries: 1, lastAppliedSequence: 0)))
            expectRefusal(confused, .unexpectedFrame)
        }
    }

    @Test func tooManySeriesForOneConnection() async throws {
        let agent = try await TestAgent { $0.limits.maxSeriesPerConnection = 10 }
        let source = try RawSource(path: agent.socketPath)
        #expect(source.handshake() != nil)
        let definitions = (0..<11).map { SeriesDefinition(id: UInt32($0), kind: .counter, name: "many_total", help: "", labels: [Label("i", "\($0)")]) }
        source.send(.define(DefineBatch(sequence: 1, definitions: definitions)))
        expectRefusal(source, .limitExceeded)
        await agent.stop()
    }

    @Test func conflictingDefinitionsRefuseTheSeriesNotTheSource() async throws {
        let agent = try await TestAgent()
        let first = agent.emitter(name: "first")
        let second = agent.emitter(name: "second")
        try first.counter("shared_thing").increment(by: 4)
        #expect(first.waitUntilDelivered())
        // The same family as a gauge from another source: that series is refused, the rest of the source works.
        try second.gauge("shared_thing").set(1)
        try second.counter("second_total").increment(by: 2)
        #expect(eventually { second.stats.refusedSeries == 1 })
        second.flush()
        #expect(try eventually { try agent.samples()["second_total"] == 2 })
        let samples = try agent.samples()
        #expect(samples["shared_thing"] == 4)
        #expect(samples["danube_agent_series_rejected_total{family=\"uncatalogued\",reason=\"conflicting_definition\"}"] == 1)
        #expect(agent.logs.contains("series refused", "conflicting_definition", "source=second"))
        #expect(second.stats.connected)
        first.shutdown()
        second.shutdown()
        await agent.stop()
    }

    @Test func reservedAgentPrefixIsRefused() async throws {
        let agent = try await TestAgent()
        let emitter = agent.emitter()
        try emitter.counter("danube_agent_connections_total").increment()
        #expect(eventually { emitter.stats.refusedSeries == 1 })
        emitter.shutdown()
        await agent.stop()
    }
}

@Suite struct WarningLimiterTests {
    @Test func burstThenSuppressedThenReported() {
        let limiter = WarningLimiter(burst: 2, window: .seconds(10))
        let start = ContinuousClock.now
        #expect(limiter.admit("a", now: start) == 0)
        #expect(limiter.admit("a", now: start) == 0)
        #expect(limiter.admit("a", now: start) == nil)
        #expect(limiter.admit("a", now: start + .seconds(1)) == nil)
        #expect(limiter.admit("b", now: start) == 0) // other sources are not affected
        #expect(limiter.admit("a", now: start + .seconds(11)) == 2)
        #expect(limiter.admit("a", now: start + .seconds(11)) == 0)
    }

    @Test func aSourceRefusedOverAndOverIsLoggedSparingly() async throws {
        let agent = try await TestAgent { configuration in
            configuration.warningBurst = 3
            configuration.warningWindow = .milliseconds(300)
        }
        let source = try RawSource(path: agent.socketPath)
        #expect(source.handshake(name: "noisy") != nil)
        let bad = (0..<20).map { SeriesDefinition(id: UInt32($0), kind: .counter, name: "bad-name-\($0)", help: "", labels: []) }
        source.send(.define(DefineBatch(sequence: 1, definitions: bad)))
        #expect(try eventually { try agent.samples()["danube_agent_series_rejected_total{family=\"uncatalogued\",reason=\"invalid_name\"}"] == 20 })
        #expect(agent.logs.all.filter { $0.contains("series refused") }.count == 3)
        try await Task.sleep(for: .milliseconds(350))
        source.send(.define(DefineBatch(sequence: 2, definitions: [SeriesDefinition(id: 20, kind: .counter, name: "bad-name", help: "", labels: [])])))
        #expect(eventually { agent.logs.contains("series refused", "suppressed=17", "source=noisy") })
        await agent.stop()
    }
}
