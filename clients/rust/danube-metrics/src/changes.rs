//! What the flusher must look at: the series whose values may differ from what it sent, found from the cells'
//! changed-line flags (see `cells`) instead of by reading every cell of every thread, so a flush costs what
//! changed, not how many series exist. The Swift emitter's `ChangeTracker`.

use crate::cells::{self, CHUNK_CELLS, CHUNK_SHIFT, LINE_CELLS, LINE_SHIFT};
use crate::registry::Series;
use crate::series_set::SeriesSet;
use crate::wire::Kind;
use std::sync::atomic::{AtomicU64, Ordering};

/// A series with cells: where they start, how many hold counts (a histogram's sum cell excluded: an
/// observation always changes a count too) and, for a counter, the floor `absolute` raises.
struct CellSeries {
    index: usize,
    first: u32,
    counts: usize,
    floor: Option<&'static AtomicU64>,
}

pub(crate) struct ChangeTracker {
    /// Series that may differ from `sent`: flagged and found changed, new, or not examined since a reconnect.
    pub pending: SeriesSet,
    /// Series whose `sent` differs from `acked`.
    pub in_flight: SeriesSet,
    /// Series with cells in registration order, which is also the order of their first cells.
    cell_series: Vec<CellSeries>,
    /// Beside `cell_series`: the sum of each one's sent counts, compared without following a pointer per series.
    sent_totals: Vec<u64>,
    /// Per series index: its position in `cell_series` (None for a gauge).
    slots: Vec<Option<usize>>,
    gauges: Vec<(usize, &'static AtomicU64)>,
    /// For each line from `first_line`: the position in `cell_series` of the first series starting there or later.
    line_first_series: Vec<u32>,
    first_line: u32,
    scratch: Box<[u64; CHUNK_CELLS as usize]>,
}

impl Default for ChangeTracker {
    fn default() -> Self {
        ChangeTracker {
            pending: SeriesSet::default(),
            in_flight: SeriesSet::default(),
            cell_series: Vec::new(),
            sent_totals: Vec::new(),
            slots: Vec::new(),
            gauges: Vec::new(),
            line_first_series: Vec::new(),
            first_line: 0,
            scratch: Box::new([0; CHUNK_CELLS as usize]),
        }
    }
}

impl ChangeTracker {
    /// Starts tracking a series new to the flusher (registration order). It is examined once: a flush may have
    /// taken its flag before the flusher knew it.
    pub fn track(&mut self, series: &'static Series) {
        let index = series.id as usize;
        debug_assert_eq!(index, self.slots.len());
        if series.kind == Kind::Gauge {
            self.gauges.push((index, series.word));
            self.slots.push(None);
        } else {
            let line = series.first_cell >> LINE_SHIFT;
            if self.cell_series.is_empty() {
                self.first_line = line;
            }
            while self.first_line + self.line_first_series.len() as u32 <= line {
                self.line_first_series.push(self.cell_series.len() as u32);
            }
            self.slots.push(Some(self.cell_series.len()));
            self.cell_series.push(CellSeries {
                index,
                first: series.first_cell,
                counts: series.count_cells(),
                floor: (series.kind == Kind::Counter).then_some(series.word),
            });
            self.sent_totals.push(0);
        }
        self.pending.insert(index);
    }

    /// Records what was sent for a series with cells.
    pub fn set_sent(&mut self, index: usize, cells: &[u64]) {
        if let Some(slot) = self.slots[index] {
            self.sent_totals[slot] = cells.iter().fold(0, |a, &b| a.wrapping_add(b));
        }
    }

    /// Adds to `pending` the series whose counts differ from what was sent (for every line flagged since the
    /// last call) and the gauges whose word differs from `sent_gauge`; `skip` names refused series.
    pub fn collect(&mut self, sent_gauge: impl Fn(usize) -> Option<u64>, skip: impl Fn(usize) -> bool) {
        if let (Some(first), Some(last)) = (self.cell_series.first(), self.cell_series.last()) {
            let (low, high) = ((first.first >> CHUNK_SHIFT) as usize, ((last.first >> CHUNK_SHIFT) as usize));
            for chunk in low..=high {
                let flagged = cells::take_changed(chunk);
                if flagged != 0 {
                    self.compare_chunk(chunk, flagged, &skip);
                }
            }
        }
        for &(index, word) in &self.gauges {
            if !skip(index) && sent_gauge(index) != Some(word.load(Ordering::Relaxed)) {
                self.pending.insert(index);
            }
        }
    }

    /// The index of the series whose first cell is `cell`, if the flusher knows one.
    pub fn series_starting_at(&self, cell: u32) -> Option<usize> {
        self.cell_series[self.first_series(cell >> LINE_SHIFT)..]
            .iter()
            .take_while(|s| s.first <= cell)
            .find(|s| s.first == cell)
            .map(|s| s.index)
    }

    /// Position in `cell_series` of the first series starting on line `line` or later.
    fn first_series(&self, line: u32) -> usize {
        match line.checked_sub(self.first_line) {
            None => 0,
            Some(position) => {
                self.line_first_series.get(position as usize).map_or(self.cell_series.len(), |&i| i as usize)
            }
        }
    }

    /// Compares the series starting on the `flagged` lines of `chunk` with what was sent, summing their cells
    /// over the threads in one pass per thread (a histogram's later lines are summed too).
    fn compare_chunk(&mut self, chunk: usize, flagged: u64, skip: &impl Fn(usize) -> bool) {
        let base = (chunk as u32) << CHUNK_SHIFT;
        let mut summed = flagged;
        let mut ranges = Vec::new();
        let mut lines = flagged;
        while lines != 0 {
            let line = (base >> LINE_SHIFT) + lines.trailing_zeros();
            lines &= lines - 1;
            let start = self.first_series(line);
            let end_cell = (line + 1) << LINE_SHIFT;
            let stop = start + self.cell_series[start..].iter().take_while(|s| s.first < end_cell).count();
            if stop == start {
                continue;
            }
            let last = &self.cell_series[stop - 1];
            let past = last.first - base + last.counts as u32; // the cell after the last count cell
            for l in line - (base >> LINE_SHIFT)..=(past - 1) / LINE_CELLS {
                summed |= 1 << l;
            }
            ranges.push(start..stop);
        }
        cells::sum_lines(chunk, summed, &mut self.scratch);
        for i in ranges.into_iter().flatten() {
            let s = &self.cell_series[i];
            let offset = (s.first - base) as usize;
            let mut total = self.scratch[offset..offset + s.counts].iter().fold(0u64, |a, &b| a.wrapping_add(b));
            if let Some(floor) = s.floor {
                total = total.max(floor.load(Ordering::Relaxed));
            }
            if total != self.sent_totals[i] && !skip(s.index) {
                self.pending.insert(s.index);
            }
        }
    }

    /// Series not yet delivered: pending or in flight.
    pub fn undelivered(&self) -> usize {
        self.pending.union_len(&self.in_flight)
    }
}
