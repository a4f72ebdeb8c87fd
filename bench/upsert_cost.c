/* upsert_cost: instructions the SQLite writer spends per changed error, for callgrind (docs/benchmarks.md §5,
 * "Indexes of the search language's field filters"). Load independent, unlike wall time on a shared machine.
 *   valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/dev/null \
 *       build/bench/upsert_cost FILE.db MODE [CYCLES]
 * Fills JOBS x KEYS errors (one target per job; every fourth error warning, every tenth resolved), then,
 * instrumented, applies CYCLES write cycles in which every error changes: MODE "count": its count goes up
 * with the same newest occurrence (aggregate, series and counts upserts only: the case an index on the
 * aggregates costs the most, relatively); MODE "sample": with a new occurrence each time (plus a sample
 * insert, an eviction past the cap and the search row). Only store_apply is instrumented; the figure to
 * read is callgrind's "Collected" divided by the changes printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/callgrind.h>

#include "bench_merge.h"
#include "store/store.h"

enum { JOBS = 20, KEYS = 100 };

static void merge_target(merge_engine *e, int job, unsigned count, unsigned occ, int64_t now, merge_changeset *cs)
{
    static char body[64000];
    size_t off = (size_t)snprintf(body, sizeof body, "{\"target_uuid\":\"t%d\",\"aggregated_errors\":[", job);
    for (int k = 0; k < KEYS; k++)
        off += (size_t)snprintf(body + off, sizeof body - off,
                                "%s{\"aggregation_key\":\"Err%d\",\"total_count\":%u,\"severity\":\"%s\","
                                "\"created_at\":\"2024-03-01T10:00:00Z\",\"latest_errors\":[{\"error\":{\"class\":"
                                "\"Err%d\",\"message\":\"request %d failed\",\"stacktrace\":[\"at svc.handler"
                                "(handler.go:%d)\"]},\"uuid\":\"%d-%d-%u\",\"timestamp\":\"2024-03-02T10:%02u:00Z\"}]}",
                                k ? "," : "", k, count, k % 4 ? "error" : "warning", k, k, k, job, k, occ, occ % 60);
    snprintf(body + off, sizeof body - off, "]}");
    char url[64], jobname[32];
    snprintf(url, sizeof url, "http://10.0.0.%d:8080/-/exceptions", job);
    snprintf(jobname, sizeof jobname, "job%02d", job);
    bench_merge_body(e, body, jobname, url, now, cs);
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[2], "count") != 0 && strcmp(argv[2], "sample") != 0)) {
        fprintf(stderr, "usage: upsert_cost FILE.db count|sample [CYCLES]\n");
        return 2;
    }
    int cycles = argc > 3 ? atoi(argv[3]) : 5;
    bool samples = strcmp(argv[2], "sample") == 0;
    char err[512];
    store *s = store_sqlite_new(argv[1], NULL, err, sizeof err);
    if (!s) {
        fprintf(stderr, "open: %s\n", err);
        return 1;
    }
    merge_engine *e = merge_new(NULL);
    merge_changeset cs;
    merge_changeset_init(&cs);
    int64_t now = 1709377200000LL;
    for (int j = 0; j < JOBS; j++)
        merge_target(e, j, 1, 0, now, &cs);
    if (store_apply(s, &cs, now, err, sizeof err) != 0) {
        fprintf(stderr, "apply: %s\n", err);
        return 1;
    }
    merge_changeset_clear(&cs);
    for (int j = 0; j < JOBS; j++)
        for (int k = 0; k < KEYS; k += 10) {
            char job[32], key[32];
            snprintf(job, sizeof job, "job%02d", j);
            snprintf(key, sizeof key, "Err%d", k);
            if (store_resolve(s, job, key, now, err, sizeof err) != 0) {
                fprintf(stderr, "resolve: %s\n", err);
                return 1;
            }
        }
    size_t changes = 0;
    for (int c = 1; c <= cycles; c++) {
        now += 60000;
        for (int j = 0; j < JOBS; j++)
            merge_target(e, j, 1 + (unsigned)c, samples ? (unsigned)c : 0, now, &cs);
        changes += cs.n;
        CALLGRIND_START_INSTRUMENTATION;
        int rc = store_apply(s, &cs, now, err, sizeof err);
        CALLGRIND_STOP_INSTRUMENTATION;
        if (rc != 0) {
            fprintf(stderr, "apply: %s\n", err);
            return 1;
        }
        merge_changeset_clear(&cs);
    }
    printf("upsert_cost %s: %d cycles, %zu changed errors applied\n", argv[2], cycles, changes);
    merge_changeset_free(&cs);
    merge_free(e);
    store_close(s);
    return 0;
}
