// Per-thread cumulative cells for the emitter's hot path.
//
// Written in C because a C `_Thread_local` read through a `static inline` function is the cheapest thread-local
// access on Linux (no call, no lock, one TLS-relative load) and C11 atomics give exact control over ordering.
//
// Model: every metric update lands in a *cell* (a uint64_t) that belongs to the calling thread's slab. Each cell
// has exactly one writer (its thread), so an update is a relaxed load plus a relaxed store: no read-modify-write,
// no lock prefix. Cells are cumulative and never reset; a reader sums a cell across all slabs and computes
// deltas against what it saw last, so no update can be lost between a read and a reset.
//
// Slabs hold a fixed table of chunk pointers; a chunk (DM_CHUNK_CELLS cells) is allocated the first time its
// owning thread touches it and never moves, so a writer never races a reallocation. A thread that exits returns
// its slab to a pool; the next new thread adopts it and keeps adding to the same cumulative values, so nothing
// recorded by an exited thread is lost and memory stays bounded by the peak number of live threads.
//
// Changed lines: a chunk starts with a 64-byte header of one flag byte per *line* (DM_LINE_CELLS cells). Every
// update stores 1 into its line's flag after its cell (a plain byte store with release order: no load, no
// read-modify-write, on a cache line the writing thread already owns), and the flusher takes the flags with an
// exchange, so a flush reads only lines that changed instead of every cell of every slab. An update whose flag
// store lands after the flusher's exchange leaves the flag set for the next flush, so no update is missed.
#ifndef C_DANUBE_CELLS_H
#define C_DANUBE_CELLS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "dm_tls.h"

#define DM_CHUNK_SHIFT 10u
#define DM_CHUNK_CELLS (1u << DM_CHUNK_SHIFT)
#define DM_MAX_CHUNKS 4096u
#define DM_MAX_CELLS (DM_CHUNK_CELLS * DM_MAX_CHUNKS)
#define DM_CELL_NONE UINT32_MAX
#define DM_LINE_SHIFT 4u
#define DM_LINE_CELLS (1u << DM_LINE_SHIFT)
#define DM_CHUNK_LINES (DM_CHUNK_CELLS >> DM_LINE_SHIFT)
/// Cells (uint64_t) before a chunk's first cell that hold its DM_CHUNK_LINES flag bytes.
#define DM_CHUNK_HEADER_CELLS (DM_CHUNK_LINES / 8u)

typedef struct dm_slab {
    _Atomic(_Atomic uint64_t *) chunks[DM_MAX_CHUNKS];
    struct dm_slab *next_all;  // immutable once published
    struct dm_slab *next_free; // guarded by the registry lock
} dm_slab;

/// The calling thread's slab; `dm_unregistered_slab` (no chunks, never written) until its first update, so the
/// hot path tests one pointer (the chunk's) instead of two.
extern DM_HOT_THREAD_LOCAL dm_slab *dm_tls_slab;
extern dm_slab dm_unregistered_slab;

/// Chunk `chunk` of the calling thread's slab: registers the thread (adopting a pooled slab if one is free) and
/// allocates the chunk as needed. Called once per thread and chunk. `preserve_all`: the callee saves every
/// register it uses, so an inlined update may keep its values in caller-saved registers across this (cold) call
/// instead of in callee-saved ones, which it would push and pop on every update.
__attribute__((preserve_all, cold)) _Atomic uint64_t *dm_thread_chunk_slow(uint32_t chunk);

/// Reserves `count` consecutive cells that all live in one chunk and start on a line boundary (so a registry
/// that sub-allocates from its reservations owns whole lines). Returns DM_CELL_NONE when exhausted or when
/// `count` exceeds DM_CHUNK_CELLS. Cells are never released: series handles live as long as the process.
uint32_t dm_cells_reserve(uint32_t count);

/// Clears the changed-line flags of cells [first, first+count) (inside one chunk) in every slab and returns the
/// lines that were flagged as a mask: bit i is line i of that chunk. Cells read after this call see at least
/// every update whose flag it took.
uint64_t dm_cells_take_changed(uint32_t first, uint32_t count);

/// Sums cells [first, first+count) over every slab (live or pooled) into `out` as unsigned integers.
void dm_cells_sum_u64(uint32_t first, uint32_t count, uint64_t *out);
/// Sums the lines of chunk `chunk` named by `lines` (bit i: line i) over every slab into `out` (DM_CHUNK_CELLS
/// entries, indexed by a cell's offset in the chunk; entries of other lines are left as they are). One pass per
/// slab over the flagged lines only, so the loads of different lines and slabs overlap.
void dm_cells_sum_lines(uint32_t chunk, uint64_t lines, uint64_t *out);
/// Sums cells [first, first+count) that hold IEEE-754 bits over every slab, as one double.
double dm_cells_sum_f64(uint32_t first, uint32_t count);
/// Number of slabs ever created (for stats and tests).
uint32_t dm_slab_count(void);

/// The calling thread's chunk holding `cell` (its first cell, not the header).
static inline _Atomic uint64_t *dm_thread_chunk(uint32_t cell) {
    uint32_t index = cell >> DM_CHUNK_SHIFT;
    _Atomic uint64_t *chunk = atomic_load_explicit(&dm_tls_slab->chunks[index], memory_order_relaxed);
    if (__builtin_expect(chunk == NULL, 0)) {
        chunk = dm_thread_chunk_slow(index);
    }
    return chunk;
}

