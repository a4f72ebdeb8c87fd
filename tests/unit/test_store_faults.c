/* Error paths of the SQL store (SQLite backend), driven by the driver layer's fault injection (sqldb.h:
 * sqldb_fault): each statement of a write, a read, a restore and a retention run fails in turn. The
 * operation must report the error (-1, or STORE_REJECTED when the database refused the data), leave the
 * database as it was (one transaction: no half-written cycle, no double count on retry), free what it
 * allocated (the sanitizer build and `make mutate MUTATE_ASAN=1` check), and work again once the fault is
 * gone. Every sweep also asserts how many statements it failed, so a sweep that never reached the store
 * cannot pass. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap_use.h"
#include "store/merge.h"
#include "store/sql_store.h"
#include "store/sqldb.h"
#include "store/store.h"

#define T0 1709377200000LL /* 2024-03-02T11:00:00Z */
#define MIN 60000LL

static char dir[64], dbpath[128];
static merge_engine *E;
static store *S;
static char err[256];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/lookout-faults-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(dbpath, sizeof dbpath, "%s/lookout.db", dir);
    S = store_sqlite_new(dbpath, NULL, err, sizeof(err));
    cr_assert_not_null(S, "%s", err);
    E = merge_new(NULL);
}

static void teardown(void)
{
    memset(&sqldb_fault, 0, sizeof(sqldb_fault));
    store_close(S);
    merge_free(E);
    char p[160];
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", dbpath, suffix[i]);
        unlink(p);
    }
    rmdir(dir);
}

TestSuite(faults, .init = setup, .fini = teardown);

/* Arms the fault: the n-th statement (containing match, NULL: any) fails. */
static void fail_nth(long n, const char *match, bool rejected)
{
    sqldb_fault = (sqldb_fault_plan){.after = n, .match = match, .rejected = rejected};
}

/* Disarms it; returns how many faults fired. */
static long disarm(void)
{
    long f = sqldb_fault.failed;
    memset(&sqldb_fault, 0, sizeof(sqldb_fault));
    return f;
}

/* One error (key, count, severity error, warning in job web) with one occurrence at minute m past 10:00, message msg, a
 * header, labels instance=url. */
static void merge_one(const char *job, const char *url, const char *key, int count, int m, const char *msg,
                      int64_t now, merge_changeset *cs)
{
    char body[2048];
    snprintf(body, sizeof body,
             "{\"target_uuid\":\"%s\",\"aggregated_errors\":[{\"aggregation_key\":\"%s\",\"total_count\":%d,"
             "\"severity\":\"%s\",\"created_at\":\"2024-03-01T09:00:00Z\",\"latest_errors\":[{\"error\":{"
             "\"class\":\"Err\",\"message\":\"%s\",\"stacktrace\":[\"at a\",\"at b\"],\"cause\":{\"class\":\"Io\","
             "\"message\":\"cause of %s\",\"stacktrace\":[\"at c\"]}},\"uuid\":\"u-%s-%d\",\"timestamp\":"
             "\"2024-03-02T10:%02d:00Z\",\"http_context\":{\"request_method\":\"GET\",\"request_url\":\"http://svc/x\","
             "\"request_headers\":{\"X-Id\":\"%d\"},\"request_body\":\"\"}}]}]}",
             url, key, count, strcmp(job, "web") ? "error" : "warning", msg, msg, key, m, m, m);
    payload_doc *d = payload_parse(body, strlen(body), url, err, sizeof(err));
    cr_assert_not_null(d, "%s", err);
    labelset ls;
    labelset_init(&ls);
    labelset_set(&ls, "instance", url);
    merge_input in = {.job = job, .url = url, .labels = &ls, .doc = d, .now_ms = now};
    merge_apply(E, &in, cs);
    labelset_free(&ls);
    payload_free(d);
}

static void apply_ok(merge_changeset *cs, int64_t now)
{
    cr_assert_eq(store_apply(S, cs, now, err, sizeof(err)), 0, "%s", err);
}

/* What the store holds, as one line per error: job/key total severity status samples labels (as the list
 * row counts them / as the detail has them) series-sum and the newest sample's message; then the jobs
 * summary. */
static char *dump(void)
{
    static char out[4096];
    size_t off = 0;
    store_query q = {.severity = -1, .status = -1, .sort = STORE_SORT_COUNT};
    store_page p;
    cr_assert_eq(store_list(S, &q, &p, err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < p.n; i++) {
        store_detail d;
        cr_assert_eq(store_get(S, p.v[i].job, p.v[i].key, &d, err, sizeof(err)), 0, "%s", err);
        uint64_t series = 0;
        for (size_t k = 0; k < d.n_series; k++)
            series += d.series[k].delta;
        cr_assert_eq(p.v[i].n_samples, d.n_samples, "%s: list row and detail disagree", d.s.key);
        cr_assert_eq(p.v[i].n_labels, d.n_labels, "%s: list row and detail disagree", d.s.key);
        cr_assert_eq(p.v[i].severity, d.s.severity, "%s: list row and detail disagree", d.s.key);
        off += (size_t)snprintf(out + off, sizeof out - off, "%s/%s %llu %s %s s=%zu l=%zu d=%llu %s\n", d.s.job,
                                d.s.key, (unsigned long long)d.s.total_count, payload_severity_name(p.v[i].severity),
                                store_status_name(d.s.status), d.n_samples, d.n_labels, (unsigned long long)series,
                                d.n_samples ? d.samples[0]->error.message : "-");
        store_detail_free(&d);
    }
    store_page_free(&p);
    store_job *j;
    size_t nj;
    cr_assert_eq(store_jobs(S, &j, &nj, err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < nj; i++)
        off += (size_t)snprintf(out + off, sizeof out - off, "job %s %llu/%llu %llu\n", j[i].job,
                                (unsigned long long)j[i].open, (unsigned long long)j[i].aggregates,
                                (unsigned long long)j[i].total_count);
    store_jobs_free(j, nj);
    return out;
}

/* Two errors in the store (alpha 5 from instance a, beta 2 from b, resolved), one resolved; then a change set that adds a new error, a new occurrence (with
 * a new label set) to an existing one and evicts nothing: alpha 5 -> 9 on a and 1 on a new instance c (10), gamma 3 in job web. */
static void history(merge_changeset *next)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 5, 1, "first", T0, &cs);
    merge_one("api", "http://b", "beta", 2, 2, "second", T0, &cs);
    apply_ok(&cs, T0);
    merge_changeset_free(&cs);
    cr_assert_eq(store_resolve(S, "api", "beta", T0, err, sizeof(err)), 0, "%s", err);
    merge_changeset_init(next);
    merge_one("api", "http://a", "alpha", 9, 3, "third", T0 + MIN, next);
    merge_one("api", "http://c", "alpha", 1, 4, "fourth", T0 + MIN, next);
    merge_one("web", "http://w", "gamma", 3, 5, "fifth", T0 + MIN, next);
}

Test(faults, apply_fails_whole_and_retries_once)
{
    merge_changeset cs;
    history(&cs);
    char before[4096];
    snprintf(before, sizeof before, "%s", dump());
    cr_assert_str_eq(before, "api/alpha 5 error open s=1 l=1 d=5 first\n"
                             "api/beta 2 error resolved s=1 l=1 d=2 second\n"
                             "job api 1/2 7\n");
    long n = 1;
    for (;; n++) {
        cr_assert_lt(n, 400, "apply never succeeded");
        fail_nth(n, NULL, false);
        strcpy(err, "");
        int rc = store_apply(S, &cs, T0 + MIN, err, sizeof(err));
        if (!disarm()) {
            cr_assert_eq(rc, 0, "%s", err);
            break;
        }
        cr_assert_eq(rc, -1, "statement %ld failed, apply returned %d", n, rc);
        cr_assert_str_eq(err, "injected fault");
        cr_assert_str_eq(dump(), before, "statement %ld failed: the database changed", n);
    }
    /* begin, tombstone deletes, upserts, samples, causes, headers, search rows, labels, series, counts,
     * commit: each one failed once */
    cr_assert_geq(n, 30, "only %ld statements", n);
    cr_assert_str_eq(dump(), "api/alpha 10 error open s=3 l=2 d=10 fourth\n"
                             "web/gamma 3 warning open s=1 l=1 d=3 fifth\n"
                             "api/beta 2 error resolved s=1 l=1 d=2 second\n"
                             "job api 1/2 12\n"
                             "job web 1/1 3\n");
    merge_changeset_free(&cs);
}

