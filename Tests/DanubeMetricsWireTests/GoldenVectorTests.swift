import DanubeMetricsWire
import Foundation
import Testing

/// Golden vectors shared with the Rust emitter (`clients/rust/danube-metrics/tests/golden.rs`): byte files under
/// `Tests/golden-frames/`, written by this encoder. Both suites decode every `*.frames` file and re-encode it
/// byte-identically, and refuse every `bad-<code>-*.bin` file with that refusal code, so a format change on
/// either side fails both. Regenerate after a deliberate protocol change with
/// `DANUBE_METRICS_WRITE_GOLDEN=1 swift test --filter GoldenVectorTests`.
@Suite struct GoldenVectorTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../golden-frames").standardized

    /// One record per file: the frames it holds.
    static let records: [(String, [Frame])] = [
        ("hello", [.hello(Hello(minVersion: 1, maxVersion: 1, sourceName: "danube-broker", pid: 4242, processStartMillis: 1_764_400_000_000,
                                instanceID: 0x0123_4567_89AB_CDEF, firstSequence: 1))]),
        ("hello-version-range-unicode-name", [.hello(Hello(
            minVersion: 1, maxVersion: 3, sourceName: "wal-schreiber-ü", pid: 0, processStartMillis: 0,
            instanceID: .max, firstSequence: UInt64.max))]),
        ("welcome", [.welcome(Welcome(version: 1, maxFrameBytes: 65_536, maxSeries: 100_000, lastAppliedSequence: 0))]),
        ("welcome-resume", [.welcome(Welcome(version: 1, maxFrameBytes: 1 << 20, maxSeries: 1, lastAppliedSequence: 1_234_567_890_123))]),
        ("refuse", [.refuse(Refusal(code: .notPermitted, message: "uid 1000 may not send metrics to this agent"))]),
        ("refuse-empty-message", [.refuse(Refusal(code: .shuttingDown, message: ""))]),
        ("define-every-kind", [.define(DefineBatch(sequence: 1, definitions: [
            SeriesDefinition(id: 0, kind: .counter, name: "danube_topic_messages_in_total", help: "Total messages published to the topic (msg).",
                             labels: [Label("broker", "7"), Label("topic", "/default/orders")]),
            SeriesDefinition(id: 1, kind: .gauge, name: "danube_broker_topics_owned", help: "", labels: []),
            SeriesDefinition(id: 2, kind: .histogram, name: "danube_wal_flush_latency_ms", help: "WAL flush latency.\nSecond line \"quoted\".",
                             labels: [Label("topic", "/default/ordérs ✓")], bounds: [0.05, 0.1, 1, 2.5, 300_000]),
        ]))]),
        ("define-histogram-one-bound", [.define(DefineBatch(sequence: 300, definitions: [
            SeriesDefinition(id: 99_999, kind: .histogram, name: "h", help: "", labels: [], bounds: [-1.5]),
        ]))]),
        ("define-empty", [.define(DefineBatch(sequence: 2, definitions: []))]),
        ("define-native-histograms", [.define(DefineBatch(sequence: 5, definitions: [
            SeriesDefinition(id: 0, kind: .histogram, name: "danube_producer_send_latency_ms", help: "Send latency.",
                             labels: [Label("topic", "/default/orders")], bounds: [0.05, 1, 300_000],
                             native: NativeHistogramSpec(schema: 3, zeroThreshold: 0x1p-5, maxBuckets: 184)),
            SeriesDefinition(id: 1, kind: .histogram, name: "coarse", help: "", labels: [], bounds: [],
                             native: NativeHistogramSpec(schema: -4, zeroThreshold: 1e-300, maxBuckets: 256)),
        ]))]),
        ("deltas-native-buckets", [.deltas(DeltaBatch(sequence: 6, deltas: [
            Delta(op: .histogram, seriesID: 0, bucketStart: 0, bucketCount: 4, sum: 2.5),
        ], buckets: [BucketDelta(index: 1, count: 2), BucketDelta(index: 4, count: 1), BucketDelta(index: 44, count: 1),
                     BucketDelta(index: 188, count: 1)]))]),
        ("deltas-every-op", [.deltas(DeltaBatch(sequence: 3, deltas: [
            Delta(op: .counterAdd, seriesID: 0, value: 1),
            Delta(op: .counterAdd, seriesID: 0, value: UInt64.max),
            Delta(op: .counterAddFloat, seriesID: 0, value: (2.5).bitPattern),
            Delta(op: .gaugeSet, seriesID: 1, value: (-1.25).bitPattern),
            Delta(op: .gaugeSet, seriesID: 1, value: (-0.0).bitPattern),
            Delta(op: .gaugeAdd, seriesID: 1, value: Double.infinity.bitPattern),
            Delta(op: .histogram, seriesID: 2, bucketStart: 0, bucketCount: 3, sum: 1_234.5),
            Delta(op: .histogram, seriesID: 2, bucketStart: 3, bucketCount: 0, sum: 0),
        ], buckets: [BucketDelta(index: 0, count: 1), BucketDelta(index: 4, count: 128), BucketDelta(index: 5, count: 300)]))]),
        ("deltas-empty", [.deltas(DeltaBatch(sequence: 4))]),
        ("deltas-large-ids", [.deltas(DeltaBatch(sequence: 1 << 35, deltas: [
            Delta(op: .counterAdd, seriesID: UInt32.max, value: 127),
            Delta(op: .counterAdd, seriesID: 128, value: 128),
            Delta(op: .counterAdd, seriesID: 16_383, value: 16_384),
        ]))]),
        ("ack", [.ack(1)]),
        ("ack-max", [.ack(UInt64.max)]),
        ("series-refused", [.seriesRefused(SeriesRefusal(seriesID: 9, code: .catalogViolation, message: "danube_x_total has no label disk"))]),
        ("series-refused-unknown-code", [.seriesRefused(SeriesRefusal(seriesID: 0, code: .other, message: "?"))]),
        ("goodbye", [.goodbye(77)]),
        ("record-several-frames", [.ack(5), .seriesRefused(SeriesRefusal(seriesID: 1, code: .cardinalityLimit, message: "full")), .ack(6)]),
        ("exemplars", [.exemplars([
            ExemplarUpdate(seriesID: 2, bucket: 4, value: 0.67, timestampMillis: 1_764_400_000_123,
                           labels: [Label("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"), Label("span_id", "00f067aa0ba902b7")]),
            ExemplarUpdate(seriesID: 0, bucket: 0, value: 3, timestampMillis: 0, labels: [Label("trace_id", "ü")]),
            ExemplarUpdate(seriesID: 300, bucket: 0, value: -0.0, timestampMillis: .max, labels: []),
        ])]),
        ("spans", [.spans(SpanBatch(resource: [SpanAttribute("service.version", .string("0.15.1")), SpanAttribute("danube.cluster", .string("eu-1"))], spans: [
            SpanRecord(traceID: TraceID(high: 0x4BF9_2F35_77B3_4DA6, low: 0xA3CE_929D_0E0E_4736), spanID: 0x00F0_67AA_0BA9_02B7,
                       parentSpanID: 0x1122_3344_5566_7788, kind: .producer, parentIsRemote: true, name: "publish /default/orders",
                       startUnixNanos: 1_764_400_000_123_456_789, durationNanos: 2_345_678, status: .ok, traceState: "vendor=a,rojo=00f067aa0ba902b7",
                       attributes: [SpanAttribute("messaging.system", .string("danube")), SpanAttribute("messaging.destination.name", .string("/default/orders")),
                                    SpanAttribute("danube.producer_id", .int(-7)), SpanAttribute("messaging.message.body.size", .int(1_024)),
                                    SpanAttribute("danube.ratio", .double(0.25)), SpanAttribute("danube.reliable", .bool(true))],
                       events: [SpanEvent(name: "wal.fsync", offsetNanos: 2_000_000, attributes: [SpanAttribute("bytes", .int(4_096))]),
                                SpanEvent(name: "dispatched", offsetNanos: 2_345_678)]),
            SpanRecord(traceID: TraceID(high: 0, low: 1), spanID: UInt64.max, name: "ü", startUnixNanos: 0, durationNanos: 0,
                       status: .error, statusMessage: "segment upload failed"),
        ]))]),
        ("spans-empty", [.spans(SpanBatch())]),
    ]

    /// A DEFINE of one native histogram with the spec's fields as given (the encoder writes them unchecked).
    static func nativeDefinition(schema: Int8, maxBuckets: UInt16) -> [UInt8] {
        FrameEncoder.encode(.define(DefineBatch(sequence: 1, definitions: [SeriesDefinition(
            id: 0, kind: .histogram, name: "h", help: "", labels: [], bounds: [1],
            native: NativeHistogramSpec(schema: schema, zeroThreshold: 1, maxBuckets: maxBuckets))])))
    }

    /// Byte strings both decoders must refuse, named by the refusal code.
    static let bad: [(String, [UInt8])] = [
        ("bad-malformed-reserved-flags", [0x03, 0, 0, 0, 0x12, 0x01, 0x01]),
        ("bad-malformed-unknown-type", [0x03, 0, 0, 0, 0x7F, 0x00, 0x01]),
        ("bad-malformed-non-minimal-varint", [0x04, 0, 0, 0, 0x12, 0x00, 0x81, 0x00]),
        ("bad-malformed-trailing-bytes", [0x04, 0, 0, 0, 0x12, 0x00, 0x01, 0x00]),
        ("bad-malformed-length-below-two", [0x01, 0, 0, 0, 0x12, 0x00]),
        ("bad-malformed-bad-magic", FrameEncoder.encode(.hello(Hello(minVersion: 1, maxVersion: 1, sourceName: "x", pid: 1, processStartMillis: 1, instanceID: 1, firstSequence: 1))).enumerated().map { $0.offset == 6 ? 0x58 : $0.element }),
        ("bad-malformed-unknown-delta-op", [0x05, 0, 0, 0, 0x11, 0x00, 0x01, 0x09, 0x00]),
        // A histogram delta (op 5) for series 0 naming no bucket, with a sum delta of +Inf.
        ("bad-malformed-histogram-sum-not-finite", [0x0E, 0, 0, 0, 0x11, 0x00, 0x01, 0x05, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0xF0, 0x7F]),
        ("bad-malformed-decreasing-buckets", [0x0C, 0, 0, 0, 0x11, 0x00, 0x01, 0x05, 0x00, 0x02, 0x03, 0x01, 0x01, 0x01, 0, 0]),
        ("bad-malformed-invalid-utf8", [0x05, 0, 0, 0, 0x03, 0x00, 0x01, 0x01, 0xFF]),
        ("bad-malformed-native-schema", nativeDefinition(schema: 9, maxBuckets: 8)),
        ("bad-limit_exceeded-native-buckets", nativeDefinition(schema: 3, maxBuckets: 257)),
        ("bad-truncated-short-header", [0x03, 0, 0]),
        ("bad-truncated-body", [0x09, 0, 0, 0, 0x12, 0x00, 0x01]),
        ("bad-truncated-field", [0x03, 0, 0, 0, 0x02, 0x00, 0x01]),
        ("bad-limit_exceeded-exemplar-labels", FrameEncoder.encode(.exemplars([ExemplarUpdate(
            seriesID: 0, bucket: 0, value: 1, timestampMillis: 1, labels: [Label("trace_id", String(repeating: "a", count: 121))])]))),
        ("bad-malformed-exemplar-not-finite", FrameEncoder.encode(.exemplars([ExemplarUpdate(
            seriesID: 0, bucket: 0, value: .nan, timestampMillis: 1, labels: [])]))),
        ("bad-malformed-span-zero-id", FrameEncoder.encode(.spans(SpanBatch(spans: [SpanRecord(
            traceID: TraceID(high: 1, low: 1), spanID: 0, name: "x", startUnixNanos: 1, durationNanos: 1)])))),
        ("bad-malformed-span-event-after-end", FrameEncoder.encode(.spans(SpanBatch(spans: [SpanRecord(
            traceID: TraceID(high: 1, low: 1), spanID: 1, name: "x", startUnixNanos: 1, durationNanos: 1,
            events: [SpanEvent(name: "late", offsetNanos: 2)])])))),
        ("bad-limit_exceeded-span-attributes", FrameEncoder.encode(.spans(SpanBatch(spans: [SpanRecord(
            traceID: TraceID(high: 1, low: 1), spanID: 1, name: "x", startUnixNanos: 1, durationNanos: 1,
            attributes: (0...SpanLimits.maxAttributes).map { SpanAttribute("a\($0)", .bool(true)) })])))),
    ]

    static func file(_ name: String) -> URL { directory.appendingPathComponent(name) }

    @Test func theCommittedVectorsAreWhatThisEncoderWrites() throws {
        let write = ProcessInfo.processInfo.environment["DANUBE_METRICS_WRITE_GOLDEN"] == "1"
        if write { try FileManager.default.createDirectory(at: Self.directory, withIntermediateDirectories: true) }
        for (name, frames) in Self.records {
            let bytes = frames.flatMap { FrameEncoder.encode($0) }
            if write { try Data(bytes).write(to: Self.file("\(name).frames")) }
            let committed = try [UInt8](Data(contentsOf: Self.file("\(name).frames")))
            #expect(committed == bytes, "\(name).frames differs from the encoder's output")
        }
        for (name, bytes) in Self.bad {
            if write { try Data(bytes).write(to: Self.file("\(name).bin")) }
            #expect(try [UInt8](Data(contentsOf: Self.file("\(name).bin"))) == bytes, "\(name).bin")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path).sorted()
        let expected = (Self.records.map { "\($0.0).frames" } + Self.bad.map { "\($0.0).bin" }).sorted()
        #expect(names == expected, "Tests/golden-frames holds files this test does not know")
    }

    @Test func everyVectorDecodesAndReencodesByteIdentically() throws {
        let decoder = FrameDecoder(limits: WireLimits())
        for (name, _) in Self.records {
            let bytes = try [UInt8](Data(contentsOf: Self.file("\(name).frames")))
            let frames = try decoder.decodeFrames(in: bytes)
            #expect(frames.flatMap { FrameEncoder.encode($0) } == bytes, "\(name)")
        }
    }

    @Test func everyBadVectorIsRefusedWithItsCode() throws {
        let decoder = FrameDecoder()
        for (name, _) in Self.bad {
            let bytes = try [UInt8](Data(contentsOf: Self.file("\(name).bin")))
            let code = name.split(separator: "-")[1]
            #expect(throws: WireError.self, "\(name)") { _ = try decoder.decodeFrames(in: bytes) }
            do {
                _ = try decoder.decodeFrames(in: bytes)
            } catch {
                #expect("\(error.code)" == code, "\(name): \(error)")
            }
        }
    }
}
