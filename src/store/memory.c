/* store/memory: the in-memory backend. One rwlock: apply/set_status/save_state take it exclusively,
 * queries share it. Readers receive copies (occurrences by reference), so no pointer into the store
 * escapes the lock. Listing scans every aggregate (the total needs every match anyway), so the scan is
 * made cheap: what lists filter and sort on is copied into one dense array (mhot: interned job id,
 * severity, status, sort values, the full-text signature), the text filter goes through a per-aggregate
 * index (memsearch.h), and only the page is kept, in a bounded heap, rather than sorting every match.
 * A record deleted by retention (merge_deleted) leaves hot[] by a swap with the last entry. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/keymap.h"
#include "store/memsearch.h"
#include "store/store.h"
#include "util/xalloc.h"

#define DEFAULT_RETENTION_MS (14LL * 24 * 3600 * 1000)

typedef struct mrec {
    char *id; /* "job\0key" */
    size_t idlen, joblen;
    uint64_t total;
    payload_severity sev;
    int64_t created, last_seen;
    store_status status;
    uint64_t resolved_count;
    int64_t resolved_at;
    payload_occurrence **samples; /* newest first */
    size_t n, cap;
    labelset *labels;
    size_t n_labels;
    merge_series_point *series;
    size_t n_series, cap_series;
    memsearch_index ix; /* full-text over key and samples */
    uint32_t job_id;    /* interned job name (mem_store.job_names) */
    size_t hot;         /* index in mem_store.hot */
} mrec;

/* Hot copy of an mrec's list fields (hot_sync after every change). */
typedef struct mhot {
    uint64_t sig[MEMSEARCH_SIG_WORDS]; /* the index's signature */
    int64_t last_seen, created;
    uint64_t total;
    mrec *r;
    uint32_t job_id;
    uint8_t sev, status;
    bool sig_decides; /* no partial sample: a signature miss is a miss */
} mhot;

#define NO_JOB UINT32_MAX

typedef struct mem_store {
    store base;
    pthread_rwlock_t lock;
    store_options o;
    keymap recs;
    merge_state saved;
    mhot *hot; /* one per record, in creation order */
    size_t n_hot, cap_hot;
    keymap jobs; /* job name -> id + 1 (names live in job_names) */
    char **job_names;
    size_t n_jobs;
} mem_store;

static const char *rec_key(const mrec *r)
{
    return r->id + r->joblen + 1;
}

static mrec *rec_find(mem_store *m, const char *job, const char *key)
{
    size_t j = strlen(job), k = strlen(key);
    char stack[512];
    char *buf = j + k + 2 <= sizeof(stack) ? stack : xrealloc(NULL, j + k + 2);
    memcpy(buf, job, j + 1);
    memcpy(buf + j + 1, key, k + 1);
    mrec *r = keymap_get(&m->recs, buf, j + 1 + k);
    if (buf != stack)
        free(buf);
    return r;
}

static uint32_t job_lookup(const mem_store *m, const char *job)
{
    uintptr_t v = (uintptr_t)keymap_get(&m->jobs, job, strlen(job));
    return v ? (uint32_t)(v - 1) : NO_JOB;
}

static uint32_t job_intern(mem_store *m, const char *job)
{
    uint32_t id = job_lookup(m, job);
    if (id != NO_JOB)
        return id;
    m->job_names = xrealloc(m->job_names, (m->n_jobs + 1) * sizeof(char *));
    char *name = xstrdup_or_empty(job);
    m->job_names[m->n_jobs] = name;
    keymap_put(&m->jobs, name, strlen(name), (void *)(uintptr_t)(m->n_jobs + 1));
    return (uint32_t)m->n_jobs++;
}