Test(faults, apply_refused_by_the_database_is_rejected)
{
    merge_changeset cs;
    history(&cs);
    /* a refused sample, a refused count, a refused commit */
    const char *where[] = {"INTO samples", "INTO counts", "COMMIT"};
    for (size_t i = 0; i < 3; i++) {
        fail_nth(1, where[i], true);
        cr_assert_eq(store_apply(S, &cs, T0 + MIN, err, sizeof(err)), STORE_REJECTED, "%s", where[i]);
        cr_assert_eq(disarm(), 1);
        fail_nth(1, where[i], false);
        cr_assert_eq(store_apply(S, &cs, T0 + MIN, err, sizeof(err)), -1, "%s", where[i]);
        cr_assert_eq(disarm(), 1);
    }
    merge_changeset_free(&cs);
}

Test(faults, reads_fail_cleanly)
{
    merge_changeset cs;
    history(&cs);
    apply_ok(&cs, T0 + MIN);
    merge_changeset_free(&cs);
    const char *expect = "api/alpha 10 error open s=3 l=2 d=10 fourth\n"
                         "web/gamma 3 warning open s=1 l=1 d=3 fifth\n"
                         "api/beta 2 error resolved s=1 l=1 d=2 second\n"
                         "job api 1/2 12\n"
                         "job web 1/1 3\n";
    cr_assert_str_eq(dump(), expect);

    /* list, with a search and a label filter, one row per page: count, rows, latest samples, headers */
    store_label_matcher lm = {"instance", "http://a"};
    long fired = 0;
    for (long n = 1;; n++) {
        cr_assert_lt(n, 50);
        store_query q = {.severity = -1, .status = -1, .sort = STORE_SORT_COUNT, .q = "third", .labels = &lm,
                         .n_labels = 1, .limit = 1};
        store_page p;
        fail_nth(n, NULL, false);
        int rc = store_list(S, &q, &p, err, sizeof(err));
        if (!disarm()) {
            cr_assert_eq(rc, 0, "%s", err);
            cr_assert_eq(p.n, 1);
            cr_assert_str_eq(p.v[0].key, "alpha");
            cr_assert_str_eq(p.v[0].latest->error.message, "fourth");
            store_page_free(&p);
            break;
        }
        fired++;
        cr_assert_eq(rc, -1, "list: statement %ld failed, rc %d", n, rc);
        cr_assert_str_eq(err, "injected fault");
        cr_assert_eq(p.n, 0);
        cr_assert_null(p.v);
        cr_assert_null(p.next_cursor);
    }
    cr_assert_geq(fired, 3, "list ran %ld statements", fired);

    /* get: aggregate, samples, causes, headers, labels, series */
    fired = 0;
    for (long n = 1;; n++) {
        cr_assert_lt(n, 50);
        store_detail d;
        fail_nth(n, NULL, false);
        int rc = store_get(S, "api", "alpha", &d, err, sizeof(err));
        if (!disarm()) {
            cr_assert_eq(rc, 0, "%s", err);
            cr_assert_eq(d.n_samples, 3);
            cr_assert_eq(d.samples[0]->http->n_headers, 1);
            cr_assert_str_eq(d.samples[0]->http->headers[0].value, "4");
            cr_assert_str_eq(d.samples[0]->error.cause->message, "cause of fourth");
            cr_assert_eq(d.n_labels, 2);
            store_detail_free(&d);
            break;
        }
        fired++;
        cr_assert_eq(rc, -1, "get: statement %ld failed, rc %d", n, rc);
        cr_assert_str_eq(err, "injected fault");
        cr_assert_eq(d.n_samples, 0);
        cr_assert_null(d.samples);
        cr_assert_null(d.s.key);
    }
    cr_assert_geq(fired, 6, "get ran %ld statements", fired);

    store_job *j;
    size_t nj;
    fail_nth(1, NULL, false);
    cr_assert_eq(store_jobs(S, &j, &nj, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "injected fault");

    uint64_t b[3] = {0};
    fail_nth(1, NULL, false);
    cr_assert_eq(store_buckets(S, "api", "alpha", T0 - 60 * MIN, 60 * MIN, b, 3, err, sizeof(err)), -1);
    fail_nth(1, NULL, false);
    cr_assert_eq(store_buckets(S, "api", NULL, T0 - 60 * MIN, 60 * MIN, b, 3, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "injected fault");
    cr_assert_eq(disarm(), 1);
    cr_assert_str_eq(dump(), expect);
}

Test(faults, resolve_and_reopen_report_failures)
{
    merge_changeset cs;
    history(&cs);
    merge_changeset_free(&cs);
    fail_nth(1, "SELECT 1 FROM aggregates", false);
    cr_assert_eq(store_resolve(S, "api", "alpha", T0, err, sizeof(err)), -1);
    fail_nth(1, "UPDATE aggregates", false);
    cr_assert_eq(store_resolve(S, "api", "alpha", T0, err, sizeof(err)), -1);
    fail_nth(1, "UPDATE aggregates", false);
    cr_assert_eq(store_reopen(S, "api", "beta", err, sizeof(err)), -1);
    cr_assert_str_eq(err, "injected fault");
    cr_assert_eq(disarm(), 1);
    cr_assert_str_eq(dump(), "api/alpha 5 error open s=1 l=1 d=5 first\n"
                             "api/beta 2 error resolved s=1 l=1 d=2 second\n"
                             "job api 1/2 7\n");
}

Test(faults, state_and_restore_fail_whole)
{
    merge_changeset cs;
    history(&cs);
    apply_ok(&cs, T0 + MIN);
    merge_changeset_free(&cs);
    merge_state st;
    merge_snapshot(E, &st);
    cr_assert_eq(st.n_instances, 4);
    long n = 1;
    for (;; n++) {
        cr_assert_lt(n, 50);
        fail_nth(n, NULL, false);
        int rc = store_save_state(S, &st, err, sizeof(err));
        if (!disarm()) {
            cr_assert_eq(rc, 0, "%s", err);
            break;
        }
        cr_assert_eq(rc, -1, "save_state: statement %ld failed, rc %d", n, rc);
    }
    cr_assert_eq(n, 2 + 4 + 4 + 1, "begin, 4 instances, 4 sources, commit: %ld", n);
    merge_state_free(&st);

    /* load into a fresh engine: every statement fails in turn, except the last, the COMMIT of a read
     * transaction (nothing to lose); then the restored engine counts on */
    merge_engine *e2 = merge_new(NULL);
    fail_nth(LONG_MAX, NULL, false);
    cr_assert_eq(store_load(S, e2, err, sizeof(err)), 0, "%s", err);
    long calls = sqldb_fault.calls;
    disarm();
    merge_free(e2);
    cr_assert_geq(calls, 9, "load ran %ld statements", calls);
    for (n = 1; n <= calls; n++) {
        e2 = merge_new(NULL);
        fail_nth(n, NULL, false);
        int rc = store_load(S, e2, err, sizeof(err));
        cr_assert_eq(disarm(), 1);
        merge_free(e2);
        cr_assert_eq(rc, n < calls ? -1 : 0, "load: statement %ld of %ld failed, rc %d", n, calls, rc);
    }
    e2 = merge_new(NULL);
    cr_assert_eq(store_load(S, e2, err, sizeof(err)), 0, "%s", err);
    merge_free(E);
    E = e2;
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 10, 6, "sixth", T0 + 2 * MIN, &cs); /* 9 -> 10 on instance a */
    apply_ok(&cs, T0 + 2 * MIN);
    merge_changeset_free(&cs);
    merge_aggregate_info ai;
    cr_assert(merge_get(E, "api", "alpha", &ai));
    cr_assert_eq(ai.total_count, 11);
}

Test(faults, maintain_fails_whole)
{
    merge_changeset cs;
    history(&cs);
    merge_changeset_free(&cs);
    /* 15 days later everything is past retention (14 d) */
    int64_t later = T0 + 15 * 24 * 60 * MIN;
    long n = 1;
    for (;; n++) {
        cr_assert_lt(n, 60);
        store *s2 = store_sqlite_new(dbpath, NULL, err, sizeof(err)); /* maintain runs once a minute per store */
        cr_assert_not_null(s2, "%s", err);
        fail_nth(n, NULL, false);
        int rc = store_maintain(s2, later, err, sizeof(err));
        bool failed = disarm();
        store_close(s2);
        if (!failed) {
            cr_assert_eq(rc, 0, "%s", err);
            break;
        }
        /* each batch is its own transaction (sql_store.c: expire_samples), so a failure may leave the
         * batches before it done; the next run goes on from there */
        cr_assert_eq(rc, -1, "maintain: statement %ld failed, rc %d", n, rc);
        cr_assert_str_eq(err, "injected fault");
    }
    cr_assert_geq(n, 8, "maintain ran %ld statements", n);
    /* the samples and series points went; the aggregates stay (merge_expire deletes errors) */
    cr_assert_str_eq(dump(), "api/alpha 5 error open s=0 l=1 d=0 -\n"
                             "api/beta 2 error resolved s=0 l=1 d=0 -\n"
                             "job api 1/2 7\n");
}

Test(faults, open_fails_when_the_schema_cannot_be_written)
{
    char p2[160];
    snprintf(p2, sizeof p2, "%s/other.db", dir);
    fail_nth(1, "CREATE TABLE", false);
    cr_assert_null(store_sqlite_new(p2, NULL, err, sizeof(err)));
    cr_assert_eq(disarm(), 1);
    cr_assert(strstr(err, "injected fault"), "%s", err);
    unlink(p2);
}

/* ---- writes whose effect only shows after a restart (found by make mutate) ---------------------- */

#include <sqlite3.h>

static long db_count(const char *sql)
{
    sqlite3 *h;
    cr_assert_eq(sqlite3_open_v2(dbpath, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    long n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

/* Reopens the store and restores a fresh engine from it, as a restart does (no save_state before). */
static void restart(void)
{
    store_close(S);
    S = store_sqlite_new(dbpath, NULL, err, sizeof(err));
    cr_assert_not_null(S, "%s", err);
    merge_free(E);
    E = merge_new(NULL);
    cr_assert_eq(store_load(S, E, err, sizeof(err)), 0, "%s", err);
}

/* Two instances reporting in the same cycle (one change set, one scrape time): both instance rows are
 * written with their counts, so after a crash the same counts add nothing. */
Test(faults, one_cycle_two_instances_survive_a_restart)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 5, 1, "first", T0, &cs);
    merge_one("api", "http://b", "alpha", 3, 2, "second", T0, &cs);
    apply_ok(&cs, T0);
    merge_changeset_free(&cs);
    cr_assert_eq(db_count("SELECT count(*) FROM instances"), 2);
    restart();
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 5, 1, "first", T0 + MIN, &cs);
    merge_one("api", "http://b", "alpha", 3, 2, "second", T0 + MIN, &cs);
    apply_ok(&cs, T0 + MIN);
    merge_changeset_free(&cs);
    cr_assert_str_eq(dump(), "api/alpha 8 error open s=2 l=2 d=8 second\n"
                             "job api 1/1 8\n");
}

/* An error deleted by retention leaves a tombstone (its instances still report it); when it comes back
 * with a new count the tombstone goes, and a restart restores the live error. */
Test(faults, a_returning_error_clears_its_tombstone)
{
    merge_free(E);
    merge_options o = {.retention_ms = 10 * MIN};
    E = merge_new(&o);
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 5, 1, "first", T0, &cs);
    apply_ok(&cs, T0);
    merge_changeset_clear(&cs);
    cr_assert_eq(merge_expire(E, T0 + 11 * MIN, &cs), 1);
    apply_ok(&cs, T0 + 11 * MIN);
    merge_changeset_clear(&cs);
    cr_assert_eq(db_count("SELECT count(*) FROM tombstones"), 1);
    cr_assert_eq(db_count("SELECT count(*) FROM aggregates"), 0);
    merge_one("api", "http://a", "alpha", 7, 12, "again", T0 + 12 * MIN, &cs);
    cr_assert_eq(cs.n, 1);
    cr_assert(cs.v[0].is_new);
    apply_ok(&cs, T0 + 12 * MIN);
    merge_changeset_free(&cs);
    cr_assert_eq(db_count("SELECT count(*) FROM tombstones"), 0);
    restart();
    merge_aggregate_info ai;
    cr_assert(merge_get(E, "api", "alpha", &ai));
    cr_assert_eq(ai.total_count, 2);
    cr_assert_str_eq(dump(), "api/alpha 2 error open s=1 l=1 d=2 again\n"
                             "job api 1/1 2\n");
}

