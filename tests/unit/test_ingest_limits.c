/* ingest under hostile input (issue 12): sample_limit, a change the database refuses (skipped, not retried
 * forever), a push posing as a scraped target, retention of errors through the writer. */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "ingest/error_relabel.h"
#include "ingest/ingest.h"
#include "util/metrics.h"

static scrape_result result(const char *job, uint64_t hash, const char *url, const char *body)
{
    scrape_result r = {.job = job, .hash = hash, .url = url, .start_ms = 1000, .duration_s = 0.01,
                       .http_status = 200, .body = body, .body_len = strlen(body)};
    return r;
}

static uint64_t total_of(store *st, const char *job, const char *key)
{
    store_detail d;
    char err[256];
    if (store_get(st, job, key, &d, err, sizeof err) != 0)
        return 0;
    uint64_t t = d.s.total_count;
    store_detail_free(&d);
    return t;
}

static double metric1(const char *name, const char *job)
{
    const char *lv[] = {job};
    return metric_value(metric_family_get(name, METRIC_COUNTER, "", 1, (const char *[]){"job"}), lv);
}

static void announce_target(ingest *in, const char *job, uint64_t hash, const char *url, uint64_t sample_limit)
{
    built_target t;
    memset(&t, 0, sizeof t);
    t.status = TARGET_ACTIVE;
    labelset_init(&t.discovered);
    labelset_init(&t.labels);
    labelset_set(&t.labels, "job", job);
    labelset_set(&t.labels, "instance", url);
    t.url = (char *)url;
    t.hash = hash;
    ingest_target_event(in, TARGET_ADDED, job, &t, false, sample_limit);
    labelset_free(&t.labels);
}

/* sample_limit 2: a payload with 3 aggregates fails the scrape whole; nothing of it is applied, and the
 * same body is refused again (not skipped as unchanged). */
Test(ingest_limits, sample_limit_refuses_the_whole_scrape)
{
    store *st = store_memory_new(NULL);
    ingest *in = ingest_new(st, NULL, NULL, NULL);
    char err[256];
    cr_assert_eq(ingest_start(in, err, sizeof err), 0, "%s", err);
    announce_target(in, "lim", 7, "http://a/-/exceptions", 2);
    const char *three = "{\"target_uuid\":\"u\",\"aggregated_errors\":[{\"aggregation_key\":\"a\",\"total_count\":1},"
                        "{\"aggregation_key\":\"b\",\"total_count\":1},{\"aggregation_key\":\"c\",\"total_count\":1}]}";
    const char *two = "{\"target_uuid\":\"u\",\"aggregated_errors\":[{\"aggregation_key\":\"a\",\"total_count\":4},"
                      "{\"aggregation_key\":\"b\",\"total_count\":5}]}";
    scrape_result r = result("lim", 7, "http://a/-/exceptions", three);
    ingest_submit(in, &r);
    ingest_submit(in, &r);
    cr_assert_eq(ingest_sync(in, 5000), 0);
    cr_assert_eq(total_of(st, "lim", "a"), 0);
    cr_assert_eq(total_of(st, "lim", "c"), 0);
    ingest_status s;
    ingest_get_status(in, &s);
    cr_assert_eq(s.failed_bodies, 2);
    cr_assert_eq(s.unchanged_bodies, 0);
    cr_assert_eq(metric1("lookout_target_scrapes_exceeded_sample_limit_total", "lim"), 2);
    r = result("lim", 7, "http://a/-/exceptions", two);
    ingest_submit(in, &r);
    cr_assert_eq(ingest_sync(in, 5000), 0);
    cr_assert_eq(total_of(st, "lim", "a"), 4);
    cr_assert_eq(total_of(st, "lim", "b"), 5);
    ingest_free(in);
    store_close(st);
}

/* sample_limit counts the aggregates error_relabel_configs leave, as Prometheus counts samples after
 * metric_relabel_configs: a payload of 3 whose rules drop 1 passes a limit of 2; the drop is counted only
 * for the accepted scrape; with 3 kept it is refused whole. */
