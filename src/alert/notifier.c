/* alert/notifier: see notifier.h. */
#include "alert/notifier.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/client.h"
#include "labels/relabel.h"
#include "periskop/payload.h"
#include "sd/sd.h"
#include "util/keymap.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/path.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#define MAX_PAGES 20 /* at most 20,000 active alerts per evaluation */
#define PAGE 1000
#define RETRIES 2

typedef struct am_target {
    char *url; /* {__scheme__}://{__address__}{__alerts_path__} after the set's relabel_configs */
    http_client_config http;
    int64_t timeout_ms;
} am_target;

/* One element of alerting.alertmanagers: its own discovery ("config-N" in the notifier's discovery
 * manager, as Prometheus names them) and the Alertmanagers discovered for it. */
typedef struct am_set {
    char *scheme;      /* initial __scheme__ */
    char *alerts_path; /* initial __alerts_path__: path.Join("/", path_prefix, "/api/v2/alerts") */
    http_client_config http;
    int64_t timeout_ms;
    relabel_rule *rules; /* relabel_configs: applied to the discovered Alertmanagers (owned copies) */
    size_t n_rules;
    am_target *active; /* discovered and kept, deduplicated by URL */
    size_t n_active;
    size_t n_dropped;
} am_set;

/* alerting.alert_relabel_configs, shared by the evaluator while a reload may replace it. */
typedef struct rules_ref {
    relabel_rule *v;
    size_t n;
    int refs; /* under notifier.mu */
} rules_ref;

typedef struct alert_state {
    char *id; /* "alertname\0job\0key" */
    size_t idlen;
    labelset labels; /* the alert's labels (with external labels) before alert_relabel_configs */
    char *link;
    int64_t starts_ms;
    int64_t last_sent_ms;
    uint64_t gen; /* the evaluation that last saw it active */
} alert_state;

struct notifier {
    store *st;
    notifier_options o;
    char *external_url;

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cond;
    bool stop, started;
    /* configuration (notifier_apply_config) and discovery (on_sync) */
    am_set *sets;
    size_t n_sets;
    rules_ref *alert_rules;
    sd_manager *sd; /* discovers the Alertmanagers of every set; its own thread calls on_sync */
    int64_t resolve_after_ms, eval_ms;
    int min_severity;
    labelset external;
    /* queue: ring of alert JSON objects */
    char **q;
    size_t q_head, q_n, q_cap;

    keymap alerts; /* evaluator thread only */
    uint64_t gen;
    pthread_t eval_thread, send_thread;
};

static const char *const am_label[] = {"alertmanager"};

static metric_family *m_sent(void)
{
    return metric_family_get("lookout_notifications_sent_total", METRIC_COUNTER,
                             "Total number of alerts sent.", 1, am_label);
}
static metric_family *m_errors(void)
{
    return metric_family_get("lookout_notifications_errors_total", METRIC_COUNTER,
                             "Total number of sent alerts affected by errors.", 1, am_label);
}
static metric_family *m_dropped(void)
{
    return metric_family_get("lookout_notifications_dropped_total", METRIC_COUNTER,
                             "Total number of alerts dropped due to errors when sending to Alertmanager.", 0, NULL);
}
static metric_family *m_queue_len(void)
{
    return metric_family_get("lookout_notifications_queue_length", METRIC_GAUGE,
                             "The number of alert notifications in the queue.", 0, NULL);
}
static metric_family *m_queue_cap(void)
{
    return metric_family_get("lookout_notifications_queue_capacity", METRIC_GAUGE,
                             "The capacity of the alert notifications queue.", 0, NULL);
}
static metric_family *m_discovered(void)
{
    return metric_family_get("lookout_notifications_alertmanagers_discovered", METRIC_GAUGE,
                             "The number of alertmanagers discovered and active.", 0, NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits on n->cond (n->mu held) until ms from now or a signal. */
static void wait_ms(notifier *n, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&n->cond, &n->mu, &ts);
}

/* ---- configuration ---- */

static void free_ams(am_target *ams, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(ams[i].url);
        http_client_config_release(&ams[i].http);
    }
    free(ams);
}

