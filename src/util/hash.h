/* hash: FNV-1a 64-bit, the one non-cryptographic hash lookout uses for hash tables, target identity and
 * body fingerprints. Stable across runs and platforms (scrape phases and persisted SD caches depend on
 * that), so never change the constants. Header-only so the byte loop inlines into hot paths. */
#ifndef LOOKOUT_UTIL_HASH_H
#define LOOKOUT_UTIL_HASH_H
#include <stddef.h>
#include <stdint.h>

/* Pass FNV64_OFFSET as the initial h to start, or a previous result to continue. */
#define FNV64_OFFSET 14695981039346656037ULL

static inline uint64_t fnv1a64(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

#endif
