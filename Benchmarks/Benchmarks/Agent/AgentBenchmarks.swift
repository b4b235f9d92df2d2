import Benchmark
import DanubeMetricsAgent
import DanubeMetricsWire
import BenchmarkSupport
import Foundation
import Logging

/// Rendering a large `/metrics` (ingest throughput has its own command: IngestThroughput).
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
        maxDuration: .seconds(5),
        maxIterations: 30)

    // 100k series: 80k counters, 15k gauges, 5k histograms of 19 buckets (about 200k exposition lines).
    let big = try! Agent(configuration: AgentConfiguration(ingestSocketPath: "/nonexistent"), logger: Logger(label: "bench"))
    fill(big.store, counters: 80_000, gauges: 15_000, histograms: 5_000)

    Benchmark("Render /metrics, 100k series, Prometheus text") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(big.renderMetrics(format: .prometheusText)) }
    }

    Benchmark("Render /metrics, 100k series, OpenMetrics") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(big.renderMetrics(format: .openMetrics)) }
    }

    // What a checkpoint does besides the write itself: copy out the counters and histograms, encode them.
    Benchmark("Checkpoint encode, 100k series") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(StateFormat.encode(big.store.snapshot(), writtenAt: 0)) }
    }
}

