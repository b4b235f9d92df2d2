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

/// Makes blocks of `bytes` or more come from their own mappings, returned to the system when freed, instead of
/// glibc's default, which raises that threshold after the first such free (up to 32 MiB) so that a large
/// scrape's buffers stay in the heap afterwards. Returns 0 where not supported.
static inline int dm_return_large_blocks(int bytes) {
#if defined(__GLIBC__)
    return mallopt(M_MMAP_THRESHOLD, bytes);
#else
    (void)bytes;
    return 0;
#endif
}

/// Gives free memory inside the heap back to the system (glibc keeps it otherwise: a heap shrinks only from its
/// top) when the heap's free bytes grew by at least `min_growth` since the last time: trimmed memory still counts
/// as free, so comparing with the last trim keeps an idle agent from trimming again and again. Returns the free
/// bytes found, or -1 where not supported. Call from one thread at a time.
static inline long long dm_release_free_heap(size_t min_growth) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    static size_t free_after_last_trim = 0;
    struct mallinfo2 info = mallinfo2();
    if (info.fordblks < free_after_last_trim) {
        free_after_last_trim = info.fordblks; // reused since: measure growth from here
    } else if (info.fordblks - free_after_last_trim >= min_growth) {
        malloc_trim(0);
        free_after_last_trim = info.fordblks;
    }
    return (long long)info.fordblks;
#else
    (void)min_growth;
    return -1;
#endif
}