Test(ingest_limits, sample_limit_counts_after_error_relabeling)
{
    char err[256];
    const char *y = "scrape_configs:\n  - job_name: rl\n    static_configs: [{targets: ['a:1']}]\n"
                    "    error_relabel_configs:\n      - source_labels: [__aggregation_key__]\n"
                    "        regex: 'noise-.*'\n        action: drop\n";
    lookout_config *c = config_parse(y, strlen(y), "t.yml", err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    store *st = store_memory_new(NULL);
    ingest *in = ingest_new(st, NULL, NULL, NULL);
    ingest_set_error_relabel(in, error_relabel_set_new(c));
    config_free(c);
    cr_assert_eq(ingest_start(in, err, sizeof err), 0, "%s", err);
    announce_target(in, "rl", 8, "http://b/-/exceptions", 2);
    const char *one_noise = "{\"target_uuid\":\"u\",\"aggregated_errors\":[{\"aggregation_key\":\"a\",\"total_count\":1},"
                            "{\"aggregation_key\":\"noise-1\",\"total_count\":1},{\"aggregation_key\":\"b\",\"total_count\":2}]}";
    const char *three = "{\"target_uuid\":\"u\",\"aggregated_errors\":[{\"aggregation_key\":\"a\",\"total_count\":5},"
                        "{\"aggregation_key\":\"b\",\"total_count\":6},{\"aggregation_key\":\"c\",\"total_count\":7},"
                        "{\"aggregation_key\":\"noise-1\",\"total_count\":8}]}";
    const char *lv[] = {"rl", "relabel_drop"};
    metric_family *dropped = metric_family_get("lookout_errors_dropped_total", METRIC_COUNTER, "", 2,
                                               (const char *[]){"job", "reason"});
    double dropped0 = metric_value(dropped, lv);
    scrape_result r = result("rl", 8, "http://b/-/exceptions", one_noise);
    ingest_submit(in, &r);
    cr_assert_eq(ingest_sync(in, 5000), 0);
    cr_assert_eq(total_of(st, "rl", "a"), 1);
    cr_assert_eq(total_of(st, "rl", "b"), 2);
    cr_assert_eq(total_of(st, "rl", "noise-1"), 0);
    cr_assert_eq(metric_value(dropped, lv) - dropped0, 1);
    r = result("rl", 8, "http://b/-/exceptions", three);
    ingest_submit(in, &r);
    cr_assert_eq(ingest_sync(in, 5000), 0);
    cr_assert_eq(total_of(st, "rl", "a"), 1, "refused whole: nothing of it applied");
    cr_assert_eq(total_of(st, "rl", "c"), 0);
    cr_assert_eq(metric1("lookout_target_scrapes_exceeded_sample_limit_total", "rl"), 1);
    cr_assert_eq(metric_value(dropped, lv) - dropped0, 1, "the refused scrape's drop is not counted");
    ingest_status s;
    ingest_get_status(in, &s);
    cr_assert_eq(s.failed_bodies, 1);
    cr_assert_eq(s.merged_bodies, 1);
    ingest_free(in);
    store_close(st);
}

/* A change the database refuses (here a trigger, as a constraint would) is logged, metered and skipped;
 * the rest of the write goes in, and the writer keeps writing afterwards. */
Test(ingest_limits, refused_change_is_skipped_not_retried_forever)
{
    char dir[] = "/tmp/lookout-ingest-limits-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/lookout.db", dir);
    char err[256];
    store *st = store_sqlite_new(path, NULL, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(path, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h,
                              "CREATE TRIGGER poison BEFORE INSERT ON aggregates WHEN NEW.akey = 'poison' "
                              "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END",
                              0, 0, 0),
                 SQLITE_OK, "%s", sqlite3_errmsg(h));
    sqlite3_close(h);
    ingest_options o = {.flush_interval_ms = 20};
    ingest *in = ingest_new(st, NULL, NULL, &o);
    cr_assert_eq(ingest_start(in, err, sizeof err), 0, "%s", err);
    scrape_result r = result("rej", 1, "http://a/-/exceptions",
                             "{\"target_uuid\":\"u\",\"aggregated_errors\":[{\"aggregation_key\":\"good\","
                             "\"total_count\":3},{\"aggregation_key\":\"poison\",\"total_count\":1}]}");
    ingest_submit(in, &r);
    cr_assert_eq(ingest_sync(in, 5000), 0);
    cr_assert_eq(total_of(st, "rej", "good"), 3);
    cr_assert_eq(total_of(st, "rej", "poison"), 0);
    ingest_status s;
    ingest_get_status(in, &s);
    cr_assert_eq(s.backlog_changes, 0);
    cr_assert_str_eq(s.last_error, "");
    cr_assert_eq(metric1("lookout_store_rejected_changes_total", "rej"), 1);
    r = result("rej", 1, "http://a/-/exceptions",
               "{\"target_uuid\":\"u\",\"aggregated_errors\":[{\"aggregation_key\":\"good\","
               "\"total_count\":8},{\"aggregation_key\":\"poison\",\"total_count\":1}]}");
    ingest_submit(in, &r);
    cr_assert_eq(ingest_sync(in, 5000), 0);
    cr_assert_eq(total_of(st, "rej", "good"), 8);
    ingest_get_status(in, &s);
    cr_assert_eq(s.backlog_changes, 0);
    ingest_free(in);
    store_close(st);
    unlink(path);
    char wal[300];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", path);
    unlink(wal);
    rmdir(dir);
}

