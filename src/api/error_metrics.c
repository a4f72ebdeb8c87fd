/* error_metrics: /metrics families computed from the store and the target manager at scrape time, so
 * they survive restarts with a persistent store and need no bookkeeping in the writer:
 *   lookout_error_occurrences_total{job,severity,aggregation_key}  total_count of each error (no
 *       per-instance label: bounded cardinality; severity is the error's current one)
 *   lookout_target_up{job,instance}  1 when the last scrape succeeded (and parsed), else 0
 *   lookout_errors{job,status}  errors per job that are open, regressed or resolved now (every status
 *       of every job is written, 0 included, so "regressed" panels and rules have a series to show)
 *   lookout_store_errors{job}, lookout_store_samples  store size
 * Rendered a page at a time (a metrics pager: 300 rows of the store, or ~32 KiB of lookout_target_up, per
 * step of a streamed /metrics), so 18,000 errors or 20,000 targets are never one piece in memory. Per job
 * at most storage.max_errors_per_job per-error series are written (the newest first seen, plus lookout.overflow): the merge engine keeps a job within
 * that cap, and /metrics stays bounded even on a database filled by an older or differently configured
 * lookout. */
#include <stdlib.h>
#include <string.h>

#include "api/errors_api.h"
#include "store/merge.h"
#include "util/keymap.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

/* Counts per job and status, indexed like the store_jobs array; jobs looked up through a keymap. */
typedef struct status_counts {
    uint64_t n[3]; /* STORE_OPEN, STORE_RESOLVED, STORE_REGRESSED */
} status_counts;

typedef struct jcount {
    char *job;
    size_t n;
} jcount;

/* Rows of the store read per page, and the size of a page of lookout_target_up. */
#define EM_ROWS 300
#define EM_PAGE (32u << 10)

enum { EM_ERRORS = 0, EM_TAIL, EM_UP, EM_DONE };

/* A rendering between its pages: the per-error series follow the store's list cursor (as one list
 * read through would), lookout_target_up the target manager by job name and last target listed (each
 * page under its read lock). */
typedef struct em_state {
    int phase;
    char *cursor; /* the store's next page; NULL with phase EM_ERRORS: the first */
    uint64_t samples;
    uint32_t cap;
    keymap per_job; /* job -> its jcount (which owns the key bytes) */
    jcount **jcs;
    size_t n_jcs;
    store_job *jobs;
    size_t nj;
    keymap job_idx;
    status_counts *counts;
    char *job; /* lookout_target_up: the pool being written (NULL: none yet) */
    bool job_done;
    bool have_last;
    strbuf last_url;
    uint64_t last_hash;
} em_state;

static void em_free(void *ctx)
{
    em_state *e = ctx;
    if (!e)
        return;
    free(e->cursor);
    keymap_free(&e->per_job);
    for (size_t i = 0; i < e->n_jcs; i++) {
        free(e->jcs[i]->job);
        free(e->jcs[i]);
    }
    free(e->jcs);
    keymap_free(&e->job_idx);
    free(e->counts);
    store_jobs_free(e->jobs, e->nj);
    free(e->job);
    strbuf_free(&e->last_url);
    free(e);
}

static em_state *em_new(errors_api *api, strbuf *out)
{
    em_state *e = xcalloc(1, sizeof *e);
    e->cap = api->max_errors_per_job ? api->max_errors_per_job : 10000;
    e->job_idx = (keymap)KEYMAP_INIT;
    strbuf_init(&e->last_url);
    char err[512];
    if (store_jobs(api->st, &e->jobs, &e->nj, err, sizeof err) != 0) {
        log_error("metrics", "reading jobs for /metrics failed", "err", err);
        e->jobs = NULL;
        e->nj = 0;
    }
    e->counts = e->nj ? xcalloc(e->nj, sizeof *e->counts) : NULL;
    for (size_t i = 0; i < e->nj; i++)
        keymap_put(&e->job_idx, e->jobs[i].job, strlen(e->jobs[i].job), &e->counts[i]);
    strbuf_puts(out, "# HELP lookout_error_occurrences_total Occurrences of each error, summed over every "
                     "instance that reported it.\n# TYPE lookout_error_occurrences_total counter\n");
    return e;
}

/* One page of the store's errors: their series, and the counts the later families need. */
static void em_errors(errors_api *api, em_state *e, strbuf *out)
{
    static const char *occ_names[] = {"job", "severity", "aggregation_key"};
    store_query q = {.severity = -1, .status = -1, .sort = STORE_SORT_FIRST_SEEN, .limit = EM_ROWS,
                     .cursor = e->cursor};
    store_page page;
    char err[512];
    int rc = store_list(api->st, &q, &page, err, sizeof err);
    free(e->cursor);
    e->cursor = NULL;
    if (rc != 0) {
        log_error("metrics", "reading errors for /metrics failed", "err", err);
        e->phase = EM_TAIL;
        return;
    }
    for (size_t i = 0; i < page.n; i++) {
        const store_summary *s = &page.v[i];
        e->samples += s->n_samples;
        status_counts *c = keymap_get(&e->job_idx, s->job, strlen(s->job));
        if (c && (unsigned)s->status < 3)
            c->n[s->status]++;
        if (strcmp(s->key, MERGE_OVERFLOW_KEY) != 0) {
            size_t jl = strlen(s->job);
            jcount *jc = keymap_get(&e->per_job, s->job, jl);
            if (!jc) {
                e->jcs = xrealloc(e->jcs, (e->n_jcs + 1) * sizeof *e->jcs);
                jc = xcalloc(1, sizeof *jc);
                jc->job = xstrdup(s->job);
                e->jcs[e->n_jcs++] = jc;
                keymap_put(&e->per_job, jc->job, jl, jc);
            }
            if (jc->n >= e->cap)
                continue;
            jc->n++;
        }
        const char *vals[] = {s->job, payload_severity_name(s->severity), s->key};
        metrics_write_sample(out, "lookout_error_occurrences_total", 3, occ_names, vals, (double)s->total_count);
    }
    if (page.next_cursor)
        e->cursor = xstrdup(page.next_cursor);
    else
        e->phase = EM_TAIL;
    store_page_free(&page);
}

