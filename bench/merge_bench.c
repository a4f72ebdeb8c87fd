/* merge_bench: merge-engine throughput at fleet scale: 10,000 targets x 100 keys per cycle.
 *
 * Build and run (Makefile rule `$(BUILD)/bench/%`):
 *   make build/bench/merge_bench && build/bench/merge_bench [targets] [keys] [cycles] [scenario 0|1|2]
 * or by hand:
 *   cc -std=c11 -D_GNU_SOURCE -O2 -Isrc -o merge_bench bench/merge_bench.c build/liblookout.a \
 *      $(pkg-config --libs jansson) -pthread -lm
 *
 * Scenarios (each timed over `cycles` cycles after a warm-up cycle in which every key is new):
 *   all      every target's body changed, every key's count +1 with one new occurrence
 *   1pct     1% of the targets changed (as "all"); the other 99% are skipped by the body-hash check
 *            (a 20 KB body hashed per target, as the scrape path would)
 *   1pct-nohash  every payload merged (no body-hash skip) but only 1% of its keys changed
 * Payload documents are built outside the timed region (parsing is measured separately by the
 * parse line: one 100-key, 10-occurrence-per-key body). The memory store's apply of the resulting
 * change set is reported separately. Goal: < 1 s per cycle on one core. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "periskop/payload.h"
#include "store/merge.h"
#include "store/store.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int n_targets = 10000, n_keys = 100, n_cycles = 3;
static uint64_t **counts; /* [target][key] */
static payload_occurrence *old_occ;
static uint64_t *body_version; /* per target: the cycle its body last changed */ /* one shared old occurrence every payload also carries */

/* Payload of target t at cycle c; keys with changed[k] get count+1 and a fresh occurrence. */
static payload_doc *build(int t, int cycle, int change_every)
{
    payload_doc *d = calloc(1, sizeof(*d));
    char buf[128];
    snprintf(buf, sizeof(buf), "uuid-%d", t);
    d->target_uuid = xstrdup(buf);
    d->instance_id = xstrdup(buf);
    d->aggregates = calloc((size_t)n_keys, sizeof(payload_aggregate));
    d->n_aggregates = (size_t)n_keys;
    for (int k = 0; k < n_keys; k++) {
        payload_aggregate *a = &d->aggregates[k];
        snprintf(buf, sizeof(buf), "java.lang.IllegalStateException@%08x", k * 2654435761u);
        a->key = xstrdup(buf);
        bool ch = change_every == 1 || ((t + k + cycle) % change_every) == 0;
        if (ch)
            counts[t][k]++;
        a->total_count = counts[t][k];
        a->severity = PAYLOAD_ERROR;
        a->created_at_ms = 1700000000000LL;
        a->occurrences = calloc(2, sizeof(void *));
        payload_occurrence_ref(old_occ);
        a->occurrences[a->n_occurrences++] = old_occ;
        /* the newest occurrence: new uuid when changed, else the same as last cycle */
        snprintf(buf, sizeof(buf), "occ-%d-%d-%llu", t, k, (unsigned long long)counts[t][k]);
        a->occurrences[a->n_occurrences++] =
            payload_occurrence_new("java.lang.IllegalStateException", "cache not warmed", buf,
                                   1709377200000LL + (int64_t)counts[t][k] * 15000 + t, PAYLOAD_ERROR, NULL, NULL);
    }
    return d;
}

typedef struct result {
    double merge_s, build_s, store_s;
    size_t changed;
} result;

static result cycle(merge_engine *e, store *st, int cyc, int64_t now, int mode, char *body, size_t body_len)
{
    result r = {0};
    merge_changeset cs;
    merge_changeset_init(&cs);
    char url[64];
    labelset ls;
    labelset_init(&ls);
    labelset_set(&ls, "job", "bench");
    for (int t = 0; t < n_targets; t++) {
        snprintf(url, sizeof(url), "http://10.%d.%d.%d:8080/-/exceptions", t >> 16, (t >> 8) & 255, t & 255);
        bool target_changed = mode != 1 || (t % 100) == (cyc % 100);
        double t0 = now_s();
        /* The body differs per target and per change; mimic it by stamping (target, version). */
        if (target_changed)
            body_version[t] = (uint64_t)cyc;
        uint64_t version = body_version[t];
        memcpy(body, &t, sizeof(t));
        memcpy(body + 8, &version, sizeof(version));
        uint64_t h = merge_body_hash(body, body_len);
        bool skip = mode == 1 && merge_body_unchanged(e, "bench", url, h, now);
        r.merge_s += now_s() - t0;
        if (skip)
            continue;
        t0 = now_s();
        payload_doc *d = build(t, cyc, mode == 2 ? 100 : 1);
        r.build_s += now_s() - t0;
        labelset_set(&ls, "instance", url + 7);
        merge_input in = {.job = "bench", .url = url, .labels = &ls, .doc = d, .body_hash = h, .now_ms = now};
        t0 = now_s();
        r.changed += merge_apply(e, &in, &cs);
        r.merge_s += now_s() - t0;
        t0 = now_s();
        payload_free(d);
        r.build_s += now_s() - t0;
    }
    double t0 = now_s();
    char err[256];
    store_apply(st, &cs, now, err, sizeof(err));
    r.store_s = now_s() - t0;
    t0 = now_s();
    merge_changeset_free(&cs);
    r.store_s += now_s() - t0;
    labelset_free(&ls);
    return r;
}

