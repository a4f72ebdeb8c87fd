/* crash_writer: a store writer for the crash and outage tests (tests/integration/crash.sh).
 *   crash_writer sqlite|postgres PATH|DSN run [SECONDS]   verify, then write cycles until killed/SECONDS
 *   crash_writer sqlite|postgres PATH|DSN verify          verify only
 * Targets t = 0..T-1 export key k with the growing count c*(k+1) + t at cycle c; one cycle merges every
 * target into one change set applied in one transaction, as the ingest writer does. At start the
 * program loads the store into a new merge engine and checks that the stored totals are exactly those
 * of one whole cycle c (nothing lost beyond the in-flight cycle, no partial cycle, nothing counted
 * twice), then re-scrapes cycle c and checks that it adds 0 to every count. When store_apply fails
 * (database down), the change set is kept, later cycles merge into it, and it is retried with backoff:
 * scraping never waits for the database. Exit status 0 when every check passed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

#define T 40
#define K 50

static const char *backend, *arg;

static store *open_store(void)
{
    char e[512];
    store *s = strcmp(backend, "postgres") == 0 ? store_postgres_new(arg, NULL, e, sizeof(e))
                                                : store_sqlite_new(arg, NULL, e, sizeof(e));
    if (!s) {
        fprintf(stderr, "crash_writer: open: %s\n", e);
        exit(3);
    }
    return s;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t expected_total(int k, int64_t c)
{
    uint64_t sum = 0;
    for (int t = 0; t < T; t++)
        sum += (uint64_t)(c * (k + 1) + t);
    return sum;
}

static void merge_cycle(merge_engine *e, int64_t c, merge_changeset *cs)
{
    static char body[32000];
    for (int t = 0; t < T; t++) {
        size_t off = (size_t)snprintf(body, sizeof(body), "{\"target_uuid\":\"t%d\",\"aggregated_errors\":[", t);
        for (int k = 0; k < K; k++)
            off += (size_t)snprintf(body + off, sizeof(body) - off,
                                    "%s{\"aggregation_key\":\"key%d\",\"total_count\":%lld,\"latest_errors\":[{"
                                    "\"error\":{\"class\":\"E\",\"message\":\"m\"},\"uuid\":\"%d-%d-%lld\"}]}",
                                    k ? "," : "", k, (long long)(c * (k + 1) + t), t, k, (long long)c);
        snprintf(body + off, sizeof(body) - off, "]}");
        char url[32], err[256];
        snprintf(url, sizeof(url), "http://t%d", t);
        payload_doc *d = payload_parse(body, strlen(body), url, err, sizeof(err));
        merge_input in = {.job = "crash", .url = url, .doc = d, .now_ms = now_ms()};
        merge_apply(e, &in, cs);
        payload_free(d);
    }
}

/* Returns the cycle the store holds, or -1 after printing the mismatch. */
static int64_t verify(store *s)
{
    char err[512];
    store_detail d;
    int rc = store_get(s, "crash", "key0", &d, err, sizeof(err));
    if (rc == STORE_NOT_FOUND)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "crash_writer: get: %s\n", err);
        return -1;
    }
    uint64_t base = expected_total(0, 0);
    int64_t c = (int64_t)((d.s.total_count - base) / T);
    store_detail_free(&d);
    for (int k = 0; k < K; k++) {
        char key[16];
        snprintf(key, sizeof(key), "key%d", k);
        if (store_get(s, "crash", key, &d, err, sizeof(err)) != 0) {
            fprintf(stderr, "crash_writer: MISMATCH %s missing at cycle %lld\n", key, (long long)c);
            return -1;
        }
        uint64_t want = expected_total(k, c);
        if (d.s.total_count != want) {
            fprintf(stderr, "crash_writer: MISMATCH %s total %llu, expected %llu (cycle %lld)\n", key,
                    (unsigned long long)d.s.total_count, (unsigned long long)want, (long long)c);
            store_detail_free(&d);
            return -1;
        }
        store_detail_free(&d);
    }
    return c;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: crash_writer sqlite|postgres PATH|DSN run|verify [SECONDS]\n");
        return 2;
    }
    backend = argv[1];
    arg = argv[2];
    bool run = strcmp(argv[3], "run") == 0;
    int seconds = argc > 4 ? atoi(argv[4]) : 0;
    char err[512];
    store *s = open_store();
    merge_engine *e = merge_new(NULL);
    if (store_load(s, e, err, sizeof(err)) != 0) {
        fprintf(stderr, "crash_writer: load: %s\n", err);
        return 3;
    }
    int64_t c = verify(s);
    if (c < 0)
        return 1;
    merge_changeset cs;
    merge_changeset_init(&cs);
    if (c > 0) { /* the same exports again after the restart: must add nothing */
        merge_cycle(e, c, &cs);
        if (cs.n != 0 || store_apply(s, &cs, now_ms(), err, sizeof(err)) != 0 || verify(s) != c) {
            fprintf(stderr, "crash_writer: MISMATCH re-scrape of cycle %lld after restart changed %zu keys\n",
                    (long long)c, cs.n);
            return 1;
        }
    }
    printf("verified cycle %lld\n", (long long)c);
    fflush(stdout);
    if (!run)
        return 0;
    time_t end = seconds ? time(NULL) + seconds : 0;
    int failures = 0, backoff_ms = 100;
    int64_t next_try = 0;
    while (!end || time(NULL) < end) {
        c++;
        merge_cycle(e, c, &cs); /* scraping goes on whatever the database does */
        if (now_ms() >= next_try) {
            if (store_apply(s, &cs, now_ms(), err, sizeof(err)) == 0) {
                merge_changeset_clear(&cs);
                backoff_ms = 100;
                store_maintain(s, now_ms(), err, sizeof(err));
            } else {
                if (failures++ % 10 == 0)
                    fprintf(stderr, "crash_writer: apply failed (keeping %zu changes): %s\n", cs.n, err);
                next_try = now_ms() + backoff_ms;
                backoff_ms = backoff_ms < 2000 ? backoff_ms * 2 : 2000;
            }
        }
        usleep(20000);
    }
    /* drain: the database is back */
    for (int i = 0; i < 100 && cs.n; i++) {
        if (store_apply(s, &cs, now_ms(), err, sizeof(err)) == 0)
            merge_changeset_clear(&cs);
        else
            usleep(200000);
    }
    printf("cycles %lld apply_failures %d pending %zu\n", (long long)c, failures, cs.n);
    int64_t got = verify(s);
    merge_changeset_free(&cs);
    merge_free(e);
    store_close(s);
    if (got != c) {
        fprintf(stderr, "crash_writer: MISMATCH store at cycle %lld, scraped %lld\n", (long long)got, (long long)c);
        return 1;
    }
    return 0;
}
