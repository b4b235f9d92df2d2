//! Per-thread cumulative cells: the hot path. The same model as the Swift emitter's `CDanubeCells`.
//!
//! Every counter increment and histogram observation lands in a *cell* (a `u64`) of the calling thread's slab.
//! A cell has exactly one writer, its thread, so an update is a relaxed load plus a relaxed store: no
//! read-modify-write, no lock prefix, no lock. Cells are cumulative and never reset; the flusher sums a cell over
//! every slab and sends the difference from what it sent last, so no update is lost between a read and a reset.
//!
//! A slab is a fixed table of chunk pointers; a chunk (`CHUNK_CELLS` cells) is allocated the first time its
//! thread touches it and never moves, so a writer never races a reallocation. When a thread exits, its slab goes
//! back to a pool and the next new thread adopts it, adding to the same cumulative values: nothing an exited
//! thread recorded is lost, and memory stays bounded by the peak number of live threads. Slabs are never freed.
//!
//! Changed lines: a chunk starts with one flag byte per *line* (`LINE_CELLS` cells). Every update stores 1 into
//! its line's flag after its cell (a plain byte store with Release order: no load, no read-modify-write), and the
//! flusher takes the flags with a swap, so a flush reads only the lines that changed instead of every cell of
//! every slab. An update whose flag store lands after the flusher's swap leaves the flag set for the next flush,
//! so no update is missed.

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

pub(crate) const CHUNK_SHIFT: u32 = 10;
pub(crate) const CHUNK_CELLS: u32 = 1 << CHUNK_SHIFT;
pub(crate) const MAX_CHUNKS: usize = 4096;
pub(crate) const MAX_CELLS: u64 = CHUNK_CELLS as u64 * MAX_CHUNKS as u64;
pub(crate) const LINE_SHIFT: u32 = 4;
pub(crate) const LINE_CELLS: u32 = 1 << LINE_SHIFT;
pub(crate) const CHUNK_LINES: usize = (CHUNK_CELLS >> LINE_SHIFT) as usize;

/// One thread's cells `[k * CHUNK_CELLS, (k + 1) * CHUNK_CELLS)` and their changed-line flags. Cache-line aligned
/// so the flags (taken by the flusher) share no cache line with cells.
#[repr(C, align(64))]
pub(crate) struct Chunk {
    lines: [AtomicU8; CHUNK_LINES],
    cells: [AtomicU64; CHUNK_CELLS as usize],
}

impl Chunk {
    /// Flags the line of cell `offset`; after the cell's store, with Release order for the flusher's Acquire.
    #[inline(always)]
    fn flag(&self, offset: usize) {
        self.lines[offset >> LINE_SHIFT].store(1, Ordering::Release);
    }
}

pub(crate) struct Slab {
    chunks: [AtomicPtr<Chunk>; MAX_CHUNKS],
    /// The slab created before this one; immutable once the slab is published in `ALL_SLABS`.
    next_all: *const Slab,
}

// SAFETY: a slab is shared between its owning thread (the only writer of its cells) and readers, all through
// atomics; `next_all` is written once before publication and only read afterwards.
unsafe impl Sync for Slab {}
// SAFETY: as above; a slab moves between threads only through the pool, under its mutex.
unsafe impl Send for Slab {}

struct Pool {
    free: Vec<&'static Slab>,
    next_cell: u32,
}

static POOL: Mutex<Pool> = Mutex::new(Pool { free: Vec::new(), next_cell: 0 });
/// Every slab ever created, newest first; prepend-only, read without the lock.
static ALL_SLABS: AtomicPtr<Slab> = AtomicPtr::new(ptr::null_mut());
static SLAB_COUNT: AtomicU32 = AtomicU32::new(0);

/// What `SLAB` holds until the thread's first update (and again once it exits): no chunks, never written, so the
/// hot path tests one pointer (the chunk's) instead of two.
static UNREGISTERED: Slab =
    Slab { chunks: [const { AtomicPtr::new(ptr::null_mut()) }; MAX_CHUNKS], next_all: ptr::null() };

thread_local! {
    /// The calling thread's slab, or `UNREGISTERED`. Const-initialised and without a destructor, so reading it is
    /// one TLS load.
    static SLAB: Cell<*const Slab> = const { Cell::new(&UNREGISTERED) };
    /// Hands the slab back to the pool when the thread exits.
    static RETURN: SlabReturn = const { SlabReturn(Cell::new(ptr::null())) };
}

struct SlabReturn(Cell<*const Slab>);

impl Drop for SlabReturn {
    fn drop(&mut self) {
        let slab = self.0.get();
        if slab.is_null() {
            return;
        }
        let _ = SLAB.try_with(|s| s.set(&UNREGISTERED));
        // SAFETY: slabs are leaked boxes, valid for the rest of the process.
        let slab: &'static Slab = unsafe { &*slab };
        lock_pool().free.push(slab);
    }
}

