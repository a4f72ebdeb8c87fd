/* Target manager: sync/diff keeps state, dedup, dropped cap + counts, failed targets, rebuild on config
 * change, hooks, job removal. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "scrape/targets.h"
#include "sd/sd.h"
#include "util/metrics.h"

static lookout_config *parse(const char *yaml)
{
    char err[512] = "";
    lookout_config *cfg = config_parse(yaml, strlen(yaml), "test.yml", err, sizeof err);
    cr_assert_not_null(cfg, "config: %s", err);
    return cfg;
}

/* One group of targets given as addresses; extra: optional "name=value" label for every target. */
static void group_of(target_group *g, const char *source, const char *const *addrs, size_t n,
                     const char *lname, const char *lvalue)
{
    target_group_init(g, source);
    for (size_t i = 0; i < n; i++) {
        labelset t = LABELSET_INIT;
        if (addrs[i])
            labelset_set(&t, "__address__", addrs[i]);
        if (lname)
            labelset_set(&t, lname, lvalue);
        target_group_add_target(g, &t);
        labelset_free(&t);
    }
}

static void sync1(target_manager *m, const char *job, target_group *g)
{
    const target_group *gs[] = {g};
    targets_sync(m, job, gs, 1);
}

/* Discovered labels are rebuilt on demand: one label's value (static buffer), or NULL. */
static const char *adisc(const target_pool *p, const active_target *t, const char *name)
{
    static char buf[256];
    labelset ls;
    targets_active_discovered(p, t, &ls);
    const char *v = labelset_get(&ls, name);
    if (v)
        snprintf(buf, sizeof buf, "%s", v);
    labelset_free(&ls);
    return v ? buf : NULL;
}

static const char *ddisc(const target_pool *p, size_t i, const char *name)
{
    static char buf[256];
    labelset ls;
    targets_dropped_discovered(p, &p->dropped[i], &ls);
    const char *v = labelset_get(&ls, name);
    if (v)
        snprintf(buf, sizeof buf, "%s", v);
    labelset_free(&ls);
    return v ? buf : NULL;
}

typedef struct hook_log {
    int added, updated, removed;
} hook_log;

static void hook(void *ctx, target_event ev, const char *job, const built_target *t, const scrape_config *sc)
{
    hook_log *h = ctx;
    cr_assert_not_null(job);
    cr_assert_not_null(t);
    cr_assert_not_null(sc);
    cr_assert_str_eq(sc->job_name, job);
    if (ev == TARGET_ADDED)
        h->added++;
    else if (ev == TARGET_UPDATED)
        h->updated++;
    else
        h->removed++;
}

static const char *cfg_basic = "scrape_configs:\n"
                               "  - job_name: a\n"
                               "    scrape_interval: 15s\n"
                               "  - job_name: b\n";

static const active_target *find_addr(const target_pool *p, const char *addr)
{
    for (size_t i = 0; i < p->n_active; i++)
        if (strcmp(labelset_get(&p->active[i]->t.labels, "__address__"), addr) == 0)
            return p->active[i];
    return NULL;
}

