/* ingest: the writer thread between the scrape loop and the store. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ingest/ingest.h"
#include "util/hash.h"
#include "util/metrics.h"

static const char *BODY1 =
    "{\"target_uuid\":\"u1\",\"aggregated_errors\":[{\"aggregation_key\":\"k1\",\"total_count\":3,"
    "\"severity\":\"error\",\"latest_errors\":[{\"error\":{\"class\":\"E\",\"message\":\"boom\"},"
    "\"uuid\":\"o1\",\"timestamp\":\"2024-03-02T11:02:44Z\",\"severity\":\"error\"}]}]}";
static const char *BODY2 =
    "{\"target_uuid\":\"u1\",\"aggregated_errors\":[{\"aggregation_key\":\"k1\",\"total_count\":5,"
    "\"severity\":\"error\",\"latest_errors\":[{\"error\":{\"class\":\"E\",\"message\":\"boom\"},"
    "\"uuid\":\"o2\",\"timestamp\":\"2024-03-02T11:03:44Z\",\"severity\":\"error\"}]}]}";

static scrape_result result(const char *job, uint64_t hash, const char *url, const char *body, const char *error)
{
    scrape_result r = {.job = job, .hash = hash, .url = url, .start_ms = 1000, .duration_s = 0.01,
                       .http_status = error ? 500 : 200, .body = body, .body_len = body ? strlen(body) : 0,
                       .error = error};
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

Test(ingest, merges_skips_unchanged_and_writes_once_synced)
{
    store *st = store_memory_new(NULL);
    selfexc *sx = selfexc_new();
    ingest *in = ingest_new(st, NULL, sx, NULL);
    char err[256];
    cr_assert_eq(ingest_start(in, err, sizeof err), 0, "%s", err);
    scrape_result r = result("api", 1, "http://a/-/exceptions", BODY1, NULL);
    ingest_submit(in, &r);
    ingest_submit(in, &r); /* same bytes: skipped */
    cr_assert_eq(ingest_sync(in, 5000), 0);
    cr_assert_eq(total_of(st, "api", "k1"), 3);
    r = result("api", 1, "http://a/-/exceptions", BODY2, NULL);
    ingest_submit(in, &r);
    cr_assert_eq(ingest_sync(in, 5000), 0);
    cr_assert_eq(total_of(st, "api", "k1"), 5);
    ingest_status s;
    ingest_get_status(in, &s);
    cr_assert_eq(s.merged_bodies, 2);
    cr_assert_eq(s.unchanged_bodies, 1);
    cr_assert_eq(s.backlog_changes, 0);
    cr_assert_neq(s.last_write_ok_ms, 0);
    ingest_free(in);
    selfexc_free(sx);
    store_close(st);
}

static int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    int rc = sqlite3_step(st);
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* An upgrade that changes the body hash (session 8: hash_body64's stripes) finds the old function's value in
 * sources.body_hash: each source's first body after it is parsed once more, merges nothing twice (its counts
 * are the stored ones), stores the new value, and the body after it is skipped as unchanged again. The old
 * value is session 6's hash_body64 of BODY1, computed in Python from that function (tests/unit/test_merge.c
 * at 407f7a5 has it). */
