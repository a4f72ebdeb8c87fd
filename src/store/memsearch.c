/* store/memsearch: see memsearch.h. */
#include "store/memsearch.h"

#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "util/xalloc.h"

#define FNV_OFF 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
#define SET_MIN 16

/* strcasestr folds with tolower() in the C locale (lookout never calls setlocale): ASCII only. */
static inline unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static inline void sig_pair(uint64_t *sig, unsigned char a, unsigned char b)
{
    uint32_t bit = (((uint32_t)a << 8 | b) * 0x9E3779B1u) >> 23; /* 0..511 */
    sig[bit >> 6] |= 1ULL << (bit & 63);
}

static void sig_add(uint64_t *sig, const char *s, size_t n)
{
    for (size_t i = 1; i < n; i++)
        sig_pair(sig, (unsigned char)s[i - 1], (unsigned char)s[i]);
}

/* ---- fields of a sample, in a fixed order (the budget takes them in this order) ---- */

typedef void (*field_fn)(void *ctx, const char *s, size_t n, bool dedup);

/* Calls fn for every non-empty field of o that fits the sample budget; returns true when some field did
 * not fit (the sample is partial). Small, distinctive fields first, long ones (stack, body) last. */
static bool each_field(const payload_occurrence *o, field_fn fn, void *ctx)
{
    size_t left = MEMSEARCH_SAMPLE_BUDGET;
    bool partial = false;
#define FIELD(str, dd)                                                                                            \
    do {                                                                                                           \
        const char *s_ = (str);                                                                                    \
        size_t n_ = s_ ? strlen(s_) : 0;                                                                           \
        if (n_ == 0)                                                                                               \
            break;                                                                                                 \
        if (n_ + 1 > left) {                                                                                       \
            partial = true;                                                                                        \
            break;                                                                                                 \
        }                                                                                                          \
        left -= n_ + 1;                                                                                            \
        if (fn)                                                                                                    \
            fn(ctx, s_, n_, dd);                                                                                   \
    } while (0)
    for (const payload_error *e = &o->error; e; e = e->cause) {
        FIELD(e->class_name, true);
        FIELD(e->message, true);
    }
    if (o->http) {
        FIELD(o->http->method, true);
        FIELD(o->http->url, true);
        for (size_t i = 0; i < o->http->n_headers; i++) {
            FIELD(o->http->headers[i].name, true);
            FIELD(o->http->headers[i].value, true);
        }
    }
    FIELD(o->uuid, false); /* unique per sample: not worth a set entry */
    for (const payload_error *e = &o->error; e; e = e->cause)
        for (size_t i = 0; i < e->n_stacktrace; i++)
            FIELD(e->stacktrace[i], true);
    if (o->http)
        FIELD(o->http->body, true);
#undef FIELD
    return partial;
}

/* ---- the index ---- */

static uint64_t field_hash(const char *lowered, size_t n)
{
    uint64_t h = FNV_OFF;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)lowered[i]) * FNV_PRIME;
    return h ^ (h >> 29);
}

/* The field set: 4-byte slots holding an offset into text (the key is the field there). Not util/keymap
 * on purpose: a keymap slot is 32 bytes, and there is one set per stored aggregate (10^5 and more). */
static void set_insert(memsearch_index *ix, uint32_t off, uint64_t h)
{
    uint32_t mask = ix->set_cap - 1, i = (uint32_t)h & mask;
    while (ix->set[i])
        i = (i + 1) & mask;
    ix->set[i] = off + 1;
    ix->set_n++;
}

static void set_grow(memsearch_index *ix)
{
    uint32_t *old = ix->set, oldcap = ix->set_cap;
    ix->set_cap = oldcap ? oldcap * 2 : SET_MIN;
    ix->set = calloc(ix->set_cap, sizeof(uint32_t));
    if (!ix->set)
        abort();
    ix->set_n = 0;
    for (uint32_t i = 0; i < oldcap; i++) {
        if (!old[i])
            continue;
        const char *f = ix->text + old[i] - 1;
        set_insert(ix, old[i] - 1, field_hash(f, strlen(f)));
    }
    free(old);
}

static void add_field(void *ctx, const char *s, size_t n, bool dedup)
{
    memsearch_index *ix = ctx;
    if ((size_t)ix->len + n + 1 > UINT32_MAX) /* unreachable with the per-sample budget; stay safe */
        return;
    if (ix->len + n + 1 > ix->cap) {
        size_t c = ix->cap ? (size_t)ix->cap * 2 : 64;
        while (c < ix->len + n + 1)
            c *= 2;
        if (c > UINT32_MAX)
            c = UINT32_MAX;
        ix->text = xrealloc(ix->text, c);
        ix->cap = (uint32_t)c;
    }
    /* lower-case into the tail first; drop it again when the set already has the field */
    char *d = ix->text + ix->len;
    for (size_t i = 0; i < n; i++)
        d[i] = (char)lower((unsigned char)s[i]);
    d[n] = 0;
    if (dedup) {
        uint64_t h = field_hash(d, n);
        if (ix->set_cap) {
            uint32_t mask = ix->set_cap - 1;
            for (uint32_t i = (uint32_t)h & mask; ix->set[i]; i = (i + 1) & mask)
                /* includes the NUL: equal length too; the other field lies wholly before d */
                if (memcmp(ix->text + ix->set[i] - 1, d, n + 1) == 0)
                    return;
        }
        if ((ix->set_n + 1) * 2 > ix->set_cap)
            set_grow(ix);
        set_insert(ix, ix->len, h);
    }
    sig_add(ix->sig, d, n);
    ix->len += (uint32_t)(n + 1);
}

