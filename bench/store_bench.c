/* store_bench: store backends under lookout's load.
 *   usage: store_bench BACKEND ARG [TARGETS]   BACKEND sqlite|postgres|mysql|memory, ARG file/DSN/-
 * Builds JOBS = TARGETS/10 jobs of 10 targets each, 100 keys per job, one occurrence per (target, key):
 * TARGETS x 100 instance counts and samples, TARGETS x 10 aggregates (10,000 targets: 1,000,000 counts
 * and samples, 100,000 errors). Then measures
 *   fill      the first cycle (everything new), one transaction per job
 *   cycle     a write cycle where 1% of the keys change (count +1, one new occurrence), and 0.1%
 *   list      API list over all errors with a search term (~10% match) and without, p50/p99
 *   startup   store open + store_load into a new merge engine
 * TARGETS 0: no writes; list and startup on an existing database (for profiling reads). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_merge.h"
#include "store/store.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this process: on a shared machine the wall-clock figures include waiting for a core. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *kinds[] = {"refused", "timeout", "nil-pointer", "overflow", "denied",
                              "not-found", "conflict", "reset", "broken-pipe", "eof"};
static int ntargets = 10000;
static unsigned *counts; /* per target x key */
static const char *backend, *arg;

static store *open_store(void)
{
    char e[512];
    store *s = NULL;
    if (strcmp(backend, "sqlite") == 0)
        s = store_sqlite_new(arg, NULL, e, sizeof(e));
    else if (strcmp(backend, "postgres") == 0)
        s = store_postgres_new(arg, NULL, e, sizeof(e));
    else if (strcmp(backend, "mysql") == 0)
        s = store_mysql_new(arg, NULL, e, sizeof(e));
    else
        s = store_memory_new(NULL);
    if (!s) {
        fprintf(stderr, "open: %s\n", e);
        exit(1);
    }
    return s;
}

