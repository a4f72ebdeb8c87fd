/* memsearch_bench: the memory store's list API under the UI's load (100,000 errors).
 *   usage: memsearch_bench [ERRORS [SAMPLES]]   defaults 100000 1
 * Builds ERRORS errors shaped like tests/fakes/ui_targets.py --bulk (class, a 5-word message, two stack
 * lines, uuid; one job), each reported by SAMPLES targets (so SAMPLES samples per error), then times
 *   first page    limit 100, no filter, each sort
 *   search        the browser test's queries (q_all_words) and the prefixes typed on the way to them
 *   page 2        the second page of a search
 * and prints p50/p99 per kind in ms of CPU time (wall time on a shared machine is noise). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: the machine is shared, wall time is noisy */
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static const char *words[] = {"timeout", "connection", "refused", "reset", "peer", "invoice", "order", "payment",
                              "customer", "cart", "session", "token", "user", "account", "database", "query",
                              "deadlock", "replica", "shard", "cache", "miss", "redis", "kafka", "consumer",
                              "lag", "offset", "retry", "upstream", "gateway", "tls", "handshake", "certificate",
                              "expired", "quota", "exceeded", "disk", "full", "permission", "denied"};
static const char *classes[] = {"*url.Error", "*net.OpError", "*pq.Error", "ValueError", "KeyError",
                                "TimeoutError", "NoMethodError", "ActiveRecord::RecordNotFound",
                                "java.io.IOException", "java.lang.NullPointerException", "*json.SyntaxError",
                                "RuntimeError"};
static const char *sevs[] = {"error", "error", "error", "warning", "warning", "info"};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static unsigned long long rng = 88172645463325252ULL;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *t, size_t n, unsigned long long total)
{
    qsort(t, n, sizeof(double), cmp_d);
    printf("%-44s p50 %7.2f ms  p99 %7.2f ms  (%zu requests, last total %llu)\n", what, t[n / 2],
           t[n * 99 / 100], n, total);
}

