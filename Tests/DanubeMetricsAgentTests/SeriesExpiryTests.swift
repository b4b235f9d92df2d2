@testable import DanubeMetricsAgent
import DanubeMetricsCatalog
import DanubeMetricsTestKit
import DanubeMetricsWire
import Testing

/// `--series-ttl`: series no connection has bound and nothing updated for the ttl are forgotten, their slots and
/// memory taken by later series, while scrapes and checkpoints that captured a state before keep reading it as
/// it was. Time is driven by hand (an 80 s ttl counts in 10 s ticks: a series last active in tick t expires
/// at the first pass in tick t + 9 or later).
@Suite struct SeriesExpiryTests {
    static let origin = ContinuousClock.now
    static let native = NativeHistogramSpec(schema: 3, zeroThreshold: 0x1p-5, maxBuckets: 256)

    static func at(_ seconds: Int) -> ContinuousClock.Instant { origin + .seconds(seconds) }

    static func store(ttl: Duration = .seconds(80), maxSeries: Int = 2_000_000, tracksChanges: Bool = false) -> AggregationStore {
        let store = AggregationStore(gaugeGrace: .seconds(1), tracksChanges: tracksChanges,
                                     limits: AggregationStore.Limits(maxSeries: maxSeries, seriesTTL: ttl), origin: origin)
        _ = store.claim(instance: 1, connection: 1, now: 0)
        return store
    }

    static func counter(_ n: Int) -> SeriesDefinition {
        SeriesDefinition(id: 0, kind: .counter, name: "test_ttl_total", help: "", labels: [Label("n", "\(n)")])
    }

    static func histogram(_ n: Int) -> SeriesDefinition {
        SeriesDefinition(id: 0, kind: .histogram, name: "test_ttl_ms", help: "", labels: [Label("n", "\(n)")], bounds: [1, 10], native: native)
    }

    static func binding(_ result: Result<SeriesBinding, SeriesRejection>) throws -> SeriesBinding {
        try result.get()
    }

    /// Adds `value` to a counter, or to bucket 1, the zero bucket and window bucket `value % 50` of a histogram.
    static func update(_ store: AggregationStore, _ binding: SeriesBinding, _ value: UInt64, at seconds: Int, sequence: inout UInt64) {
        sequence += 1
        let batch = binding.kind == .counter
            ? DeltaBatch(sequence: sequence, deltas: [Delta(op: .counterAdd, seriesID: 0, value: value)])
            : DeltaBatch(sequence: sequence, deltas: [Delta(op: .histogram, seriesID: 0, bucketStart: 0, bucketCount: 3, sum: Double(value))],
                         buckets: [BucketDelta(index: 1, count: value), BucketDelta(index: 3, count: 1), BucketDelta(index: UInt32(4 + value % 50), count: value)])
        #expect(store.apply(batch, bindings: [binding], from: 1, instance: 1, now: 0, at: at(seconds)))
    }

