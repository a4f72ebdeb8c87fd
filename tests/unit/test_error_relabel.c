/* error_relabel_configs (ingest/error_relabel.h) with the real merge engine and memory store: regrouping
 * keeps exact counts across per-key resets and a restart, samples merge, severity rewrite, drop/keep
 * counted per job and reason, the error's own labels, invalid dynamic severity a no-op. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "ingest/error_relabel.h"
#include "store/store.h"
#include "util/metrics.h"

static char err[512];

/* The error_relabel_configs of a one-job configuration (YAML list). */
static lookout_config *cfg_with(const char *rules_yaml)
{
    char y[4096];
    snprintf(y, sizeof y, "scrape_configs:\n  - job_name: api\n    static_configs: [{targets: ['a:1']}]\n"
                          "    error_relabel_configs:\n%s", rules_yaml);
    lookout_config *c = config_parse(y, strlen(y), "t.yml", err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    return c;
}

static const char *const REGROUP = "      - source_labels: [__aggregation_key__]\n"
                                   "        regex: '(.*)@[0-9a-f]+'\n"
                                   "        target_label: __aggregation_key__\n";

static merge_engine *E;
static store *S;
static error_relabel_set *R;
static labelset T; /* target labels */

static void setup(void)
{
    E = merge_new(NULL);
    S = store_memory_new(NULL);
    labelset_init(&T);
    labelset_set(&T, "job", "api");
    labelset_set(&T, "instance", "a:1");
    labelset_set(&T, "namespace", "prod");
}
static void teardown(void)
{
    error_relabel_set_unref(R);
    R = NULL;
    labelset_free(&T);
    store_close(S);
    merge_free(E);
}
TestSuite(error_relabel, .init = setup, .fini = teardown);

/* One scrape of target a:1 (target_uuid u1): body built from printf args, relabeled, merged, stored. */
/* Receive times: after the payloads' occurrences (2024-03-01T10:0M:00Z), which would otherwise be
 * future-dated and stored at receive time. */
#define NOW0 1709290800000LL /* 2024-03-01T11:00:00Z */

static error_relabel_result scrape(int64_t now, const char *body)
{
    now += NOW0;
    payload_doc *d = payload_parse(body, strlen(body), "http://a:1/-/exceptions", err, sizeof err);
    cr_assert_not_null(d, "%s", err);
    size_t n;
    const relabel_rule *rules = error_relabel_set_rules(R, "api", false, &n);
    error_relabel_result res;
    error_relabel_doc(rules, n, &T, d, &res);
    error_relabel_account("api", &res);
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_input in = {.job = "api", .url = "http://a:1/-/exceptions", .labels = &T, .doc = d, .now_ms = now};
    merge_apply(E, &in, &cs);
    cr_assert_eq(store_apply(S, &cs, now, err, sizeof err), 0, "%s", err);
    merge_changeset_free(&cs);
    payload_free(d);
    return res;
}

static char *agg(char *buf, size_t n, const char *key, int count, const char *cls, const char *msg, const char *uuid,
                 int minute)
{
    snprintf(buf, n,
             "{\"aggregation_key\":\"%s\",\"total_count\":%d,\"severity\":\"error\",\"latest_errors\":[{\"error\":"
             "{\"class\":\"%s\",\"message\":\"%s\",\"stacktrace\":[]},\"uuid\":\"%s\",\"timestamp\":"
             "\"2024-03-01T10:%02d:00Z\"}]}",
             key, count, cls, msg, uuid, minute);
    return buf;
}

static error_relabel_result scrape2(int64_t now, int a, int b)
{
    char x[512], y[512], body[1200];
    snprintf(body, sizeof body, "{\"target_uuid\":\"u1\",\"aggregated_errors\":[%s,%s]}",
             agg(x, sizeof x, "*url.Error@9f3c1a07", a, "*url.Error", "Get http://billing: timeout", "ua", 1),
             agg(y, sizeof y, "*url.Error@0b7e22d1", b, "*url.Error", "Get http://users: timeout", "ub", 2));
    return scrape(now, body);
}

static uint64_t total(const char *key)
{
    store_detail d;
    int rc = store_get(S, "api", key, &d, err, sizeof err);
    if (rc == STORE_NOT_FOUND)
        return 0;
    cr_assert_eq(rc, 0, "%s", err);
    uint64_t t = d.s.total_count;
    store_detail_free(&d);
    return t;
}

static void regroup_scenario(void)
{
    lookout_config *c = cfg_with(REGROUP);
    R = error_relabel_set_new(c);
    config_free(c);
    error_relabel_result r = scrape2(1000, 10, 5);
    cr_assert_eq(r.regrouped, 2);
    cr_assert_eq(total("*url.Error"), 15);
    cr_assert_eq(total("*url.Error@9f3c1a07"), 0, "the hashed keys are never stored");
    /* the first key restarts (10 -> 1), the second grows (5 -> 7): +1 +2, not a reset of the sum 15 -> 8 */
    scrape2(2000, 1, 7);
    cr_assert_eq(total("*url.Error"), 18);
    scrape2(3000, 1, 7); /* same counts: nothing */
    cr_assert_eq(total("*url.Error"), 18);
    /* samples of both keys merged, newest first */
    store_detail d;
    cr_assert_eq(store_get(S, "api", "*url.Error", &d, err, sizeof err), 0);
    cr_assert_eq(d.n_samples, 2);
    cr_assert_str_eq(d.samples[0]->uuid, "ub");
    cr_assert_str_eq(d.samples[1]->uuid, "ua");
    store_detail_free(&d);
    /* restart: a new engine loads the store (its per-original-key counts included) */
    merge_state st;
    merge_snapshot(E, &st);
    cr_assert_eq(store_save_state(S, &st, err, sizeof err), 0, "%s", err);
    merge_state_free(&st);
    merge_free(E);
    E = merge_new(NULL);
    cr_assert_eq(store_load(S, E, err, sizeof err), 0, "%s", err);
    scrape2(4000, 3, 7); /* +2 on the first key only */
    cr_assert_eq(total("*url.Error"), 20);
    /* retention keeps the derived per-key instances while the target's instance lives */
    cr_assert_eq(merge_prune(E, NOW0 + 4000 + 13LL * 24 * 3600 * 1000), 0);
}

Test(error_relabel, regrouped_keys_count_exactly_across_resets_and_restart)
{
    regroup_scenario();
}

/* The same on SQLite: the per-original-key counts are persisted as derived instances and restored. */
Test(error_relabel, regrouped_keys_count_exactly_on_sqlite)
{
    store_close(S);
    char dir[] = "/tmp/lookout-erl-XXXXXX", path[300];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/db", dir);
    S = store_sqlite_new(path, NULL, err, sizeof err);
    cr_assert(S, "%s", err);
    regroup_scenario();
}

Test(error_relabel, severity_by_class_drop_keep_and_labels)
{
    lookout_config *c = cfg_with("      - source_labels: [__class__]\n"
                                 "        regex: 'Timeout.*'\n"
                                 "        target_label: __severity__\n"
                                 "        replacement: warning\n"
                                 "      - source_labels: [__message__]\n"
                                 "        regex: '.*context canceled.*'\n"
                                 "        action: drop\n"
                                 "      - source_labels: [__class__]\n"
                                 "        regex: 'Debug.*'\n"
                                 "        action: drop\n"
                                 "      - source_labels: [__aggregation_key__]\n"
                                 "        regex: 'billing/.*'\n"
                                 "        target_label: team\n"
                                 "        replacement: billing\n");
    R = error_relabel_set_new(c);
    config_free(c);
    char a1[512], a2[512], a3[512], a4[512], body[3000];
    snprintf(body, sizeof body, "{\"target_uuid\":\"u1\",\"aggregated_errors\":[%s,%s,%s,%s]}",
             agg(a1, sizeof a1, "billing/invoice-timeout", 4, "TimeoutError", "invoice slow", "u1", 1),
             agg(a2, sizeof a2, "req-canceled", 9, "CancelError", "context canceled by client", "u2", 2),
             agg(a3, sizeof a3, "debug-noise", 3, "DebugTrace", "tick", "u3", 3),
             agg(a4, sizeof a4, "users/nil", 2, "NilError", "nil pointer", "u4", 4));
    error_relabel_result r = scrape(1000, body);
    cr_assert_eq(r.dropped[RELABEL_DROP], 2);
    cr_assert_eq(r.regrouped, 0);
    const char *lv[] = {"api", "relabel_drop"};
    metric_family *f = metric_family_get("lookout_errors_dropped_total", METRIC_COUNTER, "", 2,
                                         (const char *const[]){"job", "reason"});
    cr_assert(metric_value(f, lv) >= 2);
    cr_assert_eq(total("req-canceled"), 0, "dropped: never stored");
    cr_assert_eq(total("debug-noise"), 0);
    store_detail d;
    cr_assert_eq(store_get(S, "api", "billing/invoice-timeout", &d, err, sizeof err), 0);
    cr_assert_eq(d.s.severity, PAYLOAD_WARNING);
    cr_assert_eq(d.n_labels, 1);
    cr_assert_str_eq(labelset_get(&d.labels[0], "team"), "billing");
    cr_assert_str_eq(labelset_get(&d.labels[0], "namespace"), "prod");
    cr_assert_null(labelset_get(&d.labels[0], "__class__"));
    store_detail_free(&d);
    cr_assert_eq(store_get(S, "api", "users/nil", &d, err, sizeof err), 0);
    cr_assert_eq(d.s.severity, PAYLOAD_ERROR);
    cr_assert_null(labelset_get(&d.labels[0], "team"));
    store_detail_free(&d);
    /* the error's labels are filterable like SD labels (search language and label=) */
    store_search se;
    cr_assert_eq(store_search_parse("team:billing", &se, err, sizeof err), 0);
    store_query q = {.severity = -1, .status = -1, .search = &se};
    store_page p;
    cr_assert_eq(store_list(S, &q, &p, err, sizeof err), 0);
    cr_assert_eq(p.total, 1);
    cr_assert_str_eq(p.v[0].key, "billing/invoice-timeout");
    store_page_free(&p);
    store_search_free(&se);
}

Test(error_relabel, keep_and_dynamic_invalid_severity)
{
    lookout_config *c = cfg_with("      - source_labels: [namespace]\n"
                                 "        regex: prod\n"
                                 "        action: keep\n"
                                 "      - source_labels: [__message__]\n"
                                 "        regex: 'sev=(.*)'\n"
                                 "        target_label: __severity__\n");
    R = error_relabel_set_new(c);
    config_free(c);
    char a1[512], a2[512], body[1200];
    snprintf(body, sizeof body, "{\"target_uuid\":\"u1\",\"aggregated_errors\":[%s,%s]}",
             agg(a1, sizeof a1, "k1", 1, "E", "sev=info", "u1", 1), agg(a2, sizeof a2, "k2", 1, "E", "sev=fatal", "u2", 2));
    error_relabel_result r = scrape(1000, body);
    cr_assert_eq(r.invalid_severity, 1);
    store_detail d;
    cr_assert_eq(store_get(S, "api", "k1", &d, err, sizeof err), 0);
    cr_assert_eq(d.s.severity, PAYLOAD_INFO);
    store_detail_free(&d);
    cr_assert_eq(store_get(S, "api", "k2", &d, err, sizeof err), 0);
    cr_assert_eq(d.s.severity, PAYLOAD_ERROR, "an invalid dynamic severity is a no-op");
    store_detail_free(&d);
    /* keep: a target outside namespace prod keeps nothing */
    labelset_set(&T, "namespace", "dev");
    snprintf(body, sizeof body, "{\"target_uuid\":\"u1\",\"aggregated_errors\":[%s]}",
             agg(a1, sizeof a1, "k3", 1, "E", "x", "u5", 3));
    r = scrape(2000, body);
    cr_assert_eq(r.dropped[RELABEL_KEEP], 1);
    cr_assert_eq(total("k3"), 0);
}

Test(error_relabel, set_selects_job_and_push_rules)
{
    lookout_config *c = config_parse("scrape_configs: [{job_name: a, static_configs: [{targets: ['x:1']}]}]\n"
                                     "push: {error_relabel_configs: [{source_labels: [__class__], action: drop, regex: X}]}\n",
                                     strlen("scrape_configs: [{job_name: a, static_configs: [{targets: ['x:1']}]}]\n"
                                            "push: {error_relabel_configs: [{source_labels: [__class__], action: drop, regex: X}]}\n"),
                                     "t.yml", err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    R = error_relabel_set_new(c);
    config_free(c);
    size_t n;
    cr_assert_null(error_relabel_set_rules(R, "a", false, &n));
    cr_assert_eq(n, 0);
    cr_assert_not_null(error_relabel_set_rules(R, "pushed", true, &n));
    cr_assert_eq(n, 1);
    lookout_config *none = config_parse("", 0, "t.yml", err, sizeof err);
    cr_assert_null(error_relabel_set_new(none), "no rules: no set");
    config_free(none);
}
