/* hash_body64 (util/hash.h): the body fingerprint. Its values are stored (sources.body_hash), so the keys,
 * the constants and the order of every step are fixed: the AVX2, SSE2 and scalar paths give the same
 * values (test_hash compares them for every length 0..4096), and a change means one more parse of every
 * source after an upgrade (test_hash and test_merge pin values computed in Python). */
#include "util/hash.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HB_AVX2 1 /* compiled for AVX2 with a target attribute, run when the CPU has it */
#endif

/* 256 keys (one for each 32-bit word of the 16 stripes of a 1 KiB block), from
 * splitmix64 seeded with 0x6c6f6f6b6f7574 ("lookout"), the low then the high 32 bits of each output, each
 * set so that -key's low byte is 0xf8-0xff (a byte that never occurs in UTF-8): w + key == 0 needs a word w
 * starting with it. */
_Alignas(32) static const uint32_t hash_body_keys[256] = {
    0x71be1a07u, 0x598e0b08u, 0x1b290208u, 0xaba68008u, 0x16394d06u, 0x3cd7f601u, 0x4d508605u, 0xa265d503u,
    0x93d40105u, 0xbdf4b307u, 0xf1408a02u, 0xf43bf506u, 0x73607701u, 0x839c5e03u, 0x617b0803u, 0xf5e3e702u,
    0x12d7c803u, 0xc6ff3b03u, 0x3746fe05u, 0xfaea6603u, 0xc95cfe02u, 0x8aa8ff06u, 0xcf1ec107u, 0x61338207u,
    0xde95fc08u, 0xa2711004u, 0x663e8d05u, 0x9ffe1a07u, 0xfacb3e02u, 0x07bb2d03u, 0xf130e206u, 0xe242ae05u,
    0x833db807u, 0x13827e02u, 0x63d88405u, 0xfcc53803u, 0xc030fb07u, 0x3cd44203u, 0x891e4303u, 0x1918cc04u,
    0x88537402u, 0x99703707u, 0x1cba6002u, 0xdb222404u, 0xc3c64e02u, 0x356bbb04u, 0x09e14906u, 0xcf040d02u,
    0xce374807u, 0x0ec35605u, 0x9a325e03u, 0x3d168508u, 0x81703908u, 0xe9492707u, 0xecb04704u, 0x1b863403u,
    0x240e3101u, 0x9f58d208u, 0x3a2a8302u, 0xab25a703u, 0xacb0ed04u, 0x68236c01u, 0x33b76201u, 0x20e9c603u,
    0x0eb79108u, 0xa3428302u, 0xb30d7608u, 0xa4a83b05u, 0x2331ab08u, 0x5d967905u, 0x376a3206u, 0x62859e03u,
    0x92ed9803u, 0x51553b04u, 0xa7829003u, 0x6a94a303u, 0x470af505u, 0xa9820102u, 0x05ac8705u, 0x42b7d804u,
    0xed99a903u, 0xd5509503u, 0x649dde05u, 0x2aa71205u, 0x7e754d03u, 0xb22e0203u, 0xc450df01u, 0x76170a03u,
    0xe6e53e03u, 0x2fdadd02u, 0xa4cc3f06u, 0x7a1e5206u, 0x9d58a608u, 0xc2f44108u, 0xd4bed108u, 0xc9dd4801u,
    0x02a37908u, 0xdf7d2401u, 0x522b1a06u, 0xfb75a101u, 0x7f5ed906u, 0xc72f5905u, 0x1034b305u, 0x68c29e06u,
    0xcc450a06u, 0x998b5a08u, 0xa0752e05u, 0x3043a004u, 0x5e0af903u, 0xdc29da06u, 0xf9f5ee06u, 0xa722f104u,
    0x42833705u, 0x14b5ff07u, 0xda8a0b04u, 0x05dfb307u, 0x49a4d907u, 0x9131ea07u, 0xba0bfa06u, 0x998f3107u,
    0x3bc45f06u, 0x57b6df05u, 0xecd88903u, 0xa21d4b05u, 0x18c13d02u, 0x439ee408u, 0x8534e207u, 0xfdf63e04u,
    0x82e7f106u, 0x0531ea03u, 0xac5a4408u, 0xab198708u, 0x9c8bde06u, 0x138a3e02u, 0x1f643a05u, 0x37f8c501u,
    0xa244fa08u, 0xf51b6302u, 0x288bfd02u, 0x9c43a803u, 0xeedb1706u, 0x9e754401u, 0x8b438a07u, 0x2994d705u,
    0x0fc61c06u, 0x0779ec06u, 0x964b7b04u, 0xe363f608u, 0xc18e3908u, 0x28398a05u, 0x53e57d04u, 0x81e7fb01u,
    0xbb51b106u, 0x1609f905u, 0x7c249f08u, 0x9df29503u, 0xdddba103u, 0xa3118702u, 0xbfb92804u, 0x70326308u,
    0x186db301u, 0x9c3d1a07u, 0xf54d9f04u, 0xaec3fa05u, 0x9f577201u, 0x5e457f04u, 0xd44b3203u, 0x390b3503u,
    0xde749c01u, 0x6314be06u, 0x9d6db408u, 0x4c2f5204u, 0xa1f44901u, 0xb3cb2802u, 0x4e0f3201u, 0x4d732b04u,
    0x2b44a306u, 0xa9918804u, 0xacf88203u, 0x98a48804u, 0x6e9b8c02u, 0xfc78c506u, 0x870e8502u, 0x4a49bd05u,
    0x14df3905u, 0x827b5807u, 0xbf94f201u, 0x368e2a07u, 0xf8898f01u, 0x7759bc03u, 0x54b9ae02u, 0xa6770a03u,
    0xe70d0406u, 0xb89c9e08u, 0xa12e9902u, 0x766c7d03u, 0x75ef1f01u, 0x27e64707u, 0x04d6f301u, 0x97d8bd07u,
    0x9a291202u, 0x88fabe05u, 0xc1019805u, 0xc098e007u, 0xd7ea7506u, 0xfef19201u, 0x3ff57f04u, 0x3a68ba05u,
    0x319e5901u, 0x026df007u, 0xe42ad304u, 0x366bd106u, 0x72554f05u, 0x24580403u, 0x7777e002u, 0xebeb5f03u,
    0x71c41f05u, 0xf4797504u, 0x20e37607u, 0x79244406u, 0x1e681004u, 0x96a4c301u, 0xac1f5b08u, 0x78e45806u,
    0x7844f202u, 0x29d18307u, 0x9030dc07u, 0x31323f05u, 0x24419504u, 0x9e212308u, 0x51beb104u, 0x63280305u,
    0x905c2302u, 0x462ff505u, 0xfa5ea506u, 0x5df7a101u, 0xb96ffb02u, 0x4c3f7505u, 0x198c2f07u, 0x20e9ec04u,
    0xa1865c02u, 0xd863dd05u, 0xd2865806u, 0x36194702u, 0xf5f48f05u, 0xab105a05u, 0xdfe23806u, 0x570dce08u,
    0xc4abf001u, 0x50aa5805u, 0x15684405u, 0x0d2b8f07u, 0x58da8b04u, 0x2f92fd02u, 0x34ddb903u, 0x64edba02u,
};

