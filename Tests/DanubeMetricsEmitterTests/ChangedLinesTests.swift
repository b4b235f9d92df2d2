@testable import DanubeMetricsEmitter
import CDanubeCells
import Foundation
import Testing

/// The changed-line flags that let a flush read only what changed (CDanubeCells.h).
@Suite struct ChangedLinesTests {
    @Test func aTakeReportsTheLinesWrittenOnceAndClearsThem() {
        let first = dm_cells_reserve(4 * DM_LINE_CELLS)
        #expect(first % DM_LINE_CELLS == 0, "reservations start on a line")
        let line = (first & (DM_CHUNK_CELLS - 1)) / DM_LINE_CELLS
        dm_cell_add_u64(first + 1, 1)
        dm_cell_add_u64(first + 2 * DM_LINE_CELLS + 3, 1)
        let taken = dm_cells_take_changed(first, 4 * DM_LINE_CELLS)
        #expect(taken == (1 << UInt64(line)) | (1 << UInt64(line + 2)))
        #expect(dm_cells_take_changed(first, 4 * DM_LINE_CELLS) == 0, "taken flags are cleared")
        // Flags set by another thread are seen too.
        let done = DispatchSemaphore(value: 0)
        Thread {
            dm_histogram_observe(first + DM_LINE_CELLS, 0, 2, 1.5)
            done.signal()
        }.start()
        done.wait()
        #expect(dm_cells_take_changed(first, 4 * DM_LINE_CELLS) == 1 << UInt64(line + 1))
    }

    /// Writers race a reader that reads a cell only when its flag was taken: once writers stop, one more take and
    /// read must find the exact total, i.e. no update was ever left behind a cleared flag.
    @Test func noUpdateHidesBehindAFlagTheReaderCleared() {
        let cell = dm_cells_reserve(1)
        let writers = 4, increments = 200_000
        let group = DispatchGroup()
        for _ in 0..<writers {
            group.enter()
            Thread {
                for _ in 0..<increments { dm_cell_add_u64(cell, 1) }
                group.leave()
            }.start()
        }
        var seen: UInt64 = 0
        var reads = 0
        func readIfFlagged() {
            if dm_cells_take_changed(cell, 1) != 0 {
                dm_cells_sum_u64(cell, 1, &seen)
                reads += 1
            }
        }
        while group.wait(timeout: .now()) == .timedOut { readIfFlagged() }
        readIfFlagged()
        #expect(seen == UInt64(writers * increments), "after \(reads) reads")
        #expect(dm_cells_take_changed(cell, 1) == 0)
    }

    @Test func twoRegistriesNeverShareALine() throws {
        let a = SeriesRegistry(limits: .init()), b = SeriesRegistry(limits: .init())
        let first = try a.register(kind: .counter, name: "a_total", help: "", labels: [], bounds: [])
        let second = try b.register(kind: .counter, name: "b_total", help: "", labels: [], bounds: [])
        #expect(first.firstCell / DM_LINE_CELLS != second.firstCell / DM_LINE_CELLS)
        let spans = a.cellSpans()
        #expect(spans.count == 1 && spans[0].first == first.firstCell && spans[0].count == CellSpan.reservation)
    }

    /// Flags cover 16 cells, but what is pending is counted in series: one changed counter of 40 is one.
    @Test func undeliveredCountsSeriesNotFlaggedLines() throws {
        var configuration = EmitterConfiguration(socketPath: "/tmp/dma-nobody-\(getpid())-lines.sock", sourceName: "t")
        configuration.reportsProcessMetrics = false
        configuration.sendsSpans = false // spans are process-wide: left to the tests that hold TracingExclusive
        let emitter = Emitter(configuration: configuration)
        defer { emitter.shutdown(timeout: .zero) }
        let counters = try (0..<40).map { try emitter.counter("lines_total", labels: [("n", "\($0)")]) }
        let gauges = try (0..<5).map { try emitter.gauge("lines_gauge", labels: [("n", "\($0)")]) }
        emitter.flush()
        #expect(emitter.stats.undeliveredSeries == 5, "gauges not yet sent start as pending: \(emitter.stats)")
        counters[17].increment()
        counters[17].increment(by: 0)
        counters[18].increment(by: 0) // flags its line, changes nothing
        emitter.flush()
        #expect(emitter.stats.undeliveredSeries == 6, "\(emitter.stats)")
        gauges[0].set(0)
        emitter.flush()
        #expect(emitter.stats.undeliveredSeries == 6)
    }
}
