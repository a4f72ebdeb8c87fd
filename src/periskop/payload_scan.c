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
 * Cost: 16 bytes at a time where SSE2 is there (every x86-64): inside a string only a quote or a backslash
 * stops the scan, between strings only a quote or a bracket; one scan in C below finishes what the
 * blocks leave (the last 15 bytes, other platforms). Before session 8 strings were crossed with one
 * memchr call each and the bytes between them looked at one by one: 143 k instead of 128 k instructions
 * per changed fleet payload (callgrind, scrape_path_bench; quotes come every ~10 bytes, so the cost is
 * per string more than per byte). */
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

/* The first index from i on (below n) of a quote or a bracket ({ [ } ]); n when there is none. '[' and
 * '{' differ only in bit 0x20, as do ']' and '}', and no other byte ORed with 0x20 gives '{' or '}'. */
static size_t quote_or_bracket(const char *b, size_t n, size_t i)
{
#ifdef __SSE2__
    const __m128i q = _mm_set1_epi8('"'), op = _mm_set1_epi8('{'), cl = _mm_set1_epi8('}'),
                  low = _mm_set1_epi8(0x20);
    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(b + i));
        __m128i f = _mm_or_si128(x, low);
        __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(x, q), _mm_or_si128(_mm_cmpeq_epi8(f, op), _mm_cmpeq_epi8(f, cl)));
        unsigned m = (unsigned)_mm_movemask_epi8(hit);
        if (m)
            return i + (size_t)__builtin_ctz(m);
    }
#endif
    while (i < n && b[i] != '"' && (b[i] | 0x20) != '{' && (b[i] | 0x20) != '}')
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

/* b[i] starts a value: the index after it, or NOPOS. Brackets are only counted, not matched: the parser
 * rejects what does not nest. */
static size_t value_end(const char *b, size_t n, size_t i)
{
    if (b[i] == '"')
        return string_end(b, n, i);
    if (b[i] == '{' || b[i] == '[') {
        size_t depth = 0;
        for (;;) {
            i = quote_or_bracket(b, n, i);
            if (i >= n)
                return NOPOS;
            if (b[i] == '"') {
                i = string_end(b, n, i);
                if (i == NOPOS)
                    return NOPOS;
                continue;
            }
            if (b[i] == '{' || b[i] == '[')
                depth++;
            else if (--depth == 0)
                return i + 1;
            i++;
        }
    }
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
