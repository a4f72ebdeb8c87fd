/* merge: see merge.h.
 *
 * Invariants:
 * - Every aggregate (magg) lives until merge_free; instances point at aggregates, never the reverse, so
 *   pruning an instance never touches aggregate totals.
 * - magg.samples is sorted newest first (timestamp desc, then dedup hash desc) and holds at most
 *   samples_per_error entries with distinct dedup hashes; magg.hashes and magg.ts mirror it for
 *   cache-friendly duplicate checks and ordering. A sample restored by identity only (a store's
 *   start-up: the store serves the content itself) has samples[i] == NULL: the engine needs only its
 *   hash (dedup, eviction notice) and timestamp (order) until it is evicted.
 * - magg.label_hashes[0 .. n_label_ids) are label sets restored by identity only (labelset_hash masked
 *   to 63 bits, as SQL stores it); magg.labels[i] is label_hashes[n_label_ids + i].
 * - A magg is in change set cs iff magg.cs_gen == cs->gen; then cs->v[magg.cs_idx] is its entry. */
#include "store/merge.h"
#include "util/hash.h"

#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "util/keymap.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

#define DEFAULT_SAMPLES 100
#define DEFAULT_LABELS 100
#define DEFAULT_RETENTION_MS (14LL * 24 * 3600 * 1000)
#define DEFAULT_MAX_ERRORS_PER_JOB 10000
#define OVERFLOW_LOG_EVERY_MS 60000

typedef struct magg {
    char *id; /* "job\0key" */
    size_t idlen, joblen;
    uint64_t total;
    payload_severity sev;
    int64_t created, last_seen;
    payload_occurrence **samples; /* NULL entries: known by identity only */
    uint64_t *hashes;
    int64_t *ts;
    size_t n, cap;
    labelset *labels;
    uint64_t *label_hashes;
    size_t n_labels, n_label_ids; /* n_labels counts both kinds */
    uint64_t cs_gen;
    size_t cs_idx;
    int64_t touched; /* merge time of the last new occurrence or count increase (retention) */
    /* Deleted by retention (merge_expire): a tombstone that keeps only its id, last_seen and the
     * instances' counts, so that instances still reporting the key with no increase do not bring it back;
     * freed once no instance refers to it. Invisible to every reader. */
    bool expired;
    bool referenced; /* scratch of merge_expire */
} magg;

typedef struct icount {
    magg *a; /* NULL = empty slot */
    uint64_t count;
    uint64_t cs_gen; /* this count is cs->counts[cs_idx] iff cs_gen == cs->gen (coalescing) */
    size_t cs_idx;
} icount;

typedef struct minst {
    char *id; /* "job\0instance_id" */
    size_t idlen, joblen;
    int64_t last_seen;
    icount *slots;
    size_t cap, n;
} minst;

typedef struct msrc {
    char *id; /* "job\0url" */
    size_t idlen, joblen;
    uint64_t body_hash;
    int64_t last_scrape;
    minst *inst; /* NULL when none or pruned */
} msrc;

/* Per job: how many aggregates it holds (max_errors_per_job) and when its overflow was last logged. */
typedef struct mjob {
    char *job;
    size_t n_aggs;
    int64_t last_log_ms;
    uint64_t logged_keys, overflowed_keys; /* keys redirected into the overflow (since the last log line) */
} mjob;

struct merge_engine {
    merge_options o;
    keymap aggs, insts, srcs, jobs;
};

static inline uint64_t count_clamp(uint64_t v)
{
    return v > MERGE_COUNT_MAX ? MERGE_COUNT_MAX : v;
}

/* a + b saturated at MERGE_COUNT_MAX (both already at most that). */
static inline uint64_t count_add(uint64_t a, uint64_t b)
{
    return a > MERGE_COUNT_MAX - b ? MERGE_COUNT_MAX : a + b;
}

static uint64_t next_gen = 1;

/* Grows *arr (of elem bytes) so that index n is valid. */
static void *grow(void *arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return arr;
    size_t c = *cap ? *cap * 2 : 4;
    while (c <= n)
        c *= 2;
    *cap = c;
    return xrealloc(arr, c * elem);
}

/* "job\0rest" into a malloc'd buffer. */
static char *mkid(const char *job, const char *rest, size_t *len, size_t *joblen)
{
    size_t j = strlen(job), r = strlen(rest);
    char *id = xmalloc(j + 1 + r + 1);
    memcpy(id, job, j + 1);
    memcpy(id + j + 1, rest, r + 1);
    *len = j + 1 + r;
    if (joblen)
        *joblen = j;
    return id;
}

/* Looks up "job\0rest" without allocating for typical sizes. */
static void *lookup(const keymap *m, const char *job, const char *rest)
{
    char stack[512];
    size_t j = strlen(job), r = strlen(rest), n = j + 1 + r;
    char *buf = n + 1 <= sizeof(stack) ? stack : xmalloc(n + 1);
    memcpy(buf, job, j + 1);
    memcpy(buf + j + 1, rest, r + 1);
    void *v = keymap_get(m, buf, n);
    if (buf != stack)
        free(buf);
    return v;
}

/* ---- change sets ---- */

void merge_changeset_init(merge_changeset *cs)
{
    memset(cs, 0, sizeof(*cs));
    cs->gen = __atomic_fetch_add(&next_gen, 1, __ATOMIC_RELAXED);
}

static void change_free(merge_change *c)
{
    free(c->job);
    free(c->key);
    for (size_t i = 0; i < c->n_added; i++)
        payload_occurrence_unref(c->added[i]);
    free(c->added);
    free(c->evicted);
    for (size_t i = 0; i < c->n_labels_added; i++)
        labelset_free(&c->labels_added[i]);
    free(c->labels_added);
    free(c->series);
}

void merge_changeset_clear(merge_changeset *cs)
{
    for (size_t i = 0; i < cs->n; i++)
        change_free(&cs->v[i]);
    cs->n = 0;
    for (size_t i = 0; i < cs->n_counts; i++) {
        free(cs->counts[i].job);
        free(cs->counts[i].instance_id);
        free(cs->counts[i].key);
    }
    cs->n_counts = 0;
    for (size_t i = 0; i < cs->n_deleted; i++) {
        free(cs->deleted[i].job);
        free(cs->deleted[i].key);
    }
    cs->n_deleted = 0;
    cs->gen = __atomic_fetch_add(&next_gen, 1, __ATOMIC_RELAXED);
}

