/* periskop_api: the Periskop server's HTTP API (its api/api.go and api/api_test.go), byte-compatible with its
 * Go handlers (json.Encoder output: compact JSON plus "\n"), so the Periskop UI, the Backstage plugin and
 * existing scripts work against lookout unchanged.
 *
 * Decisions where Periskop is loose:
 * - GET /services/ lists every configured job (Periskop lists a service after its first scrape cycle,
 *   which for a configured job is immediate) plus jobs that only exist in the store; sorted.
 * - GET /services/{job}/errors/ lists open and regressed errors (resolved ones are hidden until their
 *   count rises again, where Periskop shows them again after the next scrape), newest first, each with
 *   at most 100 samples.
 * - DELETE resolves and answers 204 also for an unknown key (Periskop does); OPTIONS answers 204 without
 *   side effects (Periskop runs the delete handler for the CORS preflight too; a preflight is always
 *   followed by the DELETE).
 * - The path arrives percent-decoded from libmicrohttpd, so a key sent raw ("a/b") or encoded ("a%2Fb")
 *   is the same key: everything between "/errors/" and the final "/".
 * - CORS: Periskop answers any http://localhost:* origin (its UI's development server). lookout sends CORS
 *   headers only to origins allowed by --web.cors.origin (http/websec.c), for every endpoint; pass
 *   --web.cors.origin='http://localhost:[0-9]+' to keep the Periskop UI's development setup working. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/errors_api.h"
#include "util/log.h"
#include "util/xalloc.h"

#define PERISKOP_MAX_SAMPLES 100

static int64_t unix_s(int64_t ms)
{
    if (ms == PAYLOAD_TS_NONE)
        return 0;
    return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void errors_api_report(errors_api *api, const api_request *req, const char *what, const char *err)
{
    log_error("web", what, "path", req->path, "err", err);
    if (api->sx) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s: %s", what, err);
        selfexc_report(api->sx, "api-error", "ApiError", msg, PAYLOAD_ERROR, req->method, req->path);
    }
}

bool errors_api_job_known(errors_api *api, const char *job)
{
    targets_read_begin(api->tm);
    bool known = targets_pool_find(api->tm, job) != NULL;
    targets_read_end(api->tm);
    if (known)
        return true;
    store_job *jobs = NULL;
    size_t n = 0;
    char err[256];
    if (store_jobs(api->st, &jobs, &n, err, sizeof err) != 0)
        return false;
    for (size_t i = 0; i < n && !known; i++)
        known = strcmp(jobs[i].job, job) == 0;
    store_jobs_free(jobs, n);
    return known;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void h_services(void *ctx, const api_request *req, api_response *resp)
{
    errors_api *api = ctx;
    char **names = NULL;
    size_t n = 0, cap = 0;
    targets_read_begin(api->tm);
    size_t np = targets_n_pools(api->tm);
    for (size_t i = 0; i < np; i++) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = realloc(names, cap * sizeof *names);
            if (!names)
                abort();
        }
        names[n++] = strdup(targets_pool_at(api->tm, i)->job);
    }
    targets_read_end(api->tm);
    store_job *jobs = NULL;
    size_t nj = 0;
    char err[256];
    if (store_jobs(api->st, &jobs, &nj, err, sizeof err) != 0) {
        errors_api_report(api, req, "listing jobs failed", err);
        nj = 0;
    }
    for (size_t i = 0; i < nj; i++) {
        bool dup = false;
        for (size_t k = 0; k < n && !dup; k++)
            dup = strcmp(names[k], jobs[i].job) == 0;
        if (dup)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = realloc(names, cap * sizeof *names);
            if (!names)
                abort();
        }
        names[n++] = strdup(jobs[i].job);
    }
    store_jobs_free(jobs, nj);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    resp->content_type = "application/json";
    strbuf_putc(&resp->body, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            strbuf_putc(&resp->body, ',');
        strbuf_json_string(&resp->body, names[i]);
        free(names[i]);
    }
    free(names);
    strbuf_puts(&resp->body, "]\n");
}

/* Appends one aggregate in the Periskop server shape. */
static void write_aggregate(strbuf *sb, const store_summary *s, const store_detail *d)
{
    strbuf_puts(sb, "{\"aggregation_key\":");
    strbuf_json_string(sb, s->key);
    strbuf_printf(sb, ",\"total_count\":%llu,\"severity\":", (unsigned long long)s->total_count);
    strbuf_json_string(sb, payload_severity_name(s->severity));
    strbuf_puts(sb, ",\"latest_errors\":[");
    size_t n = d ? d->n_samples : 0;
    if (n > PERISKOP_MAX_SAMPLES)
        n = PERISKOP_MAX_SAMPLES;
    for (size_t i = 0; i < n; i++) {
        if (i)
            strbuf_putc(sb, ',');
        payload_occurrence_write_json(sb, d->samples[i], PAYLOAD_SHAPE_SERVER);
    }
    strbuf_printf(sb, "],\"created_at\":%lld}", (long long)unix_s(s->created_at_ms));
}

