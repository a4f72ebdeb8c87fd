/* merge: see merge.h. The engine's structures and their invariants are in merge_internal.h; its
 * persistence (snapshot/restore) is in merge_persist.c, retention and the overflow log in
 * merge_retention.c. */
#include "store/merge.h"
#include "store/merge_internal.h"
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

static uint64_t next_gen = 1;

/* Grows *arr (of elem bytes) so that index n is valid. */
void *merge_grow(void *arr, size_t *cap, size_t n, size_t elem)
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
char *merge_mkid(const char *job, const char *rest, size_t *len, size_t *joblen)
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
void *merge_lookup(const keymap *m, const char *job, const char *rest)
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

void merge_change_free(merge_change *c)
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
        merge_change_free(&cs->v[i]);
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
    cs->v = merge_grow(cs->v, &cs->cap, cs->n, sizeof(merge_change));
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
    c->added = merge_grow(c->added, &c->cap_added, c->n_added, sizeof(void *));
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
    c->evicted = merge_grow(c->evicted, &c->cap_evicted, c->n_evicted, sizeof(uint64_t));
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
    c->series = merge_grow(c->series, &c->cap_series, c->n_series, sizeof(merge_series_point));
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

void merge_magg_free(magg *a)
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

void merge_minst_free(minst *m)
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
            merge_magg_free(e->aggs.slots[i].value);
    for (size_t i = 0; i < e->insts.cap; i++)
        if (e->insts.slots[i].hash)
            merge_minst_free(e->insts.slots[i].value);
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

mjob *merge_job_get(merge_engine *e, const char *job)
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

magg *merge_magg_get(merge_engine *e, const char *job, const char *key, bool *created)
{
    magg *a = merge_lookup(&e->aggs, job, key);
    *created = false;
    if (a)
        return a;
    merge_job_get(e, job)->n_aggs++;
    a = xmalloc(sizeof(*a));
    memset(a, 0, sizeof(*a));
    a->id = merge_mkid(job, key, &a->idlen, &a->joblen);
    a->sev = PAYLOAD_ERROR;
    a->created = PAYLOAD_TS_NONE;
    a->last_seen = PAYLOAD_TS_NONE;
    keymap_put(&e->aggs, a->id, a->idlen, a);
    *created = true;
    return a;
}

