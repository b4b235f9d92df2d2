import Benchmark
import DanubeMetricsAgent
import DanubeMetricsWire
import Foundation
import Logging

/// The agent's two heavy jobs: applying deltas and rendering a large `/metrics`.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
        maxDuration: .seconds(5),
        maxIterations: 30)

    // 100k series: 80k counters, 15k gauges, 5k histograms of 19 buckets (about 200k exposition lines).
    let big = Agent(configuration: AgentConfiguration(ingestSocketPath: "/nonexistent"), logger: Logger(label: "bench"))
    fill(big.store, counters: 80_000, gauges: 15_000, histograms: 5_000)

    Benchmark("Render /metrics, 100k series, Prometheus text") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(big.renderMetrics(format: .prometheusText)) }
    }

    Benchmark("Render /metrics, 100k series, OpenMetrics") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(big.renderMetrics(format: .openMetrics)) }
    }

    // Ingest: 2 sources over real SEQPACKET sockets, each sending 200 frames of 1,000 deltas (a loadgen-like mix:
    // 70% counter adds, 20% histogram deltas, 10% gauge sets over 2,000 series). Throughput = deltas per second.
    Benchmark(
        "Ingest 400k deltas from 2 sources over the socket",
        configuration: .init(scalingFactor: .one, maxIterations: 10, thresholds: nil)
    ) { benchmark in
        let socket = "/tmp/dma-bench-\(getpid()).sock"
        var configuration = AgentConfiguration(ingestSocketPath: socket)
        configuration.httpListen = [ListenAddress(host: "127.0.0.1", port: 0)]
        let agent = Agent(configuration: configuration, logger: Logger(label: "bench"))
        try await agent.start()
        let sources = try (0..<2).map { _ in try BlastSource(path: socket) }
        benchmark.startMeasurement()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for source in sources { group.addTask { try source.blast(frames: 200) } }
            try await group.waitForAll()
        }
        while agent.stats.applied < 2 * 200 * 1_000 { try await Task.sleep(for: .microseconds(200)) }
        benchmark.stopMeasurement()
        await agent.stop()
    }
}

func fill(_ store: AggregationStore, counters: Int, gauges: Int, histograms: Int) {
    var id: UInt32 = 0
    var bindings: [SeriesBinding?] = []
    func labels(_ i: Int) -> [Label] {
        [Label("namespace", "ns\(i % 10)"), Label("topic", "topic-\(i / 10 % 1000)"), Label("partition", "\(i % 8)"),
         Label("subscription", "sub-\(i / 8000)")]
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
        bindings.append(try! store.define(SeriesDefinition(id: id, kind: .histogram, name: "danube_bench_latency_ms", help: "Bench histogram.", labels: labels(i), bounds: bounds)).get())
        batch.deltas.append(Delta(op: .histogram, seriesID: id, bucketStart: batch.buckets.count, bucketCount: 3, sum: 123.5))
        batch.buckets += [BucketDelta(index: 2, count: 5), BucketDelta(index: 7, count: 11), BucketDelta(index: 19, count: 1)]
        id += 1
    }
    store.sourceConnected(1)
    store.apply(batch, bindings: bindings, from: 1)
}

/// A raw emitter connection that sends pre-encoded frames as fast as the socket takes them.
final class BlastSource: @unchecked Sendable {
    let fd: Int32
    let frames: [[UInt8]]

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0)
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
        for f in 0..<200 {
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

    func blast(frames count: Int) throws {
        for frame in frames.prefix(count) {
            let n = frame.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
            precondition(n == frame.count, "send failed")
        }
    }

    deinit { close(fd) }
}
