// Counts heap allocations of this process, for the allocation-budget tests (as swift-nio's allocation counter
// tests do): malloc, calloc, realloc, posix_memalign, aligned_alloc and memalign are interposed here and forwarded
// to glibc's own entry points (__libc_malloc, ...). Linked into the test executable only; on a C library without
// those entry points (musl) nothing is interposed and `dm_allocations_counted()` is 0.
#ifndef C_ALLOCATION_COUNTER_H
#define C_ALLOCATION_COUNTER_H

#include <stdint.h>

/// 1 when allocations are counted in this process.
int dm_allocations_counted(void);
/// Allocations made by the calling thread so far.
uint64_t dm_allocations_thread(void);
/// Allocations made by every thread so far.
uint64_t dm_allocations_total(void);

/// While on, prints a backtrace to stderr for each allocation of the calling thread (to find one that broke a
/// budget).
void dm_allocations_trace(int on);

#endif