void merge_changeset_free(merge_changeset *cs)
{
    merge_changeset_clear(cs);
    free(cs->v);
    cs->v = NULL;
    cs->cap = 0;
    free(cs->counts);
    cs->counts = NULL;
    cs->cap_counts = 0;
    free(cs->deleted);
    cs->deleted = NULL;
    cs->cap_deleted = 0;
}

static merge_change *change_of(merge_changeset *cs, magg *a, bool is_new)
{
    if (a->cs_gen == cs->gen && a->cs_idx < cs->n)
        return &cs->v[a->cs_idx];
    cs->v = grow(cs->v, &cs->cap, cs->n, sizeof(merge_change));
    merge_change *c = &cs->v[cs->n];
    memset(c, 0, sizeof(*c));
    c->job = xstrdup(a->id);
    c->key = xstrdup(a->id + a->joblen + 1);
    c->is_new = is_new;
    a->cs_gen = cs->gen;
    a->cs_idx = cs->n++;
    return c;
}

static void change_snapshot(merge_change *c, const magg *a)
{
    c->total_count = a->total;
    c->severity = a->sev;
    c->created_at_ms = a->created;
    c->last_seen_ms = a->last_seen;
}

static void change_added(merge_change *c, payload_occurrence *o)
{
    c->added = grow(c->added, &c->cap_added, c->n_added, sizeof(void *));
    payload_occurrence_ref(o);
    c->added[c->n_added++] = o;
}

static void change_evicted(merge_change *c, uint64_t h)
{
    for (size_t i = 0; i < c->n_added; i++) {
        if (c->added[i]->dedup_hash == h) { /* added and gone within this change set: neither */
            payload_occurrence_unref(c->added[i]);
            c->added[i] = c->added[--c->n_added];
            return;
        }
    }
    c->evicted = grow(c->evicted, &c->cap_evicted, c->n_evicted, sizeof(uint64_t));
    c->evicted[c->n_evicted++] = h;
}

static void change_series(merge_change *c, int64_t minute, uint64_t delta)
{
    if (c->n_series && c->series[c->n_series - 1].minute >= minute) {
        /* Same minute, or the clock went backwards within a batch: credit the latest bucket rather than
         * unsort. */
        c->series[c->n_series - 1].delta = count_add(c->series[c->n_series - 1].delta, delta);
        return;
    }
    c->series = grow(c->series, &c->cap_series, c->n_series, sizeof(merge_series_point));
    c->series[c->n_series].minute = minute;
    c->series[c->n_series].delta = delta;
    c->n_series++;
}

/* ---- engine ---- */

merge_engine *merge_new(const merge_options *opts)
{
    merge_engine *e = xmalloc(sizeof(*e));
    memset(e, 0, sizeof(*e));
    if (opts)
        e->o = *opts;
    if (!e->o.samples_per_error)
        e->o.samples_per_error = DEFAULT_SAMPLES;
    if (!e->o.labels_per_error)
        e->o.labels_per_error = DEFAULT_LABELS;
    if (e->o.retention_ms <= 0)
        e->o.retention_ms = DEFAULT_RETENTION_MS;
    if (!e->o.max_errors_per_job)
        e->o.max_errors_per_job = DEFAULT_MAX_ERRORS_PER_JOB;
    return e;
}

const merge_options *merge_get_options(const merge_engine *e)
{
    return &e->o;
}

static void magg_free(magg *a)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->samples[i])
            payload_occurrence_unref(a->samples[i]);
    free(a->samples);
    free(a->hashes);
    free(a->ts);
    for (size_t i = 0; i < a->n_labels - a->n_label_ids; i++)
        labelset_free(&a->labels[i]);
    free(a->labels);
    free(a->label_hashes);
    free(a->id);
    free(a);
}

static void minst_free(minst *m)
{
    free(m->slots);
    free(m->id);
    free(m);
}

void merge_free(merge_engine *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->aggs.cap; i++)
        if (e->aggs.slots[i].hash)
            magg_free(e->aggs.slots[i].value);
    for (size_t i = 0; i < e->insts.cap; i++)
        if (e->insts.slots[i].hash)
            minst_free(e->insts.slots[i].value);
    for (size_t i = 0; i < e->srcs.cap; i++)
        if (e->srcs.slots[i].hash) {
            msrc *s = e->srcs.slots[i].value;
            free(s->id);
            free(s);
        }
    for (size_t i = 0; i < e->jobs.cap; i++)
        if (e->jobs.slots[i].hash) {
            mjob *j = e->jobs.slots[i].value;
            free(j->job);
            free(j);
        }
    keymap_free(&e->aggs);
    keymap_free(&e->insts);
    keymap_free(&e->srcs);
    keymap_free(&e->jobs);
    free(e);
}

static mjob *job_get(merge_engine *e, const char *job)
{
    size_t len = strlen(job);
    mjob *j = keymap_get(&e->jobs, job, len);
    if (j)
        return j;
    j = xcalloc(1, sizeof *j);
    j->job = xstrdup(job);
    keymap_put(&e->jobs, j->job, len, j);
    return j;
}

static magg *magg_get(merge_engine *e, const char *job, const char *key, bool *created)
{
    magg *a = lookup(&e->aggs, job, key);
    *created = false;
    if (a)
        return a;
    job_get(e, job)->n_aggs++;
    a = xmalloc(sizeof(*a));
    memset(a, 0, sizeof(*a));
    a->id = mkid(job, key, &a->idlen, &a->joblen);
    a->sev = PAYLOAD_ERROR;
    a->created = PAYLOAD_TS_NONE;
    a->last_seen = PAYLOAD_TS_NONE;
    keymap_put(&e->aggs, a->id, a->idlen, a);
    *created = true;
    return a;
}

static minst *minst_get(merge_engine *e, const char *job, const char *id)
{
    minst *m = lookup(&e->insts, job, id);
    if (m)
        return m;
    m = xmalloc(sizeof(*m));
    memset(m, 0, sizeof(*m));
    m->id = mkid(job, id, &m->idlen, &m->joblen);
    keymap_put(&e->insts, m->id, m->idlen, m);
    return m;
}