static void free_sets(am_set *sets, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(sets[i].scheme);
        free(sets[i].alerts_path);
        http_client_config_release(&sets[i].http);
        for (size_t k = 0; k < sets[i].n_rules; k++)
            relabel_rule_free(&sets[i].rules[k]);
        free(sets[i].rules);
        free_ams(sets[i].active, sets[i].n_active);
    }
    free(sets);
}

static relabel_rule *copy_rules(const relabel_rule *src, size_t n)
{
    relabel_rule *v = xcalloc(n ? n : 1, sizeof(relabel_rule));
    for (size_t i = 0; i < n; i++)
        relabel_rule_copy(&v[i], &src[i]);
    return v;
}

/* Releases one reference (n->mu held by the caller); the last one frees. */
static void rules_unref(rules_ref *r)
{
    if (!r || --r->refs > 0)
        return;
    for (size_t i = 0; i < r->n; i++)
        relabel_rule_free(&r->v[i]);
    free(r->v);
    free(r);
}

static size_t count_active(const notifier *n)
{
    size_t c = 0;
    for (size_t i = 0; i < n->n_sets; i++)
        c += n->sets[i].n_active;
    return c;
}

char *notifier_alerts_path(const char *path_prefix)
{
    char *p1 = path_join("/", path_prefix ? path_prefix : "");
    char *p = path_join(p1, "/api/v2/alerts");
    free(p1);
    return p;
}

int notifier_group_urls(const char *scheme, const char *alerts_path, const relabel_rule *rules, size_t n_rules,
                        const target_group *g, char ***urls, size_t *n_urls, size_t *dropped, char *err,
                        size_t errlen)
{
    size_t first = *n_urls;
    for (size_t t = 0; t < g->n_targets; t++) {
        labelset ls;
        label_view gl = target_group_labels(g);
        label_view_copy(&ls, &gl);
        labelset_merge(&ls, &g->targets[t]);
        labelset_set_default(&ls, "__scheme__", scheme);
        labelset_set_default(&ls, "__alerts_path__", alerts_path);
        if (!relabel_apply(rules, n_rules, &ls).keep) {
            (*dropped)++;
            labelset_free(&ls);
            continue;
        }
        const char *addr = labelset_get(&ls, "__address__");
        if (addr && strchr(addr, '/')) {
            snprintf(err, errlen, "\"%.500s\" is not a valid hostname", addr);
            labelset_free(&ls);
            for (size_t i = first; i < *n_urls; i++) /* the whole group fails */
                free((*urls)[i]);
            *n_urls = first;
            return -1;
        }
        const char *sch = labelset_get(&ls, "__scheme__"), *path = labelset_get(&ls, "__alerts_path__");
        strbuf sb;
        strbuf_init(&sb);
        strbuf_printf(&sb, "%s://%s%s", sch ? sch : "", addr ? addr : "", path ? path : "");
        labelset_free(&ls);
        char *url = strbuf_detach(&sb, NULL);
        bool seen = false;
        for (size_t i = 0; i < *n_urls && !seen; i++)
            seen = strcmp((*urls)[i], url) == 0;
        if (seen) {
            free(url);
            continue;
        }
        *urls = xrealloc(*urls, (*n_urls + 1) * sizeof(char *));
        (*urls)[(*n_urls)++] = url;
    }
    return 0;
}

/* The set's Alertmanagers from its complete group set (n->mu held). A group whose __address__ is not a
 * host fails alone, logged as Prometheus does. */
static void sync_set(am_set *set, const target_group *const *groups, size_t n_groups, const char *job)
{
    char **urls = NULL;
    size_t n = 0, dropped = 0;
    for (size_t g = 0; g < n_groups; g++) {
        char err[600];
        if (notifier_group_urls(set->scheme, set->alerts_path, set->rules, set->n_rules, groups[g], &urls, &n,
                                &dropped, err, sizeof err) != 0)
            log_error("alert", "Creating discovered Alertmanagers failed", "config", job, "err", err);
    }
    am_target *ams = xcalloc(n ? n : 1, sizeof(am_target));
    for (size_t i = 0; i < n; i++) {
        ams[i].url = urls[i];
        http_client_config_copy(&ams[i].http, &set->http);
        ams[i].timeout_ms = set->timeout_ms;
    }
    free(urls);
    free_ams(set->active, set->n_active);
    set->active = ams;
    set->n_active = n;
    set->n_dropped = dropped;
}

