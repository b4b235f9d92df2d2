import CAllocationCounter
@testable import DanubeMetricsAgent
import DanubeMetricsCatalog
import DanubeMetricsEmitter
import DanubeMetricsWire
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import Testing

/// Allocation budgets that fail when they regress, as swift-nio's allocation-counter tests do: the process's
/// mallocs are counted (`CAllocationCounter` interposes them), and each test names the most its operation may
/// make. The measured costs and their benchmarks are in docs/BENCHMARKS.md.
@Suite(.serialized, .enabled(if: dm_allocations_counted() == 1, "allocations are counted with glibc only"))
struct AllocationBudgetTests {
    /// Allocations `body` makes on the calling thread. With DANUBE_METRICS_TRACE_ALLOCATIONS=1 each one prints a
    /// backtrace to stderr (`addr2line -e <test binary> <offset>` names the line), to find one that broke a budget.
    static func threadAllocations(_ body: () throws -> Void) rethrows -> UInt64 {
        let tracing = ProcessInfo.processInfo.environment["DANUBE_METRICS_TRACE_ALLOCATIONS"] == "1"
        let before = dm_allocations_thread()
        if tracing { dm_allocations_trace(1) }
        defer { if tracing { dm_allocations_trace(0) } }
        try body()
        return dm_allocations_thread() - before
    }

    /// One million updates of each kind on a warm thread (its cells exist): none allocates.
    @Test func emitterUpdatesAllocateNothing() throws {
        var configuration = EmitterConfiguration(socketPath: "/nonexistent/budget.sock", sourceName: "budget")
        configuration.flushInterval = .seconds(3600)
        configuration.reportsProcessMetrics = false
        configuration.sendsSpans = false // spans are process-wide: left to the tests that hold TracingExclusive
        let emitter = Emitter(configuration: configuration)
        defer { emitter.shutdown(timeout: .zero) }
        let counter = try emitter.counter("budget_total", labels: [("topic", "a")])
        let gauge = try emitter.gauge("budget_depth")
        let histogram = try emitter.histogram("budget_latency_ms", buckets: BuiltinCatalog.latencyBuckets,
                                              native: BuiltinCatalog.latencyNative)
        counter.increment()
        gauge.set(1)
        histogram.observe(1)
        let updates = 1_000_000
        let counted = Self.threadAllocations {
            for i in 0..<updates {
                counter.increment()
                gauge.set(Double(i))
                histogram.observe(Double(i & 4_095) * 0.37)
            }
        }
        #expect(counted == 0, "\(updates) counter, gauge and histogram updates allocated \(counted) times")
    }

    /// One DELTAS frame of 100 counter and 20 histogram deltas, read and applied by a source connection (decoding,
    /// checks, the store, the ACK): a small fixed budget, whatever the frame holds.
    @Test func applyingADeltasFrameStaysWithinItsBudget() throws {
        let harness = try SourceHarness()
        var definitions: [SeriesDefinition] = (0..<100).map {
            SeriesDefinition(id: UInt32($0), kind: .counter, name: "budget_sent_total", help: "", labels: [Label("topic", "t\($0)")])
        }
        definitions += (0..<20).map {
            SeriesDefinition(id: UInt32(100 + $0), kind: .histogram, name: "budget_latency_ms", help: "", labels: [Label("topic", "t\($0)")],
                             bounds: BuiltinCatalog.latencyBuckets, native: BuiltinCatalog.latencyNative)
        }
        harness.send(.define(DefineBatch(sequence: 1, definitions: definitions)))
        func frame(_ sequence: UInt64) -> ByteBuffer {
            var batch = DeltaBatch(sequence: sequence, deltas: (0..<100).map { Delta(op: .counterAdd, seriesID: UInt32($0), value: 3) })
            for h in 0..<20 {
                batch.deltas.append(Delta(op: .histogram, seriesID: UInt32(100 + h), bucketStart: batch.buckets.count, bucketCount: 3, sum: 9.5))
                batch.buckets += [BucketDelta(index: 4, count: 2), BucketDelta(index: 21 + 60, count: 1), BucketDelta(index: 21 + 70, count: 1)]
            }
            return ByteBuffer(bytes: FrameEncoder.encode(.deltas(batch)))
        }
        try harness.channel.writeInbound(frame(2)) // warm: the store's change list and the connection's buffers exist
        let record = frame(3)
        let counted = try Self.threadAllocations { try harness.channel.writeInbound(record) }
        harness.drain()
        #expect(harness.acknowledged == 3)
        // Measured 21 in a debug build: the decoded arrays growing (a logarithm of the count), the store's lock
        // and closures, the ACK's buffer. A frame's deltas must never each cost an allocation (they did, 4 each,
        // in debug builds, until the loops went through buffer pointers).
        #expect(counted <= 24, "one DELTAS frame of 120 deltas allocated \(counted) times")
    }