Test(ingest, a_stored_hash_of_an_older_function_costs_one_parse)
{
    char dir[] = "/tmp/lookout-ingest-XXXXXX", db[64], sql[160], err[256];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db, sizeof db, "%s/lookout.db", dir);
    const int64_t OLD = 3591653657181197972LL; /* 0x31d81df8c8849694 */
    for (int run = 0; run < 2; run++) {
        store *st = store_sqlite_new(db, NULL, err, sizeof err);
        cr_assert_not_null(st, "%s", err);
        selfexc *sx = selfexc_new();
        ingest *in = ingest_new(st, NULL, sx, NULL);
        cr_assert_eq(ingest_start(in, err, sizeof err), 0, "%s", err);
        scrape_result r = result("api", 1, "http://a/-/exceptions", BODY1, NULL);
        ingest_submit(in, &r);
        cr_assert_eq(ingest_sync(in, 5000), 0);
        ingest_submit(in, &r); /* the same bytes: skipped, in both runs */
        cr_assert_eq(ingest_sync(in, 5000), 0);
        ingest_status s;
        ingest_get_status(in, &s);
        cr_assert_eq(s.merged_bodies, 1, "run %d", run); /* run 1: the old stored value mismatched once */
        cr_assert_eq(s.unchanged_bodies, 1, "run %d", run);
        cr_assert_eq(total_of(st, "api", "k1"), 3, "run %d", run);
        if (run == 1) {
            r = result("api", 1, "http://a/-/exceptions", BODY2, NULL);
            ingest_submit(in, &r);
            cr_assert_eq(ingest_sync(in, 5000), 0);
            cr_assert_eq(total_of(st, "api", "k1"), 5);
        }
        ingest_free(in);
        selfexc_free(sx);
        store_close(st);
        if (run == 0) { /* the new value was stored; put the old function's value of the same body there */
            cr_assert_eq(sql_int(db, "SELECT body_hash FROM sources"), (int64_t)hash_body64(BODY1, strlen(BODY1)));
            snprintf(sql, sizeof sql, "UPDATE sources SET body_hash = %lld", (long long)OLD);
            sqlite3 *h;
            cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
            cr_assert_eq(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
            cr_assert_eq(sqlite3_changes(h), 1);
            sqlite3_close(h);
        }
    }
    cr_assert_eq(sql_int(db, "SELECT count(*) FROM sources"), 1);
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(sql, sizeof sql, "%s%s", db, suffix[i]);
        unlink(sql);
    }
    cr_assert_eq(rmdir(dir), 0);
}

/* With the target known (ingest_target_event), an unchanged body is decided in ingest_submit without
 * queueing it; the outcome must be exactly the writer's: a body identical to the last merged one is
 * unchanged, one identical to an older body still queued behind a different one is merged (here: a
 * counter reset, 3 after 5 adds 3), and an invalid body is parsed (and fails) every time. */
Test(ingest, unchanged_bodies_decided_at_submit_keep_the_writers_semantics)
{
    store *st = store_memory_new(NULL);
    ingest *in = ingest_new(st, NULL, NULL, NULL);
    char err[256];
    cr_assert_eq(ingest_start(in, err, sizeof err), 0, "%s", err);
    const char *url = "http://a/-/exceptions";
    built_target t = {.status = TARGET_ACTIVE, .url = (char *)url, .dropped_by = -1, .hash = 7};
    labelset_init(&t.labels);
    labelset_set(&t.labels, "job", "api");
    labelset_set(&t.labels, "instance", "a");
    ingest_target_event(in, TARGET_ADDED, "api", &t, false, 0);
    labelset_free(&t.labels);
    scrape_result r1 = result("api", 7, url, BODY1, NULL), r2 = result("api", 7, url, BODY2, NULL);
    scrape_result bad = result("api", 7, url, "{", NULL);
    ingest_submit(in, &r1);
    cr_assert_eq(ingest_sync(in, 5000), 0);
    ingest_submit(in, &r1); /* unchanged: decided here */
    ingest_status s;
    ingest_get_status(in, &s);
    cr_assert_eq(s.unchanged_bodies, 1);
    cr_assert_eq(s.queued_bodies, 0);
    ingest_submit(in, &r2);
    ingest_submit(in, &r1); /* BODY2 still queued: not unchanged */
    cr_assert_eq(ingest_sync(in, 5000), 0);
    cr_assert_eq(total_of(st, "api", "k1"), 8);
    ingest_submit(in, &r1);
    ingest_submit(in, &bad);
    cr_assert_eq(ingest_sync(in, 5000), 0);
    ingest_submit(in, &bad);
    cr_assert_eq(ingest_sync(in, 5000), 0);
    ingest_submit(in, &r1); /* the engine still remembers BODY1 */
    cr_assert_eq(ingest_sync(in, 5000), 0);
    cr_assert_eq(total_of(st, "api", "k1"), 8);
    ingest_get_status(in, &s);
    cr_assert_eq(s.merged_bodies, 3);
    cr_assert_eq(s.unchanged_bodies, 3);
    cr_assert_eq(s.failed_bodies, 2);
    ingest_free(in);
    store_close(st);
}