/* The discovery manager's callback: the complete group set of "config-N" (its own thread). */
static void on_sync(void *ctx, const char *job, const target_group *const *groups, size_t n_groups)
{
    notifier *n = ctx;
    char *end = NULL;
    if (strncmp(job, "config-", 7) != 0)
        return;
    unsigned long idx = strtoul(job + 7, &end, 10);
    if (!end || *end)
        return;
    pthread_mutex_lock(&n->mu);
    if (idx < n->n_sets) {
        sync_set(&n->sets[idx], groups, n_groups, job);
        metric_set(m_discovered(), NULL, (double)count_active(n));
    }
    pthread_mutex_unlock(&n->mu);
}

notifier *notifier_new(store *st, const notifier_options *o)
{
    notifier *n = xcalloc(1, sizeof(*n));
    n->st = st;
    if (o)
        n->o = *o;
    if (n->o.resend_delay_ms <= 0)
        n->o.resend_delay_ms = NOTIFIER_DEFAULT_RESEND_MS;
    if (!n->o.queue_capacity)
        n->o.queue_capacity = NOTIFIER_DEFAULT_QUEUE;
    n->external_url = xstrdup_or_empty(n->o.external_url ? n->o.external_url : "");
    size_t l = strlen(n->external_url);
    while (l && n->external_url[l - 1] == '/')
        n->external_url[--l] = 0;
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cond, NULL);
    labelset_init(&n->external);
    n->q_cap = n->o.queue_capacity;
    n->q = xcalloc(n->q_cap, sizeof(char *));
    n->resolve_after_ms = 3600 * 1000;
    n->eval_ms = 60 * 1000;
    n->min_severity = PAYLOAD_WARNING;
    n->sd = sd_manager_new(on_sync, n, 1000);
    if (!n->sd)
        abort(); /* a thread could not be created: as out of memory */
    metric_set(m_queue_cap(), NULL, (double)n->q_cap);
    metric_set(m_queue_len(), NULL, 0);
    metric_set(m_discovered(), NULL, 0);
    metric_add(m_dropped(), NULL, 0);
    return n;
}

void notifier_apply_config(notifier *n, const lookout_config *cfg)
{
    const alerting_config *a = &cfg->alerting;
    size_t ns = a->n_alertmanagers;
    am_set *sets = xcalloc(ns ? ns : 1, sizeof(am_set));
    /* the notifier's discovery configuration: one job per alertmanager config, named as Prometheus does */
    lookout_config dcfg;
    memset(&dcfg, 0, sizeof dcfg);
    dcfg.scrape_configs = xcalloc(ns ? ns : 1, sizeof(scrape_config));
    dcfg.n_scrape_configs = ns;
    char (*names)[32] = xcalloc(ns ? ns : 1, sizeof *names);
    for (size_t i = 0; i < ns; i++) {
        const alertmanager_config *am = &a->alertmanagers[i];
        am_set *set = &sets[i];
        set->scheme = xstrdup_or_empty(am->scheme && *am->scheme ? am->scheme : "http");
        set->alerts_path = notifier_alerts_path(am->path_prefix);
        http_client_config_copy(&set->http, &am->sc.http);
        set->timeout_ms = am->timeout_ms > 0 ? am->timeout_ms : 10000;
        set->rules = copy_rules(am->sc.relabel_configs, am->sc.n_relabel_configs);
        set->n_rules = am->sc.n_relabel_configs;
        snprintf(names[i], sizeof names[i], "config-%zu", i);
        dcfg.scrape_configs[i] = am->sc; /* shallow: the manager copies what it keeps */
        dcfg.scrape_configs[i].job_name = names[i];
    }
    rules_ref *rules = xcalloc(1, sizeof *rules);
    rules->v = copy_rules(a->alert_relabel_configs, a->n_alert_relabel_configs);
    rules->n = a->n_alert_relabel_configs;
    rules->refs = 1;

    pthread_mutex_lock(&n->mu);
    /* Until discovery syncs the new sets (within a second: a reload syncs every set), a set keeps the
     * Alertmanagers its predecessor at the same position had. */
    for (size_t i = 0; i < ns && i < n->n_sets; i++) {
        sets[i].active = n->sets[i].active;
        sets[i].n_active = n->sets[i].n_active;
        n->sets[i].active = NULL;
        n->sets[i].n_active = 0;
        for (size_t k = 0; k < sets[i].n_active; k++) {
            http_client_config_release(&sets[i].active[k].http);
            http_client_config_copy(&sets[i].active[k].http, &sets[i].http);
            sets[i].active[k].timeout_ms = sets[i].timeout_ms;
        }
    }
    am_set *old = n->sets;
    size_t n_old = n->n_sets;
    n->sets = sets;
    n->n_sets = ns;
    rules_unref(n->alert_rules);
    n->alert_rules = rules;
    n->resolve_after_ms = a->resolve_after_ms > 0 ? a->resolve_after_ms : 3600 * 1000;
    n->min_severity = a->min_severity;
    n->eval_ms = cfg->global.evaluation_interval_ms > 0 ? cfg->global.evaluation_interval_ms : 60000;
    labelset_free(&n->external);
    labelset_copy(&n->external, &cfg->global.external_labels);
    metric_set(m_discovered(), NULL, (double)count_active(n));
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->mu);
    free_sets(old, n_old);
    /* not under n->mu: the manager's thread takes it in on_sync */
    sd_manager_apply_config(n->sd, &dcfg);
    free(dcfg.scrape_configs);
    free(names);
}

