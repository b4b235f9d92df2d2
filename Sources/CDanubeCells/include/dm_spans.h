// The Swift emitter's tracing state: the thread's current span and its random ids (C `_Thread_local`, read through
// `static inline` functions: one TLS-relative load, no call), and one bounded ring of finished spans per thread.
//
// A ring holds opaque pointers (retained Swift objects). The recording thread exchanges its span into the next
// slot and gets back what the slot held: the oldest span, which the flusher had not taken (the caller releases it
// and it is counted). The flusher exchanges slots empty. Neither ever waits for the other.
#ifndef DM_SPANS_H
#define DM_SPANS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "dm_tls.h"

/// Spans one thread may hold before the oldest are dropped.
#define DM_SPAN_RING_SLOTS 512u

#define DM_SPAN_PRESENT 1u
#define DM_SPAN_SAMPLED 2u

/// The thread's current span: four words, copied whole. `flags` 0: none.
typedef struct dm_span_current {
    uint64_t trace_high;
    uint64_t trace_low;
    uint64_t span_id;
    uint64_t flags;
} dm_span_current;

extern DM_HOT_THREAD_LOCAL dm_span_current dm_tls_span;
extern DM_HOT_THREAD_LOCAL uint64_t dm_tls_span_random;

static inline dm_span_current dm_span_current_get(void) { return dm_tls_span; }

/// Makes `next` current and returns what was.
static inline dm_span_current dm_span_current_swap(dm_span_current next) {
    dm_span_current previous = dm_tls_span;
    dm_tls_span = next;
    return previous;
}

static inline void dm_span_current_set(dm_span_current current) { dm_tls_span = current; }

/// Seeds the thread's generator (from the process's random source); called once per thread.
uint64_t dm_span_random_seed(void);

/// A non-zero random id: xorshift64* per thread.
static inline uint64_t dm_span_random(void) {
    uint64_t x = dm_tls_span_random;
    if (x == 0) {
        x = dm_span_random_seed();
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    dm_tls_span_random = x;
    return (x * 0x2545F4914F6CDD1DULL) | 1u;
}

/// CLOCK_MONOTONIC in nanoseconds (a span's start and end; never 0 on a running system).
static inline uint64_t dm_monotonic_nanos(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/// Unix nanoseconds minus CLOCK_MONOTONIC nanoseconds, taken once: a span's wall-clock start without a second
/// clock read per span.
uint64_t dm_unix_minus_monotonic(void);

/// Queues `span` on the calling thread's ring; returns the span it displaced (the oldest, to release), or NULL.
void *dm_span_ring_push(void *span);

/// Takes up to `capacity` queued spans of every thread into `out`; returns how many. Rings of ended threads are
/// freed once empty.
size_t dm_span_ring_drain(void **out, size_t capacity);

#endif
