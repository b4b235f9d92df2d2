@testable import DanubeMetricsEmitter
import CDanubeCells
import Foundation
import Testing

@Suite struct RegistrationTests {
    /// An emitter pointed at a socket nobody listens on: registration and recording work without an agent.
    private func offlineEmitter() -> Emitter {
        var configuration = EmitterConfiguration(socketPath: "/tmp/dma-nobody-\(getpid())-\(UUID().uuidString.prefix(6)).sock", sourceName: "t")
        configuration.flushInterval = .milliseconds(20)
        configuration.reportsProcessMetrics = false
        configuration.sendsSpans = false // spans are process-wide: left to the tests that hold TracingExclusive
        return Emitter(configuration: configuration)
    }

    /// `top -H` and profilers show the flusher by name.
    @Test func theFlusherThreadIsNamedAtTheOSLevel() throws {
        let emitter = offlineEmitter()
        defer { emitter.shutdown(timeout: .zero) }
        emitter.flush()
        let names = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").compactMap {
            try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8)
        }
        #expect(names.contains("danube-flusher\n"), "\(names)")
    }

    @Test func sameNameAndLabelsResolveToTheSameHandle() throws {
        let emitter = offlineEmitter()
        defer { emitter.shutdown(timeout: .zero) }
        let a = try emitter.counter("c_total", labels: [("x", "1"), ("y", "2")])
        let b = try emitter.counter("c_total", labels: [("y", "2"), ("x", "1")])
        let c = try emitter.counter("c_total", labels: [("x", "2"), ("y", "2")])
        #expect(a == b)
        #expect(a != c)
    }

    @Test func badNamesAndConflictsAreClearErrors() throws {
        let emitter = offlineEmitter()
        defer { emitter.shutdown(timeout: .zero) }
        _ = try emitter.counter("requests_total")
        _ = try emitter.histogram("latency_ms", buckets: [1, 2])
        /// The code `body` fails with (nil when it does not fail).
        func code(_ body: () throws -> Void) -> EmitterError.Code? {
            do { try body() } catch { return (error as? EmitterError)?.code }
            return nil
        }
        #expect(code { _ = try emitter.counter("bad-name") } == .invalidSeries)
        #expect(code { _ = try emitter.counter("ok_total", labels: [("__name__", "x")]) } == .invalidSeries)
        #expect(code { _ = try emitter.gauge("requests_total") } == .conflictingRegistration)
        #expect(code { _ = try emitter.histogram("latency_ms", buckets: [1, 3]) } == .conflictingRegistration)
        #expect(code { _ = try emitter.histogram("latency_ms", buckets: [1, 2], native: NativeHistogramSpec(schema: 3, zeroThreshold: 1, maxBuckets: 8)) }
                == .conflictingRegistration)
        #expect(code { _ = try emitter.histogram("other_ms", buckets: [2, 1]) } == .invalidSeries)
        #expect(code { _ = try emitter.histogram("wide_ms", buckets: [1], native: NativeHistogramSpec(schema: 9, zeroThreshold: 1, maxBuckets: 8)) }
                == .invalidSeries)
        #expect(code { _ = try emitter.counter("long_total", labels: [("l", String(repeating: "v", count: 300))]) } == .tooLarge)
        #expect(code { _ = try emitter.counter("requests_total") } == nil)
    }

    @Test func cellsSumAcrossThreadsAndSurviveThreadExit() throws {
        let emitter = offlineEmitter()
        defer { emitter.shutdown(timeout: .zero) }
        let counter = try emitter.counter("cells_total")
        let histogram = try emitter.histogram("cells_ms", buckets: [1, 10])
        let group = DispatchGroup()
        for _ in 0..<6 {
            group.enter()
            Thread {
                for i in 0..<10_000 {
                    counter.increment()
                    histogram.observe(Double(i % 20))
                }
                group.leave()
            }.start()
        }
        group.wait()
        var total: UInt64 = 0
        dm_cells_sum_u64(counter.cell, 1, &total)
        #expect(total == 60_000)
        var buckets = [UInt64](repeating: 0, count: 3)
        dm_cells_sum_u64(histogram.firstCell, 3, &buckets)
        // i % 20 in 0...19: 0 and 1 go to le=1; 2...10 to le=10; 11...19 to +Inf.
        let expected: [UInt64] = [6_000, 27_000, 27_000]
        #expect(buckets == expected)
        let sum = dm_cells_sum_f64(histogram.firstCell + 3, DM_HISTOGRAM_SUM_CELLS)
        let expectedSum: Double = 6 * 500 * 190
        #expect(sum == expectedSum)
    }

    /// Observations of one bucket alternate between a histogram's two sum cells: the recorded sum holds both.
    @Test(arguments: [false, true])
    func everyObservationReachesTheSum(native: Bool) throws {
        let emitter = offlineEmitter()
        defer { emitter.shutdown(timeout: .zero) }
        let spec = native ? NativeHistogramSpec(schema: 3, zeroThreshold: 0x1p-5, maxBuckets: 184) : nil
        let histogram = try emitter.histogram("sum_cells_ms", buckets: [1, 10], native: spec)
        for _ in 0..<1_001 { histogram.observe(0.5) }
        let recorded = try #require(emitter.recordedTotals().first { $0.name == "sum_cells_ms" })
        #expect(recorded.count == 1_001)
        #expect(recorded.sum == 500.5)
    }

    /// Values off the fast path (negative, -0, infinite, NaN) land where the fast path's would: NaN nowhere, an
    /// infinity in its bucket but not in the sum, the others in their bucket and the sum.
    @Test(arguments: [false, true])
    func valuesOffTheFastPathCountAsTheirBucketsSay(native: Bool) throws {
        let emitter = offlineEmitter()
        defer { emitter.shutdown(timeout: .zero) }
        let spec = native ? NativeHistogramSpec(schema: 3, zeroThreshold: 0x1p-5, maxBuckets: 184) : nil
        let histogram = try emitter.histogram("off_path_ms", buckets: [-1, 0, 10], native: spec)
        for value in [-2, -1, -0.0, 0, 0.5, 3, 20, .infinity, -.infinity, .nan, -.nan] { histogram.observe(value) }
        let recorded = try #require(emitter.recordedTotals().first { $0.name == "off_path_ms" })
        // le=-1: -2, -1, -Inf; le=0: -0, 0; le=10: 0.5, 3; +Inf: 20, +Inf.
        #expect(recorded.buckets == [3, 2, 2, 2])
        #expect(recorded.sum == 20.5)
    }

    @Test func slabsOfExitedThreadsAreReused() throws {
        let emitter = offlineEmitter()
        defer { emitter.shutdown(timeout: .zero) }
        let counter = try emitter.counter("reuse_total")
        counter.increment() // this thread has a slab
        let before = dm_slab_count()
        for _ in 0..<50 {
            let done = DispatchSemaphore(value: 0)
            Thread {
                counter.increment()
                done.signal()
            }.start()
            done.wait()
            Thread.sleep(forTimeInterval: 0.001)
        }
        // One thread at a time: each new thread adopts the slab the previous one left, give or take threads
        // other tests run concurrently.
        #expect(dm_slab_count() - before < 20)
        var total: UInt64 = 0
        dm_cells_sum_u64(counter.cell, 1, &total)
        #expect(total == 51)
    }

    @Test func withoutAnAgentNothingIsDroppedAndStatsSaySo() throws {
        let emitter = offlineEmitter()
        let counter = try emitter.counter("offline_total")
        counter.increment(by: 5)
        emitter.flush()
        emitter.flush()
        let stats = emitter.shutdown(timeout: .milliseconds(50))
        #expect(!stats.connected)
        #expect(stats.connects == 0)
        #expect(stats.connectFailures >= 1)
        #expect(stats.flushesWithoutAgent >= 1)
        #expect(stats.undeliveredSeries == 1)
        #expect(stats.lastError?.contains("connect") == true)
    }

    @Test func bucketHelpers() {
        #expect(Buckets.exponential(start: 1, factor: 2, count: 4) == [1, 2, 4, 8])
        #expect(Buckets.linear(start: 0, width: 5, count: 3) == [0, 5, 10])
    }
}
