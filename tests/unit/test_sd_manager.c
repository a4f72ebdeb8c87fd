/* Discovery manager and static provider: groups per job/provider/source, prompt first sync, rate limit
 * and coalescing, reload (keep / replace / remove), jobs without SD, metrics. */
#include <criterion/criterion.h>

#include "sd_test_util.h"
#include "util/metrics.h"

static double gauge(const char *name, const char *a, const char *b)
{
    const char *lv[] = {a, b};
    return metric_value(metric_family_get(name, METRIC_GAUGE, "", 2, (const char *[]){"job", "x"}), lv);
}

Test(sd_manager, static_groups_one_per_block)
{
    recorder r;
    rec_init(&r);
    lookout_config *cfg = tcfg_new();
    scrape_config *sc = tcfg_job(cfg, "api");
    tcfg_static(sc, 0, (const char *[]){"a:1", "a:2", NULL}, (const char *[]){"env", "prod", NULL});
    tcfg_static(sc, 1, (const char *[]){"b:1", NULL}, NULL);

    /* min_interval 20 s: the first sync of a fresh job does not wait for it (rec_wait gives up after 5 s) */
    sd_manager *m = sd_manager_new(rec_sync, &r, 20000);
    cr_assert_eq(sd_manager_apply_config(m, cfg), 0);
    cr_assert(rec_wait(&r, "api", 1, 5000));
    const rec_call *c = rec_last(&r, "api");
    cr_assert_eq(c->n, 2);
    /* config order, sources are the block index */
    cr_assert_str_eq(c->groups[0].source, "0");
    cr_assert_str_eq(c->groups[1].source, "1");
    cr_assert_eq(c->groups[0].n_targets, 2);
    cr_assert_str_eq(labelset_get(&c->groups[0].targets[0], "__address__"), "a:1");
    cr_assert_str_eq(labelset_get(&c->groups[0].targets[1], "__address__"), "a:2");
    cr_assert_eq(c->groups[0].targets[0].n, 1);
    cr_assert_str_eq(labelset_get(&c->groups[0].labels, "env"), "prod");
    cr_assert_eq(c->groups[1].labels.n, 0);
    cr_assert_eq(gauge("lookout_sd_discovered_targets", "api", "static_configs/0"), 2);
    cr_assert_eq(gauge("lookout_sd_discovered_targets", "api", "static_configs/1"), 1);
    cr_assert_gt(gauge("lookout_sd_last_success_timestamp_seconds", "api", "static_configs/0"), 1e9);
    /* static emits once: no further sync */
    sleep_ms(150);
    cr_assert_eq(rec_count(&r, "api"), 1);
    sd_manager_free(m);
    tcfg_free(cfg);
    rec_free(&r);
}

Test(sd_manager, job_without_sd_gets_empty_sync)
{
    recorder r;
    rec_init(&r);
    lookout_config *cfg = tcfg_new();
    tcfg_job(cfg, "bare");
    sd_manager *m = sd_manager_new(rec_sync, &r, 1000);
    sd_manager_apply_config(m, cfg);
    cr_assert(rec_wait(&r, "bare", 1, 1000));
    cr_assert_eq(rec_last(&r, "bare")->n, 0);
    sd_manager_free(m);
    tcfg_free(cfg);
    rec_free(&r);
}

Test(sd_manager, unimplemented_kind_counts_as_failed_config)
{
    recorder r;
    rec_init(&r);
    lookout_config *cfg = tcfg_new();
    scrape_config *sc = tcfg_job(cfg, "j");
    tcfg_block(sc, SD_KUBERNETES, 0); /* a kind without a provider (yet) */
    tcfg_static(sc, 0, (const char *[]){"x:1", NULL}, NULL);
    sd_manager *m = sd_manager_new(rec_sync, &r, 1000);
    sd_manager_apply_config(m, cfg);
    cr_assert(rec_wait(&r, "j", 1, 1000));
    cr_assert(call_has_address(rec_last(&r, "j"), "x:1"));
    cr_assert_eq(metric_value(metric_family_get("lookout_sd_failed_configs", METRIC_GAUGE, "", 0, NULL), NULL), 1);
    sd_manager_free(m);
    tcfg_free(cfg);
    rec_free(&r);
}

/* Each reload replaces the static provider (its block changes); with min_interval 300 ms, ten reloads in a
 * row give the prompt first sync plus one coalesced sync carrying the last state, not ten. */
Test(sd_manager, coalesces_updates_and_rate_limits)
{
    recorder r;
    rec_init(&r);
    sd_manager *m = sd_manager_new(rec_sync, &r, 300);
    char addr[32];
    int64_t t0 = sd_now_mono_ms();
    for (int i = 0; i < 10; i++) {
        lookout_config *cfg = tcfg_new();
        snprintf(addr, sizeof addr, "t:%d", i);
        tcfg_static(tcfg_job(cfg, "j"), 0, (const char *[]){addr, NULL}, NULL);
        sd_manager_apply_config(m, cfg);
        tcfg_free(cfg);
    }
    /* the ten updates normally come within a few ms: the first sync, then one carrying the last state (3
     * allows one more in between). Each 300 ms the updates themselves took (a stalled test thread on a
     * loaded machine) allows one sync more, as the rate limit does. */
    int64_t applying_ms = sd_now_mono_ms() - t0;
    size_t bound = 3 + (size_t)(applying_ms / 300);
    const rec_call *c = rec_wait_for(&r, "j", pred_has, "t:9", 2000);
    cr_assert_not_null(c);
    cr_assert_eq(c->n, 1);
    cr_assert_eq(c->groups[0].n_targets, 1);
    sleep_ms(400);
    size_t n = rec_count(&r, "j");
    cr_assert_leq(n, bound, "%zu syncs for 10 updates in %lld ms", n, (long long)applying_ms);
    pthread_mutex_lock(&r.mu);
    for (size_t i = 1; i < r.n; i++)
        cr_assert_geq(r.calls[i].at_ms - r.calls[i - 1].at_ms, 290, "syncs %zu ms apart",
                      (size_t)(r.calls[i].at_ms - r.calls[i - 1].at_ms));
    pthread_mutex_unlock(&r.mu);
    cr_assert_geq(metric_value(metric_family_get("lookout_sd_updates_total", METRIC_COUNTER, "", 1,
                                                 (const char *[]){"job"}),
                               (const char *[]){"j"}),
                  (double)n);
    sd_manager_free(m);
    rec_free(&r);
}