/* Per-instance counts: an open-addressing table of icount slots keyed by aggregate pointer. Not
 * util/keymap64 on purpose: the count lives in the slot (one allocation per instance), where keymap64
 * would add one malloc'd icount per (instance, key) - the merge engine's most numerous object - and a
 * pointer chase on every scrape's lookup. (Judged from the layout, not benchmarked.) */
static size_t ptr_slot(const magg *a, size_t cap)
{
    uint64_t x = (uint64_t)(uintptr_t)a;
    x ^= x >> 29;
    x *= 0x9E3779B97F4A7C15ULL;
    return (size_t)(x >> 32) & (cap - 1);
}

/* Returns the count slot of a in m (creating an empty one with a = NULL when absent, in which case the
 * caller must set ->a). */
static icount *icount_find(minst *m, const magg *a, bool create)
{
    if (create && (m->n + 1) * 4 > m->cap * 3) {
        size_t ocap = m->cap, ncap = ocap ? ocap * 2 : 8;
        icount *old = m->slots;
        m->slots = calloc(ncap, sizeof(icount));
        if (!m->slots)
            abort();
        m->cap = ncap;
        for (size_t i = 0; i < ocap; i++) {
            if (!old[i].a)
                continue;
            size_t j = ptr_slot(old[i].a, ncap);
            while (m->slots[j].a)
                j = (j + 1) & (ncap - 1);
            m->slots[j] = old[i];
        }
        free(old);
    }
    if (!m->cap)
        return NULL;
    size_t i = ptr_slot(a, m->cap);
    while (m->slots[i].a) {
        if (m->slots[i].a == a)
            return &m->slots[i];
        i = (i + 1) & (m->cap - 1);
    }
    if (!create)
        return NULL;
    m->n++;
    return &m->slots[i];
}

/* Newest first; ties broken by hash so every backend orders identically. */
static inline bool before(int64_t ts_x, uint64_t h_x, int64_t ts_y, uint64_t h_y)
{
    if (ts_x != ts_y)
        return ts_x > ts_y;
    return h_x > h_y;
}

/* Inserts the sample (ts, h) into a's samples if it is new and fits; o is its occurrence (a reference
 * is taken) or NULL when known by identity only. c: change to record into, or NULL (restore). Arrays
 * grow on demand: most errors keep far fewer than samples_per_error samples. */
static bool sample_insert(merge_engine *e, magg *a, int64_t ts, uint64_t h, payload_occurrence *o,
                          merge_changeset *cs, bool is_new, merge_change **c)
{
    size_t cap = e->o.samples_per_error;
    if (a->n == cap && !before(ts, h, a->ts[a->n - 1], a->hashes[a->n - 1]))
        return false; /* older than everything kept: the common case for re-scraped samples */
    for (size_t i = 0; i < a->n; i++)
        if (a->hashes[i] == h)
            return false;
    size_t lo = 0, hi = a->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (before(a->ts[mid], a->hashes[mid], ts, h))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (cs && !*c)
        *c = change_of(cs, a, is_new);
    if (a->n == cap) {
        a->n--;
        if (*c)
            change_evicted(*c, a->hashes[a->n]);
        if (a->samples[a->n])
            payload_occurrence_unref(a->samples[a->n]);
    } else if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 4;
        if (nc > cap)
            nc = cap;
        a->samples = xrealloc(a->samples, nc * sizeof(void *));
        a->hashes = xrealloc(a->hashes, nc * sizeof(uint64_t));
        a->ts = xrealloc(a->ts, nc * sizeof(int64_t));
        a->cap = nc;
    }
    memmove(a->samples + lo + 1, a->samples + lo, (a->n - lo) * sizeof(void *));
    memmove(a->hashes + lo + 1, a->hashes + lo, (a->n - lo) * sizeof(uint64_t));
    memmove(a->ts + lo + 1, a->ts + lo, (a->n - lo) * sizeof(int64_t));
    if (o)
        payload_occurrence_ref(o);
    a->samples[lo] = o;
    a->hashes[lo] = h;
    a->ts[lo] = ts;
    a->n++;
    if (*c && o)
        change_added(*c, o);
    return true;
}

#define LABEL_ID_MASK 0x7fffffffffffffffULL

static bool labels_have(const magg *a, const labelset *ls, uint64_t h)
{
    for (size_t i = 0; i < a->n_label_ids; i++)
        if (a->label_hashes[i] == (h & LABEL_ID_MASK))
            return true;
    for (size_t i = a->n_label_ids; i < a->n_labels; i++)
        if (a->label_hashes[i] == h && labelset_equal(&a->labels[i - a->n_label_ids], ls))
            return true;
    return false;
}

/* Adds ls (hash h) to a's label sets when new and there is room. */
static bool labels_add(merge_engine *e, magg *a, const labelset *ls, uint64_t h, merge_change *c)
{
    if (a->n_labels >= e->o.labels_per_error || labels_have(a, ls, h))
        return false;
    size_t nf = a->n_labels - a->n_label_ids;
    a->labels = xrealloc(a->labels, (nf + 1) * sizeof(labelset));
    a->label_hashes = xrealloc(a->label_hashes, (a->n_labels + 1) * sizeof(uint64_t));
    labelset_copy(&a->labels[nf], ls);
    a->label_hashes[a->n_labels++] = h;
    if (c) {
        c->labels_added = grow(c->labels_added, &c->cap_labels_added, c->n_labels_added, sizeof(labelset));
        labelset_copy(&c->labels_added[c->n_labels_added++], ls);
    }
    return true;
}

/* hash_fast64 (util/hash.h): at 10,000 targets this check runs on every scrape. */
uint64_t merge_body_hash(const char *body, size_t len)
{
    return hash_fast64(body, len);
}

bool merge_body_unchanged(merge_engine *e, const char *job, const char *url, uint64_t body_hash, int64_t now_ms)
{
    msrc *s = lookup(&e->srcs, job, url);
    if (!s || !s->inst || !body_hash || s->body_hash != body_hash)
        return false;
    s->last_scrape = now_ms;
    s->inst->last_seen = now_ms;
    return true;
}

