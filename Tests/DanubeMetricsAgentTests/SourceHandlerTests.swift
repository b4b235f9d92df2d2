@testable import DanubeMetricsAgent
import DanubeMetricsCatalog
import DanubeMetricsWire
import Logging
import NIOCore
import NIOEmbedded
import Testing

/// `SourceHandler`'s state machine on an `EmbeddedChannel`: every edge case runs in microseconds, on one thread,
/// with time advanced by hand, and fails on the exact frame it is about. (The real-socket suites stay as they are.)
@Suite struct SourceHandlerTests {
    /// One handler on an embedded channel, with the store and statistics it writes to.
    final class Harness {
        let store: AggregationStore
        let stats = AgentStats(startTime: 0)
        let channel = EmbeddedChannel()

        init(store: AggregationStore = AggregationStore(gaugeGrace: .seconds(15)), mode: CatalogMode = .permissive,
             framesPerSecond: Int = 0, helloTimeout: Duration = .seconds(10), id: ConnectionID = 1, spans: SpanIntake? = nil) throws {
            self.store = store
            let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
            let gate = SeriesGate(catalog: BuiltinCatalog.catalog, mode: mode, uncataloguedFamilyLimit: 100, store: store, logger: logger)
            let handler = SourceHandler(
                id: id, store: store, gate: gate, stats: stats, limits: .default,
                rates: SourceRates(framesPerSecond: framesPerSecond, definitionBytes: 1 << 20, helloTimeout: helloTimeout),
                warnings: WarningLimiter(), checkpointer: nil, peer: PeerCredentials(), logger: logger, spans: spans)
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.connect(to: SocketAddress(unixDomainSocketPath: "/emitter")).wait()
        }

        /// Sends `frames` as one SEQPACKET record and returns every frame the handler answered.
        @discardableResult
        func send(_ frames: Frame...) throws -> [Frame] {
            try channel.writeInbound(ByteBuffer(bytes: frames.flatMap { FrameEncoder.encode($0) }))
            return try answers()
        }

        func answers() throws -> [Frame] {
            var frames: [Frame] = []
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
                frames += try FrameDecoder().decodeFrames(in: Array(buffer.readableBytesView))
            }
            return frames
        }

        func hello(instance: UInt64 = 7, first: UInt64 = 1, versions: ClosedRange<UInt16> = WireFormat.supportedVersions) throws -> [Frame] {
            try send(.hello(Hello(minVersion: versions.lowerBound, maxVersion: versions.upperBound, sourceName: "unit",
                                  pid: 1, processStartMillis: 1, instanceID: instance, firstSequence: first)))
        }

        /// The last value the handler set for reading (autoRead), if it set one.
        var reading: Bool? {
            channel.options.last { $0.option is ChannelOptions.Types.AutoReadOption }.map { $0.value as! Bool }
        }