fn lock_pool() -> std::sync::MutexGuard<'static, Pool> {
    // The pool's data stays consistent even if a holder panicked (every update is a single push or pop).
    POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registers the calling thread: adopts a pooled slab, or makes one.
fn register_thread() -> &'static Slab {
    let mut pool = lock_pool();
    let slab = match pool.free.pop() {
        Some(slab) => slab,
        None => {
            let slab: &'static mut Slab = Box::leak(Box::new(Slab {
                chunks: [const { AtomicPtr::new(ptr::null_mut()) }; MAX_CHUNKS],
                next_all: ALL_SLABS.load(Ordering::Relaxed),
            }));
            ALL_SLABS.store(slab, Ordering::Release);
            SLAB_COUNT.fetch_add(1, Ordering::Relaxed);
            slab
        }
    };
    drop(pool);
    SLAB.with(|s| s.set(slab));
    // During thread teardown RETURN may already be gone: the slab is then not pooled again, but it stays in
    // ALL_SLABS, so what this thread records still counts.
    let _ = RETURN.try_with(|r| r.0.set(slab));
    slab
}

/// A cell's chunk in a slab's table. Cells come from `reserve`, below MAX_CELLS; the mask keeps any other value
/// (a C caller's stray handle) inside the table.
#[inline(always)]
fn chunk_index(index: u32) -> usize {
    (index >> CHUNK_SHIFT) as usize & (MAX_CHUNKS - 1)
}

/// The calling thread's chunk holding cell `index` and the cell's offset in it, or `None` until the thread first
/// touches that chunk ([`make_chunk`]). Updates leave their fast path by a tail call on `None`, so that no value
/// is live across a call there and the fast path saves no registers.
#[inline(always)]
pub(crate) fn thread_chunk_if_made(index: u32) -> Option<(&'static Chunk, usize)> {
    // SAFETY: SLAB holds `UNREGISTERED` or a slab from `register_thread` (leaked, never freed).
    let slab = unsafe { &*SLAB.with(Cell::get) };
    let chunk = slab.chunks[chunk_index(index)].load(Ordering::Relaxed);
    // SAFETY: non-null chunk pointers come from `make_chunk`: leaked, never freed.
    unsafe { chunk.as_ref() }.map(|chunk| (chunk, (index & (CHUNK_CELLS - 1)) as usize))
}

/// Makes the calling thread's chunk holding cell `index`, registering the thread first if it is new. Once per
/// thread and chunk.
#[cold]
#[inline(never)]
pub(crate) fn make_chunk(index: u32) {
    let mut slab = SLAB.with(Cell::get);
    if ptr::eq(slab, &UNREGISTERED) {
        slab = register_thread();
    }
    // SAFETY: as in `thread_chunk_if_made`.
    let slab = unsafe { &*slab };
    let entry = &slab.chunks[chunk_index(index)];
    if !entry.load(Ordering::Relaxed).is_null() {
        return; // an adopted slab's chunk
    }
    let chunk: &'static mut Chunk = Box::leak(Box::new(Chunk {
        lines: [const { AtomicU8::new(0) }; CHUNK_LINES],
        cells: [const { AtomicU64::new(0) }; CHUNK_CELLS as usize],
    }));
    // Release: readers that see the pointer see the zeroed cells.
    entry.store(chunk, Ordering::Release);
}

/// The calling thread's chunk holding cell `index`, made if needed, and the cell's offset in it.
fn thread_chunk(index: u32) -> (&'static Chunk, usize) {
    loop {
        if let Some(found) = thread_chunk_if_made(index) {
            return found;
        }
        make_chunk(index);
    }
}

/// Adds `amount` to the calling thread's cell `index`: single writer, so load + store, no read-modify-write.
#[inline(always)]
pub(crate) fn add(index: u32, amount: u64) {
    let Some((chunk, offset)) = thread_chunk_if_made(index) else { return add_in_new_chunk(index, amount) };
    let c = &chunk.cells[offset];
    c.store(c.load(Ordering::Relaxed).wrapping_add(amount), Ordering::Relaxed);
    chunk.flag(offset);
}

#[cold]
#[inline(never)]
fn add_in_new_chunk(index: u32, amount: u64) {
    make_chunk(index);
    add(index, amount);
}

/// Flags the line of cell `index` as changed without changing a cell: for a counter's `absolute` floor, which
/// lives outside the cells.
#[inline]
pub(crate) fn flag(index: u32) {
    let (chunk, offset) = thread_chunk(index);
    chunk.flag(offset);
}