/* Whether occurrence o is new for a tombstone whose last occurrence was at last_seen. */
static inline bool newer_than(const payload_occurrence *o, int64_t last_seen)
{
    return o->timestamp_ms != PAYLOAD_TS_NONE && o->timestamp_ms > last_seen;
}

/* The instance that keeps pa's count: m itself or, for a key regrouped by error_relabel_configs, the
 * derived instance "instance_id \x1e original key", so that every original key keeps its own delta and
 * reset accounting (and is persisted like any instance count). *derived: that id (caller frees), or NULL. */
static minst *count_instance(merge_engine *e, const merge_input *in, minst *m, const char *iid,
                             const payload_aggregate *pa, char **derived)
{
    *derived = NULL;
    if (!pa->count_id)
        return m;
    size_t l = strlen(iid) + strlen(pa->count_id) + 2;
    *derived = xmalloc(l);
    snprintf(*derived, l, "%s%c%s", iid, MERGE_DERIVED_SEP, pa->count_id);
    minst *cm = minst_get(e, in->job, *derived);
    cm->last_seen = in->now_ms;
    return cm;
}

/* Folds one aggregate pa (whose count is already clamped to count) into a for instance m. Returns true
 * when the aggregate changed. */
static bool merge_one(merge_engine *e, const merge_input *in, minst *m, const char *iid, const payload_aggregate *pa,
                      uint64_t count, magg *a, bool is_new, uint64_t lhash, int64_t minute, merge_changeset *cs,
                      bool filter, int64_t only_after)
{
    merge_change *c = NULL;
    if (is_new)
        c = change_of(cs, a, true);

    char *derived;
    minst *cm = count_instance(e, in, m, iid, pa, &derived);
    const char *ciid = derived ? derived : iid;
    icount *ic = icount_find(cm, a, true);
    bool known = ic->a != NULL;
    uint64_t delta;
    if (!known)
        delta = count;
    else if (count >= ic->count)
        delta = count - ic->count;
    else
        delta = count; /* counter reset under the same instance id */
    if (!known || ic->count != count) {
        /* Coalesced: while a store is down the writer keeps merging into one change set, which
         * must stay bounded by the number of (instance, key) pairs, not grow per scrape. */
        if (known && ic->cs_gen == cs->gen && ic->cs_idx < cs->n_counts) {
            cs->counts[ic->cs_idx].count = count;
            cs->counts[ic->cs_idx].seen_ms = in->now_ms;
        } else {
            cs->counts = grow(cs->counts, &cs->cap_counts, cs->n_counts, sizeof(merge_count_change));
            merge_count_change *cc = &cs->counts[cs->n_counts];
            cc->job = xstrdup(in->job);
            cc->instance_id = xstrdup(ciid);
            cc->key = xstrdup(a->id + a->joblen + 1);
            cc->count = count;
            cc->seen_ms = in->now_ms;
            ic->cs_gen = cs->gen;
            ic->cs_idx = cs->n_counts++;
        }
    }
    ic->a = a;
    ic->count = count;
    free(derived);

    bool samples_changed = false;
    int64_t newest = PAYLOAD_TS_NONE, oldest = INT64_MAX;
    for (size_t j = 0; j < pa->n_occurrences; j++) {
        payload_occurrence *o = pa->occurrences[j];
        if (filter && !newer_than(o, only_after)) /* a resurrected error: only what came after it went */
            continue;
        if (o->timestamp_ms != PAYLOAD_TS_NONE) {
            if (o->timestamp_ms > newest)
                newest = o->timestamp_ms;
            if (o->timestamp_ms < oldest)
                oldest = o->timestamp_ms;
        }
        if (sample_insert(e, a, o->timestamp_ms, o->dedup_hash, o, cs, is_new, &c))
            samples_changed = true;
    }

    bool reported = is_new || !known || delta > 0 || samples_changed;
    bool changed = is_new || delta > 0 || samples_changed;
    if (is_new || delta > 0 || samples_changed)
        a->touched = in->now_ms;

    int64_t created = pa->created_at_ms;
    if (created != PAYLOAD_TS_NONE && created > in->now_ms + MERGE_FUTURE_SKEW_MS)
        created = in->now_ms;
    if (created == PAYLOAD_TS_NONE && oldest != INT64_MAX)
        created = oldest;
    if (created == PAYLOAD_TS_NONE && a->created == PAYLOAD_TS_NONE)
        created = in->now_ms; /* nothing better: when lookout first saw it */
    if (created != PAYLOAD_TS_NONE && (a->created == PAYLOAD_TS_NONE || created < a->created)) {
        a->created = created;
        changed = true;
    }
    if (newest > a->last_seen) {
        a->last_seen = newest;
        changed = true;
    }
    /* Severity follows the latest report that moved the key, so two instances that disagree do not
     * flip it on every scrape. */
    if (reported && a->sev != pa->severity) {
        a->sev = pa->severity;
        changed = true;
    }
    const labelset *ls = pa->labels ? pa->labels : in->labels; /* the error's own labels, if any */
    uint64_t lh = pa->labels ? labelset_hash(pa->labels) : lhash;
    if (reported && ls && a->n_labels < e->o.labels_per_error) {
        /* Only materialise a change when the set really grows. */
        if (!c && !labels_have(a, ls, lh))
            c = change_of(cs, a, is_new);
        if (labels_add(e, a, ls, lh, c))
            changed = true;
    }
    a->total = count_add(a->total, delta);
    if (!changed)
        return false;
    if (!c)
        c = change_of(cs, a, is_new);
    if (delta)
        change_series(c, minute, delta);
    change_snapshot(c, a);
    return true;
}