    static func text(_ store: AggregationStore, format: ExpositionFormat = .prometheusText) -> String {
        var writer = ExpositionWriter(format: format)
        writer.write(MetricsSnapshot(store: store, exemplars: writer.format == .openMetrics))
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    @Test func anUnboundSeriesExpiresOneTTLAfterItsLastUpdateAndComesBackFromZero() throws {
        let store = Self.store()
        var sequence: UInt64 = 0
        let first = try Self.binding(store.define(Self.counter(1), at: Self.at(0)))
        let kept = try Self.binding(store.define(Self.counter(2), at: Self.at(0)))
        Self.update(store, first, 5, at: 5, sequence: &sequence)
        Self.update(store, kept, 1, at: 5, sequence: &sequence)
        let bytes = store.heldBytes
        Self.update(store, kept, 1, at: 85, sequence: &sequence)
        #expect(store.expireSeries(now: Self.at(89)) == 0, "idle 84 s, but last active in tick 0: not yet")
        #expect(store.expireSeries(now: Self.at(90)) == 1)
        #expect(store.seriesCount == 1 && store.expiredSeries == 1)
        #expect(store.heldBytes < bytes)
        #expect(Self.text(store).contains("test_ttl_total{n=\"2\"} 2"))
        #expect(!Self.text(store).contains("n=\"1\""))
        // It comes back in the slot it left, from its first delta: a counter reset.
        let again = try Self.binding(store.define(Self.counter(1), at: Self.at(91)))
        #expect(again.slot == first.slot)
        Self.update(store, again, 3, at: 92, sequence: &sequence)
        #expect(Self.text(store).contains("test_ttl_total{n=\"1\"} 3"))
        #expect(store.heldBytes == bytes)
    }

    /// A connection may update a series it defined at any time, so a bound series never expires; the ttl counts
    /// from when the last connection that defined it closed.
    @Test func aBoundSeriesStaysAndItsTTLStartsWhenItsLastConnectionCloses() throws {
        let store = Self.store()
        let a = try Self.binding(store.define(Self.counter(1), binds: true, at: Self.at(0)))
        let b = try Self.binding(store.define(Self.counter(1), binds: true, at: Self.at(0)))
        #expect(store.expireSeries(now: Self.at(1_000)) == 0)
        store.unbind([a], at: Self.at(1_000))
        #expect(store.expireSeries(now: Self.at(2_000)) == 0, "the other connection still has it")
        store.unbind([b, nil], at: Self.at(2_000))
        #expect(store.expireSeries(now: Self.at(2_089)) == 0)
        #expect(store.expireSeries(now: Self.at(2_090)) == 1)
        store.unbind([b], at: Self.at(2_100))
        #expect(store.seriesCount == 0, "an unbinding after it expired does nothing")
    }

    /// Series come and go for many rounds against `--max-series`: every round's series fit, because the expired
    /// ones left room; slots, buckets and bytes do not grow round after round.
    @Test func churnStaysWithinTheLimitsRoundAfterRound() throws {
        let store = Self.store(maxSeries: 60)
        var sequence: UInt64 = 0
        var firstRoundBytes = 0
        for round in 0..<40 {
            let start = round * 100
            for n in 0..<60 {
                let id = round * 60 + n
                let binding = try Self.binding(store.define(n % 2 == 0 ? Self.counter(id) : Self.histogram(id), at: Self.at(start)))
                Self.update(store, binding, UInt64(id % 7 + 1), at: start, sequence: &sequence)
            }
            let state = store.capture()
            #expect(state.values.count == 60 && state.table.count == 60, "round \(round): the slots of expired series were used again")
            #expect(state.buckets.count == 30 * 4, "round \(round): buckets of the live series only")
            #expect(store.index.count == 60, "round \(round): the index holds the live series only")
            if round == 0 { firstRoundBytes = store.heldBytes }
            #expect(store.heldBytes <= firstRoundBytes + 60 * 4 * 8, "round \(round): \(store.heldBytes) bytes")
            let text = Self.text(store)
            #expect(text.contains("test_ttl_total{n=\"\(round * 60)\"} \(round * 60 % 7 + 1)"))
            #expect(text.contains("test_ttl_ms_bucket{n=\"\(round * 60 + 1)\",le=\"10.0\"} \((round * 60 + 1) % 7 + 1)"))
            #expect(Samples(parsing: text).lines.count == 30 + 30 * 5, "only this round's series: \(Samples(parsing: text).lines.count) lines")
            #expect(store.expireSeries(now: Self.at(start + 90)) == 60)
        }
        #expect(store.seriesCount == 0 && store.heldBytes == 0)
        #expect(Self.text(store).isEmpty)
    }

    /// Compaction costs what the store holds, so a few expired series leave /metrics at once but keep their
    /// slots until they are an eighth of the live ones, or until a new series needs their room.
    @Test func aFewExpiredSeriesAreCompactedOnlyWhenTheirRoomIsNeeded() throws {
        let store = Self.store(maxSeries: 100)
        var sequence: UInt64 = 0
        let bindings = try (0..<100).map { try Self.binding(store.define(Self.counter($0), at: Self.at(0))) }
        for binding in bindings.dropFirst(5) { Self.update(store, binding, 1, at: 100, sequence: &sequence) }
        #expect(store.expireSeries(now: Self.at(100)) == 5)
        #expect(store.seriesCount == 95)
        #expect(store.capture().table.count == 100 && store.capture().retired.count == 5, "not compacted for 5 of 95")
        #expect(!Self.text(store).contains("n=\"0\"") && Self.text(store).contains("n=\"5\""))
        for n in 100..<105 { #expect((try? store.define(Self.counter(n), at: Self.at(101)).get()) != nil, "series \(n) takes a retired slot") }
        #expect(StoreLimitsTests.reason(store.define(Self.counter(105), at: Self.at(101))) == .agentSeriesLimit)
        #expect(store.capture().values.count == 100 && store.seriesCount == 100)
    }

    @Test func exemplarsOfAnExpiredSeriesGoWithIt() throws {
        let store = Self.store()
        let counter = try Self.binding(store.define(Self.counter(1), at: Self.at(0)))
        store.exemplars.record(ExemplarUpdate(seriesID: 0, bucket: 0, value: 1, timestampMillis: 1, labels: [Label("trace_id", "abc")]),
                               slot: counter.slot, buckets: 0)
        #expect(store.exemplars.bytes > 0)
        #expect(store.expireSeries(now: Self.at(90)) == 1)
        #expect(store.exemplars.bytes == 0)
        // A histogram in the counter's slot: no exemplar of the counter on it.
        let histogram = try Self.binding(store.define(Self.histogram(1), at: Self.at(91)))
        #expect(histogram.slot == counter.slot)
        var sequence: UInt64 = 0
        Self.update(store, histogram, 2, at: 91, sequence: &sequence)
        #expect(!Self.text(store, format: .openMetrics).contains("trace_id"))
    }

    /// With a checkpointer, `/metrics` shows the published state: an expired series' slot is not taken until a
    /// state captured after the expiry is published, the next capture is a whole base (the state file forgets the
    /// series), and changes after it apply to the published state in place.
    @Test func thePublishedStateNeverSeesASlotTakenBeforeItIsPublished() throws {
        let store = Self.store(tracksChanges: true)
        var sequence: UInt64 = 0
        func checkpoint() -> Bool {
            switch store.captureForCheckpoint(all: false) {
            case .all(let state):
                store.publish(state)
                return true
            case .changes(let changes):
                store.publish(changes)
                return false
            }
        }
        store.publish(store.capture())
        let a = try Self.binding(store.define(Self.histogram(1), at: Self.at(0)))
        let b = try Self.binding(store.define(Self.counter(2), at: Self.at(0)))
        Self.update(store, a, 4, at: 0, sequence: &sequence)
        Self.update(store, b, 7, at: 80, sequence: &sequence)
        #expect(!checkpoint())
        #expect(store.expireSeries(now: Self.at(90)) == 1)
        let c = try Self.binding(store.define(Self.histogram(3), at: Self.at(91)))
        #expect(c.slot != a.slot, "the published state still lists the expired series in its slot")
        Self.update(store, c, 1, at: 91, sequence: &sequence)
        #expect(Self.text(store).contains("test_ttl_ms_count{n=\"1\"} 4"), "shown until the next checkpoint")
        #expect(checkpoint(), "a whole base after an expiry")
        let published = Self.text(store)
        #expect(!published.contains("n=\"1\"") && published.contains("test_ttl_ms_count{n=\"3\"} 1") && published.contains("test_ttl_total{n=\"2\"} 7"))
        #expect(store.snapshot(of: store.capturePublished()).series.map(\.labels) == [[Label("n", "2")], [Label("n", "3")]])
        let d = try Self.binding(store.define(Self.counter(4), at: Self.at(92)))
        #expect(d.slot == a.slot)
        Self.update(store, d, 9, at: 92, sequence: &sequence)
        Self.update(store, c, 1, at: 92, sequence: &sequence)
        #expect(!checkpoint())
        let next = Self.text(store)
        #expect(next.contains("test_ttl_total{n=\"4\"} 9") && next.contains("test_ttl_ms_count{n=\"3\"} 2") && next.contains("test_ttl_total{n=\"2\"} 7"))
        #expect(!next.contains("n=\"1\""))
    }

    /// What a series should hold, by a model that knows nothing of slots, tables or publication.
    struct Expected: Equatable {
        var counter: UInt64 = 0
        var buckets: [UInt64] = [0, 0, 0, 0]
        var sum: Double = 0
        var window: [UInt64: UInt64] = [:]
        var lastActive = 0
        var bound = 0

        var snapshotFields: [String] {
            ["\(counter)", "\(buckets)", "\(sum)", "\(window.keys.sorted().flatMap { [$0, window[$0]!] })"]
        }
    }

    static func fields(_ snapshot: StoreSnapshot) -> [String: [String]] {
        Dictionary(uniqueKeysWithValues: snapshot.series.map { series in
            (series.name + LabelText.encode(series.labels),
             ["\(series.counterInteger)", series.kind == .histogram ? "\(series.buckets)" : "[0, 0, 0, 0]", "\(series.sum)", "\(series.nativeBuckets)"])
        })
    }

    static func fields(_ model: [Int: Expected]) -> [String: [String]] {
        Dictionary(uniqueKeysWithValues: model.map { key, expected in
            let name = key % 2 == 0 ? "test_ttl_total" : "test_ttl_ms"
            return (name + LabelText.encode([Label("n", "\(key)")]), expected.snapshotFields)
        })
    }

    /// Random definitions, updates, closing connections, expiry passes and checkpoints, against the model: after
    /// every step the live store and the published state hold exactly what the model says, and every format of
    /// the published state renders.
    @Test(arguments: 0..<4) func randomRunsMatchAModel(seed: UInt64) throws {
        var random = SplitMix(seed: seed)
        let store = Self.store(tracksChanges: true)
        store.publish(store.capture())
        var model: [Int: Expected] = [:]
        var published: [Int: Expected] = [:]
        var connections: [[Int: SeriesBinding]] = [[:], [:], [:]]
        var now = 0, sequence: UInt64 = 0, expiredTotal = 0
        for step in 0..<3_000 {
            now += Int(random.next() % 4)
            let key = Int(random.next() % 24), connection = Int(random.next() % 3)
            switch random.next() % 10 {
            case 0...2:
                guard connections[connection][key] == nil else { continue }
                let definition = key % 2 == 0 ? Self.counter(key) : Self.histogram(key)
                connections[connection][key] = try Self.binding(store.define(definition, binds: true, at: Self.at(now)))
                model[key, default: Expected()].bound += 1
                model[key]!.lastActive = now
            case 3...5:
                guard let binding = connections[connection][key] else { continue }
                let value = random.next() % 1_000 + 1
                Self.update(store, binding, value, at: now, sequence: &sequence)
                if key % 2 == 0 {
                    model[key]!.counter += value
                } else {
                    model[key]!.buckets[1] += value
                    model[key]!.buckets[3] += 1
                    model[key]!.sum += Double(value)
                    model[key]!.window[value % 50, default: 0] += value
                }
                model[key]!.lastActive = now
            case 6:
                store.unbind(Array(connections[connection].values), at: Self.at(now))
                for key in connections[connection].keys {
                    model[key]!.bound -= 1
                    model[key]!.lastActive = now
                }
                connections[connection] = [:]
            case 7, 8:
                let expired = model.filter { $0.value.bound == 0 && now / 10 - $0.value.lastActive / 10 > 8 }.keys
                #expect(store.expireSeries(now: Self.at(now)) == expired.count, "step \(step)")
                for key in expired { model[key] = nil }
                expiredTotal += expired.count
            default:
                switch store.captureForCheckpoint(all: random.next() % 4 == 0) {
                case .all(let state): store.publish(state)
                case .changes(let changes): store.publish(changes)
                }
                published = model
            }
            #expect(Self.fields(store.snapshot()) == Self.fields(model), "step \(step): the live store")
            #expect(Self.fields(store.snapshot(of: store.capturePublished())) == Self.fields(published), "step \(step): the published state")
            #expect(store.seriesCount == model.count)
        }
        for format in [ExpositionFormat.prometheusText, .openMetrics] {
            #expect(Samples(parsing: Self.text(store, format: format)).lines.count >= published.count)
        }
        #expect(expiredTotal > 50 && store.expiredSeries == UInt64(expiredTotal), "\(expiredTotal) expired")
    }
}
