/* scrape_path_bench: the scrape -> ingest -> store path of lookout, for instruction counts under callgrind
 * (bench/scrape_path_bench.sh runs it; docs/benchmarks.md §3 has the numbers). Wall-clock numbers on a
 * shared machine are noise; instructions executed per scrape are not.
 *
 *   scrape_path_bench BASE_URL WWW_DIR STORE_DIR TARGETS SCRAPES MODE
 *
 * TARGETS targets scrape BASE_URL<i>.json (nginx serving WWW_DIR/t/) every 2 s into a SQLite store in
 * STORE_DIR through the real scrape loop, ingest writer, merge engine and store. Run it under
 * `valgrind --tool=callgrind --instr-atstart=no`: instrumentation starts once every target was scraped
 * and the writer synced (the store's first fill is not what a running fleet costs) and stops when
 * TARGETS x SCRAPES more scrapes finished, the loop stopped and the writer synced (changes written); the
 * scrapes of that window are printed by result (unchanged / merged) for the per-scrape division.
 * MODE "unchanged": every body stays the same; MODE "changed": right after each scrape of target i, the
 * file is replaced (rename) by the next variant WWW_DIR/v<k>/<i>.json (fleet_payloads.py variants: one
 * key's count +1 and a new occurrence), so every scrape after the first fetches a changed body. Outside
 * valgrind the client requests are no-ops. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <valgrind/callgrind.h>

#include "config/config.h"
#include "ingest/ingest.h"
#include "scrape/scheduler.h"
#include "store/store_open.h"
#include "util/hash.h"

static const char *www;
static int n_targets;
static bool changed_mode;
static int *per_target; /* results per target (scrape thread only) */
static ingest *in;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long total, first_done;

static void on_result(void *ctx, const scrape_result *r)
{
    (void)ctx;
    ingest_submit(in, r);
    const char *p = strrchr(r->url, '/');
    int i = p ? atoi(p + 1) : -1;
    if (i < 0 || i >= n_targets)
        return;
    int k = ++per_target[i];
    if (changed_mode) {
        char from[4096], to[4096];
        snprintf(from, sizeof from, "%s/v%d/%d.json", www, k, i);
        snprintf(to, sizeof to, "%s/t/%d.json", www, i);
        (void)rename(from, to); /* missing variant: the body stays as it is (counted as unchanged) */
    }
    pthread_mutex_lock(&mu);
    total++;
    if (k == 1)
        first_done++;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);
}

static void wait_for(long *v, long want)
{
    pthread_mutex_lock(&mu);
    while (*v < want)
        pthread_cond_wait(&cond, &mu);
    pthread_mutex_unlock(&mu);
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s BASE_URL WWW_DIR STORE_DIR TARGETS SCRAPES unchanged|changed\n", argv[0]);
        return 2;
    }
    const char *base = argv[1];
    www = argv[2];
    n_targets = atoi(argv[4]);
    long scrapes = atol(argv[5]);
    changed_mode = strcmp(argv[6], "changed") == 0;
    per_target = calloc((size_t)n_targets, sizeof *per_target);
    char err[512];
    storage_config sc = {.type = STORAGE_SQLITE, .path = argv[3]};
    store *st = store_open(&sc, NULL, argv[3], err, sizeof err);
    if (!st) {
        fprintf(stderr, "store: %s\n", err);
        return 1;
    }
    ingest_options o = {.snapshot_interval_ms = 3600 * 1000}; /* no periodic snapshot inside the window */
    /* FLUSH_MS (scrape_path_bench.sh): the writer's flush interval. Under callgrind the default 1 s of wall
     * time passes every few dozen bodies, so each changed error's search row is rewritten far more often
     * per body than at a real rate (throughput_bench: up to batch_bodies, 2,000 bodies, per flush). */
    const char *fm = getenv("FLUSH_MS");
    if (fm && atoll(fm) > 0)
        o.flush_interval_ms = atoll(fm);
    in = ingest_new(st, NULL, NULL, &o);
    if (ingest_start(in, err, sizeof err) != 0) {
        fprintf(stderr, "ingest: %s\n", err);
        return 1;
    }
    scrape_loop *l = scrape_loop_new(1, on_result, NULL);
    const char *curl_only = getenv("CURL_ONLY"); /* 1: every scrape through curl (--scrape.curl-only) */
    scrape_loop_set_fast_http(l, !(curl_only && !strcmp(curl_only, "1")));
    const char *jobs_env = getenv("JOBS"); /* targets spread over this many jobs, i % JOBS (default 1) */
    int n_jobs = jobs_env && atoi(jobs_env) > 0 ? atoi(jobs_env) : 1;
    for (int i = 0; i < n_targets; i++) {
        char url[1024], idx[16], job[16];
        if (n_jobs == 1)
            snprintf(job, sizeof job, "bench");
        else
            snprintf(job, sizeof job, "bench%d", i % n_jobs);
        snprintf(url, sizeof url, "%s%d.json", base, i);
        snprintf(idx, sizeof idx, "%d", i);
        built_target t = {.status = TARGET_ACTIVE, .url = url, .dropped_by = -1};
        labelset_init(&t.labels);
        labelset_set(&t.labels, "job", job);
        labelset_set(&t.labels, "instance", "127.0.0.1");
        labelset_set(&t.labels, "idx", idx);
        t.hash = fnv1a64(FNV64_OFFSET, url, strlen(url));
        ingest_target_event(in, TARGET_ADDED, job, &t, false, 0);
        scrape_target_spec spec = {.job = job, .hash = t.hash, .url = url, .interval_ms = 2000,
                                   .timeout_ms = 10000};
        scrape_loop_upsert(l, &spec);
        labelset_free(&t.labels);
    }
    if (scrape_loop_start(l, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    wait_for(&first_done, n_targets);
    ingest_sync(in, 600000);
    pthread_mutex_lock(&mu);
    long t0 = total;
    pthread_mutex_unlock(&mu);
    ingest_status s0, s1;
    ingest_get_status(in, &s0);
    CALLGRIND_START_INSTRUMENTATION;
    wait_for(&total, t0 + (long)n_targets * scrapes);
    scrape_loop_free(l); /* the window's scrapes are final; the writer drains them */
    ingest_sync(in, 600000);
    CALLGRIND_STOP_INSTRUMENTATION;
    ingest_get_status(in, &s1);
    long t1 = total;
    printf("window: %ld scrapes, %llu unchanged, %llu merged, %llu failed\n", t1 - t0,
           (unsigned long long)(s1.unchanged_bodies - s0.unchanged_bodies),
           (unsigned long long)(s1.merged_bodies - s0.merged_bodies),
           (unsigned long long)(s1.failed_bodies - s0.failed_bodies));
    ingest_free(in);
    store_close(st);
    free(per_target);
    return 0;
}