static void overflow_note(merge_engine *e, const char *job, size_t keys, uint64_t delta, int64_t now_ms)
{
    mjob *j = job_get(e, job);
    j->overflowed_keys += keys;
    static const char *names[] = {"job"};
    metric_family *f = metric_family_get("lookout_errors_overflowed_total", METRIC_COUNTER,
                                         "Count increase of errors beyond storage.max_errors_per_job, counted "
                                         "into the job's lookout.overflow error.",
                                         1, names);
    const char *lv[] = {job};
    metric_add(f, lv, (double)delta);
    if (j->last_log_ms && now_ms - j->last_log_ms < OVERFLOW_LOG_EVERY_MS)
        return;
    char n[32], max[32];
    snprintf(n, sizeof n, "%llu", (unsigned long long)(j->overflowed_keys - j->logged_keys));
    snprintf(max, sizeof max, "%u", e->o.max_errors_per_job);
    log_warn("merge", "job holds storage.max_errors_per_job errors; new keys are counted into " MERGE_OVERFLOW_KEY,
             "job", job, "max_errors_per_job", max, "overflowed_keys", n);
    j->last_log_ms = now_ms;
    j->logged_keys = j->overflowed_keys;
}

uint64_t merge_source_body_hash(const merge_engine *e, const char *job, const char *url)
{
    const msrc *s = lookup(&e->srcs, job, url);
    return s && s->inst ? s->body_hash : 0;
}

/* The instance is where the data came from plus the id it claims, so that nobody (a pusher, another
 * target) can pose as a scraped instance by copying its target_uuid. */
static char *instance_key(const merge_input *in)
{
    const payload_doc *doc = in->doc;
    const char *claimed = doc->instance_id && doc->instance_id[0] ? doc->instance_id : in->url;
    const char *source = in->source ? in->source : in->url;
    size_t sl = strlen(source), cl = strlen(claimed);
    char *iid = xmalloc(sl + 1 + cl + 1);
    memcpy(iid, source, sl);
    iid[sl] = MERGE_SOURCE_SEP;
    memcpy(iid + sl + 1, claimed, cl + 1);
    return iid;
}

bool merge_reuse_ok(const merge_engine *e, const merge_input *in)
{
    const payload_doc *doc = in->doc;
    const minst *m = NULL;
    char *iid = NULL;
    bool ok = true;
    for (size_t i = 0; i < doc->n_aggregates && ok; i++) {
        const payload_aggregate *pa = &doc->aggregates[i];
        if (!pa->reused)
            continue;
        if (!iid) {
            iid = instance_key(in);
            m = lookup(&e->insts, in->job, iid);
        }
        const magg *a = lookup(&e->aggs, in->job, pa->key);
        const icount *ic = m && a && !pa->count_id ? icount_find((minst *)m, a, false) : NULL;
        ok = ic && ic->count == count_clamp(pa->total_count);
    }
    free(iid);
    return ok;
}

size_t merge_apply(merge_engine *e, const merge_input *in, merge_changeset *cs)
{
    const payload_doc *doc = in->doc;
    char *iid = instance_key(in);
    minst *m = minst_get(e, in->job, iid);
    m->last_seen = in->now_ms;

    msrc *s = lookup(&e->srcs, in->job, in->url);
    if (!s) {
        s = xmalloc(sizeof(*s));
        memset(s, 0, sizeof(*s));
        s->id = mkid(in->job, in->url, &s->idlen, &s->joblen);
        keymap_put(&e->srcs, s->id, s->idlen, s);
    }
    s->body_hash = in->body_hash;
    s->last_scrape = in->now_ms;
    s->inst = m;

    uint64_t lhash = in->labels ? labelset_hash(in->labels) : 0;
    int64_t minute = in->now_ms >= 0 ? in->now_ms / 60000 : (in->now_ms - 59999) / 60000;
    size_t changed_n = 0;
    mjob *job = job_get(e, in->job);
    magg *ova = lookup(&e->aggs, in->job, MERGE_OVERFLOW_KEY);
    bool has_overflow = ova && !ova->expired;
    /* Keys beyond max_errors_per_job: one synthetic aggregate whose count is the sum of theirs. */
    payload_aggregate ov = {.key = MERGE_OVERFLOW_KEY, .severity = PAYLOAD_INFO, .created_at_ms = PAYLOAD_TS_NONE};
    uint64_t ov_count = 0;
    size_t ov_keys = 0, ov_cap = 0;
    for (size_t i = 0; i < doc->n_aggregates; i++) {
        const payload_aggregate *pa = &doc->aggregates[i];
        /* Dated beyond receive time + skew: stored at receive time, so a clock set to 9999 cannot evict
         * the present samples. The occurrence is not shared yet (the parse made it for this merge); its
         * dedup hash keeps the original time, so a re-scrape still deduplicates. */
        for (size_t k = 0; k < pa->n_occurrences; k++)
            if (pa->occurrences[k]->timestamp_ms != PAYLOAD_TS_NONE &&
                pa->occurrences[k]->timestamp_ms > in->now_ms + MERGE_FUTURE_SKEW_MS)
                pa->occurrences[k]->timestamp_ms = in->now_ms;
        uint64_t count = count_clamp(pa->total_count);
        bool over = strcmp(pa->key, MERGE_OVERFLOW_KEY) == 0;
        magg *a = over ? NULL : lookup(&e->aggs, in->job, pa->key);
        bool is_new = false, filter = false;
        int64_t only_after = 0;
        if (a && a->expired) {
            /* Deleted by retention: it stays deleted while the instance reports nothing new; an increase
             * or a newer occurrence brings it back as a new error holding only what came after. */
            char *derived;
            icount *ic = icount_find(count_instance(e, in, m, iid, pa, &derived), a, false);
            free(derived);
            uint64_t delta = !ic ? count : count >= ic->count ? count - ic->count : count;
            bool newer = false;
            for (size_t k = 0; k < pa->n_occurrences && !newer; k++)
                newer = newer_than(pa->occurrences[k], a->last_seen);
            if (!delta && !newer)
                continue;
            filter = true;
            only_after = a->last_seen;
            if (has_overflow || job->n_aggs >= e->o.max_errors_per_job) {
                /* no room: the increase goes to the overflow (the tombstone's count is the base) */
                ov_count = count_add(ov_count, delta);
                ov_keys++;
                if (pa->severity > ov.severity)
                    ov.severity = pa->severity;
                for (size_t k = 0; k < pa->n_occurrences; k++)
                    if (newer_than(pa->occurrences[k], only_after)) {
                        if (ov.n_occurrences == ov_cap) {
                            ov_cap = ov_cap ? ov_cap * 2 : 16;
                            ov.occurrences = xrealloc(ov.occurrences, ov_cap * sizeof(void *));
                        }
                        ov.occurrences[ov.n_occurrences++] = pa->occurrences[k];
                    }
                continue;
            }
            a->expired = false;
            a->last_seen = PAYLOAD_TS_NONE;
            job->n_aggs++;
            is_new = true;
        }
        if (!a && !over) {
            /* Sticky: once a job overflowed, new keys keep going there until the overflow error itself
             * expires, so a key is never counted both in the overflow and on its own. */
            if (has_overflow || job->n_aggs >= e->o.max_errors_per_job)
                over = true;
            else
                a = magg_get(e, in->job, pa->key, &is_new);
        }
        if (over) {
            ov_count = count_add(ov_count, count);
            ov_keys++;
            if (pa->severity > ov.severity)
                ov.severity = pa->severity;
            if (pa->created_at_ms != PAYLOAD_TS_NONE &&
                (ov.created_at_ms == PAYLOAD_TS_NONE || pa->created_at_ms < ov.created_at_ms))
                ov.created_at_ms = pa->created_at_ms;
            if (pa->n_occurrences) {
                if (ov.n_occurrences + pa->n_occurrences > ov_cap) {
                    while (ov.n_occurrences + pa->n_occurrences > ov_cap)
                        ov_cap = ov_cap ? ov_cap * 2 : 16;
                    ov.occurrences = xrealloc(ov.occurrences, ov_cap * sizeof(void *));
                }
                memcpy(ov.occurrences + ov.n_occurrences, pa->occurrences, pa->n_occurrences * sizeof(void *));
                ov.n_occurrences += pa->n_occurrences;
            }
            continue;
        }
        if (merge_one(e, in, m, iid, pa, count, a, is_new, lhash, minute, cs, filter, only_after))
            changed_n++;
    }
    if (ov_keys) {
        bool is_new;
        magg *a = magg_get(e, in->job, MERGE_OVERFLOW_KEY, &is_new);
        bool filter = false;
        int64_t only_after = 0;
        if (a->expired) {
            icount *ic = icount_find(m, a, false);
            uint64_t delta = !ic ? ov_count : ov_count >= ic->count ? ov_count - ic->count : ov_count;
            bool newer = false;
            for (size_t k = 0; k < ov.n_occurrences && !newer; k++)
                newer = newer_than(ov.occurrences[k], a->last_seen);
            if (!delta && !newer) {
                free(ov.occurrences);
                free(iid);
                return changed_n;
            }
            filter = true;
            only_after = a->last_seen;
            a->expired = false;
            a->last_seen = PAYLOAD_TS_NONE;
            job->n_aggs++;
            is_new = true;
        }
        uint64_t before = a->total;
        if (merge_one(e, in, m, iid, &ov, ov_count, a, is_new, lhash, minute, cs, filter, only_after))
            changed_n++;
        overflow_note(e, in->job, ov_keys, a->total - before, in->now_ms);
    }
    free(ov.occurrences);
    free(iid);
    return changed_n;
}