static void hot_sync(mem_store *m, const mrec *r)
{
    mhot *h = &m->hot[r->hot];
    memcpy(h->sig, r->ix.sig, sizeof(h->sig));
    h->last_seen = r->last_seen;
    h->created = r->created;
    h->total = r->total;
    h->job_id = r->job_id;
    h->sev = (uint8_t)r->sev;
    h->status = (uint8_t)r->status;
    h->sig_decides = r->ix.partial == 0;
}

static void rec_free(mrec *r)
{
    for (size_t i = 0; i < r->n; i++)
        payload_occurrence_unref(r->samples[i]);
    free(r->samples);
    for (size_t i = 0; i < r->n_labels; i++)
        labelset_free(&r->labels[i]);
    free(r->labels);
    free(r->series);
    memsearch_free(&r->ix);
    free(r->id);
    free(r);
}

/* Same order as the merge engine: timestamp desc, then dedup hash desc. */
static bool before(const payload_occurrence *x, const payload_occurrence *y)
{
    if (x->timestamp_ms != y->timestamp_ms)
        return x->timestamp_ms > y->timestamp_ms;
    return x->dedup_hash > y->dedup_hash;
}

static void rec_apply(mem_store *m, const merge_change *c, int64_t now_ms)
{
    mrec *r = rec_find(m, c->job, c->key);
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            abort();
        size_t j = strlen(c->job), k = strlen(c->key);
        r->id = xrealloc(NULL, j + k + 2);
        memcpy(r->id, c->job, j + 1);
        memcpy(r->id + j + 1, c->key, k + 1);
        r->idlen = j + 1 + k;
        r->joblen = j;
        memsearch_init(&r->ix, c->key);
        r->job_id = job_intern(m, c->job);
        keymap_put(&m->recs, r->id, r->idlen, r);
        if (m->n_hot == m->cap_hot) {
            m->cap_hot = m->cap_hot ? m->cap_hot * 2 : 64;
            m->hot = xrealloc(m->hot, m->cap_hot * sizeof(mhot));
        }
        r->hot = m->n_hot++;
        memset(&m->hot[r->hot], 0, sizeof(mhot));
        m->hot[r->hot].r = r;
    }
    if (c->total_count > r->total)
        r->status = store_status_after(r->status, r->resolved_count, c->total_count);
    r->total = c->total_count;
    r->sev = c->severity;
    r->created = c->created_at_ms;
    r->last_seen = c->last_seen_ms;

    for (size_t i = 0; i < c->n_evicted; i++) {
        for (size_t k = 0; k < r->n; k++) {
            if (r->samples[k]->dedup_hash == c->evicted[i]) {
                memsearch_remove(&r->ix, r->samples[k]);
                payload_occurrence_unref(r->samples[k]);
                memmove(r->samples + k, r->samples + k + 1, (r->n - k - 1) * sizeof(void *));
                r->n--;
                break;
            }
        }
    }
    for (size_t i = 0; i < c->n_added; i++) {
        payload_occurrence *o = c->added[i];
        bool dup = false;
        for (size_t k = 0; k < r->n && !dup; k++)
            dup = r->samples[k]->dedup_hash == o->dedup_hash;
        if (dup)
            continue;
        if (r->n == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 8;
            r->samples = xrealloc(r->samples, r->cap * sizeof(void *));
        }
        size_t pos = 0;
        while (pos < r->n && before(r->samples[pos], o))
            pos++;
        memmove(r->samples + pos + 1, r->samples + pos, (r->n - pos) * sizeof(void *));
        payload_occurrence_ref(o);
        r->samples[pos] = o;
        r->n++;
        memsearch_add(&r->ix, o);
    }
    memsearch_compact(&r->ix, r->samples, r->n);
    if (c->n_labels_added) {
        r->labels = xrealloc(r->labels, (r->n_labels + c->n_labels_added) * sizeof(labelset));
        for (size_t i = 0; i < c->n_labels_added; i++)
            labelset_copy(&r->labels[r->n_labels++], &c->labels_added[i]);
    }
    for (size_t i = 0; i < c->n_series; i++) {
        const merge_series_point *p = &c->series[i];
        size_t k = r->n_series; /* points arrive in order: the search stops at once */
        while (k > 0 && r->series[k - 1].minute > p->minute)
            k--;
        if (k > 0 && r->series[k - 1].minute == p->minute) {
            uint64_t d = r->series[k - 1].delta;
            r->series[k - 1].delta = d > MERGE_COUNT_MAX - p->delta ? MERGE_COUNT_MAX : d + p->delta;
            continue;
        }
        if (r->n_series == r->cap_series) {
            r->cap_series = r->cap_series ? r->cap_series * 2 : 8;
            r->series = xrealloc(r->series, r->cap_series * sizeof(merge_series_point));
        }
        memmove(r->series + k + 1, r->series + k, (r->n_series - k) * sizeof(merge_series_point));
        r->series[k] = *p;
        r->n_series++;
    }
    /* retention */
    int64_t first = (now_ms - m->o.retention_ms) / 60000;
    size_t drop = 0;
    while (drop < r->n_series && r->series[drop].minute < first)
        drop++;
    if (drop) {
        memmove(r->series, r->series + drop, (r->n_series - drop) * sizeof(merge_series_point));
        r->n_series -= drop;
    }
    hot_sync(m, r);
}