/* A push reusing a scraped target's target_uuid counts its own claim once and never re-adds the scraped
 * count (before: 1000 became 3000 in three pushes). */
Test(ingest_limits, push_cannot_pose_as_a_scraped_target)
{
    store *st = store_memory_new(NULL);
    ingest *in = ingest_new(st, NULL, NULL, NULL);
    char err[256];
    cr_assert_eq(ingest_start(in, err, sizeof err), 0, "%s", err);
    const char *body = "{\"target_uuid\":\"victim\",\"aggregated_errors\":[{\"aggregation_key\":\"k\","
                       "\"total_count\":1000}]}";
    scrape_result r = result("api", 1, "http://a/-/exceptions", body);
    ingest_submit(in, &r);
    cr_assert_eq(ingest_sync(in, 5000), 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(ingest_push(in, "api", "1.2.3.4", body, strlen(body), 5000, NULL, err, sizeof err),
                     INGEST_PUSH_STORED, "%s", err);
        scrape_result again = result("api", 1, "http://a/-/exceptions",
                                     i % 2 ? body
                                           : "{\"target_uuid\":\"victim\",\"aggregated_errors\":[{\"aggregation_key\":"
                                             "\"k\",\"total_count\":1000}] }");
        ingest_submit(in, &again);
        cr_assert_eq(ingest_sync(in, 5000), 0);
    }
    cr_assert_eq(total_of(st, "api", "k"), 2000);
    ingest_free(in);
    store_close(st);
}

/* Retention with a window of seconds: the writer checks every half window and the store drops the error. */
Test(ingest_limits, writer_expires_silent_errors)
{
    store_options so = {.retention_ms = 1000};
    store *st = store_memory_new(&so);
    ingest_options o = {.flush_interval_ms = 20, .merge = {.retention_ms = 1000}};
    ingest *in = ingest_new(st, NULL, NULL, &o);
    char err[256];
    cr_assert_eq(ingest_start(in, err, sizeof err), 0, "%s", err);
    scrape_result r = result("ret", 1, "http://a/-/exceptions",
                             "{\"target_uuid\":\"u\",\"aggregated_errors\":[{\"aggregation_key\":\"k\","
                             "\"total_count\":2}]}");
    ingest_submit(in, &r);
    cr_assert_eq(ingest_sync(in, 5000), 0);
    cr_assert_eq(total_of(st, "ret", "k"), 2);
    /* event-driven wait with a generous deadline: gone within the window plus one check */
    for (int i = 0; i < 200 && total_of(st, "ret", "k") != 0; i++)
        usleep(50000);
    store_detail d;
    cr_assert_eq(store_get(st, "ret", "k", &d, err, sizeof err), STORE_NOT_FOUND);
    ingest_free(in);
    store_close(st);
}