/* ---- alerts ---- */

char *notifier_error_link(const char *external_url, const char *job, const char *key)
{
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, external_url ? external_url : "");
    strbuf_puts(&sb, "/#/");
    for (int part = 0; part < 2; part++) {
        const char *s = part ? key : job;
        if (part)
            strbuf_puts(&sb, "/errors/");
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) { /* encodeURIComponent */
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                strchr("-_.!~*'()", *p))
                strbuf_putc(&sb, (char)*p);
            else
                strbuf_printf(&sb, "%%%02X", *p);
        }
    }
    return strbuf_detach(&sb, NULL);
}

/* The labels every label set of the error has in common (without "__" labels). */
static void common_labels(const store_detail *d, labelset *out)
{
    labelset_init(out);
    if (!d->n_labels)
        return;
    const labelset *first = &d->labels[0];
    for (size_t i = 0; i < first->n; i++) {
        const label *l = &first->v[i];
        if (l->name[0] == '_' && l->name[1] == '_')
            continue;
        bool all = true;
        for (size_t k = 1; k < d->n_labels && all; k++) {
            const char *v = labelset_get(&d->labels[k], l->name);
            all = v && strcmp(v, l->value) == 0;
        }
        if (all)
            labelset_set(out, l->name, l->value);
    }
}

static alert_state *state_new(notifier *n, const char *alertname, const store_summary *s, const labelset *external)
{
    alert_state *a = xcalloc(1, sizeof(*a));
    size_t an = strlen(alertname), jn = strlen(s->job), kn = strlen(s->key);
    a->idlen = an + 1 + jn + 1 + kn;
    a->id = xmalloc(a->idlen + 1);
    memcpy(a->id, alertname, an + 1);
    memcpy(a->id + an + 1, s->job, jn + 1);
    memcpy(a->id + an + 1 + jn + 1, s->key, kn + 1);
    labelset ls;
    store_detail d;
    char err[256];
    if (store_get(n->st, s->job, s->key, &d, err, sizeof err) == 0) {
        common_labels(&d, &ls);
        store_detail_free(&d);
    } else {
        labelset_init(&ls);
    }
    for (size_t i = 0; i < external->n; i++) /* external labels where the alert has none */
        if (!labelset_get(&ls, external->v[i].name))
            labelset_set(&ls, external->v[i].name, external->v[i].value);
    labelset_set(&ls, "alertname", alertname);
    labelset_set(&ls, "job", s->job);
    labelset_set(&ls, "aggregation_key", s->key);
    labelset_set(&ls, "severity", payload_severity_name(s->severity));
    a->labels = ls;
    a->link = notifier_error_link(n->external_url, s->job, s->key);
    a->starts_ms = s->status == STORE_REGRESSED && s->resolved_at_ms > 0 ? s->resolved_at_ms
                   : s->created_at_ms != PAYLOAD_TS_NONE && s->created_at_ms > 0 ? s->created_at_ms
                                                                                  : now_ms();
    return a;
}

