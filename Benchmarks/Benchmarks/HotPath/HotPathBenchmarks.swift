import Benchmark
import DanubeMetricsEmitter
import Foundation

/// The emitter's hot path: one update per inner-loop iteration, 1M per measured iteration, so the reported
/// time in µs per iteration reads as ns per update. Allocation counts are for the whole 1M updates.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
        scalingFactor: .mega,
        maxDuration: .seconds(3),
        maxIterations: 50)

    // No agent: the hot path does not depend on one, and the flusher stays idle.
    var configuration = EmitterConfiguration(socketPath: "/nonexistent/bench.sock", sourceName: "bench")
    configuration.flushInterval = .seconds(3600)
    let emitter = Emitter(configuration: configuration)
    let counter = try! emitter.counter("bench_total", labels: [("topic", "t")])
    let histogram = try! emitter.histogram("bench_latency_ms", buckets: Buckets.latencyMilliseconds)
    let gauge = try! emitter.gauge("bench_depth")
    // Touch from this thread once so slab and chunk exist before measuring.
    counter.increment()
    histogram.observe(1)

    Benchmark("Counter.increment, 1 thread") { benchmark in
        for _ in benchmark.scaledIterations { counter.increment() }
    }

    Benchmark("Histogram.observe, 1 thread") { benchmark in
        var value = 0.0
        for _ in benchmark.scaledIterations {
            histogram.observe(value)
            value = value < 5_000 ? value + 0.37 : 0
        }
    }

    Benchmark("Gauge.set, 1 thread") { benchmark in
        var value = 0.0
        for _ in benchmark.scaledIterations {
            gauge.set(value)
            value += 1
        }
    }

    Benchmark("Counter.increment, 2 threads") { benchmark in
        onThreads(2, iterations: benchmark.scaledIterations.count) { counter.increment() }
    }

    Benchmark("Histogram.observe, 2 threads") { benchmark in
        onThreads(2, iterations: benchmark.scaledIterations.count) { histogram.observe(42.5) }
    }
}

/// Runs `body` `iterations` times on each of `threads` threads at once (the wall time is per update per thread).
func onThreads(_ threads: Int, iterations: Int, _ body: @escaping @Sendable () -> Void) {
    let group = DispatchGroup()
    for _ in 0..<threads {
        group.enter()
        Thread {
            for _ in 0..<iterations { body() }
            group.leave()
        }.start()
    }
    group.wait()
}