Test(targets, sync_diff_keeps_state)
{
    lookout_config *cfg = parse(cfg_basic);
    target_manager *m = targets_new();
    hook_log h = {0};
    targets_set_hook(m, hook, &h);
    targets_apply_config(m, cfg);

    const char *a1[] = {"h1:80", "h2:80", "h3:80"};
    target_group g;
    group_of(&g, "s:0", a1, 3, NULL, NULL);
    sync1(m, "a", &g);
    target_group_free(&g);
    cr_assert_eq(h.added, 3);

    targets_read_begin(m);
    const target_pool *p = targets_pool_find(m, "a");
    cr_assert_eq(p->n_active, 3);
    const active_target *t1 = find_addr(p, "h1:80");
    const active_target *t3 = find_addr(p, "h3:80");
    cr_assert_not_null(t1);
    uint64_t h1 = t1->t.hash, h3 = t3->t.hash;
    cr_assert_str_eq(t1->t.url, "http://h1:80/-/exceptions");
    targets_read_end(m);

    targets_report_scrape(m, "a", h1, NULL, 1700000000123, 0.25);
    targets_report_scrape(m, "a", h3, "connection refused", 1700000000456, 0.5);
    targets_report_scrape(m, "a", 12345, "ignored", 1, 1); /* unknown hash: no effect, no crash */
    targets_report_scrape(m, "nope", h1, "ignored", 1, 1);

    const char *a2[] = {"h1:80", "h4:80"};
    group_of(&g, "s:0", a2, 2, NULL, NULL);
    sync1(m, "a", &g);
    target_group_free(&g);
    cr_assert_eq(h.added, 4);
    cr_assert_eq(h.removed, 2);
    cr_assert_eq(h.updated, 0);

    targets_read_begin(m);
    p = targets_pool_find(m, "a");
    cr_assert_eq(p->n_active, 2);
    const active_target *k1 = find_addr(p, "h1:80");
    cr_assert_eq(k1, t1, "a kept target keeps its identity");
    target_state st;
    targets_state_get(p, k1, &st);
    cr_assert_eq(st.health, TARGET_HEALTH_UP);
    cr_assert_eq(st.last_scrape_ms, 1700000000123);
    cr_assert_float_eq(st.last_duration_s, 0.25, 1e-9);
    cr_assert_str_eq(st.last_error, "");
    const active_target *k4 = find_addr(p, "h4:80");
    targets_state_get(p, k4, &st);
    cr_assert_eq(st.health, TARGET_HEALTH_UNKNOWN);
    cr_assert_eq(st.last_scrape_ms, 0);
    cr_assert_null(targets_pool_get(p, h3));
    cr_assert_eq(targets_pool_get(p, h1), k1);
    /* display order: by URL */
    cr_assert_str_eq(p->active[0]->t.url, "http://h1:80/-/exceptions");
    cr_assert_str_eq(p->active[1]->t.url, "http://h4:80/-/exceptions");
    targets_read_end(m);

    /* A failed scrape turns it down with the error. */
    targets_report_scrape(m, "a", h1, "server returned HTTP status 500 Internal Server Error", 1700000001000, 1);
    targets_read_begin(m);
    p = targets_pool_find(m, "a");
    targets_state_get(p, targets_pool_get(p, h1), &st);
    cr_assert_eq(st.health, TARGET_HEALTH_DOWN);
    cr_assert_str_eq(st.last_error, "server returned HTTP status 500 Internal Server Error");
    targets_read_end(m);

    /* An empty sync removes everything. */
    targets_sync(m, "a", NULL, 0);
    cr_assert_eq(h.removed, 4);
    targets_read_begin(m);
    cr_assert_eq(targets_pool_find(m, "a")->n_active, 0);
    targets_read_end(m);

    targets_free(m);
    config_free(cfg);
}

Test(targets, dedup_keeps_last_discovered_labels)
{
    lookout_config *cfg = parse(cfg_basic);
    target_manager *m = targets_new();
    targets_apply_config(m, cfg);
    /* Same address in two groups, differing only in a __meta_ label (removed after relabeling): one
     * target, whose discovered labels are the last duplicate's. */
    const char *a[] = {"h1:80"};
    target_group g1, g2;
    group_of(&g1, "s:0", a, 1, "__meta_src", "first");
    group_of(&g2, "s:1", a, 1, "__meta_src", "second");
    const target_group *gs[] = {&g1, &g2};
    targets_sync(m, "a", gs, 2);
    targets_read_begin(m);
    const target_pool *p = targets_pool_find(m, "a");
    cr_assert_eq(p->n_active, 1);
    cr_assert_str_eq(adisc(p, p->active[0], "__meta_src"), "second");
    cr_assert_null(labelset_get(&p->active[0]->t.labels, "__meta_src"));
    targets_read_end(m);

    /* Reversed order: same identity, discovered labels follow. */
    const active_target *before;
    targets_read_begin(m);
    before = targets_pool_find(m, "a")->active[0];
    targets_read_end(m);
    const target_group *rs[] = {&g2, &g1};
    targets_sync(m, "a", rs, 2);
    targets_read_begin(m);
    p = targets_pool_find(m, "a");
    cr_assert_eq(p->n_active, 1);
    cr_assert_eq(p->active[0], before);
    cr_assert_str_eq(adisc(p, p->active[0], "__meta_src"), "first");
    targets_read_end(m);

    target_group_free(&g1);
    target_group_free(&g2);
    targets_free(m);
    config_free(cfg);
}