/* Retention: the record and everything it owns go; its memory is returned. */
static void rec_delete(mem_store *m, const char *job, const char *key)
{
    mrec *r = rec_find(m, job, key);
    if (!r)
        return;
    keymap_del(&m->recs, r->id, r->idlen);
    size_t last = m->n_hot - 1;
    if (r->hot != last) {
        m->hot[r->hot] = m->hot[last];
        m->hot[r->hot].r->hot = r->hot;
    }
    m->n_hot--;
    rec_free(r);
}

static int mem_apply(store *s, const merge_changeset *cs, int64_t now_ms, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    mem_store *m = (mem_store *)s;
    pthread_rwlock_wrlock(&m->lock);
    for (size_t i = 0; i < cs->n_deleted; i++) /* deletions first: see merge_deleted */
        rec_delete(m, cs->deleted[i].job, cs->deleted[i].key);
    for (size_t i = 0; i < cs->n; i++)
        rec_apply(m, &cs->v[i], now_ms);
    pthread_rwlock_unlock(&m->lock);
    return 0;
}

static void summary_of(const mrec *r, store_summary *s)
{
    s->job = xstrdup_or_empty(r->id);
    s->key = xstrdup_or_empty(rec_key(r));
    s->total_count = r->total;
    s->severity = r->sev;
    s->created_at_ms = r->created;
    s->last_seen_ms = r->last_seen;
    s->status = r->status;
    s->resolved_count = r->resolved_count;
    s->resolved_at_ms = r->resolved_at;
    s->latest = r->n ? r->samples[0] : NULL;
    if (s->latest)
        payload_occurrence_ref(s->latest);
    s->n_samples = r->n;
    s->n_labels = r->n_labels;
}

static int64_t hot_sort_value(store_sort sort, const mhot *h)
{
    store_summary tmp = {.total_count = h->total, .created_at_ms = h->created, .last_seen_ms = h->last_seen};
    return store_sort_value(sort, &tmp);
}

/* The search language (query.h) prepared for one listing: text terms as memsearch queries (the positive
 * ones together, each negative one alone), job names interned. */
typedef struct mem_search {
    const store_search *s;
    memsearch_query pos;
    memsearch_query *neg; /* per term; n == 0 for terms other than negative text */
    uint32_t **jobs;      /* per JOB term: its names interned (NO_JOB when unknown) */
} mem_search;

