/* ingest/error_relabel: see error_relabel.h. */
#include "ingest/error_relabel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

/* A regrouped key longer than this is a no-op (the client's key stays): a rule cannot inflate keys. */
#define MAX_KEY_LEN 4096

typedef struct job_rules {
    char *job;
    relabel_rule *rules;
    size_t n;
} job_rules;

struct error_relabel_set {
    atomic_int refs;
    job_rules *jobs;
    size_t n_jobs;
    job_rules push; /* job NULL */
};

static void copy_rules(job_rules *jr, const char *job, const relabel_rule *rules, size_t n)
{
    jr->job = job ? xstrdup_or_empty(job) : NULL;
    jr->rules = xcalloc(n ? n : 1, sizeof(relabel_rule));
    jr->n = n;
    for (size_t i = 0; i < n; i++)
        relabel_rule_copy(&jr->rules[i], &rules[i]);
}

static void free_rules(job_rules *jr)
{
    for (size_t i = 0; i < jr->n; i++)
        relabel_rule_free(&jr->rules[i]);
    free(jr->rules);
    free(jr->job);
}

error_relabel_set *error_relabel_set_new(const lookout_config *cfg)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_scrape_configs; i++)
        n += cfg->scrape_configs[i].n_error_relabel_configs > 0;
    if (!n && !cfg->push.n_error_relabel_configs)
        return NULL;
    error_relabel_set *s = xcalloc(1, sizeof(*s));
    atomic_init(&s->refs, 1);
    s->jobs = xcalloc(n ? n : 1, sizeof(job_rules));
    for (size_t i = 0; i < cfg->n_scrape_configs; i++) {
        const scrape_config *sc = &cfg->scrape_configs[i];
        if (sc->n_error_relabel_configs)
            copy_rules(&s->jobs[s->n_jobs++], sc->job_name, sc->error_relabel_configs, sc->n_error_relabel_configs);
    }
    if (cfg->push.n_error_relabel_configs)
        copy_rules(&s->push, NULL, cfg->push.error_relabel_configs, cfg->push.n_error_relabel_configs);
    return s;
}

error_relabel_set *error_relabel_set_ref(error_relabel_set *s)
{
    if (s)
        atomic_fetch_add(&s->refs, 1);
    return s;
}

void error_relabel_set_unref(error_relabel_set *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (size_t i = 0; i < s->n_jobs; i++)
        free_rules(&s->jobs[i]);
    free(s->jobs);
    free_rules(&s->push);
    free(s);
}

const relabel_rule *error_relabel_set_rules(const error_relabel_set *s, const char *job, bool pushed, size_t *n)
{
    *n = 0;
    if (!s)
        return NULL;
    if (pushed) {
        *n = s->push.n;
        return s->push.rules;
    }
    for (size_t i = 0; i < s->n_jobs; i++) /* a handful of jobs with rules: linear is fine */
        if (strcmp(s->jobs[i].job, job) == 0) {
            *n = s->jobs[i].n;
            return s->jobs[i].rules;
        }
    return NULL;
}

void error_relabel_input(const labelset *target, const char *key, const char *class_name, const char *message,
                         payload_severity sev, labelset *ls)
{
    labelset_init(ls);
    if (target)
        labelset_copy(ls, target);
    labelset_set(ls, "__aggregation_key__", key ? key : "");
    labelset_set(ls, "__class__", class_name ? class_name : "");
    labelset_set(ls, "__message__", message ? message : "");
    labelset_set(ls, "__severity__", payload_severity_name(sev));
}

/* The newest occurrence (latest timestamp; the last sent among equals), or NULL. */
static const payload_occurrence *newest(const payload_aggregate *a)
{
    const payload_occurrence *best = NULL;
    for (size_t i = 0; i < a->n_occurrences; i++)
        if (!best || a->occurrences[i]->timestamp_ms >= best->timestamp_ms)
            best = a->occurrences[i];
    return best;
}

static int parse_severity(const char *s, payload_severity *out)
{
    if (!strcmp(s, "info"))
        *out = PAYLOAD_INFO;
    else if (!strcmp(s, "warning"))
        *out = PAYLOAD_WARNING;
    else if (!strcmp(s, "error"))
        *out = PAYLOAD_ERROR;
    else
        return -1;
    return 0;
}

