/* hash: FNV-1a 64-bit, the one non-cryptographic hash lookout uses for hash tables, target identity and
 * body fingerprints. Stable across runs and platforms (scrape phases and persisted SD caches depend on
 * that), so never change the constants. Header-only so the byte loop inlines into hot paths (hash_body64,
 * hashed a whole body at a time, is in hash_body.c). */
#ifndef LOOKOUT_UTIL_HASH_H
#define LOOKOUT_UTIL_HASH_H
#include <stdbool.h>
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

/* The 64x64->128-bit multiply folded to 64 bits (low half xor high half): hash_body64's block fold. */
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

/* The fingerprint of a scraped body (merge_body_hash), computed on every scrape of every target, so built
 * to run near memory speed (util/hash_body.c): an XXH3-style accumulation (not bit-compatible with XXH3)
 * over 64-byte stripes: each 32-bit word plus a key, the words paired and multiplied 32x32->64 bits,
 * (w[2m] + k[2m]) * (w[2m+1] + k[2m+1]), into eight 64-bit sums; the keys differ per stripe of a 1 KiB
 * block, and each block's sums are folded into a chained 64-bit state with 128-bit multiplies. SSE2
 * (x86-64's baseline) does two products per instruction, AVX2 four (taken when the CPU has it); the
 * portable path gives the same values (hash_body64_scalar). On a 25 KB body: AVX2 ~0.23 instructions per
 * byte, SSE2 ~0.38, against ~0.44 for session 6's hash_body64, at 3.3 and 1.9 times its speed. The keys are chosen so that w + key is never 0 for a word w of UTF-8 text
 * (its first byte would have to be 0xf8-0xff), so in a body of UTF-8 text (any valid JSON) a change of any
 * one 4-byte word always changes its block's sums. A body is only ever compared with its own source's
 * earlier body (a collision would make lookout skip one changed body of that source until it changes
 * again), so speed over resistance to chosen input. Stable across runs and machines (words are read
 * little-endian; the values are stored: sources.body_hash); never 0. Reads exactly len bytes. */
uint64_t hash_body64(const void *data, size_t len);
/* The portable path of hash_body64 (the same values), for other architectures and for the tests. */
uint64_t hash_body64_scalar(const void *data, size_t len);
#if defined(__SSE2__)
uint64_t hash_body64_sse2(const void *data, size_t len); /* the SSE2 path, for the tests */
#endif
#if defined(__x86_64__) && defined(__GNUC__)
/* The AVX2 path, which hash_body64 takes when the CPU has AVX2 (hash_body64_has_avx2): call it only then. */
uint64_t hash_body64_avx2(const void *data, size_t len);
bool hash_body64_has_avx2(void);
#endif

#endif