static const uint64_t HB_S0 = 0xa0761d6478bd642fULL, HB_S1 = 0xe7037ed1a0b428dbULL,
                      HB_S2 = 0x8ebc6af09c88c6e3ULL, HB_S3 = 0x589965cc75374cc3ULL;

/* A block's eight sums folded into the chained state. */
static inline uint64_t hb_fold(uint64_t h, const uint64_t a[8])
{
    uint64_t m0 = hash_mum64(a[0] ^ HB_S1, a[1] ^ HB_S2), m1 = hash_mum64(a[2] ^ HB_S3, a[3] ^ HB_S0);
    uint64_t m2 = hash_mum64(a[4] ^ HB_S2, a[5] ^ HB_S3), m3 = hash_mum64(a[6] ^ HB_S0, a[7] ^ HB_S1);
    return hash_mum64(h ^ m0 ^ m2, m1 ^ m3 ^ HB_S1);
}

static inline uint64_t hb_final(uint64_t h, size_t len)
{
    uint64_t r = hash_mum64(h ^ HB_S3, (uint64_t)len ^ HB_S0);
    return r ? r : 1;
}

static inline uint32_t hb_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One 64-byte stripe, as 16 little-endian 32-bit words w, keyed: a[m] += (w[2m] + k[2m]) * (w[2m+1] + k[2m+1])
 * (the key sums mod 2^32, the product 64 bits, a[] mod 2^64). Both factors keyed, so a change of either word
 * depends on the stripe's position: with one factor unkeyed, the same bit flipped in two stripes whose other
 * words are equal (repeated text) gave the same sums. */