static void state_free(alert_state *a)
{
    free(a->id);
    labelset_free(&a->labels);
    free(a->link);
    free(a);
}

/* One alert as Alertmanager's API v2 wants it, its labels through alerting.alert_relabel_configs (as
 * Prometheus relabels every alert it sends, resolutions too); NULL when a rule drops it. s: the error
 * (NULL for a resolution: no annotations). */
static char *alert_json(const alert_state *a, const rules_ref *rules, const store_summary *s, int64_t ends_ms)
{
    labelset ls;
    labelset_copy(&ls, &a->labels);
    if (rules && !relabel_apply(rules->v, rules->n, &ls).keep) {
        labelset_free(&ls);
        return NULL;
    }
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "{\"labels\":");
    labelset_write_json(&sb, &ls);
    labelset_free(&ls);
    strbuf_puts(&sb, ",\"annotations\":{");
    if (s) {
        strbuf_puts(&sb, "\"class\":");
        strbuf_json_string(&sb, s->latest ? s->latest->error.class_name : "");
        strbuf_puts(&sb, ",\"message\":");
        strbuf_json_string(&sb, s->latest ? s->latest->error.message : "");
        strbuf_printf(&sb, ",\"total_count\":\"%llu\",", (unsigned long long)s->total_count);
    }
    strbuf_puts(&sb, "\"link\":");
    strbuf_json_string(&sb, a->link);
    char t[40];
    payload_format_time(a->starts_ms, t, sizeof t);
    strbuf_puts(&sb, "},\"startsAt\":");
    strbuf_json_string(&sb, t);
    payload_format_time(ends_ms, t, sizeof t);
    strbuf_puts(&sb, ",\"endsAt\":");
    strbuf_json_string(&sb, t);
    strbuf_puts(&sb, ",\"generatorURL\":");
    strbuf_json_string(&sb, a->link);
    strbuf_putc(&sb, '}');
    return strbuf_detach(&sb, NULL);
}

/* Appends to the queue (the oldest are dropped when full). NULL (dropped by relabeling): nothing. */
static void enqueue(notifier *n, char *alert)
{
    if (!alert)
        return;
    pthread_mutex_lock(&n->mu);
    if (n->q_n == n->q_cap) {
        free(n->q[n->q_head]);
        n->q_head = (n->q_head + 1) % n->q_cap;
        n->q_n--;
        metric_add(m_dropped(), NULL, 1);
    }
    n->q[(n->q_head + n->q_n) % n->q_cap] = alert;
    n->q_n++;
    metric_set(m_queue_len(), NULL, (double)n->q_n);
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->mu);
}

static void release_rules(notifier *n, rules_ref *r)
{
    pthread_mutex_lock(&n->mu);
    rules_unref(r);
    pthread_mutex_unlock(&n->mu);
}