static void mem_search_init(mem_search *ms, const mem_store *m, const store_search *s)
{
    memset(ms, 0, sizeof(*ms));
    ms->s = s && s->n ? s : NULL;
    if (!ms->s)
        return;
    const char **w = xrealloc(NULL, s->n * sizeof(char *));
    size_t nw = 0;
    ms->neg = xcalloc(s->n, sizeof(memsearch_query));
    ms->jobs = xcalloc(s->n, sizeof(uint32_t *));
    for (size_t i = 0; i < s->n; i++) {
        const store_term *t = &s->v[i];
        if (t->kind == STORE_TERM_TEXT && !t->neg)
            w[nw++] = t->value;
        else if (t->kind == STORE_TERM_TEXT)
            memsearch_query_init_words(&ms->neg[i], (const char *const *)&t->value, 1);
        else if (t->kind == STORE_TERM_JOB) {
            ms->jobs[i] = xrealloc(NULL, t->n_values * sizeof(uint32_t));
            for (size_t k = 0; k < t->n_values; k++)
                ms->jobs[i][k] = job_lookup(m, t->values[k]);
        }
    }
    memsearch_query_init_words(&ms->pos, w, nw);
    free(w);
}

static void mem_search_free(mem_search *ms)
{
    if (!ms->s)
        return;
    for (size_t i = 0; i < ms->s->n; i++) {
        memsearch_query_free(&ms->neg[i]);
        free(ms->jobs[i]);
    }
    free(ms->neg);
    free(ms->jobs);
    memsearch_query_free(&ms->pos);
}

/* One term on one record (before negation). */
static bool term_holds(const mem_search *ms, size_t i, const mhot *h)
{
    const store_term *t = &ms->s->v[i];
    const mrec *r = h->r;
    switch (t->kind) {
    case STORE_TERM_TEXT: /* negative only: positive ones are ms->pos */
        return memsearch_matches(&ms->neg[i], &r->ix, r->samples, r->n);
    case STORE_TERM_IS:
        return (t->mask >> h->status) & 1u;
    case STORE_TERM_SEVERITY:
        return (t->mask >> h->sev) & 1u;
    case STORE_TERM_JOB:
        for (size_t k = 0; k < t->n_values; k++)
            if (ms->jobs[i][k] == h->job_id)
                return true;
        return false;
    case STORE_TERM_KEY:
        return store_search_contains(rec_key(r), t->value);
    case STORE_TERM_CLASS:
        for (size_t k = 0; k < r->n; k++)
            if (store_search_contains(r->samples[k]->error.class_name, t->value))
                return true;
        return false;
    case STORE_TERM_LABEL:
        for (size_t k = 0; k < r->n_labels; k++) {
            const char *v = labelset_get(&r->labels[k], t->name);
            if (v && strcmp(v, t->value) == 0)
                return true;
        }
        return false;
    }
    return false;
}

/* The search terms on one record: the cheap hot fields first, then the record. */
static bool search_matches(const mem_search *ms, const mhot *h)
{
    if (!ms->s)
        return true;
    if (ms->pos.n && h->sig_decides && !memsearch_sig_may_match(&ms->pos, h->sig))
        return false;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < ms->s->n; i++) {
            store_term_kind k = ms->s->v[i].kind;
            bool hot = k == STORE_TERM_IS || k == STORE_TERM_SEVERITY || k == STORE_TERM_JOB;
            if (hot != (pass == 0))
                continue;
            if (term_holds(ms, i, h) == ms->s->v[i].neg)
                return false;
        }
    }
    const mrec *r = h->r;
    return memsearch_matches(&ms->pos, &r->ix, r->samples, r->n);
}

