/* errors_api: lookout's own JSON API over the store (docs/api.md). Queries map directly onto
 * store_query; sparklines and "errors in the last hour" come from store_buckets.
 *
 * `job` and `severity` are repeatable (ORed: one store query per combination, pages merged), `label` is
 * repeatable (ANDed: the store's matchers), `q` is the search language (store/query.h), ANDed with the
 * other parameters; a malformed or over-long q is the user's 400, a query over its time budget a 503
 * timeout: neither is recorded as lookout's own exception. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/apiutil.h"
#include "api/errors_api.h"

#define HOUR_MS 3600000LL
#define SPARK_HOURS 24

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void json_time(strbuf *sb, int64_t ms)
{
    if (ms == PAYLOAD_TS_NONE || ms == 0) {
        strbuf_puts(sb, "null");
        return;
    }
    char t[40];
    payload_format_time(ms, t, sizeof t);
    strbuf_json_string(sb, t);
}

static void internal_error(errors_api *api, const api_request *req, api_response *resp, const char *what,
                           const char *err)
{
    errors_api_report(api, req, what, err);
    char msg[700];
    snprintf(msg, sizeof msg, "%s: %s", what, err);
    api_json_error(resp, "internal", msg);
}

/* 24 hourly buckets ending with the current hour. */
static void sparkline(errors_api *api, const char *job, const char *key, strbuf *sb)
{
    uint64_t b[SPARK_HOURS];
    int64_t since = (now_ms() / HOUR_MS - (SPARK_HOURS - 1)) * HOUR_MS;
    char err[256];
    store_buckets(api->st, job, key, since, HOUR_MS, b, SPARK_HOURS, err, sizeof err);
    strbuf_putc(sb, '[');
    for (int i = 0; i < SPARK_HOURS; i++)
        strbuf_printf(sb, i ? ",%llu" : "%llu", (unsigned long long)b[i]);
    strbuf_putc(sb, ']');
}

/* The fields of a list entry, without the closing brace. */
static void write_entry(strbuf *sb, const store_summary *s)
{
    strbuf_puts(sb, "{\"job\":");
    strbuf_json_string(sb, s->job);
    strbuf_puts(sb, ",\"aggregation_key\":");
    strbuf_json_string(sb, s->key);
    strbuf_puts(sb, ",\"class\":");
    strbuf_json_string(sb, s->latest ? s->latest->error.class_name : "");
    strbuf_puts(sb, ",\"message\":");
    strbuf_json_string(sb, s->latest ? s->latest->error.message : "");
    strbuf_puts(sb, ",\"severity\":");
    strbuf_json_string(sb, payload_severity_name(s->severity));
    strbuf_printf(sb, ",\"total_count\":%llu,\"first_seen\":", (unsigned long long)s->total_count);
    json_time(sb, s->created_at_ms);
    strbuf_puts(sb, ",\"last_seen\":");
    json_time(sb, s->last_seen_ms);
    strbuf_puts(sb, ",\"status\":");
    strbuf_json_string(sb, store_status_name(s->status));
    strbuf_puts(sb, ",\"resolved_at\":");
    json_time(sb, s->resolved_at_ms);
    if (s->resolved_at_ms)
        strbuf_printf(sb, ",\"resolved_count\":%llu", (unsigned long long)s->resolved_count);
    else
        strbuf_puts(sb, ",\"resolved_count\":null");
}

#define MAX_VALUES 32 /* per repeatable parameter */

/* The repeatable parameters `job` and `severity` are ORed; the store filters by one value of each, so a
 * request with several runs one store query per combination (disjoint sets) and merges the pages: the
 * store's cursor is a position in the sort order, not tied to a filter, so the same cursor continues
 * every one of them. */
typedef struct list_args {
    store_query base;
    const char *jobs[MAX_VALUES];
    size_t n_jobs;
    int sevs[3];
    size_t n_sevs; /* 0: any */
    store_label_matcher labels[MAX_VALUES];
    char *label_names[MAX_VALUES];
    size_t n_labels;
    store_search search;
} list_args;

static void list_args_free(list_args *a)
{
    store_search_free(&a->search);
    for (size_t i = 0; i < a->n_labels; i++)
        free(a->label_names[i]);
}

