/* payload_scan: where each aggregate of a Periskop body starts and ends, found without parsing it, so
 * that aggregates byte-identical to the same source's previous body can be reused instead of parsed
 * again (payload_parse_reuse in payload_parse.c).
 *
 * Not a validator and never trusted alone: the parser checks every span against yajl's own offsets
 * before a span's hash is remembered, and parses the body with reused spans replaced by a placeholder,
 * so a body the scanner misreads is only parsed in full, never misread. Whatever shape it does not
 * recognise (root not an object, "aggregated_errors" absent, repeated or written with escapes, an element
 * not an object, a truncated body, more than max elements) gives -1: no reuse.
 *
 * Cost (SSE2, every x86-64): an object or array (nested_end, most of a payload) is walked 64 bytes at a
 * time by bit masks of its quotes, backslashes and brackets, visiting only the brackets outside strings;
 * a lone string is crossed 16 bytes at a time to its next quote or backslash; what the blocks leave, and
 * everything on other platforms, byte by byte. Before session 8 strings were crossed with one memchr
 * call each and the bytes between them looked at one by one: 146 k instead of 66 k instructions per
 * changed fleet payload (callgrind, scrape_path_bench; docs/benchmarks.md §3). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "periskop/payload_priv.h"
#include "util/hash.h"
#include "util/xalloc.h"

#define NOPOS ((size_t)-1)

static size_t skip_ws(const char *b, size_t n, size_t i)
{
    while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
        i++;
    return i;
}

/* The first index from i on (below n) of a quote or a backslash; n when there is none. */
static size_t quote_or_backslash(const char *b, size_t n, size_t i)
{
#ifdef __SSE2__
    const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(b + i));
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, q), _mm_cmpeq_epi8(x, bs)));
        if (m)
            return i + (size_t)__builtin_ctz(m);
    }
#endif
    while (i < n && b[i] != '"' && b[i] != '\\')
        i++;
    return i < n ? i : n;
}

/* b[i] is an opening quote: the index after the closing one, or NOPOS. A backslash escapes the byte after
 * it (so a quote preceded by an odd number of backslashes is escaped); the walk is linear in the string. */
static size_t string_end(const char *b, size_t n, size_t i)
{
    for (i++;;) {
        i = quote_or_backslash(b, n, i);
        if (i >= n)
            return NOPOS;
        if (b[i] == '"')
            return i + 1;
        i += 2;
    }
}

/* One byte of nested_end's walk (state: bracket depth, inside a string, the byte after a backslash in a
 * string): true when it closes the outermost bracket. */
static inline bool nested_step(unsigned char c, size_t *depth, bool *in_str, bool *esc)
{
    if (*esc) {
        *esc = false;
        return false;
    }
    if (*in_str) {
        if (c == '\\')
            *esc = true;
        else if (c == '"')
            *in_str = false;
        return false;
    }
    if (c == '"')
        *in_str = true;
    else if (c == '{' || c == '[')
        (*depth)++;
    else if (c == '}' || c == ']')
        return --*depth == 0;
    return false;
}

#ifdef __SSE2__
/* The masks of one 64-byte block (bit k: byte k): quotes, backslashes, opening brackets, all brackets. */
typedef struct block_masks {
    uint64_t q, bs, op, br;
} block_masks;

static inline void masks64(const char *b, block_masks *m)
{
    /* '[' and '{' differ only in bit 0x20, as do ']' and '}', and no other byte ORed with 0x20 gives
     * '{' or '}' */
    const __m128i vq = _mm_set1_epi8('"'), vbs = _mm_set1_epi8('\\'), vop = _mm_set1_epi8('{'),
                  vcl = _mm_set1_epi8('}'), low = _mm_set1_epi8(0x20);
    __m128i x0 = _mm_loadu_si128((const __m128i *)(const void *)b),
            x1 = _mm_loadu_si128((const __m128i *)(const void *)(b + 16)),
            x2 = _mm_loadu_si128((const __m128i *)(const void *)(b + 32)),
            x3 = _mm_loadu_si128((const __m128i *)(const void *)(b + 48));
#define MASK64(v, a, b_, c, d)                                                                                   \
    ((uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(a, v)) |                                             \
     (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(b_, v)) << 16 |                                      \
     (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(c, v)) << 32 |                                       \
     (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(d, v)) << 48)
    m->q = MASK64(vq, x0, x1, x2, x3);
    m->bs = MASK64(vbs, x0, x1, x2, x3);
    x0 = _mm_or_si128(x0, low);
    x1 = _mm_or_si128(x1, low);
    x2 = _mm_or_si128(x2, low);
    x3 = _mm_or_si128(x3, low);
    m->op = MASK64(vop, x0, x1, x2, x3);
    m->br = m->op | MASK64(vcl, x0, x1, x2, x3);
#undef MASK64
}
#endif

/* b[i] opens an object or array: the index after its closing bracket, or NOPOS. Brackets inside strings
 * do not count; a backslash in a string escapes the byte after it. With SSE2 a block of 64 bytes is taken
 * whole: bit masks of its quotes, backslashes and brackets; a quote right after a backslash is escaped;
 * the running parity of the other quotes says which bytes are inside a string; only the brackets outside
 * strings are visited. A block that has two backslashes in a row, a backslash outside a string or one
 * escaped from the previous block, and the last 63 bytes, go byte by byte. */
