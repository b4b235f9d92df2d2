// Writes the seed corpus: one file per valid frame of every type, and a record of several frames (as NIO's
// coalesced writes produce). Compiled with Sources/DanubeMetricsWire by run.sh when the corpus is missing.
import Foundation

let directory = CommandLine.arguments.dropFirst().first ?? "corpus"
try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
let frames: [Frame] = [
    .hello(Hello(sourceName: "danube-broker", pid: 4242, processStartMillis: 1_764_400_000_000, instanceID: 0xDEAD_BEEF, firstSequence: 1)),
    .welcome(Welcome(version: 1, maxFrameBytes: 65_536, maxSeries: 100_000, lastAppliedSequence: 99)),
    .refuse(Refusal(code: .outOfOrder, message: "frame sequence 3 arrived where 2 was expected")),
    .define(DefineBatch(sequence: 1, definitions: [
        SeriesDefinition(id: 0, kind: .counter, name: "danube_topic_messages_in_total", help: "Messages.",
                         labels: [Label("namespace", "default"), Label("partition", "0"), Label("topic", "orders")]),
        SeriesDefinition(id: 1, kind: .gauge, name: "danube_dispatcher_queue_depth", help: "Queue.", labels: [Label("reliable", "true")]),
        SeriesDefinition(id: 2, kind: .histogram, name: "danube_wal_append_latency_ms", help: "Latency.",
                         labels: [Label("partition", "0")], bounds: [0.05, 0.5, 1, 2.5, 10, 300_000]),
    ])),
    .deltas(DeltaBatch(sequence: 2, deltas: [
        Delta(op: .counterAdd, seriesID: 0, value: 1_000),
        Delta(op: .counterAddFloat, seriesID: 0, value: (2.5).bitPattern),
        Delta(op: .gaugeSet, seriesID: 1, value: (12.0).bitPattern),
        Delta(op: .gaugeAdd, seriesID: 1, value: (-1.0).bitPattern),
        Delta(op: .histogram, seriesID: 2, bucketStart: 0, bucketCount: 2, sum: 3.5),
    ], buckets: [BucketDelta(index: 0, count: 1), BucketDelta(index: 6, count: 300)])),
    .ack(123_456_789),
    .seriesRefused(SeriesRefusal(seriesID: 9, code: .catalogViolation, message: "unknown_label: x")),
    .goodbye(77),
]
for (index, frame) in frames.enumerated() {
    try Data(FrameEncoder.encode(frame)).write(to: URL(fileURLWithPath: "\(directory)/frame-\(index)-\(frame.type)"))
}
try Data(frames.flatMap { FrameEncoder.encode($0) }).write(to: URL(fileURLWithPath: "\(directory)/record-all-frames"))
print("wrote \(frames.count + 1) seeds to \(directory)")