/* Merges target t's payload (all 100 keys) into cs. */
static void merge_target(merge_engine *e, int t, int64_t now, merge_changeset *cs)
{
    static char body[64000];
    int job = t / 10;
    size_t off = (size_t)snprintf(body, sizeof(body), "{\"target_uuid\":\"t%d\",\"aggregated_errors\":[", t);
    for (int k = 0; k < 100; k++) {
        unsigned c = counts[t * 100 + k];
        off += (size_t)snprintf(body + off, sizeof(body) - off,
                                "%s{\"aggregation_key\":\"Err%d@%04x\",\"total_count\":%u,\"severity\":\"error\","
                                "\"created_at\":\"2024-03-01T10:00:00Z\",\"latest_errors\":[{\"error\":{\"class\":"
                                "\"Err%d\",\"message\":\"request %d failed: %s\",\"stacktrace\":[\"at svc.handler"
                                "(handler.go:%d)\"]},\"uuid\":\"%d-%d-%u\",\"timestamp\":\"2024-03-02T10:%02d:%02dZ\"}]}",
                                k ? "," : "", k, job, c, k, k, kinds[(k + job) % 10], k, t, k, c, (t + c) % 60,
                                k % 60);
    }
    snprintf(body + off, sizeof(body) - off, "]}");
    char url[64], jobname[32];
    snprintf(url, sizeof(url), "http://10.0.%d.%d:8080/-/exceptions", t / 250, t % 250);
    snprintf(jobname, sizeof(jobname), "job%04d", job);
    bench_merge_body(e, body, jobname, url, now, cs);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void list_bench(store *s, const char *q, const char *label)
{
    enum { N = 200 };
    double t[N], c0 = cpu_s();
    uint64_t total = 0;
    for (int i = 0; i < N; i++) {
        store_query sq = {.severity = -1, .status = -1, .q = q, .limit = 50,
                          .sort = (store_sort)(i % 3)};
        store_page p;
        char e[256];
        double t0 = now_s();
        if (store_list(s, &sq, &p, e, sizeof(e)) != 0) {
            fprintf(stderr, "list: %s\n", e);
            exit(1);
        }
        t[i] = (now_s() - t0) * 1000;
        total = p.total;
        store_page_free(&p);
    }
    double cpu = (cpu_s() - c0) / N * 1000;
    qsort(t, N, sizeof(double), cmp_d);
    printf("%s list %s: %llu matches, p50 %.2f ms, p99 %.2f ms (CPU mean %.2f ms)\n", backend, label,
           (unsigned long long)total, t[N / 2], t[N * 99 / 100], cpu);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: store_bench sqlite|postgres|mysql|memory PATH|DSN|- [TARGETS]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    backend = argv[1];
    arg = argv[2];
    if (argc > 3)
        ntargets = atoi(argv[3]);
    counts = calloc((size_t)ntargets * 100, sizeof(unsigned));
    for (int i = 0; i < ntargets * 100; i++)
        counts[i] = 1;
    store *s = open_store();
    merge_engine *e = merge_new(NULL);
    merge_changeset cs;
    merge_changeset_init(&cs);
    char err[512];
    int64_t now = 1709377200000LL;

    double t0 = now_s(), tw = 0;
    if (ntargets == 0)
        goto reads;
    for (int j = 0; j < ntargets / 10; j++) {
        for (int t = j * 10; t < j * 10 + 10; t++)
            merge_target(e, t, now, &cs);
        double a = now_s();
        if (store_apply(s, &cs, now, err, sizeof(err)) != 0) {
            fprintf(stderr, "apply: %s\n", err);
            return 1;
        }
        tw += now_s() - a;
        merge_changeset_clear(&cs);
    }
    printf("%s fill: %d targets x 100 keys (%d counts, %d samples, %d errors): %.1f s total, %.1f s in store_apply\n",
           backend, ntargets, ntargets * 100, ntargets * 100, ntargets * 10, now_s() - t0, tw);

    /* steady cycles: a fraction of the keys changes; whole targets change so only they are re-merged */
    double fracs[] = {0.01, 0.001};
    for (int f = 0; f < 2; f++) {
        int changed_targets = (int)(ntargets * fracs[f]);
        if (changed_targets < 1)
            changed_targets = 1;
        double best = 1e9, sum = 0;
        size_t nch = 0;
        for (int cyc = 0; cyc < 3; cyc++) {
            now += 60000;
            for (int i = 0; i < changed_targets; i++) {
                int t = (int)(((unsigned)(cyc * 7919 + i * 104729)) % (unsigned)ntargets);
                for (int k = 0; k < 100; k++)
                    counts[t * 100 + k]++;
                merge_target(e, t, now, &cs);
            }
            nch = cs.n;
            double a = now_s();
            if (store_apply(s, &cs, now, err, sizeof(err)) != 0) {
                fprintf(stderr, "apply: %s\n", err);
                return 1;
            }
            double d = now_s() - a;
            sum += d;
            if (d < best)
                best = d;
            merge_changeset_clear(&cs);
        }
        printf("%s cycle %.1f%% keys changing (%d keys, %zu aggregates): store_apply mean %.1f ms, best %.1f ms\n",
               backend, fracs[f] * 100, changed_targets * 100, nch, sum / 3 * 1000, best * 1000);
    }

reads:
    list_bench(s, "timeout", "with search term \"timeout\"");
    list_bench(s, NULL, "without filter");

    merge_changeset_free(&cs);
    merge_free(e);
    if (strcmp(backend, "memory") != 0) {
        store_close(s);
        double a = now_s(), ac = cpu_s();
        s = open_store();
        e = merge_new(NULL);
        if (store_load(s, e, err, sizeof(err)) != 0) {
            fprintf(stderr, "load: %s\n", err);
            return 1;
        }
        merge_stats st;
        merge_get_stats(e, &st);
        printf("%s startup: open + load %.2f s, CPU %.2f s (%zu errors, %zu instance counts)\n", backend,
               now_s() - a, cpu_s() - ac, st.aggregates, st.instance_keys);
        merge_free(e);
    }
    store_close(s);
    free(counts);
    return 0;
}