/* Parses the query into a; on a bad parameter fills resp and returns -1. */
static int list_parse(const api_request *req, api_response *resp, list_args *a)
{
    memset(a, 0, sizeof *a);
    a->base = (store_query){.severity = -1, .status = -1, .sort = STORE_SORT_LAST_SEEN, .limit = 50};
    const char *vals[MAX_VALUES];
    size_t n = api_request_query_all(req, "job", vals, MAX_VALUES);
    if (n > MAX_VALUES) {
        api_json_error(resp, "bad_data", "too many job parameters (at most 32)");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        bool dup = !*vals[i];
        for (size_t k = 0; k < a->n_jobs && !dup; k++)
            dup = strcmp(a->jobs[k], vals[i]) == 0;
        if (!dup)
            a->jobs[a->n_jobs++] = vals[i];
    }
    const char *v = api_request_query(req, "q");
    char perr[256];
    if (store_search_parse(v, &a->search, perr, sizeof perr) != 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "invalid q: %s", perr);
        api_json_error(resp, "bad_data", msg);
        return -1;
    }
    a->base.search = &a->search;
    a->base.cursor = api_request_query(req, "cursor");
    /* severity: repeatable, and a comma-separated list is accepted too */
    n = api_request_query_all(req, "severity", vals, MAX_VALUES);
    bool seen[3] = {false, false, false};
    for (size_t i = 0; i < n && i < MAX_VALUES; i++) {
        for (const char *p = vals[i]; *p;) {
            size_t len = strcspn(p, ",");
            if (len) {
                int sev = len == 4 && !strncmp(p, "info", 4)      ? (int)PAYLOAD_INFO
                          : len == 7 && !strncmp(p, "warning", 7) ? (int)PAYLOAD_WARNING
                          : len == 5 && !strncmp(p, "error", 5)   ? (int)PAYLOAD_ERROR
                                                                  : -1;
                if (sev < 0) {
                    api_json_error(resp, "bad_data", "invalid severity (expected info, warning or error)");
                    list_args_free(a);
                    return -1;
                }
                if (!seen[sev]) {
                    seen[sev] = true;
                    a->sevs[a->n_sevs++] = sev;
                }
            }
            p += len;
            if (*p == ',')
                p++;
        }
    }
    if (a->n_sevs == 3)
        a->n_sevs = 0; /* every severity: no filter */
    v = api_request_query(req, "status");
    if (v && *v) {
        store_status st;
        if (store_status_parse(v, &st) != 0) {
            api_json_error(resp, "bad_data", "invalid status (expected open, resolved or regressed)");
            list_args_free(a);
            return -1;
        }
        a->base.status = st == STORE_OPEN ? STORE_QUERY_UNRESOLVED : (int)st;
    }
    v = api_request_query(req, "sort");
    if (v && *v && store_sort_parse(v, &a->base.sort) != 0) {
        api_json_error(resp, "bad_data", "invalid sort (expected last_seen, count or first_seen)");
        list_args_free(a);
        return -1;
    }
    v = api_request_query(req, "limit");
    if (v && *v) {
        char *end;
        long l = strtol(v, &end, 10);
        if (*end || l <= 0) {
            api_json_error(resp, "bad_data", "invalid limit (expected a positive integer)");
            list_args_free(a);
            return -1;
        }
        a->base.limit = l > STORE_MAX_LIMIT ? STORE_MAX_LIMIT : (size_t)l;
    }
    /* label: repeatable, ANDed (the store's matchers all apply to one label set) */
    n = api_request_query_all(req, "label", vals, MAX_VALUES);
    if (n > MAX_VALUES) {
        api_json_error(resp, "bad_data", "too many label parameters (at most 32)");
        list_args_free(a);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!*vals[i])
            continue;
        const char *eq = strchr(vals[i], '=');
        if (!eq || eq == vals[i]) {
            api_json_error(resp, "bad_data", "invalid label filter (expected NAME=VALUE)");
            list_args_free(a);
            return -1;
        }
        a->label_names[a->n_labels] = strndup(vals[i], (size_t)(eq - vals[i]));
        if (!a->label_names[a->n_labels])
            abort();
        a->labels[a->n_labels] = (store_label_matcher){a->label_names[a->n_labels], eq + 1};
        a->n_labels++;
    }
    a->base.labels = a->n_labels ? a->labels : NULL;
    a->base.n_labels = a->n_labels;
    return 0;
}

typedef struct list_row {
    int64_t v;
    store_summary s;
} list_row;

static int list_row_cmp(const void *x, const void *y, void *ctx)
{
    const list_row *a = x, *b = y;
    return store_row_cmp(*(const store_sort *)ctx, a->v, a->s.job, a->s.key, b->v, b->s.job, b->s.key);
}

