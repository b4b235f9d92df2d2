@testable import DanubeMetricsAgent
import DanubeMetricsWire
import Foundation
import Logging
import Testing

/// The state log: checkpoints write what changed after the first base, reading replays the log over the base, and
/// a torn or stale log never adds what was not made durable.
@Suite struct StateLogTests {
    /// A store of `series` counters fed by one source, with a checkpointer on `directory` (driven by hand).
    final class Fixture {
        let directory = Scratch.makeDirectory("state-log")
        let store = AggregationStore(gaugeGrace: .seconds(15), tracksChanges: true)
        let checkpointer: Checkpointer
        var file: StateFile { StateFile(directory: directory) }
        private var bindings: [SeriesBinding?] = []
        private var sequence: UInt64 = 0

        init(series: Int) {
            checkpointer = Checkpointer(store: store, file: StateFile(directory: directory), interval: .seconds(3600),
                                        stats: AgentStats(startTime: 0), logger: Logger(label: "test")) { _ in }
            for i in 0..<series {
                bindings.append(try! store.define(SeriesDefinition(
                    id: UInt32(i), kind: .counter, name: "log_test_total", help: "", labels: [Label("n", "\(i)")])).get())
            }
            store.sourceConnected(1)
            _ = store.claim(instance: 7, connection: 1, now: 0)
        }

        /// Adds `amount` to each listed series, as one frame.
        func add(_ amount: UInt64, to series: some Sequence<Int>) {
            sequence += 1
            let batch = DeltaBatch(sequence: sequence, deltas: series.map { Delta(op: .counterAdd, seriesID: UInt32($0), value: amount) })
            #expect(store.apply(batch, bindings: bindings, from: 1, instance: 7, now: 0))
        }

        /// What a restarted agent would restore.
        func restored() -> (snapshot: StoreSnapshot, records: Int, ignored: String?) {
            let fresh = AggregationStore(gaugeGrace: .seconds(15))
            guard case .loaded(_, _, let records, let ignored, _) = file.read(into: fresh) else {
                Issue.record("nothing restored")
                return (StoreSnapshot(), 0, nil)
            }
            return (fresh.snapshot(), records, ignored)
        }

        var logSize: Int { file.logSize }

        /// 100 series in a base, then one change in a log record.
        static func withBaseAndOneRecord() -> Fixture {
            let fixture = Fixture(series: 100)
            fixture.add(5, to: 0..<100)
            #expect(fixture.checkpointer.checkpoint())
            fixture.add(1, to: [1])
            #expect(fixture.checkpointer.checkpoint())
            return fixture
        }
    }

    @Test func afterTheFirstBaseACheckpointAppendsOnlyWhatChanged() throws {
        let fixture = Fixture(series: 2_000)
        fixture.add(5, to: 0..<2_000)
        #expect(fixture.checkpointer.checkpoint())
        let base = try #require(FileManager.default.attributesOfItem(atPath: fixture.file.path)[.size] as? Int)
        #expect(fixture.logSize == StateFile.logHeaderSize)
        // 1% changes: one record about 1% of the base.
        fixture.add(3, to: stride(from: 0, to: 2_000, by: 100))
        #expect(fixture.checkpointer.checkpoint())
        let record = fixture.logSize - StateFile.logHeaderSize
        #expect(record > 0 && record < base / 20, "record of \(record) bytes for a base of \(base)")
        fixture.add(1, to: [7, 8])
        #expect(fixture.checkpointer.checkpoint())
        let (restored, records, ignored) = fixture.restored()
        #expect(records == 2 && ignored == nil)
        #expect(restored == fixture.store.snapshot())
        #expect(restored.sources.first?.sequence == 3)
    }

    @Test func aTornRecordIsIgnoredAndEverythingBeforeItApplies() throws {
        let fixture = Fixture.withBaseAndOneRecord()
        let durable = fixture.store.snapshot()
        fixture.add(1, to: [2])
        #expect(fixture.checkpointer.checkpoint())
        // A crash in the middle of the last append (never acknowledged): its tail is missing.
        #expect(truncate(fixture.file.logPath, off_t(fixture.logSize - 3)) == 0)
        let (restored, records, ignored) = fixture.restored()
        #expect(records == 1)
        #expect(ignored?.contains("incomplete record") == true)
        #expect(restored == durable)
    }

    @Test func aLogThatExtendsAnotherBaseIsIgnored() throws {
        let fixture = Fixture.withBaseAndOneRecord()
        let staleLog = try Data(contentsOf: URL(fileURLWithPath: fixture.file.logPath))
        // A new base, then a crash before its fresh log replaced the old one.
        fixture.add(1, to: [3])
        let base = StateFormat.encode(fixture.store.snapshot(), writtenAt: 2)
        try fixture.file.write(base)
        try staleLog.write(to: URL(fileURLWithPath: fixture.file.logPath))
        let (restored, records, ignored) = fixture.restored()
        #expect(records == 0)
        #expect(ignored?.contains("another base") == true)
        #expect(restored == fixture.store.snapshot())
    }

