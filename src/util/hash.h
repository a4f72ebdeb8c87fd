/* hash: FNV-1a 64-bit, the one non-cryptographic hash lookout uses for hash tables, target identity and
 * body fingerprints. Stable across runs and platforms (scrape phases and persisted SD caches depend on
 * that), so never change the constants. Header-only so the byte loop inlines into hot paths. */
#ifndef LOOKOUT_UTIL_HASH_H
#define LOOKOUT_UTIL_HASH_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

static inline uint64_t hash_rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

/* A fast 64-bit fingerprint of bytes: four independent multiply-rotate lanes over 8-byte words (the
 * XXH64 core round), so hashing a 20 KB body costs a few microseconds. Not bit-compatible with XXH64;
 * stable across runs and machines of the same endianness; never 0. For body and aggregate fingerprints
 * (a source only ever compares with its own earlier bytes), not for hash tables keyed by outsiders. */
static inline uint64_t hash_fast64(const void *data, size_t len)
{
    const uint64_t P1 = 11400714785074694791ULL, P2 = 14029467366897019727ULL, P3 = 1609587929392839161ULL;
    const unsigned char *p = data;
    /* Lanes in locals, unrolled: the same values as a v[4] loop, in registers. */
    uint64_t v0 = P1 + P2, v1 = P2, v2 = 0, v3 = (uint64_t)0 - P1;
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        uint64_t w0, w1, w2, w3;
        memcpy(&w0, p + i, 8);
        memcpy(&w1, p + i + 8, 8);
        memcpy(&w2, p + i + 16, 8);
        memcpy(&w3, p + i + 24, 8);
        v0 = hash_rotl64(v0 + w0 * P2, 31) * P1;
        v1 = hash_rotl64(v1 + w1 * P2, 31) * P1;
        v2 = hash_rotl64(v2 + w2 * P2, 31) * P1;
        v3 = hash_rotl64(v3 + w3 * P2, 31) * P1;
    }
    uint64_t h = hash_rotl64(v0, 1) + hash_rotl64(v1, 7) + hash_rotl64(v2, 12) + hash_rotl64(v3, 18) + len;
    for (; i < len; i++)
        h = hash_rotl64(h ^ (p[i] * P3), 11) * P1;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h ? h : 1;
}

#endif
