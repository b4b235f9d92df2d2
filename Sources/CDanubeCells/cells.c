#include "CDanubeCells.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

dm_slab dm_unregistered_slab;
DM_HOT_THREAD_LOCAL dm_slab *dm_tls_slab = &dm_unregistered_slab;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static _Atomic(dm_slab *) all_slabs = NULL; // prepend-only, read without the lock
static dm_slab *free_slabs = NULL;          // guarded by registry_lock
static _Atomic uint32_t slab_count = 0;
static uint32_t next_cell = 0;               // guarded by registry_lock

static void thread_exited(void *value) {
    dm_slab *slab = (dm_slab *)value;
    if (slab == NULL) {
        return;
    }
    dm_tls_slab = &dm_unregistered_slab;
    pthread_mutex_lock(&registry_lock);
    slab->next_free = free_slabs;
    free_slabs = slab;
    pthread_mutex_unlock(&registry_lock);
}

static void make_key(void) {
    if (pthread_key_create(&exit_key, thread_exited) != 0) {
        abort();
    }
}

/// Registers the calling thread (adopting a pooled slab if one is free).
static dm_slab *register_thread(void) {
    pthread_once(&key_once, make_key);
    pthread_mutex_lock(&registry_lock);
    dm_slab *slab = free_slabs;
    if (slab != NULL) {
        free_slabs = slab->next_free;
        slab->next_free = NULL;
    } else {
        slab = calloc(1, sizeof(dm_slab));
        if (slab == NULL) {
            abort();
        }
        slab->next_all = atomic_load_explicit(&all_slabs, memory_order_relaxed);
        atomic_store_explicit(&all_slabs, slab, memory_order_release);
        atomic_fetch_add_explicit(&slab_count, 1u, memory_order_relaxed);
    }
    pthread_mutex_unlock(&registry_lock);
    dm_tls_slab = slab;
    pthread_setspecific(exit_key, slab);
    return slab;
}

_Atomic uint64_t *dm_thread_chunk_slow(uint32_t chunk) {
    if (chunk >= DM_MAX_CHUNKS) {
        abort(); // cells come only from dm_cells_reserve, which never hands out such an index
    }
    dm_slab *slab = dm_tls_slab;
    if (slab == &dm_unregistered_slab) {
        slab = register_thread();
    }
    _Atomic uint64_t *existing = atomic_load_explicit(&slab->chunks[chunk], memory_order_relaxed);
    if (existing != NULL) {
        return existing; // an adopted slab's chunk, or the thread's first update found the slab unregistered
    }
    // The flag header sits in front of the cells; chunks are never freed, so the base pointer is not kept.
    // Cache-line aligned, so the flags share no line with cells (the flusher's exchange never touches a cell's line).
    size_t bytes = (DM_CHUNK_HEADER_CELLS + DM_CHUNK_CELLS) * sizeof(uint64_t);
    void *memory = NULL;
    if (posix_memalign(&memory, 64, bytes) != 0) {
        abort();
    }
    memset(memory, 0, bytes);
    _Atomic uint64_t *block = memory;
    _Atomic uint64_t *cells = block + DM_CHUNK_HEADER_CELLS;
    atomic_store_explicit(&slab->chunks[chunk], cells, memory_order_release);
    return cells;
}

uint32_t dm_cells_reserve(uint32_t count) {
    if (count == 0 || count > DM_CHUNK_CELLS) {
        return DM_CELL_NONE;
    }
    pthread_mutex_lock(&registry_lock);
    uint32_t first = (next_cell + DM_LINE_CELLS - 1u) & ~(DM_LINE_CELLS - 1u);
    uint32_t room = DM_CHUNK_CELLS - (first & (DM_CHUNK_CELLS - 1u));
    if (count > room) {
        first += room; // keep one series inside one chunk
    }
    uint32_t result = DM_CELL_NONE;
    if ((uint64_t)first + count <= DM_MAX_CELLS) {
        result = first;
        next_cell = first + count;
    }
    pthread_mutex_unlock(&registry_lock);
    return result;
}