static void evaluate(notifier *n)
{
    pthread_mutex_lock(&n->mu);
    int64_t resolve_after = n->resolve_after_ms, eval = n->eval_ms, resend = n->o.resend_delay_ms;
    int min_sev = n->min_severity;
    size_t n_ams = count_active(n);
    labelset external;
    labelset_init(&external);
    labelset_copy(&external, &n->external);
    rules_ref *rules = n->alert_rules;
    if (rules)
        rules->refs++;
    pthread_mutex_unlock(&n->mu);
    if (!n_ams) { /* nothing to send to: no work, and alerts start afresh when one is discovered */
        labelset_free(&external);
        release_rules(n, rules);
        return;
    }
    int64_t now = now_ms();
    int64_t cutoff = now - resolve_after;
    int64_t valid = now + 4 * (eval > resend ? eval : resend);
    uint64_t gen = ++n->gen;
    char *cursor = NULL;
    bool done = false;
    for (int page = 0; page < MAX_PAGES && !done; page++) {
        store_query q = {.severity = -1, .status = STORE_QUERY_UNRESOLVED, .sort = STORE_SORT_LAST_SEEN,
                         .limit = PAGE, .cursor = cursor};
        store_page p;
        char err[512];
        if (store_list(n->st, &q, &p, err, sizeof err) != 0) {
            log_warn("alert", "listing errors for alerts failed", "err", err);
            free(cursor);
            labelset_free(&external);
            release_rules(n, rules);
            return; /* states stay as they are: no spurious resolutions */
        }
        for (size_t i = 0; i < p.n && !done; i++) {
            const store_summary *s = &p.v[i];
            if (s->last_seen_ms == PAYLOAD_TS_NONE || s->last_seen_ms < cutoff) {
                done = true; /* sorted by last occurrence: the rest are older */
                break;
            }
            if ((int)s->severity < min_sev)
                continue;
            const char *alertname = s->status == STORE_REGRESSED ? "RegressedException" : "NewException";
            size_t an = strlen(alertname), jn = strlen(s->job), kn = strlen(s->key);
            char *id = xmalloc(an + jn + kn + 3);
            memcpy(id, alertname, an + 1);
            memcpy(id + an + 1, s->job, jn + 1);
            memcpy(id + an + 1 + jn + 1, s->key, kn + 1);
            alert_state *a = keymap_get(&n->alerts, id, an + 1 + jn + 1 + kn);
            free(id);
            if (!a) {
                a = state_new(n, alertname, s, &external);
                keymap_put(&n->alerts, a->id, a->idlen, a);
            }
            a->gen = gen;
            if (!a->last_sent_ms || now - a->last_sent_ms >= resend) {
                enqueue(n, alert_json(a, rules, s, valid));
                a->last_sent_ms = now;
            }
        }
        free(cursor);
        cursor = p.next_cursor ? xstrdup_or_empty(p.next_cursor) : NULL;
        if (!cursor)
            done = true;
        store_page_free(&p);
    }
    free(cursor);
    /* no longer active: resolved in lookout, or quiet for resolve_after */
    alert_state **gone = NULL;
    size_t n_gone = 0;
    for (size_t i = 0; i < n->alerts.cap; i++) {
        if (!n->alerts.slots[i].hash)
            continue;
        alert_state *a = n->alerts.slots[i].value;
        if (a->gen != gen) {
            gone = xrealloc(gone, (n_gone + 1) * sizeof(*gone));
            gone[n_gone++] = a;
        }
    }
    for (size_t i = 0; i < n_gone; i++) {
        enqueue(n, alert_json(gone[i], rules, NULL, now));
        keymap_del(&n->alerts, gone[i]->id, gone[i]->idlen);
        state_free(gone[i]);
    }
    free(gone);
    labelset_free(&external);
    release_rules(n, rules);
}

static void *eval_main(void *arg)
{
    notifier *n = arg;
    pthread_mutex_lock(&n->mu);
    while (!n->stop) {
        pthread_mutex_unlock(&n->mu);
        evaluate(n);
        pthread_mutex_lock(&n->mu);
        if (!n->stop)
            wait_ms(n, n->eval_ms);
    }
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

/* ---- sending ---- */

static size_t discard(char *p, size_t sz, size_t nm, void *ud)
{
    (void)p;
    (void)ud;
    return sz * nm;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a;
    (void)b;
    (void)c;
    (void)d;
    notifier *n = ud;
    pthread_mutex_lock(&n->mu);
    bool stop = n->stop;
    pthread_mutex_unlock(&n->mu);
    return stop ? 1 : 0;
}

/* One POST; 0 on a 2xx answer, else -1 with err. */
static int post(notifier *n, const am_target *am, const char *body, size_t len, char *err, size_t errlen)
{
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    http_request *r = http_client_prepare(h, &am->http, am->url, headers, err, errlen);
    if (!r) {
        curl_easy_cleanup(h);
        return -1;
    }
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)am->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, n);
    CURLcode rc = curl_easy_perform(h);
    int ret = 0;
    if (rc != CURLE_OK) {
        http_client_describe_error(h, rc, am->url, ebuf, err, errlen);
        ret = -1;
    } else {
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (status / 100 != 2) {
            http_client_status_error(status, NULL, err, errlen);
            ret = -1;
        }
    }
    curl_easy_cleanup(h);
    http_request_free(r);
    return ret;
}