minst *merge_minst_get(merge_engine *e, const char *job, const char *id)
{
    minst *m = merge_lookup(&e->insts, job, id);
    if (m)
        return m;
    m = xmalloc(sizeof(*m));
    memset(m, 0, sizeof(*m));
    m->id = merge_mkid(job, id, &m->idlen, &m->joblen);
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
icount *merge_icount_find(minst *m, const magg *a, bool create)
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
bool merge_sample_insert(merge_engine *e, magg *a, int64_t ts, uint64_t h, payload_occurrence *o,
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
bool merge_labels_add(merge_engine *e, magg *a, const labelset *ls, uint64_t h, merge_change *c)
{
    if (a->n_labels >= e->o.labels_per_error || labels_have(a, ls, h))
        return false;
    size_t nf = a->n_labels - a->n_label_ids;
    a->labels = xrealloc(a->labels, (nf + 1) * sizeof(labelset));
    a->label_hashes = xrealloc(a->label_hashes, (a->n_labels + 1) * sizeof(uint64_t));
    labelset_copy(&a->labels[nf], ls);
    a->label_hashes[a->n_labels++] = h;
    if (c) {
        c->labels_added = merge_grow(c->labels_added, &c->cap_labels_added, c->n_labels_added, sizeof(labelset));
        labelset_copy(&c->labels_added[c->n_labels_added++], ls);
    }
    return true;
}

/* hash_body64 (util/hash.h): at 10,000 targets this check runs on every scrape. Its values are stored
 * (sources.body_hash); each change of the function (session 6: from hash_fast64; session 8: the SSE2
 * stripes) re-parses every source once after an upgrade. */
uint64_t merge_body_hash(const char *body, size_t len)
{
    return hash_body64(body, len);
}

bool merge_body_unchanged(merge_engine *e, const char *job, const char *url, uint64_t body_hash, int64_t now_ms)
{
    msrc *s = merge_lookup(&e->srcs, job, url);
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
    minst *cm = merge_minst_get(e, in->job, *derived);
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
    icount *ic = merge_icount_find(cm, a, true);
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
            cs->counts = merge_grow(cs->counts, &cs->cap_counts, cs->n_counts, sizeof(merge_count_change));
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
        if (o->timestamp_ms != PAYLOAD_TS_NONE && o->timestamp_ms < oldest)
            oldest = o->timestamp_ms;
        /* Only an occurrence that enters the error moves its last sighting: one already kept was counted
         * when it came (a future-dated one, re-dated to each receive time above, would otherwise make the
         * error look seen at every scrape that changes its body), one older than all kept is older than it. */
        if (merge_sample_insert(e, a, o->timestamp_ms, o->dedup_hash, o, cs, is_new, &c)) {
            samples_changed = true;
            if (o->timestamp_ms != PAYLOAD_TS_NONE && o->timestamp_ms > newest)
                newest = o->timestamp_ms;
        }
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
        if (merge_labels_add(e, a, ls, lh, c))
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

uint64_t merge_source_body_hash(const merge_engine *e, const char *job, const char *url)
{
    const msrc *s = merge_lookup(&e->srcs, job, url);
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
        if (!pa->reused && !pa->known_occurrences)
            continue;
        if (!iid) {
            iid = instance_key(in);
            m = merge_lookup(&e->insts, in->job, iid);
        }
        const magg *a = merge_lookup(&e->aggs, in->job, pa->key);
        const icount *ic = m && a && !pa->count_id ? merge_icount_find((minst *)m, a, false) : NULL;
        /* reused: the instance counts the key at that count; occurrences left out: it counts the key */
        ok = ic && (!pa->reused || ic->count == count_clamp(pa->total_count));
    }
    free(iid);
    return ok;
}

size_t merge_apply(merge_engine *e, const merge_input *in, merge_changeset *cs)
{
    const payload_doc *doc = in->doc;
    char *iid = instance_key(in);
    minst *m = merge_minst_get(e, in->job, iid);
    m->last_seen = in->now_ms;

    msrc *s = merge_lookup(&e->srcs, in->job, in->url);
    if (!s) {
        s = xmalloc(sizeof(*s));
        memset(s, 0, sizeof(*s));
        s->id = merge_mkid(in->job, in->url, &s->idlen, &s->joblen);
        keymap_put(&e->srcs, s->id, s->idlen, s);
    }
    s->body_hash = in->body_hash;
    s->last_scrape = in->now_ms;
    s->inst = m;

    uint64_t lhash = in->labels ? labelset_hash(in->labels) : 0;
    int64_t minute = in->now_ms >= 0 ? in->now_ms / 60000 : (in->now_ms - 59999) / 60000;
    size_t changed_n = 0;
    mjob *job = merge_job_get(e, in->job);
    magg *ova = merge_lookup(&e->aggs, in->job, MERGE_OVERFLOW_KEY);
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
        magg *a = over ? NULL : merge_lookup(&e->aggs, in->job, pa->key);
        bool is_new = false, filter = false;
        int64_t only_after = 0;
        if (a && a->expired) {
            /* Deleted by retention: it stays deleted while the instance reports nothing new; an increase
             * or a newer occurrence brings it back as a new error holding only what came after. */
            char *derived;
            icount *ic = merge_icount_find(count_instance(e, in, m, iid, pa, &derived), a, false);
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
                a = merge_magg_get(e, in->job, pa->key, &is_new);
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
        magg *a = merge_magg_get(e, in->job, MERGE_OVERFLOW_KEY, &is_new);
        bool filter = false;
        int64_t only_after = 0;
        if (a->expired) {
            icount *ic = merge_icount_find(m, a, false);
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
        merge_overflow_note(e, in->job, ov_keys, a->total - before, in->now_ms);
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
    id = merge_mkid(job, url, &len, NULL);
    msrc *s = keymap_del(&e->srcs, id, len);
    free(id);
    if (s) {
        free(s->id);
        free(s);
    }
}

bool merge_get(const merge_engine *e, const char *job, const char *key, merge_aggregate_info *out)
{
    const magg *a = merge_lookup(&e->aggs, job, key);
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