/* GET /services/{job}/errors/ in progress: the job's open and regressed keys, newest first, read at one
 * instant (store_keys: each error that existed throughout is listed once), written a page at a time. */
typedef struct service_dump {
    errors_api *api;
    char *job, *path;
    char **keys;
    size_t n_keys, i;
    bool started, wrote;
    char err[512];
} service_dump;

#define PERISKOP_PAGE (32u << 10)

static void service_dump_free(void *ctx)
{
    service_dump *d = ctx;
    store_keys_free(d->keys, d->n_keys);
    free(d->job);
    free(d->path);
    free(d);
}

/* The next page into out: 1 more follows, 0 done ("]\n" written), -1 with d->err. */
static int service_fill(service_dump *d, strbuf *out)
{
    size_t start = out->len;
    if (!d->started) {
        if (store_keys(d->api->st, d->job, STORE_QUERY_UNRESOLVED, STORE_SORT_LAST_SEEN, &d->keys, &d->n_keys,
                       d->err, sizeof d->err) != 0)
            return -1;
        d->started = true;
        strbuf_putc(out, '[');
    }
    while (d->i < d->n_keys && out->len - start < PERISKOP_PAGE) {
        store_detail det;
        int g = store_get(d->api->st, d->job, d->keys[d->i++], &det, d->err, sizeof d->err);
        if (g == STORE_NOT_FOUND)
            continue; /* deleted meanwhile */
        if (g != 0)
            return -1;
        if (d->wrote)
            strbuf_putc(out, ',');
        d->wrote = true;
        write_aggregate(out, &det.s, &det);
        store_detail_free(&det);
    }
    if (d->i < d->n_keys)
        return 1;
    strbuf_puts(out, "]\n");
    return 0;
}

static int service_stream(void *ctx, strbuf *out)
{
    service_dump *d = ctx;
    int rc = service_fill(d, out);
    if (rc < 0) {
        api_request req = {.method = "GET", .path = d->path};
        errors_api_report(d->api, &req, "reading errors failed while streaming", d->err);
    }
    return rc;
}

/* Splits "/services/{job}/errors/{rest}" : job into jobbuf, rest pointer. Returns false when the path
 * does not have that shape. */
static bool split_path(const char *path, char *job, size_t joblen, const char **rest)
{
    const char *p = path + strlen("/services/");
    if (strncmp(path, "/services/", 10) != 0)
        return false;
    const char *slash = strchr(p, '/');
    if (!slash || slash == p || (size_t)(slash - p) >= joblen)
        return false;
    memcpy(job, p, (size_t)(slash - p));
    job[slash - p] = 0;
    if (strncmp(slash, "/errors/", 8) != 0)
        return false;
    *rest = slash + 8;
    return true;
}

