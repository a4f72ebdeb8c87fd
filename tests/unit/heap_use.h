/* heap_use: the bytes this process has allocated (glibc's mallinfo2 over every arena, mmapped chunks
 * included), for tests that show a dropped free without a sanitizer. Small freed chunks that glibc keeps
 * in its per-thread caches (tcache: up to 7 per size class, sizes up to 1 KiB) still count as in use, so
 * a test leak-checks allocations far larger than that and allows HEAP_USE_TOLERANCE. Under ASan or
 * TSan, whose allocators mallinfo2 does not see, HEAP_USE_COUNTS is 0: the comparisons are left out (the
 * tests still run; LeakSanitizer checks the leaks in `make sanitize` and the mutation tool's ASan mode). */
#ifndef LOOKOUT_TESTS_HEAP_USE_H
#define LOOKOUT_TESTS_HEAP_USE_H
#include <malloc.h>
#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HEAP_USE_COUNTS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define HEAP_USE_COUNTS 0
#endif
#endif
#ifndef HEAP_USE_COUNTS
#define HEAP_USE_COUNTS 1
#endif

#define HEAP_USE_TOLERANCE (256 * 1024)

static inline size_t heap_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* Asserts (criterion) that the heap holds less than before + HEAP_USE_TOLERANCE. */
#define heap_use_assert_back_to(before)                                                                 \
    do {                                                                                                \
        size_t heap_use_now_ = heap_use(), heap_use_before_ = (before);                                 \
        if (HEAP_USE_COUNTS)                                                                            \
            cr_assert_lt(heap_use_now_, heap_use_before_ + HEAP_USE_TOLERANCE, "%zd bytes still allocated", \
                         (ssize_t)(heap_use_now_ - heap_use_before_));                                  \
    } while (0)
#endif
