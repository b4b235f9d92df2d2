// glibc's allocator statistics (malloc.h is not part of Swift's Glibc module).
#include <malloc.h>

/// Bytes in use by live allocations: small chunks in the arenas plus blocks mapped on their own; -1 where the C
/// library has no mallinfo2 (musl).
static inline long long dm_heap_in_use(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 info = mallinfo2();
    return (long long)(info.uordblks + info.hblkhd);
#else
    return -1;
#endif
}
