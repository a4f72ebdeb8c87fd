/* util/hash_body.c: hash_body64, the body fingerprint (stored in sources.body_hash, so its values are
 * pinned), its SIMD path against the portable one, and its sensitivity and distribution. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/hash.h"

static uint64_t rng_state;

static uint64_t rng(void) /* splitmix64: fixed seeds, so every run checks the same inputs */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void pattern(unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(i * 131 + (i >> 8));
}

static int popcount64(uint64_t x)
{
    int n = 0;
    for (; x; x &= x - 1)
        n++;
    return n;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The values, computed independently of the C code from hash_body64's description, in Python:
 *   M = 2**64 - 1; S0, S1, S2, S3 = 0xa0761d6478bd642f, 0xe7037ed1a0b428db, 0x8ebc6af09c88c6e3, 0x589965cc75374cc3
 *   def keys():  # splitmix64 from "lookout", low then high halves, -key's low byte forced to 0xf8-0xff
 *       x, out = 0x6c6f6f6b6f7574, []
 *       while len(out) < 256:
 *           x = (x + 0x9e3779b97f4a7c15) & M; z = x
 *           z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M; z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
 *           z ^= z >> 31
 *           for half in (z & 0xffffffff, z >> 32):
 *               n = (-half) & 0xffffffff; n = (n & ~0xff) | 0xf8 | (n & 7); out.append((-n) & 0xffffffff)
 *       return out
 *   K = keys(); mum = lambda a, b: ((a * b) & M) ^ ((a * b) >> 64)
 *   w = lambda b, o: int.from_bytes(b[o:o + 4], "little")
 *   def h(b):
 *       n = len(b); hh = S0 ^ n; i = 0
 *       while i < n:
 *           blk = b[i:i + 1024]; i += 1024; A = [0] * 8
 *           for s in range((len(blk) + 63) // 64):
 *               st = blk[s * 64:s * 64 + 64]; st += bytes(64 - len(st))
 *               key = lambda j: (w(st, 4 * j) + K[16 * s + j]) & 0xffffffff
 *               for m in range(8): A[m] = (A[m] + key(2 * m) * key(2 * m + 1)) & M
 *           m0 = mum(A[0] ^ S1, A[1] ^ S2); m1 = mum(A[2] ^ S3, A[3] ^ S0)
 *           m2 = mum(A[4] ^ S2, A[5] ^ S3); m3 = mum(A[6] ^ S0, A[7] ^ S1)
 *           hh = mum(hh ^ m0 ^ m2, m1 ^ m3 ^ S1)
 *       return mum(hh ^ S3, n ^ S0) or 1
 *   pattern = lambda n: bytes((i * 131 + (i >> 8)) & 0xff for i in range(n))
 * Lengths: empty, one byte, a tail only, 16 bytes, a stripe less one, one stripe, a stripe and a byte,
 * one block, 25 blocks (a fleet body's size). */
Test(hash, body_values_are_pinned)
{
    static const struct {
        size_t len;
        uint64_t want;
    } pins[] = {{0, 0xfaeec0dc331e9e62ULL},    {1, 0x8bc66bb5e3a3845bULL},    {15, 0xd956142c9bd65a52ULL},
                {16, 0xa579b95b1b1b976fULL},   {63, 0x418b8488118ebb26ULL},   {64, 0xc4ee773de38c7cefULL},
                {65, 0x76befa12ce5e8a27ULL},   {1024, 0xf6b43a9793991259ULL}, {25600, 0xd927847191d87d7dULL}};
    unsigned char *b = malloc(25601);
    cr_assert_not_null(b);
    pattern(b, 25601);
    for (size_t i = 0; i < sizeof pins / sizeof pins[0]; i++) {
        cr_expect_eq(hash_body64(b, pins[i].len), pins[i].want, "len %zu: 0x%016llx", pins[i].len,
                     (unsigned long long)hash_body64(b, pins[i].len));
        cr_expect_eq(hash_body64_scalar(b, pins[i].len), pins[i].want, "scalar, len %zu: 0x%016llx", pins[i].len,
                     (unsigned long long)hash_body64_scalar(b, pins[i].len));
    }
    /* 1,024 bytes from pattern(1025)[1:]: the same block at an odd address */
    cr_expect_eq(hash_body64(b + 1, 1024), 0xce14ba964884c46bULL);
    const char *json = "{\"target_uuid\":\"A\",\"aggregated_errors\":[]}";
    cr_expect_eq(hash_body64(json, strlen(json)), 0xc7758b070478e4f4ULL);
    free(b);
}

/* The SIMD paths (SSE2 on x86-64, and AVX2 where this CPU has it: hash_body64 takes it then) and the
 * portable path give the same value for every length 0..4096 of random bytes, at every alignment mod 16
 * (the portable path is what other architectures run). */
Test(hash, simd_path_equals_portable_path)
{
    unsigned char *b = malloc(4096 + 16);
    cr_assert_not_null(b);
    rng_state = 14;
    for (size_t len = 0; len <= 4096; len++) {
        unsigned char *p = b + len % 16;
        for (size_t i = 0; i < len; i++)
            p[i] = (unsigned char)rng();
        uint64_t want = hash_body64_scalar(p, len);
        cr_assert_eq(hash_body64(p, len), want, "len %zu", len);
#if defined(__SSE2__)
        cr_assert_eq(hash_body64_sse2(p, len), want, "SSE2, len %zu", len);
#endif
#if defined(__x86_64__) && defined(__GNUC__)
        if (hash_body64_has_avx2())
            cr_assert_eq(hash_body64_avx2(p, len), want, "AVX2, len %zu", len);
#endif
    }
    /* bytes with the high bit set in every word (the unsigned 32x32 multiply, the carries of the key add) */
    memset(b, 0xff, 4096);
    for (size_t len = 0; len <= 4096; len += 7)
        cr_assert_eq(hash_body64(b, len), hash_body64_scalar(b, len), "0xff, len %zu", len);
    free(b);
}

/* Both paths read exactly len bytes: bodies of every length 0..1100 ending at an unreadable page hash
 * without a fault, to the values of the same bytes elsewhere (test_merge_memory does this for
 * merge_body_hash, which is AVX2 or SSE2 on x86-64; this one covers the SSE2 and portable paths too). */
Test(hash, both_paths_read_exactly_len_bytes)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), span = (1100 / pg + 2) * pg;
    unsigned char *m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(m, MAP_FAILED);
    cr_assert_eq(mprotect(m + span - pg, pg, PROT_NONE), 0);
    unsigned char *end = m + span - pg, copy[1100];
    pattern(copy, sizeof copy);
    memcpy(end - sizeof copy, copy, sizeof copy);
    for (size_t len = 0; len <= sizeof copy; len++) {
        const unsigned char *p = end - len, *q = copy + sizeof copy - len;
        cr_assert_eq(hash_body64(p, len), hash_body64(q, len), "len %zu", len);
        cr_assert_eq(hash_body64_scalar(p, len), hash_body64(q, len), "scalar, len %zu", len);
#if defined(__SSE2__)
        cr_assert_eq(hash_body64_sse2(p, len), hash_body64(q, len), "SSE2, len %zu", len);
#endif
    }
    munmap(m, span);
}

/* Flipping any one of the 8,192 bits of a 1 KiB input (random bytes, and JSON-like text) changes the
 * hash, all 8,193 values differ, and on average about half of the 64 output bits change. */
Test(hash, every_one_bit_flip_changes_the_hash)
{
    enum { N = 1024 };
    static uint64_t seen[N * 8 + 1];
    unsigned char b[N];
    for (int round = 0; round < 2; round++) {
        rng_state = 1;
        for (size_t i = 0; i < N; i++)
            b[i] = round == 0 ? (unsigned char)rng() : (unsigned char)"{\"key\": \"a\", \"count\": 12345}, "[i % 30];
        uint64_t h0 = hash_body64(b, N);
        long changed_bits = 0;
        seen[0] = h0;
        for (size_t bit = 0; bit < N * 8; bit++) {
            b[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            uint64_t h = hash_body64(b, N);
            b[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            cr_assert_neq(h, h0, "round %d, bit %zu", round, bit);
            changed_bits += popcount64(h ^ h0);
            seen[bit + 1] = h;
        }
        qsort(seen, N * 8 + 1, sizeof seen[0], cmp_u64);
        for (size_t i = 1; i < N * 8 + 1; i++)
            cr_assert_neq(seen[i], seen[i - 1], "round %d: two flips give the same hash", round);
        double mean = (double)changed_bits / (N * 8);
        cr_expect(mean > 31.0 && mean < 33.0, "round %d: %.2f output bits change on average", round, mean);
    }
}

/* In UTF-8 text every 4-byte word counts: replacing any one word of a 2 KiB JSON-like body by
 * any of 40 other printable words changes the hash (hash.h: y + key is never 0 for such a word). */
Test(hash, any_one_word_change_in_text_changes_the_hash)
{
    enum { N = 2048 };
    char b[N];
    for (size_t i = 0; i < N; i++)
        b[i] = "{\"class\": \"java.lang.IllegalStateException\", \"count\": 987}, "[i % 60];
    uint64_t h0 = hash_body64(b, N);
    rng_state = 7;
    for (size_t w = 0; w + 4 <= N; w += 4) {
        char save[4];
        memcpy(save, b + w, 4);
        for (int t = 0; t < 40; t++) {
            for (int j = 0; j < 4; j++)
                b[w + j] = (char)(' ' + rng() % 95);
            if (memcmp(save, b + w, 4) == 0)
                continue;
            cr_assert_neq(hash_body64(b, N), h0, "word at %zu, try %d", w, t);
        }
        memcpy(b + w, save, 4);
    }
    cr_assert_eq(hash_body64(b, N), h0);
}

/* Distribution over bodies that differ the way a fleet's do (one number in a long common text, at several
 * lengths): 50,000 bodies give 50,000 different values, and every output bit is set in 47-53 % of them
 * (a perfectly random hash is within 0.6 % of 50 % for every bit at 4 standard deviations). */
Test(hash, counter_bodies_spread_over_all_bits)
{
    enum { N = 50000 };
    static uint64_t h[N];
    static char body[3200];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = "{\"aggregation_key\": \"x@1\", \"total_count\": 0000000, \"severity\": \"error\"} "[i % 72];
    long ones[64] = {0};
    for (size_t i = 0; i < N; i++) {
        char num[8];
        snprintf(num, sizeof num, "%07zu", i);
        size_t at = 72 * (20 + i % 3) + 42; /* the count of one of three aggregates */
        memcpy(body + at, num, 7);
        size_t len = 3000 + (i % 4) * 64;
        h[i] = hash_body64(body, len);
        memcpy(body + at, "0000000", 7);
        for (int bit = 0; bit < 64; bit++)
            ones[bit] += (long)(h[i] >> bit & 1);
    }
    for (int bit = 0; bit < 64; bit++)
        cr_expect(ones[bit] > N * 47 / 100 && ones[bit] < N * 53 / 100, "bit %d set in %ld of %d", bit, ones[bit], N);
    qsort(h, N, sizeof h[0], cmp_u64);
    for (size_t i = 1; i < N; i++)
        cr_assert_neq(h[i], h[i - 1], "two of the %d bodies hash alike", N);
}