static void db_exec(const char *sql)
{
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(dbpath, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    char *e = NULL;
    cr_assert_eq(sqlite3_exec(h, sql, NULL, NULL, &e), SQLITE_OK, "%s", e ? e : "");
    sqlite3_close(h);
}

/* Retention deletes in bounded batches (2000 rows, each batch its own transaction), at most 10 batches of
 * samples per run, and series points until fewer than a batch are left. 22,000 expired samples and 4,500
 * expired series points of an aggregate id with no aggregate row (no search row to rebuild). */
Test(faults, retention_works_in_bounded_batches)
{
    db_exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 22000)"
            " INSERT INTO samples (agg_id, hash, ts, uuid, severity, class, message, stack, has_http, method, url,"
            " body, stext) SELECT 42, i, 1000 + i, '', 4, 'E', 'm', '', 0, '', '', '', 'e' FROM n;"
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4500)"
            " INSERT INTO series (agg_id, minute, delta) SELECT 42, i, 1 FROM n;");
    cr_assert_eq(store_maintain(S, T0, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(db_count("SELECT count(*) FROM samples"), 2000, "10 batches of 2000 per run");
    cr_assert_eq(db_count("SELECT count(*) FROM series"), 0, "series batches go on while full");
    cr_assert_eq(store_maintain(S, T0 + 30000, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(db_count("SELECT count(*) FROM samples"), 2000, "runs at most once a minute");
    cr_assert_eq(store_maintain(S, T0 + 60000, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(db_count("SELECT count(*) FROM samples"), 0);
}

/* Buckets add the series points inside [since, since + n*step); points before since are skipped, not
 * the end of the scan. since in mid-minute: the query then returns the point of since's minute too. */
Test(faults, buckets_skip_points_before_the_window)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 5, 1, "first", T0, &cs);
    apply_ok(&cs, T0);
    merge_changeset_clear(&cs);
    merge_one("api", "http://a", "alpha", 7, 2, "second", T0 + 2 * MIN, &cs);
    apply_ok(&cs, T0 + 2 * MIN);
    merge_changeset_clear(&cs);
    merge_one("api", "http://a", "alpha", 11, 3, "third", T0 + 4 * MIN, &cs);
    apply_ok(&cs, T0 + 4 * MIN);
    merge_changeset_free(&cs);
    for (int all = 0; all < 2; all++) {
        uint64_t b[2] = {0, 0};
        cr_assert_eq(store_buckets(S, "api", all ? NULL : "alpha", T0 + MIN / 2, 2 * MIN, b, 2, err, sizeof(err)), 0,
                     "%s", err);
        cr_assert_eq(b[0], 2, "key %s", all ? "NULL" : "alpha");
        cr_assert_eq(b[1], 4, "key %s", all ? "NULL" : "alpha");
    }
}

/* A change set can carry several scrapes of one instance (the ingest writer batches cycles): the
 * instance row keeps the newest sighting, which decides when retention forgets the instance. */
Test(faults, one_change_set_two_scrapes_keeps_the_newest_sighting)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 5, 1, "first", T0, &cs);
    merge_one("api", "http://a", "beta", 2, 2, "second", T0 + MIN, &cs);
    apply_ok(&cs, T0 + MIN);
    merge_changeset_free(&cs);
    cr_assert_eq(db_count("SELECT count(*) FROM instances"), 1);
    cr_assert_eq(db_count("SELECT last_seen FROM instances"), T0 + MIN);
}

/* A retention batch rebuilds the search row of each error that lost samples once, however its victims
 * interleave in time (they are sorted by error before the rebuild loop): 2 errors, 20 samples alternating. */
Test(faults, retention_rebuilds_each_search_row_once)
{
    db_exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)"
            " INSERT INTO samples (agg_id, hash, ts, uuid, severity, class, message, stack, has_http, method, url,"
            " body, stext) SELECT 40 + i % 2, 1000 + i, 1000 + i, '', 4, 'E', 'm', '', 0, '', '', '', 'e' FROM n;");
    fail_nth(LONG_MAX, "SELECT akey FROM aggregates", false);
    cr_assert_eq(store_maintain(S, T0, err, sizeof(err)), 0, "%s", err);
    long calls = sqldb_fault.calls;
    disarm();
    cr_assert_eq(calls, 2);
    cr_assert_eq(db_count("SELECT count(*) FROM samples"), 0);
}