Test(ingest, parse_and_scrape_failures_go_to_selfexc)
{
    store *st = store_memory_new(NULL);
    selfexc *sx = selfexc_new();
    ingest *in = ingest_new(st, NULL, sx, NULL);
    char err[256];
    cr_assert_eq(ingest_start(in, err, sizeof err), 0);
    scrape_result r = result("api", 1, "http://bad/-/exceptions", "not json", NULL);
    ingest_submit(in, &r);
    r = result("api", 2, "http://down/-/exceptions", NULL, "server returned HTTP status 500 Internal Server Error");
    ingest_submit(in, &r);
    cr_assert_eq(ingest_sync(in, 5000), 0);
    size_t len;
    char *json = selfexc_export(sx, &len);
    cr_assert(strstr(json, "\"scrape-parse-error\""), "%s", json);
    cr_assert(strstr(json, "http://bad/-/exceptions"));
    cr_assert(strstr(json, "\"scrape-error\""));
    cr_assert(strstr(json, "\"request_method\":\"GET\""));
    free(json);
    const char *lv[] = {"api"};
    cr_assert_geq(metric_value(metric_family_get("lookout_payload_parse_failures_total", METRIC_COUNTER, "", 1,
                                                 (const char *[]){"job"}),
                               lv),
                  1);
    ingest_free(in);
    selfexc_free(sx);
    store_close(st);
}

/* A store that fails its first writes: the change set is kept and written later. */
typedef struct flaky {
    store base;
    store *inner;
    int fail;
} flaky;
static const store_ops *inner_ops;
static int flaky_apply(store *s, const merge_changeset *cs, int64_t now, char *err, size_t n)
{
    flaky *f = (flaky *)s;
    if (f->fail > 0) {
        f->fail--;
        snprintf(err, n, "database is locked");
        return -1;
    }
    return inner_ops->apply(f->inner, cs, now, err, n);
}
static int flaky_save(store *s, const merge_state *st, char *err, size_t n)
{
    return inner_ops->save_state(((flaky *)s)->inner, st, err, n);
}
static int flaky_load(store *s, merge_engine *e, char *err, size_t n)
{
    return inner_ops->load(((flaky *)s)->inner, e, err, n);
}

Test(ingest, store_failure_keeps_backlog_and_retries)
{
    store *inner = store_memory_new(NULL);
    inner_ops = inner->ops;
    static store_ops ops;
    ops = *inner->ops;
    ops.name = "flaky";
    ops.apply = flaky_apply;
    ops.save_state = flaky_save;
    ops.load = flaky_load;
    flaky f = {.base = {.ops = &ops}, .inner = inner, .fail = 1};
    ingest_options o = {.flush_interval_ms = 50};
    ingest *in = ingest_new(&f.base, NULL, NULL, &o);
    char err[256];
    cr_assert_eq(ingest_start(in, err, sizeof err), 0);
    scrape_result r = result("api", 1, "http://a/-/exceptions", BODY1, NULL);
    ingest_submit(in, &r);
    cr_assert_eq(ingest_sync(in, 5000), 0); /* settles on the failure */
    ingest_status s;
    ingest_get_status(in, &s);
    cr_assert_eq(s.write_failures, 1);
    cr_assert_eq(s.backlog_changes, 1);
    cr_assert_str_eq(s.last_error, "database is locked");
    cr_assert_eq(total_of(inner, "api", "k1"), 0);
    for (int i = 0; i < 40 && total_of(inner, "api", "k1") != 3; i++)
        usleep(100000); /* retry after the 1 s backoff */
    cr_assert_eq(total_of(inner, "api", "k1"), 3);
    ingest_get_status(in, &s);
    cr_assert_eq(s.backlog_changes, 0);
    ingest_free(in);
    store_close(inner);
}

Test(ingest, full_queue_drops_superseded_body_of_same_target)
{
    store *st = store_memory_new(NULL);
    /* Room for about one body: the writer is not started, so nothing drains. */
    ingest_options o = {.queue_bytes = strlen(BODY1) + 400};
    ingest *in = ingest_new(st, NULL, NULL, &o);
    scrape_result r = result("api", 1, "http://a/-/exceptions", BODY1, NULL);
    ingest_submit(in, &r);
    r = result("api", 1, "http://a/-/exceptions", BODY2, NULL);
    ingest_submit(in, &r);
    ingest_status s;
    ingest_get_status(in, &s);
    cr_assert_eq(s.queued_bodies, 1);
    cr_assert_eq(s.dropped_bodies, 1);
    char err[256];
    cr_assert_eq(ingest_start(in, err, sizeof err), 0);
    cr_assert_eq(ingest_sync(in, 5000), 0);
    cr_assert_eq(total_of(st, "api", "k1"), 5); /* the newer body won */
    ingest_free(in);
    store_close(st);
}