void merge_forget_body_hashes(merge_engine *e)
{
    for (size_t i = 0; i < e->srcs.cap; i++)
        if (e->srcs.slots[i].hash)
            ((msrc *)e->srcs.slots[i].value)->body_hash = 0;
}

void merge_forget_source(merge_engine *e, const char *job, const char *url)
{
    char *id;
    size_t len;
    id = mkid(job, url, &len, NULL);
    msrc *s = keymap_del(&e->srcs, id, len);
    free(id);
    if (s) {
        free(s->id);
        free(s);
    }
}

size_t merge_prune(merge_engine *e, int64_t now_ms)
{
    int64_t cutoff = now_ms - e->o.retention_ms;
    size_t n = 0, cap = 0;
    void **dead = NULL;
    for (size_t i = 0; i < e->srcs.cap; i++) {
        if (!e->srcs.slots[i].hash)
            continue;
        msrc *s = e->srcs.slots[i].value;
        if (s->inst && s->inst->last_seen < cutoff)
            s->inst = NULL;
        if (s->last_scrape < cutoff) {
            dead = grow(dead, &cap, n, sizeof(void *));
            dead[n++] = s;
        }
    }
    for (size_t i = 0; i < n; i++) {
        msrc *s = dead[i];
        keymap_del(&e->srcs, s->id, s->idlen);
        free(s->id);
        free(s);
    }
    n = 0;
    for (size_t i = 0; i < e->insts.cap; i++) {
        if (!e->insts.slots[i].hash)
            continue;
        minst *m = e->insts.slots[i].value;
        if (m->last_seen < cutoff) {
            /* A derived instance (regrouped key, see merge_one) lives as long as its instance: an
             * unchanged body refreshes only the instance, and forgetting the original key's count would
             * add it again. */
            const char *sep = memchr(m->id + m->joblen + 1, MERGE_DERIVED_SEP, m->idlen - m->joblen - 1);
            if (sep) {
                const minst *base = keymap_get(&e->insts, m->id, (size_t)(sep - m->id));
                if (base && base->last_seen >= cutoff) {
                    m->last_seen = base->last_seen;
                    continue;
                }
            }
            dead = grow(dead, &cap, n, sizeof(void *));
            dead[n++] = m;
        }
    }
    for (size_t i = 0; i < n; i++) {
        minst *m = dead[i];
        keymap_del(&e->insts, m->id, m->idlen);
        minst_free(m);
    }
    free(dead);
    return n;
}

/* Turns a into a tombstone: everything but its id, last_seen and the instances' counts is freed. */
static void magg_bury(magg *a)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->samples[i])
            payload_occurrence_unref(a->samples[i]);
    free(a->samples);
    free(a->hashes);
    free(a->ts);
    a->samples = NULL;
    a->hashes = NULL;
    a->ts = NULL;
    a->n = a->cap = 0;
    for (size_t i = 0; i < a->n_labels - a->n_label_ids; i++)
        labelset_free(&a->labels[i]);
    free(a->labels);
    free(a->label_hashes);
    a->labels = NULL;
    a->label_hashes = NULL;
    a->n_labels = a->n_label_ids = 0;
    a->total = 0;
    a->created = PAYLOAD_TS_NONE;
    a->sev = PAYLOAD_ERROR;
    a->expired = true;
}

