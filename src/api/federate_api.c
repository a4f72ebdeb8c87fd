/* federate_api: see federate_api.h. */
#include "api/federate_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

#define FEDERATE_MAX_JOBS 256

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends one aggregate in the client shape. */
static void write_aggregate(strbuf *sb, const store_detail *d)
{
    const store_summary *s = &d->s;
    strbuf_puts(sb, "{\"aggregation_key\":");
    strbuf_json_string(sb, s->key);
    strbuf_printf(sb, ",\"total_count\":%llu,\"severity\":", (unsigned long long)s->total_count);
    strbuf_json_string(sb, payload_severity_name(s->severity));
    if (s->created_at_ms != PAYLOAD_TS_NONE) {
        char ts[40];
        payload_format_time(s->created_at_ms, ts, sizeof ts);
        strbuf_printf(sb, ",\"created_at\":\"%s\"", ts);
    }
    strbuf_puts(sb, ",\"latest_errors\":[");
    /* Clients send oldest first; the store keeps newest first. */
    for (size_t i = d->n_samples; i-- > 0;) {
        payload_occurrence_write_json(sb, d->samples[i], PAYLOAD_SHAPE_CLIENT);
        if (i)
            strbuf_putc(sb, ',');
    }
    strbuf_puts(sb, "],\"__lookout_job__\":");
    strbuf_json_string(sb, s->job);
    strbuf_putc(sb, '}');
}

/* A dump in progress: the selection (sorted, deduplicated, copied), and the keys of the job being
 * written, read at one instant (store_keys: each error that existed throughout is listed once). */
typedef struct federate_dump {
    store *st;
    selfexc *sx; /* may be NULL: failures are then only logged */
    char **jobs;
    size_t n_jobs, job_i;
    char **keys;
    size_t n_keys, key_i;
    bool have_keys, first;
    char *path; /* for the log line of a failure while streaming */
    char err[512];
} federate_dump;

/* Bytes of aggregates produced per call of federate_fill: a page, whatever the number of errors. */
#define FEDERATE_PAGE (32u << 10)

static void dump_free(void *ctx)
{
    federate_dump *d = ctx;
    if (!d)
        return;
    for (size_t i = 0; i < d->n_jobs; i++)
        free(d->jobs[i]);
    free(d->jobs);
    store_keys_free(d->keys, d->n_keys);
    free(d->path);
    free(d);
}

/* The next page of the dump into out: 1 more follows, 0 done (the closing "]}\n" written), -1 with d->err. */
static int dump_fill(federate_dump *d, strbuf *out)
{
    size_t start = out->len;
    while (out->len - start < FEDERATE_PAGE) {
        if (!d->have_keys) {
            if (d->job_i == d->n_jobs) {
                strbuf_puts(out, "]}\n");
                return 0;
            }
            if (store_keys(d->st, d->jobs[d->job_i], -1, STORE_SORT_FIRST_SEEN, &d->keys, &d->n_keys, d->err,
                           sizeof d->err) != 0)
                return -1;
            d->have_keys = true;
            d->key_i = 0;
        }
        if (d->key_i == d->n_keys) {
            store_keys_free(d->keys, d->n_keys);
            d->keys = NULL;
            d->n_keys = 0;
            d->have_keys = false;
            d->job_i++;
            continue;
        }
        store_detail det;
        int g = store_get(d->st, d->jobs[d->job_i], d->keys[d->key_i++], &det, d->err, sizeof d->err);
        if (g == STORE_NOT_FOUND)
            continue; /* deleted meanwhile (retention) */
        if (g != 0)
            return -1;
        if (!d->first)
            strbuf_putc(out, ',');
        d->first = false;
        write_aggregate(out, &det);
        store_detail_free(&det);
    }
    return 1;
}

/* api_stream_fn over dump_fill: a failure after the headers went out can only cut the answer short. */
static int dump_stream(void *ctx, strbuf *out)
{
    federate_dump *d = ctx;
    int rc = dump_fill(d, out);
    if (rc < 0) {
        log_error("web", "federation export failed while streaming", "path", d->path, "err", d->err);
        if (d->sx)
            selfexc_report(d->sx, "api-error", "ApiError", d->err, PAYLOAD_ERROR, "GET", d->path);
    }
    return rc;
}

/* Starts a dump: its head ({"target_uuid":..., "aggregated_errors":[) into out. NULL with err when the
 * store cannot list its jobs. */