/* The filters of q on one record; job_id is q->job interned (NO_JOB: every job). */
static bool hot_matches(const mhot *h, const store_query *q, uint32_t job_id, const memsearch_query *mq,
                        const mem_search *ms)
{
    if (job_id != NO_JOB && h->job_id != job_id)
        return false;
    if (q->severity >= 0 && (int)h->sev != q->severity)
        return false;
    if (q->status >= 0 && (int)h->status != q->status)
        return false;
    if (q->status == STORE_QUERY_UNRESOLVED && h->status == STORE_RESOLVED)
        return false;
    if (mq->n && h->sig_decides && !memsearch_sig_may_match(mq, h->sig))
        return false;
    /* from here on the record itself */
    const mrec *r = h->r;
    if (q->n_labels) {
        bool any = false;
        for (size_t i = 0; i < r->n_labels && !any; i++) {
            bool all = true;
            for (size_t k = 0; k < q->n_labels && all; k++) {
                const char *v = labelset_get(&r->labels[i], q->labels[k].name);
                all = strcmp(v ? v : "", q->labels[k].value ? q->labels[k].value : "") == 0;
            }
            any = all;
        }
        if (!any)
            return false;
    }
    return memsearch_matches(mq, &r->ix, r->samples, r->n) && search_matches(ms, h);
}

typedef struct row {
    int64_t v;
    const mrec *r;
} row;

static int row_order(store_sort sort, const row *x, const row *y)
{
    if (x->v != y->v) /* the common case, without store_row_cmp's string compares */
        return x->v > y->v ? -1 : 1;
    return store_row_cmp(sort, x->v, x->r->id, rec_key(x->r), y->v, y->r->id, rec_key(y->r));
}

static int row_cmp(const void *a, const void *b, void *ctx)
{
    return row_order(*(const store_sort *)ctx, a, b);
}

/* heap[0..n) is a max-heap under row_order (the row that comes last on top). */
static void heap_down(row *heap, size_t n, size_t i, store_sort sort)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, big = i;
        if (l < n && row_order(sort, &heap[l], &heap[big]) > 0)
            big = l;
        if (r < n && row_order(sort, &heap[r], &heap[big]) > 0)
            big = r;
        if (big == i)
            return;
        row t = heap[i];
        heap[i] = heap[big];
        heap[big] = t;
        i = big;
    }
}

static void heap_up(row *heap, size_t i, store_sort sort)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (row_order(sort, &heap[i], &heap[p]) <= 0)
            return;
        row t = heap[i];
        heap[i] = heap[p];
        heap[p] = t;
        i = p;
    }
}

static int mem_list(store *s, const store_query *q, store_page *out, char *err, size_t errlen)
{
    mem_store *m = (mem_store *)s;
    memset(out, 0, sizeof(*out));
    store_cursor cur;
    size_t limit = store_list_begin(q, &cur, err, errlen);
    if (!limit)
        return -1;
    store_sort sort = q->sort;

    memsearch_query mq;
    memsearch_query_init(&mq, q->q, q->q_all_words);
    mem_search ms;

    /* The page is the first `limit` matches after the cursor: kept in a bounded heap (the worst on top)
     * instead of sorting every match; n_after counts the rest to know whether there is a next page. */
    row *heap = malloc((limit + 1) * sizeof(row));
    if (!heap)
        abort();
    size_t n = 0, n_after = 0;
    pthread_rwlock_rdlock(&m->lock);
    uint32_t job_id = q->job ? job_lookup(m, q->job) : NO_JOB;
    mem_search_init(&ms, m, q->search); /* interns job names: under the lock */
    size_t n_hot = q->job && job_id == NO_JOB ? 0 : m->n_hot; /* an unknown job matches nothing */
    for (size_t i = 0; i < n_hot; i++) {
        const mhot *h = &m->hot[i];
        if (!hot_matches(h, q, job_id, &mq, &ms))
            continue;
        out->total++;
        const mrec *r = h->r;
        row x = {hot_sort_value(sort, h), r};
        if (cur.job && store_row_cmp(sort, x.v, r->id, rec_key(r), cur.value, cur.job, cur.key) <= 0)
            continue; /* at or before the cursor */
        n_after++;
        if (n < limit) {
            heap[n] = x;
            heap_up(heap, n++, sort);
        } else if (row_order(sort, &x, &heap[0]) < 0) {
            heap[0] = x;
            heap_down(heap, n, 0, sort);
        }
    }
    qsort_r(heap, n, sizeof(row), row_cmp, &sort);
    out->v = calloc(n + 1, sizeof(store_summary));
    if (!out->v)
        abort();
    for (size_t i = 0; i < n; i++)
        summary_of(heap[i].r, &out->v[i]);
    out->n = n;
    if (n_after > n) {
        store_cursor c = {.sort = sort, .value = heap[n - 1].v, .job = (char *)heap[n - 1].r->id,
                          .key = (char *)rec_key(heap[n - 1].r)};
        out->next_cursor = store_cursor_encode(&c);
    }
    pthread_rwlock_unlock(&m->lock);
    free(heap);
    memsearch_query_free(&mq);
    mem_search_free(&ms);
    store_cursor_clear(&cur);
    return 0;
}