size_t merge_expire(merge_engine *e, int64_t now_ms, merge_changeset *cs)
{
    int64_t cutoff = now_ms - e->o.retention_ms;
    size_t n = 0;
    for (size_t i = 0; i < e->aggs.cap; i++) {
        if (!e->aggs.slots[i].hash)
            continue;
        magg *a = e->aggs.slots[i].value;
        if (a->expired)
            continue;
        if (a->touched == INT64_MAX) /* restored without any time: the window starts now */
            a->touched = now_ms;
        if (a->touched >= cutoff)
            continue;
        /* A pending change of the aggregate leaves the change set (swap with the last entry). */
        if (a->cs_gen == cs->gen && a->cs_idx < cs->n) {
            size_t idx = a->cs_idx;
            change_free(&cs->v[idx]);
            if (idx != cs->n - 1) {
                cs->v[idx] = cs->v[cs->n - 1];
                magg *moved = lookup(&e->aggs, cs->v[idx].job, cs->v[idx].key);
                if (moved)
                    moved->cs_idx = idx;
            }
            cs->n--;
        }
        a->cs_gen = 0;
        cs->deleted = grow(cs->deleted, &cs->cap_deleted, cs->n_deleted, sizeof(merge_deleted));
        cs->deleted[cs->n_deleted].job = xstrdup(a->id);
        cs->deleted[cs->n_deleted].key = xstrdup(a->id + a->joblen + 1);
        cs->deleted[cs->n_deleted].last_seen_ms = a->last_seen;
        cs->n_deleted++;
        mjob *j = job_get(e, a->id);
        if (j->n_aggs)
            j->n_aggs--;
        magg_bury(a);
        n++;
    }
    /* Pending per-instance counts of the deleted aggregates stay in the change set: a persistent store
     * keeps them with the tombstone. */
    /* Tombstones no instance refers to any more (instances pruned) are freed. */
    size_t tomb = 0;
    for (size_t i = 0; i < e->aggs.cap; i++)
        if (e->aggs.slots[i].hash) {
            magg *a = e->aggs.slots[i].value;
            a->referenced = false;
            tomb += a->expired;
        }
    if (tomb) {
        for (size_t i = 0; i < e->insts.cap; i++) {
            if (!e->insts.slots[i].hash)
                continue;
            minst *m = e->insts.slots[i].value;
            for (size_t k = 0; k < m->cap; k++)
                if (m->slots[k].a)
                    m->slots[k].a->referenced = true;
        }
        size_t nf = 0, cap = 0;
        magg **gone = NULL;
        for (size_t i = 0; i < e->aggs.cap; i++)
            if (e->aggs.slots[i].hash) {
                magg *a = e->aggs.slots[i].value;
                if (a->expired && !a->referenced) {
                    gone = grow(gone, &cap, nf, sizeof(void *));
                    gone[nf++] = a;
                }
            }
        for (size_t k = 0; k < nf; k++) {
            keymap_del(&e->aggs, gone[k]->id, gone[k]->idlen);
            magg_free(gone[k]);
        }
        free(gone);
    }
    return n;
}

bool merge_get(const merge_engine *e, const char *job, const char *key, merge_aggregate_info *out)
{
    const magg *a = lookup(&e->aggs, job, key);
    if (!a || a->expired)
        return false;
    out->total_count = a->total;
    out->severity = a->sev;
    out->created_at_ms = a->created;
    out->last_seen_ms = a->last_seen;
    out->samples = a->samples;
    out->n_samples = a->n;
    out->labels = a->labels;
    out->n_labels = a->n_labels - a->n_label_ids;
    return true;
}

void merge_get_stats(const merge_engine *e, merge_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < e->aggs.cap; i++)
        if (e->aggs.slots[i].hash) {
            if (((const magg *)e->aggs.slots[i].value)->expired)
                out->tombstones++;
            else
                out->aggregates++;
        }
    out->instances = e->insts.n;
    out->sources = e->srcs.n;
    for (size_t i = 0; i < e->insts.cap; i++)
        if (e->insts.slots[i].hash)
            out->instance_keys += ((minst *)e->insts.slots[i].value)->n;
}

/* ---- persistence ---- */

void merge_restore_aggregate(merge_engine *e, const merge_aggregate_state *st)
{
    bool created;
    magg *a = magg_get(e, st->job, st->key, &created);
    a->total = count_clamp(st->total_count);
    a->sev = st->severity;
    a->created = st->created_at_ms;
    a->last_seen = st->last_seen_ms;
    /* Retention counts from the newest time known (occurrence times are clamped to receive time). */
    a->touched = st->last_seen_ms != PAYLOAD_TS_NONE ? st->last_seen_ms : st->created_at_ms;
    if (a->touched == PAYLOAD_TS_NONE || (st->created_at_ms != PAYLOAD_TS_NONE && st->created_at_ms > a->touched))
        a->touched = st->created_at_ms != PAYLOAD_TS_NONE ? st->created_at_ms : INT64_MAX;
    merge_change *none = NULL;
    for (size_t i = 0; i < st->n_samples; i++)
        sample_insert(e, a, st->samples[i]->timestamp_ms, st->samples[i]->dedup_hash, st->samples[i], NULL, false,
                      &none);
    for (size_t i = 0; i < st->n_sample_ids; i++)
        sample_insert(e, a, st->sample_ids[i].timestamp_ms, st->sample_ids[i].dedup_hash, NULL, NULL, false, &none);
    /* Identities go first (see the invariant at the top); only onto an aggregate without full sets. */
    if (a->n_labels == a->n_label_ids && st->n_label_ids) {
        a->label_hashes = xrealloc(a->label_hashes, (a->n_labels + st->n_label_ids) * sizeof(uint64_t));
        for (size_t i = 0; i < st->n_label_ids && a->n_labels < e->o.labels_per_error; i++) {
            uint64_t h = st->label_ids[i] & LABEL_ID_MASK;
            bool dup = false;
            for (size_t k = 0; k < a->n_labels && !dup; k++)
                dup = a->label_hashes[k] == h;
            if (!dup) {
                a->label_hashes[a->n_labels++] = h;
                a->n_label_ids++;
            }
        }
    }
    for (size_t i = 0; i < st->n_labels; i++)
        labels_add(e, a, &st->labels[i], labelset_hash(&st->labels[i]), NULL);
}

