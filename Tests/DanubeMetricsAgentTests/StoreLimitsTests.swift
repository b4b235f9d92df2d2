@testable import DanubeMetricsAgent
import DanubeMetricsCatalog
import DanubeMetricsWire
import Testing

/// What the store may hold: series in all, the bytes they take (native windows counted as they fill), and the
/// latest exemplars. New series and exemplars beyond a bound are refused; what is held keeps updating.
@Suite struct StoreLimitsTests {
    static let native = NativeHistogramSpec(schema: 3, zeroThreshold: 0x1p-5, maxBuckets: 256)

    static func counter(_ n: Int) -> SeriesDefinition {
        SeriesDefinition(id: 0, kind: .counter, name: "test_limit_total", help: "", labels: [Label("n", "\(n)")])
    }

    static func nativeHistogram(_ n: Int) -> SeriesDefinition {
        SeriesDefinition(id: 0, kind: .histogram, name: "test_limit_ms", help: "", labels: [Label("n", "\(n)")], bounds: [1, 10], native: native)
    }

    static func reason(_ result: Result<SeriesBinding, SeriesRejection>) -> RejectionReason? {
        if case .failure(let rejection) = result { rejection.reason } else { nil }
    }

    @Test func newSeriesBeyondTheAgentWideLimitAreRefusedAndHeldOnesStay() {
        let store = AggregationStore(gaugeGrace: .seconds(1), limits: AggregationStore.Limits(maxSeries: 3))
        for n in 0..<3 { #expect(Self.reason(store.define(Self.counter(n))) == nil) }
        #expect(Self.reason(store.define(Self.counter(3))) == .agentSeriesLimit)
        #expect(Self.reason(store.define(Self.counter(1))) == nil, "a series held is found again")
        #expect(store.seriesCount == 3)
    }

    /// A native series costs what its dense part takes when defined, and its window's buckets as they fill: a
    /// 256-bucket window with nothing in it takes nothing (it took 2 KiB per copy when dense). At the limit, new
    /// series are refused and window buckets new to a series dropped (counted); buckets it has keep counting.
    @Test func bytesCountTheWindowsAsTheyFillAndBoundNewSeries() {
        let store = AggregationStore(gaugeGrace: .seconds(1), limits: AggregationStore.Limits(maxBytes: 4_000))
        _ = store.claim(instance: 1, connection: 1, now: 0)
        func observe(_ binding: SeriesBinding, windowBuckets: [Int], sequence: UInt64) {
            let buckets = windowBuckets.map { BucketDelta(index: UInt32(4 + $0), count: 1) } // 3 classic, the zero bucket, the window
            let batch = DeltaBatch(sequence: sequence, deltas: [Delta(op: .histogram, seriesID: 0, bucketStart: 0, bucketCount: buckets.count, sum: 1)],
                                   buckets: buckets)
            #expect(store.apply(batch, bindings: [binding], from: 1, instance: 1, now: 0))
        }
        guard case .success(let first) = store.define(Self.nativeHistogram(0)) else { Issue.record("refused"); return }
        let empty = store.heldBytes
        #expect(empty < 300, "a native series with an empty window: \(empty) bytes")
        observe(first, windowBuckets: (0..<20).map { 3 * $0 }, sequence: 1)
        let grown = store.heldBytes - empty
        #expect(grown >= 2 * 20 * 16 && grown <= 2 * (32 + 8 * 64), "20 window buckets grew it by \(grown)")
        var defined = 1
        while case .success = store.define(Self.nativeHistogram(defined)) { defined += 1 }
        #expect(Self.reason(store.define(Self.nativeHistogram(defined))) == .memoryLimit)
        #expect(defined >= 5, "\(defined) series in 4,000 bytes")
        // Every bucket of the window: it grows until the series take their limit (give or take the one growth
        // that passed it), then the buckets new to it are dropped; bucket 0, which it has, counts on.
        observe(first, windowBuckets: Array(0..<256), sequence: 2)
        #expect(store.heldBytes >= 4_000 && store.heldBytes <= 4_000 + 2 * 8 * 512, "\(store.heldBytes) bytes")
        #expect(store.nativeBucketsDropped > 0 && store.nativeBucketsDropped < 256 - 20)
        #expect(store.capture().window(first.slot)[0] == 2)
    }

    /// A state file holding more than the limits allow loads what fits; the rest is dropped, not an error (the
    /// file is not moved aside for it).
    @Test func aStateBeyondTheLimitsIsRestoredUpToThem() throws {
        var snapshot = StoreSnapshot()
        for n in 0..<10 {
            snapshot.series.append(StoreSnapshot.Series(name: "test_limit_total", kind: .counter, help: "", bounds: [],
                                                        labels: [Label("n", "\(n)")], counterInteger: 1, counterFloat: 0, buckets: [], sum: 0))
        }
        let store = AggregationStore(gaugeGrace: .seconds(1), limits: AggregationStore.Limits(maxSeries: 4))
        let dropped = try store.restore(snapshot)
        #expect(store.seriesCount == 4)
        #expect(dropped.count == 6 && dropped.values.allSatisfy { $0.reason == .agentSeriesLimit })
    }

    @Test func exemplarsBeyondTheirMemoryAreDroppedAndCounted() {
        let exemplars = ExemplarStore(maxBytes: 8_192)
        let labels = [Label("trace_id", String(repeating: "a", count: 32))]
        for slot in 0..<1_000 {
            exemplars.record(ExemplarUpdate(seriesID: 0, bucket: 1, value: 1, timestampMillis: 1, labels: labels), slot: slot, buckets: 20)
        }
        #expect(exemplars.bytes <= 8_192)
        #expect(exemplars.dropped > 900)
        let held = exemplars.all.count
        #expect(held > 0)
        // A slot held keeps taking newer exemplars.
        let first = exemplars.all.keys.min()!
        exemplars.record(ExemplarUpdate(seriesID: 0, bucket: 1, value: 7, timestampMillis: 2, labels: labels), slot: first, buckets: 20)
        #expect(exemplars.all[first]?[1]?.value == 7)
    }
}
