import DanubeMetricsAgent
import DanubeMetricsWire

/// Fills a store with the benchmark mix: `counters` counters (20 families), `gauges` gauges (5 families),
/// `histograms` histograms of 19 bounds, 4 labels each (namespace, topic, partition, subscription). With `native`,
/// the histograms also keep the catalog's native latency buckets (schema 3, 184), 4 of them non-empty.
public func fill(_ store: AggregationStore, counters: Int, gauges: Int, histograms: Int, native: Bool = false) {
    var id: UInt32 = 0
    var bindings: [SeriesBinding?] = []
    func labels(_ i: Int) -> [Label] {
        [Label("namespace", "ns\(i % 10)"), Label("topic", "topic-\(i / 10 % 1000)"), Label("partition", "\(i % 8)"),
         Label("subscription", "sub-\(i / 8000)")].sorted()
    }
    var batch = DeltaBatch(sequence: 1)
    for i in 0..<counters {
        bindings.append(try! store.define(SeriesDefinition(id: id, kind: .counter, name: "danube_bench_\(i % 20)_total", help: "Bench counter.", labels: labels(i))).get())
        batch.deltas.append(Delta(op: .counterAdd, seriesID: id, value: UInt64(i) * 7919))
        id += 1
    }
    for i in 0..<gauges {
        bindings.append(try! store.define(SeriesDefinition(id: id, kind: .gauge, name: "danube_bench_gauge_\(i % 5)", help: "Bench gauge.", labels: labels(i))).get())
        batch.deltas.append(Delta(op: .gaugeSet, seriesID: id, value: Double(i).bitPattern))
        id += 1
    }
    let bounds: [Double] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000]
    for i in 0..<histograms {
        let spec = native ? NativeHistogramSpec(schema: 3, zeroThreshold: 0x1p-5, maxBuckets: 184) : nil
        bindings.append(try! store.define(SeriesDefinition(id: id, kind: .histogram, name: "danube_bench_latency_ms", help: "Bench histogram.", labels: labels(i), bounds: bounds, native: spec)).get())
        let classic = [BucketDelta(index: 2, count: 5), BucketDelta(index: 7, count: 11), BucketDelta(index: 19, count: 1)]
        // The same 17 observations in native buckets: 5 at 0.4 ms, 11 near 8 ms (two buckets), 1 above 2 minutes.
        let nativeBuckets = [BucketDelta(index: 20 + 1 + 29, count: 5), BucketDelta(index: 20 + 1 + 63, count: 6),
                             BucketDelta(index: 20 + 1 + 64, count: 5), BucketDelta(index: 20 + 1 + 177, count: 1)]
        let buckets = classic + (native ? nativeBuckets : [])
        batch.deltas.append(Delta(op: .histogram, seriesID: id, bucketStart: batch.buckets.count, bucketCount: buckets.count, sum: 123.5))
        batch.buckets += buckets
        id += 1
    }
    store.sourceConnected(1)
    _ = store.claim(instance: 1, connection: 1, now: 0)
    store.apply(batch, bindings: bindings, from: 1, instance: 1, now: 0)
}
