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

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

pub(crate) const CHUNK_SHIFT: u32 = 10;
pub(crate) const CHUNK_CELLS: u32 = 1 << CHUNK_SHIFT;
pub(crate) const MAX_CHUNKS: usize = 4096;
pub(crate) const MAX_CELLS: u64 = CHUNK_CELLS as u64 * MAX_CHUNKS as u64;

pub(crate) struct Slab {
    chunks: [AtomicPtr<AtomicU64>; MAX_CHUNKS],
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

thread_local! {
    /// The calling thread's slab. Const-initialised and without a destructor, so reading it is one TLS load.
    static SLAB: Cell<*const Slab> = const { Cell::new(ptr::null()) };
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
        let _ = SLAB.try_with(|s| s.set(ptr::null()));
        // SAFETY: slabs are leaked boxes, valid for the rest of the process.
        let slab: &'static Slab = unsafe { &*slab };
        lock_pool().free.push(slab);
    }
}

fn lock_pool() -> std::sync::MutexGuard<'static, Pool> {
    // The pool's data stays consistent even if a holder panicked (every update is a single push or pop).
    POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The calling thread's slab, registering the thread on its first update.
#[inline(always)]
fn thread_slab() -> &'static Slab {
    let slab = SLAB.with(Cell::get);
    if slab.is_null() {
        return thread_slab_slow();
    }
    // SAFETY: non-null values of SLAB come from `thread_slab_slow`: leaked, never freed.
    unsafe { &*slab }
}

#[cold]
#[inline(never)]
fn thread_slab_slow() -> &'static Slab {
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

#[cold]
#[inline(never)]
fn chunk_slow(slab: &Slab, index: usize) -> *mut AtomicU64 {
    let chunk: &'static mut [AtomicU64] =
        Box::leak((0..CHUNK_CELLS).map(|_| AtomicU64::new(0)).collect::<Vec<_>>().into_boxed_slice());
    let pointer = chunk.as_mut_ptr();
    // Release: readers that see the pointer see the zeroed cells.
    slab.chunks[index].store(pointer, Ordering::Release);
    pointer
}

/// The calling thread's cell `index`.
#[inline(always)]
fn cell(index: u32) -> &'static AtomicU64 {
    let slab = thread_slab();
    let chunk_index = (index >> CHUNK_SHIFT) as usize;
    let mut chunk = slab.chunks[chunk_index].load(Ordering::Relaxed);
    if chunk.is_null() {
        chunk = chunk_slow(slab, chunk_index);
    }
    // SAFETY: the chunk holds CHUNK_CELLS cells and the offset is below that; chunks are never freed.
    unsafe { &*chunk.add((index & (CHUNK_CELLS - 1)) as usize) }
}

/// Adds `amount` to the calling thread's cell `index`: single writer, so load + store, no read-modify-write.
#[inline(always)]
pub(crate) fn add(index: u32, amount: u64) {
    let c = cell(index);
    c.store(c.load(Ordering::Relaxed).wrapping_add(amount), Ordering::Relaxed);
}

/// One histogram observation: bucket cell `first + bucket` gains 1, the sum cell `first + sum_offset` (f64 bits)
/// gains `value`. A histogram's cells share one chunk, so this is one TLS and one chunk lookup.
#[inline(always)]
pub(crate) fn observe(first: u32, bucket: u32, sum_offset: u32, value: f64) {
    let base: *const AtomicU64 = cell(first);
    // SAFETY: `reserve` keeps all cells of one series (buckets and sum) inside the chunk of `first`.
    let (count, sum) = unsafe { (&*base.add(bucket as usize), &*base.add(sum_offset as usize)) };
    count.store(count.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    let total = f64::from_bits(sum.load(Ordering::Relaxed)) + value;
    sum.store(total.to_bits(), Ordering::Relaxed);
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

fn for_each_chunk(first: u32, mut visit: impl FnMut(*const AtomicU64)) {
    let index = (first >> CHUNK_SHIFT) as usize;
    let mut slab = ALL_SLABS.load(Ordering::Acquire);
    while !slab.is_null() {
        // SAFETY: published slabs are leaked and never freed; Acquire above pairs with the publishing store.
        let s = unsafe { &*slab };
        let chunk = s.chunks[index].load(Ordering::Acquire);
        if !chunk.is_null() {
            visit(chunk);
        }
        slab = s.next_all as *mut Slab;
    }
}

/// Sums cells `first..first + out.len()` over every slab, live or pooled, into `out`.
pub(crate) fn sum_u64(first: u32, out: &mut [u64]) {
    out.iter_mut().for_each(|v| *v = 0);
    let offset = (first & (CHUNK_CELLS - 1)) as usize;
    for_each_chunk(first, |chunk| {
        for (i, total) in out.iter_mut().enumerate() {
            // SAFETY: the series' cells lie inside this chunk (see `reserve`).
            let value = unsafe { &*chunk.add(offset + i) }.load(Ordering::Relaxed);
            *total = total.wrapping_add(value);
        }
    });
}

/// Sums one cell holding f64 bits over every slab.
pub(crate) fn sum_f64(cell_index: u32) -> f64 {
    let offset = (cell_index & (CHUNK_CELLS - 1)) as usize;
    let mut total = 0.0;
    for_each_chunk(cell_index, |chunk| {
        // SAFETY: as in `sum_u64`.
        total += f64::from_bits(unsafe { &*chunk.add(offset) }.load(Ordering::Relaxed));
    });
    total
}

/// Slabs ever created: the peak number of threads that recorded at once, plus those lost at teardown.
pub fn slab_count() -> u32 {
    SLAB_COUNT.load(Ordering::Relaxed)
}
