/* federate_api: see federate_api.h. */
#include "api/federate_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

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

static int render_job(store *st, const char *job, bool *first, strbuf *out, char *err, size_t errlen)
{
    char *cursor = NULL;
    int rc = 0;
    do {
        store_query q = {.job = job, .severity = -1, .status = -1, .sort = STORE_SORT_FIRST_SEEN,
                         .limit = STORE_MAX_LIMIT, .cursor = cursor};
        store_page page;
        rc = store_list(st, &q, &page, err, errlen);
        free(cursor);
        cursor = NULL;
        if (rc != 0)
            break;
        for (size_t i = 0; i < page.n && rc == 0; i++) {
            store_detail d;
            int g = store_get(st, page.v[i].job, page.v[i].key, &d, err, errlen);
            if (g == STORE_NOT_FOUND)
                continue;
            if (g != 0) {
                rc = -1;
                break;
            }
            if (!*first)
                strbuf_putc(out, ',');
            *first = false;
            write_aggregate(out, &d);
            store_detail_free(&d);
        }
        if (rc == 0 && page.next_cursor)
            cursor = strdup(page.next_cursor);
        store_page_free(&page);
    } while (rc == 0 && cursor);
    free(cursor);
    return rc;
}

int federate_render(store *st, const char *instance_id, const char *const *jobs, size_t n_jobs,
                    const char *uuid_name, strbuf *out, char *err, size_t errlen)
{
    /* Selection: sorted, deduplicated; the target_uuid is derived from it. */
    char **sel = NULL;
    size_t n = 0;
    store_job *all = NULL;
    size_t n_all = 0;
    if (n_jobs == 0) {
        if (store_jobs(st, &all, &n_all, err, errlen) != 0)
            return -1;
        sel = calloc(n_all + 1, sizeof *sel);
        for (size_t i = 0; i < n_all; i++)
            sel[n++] = all[i].job;
    } else {
        sel = calloc(n_jobs, sizeof *sel);
        for (size_t i = 0; i < n_jobs; i++)
            sel[n++] = (char *)jobs[i];
    }
    if (!sel)
        abort();
    qsort(sel, n, sizeof *sel, cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (!u || strcmp(sel[u - 1], sel[i]) != 0)
            sel[u++] = sel[i];
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
    bool first = true;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = render_job(st, sel[i], &first, out, err, errlen);
    strbuf_puts(out, "]}\n");
    free(sel);
    store_jobs_free(all, n_all);
    return rc;
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
    if (federate_render(api->st, api->instance_id, jobs, n, NULL, &resp->body, err, sizeof err) != 0) {
        log_error("web", "federation export failed", "path", req->path, "err", err);
        if (api->sx)
            selfexc_report(api->sx, "api-error", "ApiError", err, PAYLOAD_ERROR, req->method, req->path);
        api_response_text(resp, 500, "internal error\n");
        return;
    }
    resp->content_type = "application/json";
}

void federate_api_register(federate_api *api, http_server *s)
{
    http_server_route(s, "GET", "/federate/exceptions", false, h_federate, api);
}