/* ---- restore (sql_load.c): what a restart must bring back ------------------------------------- */

/* Restored instances keep their last sighting: pruning right after a restart forgets none, and the same
 * counts scraped again add nothing. */
Test(faults, restored_instances_keep_their_last_sighting)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 5, 1, "first", T0, &cs);
    apply_ok(&cs, T0);
    merge_changeset_free(&cs);
    restart();
    cr_assert_eq(merge_prune(E, T0 + MIN), 0);
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 5, 1, "first", T0 + MIN, &cs);
    cr_assert_eq(cs.n, 0, "the same count counted again");
    merge_changeset_free(&cs);
}

/* Restored sample timestamps decide what a full sample list evicts: cap 2 holding minutes 10 and 20, then
 * minute 15 arrives: 20 and 15 stay. */
Test(faults, restored_samples_keep_their_timestamps)
{
    merge_free(E);
    merge_options o = {.samples_per_error = 2};
    E = merge_new(&o);
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 1, 10, "m10", T0, &cs);
    merge_one("api", "http://a", "alpha", 2, 20, "m20", T0 + MIN, &cs);
    apply_ok(&cs, T0 + MIN);
    merge_changeset_free(&cs);
    restart();
    merge_free(E);
    E = merge_new(&o);
    cr_assert_eq(store_load(S, E, err, sizeof(err)), 0, "%s", err);
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 3, 15, "m15", T0 + 2 * MIN, &cs);
    apply_ok(&cs, T0 + 2 * MIN);
    merge_changeset_free(&cs);
    store_detail d;
    cr_assert_eq(store_get(S, "api", "alpha", &d, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(d.n_samples, 2);
    cr_assert_str_eq(d.samples[0]->error.message, "m20");
    cr_assert_str_eq(d.samples[1]->error.message, "m15");
    store_detail_free(&d);
}

/* A label-set row of an error id that has no aggregate (left by another shard's retention, or an older
 * version) does not hide the next error's label sets on restore: a known set is not added again. */
Test(faults, orphan_label_rows_do_not_shift_the_restore)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 5, 1, "first", T0, &cs);
    apply_ok(&cs, T0);
    merge_changeset_free(&cs);
    db_exec("INSERT INTO labels (agg_id, lhash, seq, name, value) VALUES (1, 5, 1, '', '')");
    restart();
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 6, 2, "second", T0 + MIN, &cs);
    cr_assert_eq(cs.n, 1);
    cr_assert_eq(cs.v[0].n_labels_added, 0, "a restored label set was added again");
    apply_ok(&cs, T0 + MIN);
    merge_changeset_free(&cs);
    cr_assert_str_eq(dump(), "api/alpha 6 error open s=2 l=1 d=6 second\n"
                             "job api 1/1 6\n");
}

/* A restored source keeps the instance it scraped: a body-hash hit after the restart still counts as a
 * sighting of that instance, which retention then keeps. */
Test(faults, restored_sources_keep_their_instance)
{
    const char *body = "{\"target_uuid\":\"A\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":3}]}";
    uint64_t h = merge_body_hash(body, strlen(body));
    payload_doc *d = payload_parse(body, strlen(body), "http://a", err, sizeof(err));
    cr_assert_not_null(d, "%s", err);
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_input in = {.job = "api", .url = "http://a", .doc = d, .body_hash = h, .now_ms = T0};
    merge_apply(E, &in, &cs);
    payload_free(d);
    apply_ok(&cs, T0);
    merge_changeset_free(&cs);
    merge_state st;
    merge_snapshot(E, &st);
    cr_assert_eq(store_save_state(S, &st, err, sizeof(err)), 0, "%s", err);
    merge_state_free(&st);
    restart();
    int64_t day = 24 * 60 * MIN;
    cr_assert(merge_body_unchanged(E, "api", "http://a", h, T0 + 10 * day));
    cr_assert_eq(merge_prune(E, T0 + 15 * day), 0, "the body-hash hit did not refresh the restored instance");
}

/* ---- more write and restore paths (found by make mutate, seed 2) -------------------------------- */

/* Error ids hash job and key with a separator: job "a" key "bc" and job "ab" key "c" are two errors. */
Test(faults, ids_separate_job_from_key)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_one("a", "http://a", "bc", 2, 1, "first", T0, &cs);
    merge_one("ab", "http://b", "c", 3, 2, "second", T0, &cs);
    apply_ok(&cs, T0);
    merge_changeset_free(&cs);
    cr_assert_str_eq(dump(), "ab/c 3 error open s=1 l=1 d=3 second\n"
                             "a/bc 2 error open s=1 l=1 d=2 first\n"
                             "job a 1/1 2\n"
                             "job ab 1/1 3\n");
}

