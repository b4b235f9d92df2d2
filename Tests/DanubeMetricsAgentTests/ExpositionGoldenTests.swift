@testable import DanubeMetricsAgent
import DanubeMetricsCatalog
import DanubeMetricsWire
import Foundation
import Testing

/// Every format of a store with everything a family can hold (escaped label values, counters with and without a
/// fraction or `_total`, hidden and derived gauges, classic and native histograms, native buckets that do not
/// hold every observation, exemplars on counters and buckets), byte for byte against files in
/// `Tests/fixtures/exposition`. The files were written by the exposition before it read from a snapshot (the
/// protobuf one then translated its own OpenMetrics text), so they pin the formats across encoders; the one change
/// since is the protobuf exemplar timestamp, now exact to the millisecond it was recorded in (it was 1e-7 s off).
/// `UPDATE_GOLDEN=1` rewrites them.
@Suite struct ExpositionGoldenTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../fixtures/exposition").standardized.path

    static func goldenStore() -> AggregationStore {
        let store = AggregationStore(gaugeGrace: .seconds(15), derived: ReliableBacklog.derivations(BuiltinCatalog.catalog))
        let tricky = [Label("a", "plain"), Label("path", "C:\\dir \"quoted\"\nnext")]
        let native = NativeHistogramSpec(schema: 3, zeroThreshold: 0x1p-5, maxBuckets: 184)
        let partition = { (p: Int) in [Label("namespace", "ns"), Label("partition", "\(p)"), Label("topic", "t")] }
        let progress = { (s: String, p: Int) in
            [Label("namespace", "ns"), Label("partition", "\(p)"), Label("subscription", s), Label("topic", "t")]
        }
        let definitions = [
            SeriesDefinition(id: 0, kind: .counter, name: "files_total", help: "Files \"seen\"\nso far \\ all.", labels: tricky),
            SeriesDefinition(id: 1, kind: .counter, name: "files_total", help: "", labels: [Label("a", "other")]),
            SeriesDefinition(id: 2, kind: .counter, name: "bytes_moved", help: "No suffix.", labels: []),
            SeriesDefinition(id: 3, kind: .gauge, name: "depth", help: "Depth.", labels: tricky),
            SeriesDefinition(id: 4, kind: .gauge, name: "depth", help: "", labels: [Label("a", "never_set")]),
            SeriesDefinition(id: 5, kind: .histogram, name: "size_bytes", help: "Sizes.", labels: tricky, bounds: [1, 10, 2.5e9]),
            SeriesDefinition(id: 6, kind: .histogram, name: "bare_bytes", help: "", labels: [], bounds: [5]),
            SeriesDefinition(id: 7, kind: .histogram, name: "latency_ms", help: "Latency.", labels: [Label("op", "put")],
                             bounds: [0.5, 10, 100], native: native),
            SeriesDefinition(id: 8, kind: .histogram, name: "latency_ms", help: "", labels: [Label("op", "get")],
                             bounds: [0.5, 10, 100], native: native),
            SeriesDefinition(id: 9, kind: .gauge, name: "danube_wal_end_offset", help: "", labels: partition(0)),
            SeriesDefinition(id: 10, kind: .gauge, name: "danube_wal_end_offset", help: "", labels: partition(1)),
            SeriesDefinition(id: 11, kind: .gauge, name: "danube_sub_progress_offset", help: "", labels: progress("a", 0)),
            SeriesDefinition(id: 12, kind: .gauge, name: "danube_sub_progress_offset", help: "", labels: progress("a", 1)),
            SeriesDefinition(id: 13, kind: .gauge, name: "danube_topic_backlog_messages", help: "Reported backlog.",
                             labels: [Label("namespace", "ns"), Label("reliable", "true"), Label("subscription", "z"), Label("topic", "t")]),
        ]
        let bindings = definitions.map { try? store.define($0).get() }
        var batch = DeltaBatch(sequence: 1)
        func histogram(_ id: UInt32, _ buckets: [BucketDelta], sum: Double) {
            batch.deltas.append(Delta(op: .histogram, seriesID: id, bucketStart: batch.buckets.count, bucketCount: buckets.count, sum: sum))
            batch.buckets += buckets
        }
        batch.deltas.append(Delta(op: .counterAdd, seriesID: 0, value: 7))
        batch.deltas.append(Delta(op: .counterAddFloat, seriesID: 1, value: (2.25).bitPattern))
        batch.deltas.append(Delta(op: .counterAdd, seriesID: 2, value: 123_456_789_012))
        batch.deltas.append(Delta(op: .gaugeSet, seriesID: 3, value: (-2.5).bitPattern))
        histogram(5, [BucketDelta(index: 0, count: 2), BucketDelta(index: 3, count: 1)], sum: 3e9 + 1.5)
        histogram(6, [BucketDelta(index: 1, count: 4)], sum: 40)
        // put: 5 at 0.4 ms, 6 and 5 near 8 ms, 1 above 100 ms, the same in native buckets (after 4 classic, the zero).
        histogram(7, [BucketDelta(index: 0, count: 5), BucketDelta(index: 1, count: 11), BucketDelta(index: 3, count: 1),
                      BucketDelta(index: 4 + 1 + 29, count: 5), BucketDelta(index: 4 + 1 + 63, count: 6),
                      BucketDelta(index: 4 + 1 + 64, count: 5), BucketDelta(index: 4 + 1 + 90, count: 1)], sum: 123.5)
        // get: classic buckets only (as from an emitter without native buckets): no native histogram for it.
        histogram(8, [BucketDelta(index: 1, count: 3)], sum: 9)
        for (id, value) in [(9, 1_000.0), (10, 500), (11, 900), (12, 450), (13, 7)] {
            batch.deltas.append(Delta(op: .gaugeSet, seriesID: UInt32(id), value: value.bitPattern))
        }
        store.sourceConnected(1)
        _ = store.claim(instance: 1, connection: 1, now: 0)
        store.apply(batch, bindings: bindings, from: 1, instance: 1, now: 0)
        let exemplar = [Label("trace_id", "0af7651916cd43dd8448eb211c80319c"), Label("span_id", "b7ad6b7169203331")]
        store.exemplars.record(ExemplarUpdate(seriesID: 0, bucket: 0, value: 1, timestampMillis: 1_700_000_000_123, labels: exemplar),
                               slot: bindings[0]!.slot, buckets: 0)
        store.exemplars.record(ExemplarUpdate(seriesID: 5, bucket: 1, value: 7.5, timestampMillis: 1_700_000_000_500, labels: exemplar),
                               slot: bindings[5]!.slot, buckets: 4)
        return store
    }

    static func render(_ store: AggregationStore, _ format: ScrapeFormat) -> [UInt8] {
        switch format {
        case .text(let text): Array(TextExposition.encode(MetricsSnapshot(store: store, exemplars: text == .openMetrics), format: text).joined())
        case .protobuf: Array(ProtobufExposition.encode(MetricsSnapshot(store: store, exemplars: true)).joined())
        }
    }

    @Test(arguments: [("text", ScrapeFormat.text(.prometheusText)), ("openmetrics", .text(.openMetrics)), ("protobuf", .protobuf)])
    func everyFormatIsByteIdenticalToTheGoldenFile(name: String, format: ScrapeFormat) throws {
        let rendered = Self.render(Self.goldenStore(), format)
        let path = "\(Self.directory)/store.\(name)"
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(atPath: Self.directory, withIntermediateDirectories: true)
            try Data(rendered).write(to: URL(fileURLWithPath: path))
        }
        let golden = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let firstDifference = (0..<min(rendered.count, golden.count)).first { rendered[$0] != golden[$0] } ?? min(rendered.count, golden.count)
        #expect(rendered == golden, "\(name): \(rendered.count) bytes against \(golden.count), first difference at byte \(firstDifference)")
    }
}