static size_t nested_end(const char *b, size_t n, size_t i)
{
    size_t depth = 0;
    bool in_str = false, esc = false;
#ifdef __SSE2__
    for (; i + 64 <= n; i += 64) {
        block_masks m;
        masks64(b + i, &m);
        uint64_t bs = m.bs, op = m.op, br = m.br;
        uint64_t q = m.q & ~((bs << 1) | (esc ? 1u : 0u)); /* a quote right after a backslash is escaped */
        /* bit k of p: the parity of the quotes at 0..k, so (flipped when the block starts inside a string)
         * whether byte k is inside a string */
        uint64_t p = q ^ (q << 1);
        p ^= p << 2;
        p ^= p << 4;
        p ^= p << 8;
        p ^= p << 16;
        p ^= p << 32;
        if (in_str)
            p = ~p;
        if ((bs & (bs << 1)) || (bs & ~p) || (esc && (bs & 1))) {
            for (size_t j = i; j < i + 64; j++)
                if (nested_step((unsigned char)b[j], &depth, &in_str, &esc))
                    return j + 1;
            continue;
        }
        in_str = p >> 63;
        esc = bs >> 63;
        for (br &= ~p; br; br &= br - 1) {
            unsigned k = (unsigned)__builtin_ctzll(br);
            if (op >> k & 1)
                depth++;
            else if (--depth == 0)
                return i + k + 1;
        }
    }
#endif
    for (; i < n; i++)
        if (nested_step((unsigned char)b[i], &depth, &in_str, &esc))
            return i + 1;
    return NOPOS;
}

/* b[i] starts a value: the index after it, or NOPOS. Brackets are only counted, not matched: the parser
 * rejects what does not nest. */
static size_t value_end(const char *b, size_t n, size_t i)
{
    if (b[i] == '"')
        return string_end(b, n, i);
    if (b[i] == '{' || b[i] == '[')
        return nested_end(b, n, i);
    size_t start = i;
    while (i < n && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' &&
           b[i] != '\r')
        i++;
    return i > start ? i : NOPOS;
}

/* The object starting at b[i] (ending by n): the elements of its member list_name (quoted, as written) when
 * that is an array of objects, into spans (at most max); for each of the n_str members str_names, the
 * content of its string value into str[k] (start NOPOS when absent, repeated, not a string or written
 * with escapes). Returns the number of spans, or -1 when the object or the list has no plain shape. */
static long scan_object(const char *b, size_t n, size_t i, const char *list_name, payload_span *spans, size_t max,
                        const char *const *str_names, payload_span *str, size_t n_str)
{
    const size_t list_len = strlen(list_name);
    bool str_seen[4] = {false};
    for (size_t k = 0; k < n_str; k++)
        str[k].start = str[k].end = NOPOS;
    i = skip_ws(b, n, i);
    if (i >= n || b[i] != '{')
        return -1;
    long found = -1;
    i = skip_ws(b, n, i + 1);
    if (i < n && b[i] == '}')
        return -1;
    while (i < n) {
        if (b[i] != '"')
            return -1;
        size_t kend = string_end(b, n, i);
        if (kend == NOPOS)
            return -1;
        bool ours = kend - i == list_len && memcmp(b + i, list_name, list_len) == 0;
        size_t named = n_str;
        for (size_t k = 0; k < n_str && named == n_str; k++)
            if (kend - i == strlen(str_names[k]) && memcmp(b + i, str_names[k], kend - i) == 0)
                named = k;
        i = skip_ws(b, n, kend);
        if (i >= n || b[i] != ':')
            return -1;
        i = skip_ws(b, n, i + 1);
        if (i >= n)
            return -1;
        if (ours) {
            if (found >= 0 || b[i] != '[')
                return -1; /* repeated (the last one wins in the parser), or not an array */
            found = 0;
            i = skip_ws(b, n, i + 1);
            if (i < n && b[i] == ']') {
                i++;
            } else {
                for (;;) {
                    if (i >= n || b[i] != '{' || (size_t)found == max)
                        return -1;
                    size_t e = value_end(b, n, i);
                    if (e == NOPOS)
                        return -1;
                    spans[found].start = i;
                    spans[found].end = e;
                    found++;
                    i = skip_ws(b, n, e);
                    if (i < n && b[i] == ',') {
                        i = skip_ws(b, n, i + 1);
                        continue;
                    }
                    if (i < n && b[i] == ']') {
                        i++;
                        break;
                    }
                    return -1;
                }
            }
        } else {
            size_t start = i;
            i = value_end(b, n, i);
            if (i == NOPOS)
                return -1;
            if (named < n_str) {
                bool plain = !str_seen[named] && b[start] == '"' && !memchr(b + start, '\\', i - start);
                str[named].start = plain ? start + 1 : NOPOS;
                str[named].end = plain ? i - 1 : NOPOS;
                str_seen[named] = true;
            }
        }
        i = skip_ws(b, n, i);
        if (i < n && b[i] == ',') {
            i = skip_ws(b, n, i + 1);
            continue;
        }
        if (i < n && b[i] == '}')
            return found;
        return -1;
    }
    return -1;
}