/// The flag bytes in front of a chunk's cells.
static inline _Atomic uint8_t *dm_chunk_flags(_Atomic uint64_t *chunk) {
    return (_Atomic uint8_t *)(chunk - DM_CHUNK_HEADER_CELLS);
}

/// Flags the line of `offset` (a cell's offset in `chunk`) as changed; stored after the cell with release order.
static inline void dm_flag_line(_Atomic uint64_t *chunk, uint32_t offset) {
    atomic_store_explicit(dm_chunk_flags(chunk) + (offset >> DM_LINE_SHIFT), (uint8_t)1, memory_order_release);
}

/// Adds `amount` to a cell owned by the calling thread (single writer: load + store, no RMW).
static inline void dm_cell_add_u64(uint32_t cell, uint64_t amount) {
    _Atomic uint64_t *chunk = dm_thread_chunk(cell);
    uint32_t offset = cell & (DM_CHUNK_CELLS - 1u);
    uint64_t v = atomic_load_explicit(chunk + offset, memory_order_relaxed);
    atomic_store_explicit(chunk + offset, v + amount, memory_order_relaxed);
    dm_flag_line(chunk, offset);
}

static inline uint64_t dm_f64_bits(double value) {
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

static inline double dm_bits_f64(uint64_t bits) {
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/// Adds 1 to a cell owned by the calling thread (single writer: load + store).
static inline void dm_bump(_Atomic uint64_t *cell) {
    atomic_store_explicit(cell, atomic_load_explicit(cell, memory_order_relaxed) + 1u, memory_order_relaxed);
}

/// Cells holding a histogram's sum (IEEE-754 bits; the sum is theirs added up). Two, so that observations of one
/// histogram on one thread alternate between them (by the parity of their bucket's count) instead of each waiting
/// for the one before: a floating-point add through memory is store forwarding plus the add, about 3.4 ns on the
/// reference machine and so the floor of a whole observation with one cell. Integer counts need no such split.
#define DM_HISTOGRAM_SUM_CELLS 2u

/// Adds 1 to bucket cell `p + bucket` and `sum` to one of the sum cells from `p + sum_offset`, as the parity of the
/// bucket's count before it picks (see DM_HISTOGRAM_SUM_CELLS).
static inline void dm_histogram_count(_Atomic uint64_t *p, size_t bucket, uint32_t sum_offset, double sum) {
    uint64_t count = atomic_load_explicit(p + bucket, memory_order_relaxed);
    atomic_store_explicit(p + bucket, count + 1u, memory_order_relaxed);
    _Atomic uint64_t *sum_cell = p + sum_offset + (count & 1u);
    uint64_t s = atomic_load_explicit(sum_cell, memory_order_relaxed);
    atomic_store_explicit(sum_cell, dm_f64_bits(dm_bits_f64(s) + sum), memory_order_relaxed);
}

/// Records one observation of a histogram with classic buckets only: bucket cell `first + bucket` gains 1 and the
/// sum (the cells from `first + sum_offset`) gains `sum`: the observation, or 0 for an infinite one (the caller
/// keeps NaN and infinities off this path). All cells of one histogram share a chunk, so this is one TLS and chunk
/// lookup. The line flagged is the one of `first`: the flusher finds a series by its first cell.
/// (Offsets of a word's width where they are indexes: no zero extension of 32-bit values on the hot path.)
static inline void dm_histogram_observe(uint32_t first, size_t bucket, uint32_t sum_offset, double sum) {
    _Atomic uint64_t *chunk = dm_thread_chunk(first);
    uint32_t offset = first & (DM_CHUNK_CELLS - 1u);
    dm_histogram_count(chunk + offset, bucket, sum_offset, sum);
    dm_flag_line(chunk, offset);
}

/// As dm_histogram_observe, and native bucket cell `first + native` gains 1 too.
static inline void dm_histogram_observe_native(uint32_t first, size_t bucket, size_t native, uint32_t sum_offset,
                                               double sum) {
    _Atomic uint64_t *chunk = dm_thread_chunk(first);
    uint32_t offset = first & (DM_CHUNK_CELLS - 1u);
    dm_bump(chunk + offset + native);
    dm_histogram_count(chunk + offset, bucket, sum_offset, sum);
    dm_flag_line(chunk, offset);
}

/// Shared (multi-writer) words, used by gauges: last-writer-wins `set`, CAS-loop `add`.
static inline void dm_shared_store(uint64_t *word, uint64_t bits) {
    atomic_store_explicit((_Atomic uint64_t *)word, bits, memory_order_relaxed);
}

static inline uint64_t dm_shared_load(uint64_t *word) {
    return atomic_load_explicit((_Atomic uint64_t *)word, memory_order_relaxed);
}

static inline void dm_shared_add_f64(uint64_t *word, double delta) {
    _Atomic uint64_t *p = (_Atomic uint64_t *)word;
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old, dm_f64_bits(dm_bits_f64(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

/// Names the calling thread at the OS level (at most 15 bytes are kept).
void dm_set_thread_name(const char *name);

#include "dm_spans.h"

#endif