/* An occurrence without a stack trace (nor a cause's) is stored, its stack empty. */
Test(faults, occurrence_without_stacktrace_is_stored)
{
    const char *body = "{\"target_uuid\":\"A\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":1,"
                       "\"severity\":\"error\",\"latest_errors\":[{\"error\":{\"class\":\"E\",\"message\":\"m\","
                       "\"stacktrace\":[],\"cause\":{\"class\":\"C\",\"message\":\"c\",\"stacktrace\":[]}},"
                       "\"uuid\":\"u\",\"timestamp\":\"2024-03-02T10:00:00Z\"}]}]}";
    payload_doc *d = payload_parse(body, strlen(body), "http://a", err, sizeof(err));
    cr_assert_not_null(d, "%s", err);
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_input in = {.job = "api", .url = "http://a", .doc = d, .now_ms = T0};
    merge_apply(E, &in, &cs);
    payload_free(d);
    apply_ok(&cs, T0);
    merge_changeset_free(&cs);
    store_detail dd;
    cr_assert_eq(store_get(S, "api", "k", &dd, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(dd.n_samples, 1);
    cr_assert_eq(dd.samples[0]->error.n_stacktrace, 0);
    cr_assert_str_eq(dd.samples[0]->error.cause->message, "c");
    store_detail_free(&dd);
}

/* An evicted sample takes its causes along (samples_per_error 1: each new occurrence evicts the last). */
Test(faults, evicted_samples_take_their_causes)
{
    merge_free(E);
    merge_options o = {.samples_per_error = 1};
    E = merge_new(&o);
    merge_changeset cs;
    merge_changeset_init(&cs);
    for (int i = 0; i < 3; i++) {
        char msg[16];
        snprintf(msg, sizeof msg, "m%d", i);
        merge_one("api", "http://a", "alpha", i + 1, i, msg, T0 + i * MIN, &cs);
        apply_ok(&cs, T0 + i * MIN);
        merge_changeset_clear(&cs);
    }
    merge_changeset_free(&cs);
    cr_assert_eq(db_count("SELECT count(*) FROM samples"), 1);
    cr_assert_eq(db_count("SELECT count(*) FROM sample_causes"), 1);
    cr_assert_eq(db_count("SELECT count(*) FROM sample_headers"), 1);
}

/* Many evictions of one error in one change set go in chunks of 16, 4 and 1 hashes per statement
 * (sql_store.c: delete_samples): 21 stored samples of alpha all evicted at once (16 + 4 + 1), then 6 more
 * (4 + 1 + 1); each time exactly the evicted samples leave, with their causes and headers, and beta's
 * sample (same minutes, another error) stays. */
Test(faults, many_evictions_leave_exactly_the_evicted_samples)
{
    merge_free(E);
    merge_options o = {.samples_per_error = 21};
    E = merge_new(&o);
    merge_changeset cs;
    merge_changeset_init(&cs);
    char msg[16];
    for (int m = 0; m < 21; m++) {
        snprintf(msg, sizeof msg, "old%02d", m);
        merge_one("api", "http://a", "alpha", m + 1, m, msg, T0 + m, &cs);
    }
    merge_one("api", "http://b", "beta", 1, 0, "beta0", T0, &cs);
    apply_ok(&cs, T0 + 21);
    merge_changeset_clear(&cs);
    cr_assert_eq(db_count("SELECT count(*) FROM samples"), 22);
    for (int m = 21; m < 42; m++) {
        snprintf(msg, sizeof msg, "new%02d", m);
        merge_one("api", "http://a", "alpha", m + 1, m, msg, T0 + MIN + m, &cs);
    }
    cr_assert_eq(cs.n, 1);
    cr_assert_eq(cs.v[0].n_evicted, 21);
    apply_ok(&cs, T0 + MIN + 42);
    merge_changeset_clear(&cs);
    cr_assert_eq(db_count("SELECT count(*) FROM samples"), 22);
    cr_assert_eq(db_count("SELECT count(*) FROM samples WHERE message LIKE 'new%'"), 21);
    cr_assert_eq(db_count("SELECT count(*) FROM samples WHERE message = 'beta0'"), 1);
    cr_assert_eq(db_count("SELECT count(*) FROM sample_causes"), 22);
    cr_assert_eq(db_count("SELECT count(*) FROM sample_headers"), 22);
    for (int m = 42; m < 48; m++) {
        snprintf(msg, sizeof msg, "late%02d", m);
        merge_one("api", "http://a", "alpha", m + 1, m, msg, T0 + 2 * MIN + m, &cs);
    }
    cr_assert_eq(cs.v[0].n_evicted, 6);
    apply_ok(&cs, T0 + 2 * MIN + 48);
    merge_changeset_free(&cs);
    cr_assert_eq(db_count("SELECT count(*) FROM samples WHERE message LIKE 'new%'"), 15);
    cr_assert_eq(db_count("SELECT count(*) FROM samples WHERE message LIKE 'new%' AND message < 'new27'"), 0);
    cr_assert_eq(db_count("SELECT count(*) FROM samples WHERE message LIKE 'late%'"), 6);
    cr_assert_eq(db_count("SELECT count(*) FROM samples WHERE message = 'beta0'"), 1);
    cr_assert_eq(db_count("SELECT count(*) FROM sample_causes WHERE message LIKE 'cause of new%'"), 15);
    cr_assert_eq(db_count("SELECT count(*) FROM sample_headers"), 22);
    cr_assert_str_eq(dump(), "api/alpha 48 error open s=21 l=1 d=48 late47\n"
                             "api/beta 1 error open s=1 l=1 d=1 beta0\n"
                             "job api 2/2 49\n");
}

/* The eviction statements: one sample by equality, chunks as IN lists, every table keyed by error; and the
 * chunk sequence the servers use (16, then 4, then 1 while at least that many are left; SQLite one by one). */
Test(faults, eviction_statements_and_chunks)
{
    cr_assert_str_eq(sql_evict_sql(0, 1), "DELETE FROM samples WHERE agg_id = ? AND hash = ?");
    cr_assert_str_eq(sql_evict_sql(1, 4), "DELETE FROM sample_causes WHERE agg_id = ? AND hash IN (?,?,?,?)");
    cr_assert_str_eq(sql_evict_sql(2, 16), "DELETE FROM sample_headers WHERE agg_id = ? AND hash IN"
                                           " (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    cr_assert_str_eq(sql_evict_sql(2, 1), "DELETE FROM sample_headers WHERE agg_id = ? AND hash = ?");
    cr_assert_null(sql_evict_sql(3, 1));
    cr_assert_null(sql_evict_sql(-1, 1));
    cr_assert_null(sql_evict_sql(0, 0));
    cr_assert_null(sql_evict_sql(0, 17));
    char seq[128];
    size_t lefts[] = {21, 6, 3, 16, 15, 4, 1, 40};
    const char *want[] = {"16 4 1", "4 1 1", "1 1 1", "16", "4 4 4 1 1 1", "4", "1", "16 16 4 4"};
    for (size_t i = 0; i < sizeof lefts / sizeof *lefts; i++) {
        size_t off = 0;
        for (size_t left = lefts[i]; left;) {
            size_t k = sql_evict_chunk(SQLDB_POSTGRES, left);
            cr_assert_eq(sql_evict_chunk(SQLDB_MYSQL, left), k);
            off += (size_t)snprintf(seq + off, sizeof seq - off, "%s%zu", off ? " " : "", k);
            left -= k;
        }
        cr_assert_str_eq(seq, want[i], "%zu left", lefts[i]);
    }
    cr_assert_eq(sql_evict_chunk(SQLDB_SQLITE, 21), 1);
    cr_assert_eq(sql_evict_chunk(SQLDB_SQLITE, 1), 1);
}

/* A scrape with changed counts skips the instance upsert when this writer committed the instance's row
 * less than a minute (at most a tenth of the retention) before (sql_store.c: inst_fresh): last_seen stays
 * at 11:00:00 for a scrape at 11:00:10 and moves at 11:01:10. An apply that fails after writing a new
 * instance's row (its count upsert) does not count as written: the retry writes the row. */
Test(faults, instance_rows_written_once_a_minute_and_again_after_a_rollback)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 1, 0, "m", T0, &cs);
    apply_ok(&cs, T0);
    merge_changeset_clear(&cs);
    cr_assert_eq(db_count("SELECT last_seen FROM instances"), T0);
    merge_one("api", "http://a", "alpha", 2, 0, "m", T0 + 10000, &cs);
    apply_ok(&cs, T0 + 10000);
    merge_changeset_clear(&cs);
    cr_assert_eq(db_count("SELECT last_seen FROM instances"), T0);
    cr_assert_eq(db_count("SELECT count FROM counts"), 2);
    merge_one("api", "http://a", "alpha", 3, 0, "m", T0 + 70000, &cs);
    apply_ok(&cs, T0 + 70000);
    merge_changeset_clear(&cs);
    cr_assert_eq(db_count("SELECT last_seen FROM instances"), T0 + 70000);
    merge_one("api", "http://b", "beta", 1, 0, "m", T0 + 80000, &cs);
    fail_nth(1, "INSERT INTO counts", false);
    cr_assert_eq(store_apply(S, &cs, T0 + 80000, err, sizeof(err)), -1);
    cr_assert_eq(disarm(), 1);
    cr_assert_eq(db_count("SELECT count(*) FROM instances"), 1);
    apply_ok(&cs, T0 + 80000);
    merge_changeset_free(&cs);
    cr_assert_eq(db_count("SELECT count(*) FROM instances"), 2);
    cr_assert_eq(db_count("SELECT count(*) FROM counts"), 2);
}

/* A retention run that deletes instances forgets which rows this writer wrote: with a retention of 100 s
 * (a skip window of 10 s), instance a written at 11:00:00 and expired by a run at 11:03:20 gets its row
 * again from a scrape stamped 11:00:05 (within 10 s of the write it no longer has). */
Test(faults, retention_of_instances_forgets_the_rows_written)
{
    store_close(S);
    store_options so = {.retention_ms = 100000};
    S = store_sqlite_new(dbpath, &so, err, sizeof(err));
    cr_assert_not_null(S, "%s", err);
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 1, 0, "m", T0, &cs);
    apply_ok(&cs, T0);
    merge_changeset_clear(&cs);
    cr_assert_eq(db_count("SELECT count(*) FROM instances"), 1);
    cr_assert_eq(store_maintain(S, T0 + 200000, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(db_count("SELECT count(*) FROM instances"), 0);
    merge_one("api", "http://a", "alpha", 2, 0, "m", T0 + 5000, &cs);
    apply_ok(&cs, T0 + 5000);
    merge_changeset_free(&cs);
    cr_assert_eq(db_count("SELECT count(*) FROM instances"), 1);
    cr_assert_eq(db_count("SELECT last_seen FROM instances"), T0 + 5000);
}

/* An open that fails after its writer connection is up (the writer's cache_size PRAGMA) closes it: 50
 * failed opens leave the heap as it was (each leaked one would keep a SQLite connection and the store). */
Test(faults, a_failing_open_frees_what_it_opened)
{
    size_t before = 0;
    for (int i = 0; i < 51; i++) {
        if (i == 1) /* after SQLite's own first-use allocations */
            before = heap_use();
        fail_nth(1, "PRAGMA cache_size=-2048", false);
        store *s2 = store_sqlite_new(dbpath, NULL, err, sizeof(err));
        cr_assert_eq(disarm(), 1);
        cr_assert_null(s2);
        cr_assert_str_eq(err, "injected fault");
    }
    heap_use_assert_back_to(before);
}

/* Retention deletes the expired samples of one error in runs of at most 16 (sql_store.c: expire_samples):
 * 25 samples of alpha at minutes 0..24 past 10:00, a retention that expires minutes 0..19 (16 + 4), and
 * beta's sample at minute 5 (another error, expired too); the five newest of alpha stay with their causes
 * and headers. */
Test(faults, retention_deletes_long_runs_of_one_error)
{
    merge_free(E);
    merge_options o = {.samples_per_error = 25};
    E = merge_new(&o);
    merge_changeset cs;
    merge_changeset_init(&cs);
    char msg[16];
    for (int m = 0; m < 25; m++) {
        snprintf(msg, sizeof msg, "m%02d", m);
        merge_one("api", "http://a", "alpha", m + 1, m, msg, T0, &cs);
    }
    merge_one("api", "http://b", "beta", 1, 5, "beta5", T0, &cs);
    apply_ok(&cs, T0);
    merge_changeset_free(&cs);
    cr_assert_eq(db_count("SELECT count(*) FROM samples"), 26);
    store_options so = {.retention_ms = 40 * MIN}; /* cutoff 10:20 at 11:00 */
    store *s2 = store_sqlite_new(dbpath, &so, err, sizeof(err));
    cr_assert_not_null(s2, "%s", err);
    cr_assert_eq(store_maintain(s2, T0, err, sizeof(err)), 0, "%s", err);
    store_close(s2);
    cr_assert_eq(db_count("SELECT count(*) FROM samples"), 5);
    cr_assert_eq(db_count("SELECT count(*) FROM samples WHERE message >= 'm20' AND message <= 'm24'"), 5);
    cr_assert_eq(db_count("SELECT count(*) FROM sample_causes"), 5);
    cr_assert_eq(db_count("SELECT count(*) FROM sample_headers"), 5);
}

/* A restore of many rows (1000 errors and 100 tombstones, 3000 samples: past the first capacity of
 * every list, the error list growing while tombstones are appended) and of a negative total (a corrupt
 * or foreign row) that restores as 0. */
Test(faults, restore_of_many_rows_and_a_negative_total)
{
    db_exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)"
            " INSERT INTO aggregates (id, job, akey, total, severity, created_at, last_seen)"
            " SELECT i * 1000, 'bulk', 'k' || i, i, 4, 1000, 2000 FROM n;"
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)"
            " INSERT INTO tombstones (agg_id, job, akey, last_seen) SELECT 5000000 + i, 'bulk', 't' || i, 2000 FROM n;"
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)"
            " INSERT INTO samples (agg_id, hash, ts, uuid, severity, class, message, stack, has_http, method, url,"
            " body, stext) SELECT 1000 * (1 + i % 3), i, 1000 + i, '', 4, 'E', 'm', '', 0, '', '', '', 'e' FROM n;"
            "UPDATE aggregates SET total = -1 WHERE akey = 'k7';");
    restart();
    merge_aggregate_info ai;
    cr_assert(merge_get(E, "bulk", "k1000", &ai));
    cr_assert_eq(ai.total_count, 1000);
    cr_assert(!merge_get(E, "bulk", "t100", &ai), "a tombstone restored as an error");
    cr_assert(merge_get(E, "bulk", "k1", &ai));
    cr_assert_eq(ai.total_count, 1);
    cr_assert_eq(ai.n_samples, 100, "1000 samples, capped at the default 100");
    cr_assert(merge_get(E, "bulk", "k7", &ai));
    cr_assert_eq(ai.total_count, 0);
}