static void not_found(api_response *resp)
{
    api_response_text(resp, 404, "404 page not found\n");
}

static void h_service_get(void *ctx, const api_request *req, api_response *resp)
{
    errors_api *api = ctx;
    char job[512];
    const char *rest;
    if (!split_path(req->path, job, sizeof job, &rest) || *rest) {
        not_found(resp);
        return;
    }
    if (!errors_api_job_known(api, job)) {
        char msg[700];
        snprintf(msg, sizeof msg, "service %s not found\n", job);
        api_response_text(resp, 404, msg);
        return;
    }
    service_dump *d = xcalloc(1, sizeof *d);
    d->api = api;
    d->job = xstrdup(job);
    d->path = xstrdup(req->path);
    /* The first page now, while a failure can still be answered 500; the rest streamed (at most a page of
     * errors and the job's keys in memory, however many errors the job has). */
    int rc = service_fill(d, &resp->body);
    if (rc < 0) {
        errors_api_report(api, req, "reading errors failed", d->err);
        service_dump_free(d);
        api_response_text(resp, 500, "internal error\n");
        return;
    }
    resp->content_type = "application/json";
    if (rc == 0)
        service_dump_free(d);
    else
        api_response_stream(resp, service_stream, d, service_dump_free);
}

static void h_service_delete(void *ctx, const api_request *req, api_response *resp)
{
    errors_api *api = ctx;
    char job[512];
    const char *rest;
    size_t rl;
    if (!split_path(req->path, job, sizeof job, &rest) || (rl = strlen(rest)) == 0 || rest[rl - 1] != '/') {
        not_found(resp);
        return;
    }
    resp->status = 204;
    if (strcmp(req->method, "OPTIONS") == 0)
        return;
    char *key = strndup(rest, rl - 1);
    if (!key)
        abort();
    char err[512];
    int rc = store_resolve(api->st, job, key, now_ms(), err, sizeof err);
    if (rc == -1) {
        errors_api_report(api, req, "resolving an error failed", err);
        api_response_text(resp, 500, "internal error\n");
    }
    free(key);
}

static void h_targets(void *ctx, const api_request *req, api_response *resp)
{
    (void)req;
    errors_api *api = ctx;
    strbuf *sb = &resp->body;
    strbuf_putc(sb, '{');
    targets_read_begin(api->tm);
    size_t np = targets_n_pools(api->tm);
    for (size_t i = 0; i < np; i++) {
        const target_pool *p = targets_pool_at(api->tm, i);
        if (i)
            strbuf_putc(sb, ',');
        strbuf_json_string(sb, p->job);
        strbuf_puts(sb, ":[");
        for (size_t k = 0; k < p->n_active; k++) {
            const char *u = p->active[k]->t.url;
            const char *s = strstr(u, "://");
            if (k)
                strbuf_putc(sb, ',');
            strbuf_puts(sb, "{\"endpoint\":");
            strbuf_json_string(sb, s ? s + 3 : u);
            strbuf_putc(sb, '}');
        }
        strbuf_putc(sb, ']');
    }
    targets_read_end(api->tm);
    strbuf_puts(sb, "}\n");
    resp->content_type = "application/json";
}

static void h_health(void *ctx, const api_request *req, api_response *resp)
{
    (void)ctx;
    (void)req;
    api_response_text(resp, 200, "OK");
}

void periskop_api_register(errors_api *api, http_server *s)
{
    http_server_route(s, "GET", "/services/", false, h_services, api);
    http_server_route(s, "GET", "/services/", true, h_service_get, api);
    http_server_route(s, "DELETE", "/services/", true, h_service_delete, api);
    http_server_route(s, "OPTIONS", "/services/", true, h_service_delete, api);
    http_server_route(s, "GET", "/targets/", false, h_targets, api);
    http_server_route(s, "GET", "/-/health", false, h_health, api);
}
