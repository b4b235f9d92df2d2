import DanubeMetricsWire
import Foundation

/// A raw emitter connection that sends pre-encoded frames as fast as the socket takes them: the agent's ingest
/// cost alone (decode, check, apply), without an emitter's flusher competing for the two cores.
final class BlastSource: Sendable {
    let fd: Int32
    let frames: [[UInt8]]

    /// Connects, defines 2,000 series and pre-encodes `frameCount` DELTAS frames of 1,000 deltas each.
    init(path: String, frameCount: Int) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0)
        self.fd = fd
        let rc = try UnixSocketAddress.withSockaddr(path: path) { connect(fd, $0, $1) }
        precondition(rc == 0, "connect failed")
        var sequence: UInt64 = 1
        func send(_ frame: Frame) {
            let bytes = FrameEncoder.encode(frame)
            _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        }
        send(.hello(Hello(sourceName: "blast", pid: 1, processStartMillis: 1, instanceID: UInt64.random(in: 1...UInt64.max), firstSequence: 1)))
        var reply = [UInt8](repeating: 0, count: 1 << 16)
        _ = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        let series = 2_000
        let bounds: [Double] = [0.1, 0.5, 1, 5, 10, 50, 100, 500, 1_000]
        var definitions: [SeriesDefinition] = []
        for i in 0..<series {
            let kind: MetricKind = i % 10 < 7 ? .counter : (i % 10 < 9 ? .histogram : .gauge)
            let name = kind == .counter ? "blast_total" : (kind == .gauge ? "blast_depth" : "blast_latency_ms")
            definitions.append(SeriesDefinition(id: UInt32(i), kind: kind, name: name, help: "", labels: [Label("series", "\(i)")], bounds: kind == .histogram ? bounds : []))
        }
        for chunk in stride(from: 0, to: series, by: 500) {
            send(.define(DefineBatch(sequence: sequence, definitions: Array(definitions[chunk..<min(series, chunk + 500)]))))
            sequence += 1
        }
        var frames: [[UInt8]] = []
        for f in 0..<frameCount {
            var batch = DeltaBatch(sequence: sequence + UInt64(f))
            for d in 0..<1_000 {
                let definition = definitions[(f * 1_000 + d * 7) % series]
                switch definition.kind {
                case .counter: batch.deltas.append(Delta(op: .counterAdd, seriesID: definition.id, value: UInt64(d % 300 + 1)))
                case .gauge: batch.deltas.append(Delta(op: .gaugeSet, seriesID: definition.id, value: Double(d).bitPattern))
                case .histogram:
                    batch.deltas.append(Delta(op: .histogram, seriesID: definition.id, bucketStart: batch.buckets.count, bucketCount: 2, sum: 17.25))
                    batch.buckets += [BucketDelta(index: 3, count: 2), BucketDelta(index: 5, count: 1)]
                }
            }
            frames.append(FrameEncoder.encode(.deltas(batch)))
        }
        self.frames = frames
    }

    /// Sends frames [start, start + count) as fast as the socket takes them.
    func blast(from start: Int, count: Int) throws {
        for frame in frames[start..<start + count] {
            let n = frame.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
            precondition(n == frame.count, "send failed")
        }
    }

    deinit { close(fd) }
}