/* A search word holding a double quote matches literally (the full-text phrase escapes it). */
Test(faults, search_for_a_quoted_word)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 1, 1, "bad \\\"token\\\" here", T0, &cs);
    merge_one("api", "http://a", "beta", 1, 2, "bad token here", T0, &cs);
    apply_ok(&cs, T0);
    merge_changeset_free(&cs);
    const char *qs[] = {"\"token\"", "\"token", "d \"tok"};
    for (size_t i = 0; i < 3; i++) {
        store_query q = {.severity = -1, .status = -1, .sort = STORE_SORT_COUNT, .q = qs[i]};
        store_page p;
        cr_assert_eq(store_list(S, &q, &p, err, sizeof(err)), 0, "%s: %s", qs[i], err);
        cr_assert_eq(p.n, 1, "%s: %zu rows", qs[i], p.n);
        cr_assert_str_eq(p.v[0].key, "alpha");
        store_page_free(&p);
    }
}

/* Each restored error knows exactly its own label sets: after a restart, alpha seen from b and beta seen
 * from a are new label sets for both (the restore slices one list of label ids per error). */
Test(faults, restored_label_ids_stay_with_their_error)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 1, 1, "first", T0, &cs);
    merge_one("api", "http://b", "beta", 1, 2, "second", T0, &cs);
    apply_ok(&cs, T0);
    merge_changeset_free(&cs);
    restart();
    merge_changeset_init(&cs);
    merge_one("api", "http://b", "alpha", 1, 3, "third", T0 + MIN, &cs);
    merge_one("api", "http://a", "beta", 1, 4, "fourth", T0 + MIN, &cs);
    cr_assert_eq(cs.n, 2);
    cr_assert_eq(cs.v[0].n_labels_added + cs.v[1].n_labels_added, 2);
    apply_ok(&cs, T0 + MIN);
    merge_changeset_free(&cs);
    cr_assert_str_eq(dump(), "api/alpha 2 error open s=2 l=2 d=2 third\n"
                             "api/beta 2 error open s=2 l=2 d=2 fourth\n"
                             "job api 2/2 4\n");
}