static inline void hb_stripe_scalar(uint64_t a[8], const unsigned char *p, const uint32_t *k)
{
    for (int m = 0; m < 8; m++)
        a[m] += (uint64_t)(uint32_t)(hb_le32(p + 8 * m) + k[2 * m]) * (uint32_t)(hb_le32(p + 8 * m + 4) + k[2 * m + 1]);
}

uint64_t hash_body64_scalar(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = HB_S0 ^ (uint64_t)len;
    size_t i = 0;
    while (i < len) { /* blocks of 16 stripes; the last block's last stripe zero-padded */
        uint64_t a[8] = {0};
        for (size_t s = 0; s < 16 && i < len; s++, i += 64) {
            if (len - i >= 64) {
                hb_stripe_scalar(a, p + i, hash_body_keys + 16 * s);
            } else {
                unsigned char pad[64] = {0};
                memcpy(pad, p + i, len - i);
                hb_stripe_scalar(a, pad, hash_body_keys + 16 * s);
            }
        }
        h = hb_fold(h, a);
    }
    return hb_final(h, len);
}

#if defined(__SSE2__)
/* The same stripe, two products per instruction: acc[v] holds the sums (a[2v], a[2v+1]) of the 16 bytes at
 * 16v; _mm_mul_epu32 multiplies words 0 and 2 of its operands, the shuffle brings words 1 and 3 there. */
static inline __m128i hb_round_sse2(__m128i acc, const unsigned char *p, const uint32_t *k)
{
    __m128i d = _mm_add_epi32(_mm_loadu_si128((const __m128i *)(const void *)p),
                              _mm_load_si128((const __m128i *)(const void *)k));
    return _mm_add_epi64(acc, _mm_mul_epu32(d, _mm_shuffle_epi32(d, 0xf5)));
}

static inline void hb_stripe_sse2(__m128i acc[4], const unsigned char *p, const uint32_t *k)
{
    acc[0] = hb_round_sse2(acc[0], p, k);
    acc[1] = hb_round_sse2(acc[1], p + 16, k + 4);
    acc[2] = hb_round_sse2(acc[2], p + 32, k + 8);
    acc[3] = hb_round_sse2(acc[3], p + 48, k + 12);
}

static inline uint64_t hb_fold_sse2(uint64_t h, const __m128i acc[4])
{
    uint64_t a[8];
    _mm_storeu_si128((__m128i *)(void *)a, acc[0]);
    _mm_storeu_si128((__m128i *)(void *)(a + 2), acc[1]);
    _mm_storeu_si128((__m128i *)(void *)(a + 4), acc[2]);
    _mm_storeu_si128((__m128i *)(void *)(a + 6), acc[3]);
    return hb_fold(h, a);
}