    @Test func theLogIsFoldedIntoANewBaseOnceItOutgrowsIt() throws {
        let fixture = Fixture(series: 3_000)
        fixture.add(1, to: 0..<3_000)
        #expect(fixture.checkpointer.checkpoint())
        var compacted = false
        for round in 0..<80 where !compacted {
            let before = fixture.logSize
            fixture.add(UInt64(round), to: 0..<3_000)
            #expect(fixture.checkpointer.checkpoint())
            compacted = fixture.logSize < before
        }
        #expect(compacted, "the log never went back to a fresh one")
        #expect(fixture.restored().snapshot == fixture.store.snapshot())
    }

    /// `/metrics` shows the published (durable) state, kept up to date from each checkpoint's changes: after every
    /// checkpoint it renders exactly as a store without checkpoints holding the same series (new series, counters,
    /// gauges set and expired included).
    @Test func thePublishedStateFollowsTheLiveOneThroughIncrementalCheckpoints() throws {
        let checkpointed = AggregationStore(gaugeGrace: .seconds(15), tracksChanges: true)
        let mirror = AggregationStore(gaugeGrace: .seconds(15))
        let checkpointer = Checkpointer(store: checkpointed, file: StateFile(directory: Scratch.makeDirectory("published")),
                                        interval: .seconds(3600), stats: AgentStats(startTime: 0), logger: Logger(label: "test")) { _ in }
        checkpointed.publish(checkpointed.capture())
        var bindings: [[SeriesBinding?]] = [[], []]
        var sequence: UInt64 = 0
        func define(_ definition: SeriesDefinition) {
            for (i, store) in [checkpointed, mirror].enumerated() { bindings[i].append(try! store.define(definition).get()) }
        }
        func apply(_ deltas: [Delta], buckets: [BucketDelta] = []) {
            sequence += 1
            for (i, store) in [checkpointed, mirror].enumerated() {
                #expect(store.apply(DeltaBatch(sequence: sequence, deltas: deltas, buckets: buckets), bindings: bindings[i], from: 1, instance: 9, now: 0))
            }
        }
        func rendered(_ store: AggregationStore) -> String {
            var writer = ExpositionWriter(format: .prometheusText)
            writer.write(MetricsSnapshot(store: store, exemplars: writer.format == .openMetrics))
            return String(decoding: writer.bytes, as: UTF8.self)
        }
        for store in [checkpointed, mirror] {
            store.sourceConnected(1)
            _ = store.claim(instance: 9, connection: 1, now: 0)
        }
        for i in 0..<50 { define(SeriesDefinition(id: UInt32(i), kind: .counter, name: "p_total", help: "", labels: [Label("n", "\(i)")])) }
        apply((0..<50).map { Delta(op: .counterAdd, seriesID: UInt32($0), value: 2) })
        #expect(checkpointer.checkpoint())
        #expect(rendered(checkpointed) == rendered(mirror))
        // Changes, new series of every kind, then a checkpoint that writes only those.
        define(SeriesDefinition(id: 50, kind: .gauge, name: "p_depth", help: "", labels: [Label("n", "a")]))
        define(SeriesDefinition(id: 51, kind: .histogram, name: "p_ms", help: "", labels: [], bounds: [1, 5]))
        define(SeriesDefinition(id: 52, kind: .counter, name: "p_total", help: "", labels: [Label("n", "00")]))
        apply([Delta(op: .counterAdd, seriesID: 3, value: 5), Delta(op: .gaugeSet, seriesID: 50, value: (4.5).bitPattern),
               Delta(op: .histogram, seriesID: 51, bucketStart: 0, bucketCount: 1, sum: 2), Delta(op: .counterAdd, seriesID: 52, value: 1)],
              buckets: [BucketDelta(index: 1, count: 3)])
        let before = rendered(checkpointed)
        #expect(!before.contains("p_depth"), "a change shows only once durable")
        #expect(checkpointer.checkpoint())
        #expect(rendered(checkpointed) == rendered(mirror))
        // The gauge's source leaves for longer than the grace period: hidden in both after the next checkpoint.
        for store in [checkpointed, mirror] {
            store.sourceDisconnected(1, at: .now - .seconds(60))
            store.expireGauges()
        }
        #expect(checkpointer.checkpoint())
        #expect(rendered(checkpointed) == rendered(mirror))
        #expect(!rendered(checkpointed).contains("p_depth"))
    }
}