static int mem_keys(store *s, const char *job, int status, store_sort sort, char ***out, size_t *n_out, char *err,
                    size_t errlen)
{
    (void)err;
    (void)errlen;
    mem_store *m = (mem_store *)s;
    store_query q = {.job = job, .severity = -1, .status = status};
    memsearch_query mq;
    memsearch_query_init(&mq, NULL, false);
    mem_search ms;
    mem_search_init(&ms, m, NULL);
    pthread_rwlock_rdlock(&m->lock);
    uint32_t job_id = job_lookup(m, job);
    row *rows = NULL;
    size_t n = 0;
    if (job_id != NO_JOB) {
        rows = xrealloc(NULL, (m->n_hot + 1) * sizeof(row));
        for (size_t i = 0; i < m->n_hot; i++) {
            const mhot *h = &m->hot[i];
            if (hot_matches(h, &q, job_id, &mq, &ms))
                rows[n++] = (row){hot_sort_value(sort, h), h->r};
        }
        qsort_r(rows, n, sizeof(row), row_cmp, &sort);
    }
    char **keys = xrealloc(NULL, (n + 1) * sizeof(char *));
    for (size_t i = 0; i < n; i++)
        keys[i] = xstrdup_or_empty(rec_key(rows[i].r));
    pthread_rwlock_unlock(&m->lock);
    free(rows);
    memsearch_query_free(&mq);
    *out = keys;
    *n_out = n;
    return 0;
}

static int mem_get(store *s, const char *job, const char *key, store_detail *out, char *err, size_t errlen)
{
    mem_store *m = (mem_store *)s;
    memset(out, 0, sizeof(*out));
    pthread_rwlock_rdlock(&m->lock);
    const mrec *r = rec_find(m, job, key);
    if (!r) {
        pthread_rwlock_unlock(&m->lock);
        snprintf(err, errlen, "error \"%.100s\" not found in job \"%.100s\"", key, job);
        return STORE_NOT_FOUND;
    }
    summary_of(r, &out->s);
    out->samples = malloc((r->n + 1) * sizeof(void *));
    out->labels = malloc((r->n_labels + 1) * sizeof(labelset));
    out->series = malloc((r->n_series + 1) * sizeof(merge_series_point));
    if (!out->samples || !out->labels || !out->series)
        abort();
    for (size_t i = 0; i < r->n; i++) {
        payload_occurrence_ref(r->samples[i]);
        out->samples[i] = r->samples[i];
    }
    out->n_samples = r->n;
    for (size_t i = 0; i < r->n_labels; i++)
        labelset_copy(&out->labels[i], &r->labels[i]);
    out->n_labels = r->n_labels;
    if (r->n_series) /* series is NULL for an aggregate without increases (memcpy(NULL) is UB) */
        memcpy(out->series, r->series, r->n_series * sizeof(merge_series_point));
    out->n_series = r->n_series;
    pthread_rwlock_unlock(&m->lock);
    return 0;
}