void merge_restore_tombstone(merge_engine *e, const char *job, const char *key, int64_t last_seen_ms)
{
    bool created;
    magg *a = magg_get(e, job, key, &created);
    if (!created)
        return;
    magg_bury(a);
    a->last_seen = last_seen_ms;
    mjob *j = job_get(e, job);
    if (j->n_aggs)
        j->n_aggs--;
}

void merge_snapshot(const merge_engine *e, merge_state *out)
{
    memset(out, 0, sizeof(*out));
    out->instances = xmalloc(e->insts.n * sizeof(merge_instance_state));
    for (size_t i = 0; i < e->insts.cap; i++) {
        if (!e->insts.slots[i].hash)
            continue;
        const minst *m = e->insts.slots[i].value;
        merge_instance_state *is = &out->instances[out->n_instances++];
        is->job = xstrdup(m->id);
        is->instance_id = xstrdup(m->id + m->joblen + 1);
        is->last_seen_ms = m->last_seen;
        is->counts = xmalloc(m->n * sizeof(merge_key_count));
        is->n_counts = 0;
        for (size_t k = 0; k < m->cap; k++) {
            if (!m->slots[k].a || m->slots[k].a->expired) /* a tombstone's counts die with it */
                continue;
            const magg *a = m->slots[k].a;
            is->counts[is->n_counts].key = xstrdup(a->id + a->joblen + 1);
            is->counts[is->n_counts++].count = m->slots[k].count;
        }
    }
    out->sources = xmalloc(e->srcs.n * sizeof(merge_source_state));
    for (size_t i = 0; i < e->srcs.cap; i++) {
        if (!e->srcs.slots[i].hash)
            continue;
        const msrc *s = e->srcs.slots[i].value;
        merge_source_state *ss = &out->sources[out->n_sources++];
        ss->job = xstrdup(s->id);
        ss->url = xstrdup(s->id + s->joblen + 1);
        ss->body_hash = s->body_hash;
        ss->last_scrape_ms = s->last_scrape;
        ss->instance_id = xstrdup(s->inst ? s->inst->id + s->inst->joblen + 1 : "");
    }
}

/* State written before instance ids named their source: "SOURCE\x1fID" from the source (scrape URL, or
 * "push" for push:... sources) that last reported the old id; an id no source names stays as it was
 * (it is pruned in time). Returns the id to use (malloc'd). */
static char *migrate_instance_id(const keymap *old_ids, const char *job, const char *id)
{
    if (strchr(id, MERGE_SOURCE_SEP))
        return xstrdup(id);
    const char *url = lookup(old_ids, job, id);
    if (!url)
        return xstrdup(id);
    const char *src = strncmp(url, "push:", 5) == 0 ? "push" : url;
    size_t sl = strlen(src), il = strlen(id);
    char *out = xmalloc(sl + 1 + il + 1);
    memcpy(out, src, sl);
    out[sl] = MERGE_SOURCE_SEP;
    memcpy(out + sl + 1, id, il + 1);
    return out;
}

void merge_restore(merge_engine *e, const merge_state *st)
{
    keymap old_ids = {0}; /* "job\0old instance id" -> url (borrowed from st) */
    char **old_keys = xcalloc(st->n_sources + 1, sizeof(char *));
    for (size_t i = 0; i < st->n_sources; i++) {
        const merge_source_state *ss = &st->sources[i];
        if (!ss->instance_id || !ss->instance_id[0] || strchr(ss->instance_id, MERGE_SOURCE_SEP))
            continue;
        size_t len;
        old_keys[i] = mkid(ss->job, ss->instance_id, &len, NULL);
        if (!keymap_get(&old_ids, old_keys[i], len))
            keymap_put(&old_ids, old_keys[i], len, ss->url);
    }
    for (size_t i = 0; i < st->n_instances; i++) {
        const merge_instance_state *is = &st->instances[i];
        char *id = migrate_instance_id(&old_ids, is->job, is->instance_id);
        minst *m = minst_get(e, is->job, id);
        free(id);
        m->last_seen = is->last_seen_ms;
        for (size_t k = 0; k < is->n_counts; k++) {
            magg *a = lookup(&e->aggs, is->job, is->counts[k].key);
            if (!a)
                continue;
            icount *ic = icount_find(m, a, true);
            ic->a = a;
            ic->count = count_clamp(is->counts[k].count);
        }
    }
    for (size_t i = 0; i < st->n_sources; i++) {
        const merge_source_state *ss = &st->sources[i];
        msrc *s = lookup(&e->srcs, ss->job, ss->url);
        if (!s) {
            s = xmalloc(sizeof(*s));
            memset(s, 0, sizeof(*s));
            s->id = mkid(ss->job, ss->url, &s->idlen, &s->joblen);
            keymap_put(&e->srcs, s->id, s->idlen, s);
        }
        s->body_hash = ss->body_hash;
        s->last_scrape = ss->last_scrape_ms;
        s->inst = NULL;
        if (ss->instance_id && ss->instance_id[0]) {
            char *id = migrate_instance_id(&old_ids, ss->job, ss->instance_id);
            s->inst = lookup(&e->insts, ss->job, id);
            free(id);
        }
    }
    keymap_free(&old_ids);
    for (size_t i = 0; i < st->n_sources; i++)
        free(old_keys[i]);
    free(old_keys);
}

void merge_state_free(merge_state *st)
{
    for (size_t i = 0; i < st->n_instances; i++) {
        merge_instance_state *is = &st->instances[i];
        free(is->job);
        free(is->instance_id);
        for (size_t k = 0; k < is->n_counts; k++)
            free(is->counts[k].key);
        free(is->counts);
    }
    free(st->instances);
    for (size_t i = 0; i < st->n_sources; i++) {
        free(st->sources[i].job);
        free(st->sources[i].url);
        free(st->sources[i].instance_id);
    }
    free(st->sources);
    memset(st, 0, sizeof(*st));
}
