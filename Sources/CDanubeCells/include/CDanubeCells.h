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
#ifndef C_DANUBE_CELLS_H
#define C_DANUBE_CELLS_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define DM_CHUNK_SHIFT 10u
#define DM_CHUNK_CELLS (1u << DM_CHUNK_SHIFT)
#define DM_MAX_CHUNKS 4096u
#define DM_MAX_CELLS (DM_CHUNK_CELLS * DM_MAX_CHUNKS)
#define DM_CELL_NONE UINT32_MAX

typedef struct dm_slab {
    _Atomic(_Atomic uint64_t *) chunks[DM_MAX_CHUNKS];
    struct dm_slab *next_all;  // immutable once published
    struct dm_slab *next_free; // guarded by the registry lock
} dm_slab;

extern _Thread_local dm_slab *dm_tls_slab;

/// Registers the calling thread (adopting a pooled slab if one is free). Called once per thread.
dm_slab *dm_thread_slab_slow(void);
/// Allocates chunk `chunk` of `slab` for its owning thread. Called once per thread and chunk.
_Atomic uint64_t *dm_chunk_slow(dm_slab *slab, uint32_t chunk);

/// Reserves `count` consecutive cells that all live in one chunk. Returns DM_CELL_NONE when exhausted or when
/// `count` exceeds DM_CHUNK_CELLS. Cells are never released: series handles live as long as the process.
uint32_t dm_cells_reserve(uint32_t count);

/// Sums cells [first, first+count) over every slab (live or pooled) into `out` as unsigned integers.
void dm_cells_sum_u64(uint32_t first, uint32_t count, uint64_t *out);
/// Sums one cell that holds IEEE-754 bits over every slab, as a double.
double dm_cells_sum_f64(uint32_t cell);
/// Number of slabs ever created (for stats and tests).
uint32_t dm_slab_count(void);

static inline _Atomic uint64_t *dm_cell_chunk(uint32_t cell) {
    dm_slab *slab = dm_tls_slab;
    if (__builtin_expect(slab == NULL, 0)) {
        slab = dm_thread_slab_slow();
    }
    uint32_t index = cell >> DM_CHUNK_SHIFT;
    _Atomic uint64_t *chunk = atomic_load_explicit(&slab->chunks[index], memory_order_relaxed);
    if (__builtin_expect(chunk == NULL, 0)) {
        chunk = dm_chunk_slow(slab, index);
    }
    return chunk + (cell & (DM_CHUNK_CELLS - 1u));
}

/// Adds `amount` to a cell owned by the calling thread (single writer: load + store, no RMW).
static inline void dm_cell_add_u64(uint32_t cell, uint64_t amount) {
    _Atomic uint64_t *p = dm_cell_chunk(cell);
    uint64_t v = atomic_load_explicit(p, memory_order_relaxed);
    atomic_store_explicit(p, v + amount, memory_order_relaxed);
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

/// Records one histogram observation: bucket cell `first + bucket` gains 1, the sum cell `first + sum_offset`
/// (IEEE-754 bits) gains `value`. All cells of one histogram share a chunk, so this is one TLS and chunk lookup.
static inline void dm_histogram_observe(uint32_t first, uint32_t bucket, uint32_t sum_offset, double value) {
    _Atomic uint64_t *p = dm_cell_chunk(first);
    uint64_t c = atomic_load_explicit(p + bucket, memory_order_relaxed);
    atomic_store_explicit(p + bucket, c + 1u, memory_order_relaxed);
    uint64_t s = atomic_load_explicit(p + sum_offset, memory_order_relaxed);
    atomic_store_explicit(p + sum_offset, dm_f64_bits(dm_bits_f64(s) + value), memory_order_relaxed);
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

#endif