    /// Rendering a store: the budget depends on its families and pieces (up to 16k lines each; several are
    /// rendered in parallel), not on how many series they hold. One family, one piece, so the render runs on
    /// this thread and other suites running meanwhile are not counted: 1,000 or 15,000 counters, 100 or 700
    /// histograms with native buckets.
    @Test(arguments: [(false, 1_000, 15_000, 40), (true, 100, 700, 130)])
    func renderAllocationsDoNotGrowWithTheSeriesCount(histograms: Bool, small: Int, large: Int, budget: UInt64) throws {
        func renderAllocations(series: Int) -> UInt64 {
            let store = AggregationStore(gaugeGrace: .seconds(15))
            Self.fill(store, histograms: histograms, series: series)
            var writer = ExpositionWriter(format: .prometheusText, capacity: 1 << 22)
            writer.write(MetricsSnapshot(store: store, exemplars: writer.format == .openMetrics)) // warm: new series sorted
            var again = ExpositionWriter(format: .prometheusText, capacity: 1 << 22)
            return Self.threadAllocations { again.write(MetricsSnapshot(store: store, exemplars: again.format == .openMetrics)) }
        }
        let few = renderAllocations(series: small)
        let many = renderAllocations(series: large)
        #expect(many == few, "\(small) series: \(few) allocations, \(large) series: \(many)")
        // Measured in a debug build: 27 for counters, 111 for histograms (a family's bucket labels are formatted
        // once per render); about 8 per series until the loops went through buffer pointers.
        #expect(few <= budget, "a render of one family allocated \(few) times")
    }

    /// One family of `series` series, all non-zero: counters, or histograms with the catalog's latency buckets.
    static func fill(_ store: AggregationStore, histograms: Bool, series: Int) {
        var bindings: [SeriesBinding?] = []
        var batch = DeltaBatch(sequence: 1)
        for i in 0..<series {
            let definition = SeriesDefinition(
                id: UInt32(i), kind: histograms ? .histogram : .counter, name: histograms ? "budget_latency_ms" : "budget_sent_total",
                help: "Budget.", labels: [Label("partition", "\(i % 8)"), Label("topic", "topic-\(i)")],
                bounds: histograms ? BuiltinCatalog.latencyBuckets : [], native: histograms ? BuiltinCatalog.latencyNative : nil)
            bindings.append(try? store.define(definition).get())
            if histograms {
                batch.deltas.append(Delta(op: .histogram, seriesID: definition.id, bucketStart: batch.buckets.count, bucketCount: 2, sum: 1.5))
                batch.buckets += [BucketDelta(index: 3, count: 1), BucketDelta(index: 21 + 40, count: 1)]
            } else {
                batch.deltas.append(Delta(op: .counterAdd, seriesID: definition.id, value: UInt64(i)))
            }
        }
        store.sourceConnected(1)
        _ = store.claim(instance: 1, connection: 1, now: 0)
        store.apply(batch, bindings: bindings, from: 1, instance: 1, now: 0)
    }
}

/// A source connection on an embedded channel, past HELLO.
final class SourceHarness {
    let channel = EmbeddedChannel()
    private(set) var acknowledged: UInt64 = 0

    init() throws {
        let store = AggregationStore(gaugeGrace: .seconds(15))
        let logger = Logger(label: "budget", factory: { _ in SwiftLogNoOpLogHandler() })
        let gate = SeriesGate(catalog: BuiltinCatalog.catalog, mode: .permissive, uncataloguedFamilyLimit: 1_000, store: store, logger: logger)
        try channel.pipeline.syncOperations.addHandler(SourceHandler(
            id: 1, store: store, gate: gate, stats: AgentStats(startTime: 0), limits: .default,
            rates: SourceRates(framesPerSecond: 0, definitionBytes: 1 << 20), warnings: WarningLimiter(), checkpointer: nil,
            peer: PeerCredentials(), logger: logger))
        try channel.connect(to: SocketAddress(unixDomainSocketPath: "/budget")).wait()
        send(.hello(Hello(sourceName: "budget", pid: 1, processStartMillis: 1, instanceID: 9, firstSequence: 1)))
    }

    func send(_ frame: Frame) {
        _ = try? channel.writeInbound(ByteBuffer(bytes: FrameEncoder.encode(frame)))
        drain()
    }

    /// Reads what the handler answered, keeping the highest ACK.
    func drain() {
        while let buffer = try? channel.readOutbound(as: ByteBuffer.self) {
            for frame in (try? FrameDecoder().decodeFrames(in: Array(buffer.readableBytesView))) ?? [] {
                if case .ack(let sequence) = frame { acknowledged = max(acknowledged, sequence) }
            }
        }
    }
}