void dm_cells_sum_u64(uint32_t first, uint32_t count, uint64_t *out) {
    memset(out, 0, sizeof(uint64_t) * count);
    uint32_t index = first >> DM_CHUNK_SHIFT;
    uint32_t offset = first & (DM_CHUNK_CELLS - 1u);
    for (dm_slab *s = atomic_load_explicit(&all_slabs, memory_order_acquire); s != NULL; s = s->next_all) {
        _Atomic uint64_t *chunk = atomic_load_explicit(&s->chunks[index], memory_order_acquire);
        if (chunk == NULL) {
            continue;
        }
        for (uint32_t i = 0; i < count; i++) {
            out[i] += atomic_load_explicit(chunk + offset + i, memory_order_relaxed);
        }
    }
}

uint64_t dm_cells_take_changed(uint32_t first, uint32_t count) {
    if (count == 0) {
        return 0;
    }
    uint32_t index = first >> DM_CHUNK_SHIFT;
    uint32_t offset = first & (DM_CHUNK_CELLS - 1u);
    uint32_t low = offset >> DM_LINE_SHIFT;
    uint32_t high = (offset + count - 1u) >> DM_LINE_SHIFT;
    if (high >= DM_CHUNK_LINES) {
        high = DM_CHUNK_LINES - 1u; // a range never leaves its chunk; clamp rather than read past the header
    }
    uint64_t changed = 0;
    for (dm_slab *s = atomic_load_explicit(&all_slabs, memory_order_acquire); s != NULL; s = s->next_all) {
        _Atomic uint64_t *chunk = atomic_load_explicit(&s->chunks[index], memory_order_acquire);
        if (chunk == NULL) {
            continue;
        }
        _Atomic uint8_t *flags = dm_chunk_flags(chunk);
        for (uint32_t line = low; line <= high; line++) {
            // A plain load first: most lines are clean, and an exchange would take their cache line from the writer.
            if (atomic_load_explicit(flags + line, memory_order_relaxed) != 0 &&
                atomic_exchange_explicit(flags + line, (uint8_t)0, memory_order_acquire) != 0) {
                changed |= (uint64_t)1 << line;
            }
        }
    }
    return changed;
}

void dm_cells_sum_lines(uint32_t chunk, uint64_t lines, uint64_t *out) {
    if (chunk >= DM_MAX_CHUNKS || lines == 0) {
        return;
    }
    for (uint64_t rest = lines; rest != 0; rest &= rest - 1) {
        memset(out + ((uint32_t)__builtin_ctzll(rest) << DM_LINE_SHIFT), 0, sizeof(uint64_t) * DM_LINE_CELLS);
    }
    for (dm_slab *s = atomic_load_explicit(&all_slabs, memory_order_acquire); s != NULL; s = s->next_all) {
        _Atomic uint64_t *cells = atomic_load_explicit(&s->chunks[chunk], memory_order_acquire);
        if (cells == NULL) {
            continue;
        }
        for (uint64_t rest = lines; rest != 0; rest &= rest - 1) {
            uint32_t first = (uint32_t)__builtin_ctzll(rest) << DM_LINE_SHIFT;
            for (uint32_t i = first; i < first + DM_LINE_CELLS; i++) {
                out[i] += atomic_load_explicit(cells + i, memory_order_relaxed);
            }
        }
    }
}

double dm_cells_sum_f64(uint32_t first, uint32_t count) {
    double total = 0;
    uint32_t index = first >> DM_CHUNK_SHIFT;
    uint32_t offset = first & (DM_CHUNK_CELLS - 1u);
    for (dm_slab *s = atomic_load_explicit(&all_slabs, memory_order_acquire); s != NULL; s = s->next_all) {
        _Atomic uint64_t *chunk = atomic_load_explicit(&s->chunks[index], memory_order_acquire);
        if (chunk != NULL) {
            for (uint32_t i = 0; i < count; i++) {
                total += dm_bits_f64(atomic_load_explicit(chunk + offset + i, memory_order_relaxed));
            }
        }
    }
    return total;
}

uint32_t dm_slab_count(void) {
    return atomic_load_explicit(&slab_count, memory_order_relaxed);
}