static void *send_main(void *arg)
{
    notifier *n = arg;
    char *batch[NOTIFIER_MAX_BATCH];
    pthread_mutex_lock(&n->mu);
    for (;;) {
        while (!n->stop && !n->q_n)
            pthread_cond_wait(&n->cond, &n->mu);
        if (n->stop)
            break;
        size_t k = 0;
        while (n->q_n && k < NOTIFIER_MAX_BATCH) {
            batch[k++] = n->q[n->q_head];
            n->q_head = (n->q_head + 1) % n->q_cap;
            n->q_n--;
        }
        metric_set(m_queue_len(), NULL, (double)n->q_n);
        /* a copy of the targets: a reload may replace them while we post */
        size_t n_ams = count_active(n);
        am_target *ams = xcalloc(n_ams ? n_ams : 1, sizeof(am_target));
        size_t m = 0;
        for (size_t s = 0; s < n->n_sets; s++)
            for (size_t i = 0; i < n->sets[s].n_active; i++, m++) {
                const am_target *src = &n->sets[s].active[i];
                ams[m].url = xstrdup_or_empty(src->url);
                http_client_config_copy(&ams[m].http, &src->http);
                ams[m].timeout_ms = src->timeout_ms;
            }
        pthread_mutex_unlock(&n->mu);

        strbuf body;
        strbuf_init(&body);
        strbuf_putc(&body, '[');
        for (size_t i = 0; i < k; i++) {
            if (i)
                strbuf_putc(&body, ',');
            strbuf_puts(&body, batch[i]);
            free(batch[i]);
        }
        strbuf_putc(&body, ']');
        bool any_ok = false;
        for (size_t i = 0; i < n_ams; i++) {
            const char *lv[] = {ams[i].url};
            char err[512] = "";
            int rc = -1;
            for (int attempt = 0; attempt <= RETRIES; attempt++) {
                rc = post(n, &ams[i], body.buf, body.len, err, sizeof err);
                if (rc == 0)
                    break;
                pthread_mutex_lock(&n->mu);
                bool stop = n->stop;
                if (!stop && attempt < RETRIES)
                    wait_ms(n, 250LL << attempt);
                stop = n->stop;
                pthread_mutex_unlock(&n->mu);
                if (stop)
                    break;
            }
            metric_add(m_sent(), lv, (double)k);
            if (rc == 0) {
                any_ok = true;
            } else {
                metric_add(m_errors(), lv, (double)k);
                log_error("alert", "Error sending alerts", "alertmanager", ams[i].url, "count",
                          k == 1 ? "1" : "several", "err", err);
            }
        }
        if (!any_ok)
            metric_add(m_dropped(), NULL, (double)k);
        strbuf_free(&body);
        free_ams(ams, n_ams);
        pthread_mutex_lock(&n->mu);
    }
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

int notifier_start(notifier *n)
{
    if (pthread_create(&n->eval_thread, NULL, eval_main, n) != 0)
        return -1;
    if (pthread_create(&n->send_thread, NULL, send_main, n) != 0) {
        pthread_mutex_lock(&n->mu);
        n->stop = true;
        pthread_cond_broadcast(&n->cond);
        pthread_mutex_unlock(&n->mu);
        pthread_join(n->eval_thread, NULL);
        return -1;
    }
    n->started = true;
    return 0;
}

void notifier_free(notifier *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    n->stop = true;
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->mu);
    if (n->started) {
        pthread_join(n->eval_thread, NULL);
        pthread_join(n->send_thread, NULL);
    }
    sd_manager_free(n->sd); /* joins its thread: no on_sync after this */
    for (size_t i = 0; i < n->alerts.cap; i++)
        if (n->alerts.slots[i].hash)
            state_free(n->alerts.slots[i].value);
    keymap_free(&n->alerts);
    for (size_t i = 0; i < n->q_n; i++)
        free(n->q[(n->q_head + i) % n->q_cap]);
    free(n->q);
    free_sets(n->sets, n->n_sets);
    rules_unref(n->alert_rules);
    labelset_free(&n->external);
    free(n->external_url);
    pthread_cond_destroy(&n->cond);
    pthread_mutex_destroy(&n->mu);
    free(n);
}