/* Runs the query (one store query per job x severity combination) into out. */
static int list_run(errors_api *api, const list_args *a, store_page *out, char *err, size_t errlen)
{
    size_t nj = a->n_jobs ? a->n_jobs : 1, ns = a->n_sevs ? a->n_sevs : 1;
    store_query q = a->base;
    if (nj * ns == 1) {
        q.job = a->n_jobs ? a->jobs[0] : NULL;
        q.severity = a->n_sevs ? a->sevs[0] : -1;
        return store_list(api->st, &q, out, err, errlen);
    }
    memset(out, 0, sizeof *out);
    size_t limit = q.limit ? q.limit : STORE_DEFAULT_LIMIT;
    list_row *rows = NULL;
    size_t n = 0;
    bool more = false;
    for (size_t j = 0; j < nj; j++) {
        for (size_t k = 0; k < ns; k++) {
            q.job = a->n_jobs ? a->jobs[j] : NULL;
            q.severity = a->n_sevs ? a->sevs[k] : -1;
            store_page p;
            int rc = store_list(api->st, &q, &p, err, errlen);
            if (rc != 0) {
                for (size_t i = 0; i < n; i++)
                    store_summary_free(&rows[i].s);
                free(rows);
                return rc;
            }
            out->total += p.total;
            more = more || p.next_cursor;
            rows = realloc(rows, (n + p.n + 1) * sizeof *rows);
            if (!rows)
                abort();
            for (size_t i = 0; i < p.n; i++)
                rows[n++] = (list_row){store_sort_value(q.sort, &p.v[i]), p.v[i]};
            free(p.v); /* the summaries moved into rows */
            free(p.next_cursor);
        }
    }
    store_sort sort = q.sort;
    if (n)
        qsort_r(rows, n, sizeof *rows, list_row_cmp, &sort);
    size_t take = n < limit ? n : limit;
    out->v = calloc(take + 1, sizeof(store_summary));
    if (!out->v)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (i < take)
            out->v[i] = rows[i].s;
        else
            store_summary_free(&rows[i].s);
    }
    out->n = take;
    if (take && (more || n > take)) {
        store_cursor c = {.sort = sort, .value = rows[take - 1].v, .job = out->v[take - 1].job,
                          .key = out->v[take - 1].key};
        out->next_cursor = store_cursor_encode(&c);
    }
    free(rows);
    return 0;
}

static void h_list(void *ctx, const api_request *req, api_response *resp)
{
    errors_api *api = ctx;
    list_args a;
    if (list_parse(req, resp, &a) != 0)
        return;
    store_page page;
    char err[512];
    int rc = list_run(api, &a, &page, err, sizeof err);
    bool had_cursor = a.base.cursor && *a.base.cursor;
    list_args_free(&a);
    if (rc != 0) {
        if (had_cursor && strstr(err, "cursor")) {
            api_json_error(resp, "bad_data", err);
            return;
        }
        if (rc == STORE_TIMEOUT) { /* the user's query was too expensive: not lookout's fault */
            api_json_error(resp, "timeout", err);
            return;
        }
        internal_error(api, req, resp, "listing errors failed", err);
        return;
    }
    strbuf *sb = &resp->body;
    strbuf_puts(sb, "{\"status\":\"success\",\"data\":{\"errors\":[");
    for (size_t i = 0; i < page.n; i++) {
        if (i)
            strbuf_putc(sb, ',');
        write_entry(sb, &page.v[i]);
        strbuf_puts(sb, ",\"sparkline\":");
        sparkline(api, page.v[i].job, page.v[i].key, sb);
        strbuf_putc(sb, '}');
    }
    strbuf_puts(sb, "],\"next_cursor\":");
    if (page.next_cursor)
        strbuf_json_string(sb, page.next_cursor);
    else
        strbuf_puts(sb, "null");
    strbuf_printf(sb, ",\"total\":%llu}}", (unsigned long long)page.total);
    store_page_free(&page);
    api_json_ok(resp);
}

/* "/api/v1/errors/{job}/{key}[/resolve|/reopen]" -> job, key (allocated). */
static bool split(const char *path, const char *suffix, char **job, char **key)
{
    const char *p = path + strlen("/api/v1/errors/");
    const char *slash = strchr(p, '/');
    if (!slash || slash == p)
        return false;
    const char *k = slash + 1;
    size_t kl = strlen(k), sl = suffix ? strlen(suffix) : 0;
    if (sl) {
        if (kl <= sl || strcmp(k + kl - sl, suffix) != 0)
            return false;
        kl -= sl;
    }
    if (!kl)
        return false;
    *job = strndup(p, (size_t)(slash - p));
    *key = strndup(k, kl);
    if (!*job || !*key)
        abort();
    return true;
}