Test(targets, dropped_capped_and_counted)
{
    lookout_config *cfg = parse("scrape_configs:\n"
                                "  - job_name: a\n"
                                "    keep_dropped_targets: 2\n"
                                "    relabel_configs:\n"
                                "      - source_labels: [__address__]\n"
                                "        regex: keep.*\n"
                                "        target_label: kept\n"
                                "        replacement: yes\n"
                                "      - source_labels: [__address__]\n"
                                "        regex: drop.*\n"
                                "        action: drop\n"
                                "  - job_name: b\n");
    target_manager *m = targets_new();
    targets_apply_config(m, cfg);
    const char *a[] = {"keep1:80", "drop1:80", "drop2:80", "keep2:80", "drop3:80", "drop4:80", "drop5:80"};
    target_group g;
    group_of(&g, "s:0", a, 7, NULL, NULL);
    sync1(m, "a", &g);
    target_group_free(&g);

    targets_read_begin(m);
    const target_pool *p = targets_pool_find(m, "a");
    cr_assert_eq(p->n_active, 2);
    cr_assert_eq(p->n_dropped, 2);
    cr_assert_eq(p->dropped_count, 5);
    cr_assert_str_eq(ddisc(p, 0, "__address__"), "drop1:80");
    cr_assert_str_eq(ddisc(p, 1, "__address__"), "drop2:80");
    cr_assert_eq(p->dropped[0].rule_index, 1);
    cr_assert_eq(p->dropped[0].action, RELABEL_DROP);
    cr_assert_str_eq(ddisc(p, 0, "job"), "a");
    cr_assert_eq(targets_pool_find(m, "b")->dropped_count, 0);
    targets_read_end(m);
    targets_free(m);
    config_free(cfg);
}

Test(targets, dropped_unlimited_by_default)
{
    lookout_config *cfg = parse("scrape_configs:\n"
                                "  - job_name: a\n"
                                "    relabel_configs:\n"
                                "      - action: drop\n"
                                "        source_labels: [__address__]\n"
                                "        regex: drop.*\n");
    target_manager *m = targets_new();
    targets_apply_config(m, cfg);
    const char *a[] = {"drop1:80", "drop2:80", "drop3:80"};
    target_group g;
    group_of(&g, "s:0", a, 3, NULL, NULL);
    sync1(m, "a", &g);
    target_group_free(&g);
    targets_read_begin(m);
    const target_pool *p = targets_pool_find(m, "a");
    cr_assert_eq(p->n_dropped, 3);
    cr_assert_eq(p->dropped_count, 3);
    cr_assert_eq(p->n_active, 0);
    targets_read_end(m);
    targets_free(m);
    config_free(cfg);
}

Test(targets, failed_targets_kept_with_reason)
{
    lookout_config *cfg = parse(cfg_basic);
    target_manager *m = targets_new();
    targets_apply_config(m, cfg);
    const char *a[] = {"ok:80", "bad/addr:80", NULL};
    target_group g;
    group_of(&g, "s:0", a, 3, "x", "y");
    sync1(m, "a", &g);
    sync1(m, "a", &g); /* again: still one failure each, not accumulated */
    target_group_free(&g);
    targets_read_begin(m);
    const target_pool *p = targets_pool_find(m, "a");
    cr_assert_eq(p->n_active, 1);
    cr_assert_eq(p->n_dropped, 0);
    cr_assert_eq(p->n_failed, 2);
    cr_assert_eq(p->failed_count, 2);
    bool saw_slash = false, saw_noaddr = false;
    for (size_t i = 0; i < p->n_failed; i++) {
        cr_assert_neq(p->failed[i].error[0], '\0');
        labelset disc;
        targets_failed_discovered(p, &p->failed[i], &disc);
        const char *addr = labelset_get(&disc, "__address__");
        if (addr && strcmp(addr, "bad/addr:80") == 0)
            saw_slash = true;
        if (!addr)
            saw_noaddr = true;
        labelset_free(&disc);
    }
    cr_assert(saw_slash && saw_noaddr);
    targets_read_end(m);
    targets_free(m);
    config_free(cfg);
}