/// Cells holding a histogram's sum (f64 bits; the sum is theirs added up). Two, so that observations of one
/// histogram on one thread alternate between them (by the parity of their bucket's count) instead of each waiting
/// for the one before: a floating-point add through memory is store forwarding plus the add, about 3.4 ns on the
/// reference machine and so the floor of a whole observation with one cell. Integer counts need no such split.
pub(crate) const HISTOGRAM_SUM_CELLS: u32 = 2;

/// One histogram observation, `offset` being the histogram's first cell in `chunk` (the calling thread's, from
/// [`thread_chunk_if_made`]; a histogram's cells share one chunk): bucket cell `offset + bucket` gains 1, one of the
/// two sum cells from `offset + sum_offset` (f64 bits) gains `sum`: the observation, or 0 for an infinite one (the
/// caller keeps NaN and infinities off this path). The line flagged is the one of the first cell: the flusher
/// finds a series by its first cell.
#[inline(always)]
pub(crate) fn observe(chunk: &Chunk, offset: usize, bucket: u32, sum_offset: u32, sum: f64) {
    // SAFETY: `reserve` keeps all cells of one series (buckets and sums) inside the chunk of its first, so the
    // offsets are below CHUNK_CELLS (unchecked: a bounds check per observation is measurable here).
    let count = unsafe { &*chunk.cells.as_ptr().add(offset + bucket as usize) };
    let before = count.load(Ordering::Relaxed);
    count.store(before.wrapping_add(1), Ordering::Relaxed);
    add_sum(chunk, offset + sum_offset as usize, before, sum);
    chunk.flag(offset);
}