/* Many label matchers (more bound parameters than the first capacity of the parameter list). */
Test(faults, list_with_many_label_matchers)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 1, 1, "first", T0, &cs);
    merge_one("api", "http://b", "beta", 1, 2, "second", T0, &cs);
    apply_ok(&cs, T0);
    merge_changeset_free(&cs);
    store_label_matcher lm[12];
    for (size_t i = 0; i < 12; i++)
        lm[i] = (store_label_matcher){"instance", "http://b"};
    store_query q = {.severity = -1, .status = -1, .sort = STORE_SORT_COUNT, .job = "api", .labels = lm,
                     .n_labels = 12};
    store_page p;
    cr_assert_eq(store_list(S, &q, &p, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(p.n, 1);
    cr_assert_str_eq(p.v[0].key, "beta");
    store_page_free(&p);
    /* no match: an empty page whose row array is still allocated, as the memory store's is */
    lm[11].value = "http://c";
    cr_assert_eq(store_list(S, &q, &p, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(p.n, 0);
    cr_assert_not_null(p.v);
    store_page_free(&p);
}

/* labels.seq (the order label sets were seen in) is stored as now_ms * 1000 + index: rows written by
 * earlier versions sort among new ones only if the encoding stays. */
Test(faults, label_set_order_encoding_is_stable)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 1, 1, "first", T0, &cs);
    apply_ok(&cs, T0 + 7);
    merge_changeset_free(&cs);
    cr_assert_eq(db_count("SELECT seq FROM labels WHERE name = ''"), (T0 + 7) * 1000);
}

/* ---- session 5: survivors of the mutation run after schema v7 (docs/testing.md) ------------------ */

/* Label sets new in one change set keep the order they were seen in (labels.seq = now_ms * 1000 +
 * their index in the change): http://b was merged first, so the detail lists it first although
 * http://a sorts first by hash or name. */
Test(faults, label_sets_of_one_change_keep_their_order)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_one("api", "http://b", "alpha", 1, 1, "first", T0, &cs);
    merge_one("api", "http://a", "alpha", 2, 2, "second", T0, &cs);
    cr_assert_eq(cs.n, 1);
    cr_assert_eq(cs.v[0].n_labels_added, 2);
    apply_ok(&cs, T0);
    merge_changeset_free(&cs);
    store_detail d;
    cr_assert_eq(store_get(S, "api", "alpha", &d, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(d.n_labels, 2);
    cr_assert_str_eq(labelset_get(&d.labels[0], "instance"), "http://b");
    cr_assert_str_eq(labelset_get(&d.labels[1], "instance"), "http://a");
    store_detail_free(&d);
    cr_assert_eq(db_count("SELECT max(seq) - min(seq) FROM labels"), 1);
}

/* One occurrence of error "same" (no HTTP context, one fixed text) with uuid u at minute m. */
static void merge_plain(int count, const char *u, int m, merge_changeset *cs)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"target_uuid\":\"t\",\"aggregated_errors\":[{\"aggregation_key\":\"same\",\"total_count\":%d,"
             "\"severity\":\"error\",\"created_at\":\"2024-03-01T09:00:00Z\",\"latest_errors\":[{\"error\":{"
             "\"class\":\"Err\",\"message\":\"always the same\",\"stacktrace\":[\"at a\"]},\"uuid\":\"%s\","
             "\"timestamp\":\"2024-03-02T10:%02d:00Z\"}]}]}",
             count, u, m);
    payload_doc *d = payload_parse(body, strlen(body), "http://a", err, sizeof(err));
    cr_assert_not_null(d, "%s", err);
    labelset ls;
    labelset_init(&ls);
    labelset_set(&ls, "instance", "http://a");
    merge_input in = {.job = "api", .url = "http://a", .labels = &ls, .doc = d, .now_ms = T0};
    merge_apply(E, &in, cs);
    labelset_free(&ls);
    payload_free(d);
}

/* A new occurrence whose lines the search row already holds leaves the row alone (the steady state:
 * rewriting it re-tokenizes it in FTS5); its own sample is still written. */
Test(faults, unchanged_search_row_is_not_rewritten)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_plain(1, "u-1", 1, &cs);
    fail_nth(LONG_MAX, "INTO search", false);
    apply_ok(&cs, T0);
    cr_assert_eq(sqldb_fault.calls, 1);
    disarm();
    merge_changeset_free(&cs);
    merge_changeset_init(&cs);
    merge_plain(2, "u-2", 2, &cs);
    cr_assert_eq(cs.n, 1);
    cr_assert_eq(cs.v[0].n_added, 1);
    fail_nth(LONG_MAX, "INTO search", false);
    apply_ok(&cs, T0 + MIN);
    long calls = sqldb_fault.calls;
    disarm();
    merge_changeset_free(&cs);
    cr_assert_eq(calls, 0);
    cr_assert_eq(db_count("SELECT count(*) FROM samples"), 2);
    store_page p;
    store_query q = {.severity = -1, .status = -1, .sort = STORE_SORT_COUNT, .q = "always"};
    cr_assert_eq(store_list(S, &q, &p, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(p.n, 1);
    store_page_free(&p);
}

/* The SQLite writer updates the state of up to 32 changed errors in one statement (STATE_CHUNK,
 * schema v7): 32 new errors take one UPDATE, the 33rd a second one. */
Test(faults, state_updates_go_32_to_a_statement)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    char key[16];
    for (int i = 0; i < 32; i++) {
        snprintf(key, sizeof key, "k%02d", i);
        merge_one("api", "http://a", key, 1, 1, "m", T0, &cs);
    }
    cr_assert_eq(cs.n, 32);
    fail_nth(LONG_MAX, "UPDATE aggregates SET severity", false);
    apply_ok(&cs, T0);
    long calls = sqldb_fault.calls;
    disarm();
    merge_changeset_free(&cs);
    cr_assert_eq(calls, 1);
    cr_assert_eq(db_count("SELECT count(*) FROM aggregates"), 32);
    merge_changeset_init(&cs);
    for (int i = 0; i < 33; i++) {
        snprintf(key, sizeof key, "k%02d", i);
        merge_one("api", "http://a", key, 2, 2, "m", T0 + MIN, &cs);
    }
    cr_assert_eq(cs.n, 33);
    fail_nth(LONG_MAX, "UPDATE aggregates SET severity", false);
    apply_ok(&cs, T0 + MIN);
    calls = sqldb_fault.calls;
    disarm();
    merge_changeset_free(&cs);
    cr_assert_eq(calls, 2);
    cr_assert_eq(db_count("SELECT count(*) FROM aggregates"), 33);
    cr_assert_eq(db_count("SELECT sum(total) FROM aggregates"), 66);
}

/* An eviction whose DELETE fails fails the whole apply (and changes nothing); once the fault is gone
 * the same change set applies and the evicted sample goes. */