        /// Lets a refused connection's linger timer run (it holds a process-wide slot until then).
        func finish() {
            channel.embeddedEventLoop.advanceTime(by: .seconds(2))
            _ = try? channel.finish(acceptAlreadyClosed: true)
        }
    }

    static let counter = SeriesDefinition(id: 0, kind: .counter, name: "unit_sent_total", help: "", labels: [Label("topic", "a")])

    static func refusal(_ frames: [Frame]) -> RefusalCode? {
        frames.lazy.compactMap { if case .refuse(let refusal) = $0 { refusal.code } else { nil } }.first
    }

    @Test func helloComesFirst() throws {
        let harness = try Harness()
        defer { harness.finish() }
        let answers = try harness.send(.define(DefineBatch(sequence: 1, definitions: [Self.counter])))
        #expect(Self.refusal(answers) == .unexpectedFrame)
        #expect(harness.store.seriesCount == 0)
        #expect(!harness.channel.isActive)
    }

    @Test func aSilentConnectionIsRefusedAfterTheHelloTimeout() throws {
        let harness = try Harness(helloTimeout: .seconds(3))
        defer { harness.finish() }
        harness.channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(try harness.answers().isEmpty && harness.channel.isActive)
        harness.channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(Self.refusal(try harness.answers()) == .limitExceeded)
        #expect(harness.stats.connectionsRefused.withLock { $0["hello_timeout"] } == 1)
    }

    @Test func versionsAreNegotiatedAndUnknownOnesRefused() throws {
        let current = try Harness()
        defer { current.finish() }
        guard case .welcome(let welcome)? = try current.hello(versions: 1...9).first else { Issue.record("no WELCOME"); return }
        #expect(welcome.version == WireFormat.spansVersion - 1 && welcome.lastAppliedSequence == 0, "no SPANS frames: nothing exports them")
        let future = try Harness()
        defer { future.finish() }
        #expect(Self.refusal(try future.hello(versions: 8...9)) == .unsupportedVersion)
    }

    @Test func framesAreAppliedInSequenceAndAcknowledged() throws {
        let harness = try Harness()
        defer { harness.finish() }
        _ = try harness.hello()
        let answers = try harness.send(
            .define(DefineBatch(sequence: 1, definitions: [Self.counter])),
            .deltas(DeltaBatch(sequence: 2, deltas: [Delta(op: .counterAdd, seriesID: 0, value: 5)])))
        #expect(answers == [.ack(2)], "one cumulative ACK per read")
        #expect(Self.refusal(try harness.send(.deltas(DeltaBatch(sequence: 4)))) == .outOfOrder)
        #expect(harness.stats.protocolErrors(.outOfOrder) == 1)
        #expect(harness.store.snapshot().series.first?.counterInteger == 5, "nothing of the refused frame was applied")
    }

    @Test func aBadFrameChangesNothing() throws {
        let harness = try Harness()
        defer { harness.finish() }
        _ = try harness.hello()
        try harness.send(.define(DefineBatch(sequence: 1, definitions: [Self.counter])))
        // The first delta is fine, the second names a series never defined: the whole frame is refused.
        let answers = try harness.send(.deltas(DeltaBatch(sequence: 2, deltas: [
            Delta(op: .counterAdd, seriesID: 0, value: 5), Delta(op: .counterAdd, seriesID: 9, value: 1),
        ])))
        #expect(Self.refusal(answers) == .unknownSeries)
        #expect(harness.store.snapshot().series.first?.counterInteger == 0)
    }

    @Test func aRefusedSeriesIsSettledAloneAndTheConnectionGoesOn() throws {
        let harness = try Harness(mode: .strict)
        defer { harness.finish() }
        _ = try harness.hello()
        let unknown = SeriesDefinition(id: 1, kind: .counter, name: "not_in_the_catalog_total", help: "", labels: [])
        let catalogued = SeriesDefinition(id: 0, kind: .counter, name: DanubeFamily.walFsync.rawValue, help: "",
                                          labels: [Label("namespace", "n"), Label("topic", "t"), Label("partition", "0")])
        let answers = try harness.send(
            .define(DefineBatch(sequence: 1, definitions: [catalogued, unknown])),
            .deltas(DeltaBatch(sequence: 2, deltas: [Delta(op: .counterAdd, seriesID: 0, value: 3), Delta(op: .counterAdd, seriesID: 1, value: 4)])))
        guard case .seriesRefused(let refused)? = answers.first else { Issue.record("\(answers)"); return }
        #expect(refused.seriesID == 1 && refused.code == .catalogViolation)
        #expect(answers.last == .ack(2) && harness.channel.isActive)
        #expect(harness.store.snapshot().series.map(\.counterInteger) == [3])
        #expect(harness.stats.deltasIgnored.load(ordering: .relaxed) == 1)
    }

    /// A newer connection of the same emitter instance takes it over: the older one's queued frames are refused,
    /// not applied twice, and the newer one learns what is held.
    @Test func aNewerConnectionOfTheSameEmitterTakesOver() throws {
        let store = AggregationStore(gaugeGrace: .seconds(15))
        let old = try Harness(store: store, id: 1)
        defer { old.finish() }
        _ = try old.hello(instance: 42)
        try old.send(.define(DefineBatch(sequence: 1, definitions: [Self.counter])),
                     .deltas(DeltaBatch(sequence: 2, deltas: [Delta(op: .counterAdd, seriesID: 0, value: 1)])))
        let new = try Harness(store: store, id: 2)
        defer { new.finish() }
        guard case .welcome(let welcome)? = try new.hello(instance: 42, first: 3).first else { Issue.record("no WELCOME"); return }
        #expect(welcome.lastAppliedSequence == 2)
        let refused = try old.send(.deltas(DeltaBatch(sequence: 3, deltas: [Delta(op: .counterAdd, seriesID: 0, value: 100)])))
        #expect(Self.refusal(refused) == .conflictingDefinition)
        #expect(try new.send(.define(DefineBatch(sequence: 3, definitions: [Self.counter]))) == [.ack(3)])
        #expect(store.snapshot().series.first?.counterInteger == 1)
        // A HELLO that would repeat what is held is out of order.
        let stale = try Harness(store: store, id: 3)
        defer { stale.finish() }
        #expect(Self.refusal(try stale.hello(instance: 42, first: 2)) == .outOfOrder)
    }

    /// Over its frame rate a source is not read for a while (autoRead off) and nothing it sent is lost; a peer
    /// that stops reading the agent's answers is not read either until it drains.
    @Test func backpressurePausesReadingWithoutLosingFrames() throws {
        let harness = try Harness(framesPerSecond: 5)
        defer { harness.finish() }
        _ = try harness.hello()
        try harness.send(.define(DefineBatch(sequence: 1, definitions: [Self.counter])))
        for sequence in 2...11 as ClosedRange<UInt64> {
            try harness.send(.deltas(DeltaBatch(sequence: sequence, deltas: [Delta(op: .counterAdd, seriesID: 0, value: 1)])))
        }
        #expect(harness.reading == false)
        #expect(harness.stats.sourcesThrottled.load(ordering: .relaxed) == 1)
        #expect(harness.store.snapshot().series.first?.counterInteger == 10)
        harness.channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        #expect(harness.reading == true, "reading resumes once the rate allows")

        harness.channel.isWritable = false
        harness.channel.pipeline.fireChannelWritabilityChanged()
        #expect(harness.reading == false)
        harness.channel.isWritable = true
        harness.channel.pipeline.fireChannelWritabilityChanged()
        #expect(harness.reading == true)
    }
}