void memsearch_init(memsearch_index *ix, const char *key)
{
    memset(ix, 0, sizeof(*ix));
    size_t n = strlen(key ? key : "");
    add_field(ix, key ? key : "", n, false);
    ix->keylen = (uint32_t)n;
}

void memsearch_free(memsearch_index *ix)
{
    free(ix->text);
    free(ix->set);
    memset(ix, 0, sizeof(*ix));
}

void memsearch_add(memsearch_index *ix, const payload_occurrence *o)
{
    if (each_field(o, add_field, ix))
        ix->partial++;
    ix->live++;
}

void memsearch_remove(memsearch_index *ix, const payload_occurrence *o)
{
    if (each_field(o, NULL, NULL) && ix->partial)
        ix->partial--;
    if (ix->live)
        ix->live--;
    ix->stale++;
}

void memsearch_compact(memsearch_index *ix, payload_occurrence *const *samples, size_t n)
{
    /* Rebuild when stale text is a quarter of the live samples (small aggregates at once): each eviction
     * then pays for at most ~4-8 samples' worth of rebuilding, and hits rarely need confirming. */
    if (!ix->stale || (ix->stale * 4 < ix->live && ix->live > 8))
        return;
    size_t keylen = ix->keylen; /* text[0..keylen] keeps the key */
    ix->len = (uint32_t)(keylen + 1);
    memset(ix->sig, 0, sizeof(ix->sig));
    sig_add(ix->sig, ix->text, keylen);
    /* the set is rebuilt from scratch; shrink it when the aggregate lost most of its fields */
    if (ix->set_cap > SET_MIN && ix->set_n * 8 < ix->set_cap) {
        free(ix->set);
        ix->set = NULL;
        ix->set_cap = 0;
    } else if (ix->set) {
        memset(ix->set, 0, ix->set_cap * sizeof(uint32_t));
    }
    ix->set_n = 0;
    ix->partial = ix->stale = ix->live = 0;
    for (size_t i = 0; i < n; i++)
        memsearch_add(ix, samples[i]);
    if (ix->cap > 256 && (size_t)ix->len * 4 < ix->cap) {
        ix->text = xrealloc(ix->text, (size_t)ix->len * 2);
        ix->cap = ix->len * 2;
    }
}

/* ---- queries ---- */

static void word_init(memsearch_word *w, char *s)
{
    w->w = s;
    w->len = strlen(s);
    for (size_t i = 0; i < w->len; i++)
        s[i] = (char)lower((unsigned char)s[i]);
    memset(w->sig, 0, sizeof(w->sig));
    sig_add(w->sig, s, w->len);
}

void memsearch_query_init(memsearch_query *mq, const char *q, bool all_words)
{
    memset(mq, 0, sizeof(*mq));
    if (!q || !q[0])
        return;
    size_t n = strlen(q);
    mq->buf = malloc(n + 1);
    mq->words = malloc((n / 2 + 2) * sizeof(memsearch_word));
    if (!mq->buf || !mq->words)
        abort();
    memcpy(mq->buf, q, n + 1);
    if (all_words) {
        for (char *save = NULL, *w = strtok_r(mq->buf, " \t\r\n\f\v", &save); w;
             w = strtok_r(NULL, " \t\r\n\f\v", &save))
            word_init(&mq->words[mq->n++], w);
    } else {
        word_init(&mq->words[mq->n++], mq->buf);
    }
    for (size_t i = 0; i < mq->n; i++)
        for (int k = 0; k < MEMSEARCH_SIG_WORDS; k++)
            mq->sig[k] |= mq->words[i].sig[k];
}

void memsearch_query_init_words(memsearch_query *mq, const char *const *words, size_t n)
{
    memset(mq, 0, sizeof(*mq));
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += strlen(words[i]) + 1;
    if (!n)
        return;
    mq->buf = malloc(total);
    mq->words = malloc(n * sizeof(memsearch_word));
    if (!mq->buf || !mq->words)
        abort();
    char *d = mq->buf;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(words[i]);
        memcpy(d, words[i], len + 1);
        word_init(&mq->words[mq->n++], d);
        d += len + 1;
    }
    for (size_t i = 0; i < mq->n; i++)
        for (int k = 0; k < MEMSEARCH_SIG_WORDS; k++)
            mq->sig[k] |= mq->words[i].sig[k];
}

void memsearch_query_free(memsearch_query *mq)
{
    free(mq->buf);
    free(mq->words);
    memset(mq, 0, sizeof(*mq));
}

/* The plain scan (store.h semantics) over the key and the live samples. */
static bool exact(const memsearch_index *ix, const memsearch_word *w, payload_occurrence *const *samples, size_t n)
{
    if (memmem(ix->text, ix->keylen, w->w, w->len))
        return true;
    for (size_t i = 0; i < n; i++)
        if (store_occurrence_matches(samples[i], w->w))
            return true;
    return false;
}

bool memsearch_matches(const memsearch_query *mq, const memsearch_index *ix, payload_occurrence *const *samples,
                       size_t n)
{
    if (!mq->n)
        return true;
    /* sig covers every live field (and maybe stale ones): a missing bigram is a miss */
    if (!ix->partial && !memsearch_sig_may_match(mq, ix->sig))
        return false;
    for (size_t i = 0; i < mq->n; i++) {
        const memsearch_word *w = &mq->words[i];
        bool hit = memmem(ix->text, ix->len, w->w, w->len) != NULL;
        if (hit && ix->stale)
            hit = exact(ix, w, samples, n); /* the hit may be in an evicted sample's text */
        else if (!hit && ix->partial)
            hit = exact(ix, w, samples, n); /* the word may be in a field left out */
        if (!hit)
            return false;
    }
    return true;
}
