import DanubeMetricsWire
import Testing

@Suite struct FrameRoundTripTests {
    let decoder = FrameDecoder()

    static let frames: [Frame] = [
        .hello(Hello(sourceName: "danube-broker", pid: 4242, processStartMillis: 1_764_400_000_000, instanceID: .max, firstSequence: 7)),
        .welcome(Welcome(version: 1, maxFrameBytes: 65_536, maxSeries: 100_000, lastAppliedSequence: 99)),
        .refuse(Refusal(code: .outOfOrder, message: "frame sequence 3 arrived where 2 was expected")),
        .define(DefineBatch(sequence: 1, definitions: [
            SeriesDefinition(id: 0, kind: .counter, name: "danube_topic_messages_in_total", help: "Messages.",
                             labels: [Label("namespace", "default"), Label("topic", "orders")]),
            SeriesDefinition(id: 1, kind: .gauge, name: "g", help: "", labels: []),
            SeriesDefinition(id: 2, kind: .histogram, name: "danube_wal_append_latency_ms", help: "h\nx",
                             labels: [Label("partition", "0")], bounds: [0.5, 1, 2.5]),
        ])),
        .deltas(DeltaBatch(sequence: 2, deltas: [
            Delta(op: .counterAdd, seriesID: 0, value: UInt64.max),
            Delta(op: .counterAddFloat, seriesID: 0, value: (2.5).bitPattern),
            Delta(op: .gaugeSet, seriesID: 1, value: (-1.25).bitPattern),
            Delta(op: .gaugeAdd, seriesID: 1, value: Double.nan.bitPattern),
            Delta(op: .histogram, seriesID: 2, bucketStart: 0, bucketCount: 2, sum: 3.5),
            Delta(op: .histogram, seriesID: 2, bucketStart: 2, bucketCount: 0, sum: 0),
        ], buckets: [BucketDelta(index: 0, count: 1), BucketDelta(index: 3, count: 300)])),
        .ack(123_456_789),
        .seriesRefused(SeriesRefusal(seriesID: 9, code: .conflictingDefinition, message: "x is a gauge")),
        .goodbye(77),
    ]

    @Test(arguments: frames)
    func everyFrameTypeRoundTrips(_ frame: Frame) throws {
        let bytes = FrameEncoder.encode(frame)
        let decoded = try decoder.decode(bytes)
        if case .deltas(let a) = frame, case .deltas(let b) = decoded {
            // NaN != NaN: compare the bit patterns through a re-encode instead.
            #expect(a.deltas.count == b.deltas.count)
            #expect(FrameEncoder.encode(.deltas(b)) == bytes)
        } else {
            #expect(decoded == frame)
        }
    }

    @Test func headerCarriesLengthTypeAndFlags() {
        let bytes = FrameEncoder.encode(.ack(1))
        #expect(bytes == [3, 0, 0, 0, FrameType.ack.rawValue, 0, 1])
    }

    @Test func varintsUseTheFewestBytes() throws {
        for (value, size) in [(UInt64(0), 1), (127, 1), (128, 2), (16_383, 2), (16_384, 3), (UInt64.max, 10)] {
            var writer = ByteWriter()
            writer.uvarint(value)
            #expect(writer.count == size)
            let decoded = try writer.bytes.withUnsafeBytes { raw in
                var reader = ByteReader(raw)
                return try reader.uvarint()
            }
            #expect(decoded == value)
        }
    }

    @Test func builderNeverExceedsTheFrameLimit() throws {
        var builder = FrameBuilder(type: .deltas, sequence: 1, maxFrameBytes: 100)
        var appended = 0
        while builder.append({ FrameEncoder.encode(Delta(op: .counterAdd, seriesID: 300, value: 1 << 40), buckets: EmptyCollection(), into: &$0) }) {
            appended += 1
        }
        let frame = builder.finish()
        #expect(frame.count <= 100)
        #expect(appended == builder.items)
        guard case .deltas(let batch) = try decoder.decode(frame) else {
            Issue.record("not a DELTAS frame")
            return
        }
        #expect(batch.deltas.count == appended)
    }
}

/// A frame as a test argument: its type in the test's name, not its whole contents.
extension Frame: CustomTestStringConvertible {
    public var testDescription: String { "\(self)".prefix { $0 != "(" }.description }
}