Test(targets, reload_rebuilds_changed_job_only)
{
    lookout_config *cfg1 = parse(cfg_basic);
    target_manager *m = targets_new();
    hook_log h = {0};
    targets_set_hook(m, hook, &h);
    targets_apply_config(m, cfg1);
    const char *a[] = {"h1:80", "h2:80"};
    target_group g;
    group_of(&g, "s:0", a, 2, NULL, NULL);
    sync1(m, "a", &g);
    sync1(m, "b", &g);
    target_group_free(&g);
    cr_assert_eq(h.added, 4);

    const active_target *a1, *b1;
    uint64_t ha, hb;
    targets_read_begin(m);
    a1 = find_addr(targets_pool_find(m, "a"), "h1:80");
    b1 = find_addr(targets_pool_find(m, "b"), "h1:80");
    ha = a1->t.hash;
    hb = b1->t.hash;
    targets_read_end(m);
    targets_report_scrape(m, "a", ha, NULL, 1000, 0.1);
    targets_report_scrape(m, "b", hb, NULL, 2000, 0.2);

    /* Job a changes a field that does not enter the labels (body_size_limit): same targets, same state,
     * told as updated. Job b is unchanged: untouched. */
    lookout_config *cfg2 = parse("scrape_configs:\n"
                                 "  - job_name: a\n"
                                 "    scrape_interval: 15s\n"
                                 "    body_size_limit: 1MB\n"
                                 "  - job_name: b\n");
    targets_apply_config(m, cfg2);
    config_free(cfg1);
    cr_assert_eq(h.updated, 2);
    cr_assert_eq(h.added, 4);
    cr_assert_eq(h.removed, 0);
    targets_read_begin(m);
    const target_pool *pa = targets_pool_find(m, "a");
    cr_assert_eq(pa->sc, &cfg2->scrape_configs[0]);
    cr_assert_eq(targets_pool_find(m, "b")->sc, &cfg2->scrape_configs[1]);
    cr_assert_eq(targets_pool_get(pa, ha), a1);
    target_state st;
    targets_state_get(pa, a1, &st);
    cr_assert_eq(st.health, TARGET_HEALTH_UP);
    cr_assert_eq(st.last_scrape_ms, 1000);
    targets_read_end(m);

    /* Job a changes its interval: __scrape_interval__ is part of the labels, so new targets. Job b
     * is unchanged: same objects, no hooks. */
    lookout_config *cfg3 = parse("scrape_configs:\n"
                                 "  - job_name: a\n"
                                 "    scrape_interval: 30s\n"
                                 "    body_size_limit: 1MB\n"
                                 "  - job_name: b\n");
    h = (hook_log){0};
    targets_apply_config(m, cfg3);
    config_free(cfg2);
    cr_assert_eq(h.removed, 2);
    cr_assert_eq(h.added, 2);
    cr_assert_eq(h.updated, 0);
    targets_read_begin(m);
    pa = targets_pool_find(m, "a");
    cr_assert_eq(pa->n_active, 2);
    cr_assert_null(targets_pool_get(pa, ha));
    cr_assert_str_eq(labelset_get(&pa->active[0]->t.labels, "__scrape_interval__"), "30s");
    targets_state_get(pa, pa->active[0], &st);
    cr_assert_eq(st.health, TARGET_HEALTH_UNKNOWN);
    const target_pool *pb = targets_pool_find(m, "b");
    cr_assert_eq(targets_pool_get(pb, hb), b1);
    targets_state_get(pb, b1, &st);
    cr_assert_eq(st.last_scrape_ms, 2000);
    targets_read_end(m);

    /* Job b is removed, job c added (empty until its first sync). */
    lookout_config *cfg4 = parse("scrape_configs:\n"
                                 "  - job_name: c\n"
                                 "  - job_name: a\n"
                                 "    scrape_interval: 30s\n"
                                 "    body_size_limit: 1MB\n");
    h = (hook_log){0};
    targets_apply_config(m, cfg4);
    config_free(cfg3);
    cr_assert_eq(h.removed, 2);
    cr_assert_eq(h.added, 0);
    targets_read_begin(m);
    cr_assert_eq(targets_n_pools(m), 2);
    cr_assert_str_eq(targets_pool_at(m, 0)->job, "a");
    cr_assert_str_eq(targets_pool_at(m, 1)->job, "c");
    cr_assert_null(targets_pool_find(m, "b"));
    cr_assert_eq(targets_pool_find(m, "a")->n_active, 2);
    targets_read_end(m);

    /* A sync for a job that is not configured is ignored. */
    const char *x[] = {"h9:80"};
    group_of(&g, "s:0", x, 1, NULL, NULL);
    sync1(m, "b", &g);
    target_group_free(&g);
    targets_read_begin(m);
    cr_assert_null(targets_pool_find(m, "b"));
    targets_read_end(m);

    targets_free(m);
    config_free(cfg4);
}

