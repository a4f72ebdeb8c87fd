/* error_relabel_api: see error_relabel_api.h. */
#include "api/error_relabel_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/apiutil.h"
#include "api/targets_api.h"
#include "scrape/target.h"

typedef struct steps_ctx {
    strbuf *out;
    const relabel_rule *rules;
    size_t emitted;
} steps_ctx;

static void emit(steps_ctx *c, size_t i, const labelset *after, bool keep)
{
    if (c->emitted)
        strbuf_putc(c->out, ',');
    strbuf_puts(c->out, "{\"rule\":");
    targets_api_rule_json(c->out, &c->rules[i]);
    strbuf_puts(c->out, ",\"output\":");
    if (keep && after)
        labelset_write_json(c->out, after);
    else
        strbuf_puts(c->out, "{}");
    strbuf_printf(c->out, ",\"keep\":%s}", keep ? "true" : "false");
    c->emitted++;
}

static void on_step(void *ctx, size_t i, const labelset *after, bool keep)
{
    steps_ctx *c = ctx;
    while (c->emitted < i)
        emit(c, c->emitted, NULL, false);
    if (c->emitted == i)
        emit(c, i, after, keep);
}

/* The public labels of the job's target with instance label `instance` (NULL: the first one). */
static bool target_labels(target_manager *tm, const char *job, const char *instance, labelset *out)
{
    bool found = false;
    targets_read_begin(tm);
    const target_pool *p = targets_pool_find(tm, job);
    for (size_t i = 0; p && i < p->n_active && !found; i++) {
        const labelset *ls = &p->active[i]->t.labels;
        const char *inst = labelset_get(ls, "instance");
        if (!instance || (inst && strcmp(inst, instance) == 0)) {
            target_public_labels(ls, out);
            found = true;
        }
    }
    targets_read_end(tm);
    return found;
}

static void h_steps(void *ctx, const api_request *req, api_response *resp)
{
    error_relabel_api *api = ctx;
    const char *job = api_request_query(req, "job"), *key = api_request_query(req, "key");
    const char *instance = api_request_query(req, "instance"), *pushed = api_request_query(req, "pushed");
    if (!job || !*job || !key || !*key) {
        api_json_error(resp, "bad_data", "job and key parameters are required");
        return;
    }
    const char *sev_s = api_request_query(req, "severity");
    payload_severity sev = PAYLOAD_ERROR;
    if (sev_s && *sev_s && strcmp(sev_s, "info") && strcmp(sev_s, "warning") && strcmp(sev_s, "error")) {
        api_json_error(resp, "bad_data", "invalid severity (expected info, warning or error)");
        return;
    }
    bool is_push = pushed && (!strcmp(pushed, "1") || !strcmp(pushed, "true"));
    labelset target;
    labelset_init(&target);
    if (instance && *instance && !is_push && !target_labels(api->tm, job, instance, &target)) {
        char msg[600];
        snprintf(msg, sizeof msg, "no active target with instance \"%.200s\" in job \"%.200s\"", instance, job);
        api_json_error(resp, "not_found", msg);
        return;
    }
    if (!target.n && !(!is_push && target_labels(api->tm, job, NULL, &target)))
        labelset_set(&target, "job", job);
    if (is_push && instance && *instance)
        labelset_set(&target, "instance", instance);

    /* class, message and severity of the stored error of this key, unless given */
    char *cls = NULL, *msg = NULL;
    store_detail d;
    char err[512];
    if (store_get(api->st, job, key, &d, err, sizeof err) == 0) {
        if (d.s.latest) {
            cls = strdup(d.s.latest->error.class_name);
            msg = strdup(d.s.latest->error.message);
        }
        sev = d.s.severity;
        store_detail_free(&d);
    }
    const char *qc = api_request_query(req, "class"), *qm = api_request_query(req, "message");
    if (sev_s && *sev_s)
        sev = !strcmp(sev_s, "info") ? PAYLOAD_INFO : !strcmp(sev_s, "warning") ? PAYLOAD_WARNING : PAYLOAD_ERROR;

    labelset ls;
    error_relabel_input(&target, key, qc ? qc : cls ? cls : "", qm ? qm : msg ? msg : "", sev, &ls);
    free(cls);
    free(msg);
    error_relabel_set *set = ingest_error_relabel(api->in);
    size_t n;
    const relabel_rule *rules = error_relabel_set_rules(set, job, is_push, &n);
    strbuf *out = &resp->body;
    api_json_ok(resp);
    strbuf_puts(out, "{\"status\":\"success\",\"data\":{\"input\":");
    labelset_write_json(out, &ls);
    strbuf_puts(out, ",\"steps\":[");
    steps_ctx c = {out, rules, 0};
    relabel_result r = relabel_apply_steps(rules, n, &ls, on_step, &c);
    while (c.emitted < n)
        emit(&c, c.emitted, NULL, false);
    strbuf_puts(out, "],\"result\":");
    if (!r.keep) {
        strbuf_printf(out, "{\"dropped\":true,\"reason\":\"relabel_%s\"}",
                      relabel_action_name(r.dropped_by >= 0 ? rules[r.dropped_by].action : RELABEL_DROP));
    } else {
        /* what error_relabel_doc makes of it */
        const char *k = labelset_get(&ls, "__aggregation_key__"), *s = labelset_get(&ls, "__severity__");
        strbuf_puts(out, "{\"dropped\":false,\"aggregation_key\":");
        strbuf_json_string(out, k && *k ? k : key);
        strbuf_puts(out, ",\"severity\":");
        bool valid = s && (!strcmp(s, "info") || !strcmp(s, "warning") || !strcmp(s, "error"));
        strbuf_json_string(out, valid ? s : payload_severity_name(sev));
        for (size_t i = ls.n; i-- > 0;)
            if (ls.v[i].name[0] == '_' && ls.v[i].name[1] == '_')
                labelset_del(&ls, ls.v[i].name);
        strbuf_puts(out, ",\"labels\":");
        labelset_write_json(out, &ls);
        strbuf_putc(out, '}');
    }
    strbuf_puts(out, "}}");
    error_relabel_set_unref(set);
    labelset_free(&ls);
    labelset_free(&target);
}

void error_relabel_api_register(error_relabel_api *api, http_server *s)
{
    /* exact: wins over the /api/v1/errors/{job}/{key} prefix route (a key path always has two segments) */
    http_server_route(s, "GET", "/api/v1/errors/relabel_steps", false, h_steps, api);
}