static void write_series(strbuf *sb, const store_detail *d, const char *resolution)
{
    bool hour;
    if (resolution && *resolution)
        hour = strcmp(resolution, "hour") == 0;
    else
        hour = d->n_series && (d->series[d->n_series - 1].minute - d->series[0].minute) * 60 > 6 * 3600;
    int64_t step = hour ? 3600 : 60;
    strbuf_printf(sb, "{\"resolution\":\"%s\",\"step_seconds\":%lld,\"start\":", hour ? "hour" : "minute",
                  (long long)step);
    json_time(sb, d->n_series ? (d->series[0].minute * 60 / step) * step * 1000 : 0);
    strbuf_puts(sb, ",\"points\":[");
    int64_t cur = INT64_MIN;
    uint64_t acc = 0;
    bool first = true;
    for (size_t i = 0; i <= d->n_series; i++) {
        int64_t t = i < d->n_series ? d->series[i].minute * 60 / step * step : INT64_MAX;
        if (t != cur && cur != INT64_MIN) {
            strbuf_printf(sb, "%s[%lld,%llu]", first ? "" : ",", (long long)cur, (unsigned long long)acc);
            first = false;
            acc = 0;
        }
        if (i < d->n_series) {
            cur = t;
            acc += d->series[i].delta;
        }
    }
    strbuf_puts(sb, "]}");
}

static void write_detail(strbuf *sb, const store_detail *d, size_t max_samples, const char *resolution)
{
    write_entry(sb, &d->s);
    strbuf_puts(sb, ",\"labels_seen\":[");
    for (size_t i = 0; i < d->n_labels; i++) {
        if (i)
            strbuf_putc(sb, ',');
        labelset_write_json(sb, &d->labels[i]);
    }
    strbuf_puts(sb, "],\"samples\":[");
    for (size_t i = 0; i < d->n_samples && i < max_samples; i++) {
        if (i)
            strbuf_putc(sb, ',');
        payload_occurrence_write_json(sb, d->samples[i], PAYLOAD_SHAPE_CLIENT);
    }
    strbuf_puts(sb, "],\"series\":");
    write_series(sb, d, resolution);
    strbuf_putc(sb, '}');
}

static void h_get(void *ctx, const api_request *req, api_response *resp)
{
    errors_api *api = ctx;
    char *job, *key;
    if (!split(req->path, NULL, &job, &key)) {
        api_json_error(resp, "not_found", "expected /api/v1/errors/{job}/{key}");
        return;
    }
    size_t max_samples = 100;
    const char *v = api_request_query(req, "samples");
    if (v && *v) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*end || n < 0) {
            api_json_error(resp, "bad_data", "invalid samples (expected a non-negative integer)");
            goto out;
        }
        max_samples = (size_t)n;
    }
    const char *res = api_request_query(req, "resolution");
    if (res && *res && strcmp(res, "minute") && strcmp(res, "hour")) {
        api_json_error(resp, "bad_data", "invalid resolution (expected minute or hour)");
        goto out;
    }
    store_detail d;
    char err[512];
    int rc = store_get(api->st, job, key, &d, err, sizeof err);
    if (rc == STORE_NOT_FOUND) {
        api_json_error(resp, "not_found", err);
    } else if (rc != 0) {
        internal_error(api, req, resp, "reading an error failed", err);
    } else {
        strbuf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
        write_detail(&resp->body, &d, max_samples, res);
        strbuf_putc(&resp->body, '}');
        store_detail_free(&d);
        api_json_ok(resp);
    }
out:
    free(job);
    free(key);
}

static void set_status(errors_api *api, const api_request *req, api_response *resp, bool resolve)
{
    char *job, *key;
    if (!split(req->path, resolve ? "/resolve" : "/reopen", &job, &key)) {
        api_json_error(resp, "not_found", "expected /api/v1/errors/{job}/{key}/resolve or /reopen");
        return;
    }
    char err[512];
    int rc = resolve ? store_resolve(api->st, job, key, now_ms(), err, sizeof err)
                     : store_reopen(api->st, job, key, err, sizeof err);
    store_detail d;
    if (rc == 0)
        rc = store_get(api->st, job, key, &d, err, sizeof err);
    if (rc == STORE_NOT_FOUND) {
        api_json_error(resp, "not_found", err);
    } else if (rc != 0) {
        internal_error(api, req, resp, resolve ? "resolving an error failed" : "reopening an error failed", err);
    } else {
        strbuf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
        write_entry(&resp->body, &d.s);
        strbuf_puts(&resp->body, "}}");
        store_detail_free(&d);
        api_json_ok(resp);
    }
    free(job);
    free(key);
}

