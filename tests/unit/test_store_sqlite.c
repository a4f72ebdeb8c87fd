/* The store suite (store_suite.h) against the SQLite backend, plus SQLite-specific checks (schema
 * version guard, read-only file). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/merge.h"
#include "store/store.h"

static char dbpath[256];

static store *suite_open(const store_options *o, bool fresh)
{
    char e[512];
    if (fresh || !dbpath[0]) {
        char dir[] = "/tmp/lookout-sqlite-XXXXXX";
        if (!mkdtemp(dir))
            abort();
        snprintf(dbpath, sizeof(dbpath), "%s/lookout.db", dir);
    }
    store *s = store_sqlite_new(dbpath, o, e, sizeof(e));
    if (!s) {
        fprintf(stderr, "open %s: %s\n", dbpath, e);
        abort();
    }
    return s;
}

#define SUITE sqlite
#define SUITE_PERSISTENT 1
#define SUITE_SQLDB_OPEN(e, n) sqldb_sqlite_open(dbpath, e, n)
#include "store_suite.h"

#include <sqlite3.h>

Test(sqlite_only, newer_schema_refused)
{
    store *s = suite_open(NULL, true);
    store_close(s);
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(dbpath, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, "UPDATE lookout_meta SET value = '99' WHERE name = 'schema_version'", 0, 0, 0),
                 SQLITE_OK);
    sqlite3_close(h);
    char e[512];
    cr_assert_null(store_sqlite_new(dbpath, NULL, e, sizeof(e)));
    cr_assert(strstr(e, "schema version 99") && strstr(e, "newer lookout"), "%s", e);
}

/* Opens dbpath as user nobody (65534) in a child: root ignores file permissions, and CI runs as root.
 * The directory belongs to nobody, as a user's data directory would. Returns the child's error text. */
static void open_as_nobody(char *e, size_t n)
{
    char dir[sizeof dbpath];
    snprintf(dir, sizeof dir, "%s", dbpath);
    *strrchr(dir, '/') = '\0';
    cr_assert_eq(chown(dir, 65534, 65534), 0);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(3);
        char ce[512] = "";
        store *c = store_sqlite_new(dbpath, NULL, ce, sizeof(ce));
        if (write(fds[1], ce, strlen(ce)) < 0)
            _exit(4);
        _exit(c ? 1 : 0);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t r;
    while (len + 1 < n && (r = read(fds[0], e + len, n - 1 - len)) > 0)
        len += (size_t)r;
    e[len] = '\0';
    close(fds[0]);
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d (1: opened a read-only file, 3: setuid): %s",
              st, e);
}

Test(sqlite_only, read_only_file_is_a_clear_error)
{
    store *s = suite_open(NULL, true);
    store_close(s);
    chmod(dbpath, 0444);
    char e[512] = "";
    if (geteuid() == 0) {
        open_as_nobody(e, sizeof e);
    } else {
        s = store_sqlite_new(dbpath, NULL, e, sizeof(e));
        cr_assert_null(s);
    }
    cr_assert(strstr(e, "read-only"), "%s", e);
}

Test(sqlite_only, not_a_database)
{
    char dir[] = "/tmp/lookout-sqlite-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    snprintf(dbpath, sizeof(dbpath), "%s/lookout.db", dir);
    FILE *f = fopen(dbpath, "w");
    fputs("this is not a database, just some text long enough to fill a header of one hundred bytes.....", f);
    fclose(f);
    char e[512];
    cr_assert_null(store_sqlite_new(dbpath, NULL, e, sizeof(e)));
    cr_assert(strstr(e, "not a valid lookout database"), "%s", e);
}

/* ---- SQLite-specific search paths, found by mutation testing (make mutate) -------------------- */

/* One new aggregate with one sample per message (timestamps ts0, ts0 + 1000, ...). */
static void sq_put(store *s, const char *key, const char *const *msgs, size_t n, int64_t ts0)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    cs.v = calloc(1, sizeof(merge_change));
    cs.n = cs.cap = 1;
    merge_change *c = &cs.v[0];
    c->job = strdup("j");
    c->key = strdup(key);
    c->is_new = true;
    c->total_count = n;
    c->severity = PAYLOAD_ERROR;
    c->created_at_ms = ts0;
    c->last_seen_ms = ts0 + (int64_t)(n - 1) * 1000;
    c->added = calloc(n, sizeof(void *));
    for (size_t i = 0; i < n; i++)
        c->added[i] = payload_occurrence_new("E", msgs[i], "", ts0 + (int64_t)i * 1000, PAYLOAD_ERROR, NULL, NULL);
    c->n_added = c->cap_added = n;
    char err[256];
    cr_assert_eq(store_apply(s, &cs, ts0 + 100000, err, sizeof err), 0, "%s", err);
    merge_changeset_free(&cs);
}

static char *sq_keys(store *s, const char *q)
{
    store_query sq = {.q = q, .q_all_words = true, .severity = -1, .status = -1, .sort = STORE_SORT_LAST_SEEN};
    store_page p;
    char err[256];
    cr_assert_eq(store_list(s, &sq, &p, err, sizeof err), 0, "%s", err);
    static char out[256];
    out[0] = '\0';
    for (size_t i = 0; i < p.n; i++)
        snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", i ? "," : "", p.v[i].key);
    store_page_free(&p);
    return out;
}