static int mem_set_status(store *s, const char *job, const char *key, bool resolve, int64_t now_ms, char *err,
                          size_t errlen)
{
    mem_store *m = (mem_store *)s;
    pthread_rwlock_wrlock(&m->lock);
    mrec *r = rec_find(m, job, key);
    if (!r) {
        pthread_rwlock_unlock(&m->lock);
        snprintf(err, errlen, "error \"%.100s\" not found in job \"%.100s\"", key, job);
        return STORE_NOT_FOUND;
    }
    if (resolve) {
        r->status = STORE_RESOLVED;
        r->resolved_count = r->total;
        r->resolved_at = now_ms;
    } else {
        r->status = STORE_OPEN;
    }
    hot_sync(m, r);
    pthread_rwlock_unlock(&m->lock);
    return 0;
}

static int mem_jobs(store *s, store_job **out, size_t *n_out, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    mem_store *m = (mem_store *)s;
    keymap idx = KEYMAP_INIT;
    store_job *jobs = NULL;
    size_t n = 0;
    pthread_rwlock_rdlock(&m->lock);
    for (size_t i = 0; i < m->recs.cap; i++) {
        if (!m->recs.slots[i].hash)
            continue;
        const mrec *r = m->recs.slots[i].value;
        uintptr_t pos = (uintptr_t)keymap_get(&idx, r->id, r->joblen);
        if (!pos) {
            jobs = xrealloc(jobs, (n + 1) * sizeof(store_job));
            memset(&jobs[n], 0, sizeof(store_job));
            jobs[n].job = xstrdup_or_empty(r->id);
            pos = ++n;
            keymap_put(&idx, r->id, r->joblen, (void *)pos); /* r->id outlives idx (lock held) */
        }
        store_job *j = &jobs[pos - 1];
        j->aggregates++;
        if (r->status != STORE_RESOLVED)
            j->open++;
        j->total_count = j->total_count > MERGE_COUNT_MAX - r->total ? MERGE_COUNT_MAX : j->total_count + r->total;
    }
    pthread_rwlock_unlock(&m->lock);
    keymap_free(&idx);
    for (size_t i = 1; i < n; i++) /* sorted by name: stable output for the API */
        for (size_t k = i; k > 0 && strcmp(jobs[k - 1].job, jobs[k].job) > 0; k--) {
            store_job t = jobs[k];
            jobs[k] = jobs[k - 1];
            jobs[k - 1] = t;
        }
    *out = jobs;
    *n_out = n;
    return 0;
}

static void state_copy(merge_state *dst, const merge_state *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->instances = calloc(src->n_instances + 1, sizeof(merge_instance_state));
    dst->sources = calloc(src->n_sources + 1, sizeof(merge_source_state));
    if (!dst->instances || !dst->sources)
        abort();
    for (size_t i = 0; i < src->n_instances; i++) {
        const merge_instance_state *a = &src->instances[i];
        merge_instance_state *b = &dst->instances[i];
        b->job = xstrdup_or_empty(a->job);
        b->instance_id = xstrdup_or_empty(a->instance_id);
        b->last_seen_ms = a->last_seen_ms;
        b->counts = calloc(a->n_counts + 1, sizeof(merge_key_count));
        if (!b->counts)
            abort();
        for (size_t k = 0; k < a->n_counts; k++) {
            b->counts[k].key = xstrdup_or_empty(a->counts[k].key);
            b->counts[k].count = a->counts[k].count;
        }
        b->n_counts = a->n_counts;
    }
    dst->n_instances = src->n_instances;
    for (size_t i = 0; i < src->n_sources; i++) {
        const merge_source_state *a = &src->sources[i];
        merge_source_state *b = &dst->sources[i];
        b->job = xstrdup_or_empty(a->job);
        b->url = xstrdup_or_empty(a->url);
        b->body_hash = a->body_hash;
        b->last_scrape_ms = a->last_scrape_ms;
        b->instance_id = xstrdup_or_empty(a->instance_id);
    }
    dst->n_sources = src->n_sources;
}