Test(faults, failed_eviction_fails_the_apply)
{
    merge_free(E);
    merge_options o = {.samples_per_error = 1};
    E = merge_new(&o);
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 1, 0, "m0", T0, &cs);
    apply_ok(&cs, T0);
    merge_changeset_clear(&cs);
    merge_one("api", "http://a", "alpha", 2, 1, "m1", T0 + MIN, &cs);
    cr_assert_eq(cs.v[0].n_evicted, 1);
    fail_nth(1, "DELETE FROM samples WHERE agg_id = ? AND hash", false);
    cr_assert_eq(store_apply(S, &cs, T0 + MIN, err, sizeof(err)), -1);
    cr_assert_eq(disarm(), 1);
    cr_assert_str_eq(err, "injected fault");
    cr_assert_str_eq(dump(), "api/alpha 1 error open s=1 l=1 d=1 m0\njob api 1/1 1\n");
    apply_ok(&cs, T0 + MIN);
    merge_changeset_free(&cs);
    cr_assert_str_eq(dump(), "api/alpha 2 error open s=1 l=1 d=2 m1\njob api 1/1 2\n");
}

/* The same occurrence stored by a second engine (another shard, or a writer retrying with a fresh
 * engine): its sample row is already there, so its causes and headers are not written again. */
Test(faults, an_occurrence_already_stored_writes_no_causes)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 1, 1, "first", T0, &cs);
    apply_ok(&cs, T0);
    merge_changeset_free(&cs);
    merge_free(E);
    E = merge_new(NULL);
    merge_changeset_init(&cs);
    merge_one("api", "http://a", "alpha", 1, 1, "first", T0, &cs);
    cr_assert_eq(cs.v[0].n_added, 1);
    fail_nth(LONG_MAX, "sample_", false);
    apply_ok(&cs, T0);
    long calls = sqldb_fault.calls;
    disarm();
    merge_changeset_free(&cs);
    cr_assert_eq(calls, 0);
    cr_assert_eq(db_count("SELECT count(*) FROM samples"), 1);
    cr_assert_eq(db_count("SELECT count(*) FROM sample_causes"), 1);
    cr_assert_eq(db_count("SELECT count(*) FROM sample_headers"), 1);
}

/* A configured query budget of 1 ms is the budget (only 0 or less means the default of 5000 ms): the
 * step bound interrupts the list at once, and the error names both bounds. */
Test(faults, a_one_ms_query_budget_is_kept)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    char key[16];
    for (int i = 0; i < 200; i++) { /* the step bound is checked every 1000 virtual-machine steps */
        snprintf(key, sizeof key, "k%03d", i);
        merge_one("api", "http://a", key, i + 1, 1, "m", T0, &cs);
    }
    apply_ok(&cs, T0);
    merge_changeset_free(&cs);
    store_close(S);
    store_options o = {.query_budget_ms = 1, .query_budget_steps = 1};
    S = store_sqlite_new(dbpath, &o, err, sizeof(err));
    cr_assert_not_null(S, "%s", err);
    store_query q = {.severity = -1, .status = -1, .sort = STORE_SORT_COUNT};
    store_page p;
    cr_assert_eq(store_list(S, &q, &p, err, sizeof(err)), STORE_TIMEOUT);
    cr_assert_str_eq(err, "query timed out (over its budget of 1 ms or its step bound)");
}

/* Retention past the last sighting forgets the instances, their counts, the sources and the tombstones
 * left without counts, in one transaction: a failing source delete undoes the instance deletes. */
Test(faults, maintain_forgets_instances_sources_and_tombstones)
{
    merge_changeset cs;
    history(&cs);
    merge_changeset_free(&cs);
    db_exec("INSERT INTO sources (id, job, url, body_hash, last_scrape, instance_id)"
            " VALUES (7, 'api', 'http://a', 1, 1709377200000, 'i');"
            "INSERT INTO tombstones (agg_id, job, akey, last_seen) VALUES (9, 'api', 'gone', 1709377200000);");
    int64_t later = T0 + 15 * 24 * 60 * MIN;
    store *s2 = store_sqlite_new(dbpath, NULL, err, sizeof(err));
    cr_assert_not_null(s2, "%s", err);
    fail_nth(1, "DELETE FROM sources", false);
    cr_assert_eq(store_maintain(s2, later, err, sizeof(err)), -1);
    cr_assert_eq(disarm(), 1);
    store_close(s2);
    cr_assert_eq(db_count("SELECT count(*) FROM instances"), 2);
    cr_assert_eq(db_count("SELECT count(*) FROM counts"), 2);
    cr_assert_eq(db_count("SELECT count(*) FROM sources"), 1);
    cr_assert_eq(db_count("SELECT count(*) FROM tombstones"), 1);
    s2 = store_sqlite_new(dbpath, NULL, err, sizeof(err));
    cr_assert_not_null(s2, "%s", err);
    cr_assert_eq(store_maintain(s2, later, err, sizeof(err)), 0, "%s", err);
    store_close(s2);
    cr_assert_eq(db_count("SELECT count(*) FROM instances"), 0);
    cr_assert_eq(db_count("SELECT count(*) FROM counts"), 0);
    cr_assert_eq(db_count("SELECT count(*) FROM sources"), 0);
    cr_assert_eq(db_count("SELECT count(*) FROM tombstones"), 0);
}

/* A store opened without options keeps 14 days (DEFAULT_RETENTION_MS): 13 days later nothing expires. */
Test(faults, default_retention_is_14_days)
{
    merge_changeset cs;
    history(&cs);
    merge_changeset_free(&cs);
    cr_assert_eq(store_maintain(S, T0 + 13 * 24 * 60 * MIN, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(db_count("SELECT count(*) FROM samples"), 2);
    cr_assert_eq(db_count("SELECT count(*) FROM instances"), 2);
    cr_assert_str_eq(dump(), "api/alpha 5 error open s=1 l=1 d=5 first\n"
                             "api/beta 2 error resolved s=1 l=1 d=2 second\n"
                             "job api 1/2 7\n");
}

/* Series points expire in at most 10 batches of 2000 per run, like samples: 22001 expired points leave
 * 2001 for the next run. */
Test(faults, series_retention_is_bounded_per_run)
{
    db_exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 22001)"
            " INSERT INTO series (agg_id, minute, delta) SELECT 42, i, 1 FROM n;");
    cr_assert_eq(store_maintain(S, T0, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(db_count("SELECT count(*) FROM series"), 2001);
    cr_assert_eq(store_maintain(S, T0 + 60000, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(db_count("SELECT count(*) FROM series"), 0);
}

/* A count row whose error is neither stored nor tombstoned (a foreign or half-deleted row) is skipped by
 * the restore, not attached to the error whose id follows it: instance b gets count 1000 for the id just
 * below alpha's, then reports alpha for the first time with 1005, which is all new. */
Test(faults, restore_skips_counts_of_unknown_errors)
{
    merge_changeset cs;
    history(&cs);
    apply_ok(&cs, T0 + MIN);
    merge_changeset_free(&cs);
    char sql[512];
    snprintf(sql, sizeof sql, "INSERT INTO counts (inst_id, agg_id, count) SELECT inst_id, %ld, 1000 FROM counts"
             " WHERE agg_id = %ld;",
             db_count("SELECT id FROM aggregates WHERE akey = 'alpha'") - 1,
             db_count("SELECT id FROM aggregates WHERE akey = 'beta'"));
    db_exec(sql);
    cr_assert_eq(db_count("SELECT count(*) FROM counts WHERE count = 1000"), 1);
    restart();
    merge_changeset_init(&cs);
    merge_one("api", "http://b", "alpha", 1005, 6, "sixth", T0 + 2 * MIN, &cs);
    apply_ok(&cs, T0 + 2 * MIN);
    merge_changeset_free(&cs);
    cr_assert_eq(db_count("SELECT total FROM aggregates WHERE akey = 'alpha'"), 1015);
}