/// As [`observe`], and native bucket cell `first + native` gains 1 too (a histogram recording native buckets).
#[inline(always)]
pub(crate) fn observe_native(chunk: &Chunk, offset: usize, bucket: u32, native: u32, sum_offset: u32, sum: f64) {
    let base = chunk.cells.as_ptr();
    // SAFETY: as in `observe`: the native cell, too, is one of the series' cells inside the chunk.
    let (count, native) = unsafe { (&*base.add(offset + bucket as usize), &*base.add(offset + native as usize)) };
    let before = count.load(Ordering::Relaxed);
    count.store(before.wrapping_add(1), Ordering::Relaxed);
    native.store(native.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    add_sum(chunk, offset + sum_offset as usize, before, sum);
    chunk.flag(offset);
}

/// Adds `sum` to the sum cell at `sum_cell` or the one after it, as the parity of the bucket's count `before` the
/// observation picks (see [`HISTOGRAM_SUM_CELLS`]).
#[inline(always)]
fn add_sum(chunk: &Chunk, sum_cell: usize, before: u64, sum: f64) {
    // SAFETY: both sum cells are the series' own, inside this chunk (see `observe`).
    let cell = unsafe { &*chunk.cells.as_ptr().add(sum_cell + (before & 1) as usize) };
    cell.store((f64::from_bits(cell.load(Ordering::Relaxed)) + sum).to_bits(), Ordering::Relaxed);
}

/// Reserves `count` consecutive cells inside one chunk; None when the process has used every cell.
pub(crate) fn reserve(count: u32) -> Option<u32> {
    if count == 0 || count > CHUNK_CELLS {
        return None;
    }
    let mut pool = lock_pool();
    let mut first = pool.next_cell;
    let room = CHUNK_CELLS - (first & (CHUNK_CELLS - 1));
    if count > room {
        first += room; // one series never spans two chunks
    }
    if u64::from(first) + u64::from(count) > MAX_CELLS {
        return None;
    }
    pool.next_cell = first + count;
    Some(first)
}

/// Calls `visit` with chunk `index` of every slab, live or pooled, that has one.
fn for_each_chunk(index: usize, mut visit: impl FnMut(&Chunk)) {
    let mut slab = ALL_SLABS.load(Ordering::Acquire);
    while !slab.is_null() {
        // SAFETY: published slabs are leaked and never freed; Acquire above pairs with the publishing store.
        let s = unsafe { &*slab };
        let chunk = s.chunks[index].load(Ordering::Acquire);
        if !chunk.is_null() {
            // SAFETY: non-null chunk pointers come from `make_chunk` (leaked); Acquire pairs with its Release.
            visit(unsafe { &*chunk });
        }
        slab = s.next_all as *mut Slab;
    }
}

/// Clears the changed-line flags of chunk `index` in every slab and returns the lines that were flagged (bit i:
/// line i). Cells read after this call see at least every update whose flag it took.
pub(crate) fn take_changed(index: usize) -> u64 {
    let mut changed = 0;
    for_each_chunk(index, |chunk| {
        for (line, flag) in chunk.lines.iter().enumerate() {
            // A plain load first: most lines are clean, and a swap would take their cache line from the writer.
            if flag.load(Ordering::Relaxed) != 0 && flag.swap(0, Ordering::Acquire) != 0 {
                changed |= 1 << line;
            }
        }
    });
    changed
}

/// Sums the `lines` of chunk `index` (bit i: line i) over every slab into `out`, indexed by a cell's offset in
/// the chunk; entries of other lines are left as they are. One pass per slab over those lines only.
pub(crate) fn sum_lines(index: usize, lines: u64, out: &mut [u64; CHUNK_CELLS as usize]) {
    let ranges = || {
        let mut rest = lines;
        std::iter::from_fn(move || {
            (rest != 0).then(|| {
                let first = (rest.trailing_zeros() << LINE_SHIFT) as usize;
                rest &= rest - 1;
                first..first + LINE_CELLS as usize
            })
        })
    };
    ranges().for_each(|range| out[range].fill(0));
    for_each_chunk(index, |chunk| {
        for range in ranges() {
            for (total, cell) in out[range.clone()].iter_mut().zip(&chunk.cells[range]) {
                *total = total.wrapping_add(cell.load(Ordering::Relaxed));
            }
        }
    });
}

/// Sums cells `first..first + out.len()` over every slab, live or pooled, into `out`.
pub(crate) fn sum_u64(first: u32, out: &mut [u64]) {
    out.iter_mut().for_each(|v| *v = 0);
    let offset = (first & (CHUNK_CELLS - 1)) as usize;
    for_each_chunk((first >> CHUNK_SHIFT) as usize, |chunk| {
        // The series' cells lie inside this chunk (see `reserve`).
        for (total, cell) in out.iter_mut().zip(&chunk.cells[offset..]) {
            *total = total.wrapping_add(cell.load(Ordering::Relaxed));
        }
    });
}

/// Sums `count` cells from `first` holding f64 bits over every slab, as one f64.
pub(crate) fn sum_f64(first: u32, count: u32) -> f64 {
    let offset = (first & (CHUNK_CELLS - 1)) as usize;
    let mut total = 0.0;
    for_each_chunk((first >> CHUNK_SHIFT) as usize, |chunk| {
        // The series' cells lie inside this chunk (see `reserve`).
        for cell in &chunk.cells[offset..offset + count as usize] {
            total += f64::from_bits(cell.load(Ordering::Relaxed));
        }
    });
    total
}

/// Slabs ever created: the peak number of threads that recorded at once, plus those lost at teardown.
pub fn slab_count() -> u32 {
    SLAB_COUNT.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn a_take_reports_the_lines_written_once_and_clears_them() {
        let first = reserve(CHUNK_CELLS).expect("a whole chunk"); // alone in its chunk: no other test's flags
        let chunk = (first >> CHUNK_SHIFT) as usize;
        add(first + 1, 1);
        let (chunk_of_first, offset) = thread_chunk(first + 2 * LINE_CELLS + 3);
        observe(chunk_of_first, offset, 0, 2, 1.5);
        assert_eq!(take_changed(chunk), 0b101);
        assert_eq!(take_changed(chunk), 0, "taken flags are cleared");
        std::thread::spawn(move || add(first + 5 * LINE_CELLS, 7)).join().unwrap();
        assert_eq!(take_changed(chunk), 1 << 5, "another thread's flags are seen");
        let mut out = [0; CHUNK_CELLS as usize];
        sum_lines(chunk, 1 << 5 | 1, &mut out);
        assert_eq!((out[1], out[(5 * LINE_CELLS) as usize]), (1, 7));
    }

    /// Writers race a reader that reads a cell only when its flag was taken: once the writers stop, one more
    /// take and read must find the exact total, i.e. no update was left behind a flag the reader cleared.
    #[test]
    fn no_update_hides_behind_a_flag_the_reader_cleared() {
        let cell = reserve(CHUNK_CELLS).expect("a whole chunk");
        let chunk = (cell >> CHUNK_SHIFT) as usize;
        let (writers, increments) = (4, 200_000u64);
        let done = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> =
            (0..writers).map(|_| std::thread::spawn(move || (0..increments).for_each(|_| add(cell, 1)))).collect();
        let reader = {
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut seen = [0u64];
                let mut read = || {
                    if take_changed(chunk) != 0 {
                        sum_u64(cell, &mut seen);
                    }
                };
                while !done.load(Ordering::Acquire) {
                    read();
                }
                read();
                seen[0]
            })
        };
        handles.into_iter().for_each(|h| h.join().unwrap());
        done.store(true, Ordering::Release);
        assert_eq!(reader.join().unwrap(), writers * increments);
    }
}