/* Applies the rules to one aggregate; false when it is dropped (by the rule at *dropped_by). */
static bool apply_one(const relabel_rule *rules, size_t n, const labelset *target, payload_aggregate *a,
                      error_relabel_result *res)
{
    const payload_occurrence *o = newest(a);
    labelset ls;
    error_relabel_input(target, a->key, o ? o->error.class_name : "", o ? o->error.message : "", a->severity, &ls);
    relabel_result r = relabel_apply(rules, n, &ls);
    if (!r.keep) {
        relabel_action act = r.dropped_by >= 0 ? rules[r.dropped_by].action : RELABEL_DROP;
        res->dropped[act]++;
        labelset_free(&ls);
        return false;
    }
    const char *key = labelset_get(&ls, "__aggregation_key__");
    if (key && key[0] && strlen(key) <= MAX_KEY_LEN && strcmp(key, a->key) != 0) {
        if (!a->count_id)
            a->count_id = a->key; /* the original key keeps the count accounting */
        else
            free(a->key);
        a->key = xstrdup_or_empty(key);
        res->regrouped++;
    }
    const char *sev = labelset_get(&ls, "__severity__");
    payload_severity ps;
    if (sev && parse_severity(sev, &ps) == 0)
        a->severity = ps;
    else
        res->invalid_severity++;
    /* the error's own labels: the result without the "__" labels, when it differs from the target's */
    for (size_t i = ls.n; i-- > 0;)
        if (ls.v[i].name[0] == '_' && ls.v[i].name[1] == '_')
            labelset_del(&ls, ls.v[i].name);
    if (!target || !labelset_equal(&ls, target)) {
        if (a->labels) {
            labelset_free(a->labels);
            free(a->labels);
        }
        a->labels = xcalloc(1, sizeof(labelset));
        *a->labels = ls;
        return true;
    }
    labelset_free(&ls);
    return true;
}

void error_relabel_doc(const relabel_rule *rules, size_t n, const labelset *target, payload_doc *doc,
                       error_relabel_result *res)
{
    memset(res, 0, sizeof(*res));
    if (!n)
        return;
    size_t w = 0;
    for (size_t i = 0; i < doc->n_aggregates; i++) {
        payload_aggregate *a = &doc->aggregates[i];
        if (apply_one(rules, n, target, a, res)) {
            if (w != i)
                doc->aggregates[w] = *a;
            w++;
        } else {
            payload_aggregate_clear(a);
        }
    }
    doc->n_aggregates = w;
}

static const char *const drop_labels[] = {"job", "reason"};
static const char *const job_label[] = {"job"};

void error_relabel_account(const char *job, const error_relabel_result *res)
{
    metric_family *dropped = metric_family_get(
        "lookout_errors_dropped_total", METRIC_COUNTER,
        "Aggregated errors removed from ingested payloads before merging, by job and reason "
        "(relabel_<action>: error_relabel_configs). Counted per ingested (changed) payload.",
        2, drop_labels);
    for (int a = 0; a <= RELABEL_UPPERCASE; a++) {
        if (!res->dropped[a])
            continue;
        char reason[48];
        snprintf(reason, sizeof reason, "relabel_%s", relabel_action_name((relabel_action)a));
        const char *lv[] = {job, reason};
        metric_add(dropped, lv, (double)res->dropped[a]);
    }
    if (res->regrouped) {
        metric_family *f = metric_family_get(
            "lookout_error_relabel_regrouped_total", METRIC_COUNTER,
            "Aggregated errors whose key error_relabel_configs changed, per ingested (changed) payload.", 1,
            job_label);
        const char *lv[] = {job};
        metric_add(f, lv, (double)res->regrouped);
    }
    if (res->invalid_severity) {
        static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
        static time_t last;
        time_t now = time(NULL);
        pthread_mutex_lock(&mu);
        bool say = now - last >= 60;
        if (say)
            last = now;
        pthread_mutex_unlock(&mu);
        if (say) {
            char n[32];
            snprintf(n, sizeof n, "%zu", res->invalid_severity);
            log_warn("ingest/error_relabel", "__severity__ is not info, warning or error; severity left unchanged",
                     "job", job, "errors", n);
        }
    }
}
