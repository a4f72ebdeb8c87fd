/* error_metrics: /metrics families computed from the store and the target manager at scrape time, so
 * they survive restarts with a persistent store and need no bookkeeping in the writer:
 *   lookout_error_occurrences_total{job,severity,aggregation_key}  total_count of each error (no
 *       per-instance label: bounded cardinality; severity is the error's current one)
 *   lookout_target_up{job,instance}  1 when the last scrape succeeded (and parsed), else 0
 *   lookout_errors{job,status}  errors per job that are open, regressed or resolved now (every status
 *       of every job is written, 0 included, so "regressed" panels and rules have a series to show)
 *   lookout_store_errors{job}, lookout_store_samples  store size
 * Rendering pages through the store (1000 rows a page). Per job at most storage.max_errors_per_job
 * per-error series are written (oldest first, plus lookout.overflow): the merge engine keeps a job within
 * that cap, and /metrics stays bounded even on a database filled by an older or differently configured
 * lookout. */
#include <stdlib.h>
#include <string.h>

#include "api/errors_api.h"
#include "store/merge.h"
#include "util/keymap.h"
#include "util/log.h"
#include "util/metrics.h"

/* Counts per job and status, indexed like the store_jobs array; jobs looked up through a keymap. */
typedef struct status_counts {
    uint64_t n[3]; /* STORE_OPEN, STORE_RESOLVED, STORE_REGRESSED */
} status_counts;

static void render(void *ctx, strbuf *out)
{
    errors_api *api = ctx;
    static const char *occ_names[] = {"job", "severity", "aggregation_key"};
    strbuf_puts(out, "# HELP lookout_error_occurrences_total Occurrences of each error, summed over every "
                     "instance that reported it.\n# TYPE lookout_error_occurrences_total counter\n");
    uint64_t samples = 0;
    uint32_t cap = api->max_errors_per_job ? api->max_errors_per_job : 10000;
    keymap per_job = {0}; /* job -> its jcount (which owns the key bytes) */
    typedef struct jcount {
        char *job;
        size_t n;
    } jcount;
    jcount **jcs = NULL;
    size_t n_jcs = 0;
    char *cursor = NULL;
    char err[512];
    store_job *jobs = NULL;
    size_t nj = 0;
    if (store_jobs(api->st, &jobs, &nj, err, sizeof err) != 0) {
        log_error("metrics", "reading jobs for /metrics failed", "err", err);
        jobs = NULL;
        nj = 0;
    }
    keymap job_idx = KEYMAP_INIT;
    status_counts *counts = nj ? calloc(nj, sizeof *counts) : NULL;
    for (size_t i = 0; counts && i < nj; i++)
        keymap_put(&job_idx, jobs[i].job, strlen(jobs[i].job), &counts[i]);
    for (;;) {
        store_query q = {.severity = -1, .status = -1, .sort = STORE_SORT_FIRST_SEEN, .limit = STORE_MAX_LIMIT,
                         .cursor = cursor};
        store_page page;
        int rc = store_list(api->st, &q, &page, err, sizeof err);
        free(cursor);
        cursor = NULL;
        if (rc != 0) {
            log_error("metrics", "reading errors for /metrics failed", "err", err);
            break;
        }
        for (size_t i = 0; i < page.n; i++) {
            const store_summary *s = &page.v[i];
            samples += s->n_samples;
            status_counts *c = keymap_get(&job_idx, s->job, strlen(s->job));
            if (c && (unsigned)s->status < 3)
                c->n[s->status]++;
            if (strcmp(s->key, MERGE_OVERFLOW_KEY) != 0) {
                size_t jl = strlen(s->job);
                jcount *jc = keymap_get(&per_job, s->job, jl);
                if (!jc) {
                    jcs = realloc(jcs, (n_jcs + 1) * sizeof *jcs);
                    jc = calloc(1, sizeof *jc);
                    if (!jcs || !jc || !(jc->job = strdup(s->job)))
                        abort();
                    jcs[n_jcs++] = jc;
                    keymap_put(&per_job, jc->job, jl, jc);
                }
                if (jc->n >= cap)
                    continue;
                jc->n++;
            }
            const char *vals[] = {s->job, payload_severity_name(s->severity), s->key};
            metrics_write_sample(out, "lookout_error_occurrences_total", 3, occ_names, vals, (double)s->total_count);
        }
        if (page.next_cursor)
            cursor = strdup(page.next_cursor);
        store_page_free(&page);
        if (!cursor)
            break;
    }
    keymap_free(&per_job);
    for (size_t i = 0; i < n_jcs; i++) {
        free(jcs[i]->job);
        free(jcs[i]);
    }
    free(jcs);

    static const char *job_names[] = {"job"};
    strbuf_puts(out, "# HELP lookout_store_errors Distinct errors (aggregation keys) stored per job.\n"
                     "# TYPE lookout_store_errors gauge\n");
    for (size_t i = 0; i < nj; i++) {
        const char *vals[] = {jobs[i].job};
        metrics_write_sample(out, "lookout_store_errors", 1, job_names, vals, (double)jobs[i].aggregates);
    }
    static const char *status_names[] = {"job", "status"};
    strbuf_puts(out, "# HELP lookout_errors Errors per job by status: open, regressed (resolved, then seen "
                     "again) or resolved.\n# TYPE lookout_errors gauge\n");
    static const store_status statuses[] = {STORE_OPEN, STORE_REGRESSED, STORE_RESOLVED};
    for (size_t i = 0; counts && i < nj; i++)
        for (size_t k = 0; k < 3; k++) {
            const char *vals[] = {jobs[i].job, store_status_name(statuses[k])};
            metrics_write_sample(out, "lookout_errors", 2, status_names, vals, (double)counts[i].n[statuses[k]]);
        }
    keymap_free(&job_idx);
    free(counts);
    store_jobs_free(jobs, nj);
    strbuf_puts(out, "# HELP lookout_store_samples Occurrence samples kept in the store.\n"
                     "# TYPE lookout_store_samples gauge\n");
    metrics_write_sample(out, "lookout_store_samples", 0, NULL, NULL, (double)samples);

    static const char *up_names[] = {"job", "instance"};
    strbuf_puts(out, "# HELP lookout_target_up Whether the last scrape of the target succeeded (1) or not (0).\n"
                     "# TYPE lookout_target_up gauge\n");
    targets_read_begin(api->tm);
    for (size_t i = 0; i < targets_n_pools(api->tm); i++) {
        const target_pool *p = targets_pool_at(api->tm, i);
        for (size_t k = 0; k < p->n_active; k++) {
            target_state st;
            targets_state_get(p, p->active[k], &st);
            const char *inst = labelset_get(&p->active[k]->t.labels, "instance");
            const char *vals[] = {p->job, inst ? inst : ""};
            metrics_write_sample(out, "lookout_target_up", 2, up_names, vals, st.health == TARGET_HEALTH_UP ? 1 : 0);
        }
    }
    targets_read_end(api->tm);
}

void error_metrics_register(errors_api *api)
{
    metrics_register_collector(render, api);
}

void error_metrics_unregister(errors_api *api)
{
    metrics_unregister_collector(render, api);
}