long payload_scan_aggregates(const char *b, size_t n, payload_span *spans, size_t max)
{
    return scan_object(b, n, 0, "\"aggregated_errors\"", spans, max, NULL, NULL, 0);
}

long payload_scan_occurrences(const char *b, payload_span agg, payload_span *spans, size_t max, payload_span *key)
{
    /* created_at must be there: without it the merge dates a new error by its oldest occurrence, which
     * needs every occurrence, known or not. */
    static const char *const names[] = {"\"aggregation_key\"", "\"created_at\""};
    payload_span str[2];
    long r = scan_object(b, agg.end, agg.start, "\"latest_errors\"", spans, max, names, str, 2);
    *key = str[0];
    return r >= 0 && str[0].start != NOPOS && str[1].start != NOPOS ? r : -1;
}

/* ---- the plan of a reusing parse ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool known_hash(const uint64_t *sorted, size_t n, uint64_t h)
{
    return sorted && bsearch(&h, sorted, n, sizeof h, cmp_u64) != NULL;
}

void payload_reuse_plan_free(reuse_plan *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->el[i].occ);
    free(p->el);
    free(p->owned);
    memset(p, 0, sizeof *p);
}

bool payload_reuse_plan(const char *body, size_t len, const payload_reuse *reuse, size_t max_occ, reuse_plan *p)
{
    memset(p, 0, sizeof *p);
    payload_span spans[PAYLOAD_REUSE_MAX];
    long n = payload_scan_aggregates(body, len, spans, PAYLOAD_REUSE_MAX);
    if (n <= 0)
        return false;
    p->n = (size_t)n;
    p->el = xcalloc(p->n, sizeof *p->el);
    size_t cut = 0; /* bytes the placeholders save */
    if (!max_occ || max_occ > PAYLOAD_REUSE_MAX_OCC)
        max_occ = PAYLOAD_REUSE_MAX_OCC;
    payload_span *os = xmalloc(max_occ * sizeof *os);
    for (size_t i = 0; i < p->n; i++) {
        reuse_elem *e = &p->el[i];
        e->span = spans[i];
        e->hash = hash_fast64(body + spans[i].start, spans[i].end - spans[i].start);
        if (reuse->lookup && reuse->lookup(reuse->ctx, e->hash, &e->found)) {
            p->placeholders++;
            cut += spans[i].end - spans[i].start - 1;
            continue;
        }
        e->found.key = NULL;
        /* Its occurrences: fingerprinted, and those the previous body's aggregate of the same key held are
         * left out; only when none could be dropped by max_occ, which keeps the newest of them. */
        payload_span key;
        long k = payload_scan_occurrences(body, spans[i], os, max_occ, &key);
        if (k < 0)
            continue;
        size_t n_known = 0;
        const uint64_t *known =
            reuse->occurrences ? reuse->occurrences(reuse->ctx, body + key.start, key.end - key.start, &n_known) : NULL;
        e->n_occ = (size_t)k;
        e->occ = xcalloc(e->n_occ ? e->n_occ : 1, sizeof *e->occ);
        for (size_t j = 0; j < e->n_occ; j++) {
            reuse_occ *o = &e->occ[j];
            o->span = os[j];
            o->hash = hash_fast64(body + os[j].start, os[j].end - os[j].start);
            o->known = known_hash(known, n_known, o->hash);
            if (o->known) {
                p->placeholders++;
                cut += os[j].end - os[j].start - 1;
            }
        }
    }
    free(os);
    if (!p->placeholders) {
        p->text = body;
        p->len = len;
        return true;
    }
    /* The body with each placeholder in place of what it stands for, every span moved to match. */
    char *t = xmalloc(len - cut + 1);
    size_t o = 0, from = 0;
#define COPY_TO(pos)                                                                                               \
    do {                                                                                                           \
        memcpy(t + o, body + from, (pos) - from);                                                                  \
        o += (pos) - from;                                                                                         \
        from = (pos);                                                                                              \
    } while (0)
    for (size_t i = 0; i < p->n; i++) {
        reuse_elem *e = &p->el[i];
        COPY_TO(e->span.start);
        size_t start = o;
        if (e->found.key) {
            t[o++] = '0';
            from = e->span.end;
        } else {
            for (size_t j = 0; j < e->n_occ; j++) {
                reuse_occ *oc = &e->occ[j];
                COPY_TO(oc->span.start);
                size_t os_ = o;
                if (oc->known) {
                    t[o++] = '0';
                    from = oc->span.end;
                } else {
                    COPY_TO(oc->span.end);
                }
                oc->span.start = os_;
                oc->span.end = o;
            }
            COPY_TO(e->span.end);
        }
        e->span.start = start;
        e->span.end = o;
    }
    COPY_TO(len);
#undef COPY_TO
    p->owned = t;
    p->text = t;
    p->len = o;
    return true;
}
