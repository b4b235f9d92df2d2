#include "dm_spans.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

DM_HOT_THREAD_LOCAL dm_span_current dm_tls_span = {0, 0, 0, 0};
DM_HOT_THREAD_LOCAL uint64_t dm_tls_span_random = 0;

typedef struct dm_span_ring {
    _Atomic(void *) slots[DM_SPAN_RING_SLOTS];
    uint32_t next;                 // written by the owning thread only
    _Atomic int orphaned;          // the owning thread ended
    struct dm_span_ring *next_all; // guarded by rings_lock
} dm_span_ring;

static _Thread_local dm_span_ring *tls_ring = NULL;
static pthread_mutex_t rings_lock = PTHREAD_MUTEX_INITIALIZER;
static dm_span_ring *rings = NULL;
static pthread_once_t ring_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t ring_key;

uint64_t dm_span_random_seed(void) {
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        seed = (uint64_t)now.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)&now;
    }
    return seed | 1u;
}

static pthread_once_t offset_once = PTHREAD_ONCE_INIT;
static uint64_t unix_minus_monotonic = 0;

static void take_offset(void) {
    struct timespec unix_now;
    clock_gettime(CLOCK_REALTIME, &unix_now);
    uint64_t unix_nanos = (uint64_t)unix_now.tv_sec * 1000000000u + (uint64_t)unix_now.tv_nsec;
    unix_minus_monotonic = unix_nanos - dm_monotonic_nanos();
}

uint64_t dm_unix_minus_monotonic(void) {
    pthread_once(&offset_once, take_offset);
    return unix_minus_monotonic;
}

static void ring_thread_exited(void *value) {
    atomic_store_explicit(&((dm_span_ring *)value)->orphaned, 1, memory_order_release);
    tls_ring = NULL;
}

static void make_ring_key(void) {
    if (pthread_key_create(&ring_key, ring_thread_exited) != 0) {
        abort();
    }
}

static dm_span_ring *thread_ring(void) {
    if (tls_ring != NULL) {
        return tls_ring;
    }
    pthread_once(&ring_key_once, make_ring_key);
    dm_span_ring *ring = calloc(1, sizeof(dm_span_ring));
    if (ring == NULL) {
        abort();
    }
    pthread_mutex_lock(&rings_lock);
    ring->next_all = rings;
    rings = ring;
    pthread_mutex_unlock(&rings_lock);
    tls_ring = ring;
    pthread_setspecific(ring_key, ring);
    return ring;
}

void *dm_span_ring_push(void *span) {
    dm_span_ring *ring = thread_ring();
    uint32_t at = ring->next++ % DM_SPAN_RING_SLOTS;
    return atomic_exchange_explicit(&ring->slots[at], span, memory_order_acq_rel);
}

size_t dm_span_ring_drain(void **out, size_t capacity) {
    size_t taken = 0;
    pthread_mutex_lock(&rings_lock);
    dm_span_ring **link = &rings;
    while (*link != NULL) {
        dm_span_ring *ring = *link;
        int orphaned = atomic_load_explicit(&ring->orphaned, memory_order_acquire);
        int empty = 1;
        for (uint32_t i = 0; i < DM_SPAN_RING_SLOTS; i++) {
            if (taken == capacity) {
                empty = 0;
                break;
            }
            void *span = atomic_exchange_explicit(&ring->slots[i], NULL, memory_order_acq_rel);
            if (span != NULL) {
                out[taken++] = span;
            }
        }
        if (orphaned && empty) {
            *link = ring->next_all;
            free(ring);
        } else {
            link = &ring->next_all;
        }
    }
    pthread_mutex_unlock(&rings_lock);
    return taken;
}
