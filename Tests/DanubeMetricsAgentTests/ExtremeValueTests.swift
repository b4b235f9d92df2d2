@testable import DanubeMetricsAgent
import DanubeMetricsTestKit
import DanubeMetricsWire
import Foundation
import Testing

/// Numbers a peer or a state file can put in the store: counts at and past 2^63 and 2^64, sums that are not
/// finite, observations of +-Inf and NaN. None may crash the agent (no trapping conversion anywhere from ingest to
/// every encoder), and none may poison what comes after.
@Suite struct ExtremeValueTests {
    /// Counter and bucket deltas that would pass 2^63 - 1 (or wrap) saturate there and are counted; every format
    /// still renders.
    @Test func countsSaturateInsteadOfWrappingAndEveryFormatRenders() async throws {
        let agent = try await TestAgent()
        let source = try RawSource(path: agent.socketPath)
        #expect(source.handshake() != nil)
        let native = NativeHistogramSpec(schema: 3, zeroThreshold: 1e-3, maxBuckets: 16)
        source.send(.define(DefineBatch(sequence: 1, definitions: [
            SeriesDefinition(id: 0, kind: .counter, name: "test_huge_total", help: "", labels: []),
            SeriesDefinition(id: 1, kind: .histogram, name: "test_huge_ms", help: "", labels: [], bounds: [1], native: native),
        ])))
        for sequence in UInt64(2)...4 {
            source.send(.deltas(DeltaBatch(sequence: sequence, deltas: [
                Delta(op: .counterAdd, seriesID: 0, value: .max),
                Delta(op: .histogram, seriesID: 1, bucketStart: 0, bucketCount: 3, sum: 1e300),
            ], buckets: [BucketDelta(index: 0, count: .max), BucketDelta(index: 2, count: 1 << 62), BucketDelta(index: 5, count: .max)])))
        }
        let maxCount = Double(Int64.max)
        #expect(try await eventuallyAsync { try agent.samples()["test_huge_total"] == maxCount })
        let samples = try agent.samples()
        #expect(samples["test_huge_ms_bucket{le=\"1.0\"}"] == maxCount)
        #expect(samples["danube_agent_counts_saturated_total"] ?? 0 >= 4)
        #expect(try agent.scrape(accept: "application/openmetrics-text; version=1.0.0").status == 200)
        let protobuf = try agent.scrape(accept: "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
        #expect(protobuf.status == 200)
        Self.renderEveryFormat(agent.agent.store)
        await agent.stop()
    }

    /// A histogram's sum never takes an infinite observation (it counts in its bucket; NaN is ignored): 1, +Inf, 2,
    /// NaN, -Inf and 4, flushed between each, end as a sum of 7 and a count of 5 (the sum was NaN from the +Inf on).
    @Test func nonFiniteObservationsCountButNeverPoisonTheSum() async throws {
        let agent = try await TestAgent()
        let emitter = agent.emitter()
        let histogram = try emitter.histogram("test_non_finite_ms", buckets: [1, 10])
        for value in [1, Double.infinity, 2, .nan, -.infinity, 4] {
            histogram.observe(value)
            #expect(emitter.waitUntilDelivered())
        }
        let samples = try agent.samples()
        #expect(samples["test_non_finite_ms_sum"] == 7)
        #expect(samples["test_non_finite_ms_count"] == 5)
        #expect(samples["test_non_finite_ms_bucket{le=\"1.0\"}"] == 2) // 1 and -Inf
        #expect(samples["test_non_finite_ms_bucket{le=\"10.0\"}"] == 4)
        emitter.shutdown()
        await agent.stop()
    }

    /// Stores no peer can build through ingest any more (a state file can): counts up to 2^64 - 1, non-finite sums
    /// and counter fractions, full native windows. Every encoder takes each of many random ones without trapping.
    @Test func everyEncoderTakesRandomExtremeStores() throws {
        var random = SplitMix(seed: 20)
        let counts: [UInt64] = [0, 1, 2, 1 << 53, (1 << 53) + 1, UInt64(Int64.max), UInt64(Int64.max) + 1, .max - 1, .max]
        let doubles: [Double] = [0, -0.0, 1, -1, .nan, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                                 .leastNonzeroMagnitude, 0x1p53.nextUp, 1e19, -1e19]
        func count() -> UInt64 { random.next(below: 3) == 0 ? random.next() : counts[Int(random.next(below: UInt64(counts.count)))] }
        func double() -> Double { doubles[Int(random.next(below: UInt64(doubles.count)))] }
        for round in 0..<1_000 {
            var snapshot = StoreSnapshot()
            for i in 0..<8 {
                let native = random.next(below: 2) == 0 ? nil : NativeHistogramSpec(
                    schema: Int8(random.next(below: 13)) - 4, zeroThreshold: [1e-300, 1e-3, 1, 1e300][Int(random.next(below: 4))],
                    maxBuckets: UInt16(random.next(below: 256) + 1))
                let bounds = random.next(below: 2) == 0 ? [1.0] : [-1e300, 0, 1e300]
                let kind: MetricKind = i % 2 == 0 ? .counter : .histogram
                var series = StoreSnapshot.Series(
                    name: kind == .counter ? "test_extreme_\(i)_total" : "test_extreme_\(i)_ms", kind: kind, help: "h",
                    bounds: kind == .histogram ? bounds : [], labels: [Label("round", "\(round)")],
                    counterInteger: count(), counterFloat: double(), buckets: [], sum: double(), native: kind == .histogram ? native : nil)
                series.buckets = (0..<series.bucketCount).map { _ in count() }
                if let native = series.native {
                    // Any non-empty buckets of the window, in position order.
                    series.nativeBuckets = (0..<Int(native.maxBuckets)).filter { _ in random.next(below: 4) == 0 }.flatMap { [UInt64($0), count()] }
                }
                snapshot.series.append(series)
            }
            let store = AggregationStore(gaugeGrace: .seconds(1))
            try store.restore(snapshot)
            Self.renderEveryFormat(store)
        }
    }

    /// Text, OpenMetrics, protobuf (from the OpenMetrics text with native lines) and remote write, classic and native.
    static func renderEveryFormat(_ store: AggregationStore) {
        for format in [ExpositionFormat.prometheusText, .openMetrics] {
            var writer = ExpositionWriter(format: format)
            writer.write(MetricsSnapshot(store: store, exemplars: writer.format == .openMetrics))
            writer.finish()
            #expect(!writer.bytes.isEmpty)
        }
        #expect(!ProtobufExposition.encode(MetricsSnapshot(store: store, exemplars: true)).isEmpty)
        for native in [false, true] {
            let encoder = RemoteWriteEncoder(maxSeriesPerRequest: 50, nativeHistograms: native)
            #expect(!encoder.requests(MetricsSnapshot(store: store, exemplars: false), timestamp: 1).isEmpty)
        }
    }
}