Test(sd_manager, reload_replaces_changed_keeps_unchanged_and_removes_jobs)
{
    recorder r;
    rec_init(&r);
    sd_manager *m = sd_manager_new(rec_sync, &r, 50);
    lookout_config *c1 = tcfg_new();
    scrape_config *a = tcfg_job(c1, "a");
    tcfg_static(a, 0, (const char *[]){"keep:1", NULL}, NULL);
    tcfg_static(a, 1, (const char *[]){"old:1", NULL}, NULL);
    tcfg_static(tcfg_job(c1, "b"), 0, (const char *[]){"b:1", NULL}, NULL);
    sd_manager_apply_config(m, c1);
    cr_assert(rec_wait(&r, "a", 1, 1000));
    cr_assert(rec_wait(&r, "b", 1, 1000));
    cr_assert_eq(rec_last(&r, "a")->n, 2);

    lookout_config *c2 = tcfg_new();
    a = tcfg_job(c2, "a");
    tcfg_static(a, 0, (const char *[]){"keep:1", NULL}, NULL);
    tcfg_static(a, 1, (const char *[]){"new:1", NULL}, NULL);
    sd_manager_apply_config(m, c2);
    const rec_call *c = rec_wait_for(&r, "a", pred_has, "new:1", 1000);
    cr_assert_not_null(c);
    cr_assert_eq(c->n, 2);
    cr_assert(call_has_address(c, "keep:1"));
    cr_assert(!call_has_address(c, "old:1"));
    /* b vanished: exactly one final empty sync */
    cr_assert(rec_wait(&r, "b", 2, 1000));
    cr_assert_eq(rec_last(&r, "b")->n, 0);
    cr_assert_eq(gauge("lookout_sd_discovered_targets", "b", "static_configs/0"), 0);

    /* the same config again: everything is kept, jobs get their full state once more, b nothing */
    sd_manager_apply_config(m, c2);
    cr_assert(rec_wait(&r, "a", rec_count(&r, "a") + 1, 1000));
    c = rec_last(&r, "a");
    cr_assert(call_has_address(c, "keep:1") && call_has_address(c, "new:1"));
    sleep_ms(150);
    cr_assert_eq(rec_count(&r, "b"), 2);
    sd_manager_free(m);
    tcfg_free(c1);
    tcfg_free(c2);
    rec_free(&r);
}

static int slow_started, slow_calls;
static void slow_sync(void *ctx, const char *job, const target_group *const *groups, size_t n)
{
    (void)ctx, (void)job, (void)groups, (void)n;
    __atomic_add_fetch(&slow_started, 1, __ATOMIC_SEQ_CST);
    sleep_ms(100); /* slow work, so that free() meets a running callback */
    __atomic_add_fetch(&slow_calls, 1, __ATOMIC_SEQ_CST);
}

Test(sd_manager, no_callback_after_free)
{
    lookout_config *cfg = tcfg_new();
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof name, "j%d", i);
        tcfg_static(tcfg_job(cfg, name), 0, (const char *[]){"x:1", NULL}, NULL);
    }
    sd_manager *m = sd_manager_new(slow_sync, NULL, 0);
    sd_manager_apply_config(m, cfg);
    /* wait (event-driven, generous deadline) until a callback is running */
    for (int i = 0; i < 1000 && !__atomic_load_n(&slow_started, __ATOMIC_SEQ_CST); i++)
        sleep_ms(5);
    int started = __atomic_load_n(&slow_started, __ATOMIC_SEQ_CST);
    cr_assert_geq(started, 1, "no callback started in 5 s");
    cr_assert_lt(started, 5, "every job was already synced: nothing left for free() to cancel");
    sd_manager_free(m);
    /* free() waited for the running callback and started no other */
    int after = __atomic_load_n(&slow_started, __ATOMIC_SEQ_CST);
    cr_assert_eq(__atomic_load_n(&slow_calls, __ATOMIC_SEQ_CST), after, "a callback still runs after free()");
    /* jobs were still pending (4 x 100 ms of callbacks): a thread left running would start one here */
    sleep_ms(250);
    cr_assert_eq(__atomic_load_n(&slow_started, __ATOMIC_SEQ_CST), after);
    tcfg_free(cfg);
}

Test(sd_group, copy_and_add)
{
    target_group g, c;
    target_group_init(&g, "s");
    labelset t = LABELSET_INIT;
    for (int i = 0; i < 5; i++) {
        char a[16];
        snprintf(a, sizeof a, "h:%d", i);
        labelset_set(&t, "__address__", a);
        target_group_add_target(&g, &t);
    }
    target_group_copy(&c, &g);
    target_group_add_target(&c, &t); /* growth after a copy must not overflow */
    cr_assert_eq(c.n_targets, 6);
    cr_assert_str_eq(labelset_get(&c.targets[2], "__address__"), "h:2");
    cr_assert_str_eq(c.source, "s");
    labelset_free(&t);
    target_group_free(&g);
    target_group_free(&c);
}
