import CDanubeCells

/// What the flusher must look at: the series whose values may differ from what it sent, found from the cells'
/// changed-line flags (CDanubeCells.h) instead of by reading every cell of every thread, so a flush costs what
/// changed, not how many series exist. The Rust crate's `ChangeTracker` does the same.
struct ChangeTracker {
    /// A series with cells: where they start and how many hold counts (a histogram's sum cell excluded: an
    /// observation always changes a count too).
    private struct CellSeries {
        var index: Int
        var first: UInt32
        var counts: Int
    }

    /// Series that may differ from `sent`: flagged and found changed, new, or not examined since a reconnect.
    var pending = SeriesSet()
    /// Series whose `sent` differs from `acknowledged`.
    var inFlight = SeriesSet()
    /// Series with cells in registration order, which is also the order of their first cells.
    private var cellSeries: [CellSeries] = []
    /// Beside `cellSeries`: the sum of each one's sent counts, compared without following a pointer per series.
    private var sentTotals: [UInt64] = []
    /// Per series index: its position in `cellSeries` (nil for a gauge).
    private var slots: [Int?] = []
    private var gauges: [(index: Int, word: UnsafeMutablePointer<UInt64>)] = []
    /// For each line from `firstLine`: the position in `cellSeries` of the first series starting there or later.
    private var lineFirstSeries: [Int32] = []
    private var firstLine: UInt32 = 0
    private var scratch = [UInt64](repeating: 0, count: Int(DM_CHUNK_CELLS))

    var undelivered: Int { pending.unionCount(with: inFlight) }

    /// Starts tracking a series new to the flusher (registration order). It is examined once: a flush may have
    /// taken its flag before the flusher knew it.
    mutating func track(_ series: RegisteredSeries, index: Int) {
        if let word = series.gaugeWord {
            gauges.append((index, word))
            slots.append(nil)
        } else {
            let line = series.firstCell / DM_LINE_CELLS
            if cellSeries.isEmpty { firstLine = line }
            while firstLine + UInt32(lineFirstSeries.count) <= line { lineFirstSeries.append(Int32(cellSeries.count)) }
            slots.append(cellSeries.count)
            let counts = series.countCells
            cellSeries.append(CellSeries(index: index, first: series.firstCell, counts: counts))
            sentTotals.append(0)
        }
        pending.insert(index)
    }

    /// Records what was sent for a series with cells.
    mutating func setSent(_ index: Int, _ cells: [UInt64]) {
        if let slot = slots[index] { sentTotals[slot] = cells.reduce(0, &+) }
    }

    /// Adds to `pending` the series whose counts differ from what was sent (for every line of `spans` flagged
    /// since the last call) and the gauges whose word differs from `sentGauge`; `skip` names refused series.
    mutating func collect(spans: [CellSpan], sentGauge: (Int) -> UInt64?, skip: (Int) -> Bool) {
        var chunk: UInt32?
        var flagged: UInt64 = 0
        for span in spans {
            let spanChunk = span.first >> DM_CHUNK_SHIFT
            if let current = chunk, current != spanChunk {
                compareChunk(current, flagged: flagged, skip: skip)
                flagged = 0
            }
            chunk = spanChunk
            flagged |= dm_cells_take_changed(span.first, span.count)
        }
        if let chunk { compareChunk(chunk, flagged: flagged, skip: skip) }
        for gauge in gauges where !skip(gauge.index) && sentGauge(gauge.index) != dm_shared_load(gauge.word) {
            pending.insert(gauge.index)
        }
    }

    /// The index of the series whose first cell is `cell`, if this emitter has one.
    func series(startingAt cell: UInt32) -> Int? {
        var i = firstSeries(onOrAfter: cell / DM_LINE_CELLS)
        while i < cellSeries.count, cellSeries[i].first <= cell {
            if cellSeries[i].first == cell { return cellSeries[i].index }
            i += 1
        }
        return nil
    }

    /// Position in `cellSeries` of the first series starting on line `line` or later.
    private func firstSeries(onOrAfter line: UInt32) -> Int {
        guard line >= firstLine else { return 0 }
        let position = Int(line - firstLine)
        return position < lineFirstSeries.count ? Int(lineFirstSeries[position]) : cellSeries.count
    }

    /// Compares the series starting on the `flagged` lines of `chunk` with what was sent, summing their cells
    /// over the threads in one pass per thread (a histogram's later lines are summed too).
    private mutating func compareChunk(_ chunk: UInt32, flagged: UInt64, skip: (Int) -> Bool) {
        guard flagged != 0 else { return }
        let base = chunk << DM_CHUNK_SHIFT
        var summed = flagged
        var ranges: [Range<Int>] = []
        var lines = flagged
        while lines != 0 {
            let line = base / DM_LINE_CELLS + UInt32(lines.trailingZeroBitCount)
            lines &= lines - 1
            let start = firstSeries(onOrAfter: line)
            var stop = start
            while stop < cellSeries.count, cellSeries[stop].first < (line + 1) * DM_LINE_CELLS { stop += 1 }
            guard stop > start else { continue }
            ranges.append(start..<stop)
            let past = cellSeries[stop - 1].first - base + UInt32(cellSeries[stop - 1].counts) // after the last count
            for l in (line - base / DM_LINE_CELLS)...((past - 1) / DM_LINE_CELLS) { summed |= 1 << UInt64(l) }
        }
        let cellSeries = self.cellSeries, sentTotals = self.sentTotals
        var changed: [Int] = []
        scratch.withUnsafeMutableBufferPointer { values in
            dm_cells_sum_lines(chunk, summed, values.baseAddress!)
            for i in ranges.joined() {
                let series = cellSeries[i], offset = Int(series.first - base)
                if values[offset..<offset + series.counts].reduce(0, &+) != sentTotals[i] { changed.append(series.index) }
            }
        }
        for index in changed where !skip(index) { pending.insert(index) }
    }
}