static void parse_bench(void)
{
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "{\"target_uuid\":\"3f6c1e2a-9b7d-4c41-8e0a-5d2b7f90c1aa\",\"aggregated_errors\":[");
    for (int k = 0; k < 100; k++) {
        strbuf_printf(&sb, "%s{\"aggregation_key\":\"E@%08x\",\"total_count\":%d,\"severity\":\"error\","
                           "\"created_at\":\"2024-03-02T09:14:07.512Z\",\"latest_errors\":[", k ? "," : "", k, k);
        for (int o = 0; o < 10; o++)
            strbuf_printf(&sb, "%s{\"error\":{\"class\":\"*url.Error\",\"message\":\"context deadline exceeded\","
                               "\"stacktrace\":[\"/app/client.go:88\",\"/app/handlers.go:214\"],\"cause\":null},"
                               "\"uuid\":\"c0a8f3d2-51e4-4b8e-9a57-%012d\",\"timestamp\":\"2024-03-02T11:02:44.901Z\","
                               "\"severity\":\"error\",\"http_context\":null}",
                          o ? "," : "", k * 10 + o);
        strbuf_puts(&sb, "]}");
    }
    strbuf_puts(&sb, "]}");
    int n = 200;
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        char err[256];
        payload_doc *d = payload_parse(sb.buf, sb.len, "x", err, sizeof(err));
        payload_free(d);
    }
    double dt = (now_s() - t0) / n;
    printf("parse: %zu-byte body (100 keys x 10 occurrences): %.3f ms/body, %.1f MB/s\n", sb.len, dt * 1e3,
           sb.len / dt / 1e6);
    strbuf_free(&sb);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        n_targets = atoi(argv[1]);
    if (argc > 2)
        n_keys = atoi(argv[2]);
    if (argc > 3)
        n_cycles = atoi(argv[3]);
    if (n_targets <= 0 || n_keys <= 0 || n_cycles <= 0) {
        fprintf(stderr, "usage: merge_bench [targets] [keys] [cycles]\n");
        return 2;
    }
    counts = calloc((size_t)n_targets, sizeof(uint64_t *));
    body_version = calloc((size_t)n_targets, sizeof(uint64_t));
    for (int t = 0; t < n_targets; t++)
        counts[t] = calloc((size_t)n_keys, sizeof(uint64_t));
    old_occ = payload_occurrence_new("java.lang.IllegalStateException", "cache not warmed", "old", 1700000000000LL,
                                     PAYLOAD_ERROR, NULL, NULL);
    size_t body_len = 20000;
    char *body = calloc(1, body_len);
    for (size_t i = 16; i < body_len; i++)
        body[i] = (char)('a' + i % 26);

    if (argc <= 4)
        parse_bench();
    const char *names[] = {"all", "1pct", "1pct-nohash"};
    int only = argc > 4 ? atoi(argv[4]) : -1; /* 0 all, 1 1pct, 2 1pct-nohash */
    for (int mode = 0; mode < 3; mode++) {
        if (only >= 0 && mode != only)
            continue;
        merge_engine *e = merge_new(NULL);
        store *st = store_memory_new(NULL);
        int64_t now = 1709377200000LL;
        result w = cycle(e, st, 0, now, mode == 1 ? 0 : mode, body, body_len); /* warm-up: every key new */
        printf("%-12s warm-up (all new): merge %.3f s, store apply %.3f s, changed %zu\n", names[mode], w.merge_s,
               w.store_s, w.changed);
        result sum = {0};
        for (int c = 1; c <= n_cycles; c++) {
            now += 15000;
            result r = cycle(e, st, c, now, mode, body, body_len);
            sum.merge_s += r.merge_s;
            sum.store_s += r.store_s;
            sum.build_s += r.build_s;
            sum.changed += r.changed;
        }
        merge_stats ms;
        merge_get_stats(e, &ms);
        double per = sum.merge_s / n_cycles;
        printf("%-12s %d targets x %d keys: merge %.3f s/cycle (%.2f cycles/s), store apply %.3f s/cycle, "
               "changed %zu/cycle  [instances %zu, keys %zu, instance-keys %zu]\n",
               names[mode], n_targets, n_keys, per, per > 0 ? 1 / per : 0.0, sum.store_s / n_cycles,
               sum.changed / (size_t)n_cycles, ms.instances, ms.aggregates, ms.instance_keys);
        store_close(st);
        merge_free(e);
    }
    payload_occurrence_unref(old_occ);
    for (int t = 0; t < n_targets; t++)
        free(counts[t]);
    free(counts);
    free(body_version);
    free(body);
    return 0;
}