static void em_tail(em_state *e, strbuf *out)
{
    static const char *job_names[] = {"job"};
    strbuf_puts(out, "# HELP lookout_store_errors Distinct errors (aggregation keys) stored per job.\n"
                     "# TYPE lookout_store_errors gauge\n");
    for (size_t i = 0; i < e->nj; i++) {
        const char *vals[] = {e->jobs[i].job};
        metrics_write_sample(out, "lookout_store_errors", 1, job_names, vals, (double)e->jobs[i].aggregates);
    }
    static const char *status_names[] = {"job", "status"};
    strbuf_puts(out, "# HELP lookout_errors Errors per job by status: open, regressed (resolved, then seen "
                     "again) or resolved.\n# TYPE lookout_errors gauge\n");
    static const store_status statuses[] = {STORE_OPEN, STORE_REGRESSED, STORE_RESOLVED};
    for (size_t i = 0; e->counts && i < e->nj; i++)
        for (size_t k = 0; k < 3; k++) {
            const char *vals[] = {e->jobs[i].job, store_status_name(statuses[k])};
            metrics_write_sample(out, "lookout_errors", 2, status_names, vals, (double)e->counts[i].n[statuses[k]]);
        }
    strbuf_puts(out, "# HELP lookout_store_samples Occurrence samples kept in the store.\n"
                     "# TYPE lookout_store_samples gauge\n");
    metrics_write_sample(out, "lookout_store_samples", 0, NULL, NULL, (double)e->samples);
    strbuf_puts(out, "# HELP lookout_target_up Whether the last scrape of the target succeeded (1) or not (0).\n"
                     "# TYPE lookout_target_up gauge\n");
    e->phase = EM_UP;
}

/* A page of lookout_target_up: every target that exists throughout the rendering written once. */
static void em_up(errors_api *api, em_state *e, strbuf *out)
{
    static const char *up_names[] = {"job", "instance"};
    size_t start = out->len;
    targets_read_begin(api->tm);
    while (out->len - start < EM_PAGE) {
        size_t np = targets_n_pools(api->tm), i = 0;
        if (e->job) {
            i = targets_pool_lower_bound(api->tm, e->job);
            if (i < np && e->job_done && strcmp(targets_pool_at(api->tm, i)->job, e->job) == 0)
                i++;
        }
        if (i == np) {
            e->phase = EM_DONE;
            break;
        }
        const target_pool *p = targets_pool_at(api->tm, i);
        if (!e->job || strcmp(p->job, e->job) != 0) { /* a new pool (or ours went away) */
            free(e->job);
            e->job = xstrdup(p->job);
            e->job_done = false;
            e->have_last = false;
        }
        size_t k = e->have_last ? targets_active_after(p, e->last_url.buf, e->last_hash) : 0;
        const active_target *last = NULL;
        for (; k < p->n_active && out->len - start < EM_PAGE; k++) {
            last = p->active[k];
            target_state st;
            targets_state_get(p, last, &st);
            const char *inst = labelset_get(&last->t.labels, "instance");
            const char *vals[] = {p->job, inst ? inst : ""};
            metrics_write_sample(out, "lookout_target_up", 2, up_names, vals, st.health == TARGET_HEALTH_UP ? 1 : 0);
        }
        if (last) {
            strbuf_reset(&e->last_url);
            strbuf_puts(&e->last_url, last->t.url);
            e->last_hash = last->t.hash;
            e->have_last = true;
        }
        if (k >= p->n_active)
            e->job_done = true;
    }
    targets_read_end(api->tm);
}

static int pager(void *ctx, void **state, strbuf *out)
{
    errors_api *api = ctx;
    em_state *e = *state;
    if (!e)
        *state = e = em_new(api, out);
    switch (e->phase) {
    case EM_ERRORS:
        em_errors(api, e, out);
        break;
    case EM_TAIL:
        em_tail(e, out);
        break;
    default:
        em_up(api, e, out);
        break;
    }
    if (e->phase != EM_DONE)
        return 1;
    em_free(e);
    *state = NULL;
    return 0;
}

void error_metrics_register(errors_api *api)
{
    metrics_register_pager(pager, em_free, api);
}

void error_metrics_unregister(errors_api *api)
{
    metrics_unregister_pager(pager, api);
}
