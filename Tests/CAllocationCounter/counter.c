#include "CAllocationCounter.h"

#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <execinfo.h>
#include <unistd.h>

#if defined(__GLIBC__)

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

// initial-exec: no allocation and no lock on first use, which matters inside malloc itself.
static __thread uint64_t thread_allocations __attribute__((tls_model("initial-exec")));
static _Atomic uint64_t total_allocations;

static __thread int thread_tracing __attribute__((tls_model("initial-exec")));

static inline void counted(void) {
    thread_allocations += 1;
    atomic_fetch_add_explicit(&total_allocations, 1, memory_order_relaxed);
    if (thread_tracing == 1) {
        thread_tracing = 2; // no tracing of what tracing allocates
        void *frames[10];
        int n = backtrace(frames, 10);
        write(2, "ALLOCATION\n", 11);
        backtrace_symbols_fd(frames, n, 2);
        thread_tracing = 1;
    }
}

void dm_allocations_trace(int on) {
    if (on) {
        void *frame[1];
        backtrace(frame, 1); // loads the unwinder before tracing starts
    }
    thread_tracing = on ? 1 : 0;
}

void *malloc(size_t size) {
    counted();
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    counted();
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    counted();
    return __libc_realloc(pointer, size);
}

void *memalign(size_t alignment, size_t size) {
    counted();
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    counted();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return 22; // EINVAL
    counted();
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL && size != 0) return 12; // ENOMEM
    *out = pointer;
    return 0;
}

int dm_allocations_counted(void) { return 1; }
uint64_t dm_allocations_thread(void) { return thread_allocations; }
uint64_t dm_allocations_total(void) { return atomic_load_explicit(&total_allocations, memory_order_relaxed); }

#else

void dm_allocations_trace(int on) { (void)on; }
int dm_allocations_counted(void) { return 0; }
uint64_t dm_allocations_thread(void) { return 0; }
uint64_t dm_allocations_total(void) { return 0; }

#endif