Test(targets, health_names)
{
    cr_assert_str_eq(target_health_name(TARGET_HEALTH_UNKNOWN), "unknown");
    cr_assert_str_eq(target_health_name(TARGET_HEALTH_UP), "up");
    cr_assert_str_eq(target_health_name(TARGET_HEALTH_DOWN), "down");
}

static double builds_total(const char *job)
{
    static const char *names[] = {"job"};
    metric_family *f = metric_family_get("lookout_target_builds_total", METRIC_COUNTER,
                                         "Total number of discovered targets run through target building "
                                         "(relabeling); only groups that changed are rebuilt.",
                                         1, names);
    const char *v[] = {job};
    return metric_value(f, v);
}

static const target_group *frozen_pod(size_t i, const char *ver)
{
    char src[64], a1[64], a2[64];
    snprintf(src, sizeof src, "pod/ns/p%zu", i);
    snprintf(a1, sizeof a1, "10.%zu.%zu.%zu:8000", i / 65536, i / 256 % 256, i % 256);
    snprintf(a2, sizeof a2, "10.%zu.%zu.%zu:8001", i / 65536, i / 256 % 256, i % 256);
    const char *addrs[] = {a1, a2};
    target_group g;
    group_of(&g, src, addrs, 2, "__meta_ver", ver);
    const target_group *f = target_group_freeze(&g);
    target_group_free(&g);
    return f;
}

/* The discovery manager hands the full set on every sync, sharing unchanged (frozen) groups: only the
 * group that changed is rebuilt, the diff touches only its targets, and the rest keep their objects. */
