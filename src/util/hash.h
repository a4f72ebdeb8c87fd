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

/* The 64x64->128-bit multiply folded to 64 bits (low half xor high half): the mixing step of hash_body64. */
static inline uint64_t hash_mum64(uint64_t a, uint64_t b)
{
#ifdef __SIZEOF_INT128__
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
#else
    uint64_t al = a & 0xffffffffu, ah = a >> 32, bl = b & 0xffffffffu, bh = b >> 32;
    uint64_t ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
    uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);
    uint64_t lo = (ll & 0xffffffffu) | (mid << 32);
    uint64_t hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
    return lo ^ hi;
#endif
}

static inline uint64_t hash_load64(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* The fingerprint of a scraped body (merge_body_hash), computed on every scrape of every target, so built
 * for speed on 20-30 KB: one 128-bit multiply per 16 bytes in three independent lanes (the wyhash core
 * round; not bit-compatible with wyhash), about 0.45 instructions per byte against hash_fast64's 0.8.
 * A body is only ever compared with its own source's earlier body (a collision would make lookout skip one
 * changed body of that source until it changes again), so speed over resistance to chosen input. Stable
 * across runs and machines of the same endianness (the values are stored: sources.body_hash); never 0. */
static inline uint64_t hash_body64(const void *data, size_t len)
{
    const uint64_t S0 = 0xa0761d6478bd642fULL, S1 = 0xe7037ed1a0b428dbULL, S2 = 0x8ebc6af09c88c6e3ULL,
                   S3 = 0x589965cc75374cc3ULL;
    const unsigned char *p = data;
    uint64_t a = S0 ^ (uint64_t)len, b = S1, c = S2;
    size_t i = 0;
    for (; i + 48 <= len; i += 48) {
        a = hash_mum64(hash_load64(p + i) ^ S1, hash_load64(p + i + 8) ^ a);
        b = hash_mum64(hash_load64(p + i + 16) ^ S2, hash_load64(p + i + 24) ^ b);
        c = hash_mum64(hash_load64(p + i + 32) ^ S3, hash_load64(p + i + 40) ^ c);
    }
    a ^= b ^ c;
    for (; i + 16 <= len; i += 16)
        a = hash_mum64(hash_load64(p + i) ^ S1, hash_load64(p + i + 8) ^ a);
    uint64_t w0 = 0, w1 = 0; /* the last 0-15 bytes, zero-padded (the length is in the seed) */
    size_t t = len - i;
    if (t > 8) {
        memcpy(&w0, p + i, 8);
        memcpy(&w1, p + i + 8, t - 8);
    } else if (t) {
        memcpy(&w0, p + i, t);
    }
    a = hash_mum64(w0 ^ S1, w1 ^ a);
    uint64_t h = hash_mum64(a ^ S3, (uint64_t)len ^ S0);
    return h ? h : 1;
}

#endif