/* Words shorter than a trigram take the LIKE path beside the full-text index: every word still counts. */
Test(sqlite_only, search_short_and_long_words_all_count)
{
    store *s = suite_open(NULL, true);
    sq_put(s, "k1", (const char *[]){"disk io failure"}, 1, 1709377200000LL);
    sq_put(s, "k2", (const char *[]){"disk full"}, 1, 1709377300000LL);
    cr_assert_str_eq(sq_keys(s, "disk io"), "k1");
    cr_assert_str_eq(sq_keys(s, "io"), "k1");
    cr_assert_str_eq(sq_keys(s, "ul disk"), "k2");
    cr_assert_str_eq(sq_keys(s, "disk"), "k2,k1");
    cr_assert_str_eq(sq_keys(s, "disk zz"), "");
    store_close(s);
}

/* A list row's latest sample is the newest by timestamp, whatever the sample hashes. */
Test(sqlite_only, list_latest_is_newest_sample)
{
    store *s = suite_open(NULL, true);
    const char *msgs[] = {"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"};
    sq_put(s, "k", msgs, 8, 1709377200000LL);
    store_query sq = {.severity = -1, .status = -1, .sort = STORE_SORT_LAST_SEEN};
    store_page p;
    char err[256];
    cr_assert_eq(store_list(s, &sq, &p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(p.n, 1);
    cr_assert_not_null(p.v[0].latest);
    cr_assert_str_eq(p.v[0].latest->error.message, "m7");
    store_page_free(&p);
    store_close(s);
}

/* Stack traces (of the sample and of its cause) survive the round trip line by line, and their lines are
 * searchable; after retention expires a sample, its words leave the search index. */
Test(sqlite_only, stacktraces_round_trip_and_expired_samples_leave_the_index)
{
    store_options o = {.retention_ms = 3600000};
    store *s = suite_open(&o, true);
    const int64_t t0 = 1709377200000LL;
    merge_changeset cs;
    merge_changeset_init(&cs);
    cs.v = calloc(1, sizeof(merge_change));
    cs.n = cs.cap = 1;
    merge_change *c = &cs.v[0];
    c->job = strdup("j");
    c->key = strdup("k");
    c->is_new = true;
    c->total_count = 2;
    c->severity = PAYLOAD_ERROR;
    c->created_at_ms = t0;
    c->last_seen_ms = t0 + 2 * 3600000;
    c->added = calloc(2, sizeof(void *));
    c->added[0] = payload_occurrence_new("E", "ancient", "", t0, PAYLOAD_ERROR, NULL, NULL);
    c->added[1] = payload_occurrence_new("E", "recent", "", t0 + 2 * 3600000, PAYLOAD_ERROR, NULL, NULL);
    payload_error *e = &c->added[1]->error;
    e->stacktrace = calloc(2, sizeof(char *));
    e->stacktrace[0] = strdup("alphaframe.go:1");
    e->stacktrace[1] = strdup("betaframe.go:2");
    e->n_stacktrace = 2;
    e->cause = calloc(1, sizeof(payload_error));
    e->cause->class_name = strdup("Cause");
    e->cause->message = strdup("root");
    e->cause->stacktrace = calloc(1, sizeof(char *));
    e->cause->stacktrace[0] = strdup("gammaframe.go:3");
    e->cause->n_stacktrace = 1;
    c->n_added = c->cap_added = 2;
    char err[256];
    cr_assert_eq(store_apply(s, &cs, t0 + 2 * 3600000, err, sizeof err), 0, "%s", err);
    merge_changeset_free(&cs);

    store_detail d;
    cr_assert_eq(store_get(s, "j", "k", &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(d.n_samples, 2);
    const payload_error *g = &d.samples[0]->error;
    cr_assert_str_eq(g->message, "recent");
    cr_assert_eq(g->n_stacktrace, 2);
    cr_assert_str_eq(g->stacktrace[0], "alphaframe.go:1");
    cr_assert_str_eq(g->stacktrace[1], "betaframe.go:2");
    cr_assert_not_null(g->cause);
    cr_assert_eq(g->cause->n_stacktrace, 1);
    cr_assert_str_eq(g->cause->stacktrace[0], "gammaframe.go:3");
    store_detail_free(&d);
    cr_assert_str_eq(sq_keys(s, "alphaframe"), "k");
    cr_assert_str_eq(sq_keys(s, "gammaframe"), "k");
    cr_assert_str_eq(sq_keys(s, "ancient"), "k");

    /* an hour of retention, two hours later: the old sample goes, and its words with it */
    cr_assert_eq(store_maintain(s, t0 + 2 * 3600000 + 60000, err, sizeof err), 0, "%s", err);
    cr_assert_eq(store_get(s, "j", "k", &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(d.n_samples, 1);
    store_detail_free(&d);
    cr_assert_str_eq(sq_keys(s, "ancient"), "");
    cr_assert_str_eq(sq_keys(s, "recent"), "k");
    /* a day later, with nothing past retention but the recent sample: it goes too, and a cycle with nothing
     * to expire succeeds */
    cr_assert_eq(store_maintain(s, t0 + 26 * 3600000LL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(store_maintain(s, t0 + 50 * 3600000LL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(store_get(s, "j", "k", &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(d.n_samples, 0);
    store_detail_free(&d);
    store_close(s);
}
