import DanubeMetricsWire
import Foundation

/// One emitter connection of the scale benchmark: defines its share of the series (80% counters, 15% gauges,
/// 5% histograms of 19 bounds, 4 labels each, in families of at most 8,000 series as the default per-family
/// limit allows) and sends deltas, reading the agent's acknowledgements as it goes (an agent whose replies
/// pile up stops reading, as it should).
// @unchecked: one thread at a time sends on a source (`sequence` is that thread's); the benchmarks never share one.
public final class ScaleSource: @unchecked Sendable {
    static let bounds: [Double] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000]
    /// NATIVE=1: histograms also keep the catalog's native latency buckets (schema 3, 184).
    public static let native = ProcessInfo.processInfo.environment["NATIVE"] == "1"
        ? NativeHistogramSpec(schema: 3, zeroThreshold: 0x1p-5, maxBuckets: 184) : nil

    let fd: Int32
    public let definitions: [SeriesDefinition]
    private var sequence: UInt64 = 1

    public init(path: String, source: Int, series: Int) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0)
        self.fd = fd
        let rc = try UnixSocketAddress.withSockaddr(path: path) { connect(fd, $0, $1) }
        precondition(rc == 0, "connect(\(path)) failed: errno \(errno)")
        var definitions: [SeriesDefinition] = []
        definitions.reserveCapacity(series)
        for i in 0..<series {
            let global = source * series + i
            let labels = [Label("namespace", "ns\(global % 10)"), Label("partition", "\(global % 8)"),
                          Label("subscription", "sub-\(global % 3)"), Label("topic", "topic-\(source)-\(i / 24)")]
            let kind: MetricKind = i % 20 < 16 ? .counter : (i % 20 < 19 ? .gauge : .histogram)
            // Families of at most 8,000 series across all sources: uncatalogued families hold 10,000 each by default.
            let family = global / 8_000
            let name = kind == .counter ? "scale_\(family)_total" : (kind == .gauge ? "scale_gauge_\(family)" : "scale_latency_\(family)_ms")
            definitions.append(SeriesDefinition(id: UInt32(i), kind: kind, name: name, help: "Scale benchmark series.",
                                                labels: labels, bounds: kind == .histogram ? Self.bounds : [],
                                                native: kind == .histogram ? Self.native : nil))
        }
        self.definitions = definitions
        // Without draining replies: that would take the WELCOME the next line waits for.
        send(.hello(Hello(sourceName: "scale-\(source)", pid: UInt64(getpid()), processStartMillis: 1,
                          instanceID: UInt64.random(in: 1...UInt64.max), firstSequence: 1)), drain: false)
        var reply = [UInt8](repeating: 0, count: 1 << 16)
        _ = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
    }

    public func defineAll() {
        for start in stride(from: 0, to: definitions.count, by: 150) {
            send(.define(DefineBatch(sequence: next(), definitions: Array(definitions[start..<min(definitions.count, start + 150)]))))
        }
    }

    /// One delta for every `stride`-th series starting at `offset` (stride 1: every series).
    public func update(stride step: Int = 1, offset: Int = 0, round: UInt64 = 1) {
        var batch = DeltaBatch(sequence: 0)
        for index in Swift.stride(from: offset % step, to: definitions.count, by: step) {
            let definition = definitions[index]
            switch definition.kind {
            case .counter: batch.deltas.append(Delta(op: .counterAdd, seriesID: definition.id, value: UInt64(index % 1_000 + 1) * round))
            case .gauge: batch.deltas.append(Delta(op: .gaugeSet, seriesID: definition.id, value: Double(index % 5_000 + Int(round)).bitPattern))
            case .histogram:
                // The same 3 observations in the native window when there is one (after the zero bucket, index 20).
                let native = Self.native == nil ? [] : [BucketDelta(index: UInt32(21 + index % 150), count: 2), BucketDelta(index: 21 + 183, count: 1)]
                batch.deltas.append(Delta(op: .histogram, seriesID: definition.id, bucketStart: batch.buckets.count, bucketCount: 2 + native.count, sum: 17.25))
                batch.buckets += [BucketDelta(index: UInt32(index % 19), count: 2), BucketDelta(index: 19, count: 1)] + native
            }
            if batch.deltas.count == 2_000 {
                batch.sequence = next()
                send(.deltas(batch))
                batch = DeltaBatch(sequence: 0)
            }
        }
        if !batch.deltas.isEmpty {
            batch.sequence = next()
            send(.deltas(batch))
        }
    }

    private func next() -> UInt64 {
        defer { sequence += 1 }
        return sequence
    }

    private func send(_ frame: Frame, drain: Bool = true) {
        let bytes = FrameEncoder.encode(frame)
        while true {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n == bytes.count { break }
            precondition(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "send failed: errno \(errno)")
            if drain { drainReplies() }
            usleep(200)
        }
        if drain { drainReplies() }
    }

    /// Reads whatever the agent sent (acknowledgements) without waiting.
    private func drainReplies() {
        var reply = [UInt8](repeating: 0, count: 1 << 16)
        while reply.withUnsafeMutableBytes({ recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }) > 0 {}
    }

    deinit { close(fd) }
}