static federate_dump *dump_new(store *st, const char *instance_id, const char *const *jobs, size_t n_jobs,
                               const char *uuid_name, strbuf *out, char *err, size_t errlen)
{
    /* Selection: sorted, deduplicated; the target_uuid is derived from it. */
    char **sel = NULL;
    size_t n = 0;
    if (n_jobs == 0) {
        store_job *all = NULL;
        size_t n_all = 0;
        if (store_jobs(st, &all, &n_all, err, errlen) != 0)
            return NULL;
        sel = calloc(n_all + 1, sizeof *sel);
        if (!sel)
            abort();
        for (size_t i = 0; i < n_all; i++)
            sel[n++] = xstrdup(all[i].job);
        store_jobs_free(all, n_all);
    } else {
        sel = calloc(n_jobs, sizeof *sel);
        if (!sel)
            abort();
        for (size_t i = 0; i < n_jobs; i++)
            sel[n++] = xstrdup(jobs[i]);
    }
    qsort(sel, n, sizeof *sel, cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        if (!u || strcmp(sel[u - 1], sel[i]) != 0)
            sel[u++] = sel[i];
        else
            free(sel[i]);
    }
    n = u;

    char tu[INSTANCE_ID_LEN];
    if (uuid_name) {
        instance_id_derive(instance_id, uuid_name, tu);
    } else if (n_jobs == 0) {
        instance_id_derive(instance_id, "*", tu);
    } else {
        strbuf name;
        strbuf_init(&name);
        for (size_t i = 0; i < n; i++) {
            strbuf_puts(&name, "job:");
            strbuf_puts(&name, sel[i]);
            strbuf_putc(&name, '\n');
        }
        instance_id_derive(instance_id, name.buf ? name.buf : "", tu);
        strbuf_free(&name);
    }
    strbuf_printf(out, "{\"target_uuid\":\"%s\",\"__lookout_instance__\":", tu);
    strbuf_json_string(out, instance_id);
    strbuf_puts(out, ",\"aggregated_errors\":[");
    federate_dump *d = calloc(1, sizeof *d);
    if (!d)
        abort();
    d->st = st;
    d->jobs = sel;
    d->n_jobs = n;
    d->first = true;
    return d;
}

int federate_render(store *st, const char *instance_id, const char *const *jobs, size_t n_jobs,
                    const char *uuid_name, strbuf *out, char *err, size_t errlen)
{
    federate_dump *d = dump_new(st, instance_id, jobs, n_jobs, uuid_name, out, err, errlen);
    if (!d)
        return -1;
    int rc;
    while ((rc = dump_fill(d, out)) == 1)
        ;
    if (rc < 0)
        snprintf(err, errlen, "%s", d->err);
    dump_free(d);
    return rc < 0 ? -1 : 0;
}

int federate_respond(store *st, selfexc *sx, const char *instance_id, const char *const *jobs, size_t n_jobs,
                     const char *uuid_name, const api_request *req, api_response *resp, char *err, size_t errlen)
{
    federate_dump *d = dump_new(st, instance_id, jobs, n_jobs, uuid_name, &resp->body, err, errlen);
    if (!d)
        return -1;
    /* The first page now, while a failure can still be answered 500; the rest streamed. */
    int rc = dump_fill(d, &resp->body);
    if (rc < 0) {
        snprintf(err, errlen, "%s", d->err);
        dump_free(d);
        return -1;
    }
    resp->content_type = "application/json";
    if (rc == 0) {
        dump_free(d);
        return 0;
    }
    d->sx = sx;
    d->path = xstrdup(req->path);
    api_response_stream(resp, dump_stream, d, dump_free);
    return 0;
}

static void h_federate(void *ctx, const api_request *req, api_response *resp)
{
    federate_api *api = ctx;
    const char *jobs[FEDERATE_MAX_JOBS];
    size_t n = api_request_query_all(req, "job", jobs, FEDERATE_MAX_JOBS);
    if (n > FEDERATE_MAX_JOBS) {
        api_response_text(resp, 400, "too many job parameters (at most 256)\n");
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (!jobs[i][0]) {
            api_response_text(resp, 400, "empty job parameter\n");
            return;
        }
    char err[512];
    if (federate_respond(api->st, api->sx, api->instance_id, jobs, n, NULL, req, resp, err, sizeof err) != 0) {
        log_error("web", "federation export failed", "path", req->path, "err", err);
        if (api->sx)
            selfexc_report(api->sx, "api-error", "ApiError", err, PAYLOAD_ERROR, req->method, req->path);
        api_response_text(resp, 500, "internal error\n");
    }
}

void federate_api_register(federate_api *api, http_server *s)
{
    http_server_route(s, "GET", "/federate/exceptions", false, h_federate, api);
}