uint64_t hash_body64_sse2(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = HB_S0 ^ (uint64_t)len;
    size_t i = 0;
    for (; len - i >= 1024; i += 1024) { /* whole blocks (unrolled by 8: by 16, GCC spills the products) */
        __m128i acc[4] = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128()};
#pragma GCC unroll 8
        for (size_t s = 0; s < 16; s++)
            hb_stripe_sse2(acc, p + i + 64 * s, hash_body_keys + 16 * s);
        h = hb_fold_sse2(h, acc);
    }
    if (i < len) { /* the last block: whole stripes, then the rest zero-padded */
        __m128i acc[4] = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128()};
        size_t s = 0;
        for (; len - i >= 64; i += 64, s++)
            hb_stripe_sse2(acc, p + i, hash_body_keys + 16 * s);
        if (i < len) {
            _Alignas(16) unsigned char pad[64] = {0};
            memcpy(pad, p + i, len - i);
            hb_stripe_sse2(acc, pad, hash_body_keys + 16 * s);
        }
        h = hb_fold_sse2(h, acc);
    }
    return hb_final(h, len);
}
#endif

#ifdef HB_AVX2
/* The same stripe, four products per instruction: acc[v] holds the sums a[4v..4v+3] of the 32 bytes at
 * 32v. Half the instructions of the SSE2 path per byte. */
__attribute__((target("avx2"))) static inline __m256i hb_round_avx2(__m256i acc, const unsigned char *p,
                                                                      const uint32_t *k)
{
    __m256i d = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p),
                                 _mm256_load_si256((const __m256i *)(const void *)k));
    return _mm256_add_epi64(acc, _mm256_mul_epu32(d, _mm256_shuffle_epi32(d, 0xf5)));
}

__attribute__((target("avx2"))) static inline uint64_t hb_fold_avx2(uint64_t h, __m256i acc0, __m256i acc1)
{
    uint64_t a[8];
    _mm256_storeu_si256((__m256i *)(void *)a, acc0);
    _mm256_storeu_si256((__m256i *)(void *)(a + 4), acc1);
    return hb_fold(h, a);
}

__attribute__((target("avx2"))) uint64_t hash_body64_avx2(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = HB_S0 ^ (uint64_t)len;
    size_t i = 0;
    for (; len - i >= 1024; i += 1024) {
        __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (size_t s = 0; s < 16; s++) {
            acc0 = hb_round_avx2(acc0, p + i + 64 * s, hash_body_keys + 16 * s);
            acc1 = hb_round_avx2(acc1, p + i + 64 * s + 32, hash_body_keys + 16 * s + 8);
        }
        h = hb_fold_avx2(h, acc0, acc1);
    }
    if (i < len) {
        __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
        size_t s = 0;
        for (; len - i >= 64; i += 64, s++) {
            acc0 = hb_round_avx2(acc0, p + i, hash_body_keys + 16 * s);
            acc1 = hb_round_avx2(acc1, p + i + 32, hash_body_keys + 16 * s + 8);
        }
        if (i < len) {
            _Alignas(32) unsigned char pad[64] = {0};
            memcpy(pad, p + i, len - i);
            acc0 = hb_round_avx2(acc0, pad, hash_body_keys + 16 * s);
            acc1 = hb_round_avx2(acc1, pad + 32, hash_body_keys + 16 * s + 8);
        }
        h = hb_fold_avx2(h, acc0, acc1);
    }
    return hb_final(h, len);
}

bool hash_body64_has_avx2(void)
{
    return __builtin_cpu_supports("avx2");
}
#endif

uint64_t hash_body64(const void *data, size_t len)
{
#ifdef HB_AVX2
    if (__builtin_cpu_supports("avx2"))
        return hash_body64_avx2(data, len);
#endif
#if defined(__SSE2__)
    return hash_body64_sse2(data, len);
#else
    return hash_body64_scalar(data, len);
#endif
}