static int mem_save_state(store *s, const merge_state *st, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    mem_store *m = (mem_store *)s;
    merge_state copy;
    state_copy(&copy, st);
    pthread_rwlock_wrlock(&m->lock);
    merge_state old = m->saved;
    m->saved = copy;
    pthread_rwlock_unlock(&m->lock);
    merge_state_free(&old);
    return 0;
}

static int mem_load(store *s, merge_engine *e, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    mem_store *m = (mem_store *)s;
    pthread_rwlock_rdlock(&m->lock);
    for (size_t i = 0; i < m->recs.cap; i++) {
        if (!m->recs.slots[i].hash)
            continue;
        const mrec *r = m->recs.slots[i].value;
        merge_aggregate_state as = {.job = r->id, .key = rec_key(r), .total_count = r->total, .severity = r->sev,
                                    .created_at_ms = r->created, .last_seen_ms = r->last_seen,
                                    .samples = r->samples, .n_samples = r->n, .labels = r->labels,
                                    .n_labels = r->n_labels};
        merge_restore_aggregate(e, &as);
    }
    merge_restore(e, &m->saved);
    pthread_rwlock_unlock(&m->lock);
    return 0;
}

static void rec_buckets(const mrec *r, int64_t since_ms, int64_t step_ms, uint64_t *out, size_t n)
{
    for (size_t i = 0; i < r->n_series; i++) {
        int64_t t = r->series[i].minute * 60000;
        if (t < since_ms)
            continue;
        int64_t b = (t - since_ms) / step_ms;
        if (b >= (int64_t)n)
            break; /* ascending minutes */
        out[b] += r->series[i].delta;
    }
}

static int mem_buckets(store *s, const char *job, const char *key, int64_t since_ms, int64_t step_ms, uint64_t *out,
                       size_t n, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    mem_store *m = (mem_store *)s;
    pthread_rwlock_rdlock(&m->lock);
    if (key) {
        const mrec *r = rec_find(m, job, key);
        if (r)
            rec_buckets(r, since_ms, step_ms, out, n);
    } else {
        size_t jl = job ? strlen(job) : 0;
        for (size_t i = 0; i < m->recs.cap; i++) {
            if (!m->recs.slots[i].hash)
                continue;
            const mrec *r = m->recs.slots[i].value;
            if (job && (r->joblen != jl || memcmp(r->id, job, jl) != 0))
                continue;
            rec_buckets(r, since_ms, step_ms, out, n);
        }
    }
    pthread_rwlock_unlock(&m->lock);
    return 0;
}

static void mem_close(store *s)
{
    mem_store *m = (mem_store *)s;
    for (size_t i = 0; i < m->recs.cap; i++)
        if (m->recs.slots[i].hash)
            rec_free(m->recs.slots[i].value);
    keymap_free(&m->recs);
    free(m->hot);
    keymap_free(&m->jobs);
    for (size_t i = 0; i < m->n_jobs; i++)
        free(m->job_names[i]);
    free(m->job_names);
    merge_state_free(&m->saved);
    pthread_rwlock_destroy(&m->lock);
    free(m);
}

static const store_ops mem_ops = {
    .name = "memory",
    .apply = mem_apply,
    .list = mem_list,
    .get = mem_get,
    .set_status = mem_set_status,
    .jobs = mem_jobs,
    .save_state = mem_save_state,
    .load = mem_load,
    .close = mem_close,
    .buckets = mem_buckets,
    .keys = mem_keys,
};

store *store_memory_new(const store_options *opts)
{
    mem_store *m = calloc(1, sizeof(*m));
    if (!m)
        abort();
    m->base.ops = &mem_ops;
    if (opts)
        m->o = *opts;
    if (m->o.retention_ms <= 0)
        m->o.retention_ms = DEFAULT_RETENTION_MS;
    pthread_rwlock_init(&m->lock, NULL);
    return &m->base;
}