static void h_post(void *ctx, const api_request *req, api_response *resp)
{
    size_t n = strlen(req->path);
    if (n > 8 && strcmp(req->path + n - 8, "/resolve") == 0)
        set_status(ctx, req, resp, true);
    else if (n > 7 && strcmp(req->path + n - 7, "/reopen") == 0)
        set_status(ctx, req, resp, false);
    else
        api_json_error(resp, "not_found", "expected /api/v1/errors/{job}/{key}/resolve or /reopen");
}

typedef struct job_row {
    char *job;
    uint64_t open, regressed, resolved;
    size_t up, down, unknown;
} job_row;

static job_row *row_for(job_row **rows, size_t *n, const char *job)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*rows)[i].job, job) == 0)
            return &(*rows)[i];
    *rows = realloc(*rows, (*n + 1) * sizeof(job_row));
    if (!*rows)
        abort();
    job_row *r = &(*rows)[(*n)++];
    memset(r, 0, sizeof *r);
    r->job = strdup(job);
    return r;
}

static int row_cmp(const void *a, const void *b)
{
    return strcmp(((const job_row *)a)->job, ((const job_row *)b)->job);
}

static void h_jobs(void *ctx, const api_request *req, api_response *resp)
{
    errors_api *api = ctx;
    job_row *rows = NULL;
    size_t n = 0;
    targets_read_begin(api->tm);
    for (size_t i = 0; i < targets_n_pools(api->tm); i++) {
        const target_pool *p = targets_pool_at(api->tm, i);
        job_row *r = row_for(&rows, &n, p->job);
        for (size_t k = 0; k < p->n_active; k++) {
            target_state st;
            targets_state_get(p, p->active[k], &st);
            if (st.health == TARGET_HEALTH_UP)
                r->up++;
            else if (st.health == TARGET_HEALTH_DOWN)
                r->down++;
            else
                r->unknown++;
        }
    }
    targets_read_end(api->tm);
    store_job *jobs = NULL;
    size_t nj = 0;
    char err[512];
    if (store_jobs(api->st, &jobs, &nj, err, sizeof err) != 0) {
        internal_error(api, req, resp, "listing jobs failed", err);
        goto out;
    }
    for (size_t i = 0; i < nj; i++) {
        job_row *r = row_for(&rows, &n, jobs[i].job);
        store_query q = {.job = jobs[i].job, .severity = -1, .status = STORE_REGRESSED, .limit = 1};
        store_page page;
        if (store_list(api->st, &q, &page, err, sizeof err) == 0) {
            r->regressed = page.total;
            store_page_free(&page);
        }
        r->open = jobs[i].open >= r->regressed ? jobs[i].open - r->regressed : 0;
        r->resolved = jobs[i].aggregates - jobs[i].open;
    }
    store_jobs_free(jobs, nj);
    if (n)
        qsort(rows, n, sizeof *rows, row_cmp);
    strbuf *sb = &resp->body;
    strbuf_puts(sb, "{\"status\":\"success\",\"data\":[");
    int64_t now = now_ms();
    for (size_t i = 0; i < n; i++) {
        job_row *r = &rows[i];
        uint64_t last_hour[60];
        store_buckets(api->st, r->job, NULL, now - HOUR_MS, 60000, last_hour, 60, err, sizeof err);
        uint64_t lh = 0;
        for (int k = 0; k < 60; k++)
            lh += last_hour[k];
        strbuf_puts(sb, i ? ",{\"job\":" : "{\"job\":");
        strbuf_json_string(sb, r->job);
        strbuf_printf(sb,
                      ",\"open\":%llu,\"regressed\":%llu,\"resolved\":%llu,\"errors_last_hour\":%llu,"
                      "\"targets_up\":%zu,\"targets_down\":%zu,\"targets_unknown\":%zu,\"sparkline\":",
                      (unsigned long long)r->open, (unsigned long long)r->regressed,
                      (unsigned long long)r->resolved, (unsigned long long)lh, r->up, r->down, r->unknown);
        sparkline(api, r->job, NULL, sb);
        strbuf_putc(sb, '}');
    }
    strbuf_puts(sb, "]}");
    api_json_ok(resp);
out:
    for (size_t i = 0; i < n; i++)
        free(rows[i].job);
    free(rows);
}

void errors_api_register(errors_api *api, http_server *s)
{
    http_server_route(s, "GET", "/api/v1/errors", false, h_list, api);
    http_server_route(s, "GET", "/api/v1/errors/", true, h_get, api);
    http_server_route(s, "POST", "/api/v1/errors/", true, h_post, api);
    http_server_route(s, "GET", "/api/v1/jobs", false, h_jobs, api);
}