static double list_once(store *s, store_query *q, unsigned long long *total, char **next)
{
    store_page p;
    char e[256];
    double t0 = now_ms();
    if (store_list(s, q, &p, e, sizeof(e)) != 0) {
        fprintf(stderr, "list: %s\n", e);
        exit(1);
    }
    double d = now_ms() - t0;
    *total = p.total;
    if (next)
        *next = p.next_cursor ? strdup(p.next_cursor) : NULL;
    store_page_free(&p);
    return d;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 100000;
    int samples = argc > 2 ? atoi(argv[2]) : 1;
    if (n <= 0 || samples <= 0)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    store *s = store_memory_new(NULL);
    merge_engine *e = merge_new(NULL);
    merge_changeset cs;
    merge_changeset_init(&cs);
    char err[512];
    int64_t now = 1709377200000LL;
    enum { BATCH = 1000 };
    size_t cap = (size_t)BATCH * 700 + 64;
    char *body = malloc(cap);
    double fill0 = now_ms(), in_apply = 0;
    for (int t = 0; t < samples; t++) {
        rng = 88172645463325252ULL; /* every target reports the same errors (new uuids) */
        for (int b = 0; b < n; b += BATCH) {
            size_t off = (size_t)snprintf(body, cap, "{\"target_uuid\":\"t%d-%d\",\"aggregated_errors\":[", t, b);
            for (int i = b; i < b + BATCH && i < n; i++) {
                const char *cls = classes[rnd(sizeof(classes) / sizeof(classes[0]))];
                const char *w[5];
                for (int k = 0; k < 5; k++)
                    w[k] = words[rnd(NWORDS)];
                off += (size_t)snprintf(
                    body + off, cap - off,
                    "%s{\"aggregation_key\":\"%s@%08x\",\"total_count\":%u,\"severity\":\"%s\","
                    "\"created_at\":\"2024-03-01T10:00:00Z\",\"latest_errors\":[{\"error\":{\"class\":\"%s\","
                    "\"message\":\"%s %s: %s %s (%s #%d)\",\"stacktrace\":[\"main.handle%d\",\"/app/%s.go:%d\"]},"
                    "\"uuid\":\"%08x-%04x-4%03x-a%03x-%012x\",\"timestamp\":\"2024-03-%02dT%02d:%02d:00Z\"}]}",
                    i > b ? "," : "", cls, (unsigned)(i * 2654435761u), 1 + rnd(100), sevs[rnd(6)], cls, w[0],
                    w[1], w[2], w[3], w[4], i, i % 97, w[0], i % 300, rnd(1u << 31), t, rnd(4096), rnd(4096),
                    rnd(1u << 31), 1 + rnd(28), rnd(24), rnd(60));
            }
            snprintf(body + off, cap - off, "]}");
            char url[64], e2[256];
            snprintf(url, sizeof(url), "http://10.1.%d.10:8080/-/exceptions", t);
            payload_doc *d = payload_parse(body, strlen(body), url, e2, sizeof(e2));
            if (!d) {
                fprintf(stderr, "parse: %s\n", e2);
                return 1;
            }
            labelset ls;
            labelset_init(&ls);
            labelset_set(&ls, "job", "big");
            labelset_set(&ls, "instance", url);
            merge_input in = {.job = "big", .url = url, .labels = &ls, .doc = d, .now_ms = now};
            merge_apply(e, &in, &cs);
            double a = now_ms();
            if (store_apply(s, &cs, now, err, sizeof(err)) != 0) {
                fprintf(stderr, "apply: %s\n", err);
                return 1;
            }
            in_apply += now_ms() - a;
            merge_changeset_clear(&cs);
            labelset_free(&ls);
            payload_free(d);
        }
    }
    printf("fill: %d errors x %d samples: %.0f ms, of which store_apply %.0f ms\n", n, samples, now_ms() - fill0,
           in_apply);

    enum { REPS = 30 };
    static double t[4096];
    unsigned long long total = 0;
    size_t k = 0;
    for (int r = 0; r < REPS; r++)
        for (int so = 0; so < 3; so++) {
            store_query q = {.job = "big", .severity = -1, .status = -1, .sort = (store_sort)so, .limit = 100};
            t[k++] = list_once(s, &q, &total, NULL);
        }
    report("first page (no filter, 3 sorts)", t, k, total);

    const char *queries[] = {"timeout", "cache miss", "replica deadlock", "tls handshake", "kafka"};
    k = 0;
    for (int r = 0; r < REPS / 3; r++)
        for (size_t i = 0; i < 5; i++) {
            store_query q = {.job = "big", .severity = -1, .status = -1, .q = queries[i], .q_all_words = true,
                             .limit = 100};
            t[k++] = list_once(s, &q, &total, NULL);
        }
    report("search (the browser test's 5 queries)", t, k, total);

    k = 0;
    for (size_t i = 0; i < 5; i++) {
        char pre[64];
        for (size_t l = 1; l <= strlen(queries[i]); l++) {
            snprintf(pre, sizeof(pre), "%.*s", (int)l, queries[i]);
            store_query q = {.job = "big", .severity = -1, .status = -1, .q = pre, .q_all_words = true,
                             .limit = 100};
            t[k++] = list_once(s, &q, &total, NULL);
        }
    }
    report("search while typing (every prefix)", t, k, total);

    k = 0;
    for (int r = 0; r < REPS; r++) {
        store_query q = {.job = "big", .severity = -1, .status = -1, .q = "Timeout", .limit = 100,
                         .sort = STORE_SORT_COUNT};
        char *next = NULL;
        list_once(s, &q, &total, &next);
        q.cursor = next;
        t[k++] = list_once(s, &q, &total, NULL);
        free(next);
    }
    report("search, page 2 (sort=count)", t, k, total);

    k = 0;
    for (int r = 0; r < REPS; r++) {
        store_query q = {.job = "big", .severity = -1, .status = -1, .q = "zzz-no-such-thing", .limit = 100};
        t[k++] = list_once(s, &q, &total, NULL);
    }
    report("search without matches", t, k, total);

    merge_changeset_free(&cs);
    merge_free(e);
    store_close(s);
    free(body);
    return 0;
}
