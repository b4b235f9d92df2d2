import DanubeMetricsAgent
import DanubeMetricsWire
import Foundation

// What `--series-ttl` costs, in-process, on stores of `series` series (90% counters, 10% native histograms):
// ingest (ns per delta applied, without and with a ttl, interleaved), and the expiry pass, which holds the store's
// lock (so ingest waits for it): with nothing expired (the scan every eighth of the ttl), with 1% of the series
// expired (out of /metrics and the index) and with 20% (compacted: a new series table and bucket array).
// Usage: swift build -c release --product ExpiryTiming && .build/release/ExpiryTiming [series] [repetitions]
let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let series = arguments.first ?? 1_000_000
let repetitions = arguments.dropFirst().first ?? 5
let origin = ContinuousClock.now
let ttl = Duration.seconds(80) // ticks of 10 s

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1e3 + Double(duration.components.attoseconds) / 1e15
}

/// A filled store, the bindings of its series, and frames of 1,000 deltas updating all of them (or the 90% that
/// `kept` selects).
struct Filled {
    let store: AggregationStore
    var bindings: [SeriesBinding?] = []
    var sequence: UInt64 = 0

    init(ttl: Duration?) {
        store = AggregationStore(gaugeGrace: .seconds(15), limits: AggregationStore.Limits(maxSeries: series + 1, maxBytes: 1 << 40, seriesTTL: ttl),
                                 origin: origin)
        let native = NativeHistogramSpec(schema: 3, zeroThreshold: 0x1p-5, maxBuckets: 184)
        for i in 0..<series {
            let labels = [Label("namespace", "ns\(i % 10)"), Label("partition", "\(i % 8)"), Label("topic", "topic-\(i / 20)")]
            let definition = i % 10 == 9
                ? SeriesDefinition(id: UInt32(i), kind: .histogram, name: "danube_bench_latency_ms", help: "", labels: labels,
                                   bounds: [1, 10, 100], native: native)
                : SeriesDefinition(id: UInt32(i), kind: .counter, name: "danube_bench_\(i % 20)_total", help: "", labels: labels)
            bindings.append(try! store.define(definition, at: origin).get())
        }
        _ = store.claim(instance: 1, connection: 1, now: 0)
    }

    func frames(keeping kept: (Int) -> Bool = { _ in true }) -> [DeltaBatch] {
        var frames: [DeltaBatch] = []
        var batch = DeltaBatch(sequence: 0)
        for i in 0..<series where kept(i) {
            if i % 10 == 9 {
                let buckets = [BucketDelta(index: 1, count: 1), BucketDelta(index: UInt32(5 + i % 40), count: 1)]
                batch.deltas.append(Delta(op: .histogram, seriesID: UInt32(i), bucketStart: batch.buckets.count, bucketCount: 2, sum: 3))
                batch.buckets += buckets
            } else {
                batch.deltas.append(Delta(op: .counterAdd, seriesID: UInt32(i), value: 1))
            }
            if batch.deltas.count == 1_000 {
                frames.append(batch)
                batch = DeltaBatch(sequence: 0)
            }
        }
        if !batch.deltas.isEmpty { frames.append(batch) }
        return frames
    }

    /// Applies `frames` at `instant`; the time it took.
    mutating func apply(_ frames: [DeltaBatch], at instant: ContinuousClock.Instant) -> Duration {
        let started = ContinuousClock.now
        for var frame in frames {
            sequence += 1
            frame.sequence = sequence
            store.apply(frame, bindings: bindings, from: 1, instance: 1, now: 0, at: instant)
        }
        return ContinuousClock.now - started
    }
}

var without = Filled(ttl: nil), with = Filled(ttl: ttl)
let all = without.frames()
var plain: [Double] = [], timed: [Double] = []
for _ in 0..<repetitions {
    plain.append(milliseconds(without.apply(all, at: origin)) * 1e6 / Double(series))
    timed.append(milliseconds(with.apply(all, at: origin)) * 1e6 / Double(series))
}
print(String(format: "apply, ns per delta (%d rounds of %d deltas, interleaved): without a ttl %@; with one %@", repetitions, series,
             plain.map { String(format: "%.1f", $0) }.joined(separator: " "), timed.map { String(format: "%.1f", $0) }.joined(separator: " ")))

// The pass with nothing to expire: everything was updated at 100 s.
_ = with.apply(all, at: origin + .seconds(100))
var scans: [Double] = []
for _ in 0..<repetitions {
    let started = ContinuousClock.now
    precondition(with.store.expireSeries(now: origin + .seconds(100)) == 0)
    scans.append(milliseconds(ContinuousClock.now - started))
}
// Passes that expire 1% (retired only: out of /metrics and the index) and 20% (compacted too: a new table,
// bucket array and index): fresh stores whose chosen series (counters and histograms alike) were last active at
// 0 s, the others at 100 s.
func expiring(_ fraction: String, _ expires: @escaping (Int) -> Bool, count: Int) -> [Double] {
    (0..<repetitions).map { _ in
        var store = Filled(ttl: ttl)
        _ = store.apply(store.frames(keeping: { !expires($0) }), at: origin + .seconds(100))
        let started = ContinuousClock.now
        let expired = store.store.expireSeries(now: origin + .seconds(100))
        precondition(expired == count, "\(expired) expired, not \(count)")
        return milliseconds(ContinuousClock.now - started)
    }
}
let few = expiring("1%", { $0 % 200 == 3 || $0 % 200 == 9 }, count: series / 100)
let many = expiring("20%", { $0 % 10 == 3 || $0 % 10 == 9 }, count: series / 5)
func list(_ values: [Double]) -> String { values.map { String(format: "%.1f", $0) }.joined(separator: " ") }
print("expiry pass at \(series) series (lock held), ms: nothing expired \(list(scans)); 1% expired \(list(few)); 20% expired, compacted \(list(many))")