Test(targets, incremental_sync_rebuilds_only_changed_groups)
{
    enum { N = 10000 };
    lookout_config *cfg = parse("scrape_configs:\n"
                                "  - job_name: inc\n"
                                "    relabel_configs:\n"
                                "      - {source_labels: [__meta_ver], target_label: ver}\n");
    target_manager *m = targets_new();
    hook_log h = {0};
    targets_set_hook(m, hook, &h);
    targets_apply_config(m, cfg);
    const target_group **gs = calloc(N, sizeof *gs);
    for (size_t i = 0; i < N; i++)
        gs[i] = frozen_pod(i, "1");
    double b0 = builds_total("inc");
    targets_sync(m, "inc", gs, N);
    cr_assert_eq(builds_total("inc") - b0, 2.0 * N);
    cr_assert_eq(h.added, 2 * N);

    targets_read_begin(m);
    const target_pool *p = targets_pool_find(m, "inc");
    cr_assert_eq(p->n_active, 2 * N);
    const active_target *keep = find_addr(p, "10.0.0.7:8000");
    const active_target *old = find_addr(p, "10.0.19.136:8000"); /* pod 5000 */
    cr_assert_not_null(keep);
    cr_assert_not_null(old);
    cr_assert_str_eq(labelset_get(&old->t.labels, "ver"), "1");
    targets_read_end(m);
    targets_report_scrape(m, "inc", keep->t.hash, NULL, 1234, 0.5);

    /* Same set again: nothing is rebuilt, nothing is told. */
    h = (hook_log){0};
    b0 = builds_total("inc");
    targets_sync(m, "inc", gs, N);
    cr_assert_eq(builds_total("inc") - b0, 0.0);
    cr_assert_eq(h.added + h.removed + h.updated, 0);

    /* Pod 5000 changes (new group object): its 2 targets are rebuilt, replaced, and nothing else. */
    target_group_unref(gs[5000]);
    gs[5000] = frozen_pod(5000, "2");
    h = (hook_log){0};
    b0 = builds_total("inc");
    targets_sync(m, "inc", gs, N);
    cr_assert_eq(builds_total("inc") - b0, 2.0);
    cr_assert_eq(h.removed, 2);
    cr_assert_eq(h.added, 2);
    cr_assert_eq(h.updated, 0);
    targets_read_begin(m);
    p = targets_pool_find(m, "inc");
    cr_assert_eq(p->n_active, 2 * N);
    cr_assert_eq(find_addr(p, "10.0.0.7:8000"), keep);
    target_state st;
    targets_state_get(p, keep, &st);
    cr_assert_eq(st.last_scrape_ms, 1234);
    const active_target *nt = find_addr(p, "10.0.19.136:8000");
    cr_assert_str_eq(labelset_get(&nt->t.labels, "ver"), "2");
    cr_assert_str_eq(adisc(p, nt, "__meta_ver"), "2");
    for (size_t i = 1; i < p->n_active; i++) /* display order kept by the incremental merge */
        cr_assert(strcmp(p->active[i - 1]->t.url, p->active[i]->t.url) < 0);
    targets_read_end(m);

    /* The pod goes away: its group is no longer in the set. */
    h = (hook_log){0};
    b0 = builds_total("inc");
    const target_group *gone = gs[5000];
    gs[5000] = gs[N - 1];
    targets_sync(m, "inc", gs, N - 1);
    gs[5000] = NULL;
    target_group_unref(gone);
    cr_assert_eq(builds_total("inc") - b0, 0.0);
    cr_assert_eq(h.removed, 2);
    cr_assert_eq(h.added, 0);
    targets_read_begin(m);
    p = targets_pool_find(m, "inc");
    cr_assert_eq(p->n_active, 2 * N - 2);
    cr_assert_null(find_addr(p, "10.0.19.136:8000"));
    targets_read_end(m);

    /* A config change rebuilds everything; kept targets are updated. */
    lookout_config *cfg2 = parse("scrape_configs:\n"
                                 "  - job_name: inc\n"
                                 "    scrape_interval: 7s\n"
                                 "    relabel_configs:\n"
                                 "      - {source_labels: [__meta_ver], target_label: ver}\n");
    h = (hook_log){0};
    b0 = builds_total("inc");
    targets_apply_config(m, cfg2);
    config_free(cfg);
    cr_assert_eq(builds_total("inc") - b0, 2.0 * (N - 1));
    cr_assert_eq(h.removed, 2 * N - 2); /* __scrape_interval__ is a label: new identities */
    cr_assert_eq(h.added, 2 * N - 2);

    targets_free(m);
    for (size_t i = 0; i < N; i++)
        if (gs[i])
            target_group_unref(gs[i]);
    free(gs);
    config_free(cfg2);
}

