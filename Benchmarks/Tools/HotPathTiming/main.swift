import DanubeMetricsEmitter
import Foundation

// Prints ns per update with three significant digits (the ordo-one tables round per-update times to whole ns).
// Usage: swift run -c release HotPathTiming [updates-per-thread]
// Instructions per update: objcopy --strip-debug the binary (valgrind cannot read Swift's debug info), then
//   ONLY="observe, call site" valgrind --tool=callgrind HotPathTiming.nd 1000000  (and callgrind_annotate)
let updates = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 200_000_000
var configuration = EmitterConfiguration(socketPath: "/nonexistent/probe.sock", sourceName: "probe")
configuration.flushInterval = .seconds(3600)
let emitter = Emitter(configuration: configuration)
let counter = try emitter.counter("probe_total")
let histogram = try emitter.histogram("probe_latency_ms", buckets: Buckets.latencyMilliseconds)
/// The same classic buckets plus the catalog's native latency buckets (schema 3, 184 buckets): what every `_ms`
/// family of the catalog records.
let native = try emitter.histogram("probe_native_latency_ms", buckets: Buckets.latencyMilliseconds,
                                   native: NativeHistogramSpec(schema: 3, zeroThreshold: 0x1p-5, maxBuckets: 184))

/// ONLY=<text>: run only the rows whose name contains it (one row per callgrind run gives instructions per update).
let only = ProcessInfo.processInfo.environment["ONLY"]

func measure(_ name: String, threads: Int, _ body: @escaping @Sendable (Int) -> Void) {
    if let only, !name.contains(only) { return }
    let start = DispatchSemaphore(value: 0)
    let group = DispatchGroup()
    for _ in 0..<threads {
        group.enter()
        Thread {
            body(1_000) // warm up: slab and chunk exist
            start.wait()
            body(updates)
            group.leave()
        }.start()
    }
    Thread.sleep(forTimeInterval: 0.1)
    let began = ContinuousClock.now
    for _ in 0..<threads { start.signal() }
    group.wait()
    let elapsed = ContinuousClock.now - began
    let nanos = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
    print(String(format: "%-32@ %6.2f ns per update per thread, %7.1f M updates/s in all", name as NSString,
                 nanos / Double(updates), Double(updates * threads) / nanos * 1e3))
}

/// What a call site in another module pays: the update behind a call the optimizer may not inline or hoist.
@inline(never) func incrementAtCallSite(_ counter: Counter) { counter.increment() }
@inline(never) func observeAtCallSite(_ histogram: Histogram, _ value: Double) { histogram.observe(value) }

measure("Counter.increment, 1 thread", threads: 1) { n in for _ in 0..<n { counter.increment() } }
measure("Counter.increment, call site", threads: 1) { n in for _ in 0..<n { incrementAtCallSite(counter) } }
measure("Counter.increment, 2 threads", threads: 2) { n in for _ in 0..<n { counter.increment() } }
/// `n` observations sweeping 0 to 5,000 ms in steps of 0.37 ms (every classic bucket, ~130 native ones). The value
/// is computed from an integer step each time, as the counter rows need no value at all: a running `Double` kept
/// across an opaque call is spilled to memory and reloaded, a dependency chain that cost ~8 ns per update whatever
/// `observe` cost, and hid a 2.6 ns regression.
@inline(__always) func sweep(_ n: Int, _ observe: (Double) -> Void) {
    var step: UInt32 = 0
    for _ in 0..<n {
        observe(Double(step) * 0.37)
        step = step < 13_513 ? step &+ 1 : 0
    }
}

/// Through an existential, as a call through a protocol-typed value pays.
protocol Observing { func observe(_ value: Double) }
extension Histogram: Observing {}
@inline(never) func observeThroughExistential(_ observer: any Observing, _ value: Double) { observer.observe(value) }

measure("Histogram.observe, 1 thread", threads: 1) { n in sweep(n) { histogram.observe($0) } }
measure("Histogram.observe, call site", threads: 1) { n in sweep(n) { observeAtCallSite(histogram, $0) } }
measure("Histogram.observe +native, 1 thr", threads: 1) { n in sweep(n) { native.observe($0) } }
measure("Histogram.observe +native, call", threads: 1) { n in sweep(n) { observeAtCallSite(native, $0) } }
measure("Histogram.observe, existential", threads: 1) { n in sweep(n) { observeThroughExistential(histogram, $0) } }
measure("Histogram.observe +native, exist.", threads: 1) { n in sweep(n) { observeThroughExistential(native, $0) } }
measure("Histogram.observe, 2 threads", threads: 2) { n in sweep(n) { histogram.observe($0) } }

/// The floor one sum cell set: every observation of one histogram on one thread adds to the sum through memory, and
/// a load-add-store of a `Double` waits for the previous one's store (store forwarding plus the add). Histograms now
/// keep two sum cells and alternate; these rows show what one and two cost alone, in the same run.
@inline(never) func addToCell(_ cell: UnsafeMutablePointer<Double>, _ value: Double) { cell.pointee += value }
/// `n` sweep values added to `cells` cells in turn (allocated per call: a pointer is not Sendable).
func addToCells(_ n: Int, cells: Int) {
    let sum = UnsafeMutablePointer<Double>.allocate(capacity: cells)
    sum.initialize(repeating: 0, count: cells)
    defer { sum.deallocate() }
    var next = 0
    sweep(n) {
        addToCell(sum + next, $0)
        next = next == cells - 1 ? 0 : next &+ 1
    }
}
measure("Floor: one sum cell, call site", threads: 1) { n in addToCells(n, cells: 1) }
measure("Floor: two sum cells, call site", threads: 1) { n in addToCells(n, cells: 2) }
