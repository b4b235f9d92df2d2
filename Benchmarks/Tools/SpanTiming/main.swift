import DanubeMetricsEmitter
import DanubeMetricsWire
import Foundation

// What a span costs at the call site in the Swift emitter, beside a counter increment, in one run (the Rust
// crate's `cargo bench --bench span_cost`, the same cases): a span of an unsampled trace, the same timed (slow
// threshold set), and a sampled span (recorded into its thread's ring, emptied every 256 spans as the flusher
// would, counted in). Each through a non-inlined call, median of 5 runs.
// Usage: swift build -c release --product SpanTiming && .build/release/SpanTiming [calls]
let calls = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 5_000_000
var configuration = EmitterConfiguration(socketPath: "/nonexistent/probe.sock", sourceName: "probe")
configuration.flushInterval = .seconds(3600)
let emitter = Emitter(configuration: configuration)
let counter = try emitter.counter("probe_total")

@inline(never) func increment() { counter.increment() }
@inline(never) func span() { _ = Span("publish", kind: .producer) }
@inline(never) func spanWithAttribute() {
    let span = Span("publish", kind: .producer)
    span.setAttribute("messaging.destination.name", .string("/default/orders"))
}

func measure(_ work: () -> Void, drain: Bool = false) -> Double {
    var runs: [Double] = []
    for _ in 0..<5 {
        let began = ContinuousClock.now
        for i in 0..<calls {
            work()
            if drain && i % 256 == 255 { _ = Tracing.takeFinishedSpans() }
        }
        let elapsed = ContinuousClock.now - began
        runs.append((Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9) / Double(calls))
    }
    return runs.sorted()[2]
}

if ProcessInfo.processInfo.environment["UNSAMPLED_ONLY"] != nil {
    // For a profiler: the unsampled span alone.
    Tracing.configureSampling(ratio: 0, slow: nil)
    print(String(format: "%.2f", (0..<10).map { _ in measure(span) }.min() ?? 0))
    exit(0)
}

func row(_ name: String, _ nanos: Double) { print(String(format: "| %@ | %.2f |", name, nanos)) }
print("| case | ns per call |")
print("| --- | --- |")
row("`Counter.increment` (reference)", measure(increment))
Tracing.configureSampling(ratio: 0, slow: nil)
row("span start + end, trace not sampled", measure(span))
row("the same with an attribute set (ignored: not recorded)", measure(spanWithAttribute))
Tracing.configureSampling(ratio: 0, slow: .milliseconds(100))
row("span start + end, not sampled, slow threshold set (timed)", measure(span))
Tracing.configureSampling(ratio: 1, slow: nil)
row("span start + end, sampled (recorded, drained every 256)", measure(span, drain: true))
row("the same with one string attribute", measure(spanWithAttribute, drain: true))