/* Plain groups (no gen) are recognised by content: an identical set rebuilds nothing. */
Test(targets, incremental_plain_groups_by_content)
{
    lookout_config *cfg = parse(cfg_basic);
    target_manager *m = targets_new();
    targets_apply_config(m, cfg);
    const char *a[] = {"h1:80", "h2:80"}, *b[] = {"h3:80"};
    target_group g1, g2, g3;
    group_of(&g1, "s:0", a, 2, NULL, NULL);
    group_of(&g2, "s:1", b, 1, NULL, NULL);
    const target_group *gs[] = {&g1, &g2};
    double b0 = builds_total("a");
    targets_sync(m, "a", gs, 2);
    cr_assert_eq(builds_total("a") - b0, 3.0);
    targets_sync(m, "a", gs, 2);
    cr_assert_eq(builds_total("a") - b0, 3.0);
    group_of(&g3, "s:1", a, 1, NULL, NULL); /* s:1 now holds h1:80, a duplicate of s:0's */
    gs[1] = &g3;
    targets_sync(m, "a", gs, 2);
    cr_assert_eq(builds_total("a") - b0, 4.0);
    targets_read_begin(m);
    const target_pool *p = targets_pool_find(m, "a");
    cr_assert_eq(p->n_active, 2);
    cr_assert_null(find_addr(p, "h3:80"));
    targets_read_end(m);
    target_group_free(&g1);
    target_group_free(&g2);
    target_group_free(&g3);
    targets_free(m);
    config_free(cfg);
}

/* target_limit: hooks see every target of a pool over its limit with Prometheus' forced error; a change
 * of the count re-announces every target with the new text; back within the limit, the error clears. */
typedef struct limit_log {
    int added, updated;
    char last_error[256];
    int with_error;
} limit_log;

static void limit_hook(void *ctx, target_event ev, const char *job, const built_target *t, const scrape_config *sc)
{
    (void)job;
    (void)sc;
    limit_log *h = ctx;
    if (ev == TARGET_REMOVED)
        return;
    if (ev == TARGET_ADDED)
        h->added++;
    else
        h->updated++;
    snprintf(h->last_error, sizeof h->last_error, "%s", t->error);
    if (t->error[0])
        h->with_error++;
}

Test(targets, target_limit_forces_every_target_down)
{
    lookout_config *cfg = parse("scrape_configs:\n  - job_name: a\n    target_limit: 2\n");
    target_manager *m = targets_new();
    limit_log h = {0};
    targets_set_hook(m, limit_hook, &h);
    targets_apply_config(m, cfg);
    target_group g;
    const char *two[] = {"h1:80", "h2:80"};
    group_of(&g, "s:0", two, 2, NULL, NULL);
    sync1(m, "a", &g);
    target_group_free(&g);
    cr_assert_eq(h.added, 2);
    cr_assert_eq(h.with_error, 0);
    /* Prometheus' prometheus_target_scrape_pool_exceeded_target_limit_total: one per sync over the limit */
    metric_family *trips = metric_family_get("lookout_target_scrape_pool_exceeded_target_limit_total",
                                             METRIC_COUNTER, "", 0, NULL);
    double before = metric_value(trips, NULL);

    h = (limit_log){0};
    const char *three[] = {"h1:80", "h2:80", "h3:80"};
    group_of(&g, "s:0", three, 3, NULL, NULL);
    sync1(m, "a", &g);
    target_group_free(&g);
    cr_assert_eq(h.added, 1);
    cr_assert_eq(h.updated, 2);
    cr_assert_eq(h.with_error, 3);
    cr_assert_str_eq(h.last_error, "target_limit exceeded (number of targets: 3, limit: 2)");

    h = (limit_log){0};
    const char *four[] = {"h1:80", "h2:80", "h3:80", "h4:80"};
    group_of(&g, "s:0", four, 4, NULL, NULL);
    sync1(m, "a", &g);
    target_group_free(&g);
    cr_assert_eq(h.added, 1);
    cr_assert_eq(h.updated, 3);
    cr_assert_eq(h.with_error, 4);
    cr_assert_str_eq(h.last_error, "target_limit exceeded (number of targets: 4, limit: 2)");
    cr_assert_eq(metric_value(trips, NULL) - before, 2);

    h = (limit_log){0};
    const char *one[] = {"h1:80"};
    group_of(&g, "s:0", one, 1, NULL, NULL);
    sync1(m, "a", &g);
    target_group_free(&g);
    cr_assert_eq(h.updated, 1);
    cr_assert_eq(h.with_error, 0);
    cr_assert_str_eq(h.last_error, "");
    cr_assert_eq(metric_value(trips, NULL) - before, 2, "back within the limit: no trip");
    targets_free(m);
    config_free(cfg);
}
