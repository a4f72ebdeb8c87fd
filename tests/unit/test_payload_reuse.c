/* Reuse of unchanged aggregates (payload_scan.c, payload_parse_reuse, ingest/agg_cache.c): the scanner's
 * spans on literal bodies, and a randomized comparison of two merge engines fed the same body sequences,
 * one parsing every body in full, the other reusing what did not change: every change set must be the
 * same. */
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "heap_use.h"
#include "ingest/agg_cache.h"
#include "ingest/ingest.h"
#include "periskop/payload_priv.h"
#include "store/merge.h"
#include "util/hash.h"
#include "util/strbuf.h"

static long scan(const char *body, payload_span *sp)
{
    return payload_scan_aggregates(body, strlen(body), sp, 8);
}

Test(payload_scan, spans_of_plain_bodies)
{
    payload_span sp[8];
    const char *b = "{\"target_uuid\":\"u\",\"aggregated_errors\":[{\"a\":1},{\"b\":[{\"c\":\"]}\\\"{\"}]}]}";
    cr_assert_eq(scan(b, sp), 2);
    cr_assert_eq(sp[0].start, 40);
    cr_assert_eq(sp[0].end, 47);
    cr_assert_eq(sp[1].start, 48);
    cr_assert_eq(sp[1].end, 69);
    /* whitespace everywhere, a string ending in an escaped backslash, members after the list */
    b = " { \"aggregated_errors\" : [ {\"k\":\"x\\\\\"} , {} ] , \"x\" : [1,{\"y\":null}] } ";
    cr_assert_eq(scan(b, sp), 2);
    cr_assert_eq(sp[0].start, 27);
    cr_assert_eq(sp[0].end, 38);
    cr_assert_eq(sp[1].start, 41);
    cr_assert_eq(sp[1].end, 43);
    cr_assert_eq(scan("{\"aggregated_errors\":[]}", sp), 0);
}

Test(payload_scan, other_shapes_give_no_spans)
{
    payload_span sp[8];
    cr_assert_eq(scan("[{\"aggregated_errors\":[{}]}]", sp), -1);                     /* root array */
    cr_assert_eq(scan("{\"target_uuid\":\"u\"}", sp), -1);                            /* no list */
    cr_assert_eq(scan("{}", sp), -1);
    cr_assert_eq(scan("{\"aggregated_errors\":[{}],\"aggregated_errors\":[{}]}", sp), -1); /* repeated */
    cr_assert_eq(scan("{\"aggregated\\u005ferrors\":[{}]}", sp), -1);                 /* escaped name */
    cr_assert_eq(scan("{\"aggregated_errors\":[{},0]}", sp), -1);                      /* not an object */
    cr_assert_eq(scan("{\"aggregated_errors\":{}}", sp), -1);                          /* not an array */
    cr_assert_eq(scan("{\"aggregated_errors\":[{\"a\":\"}]}", sp), -1);                /* truncated string */
    cr_assert_eq(scan("{\"aggregated_errors\":[{\"a\":1}", sp), -1);                   /* truncated list */
    cr_assert_eq(scan("{\"aggregated_errors\":[{},{},{},{},{},{},{},{},{}]}", sp), -1); /* more than max */
    cr_assert_eq(scan("{\"aggregated_errors\":[{}] x", sp), -1);
}

/* Every JSON whitespace, scalars of every kind before the list, and a body ending in a scalar held in a
 * buffer of exactly its size (no NUL after it: ASan sees a read past the end). */
Test(payload_scan, whitespace_scalars_and_exact_buffers)
{
    payload_span sp[8];
    const char *b = "{\"n\":-1.5e3,\t\"t\":true,\r\n\"z\":null,\"aggregated_errors\":\n[\r{}\t]\n}";
    cr_assert_eq(scan(b, sp), 1);
    cr_assert_eq(sp[0].start, 56);
    cr_assert_eq(sp[0].end, 58);
    const char *tail = "{\"aggregated_errors\":[{}],\"x\":12";
    size_t n = strlen(tail);
    char *exact = malloc(n);
    memcpy(exact, tail, n);
    cr_assert_eq(payload_scan_aggregates(exact, n, sp, 8), -1); /* unterminated root */
    memcpy(exact + n - 2, "}}", 2);                              /* {"aggregated_errors":[{}],"x":}} */
    cr_assert_eq(payload_scan_aggregates(exact, n, sp, 8), -1);
    free(exact);
    cr_assert_eq(scan("{\"aggregated_errors\":[{} x]}", sp), -1); /* garbage after an element */
    cr_assert_eq(scan("x\"aggregated_errors\":[{}]}", sp), -1);   /* not an object */
    cr_assert_eq(scan("{\"aggregated_errors\":[{}]] }", sp), -1);
    cr_assert_eq(scan("{\"aggregated_errors\" [{}]}", sp), -1);   /* no colon */
    cr_assert_eq(scan("{\"aggregated_errors\":[{}]} ", sp), 1);
}

/* Every proper prefix of a body is no plain shape (each in a buffer of exactly its size); a list repeated
 * after an empty one is still a repeated list. */
Test(payload_scan, prefixes_and_repeats)
{
    payload_span sp[8];
    const char *b = "{\"target_uuid\":\"u\\\"\", \"n\":1,\"aggregated_errors\":[{\"a\":[1,\"}\"]},{}],\"z\":null}";
    size_t n = strlen(b);
    for (size_t len = 0; len < n; len++) {
        char *exact = malloc(len); /* 0 bytes too: ASan sees any read */
        memcpy(exact, b, len);
        cr_assert_eq(payload_scan_aggregates(exact, len, sp, 8), -1, "prefix of %zu bytes", len);
        free(exact);
    }
    cr_assert_eq(scan(b, sp), 2);
    cr_assert_eq(scan("{\"aggregated_errors\":[],\"aggregated_errors\":[{}]}", sp), -1);
    cr_assert_eq(scan("{\"aggregated_errors\":[{}],\"aggregated_errors\":[]}", sp), -1);
}

/* Random strings with escapes at every position around the scanner's short-string loop (24 bytes): every
 * aggregate's span must be exactly what yajl parsed (else it gets no fingerprint). */
Test(payload_scan, spans_agree_with_yajl)
{
    static const char *const pieces[] = {"a", "\\\\", "\\\"", "]", "}", "{", "[", ",", ":", "\\u0041", " ", "\\n"};
    unsigned seed = 12345;
    for (int round = 0; round < 3000; round++) {
        strbuf sb;
        strbuf_init(&sb);
        strbuf_puts(&sb, "{\"aggregated_errors\":[");
        int n = 1 + round % 4;
        for (int k = 0; k < n; k++) {
            strbuf_printf(&sb, "%s{\"aggregation_key\":\"k%d\",\"total_count\":1,\"latest_errors\":[{\"error\":"
                               "{\"class\":\"", k ? "," : "", k);
            seed = seed * 1103515245u + 12345u;
            int len = (int)((seed >> 16) % 40);
            for (int j = 0; j < len; j++) {
                seed = seed * 1103515245u + 12345u;
                strbuf_puts(&sb, pieces[(seed >> 16) % (sizeof pieces / sizeof *pieces)]);
            }
            strbuf_puts(&sb, "\"},\"uuid\":\"x\"}]}");
        }
        strbuf_puts(&sb, "]}");
        char err[256];
        payload_doc *d = payload_parse_reuse(sb.buf, sb.len, "u", 3, &(payload_reuse){0}, err, sizeof err);
        cr_assert_not_null(d, "%s: %s", err, sb.buf);
        cr_assert_eq(d->n_aggregates, (size_t)n, "%s", sb.buf);
        for (size_t i = 0; i < d->n_aggregates; i++)
            cr_assert_neq(d->aggregates[i].raw_hash, 0, "aggregate %zu of %s", i, sb.buf);
        payload_free(d);
        strbuf_free(&sb);
    }
}

/* ---- the same body sequence through a full parse and through reuse ---- */

#define KEYS 6
#define OCC 4

typedef struct gen {
    unsigned seed;
    char uuid[40];
    int present[KEYS];
    unsigned long count[KEYS];
    int newest[KEYS]; /* sequence number of the newest occurrence */
    int order;        /* rotation of the key order */
    int spaced;       /* formatting */
    int dup;          /* key index written twice, or -1 */
    int bad_occ;      /* key index with a malformed occurrence, or -1 */
    int bad_agg;      /* write one element without a key */
    int escaped;      /* the list's name written with an escape */
    int future;       /* unused */
    int future_seq[KEYS]; /* per key, the occurrence dated in 2999 (a client with a broken clock), or -1 */
    int no_created[KEYS]; /* per key, created_at left out (the merge then dates it by its oldest occurrence) */
} gen;

static unsigned rnd(gen *g)
{
    g->seed = g->seed * 1103515245u + 12345u;
    return (g->seed >> 16) & 0x7fff;
}

/* copy: 1 for the second element of a repeated key, which claims a larger count */
static void put_agg(strbuf *sb, const gen *g, int k, const char *sp, int copy)
{
    /* odd keys claim a created_at after their occurrences (clients are not consistent) */
    strbuf_printf(sb, "{\"aggregation_key\":%s\"key-%d\",%s\"total_count\":%lu,\"severity\":\"%s\",",
                  sp, k, sp, g->count[k] + (copy ? 5 : 0), k % 3 == 0 ? "warning" : "error");
    if (!g->no_created[k])
        strbuf_printf(sb, "\"created_at\":\"2024-03-02T%s:00:00Z\",", k % 2 ? "12" : "09");
    strbuf_puts(sb, "\"latest_errors\":[");
    for (int j = 0; j < OCC && g->newest[k] - j >= 0; j++) {
        int s = g->newest[k] - j;
        if (j)
            strbuf_puts(sb, ",");
        if (k == g->bad_occ && j == 1) {
            strbuf_printf(sb, "{\"error\":{\"class\":\"E\"},\"uuid\":\"bad\",\"timestamp\":\"not a time\"}");
            continue;
        }
        strbuf_printf(sb,
                       "{\"error\":{\"class\":\"E%d\",\"message\":\"m%d\",\"stacktrace\":[\"a.go:%d\"]},"
                       "\"uuid\":\"o-%d-%d\",\"timestamp\":\"%s-03-02T10:%02d:%02dZ\"}",
                       k, s, s, k, s, g->future_seq[k] == s ? "2999" : "2024", (s / 60) % 60, s % 60);
    }
    strbuf_puts(sb, "]}");
}

static char *body(const gen *g)
{
    strbuf sb;
    strbuf_init(&sb);
    const char *sp = g->spaced ? " " : "";
    strbuf_printf(&sb, "{\"target_uuid\":%s\"%s\",%s\"%s\":%s[", sp, g->uuid, sp,
                   g->escaped ? "aggregated\\u005ferrors" : "aggregated_errors", sp);
    int first = 1;
    for (int i = 0; i < KEYS; i++) {
        int k = (i + g->order) % KEYS;
        if (!g->present[k])
            continue;
        for (int rep = 0; rep < (k == g->dup ? 2 : 1); rep++) {
            strbuf_puts(&sb, first ? "" : ",");
            first = 0;
            put_agg(&sb, g, k, sp, rep);
        }
    }
    if (g->bad_agg)
        strbuf_printf(&sb, "%s{\"total_count\":1}", first ? "" : ",");
    strbuf_puts(&sb, "]}");
    return sb.buf;
}

static void mutate(gen *g)
{
    g->dup = g->bad_occ = g->future = -1;
    g->bad_agg = g->escaped = 0;
    int k = (int)(rnd(g) % KEYS);
    switch (rnd(g) % 12) {
    case 0: case 1: case 2: case 3: /* the common case: one key raised once more */
        g->count[k]++;
        g->newest[k]++;
        g->present[k] = 1;
        break;
    case 4: g->order = (g->order + 1) % KEYS; break;
    case 5: g->spaced = !g->spaced; break;
    case 6: g->present[k] = !g->present[k]; break;
    case 7: /* a restart: counts start again, sometimes under a new uuid */
        for (int i = 0; i < KEYS; i++)
            g->count[i] = g->count[i] > 3 ? 1 : g->count[i];
        if (rnd(g) % 2)
            snprintf(g->uuid, sizeof g->uuid, "u%u", rnd(g));
        break;
    case 8: g->dup = k; break;
    case 9: g->bad_occ = k; break;
    case 10: g->bad_agg = 1; g->escaped = (int)(rnd(g) % 2); break;
    case 11: g->newest[k]++; g->count[k]++; g->future_seq[k] = g->newest[k]; break;
    }
    if (rnd(g) % 8 == 0) { /* created_at comes and goes, with a raise */
        int j = (int)(rnd(g) % KEYS);
        g->no_created[j] = !g->no_created[j];
        g->count[j]++;
        g->newest[j]++;
    }
}

static int by_key(const void *a, const void *b)
{
    return strcmp(((const merge_change *)a)->key, ((const merge_change *)b)->key);
}

static void same_changes(merge_changeset *x, merge_changeset *y, int step)
{
    cr_assert_eq(x->n, y->n, "step %d: %zu vs %zu changes", step, x->n, y->n);
    if (x->n) { /* qsort(NULL, 0) is undefined */
        qsort(x->v, x->n, sizeof *x->v, by_key);
        qsort(y->v, y->n, sizeof *y->v, by_key);
    }
    for (size_t i = 0; i < x->n; i++) {
        const merge_change *a = &x->v[i], *b = &y->v[i];
        cr_assert_str_eq(a->key, b->key, "step %d", step);
        cr_assert_eq(a->is_new, b->is_new, "step %d %s", step, a->key);
        cr_assert_eq(a->total_count, b->total_count, "step %d %s: %lu vs %lu", step, a->key,
                     (unsigned long)a->total_count, (unsigned long)b->total_count);
        cr_assert_eq(a->severity, b->severity, "step %d %s", step, a->key);
        cr_assert_eq(a->created_at_ms, b->created_at_ms, "step %d %s", step, a->key);
        cr_assert_eq(a->last_seen_ms, b->last_seen_ms, "step %d %s", step, a->key);
        cr_assert_eq(a->n_added, b->n_added, "step %d %s: %zu vs %zu added", step, a->key, a->n_added, b->n_added);
        for (size_t j = 0; j < a->n_added; j++)
            cr_assert_str_eq(a->added[j]->uuid, b->added[j]->uuid, "step %d %s", step, a->key);
        cr_assert_eq(a->n_evicted, b->n_evicted, "step %d %s", step, a->key);
        for (size_t j = 0; j < a->n_evicted; j++)
            cr_assert_eq(a->evicted[j], b->evicted[j], "step %d %s", step, a->key);
        cr_assert_eq(a->n_series, b->n_series, "step %d %s", step, a->key);
        for (size_t j = 0; j < a->n_series; j++)
            cr_assert_eq(a->series[j].delta, b->series[j].delta, "step %d %s", step, a->key);
    }
    cr_assert_eq(x->n_counts, y->n_counts, "step %d: %zu vs %zu counts", step, x->n_counts, y->n_counts);
}

/* Feeds n bodies; returns how many aggregates were reused. */
static size_t compare_run(unsigned seed, int steps, size_t *known_out)
{
    const char *job = "j", *url = "http://10.0.0.1:80/-/exceptions";
    merge_options o = {0};
    merge_engine *full = merge_new(NULL), *fast = merge_new(NULL);
    (void)o;
    agg_cache *cache = agg_cache_new();
    merge_changeset cf, cr;
    merge_changeset_init(&cf);
    merge_changeset_init(&cr);
    gen g = {.seed = seed, .uuid = "u0", .dup = -1, .bad_occ = -1, .future = -1};
    for (int k = 0; k < KEYS; k++) {
        g.future_seq[k] = -1;
        g.present[k] = k < 4;
        g.count[k] = 10 + (unsigned long)k;
        g.newest[k] = 5;
    }
    size_t reused = 0, known = 0;
    size_t max_occ = seed % 2 ? 3 : 5; /* 3: lists of 4 are thinned by the parse, so none is left out */
    for (int step = 0; step < steps; step++) {
        if (step)
            mutate(&g);
        char *b = body(&g), err[256];
        int64_t now = 1709377200000LL + step * 15000LL;
        payload_doc *d1 = payload_parse_limited(b, strlen(b), url, max_occ, err, sizeof err);
        cr_assert_not_null(d1, "step %d: %s", step, err);
        payload_doc *d2 = agg_cache_parse(cache, fast, job, url, b, strlen(b), max_occ, true, err, sizeof err);
        cr_assert_not_null(d2, "step %d: %s", step, err);
        cr_assert_eq(d1->n_aggregates, d2->n_aggregates, "step %d", step);
        cr_assert_eq(d1->skipped_aggregates, d2->skipped_aggregates, "step %d", step);
        cr_assert_eq(d1->skipped_occurrences, d2->skipped_occurrences, "step %d", step);
        cr_assert_str_eq(d1->first_problem, d2->first_problem, "step %d", step);
        for (size_t i = 0; i < d2->n_aggregates; i++) {
            reused += d2->aggregates[i].reused;
            known += d2->aggregates[i].known_occurrences;
        }
        ingest_merge_doc(full, job, url, NULL, NULL, d1, false, 0, now, &cf);
        ingest_merge_doc(fast, job, url, NULL, NULL, d2, false, 0, now, &cr);
        agg_cache_remember(cache, job, url, d2);
        same_changes(&cf, &cr, step);
        merge_changeset_clear(&cf);
        merge_changeset_clear(&cr);
        payload_free(d1);
        payload_free(d2);
        free(b);
    }
    merge_changeset_free(&cf);
    merge_changeset_free(&cr);
    agg_cache_free(cache);
    merge_free(full);
    merge_free(fast);
    *known_out += known;
    return reused;
}

Test(payload_reuse, same_changes_as_a_full_parse)
{
    size_t reused = 0, known = 0;
    for (unsigned seed = 1; seed <= 40; seed++)
        reused += compare_run(seed, 150, &known);
    cr_assert_gt(reused, 40 * 150, "reuse hardly happened: %zu", reused);
    cr_assert_gt(known, 40 * 20, "occurrences were hardly left out: %zu", known);
}

/* One key of five raised: the other four come from the cache, and the body merges as in full. */
Test(payload_reuse, unchanged_aggregates_are_not_parsed)
{
    const char *job = "j", *url = "http://10.0.0.1:80/-/exceptions";
    merge_engine *e = merge_new(NULL);
    agg_cache *cache = agg_cache_new();
    merge_changeset cs;
    merge_changeset_init(&cs);
    gen g = {.seed = 7, .uuid = "u0", .dup = -1, .bad_occ = -1, .future = -1};
    for (int k = 0; k < 5; k++) {
        g.present[k] = 1;
        g.count[k] = 3;
        g.newest[k] = 2;
    }
    char err[256];
    size_t expect_reused[] = {0, 4, 4, 0};
    for (int step = 0; step < 4; step++) {
        if (step == 1 || step == 2) {
            g.count[step]++;
            g.newest[step]++;
        }
        if (step == 3)
            snprintf(g.uuid, sizeof g.uuid, "restarted"); /* same aggregates, another instance: in full */
        char *b = body(&g);
        payload_doc *d = agg_cache_parse(cache, e, job, url, b, strlen(b), 5, true, err, sizeof err);
        cr_assert_not_null(d, "%s", err);
        size_t n = 0, hashed = 0;
        for (size_t i = 0; i < d->n_aggregates; i++) {
            const payload_aggregate *a = &d->aggregates[i];
            n += a->reused;
            hashed += a->raw_hash != 0;
            bool raised = (strcmp(a->key, "key-1") == 0 && step >= 1) || (strcmp(a->key, "key-2") == 0 && step >= 2);
            cr_assert_eq(a->n_occ_hashes, raised ? 4 : 3, "step %d %s", step, a->key);
            if (a->reused) {
                cr_assert_eq(a->n_occurrences, 0);
            } else if (step == 1 || step == 2) { /* raised once more: only the new occurrence is parsed */
                cr_assert_eq(a->n_occurrences, 1, "step %d %s", step, a->key);
                cr_assert_eq(a->known_occurrences, 3, "step %d %s", step, a->key);
            }
        }
        cr_assert_eq(n, expect_reused[step], "step %d: %zu reused", step, n);
        cr_assert_eq(hashed, 5, "step %d", step);
        ingest_merge_doc(e, job, url, NULL, NULL, d, false, 0, 1709377200000LL + step, &cs);
        agg_cache_remember(cache, job, url, d);
        payload_free(d);
        free(b);
    }
    merge_aggregate_info info;
    cr_assert(merge_get(e, job, "key-2", &info));
    cr_assert_eq(info.total_count, 4 + 4); /* 4 from u0, then the restarted instance counted from scratch */
    merge_changeset_free(&cs);
    agg_cache_free(cache);
    merge_free(e);
}

/* merge_reuse_ok: a reused aggregate stands for occurrences the engine must already hold, under this
 * instance at this count. */
Test(payload_reuse, reuse_needs_what_the_engine_holds)
{
    const char *url = "http://10.0.0.1:80/-/exceptions";
    merge_engine *e = merge_new(NULL);
    merge_changeset cs;
    merge_changeset_init(&cs);
    payload_aggregate ra = {.key = "k", .total_count = 3, .severity = PAYLOAD_ERROR,
                            .created_at_ms = PAYLOAD_TS_NONE, .raw_hash = 42, .reused = true};
    payload_doc doc = {.instance_id = "u0", .aggregates = &ra, .n_aggregates = 1};
    merge_input mi = {.job = "j", .url = url, .doc = &doc};
    cr_assert_not(merge_reuse_ok(e, &mi)); /* nothing merged yet */
    char err[256];
    const char *b = "{\"target_uuid\":\"u0\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":3,"
                    "\"latest_errors\":[{\"error\":{\"class\":\"E\"},\"uuid\":\"x\"}]}]}";
    payload_doc *d = payload_parse(b, strlen(b), url, err, sizeof err);
    cr_assert_not_null(d, "%s", err);
    ingest_merge_doc(e, "j", url, NULL, NULL, d, false, 0, 1709377200000LL, &cs);
    payload_free(d);
    cr_assert(merge_reuse_ok(e, &mi));
    ra.total_count = 4; /* another count than the engine holds */
    cr_assert_not(merge_reuse_ok(e, &mi));
    ra.total_count = 3;
    doc.instance_id = "u1"; /* another instance */
    cr_assert_not(merge_reuse_ok(e, &mi));
    doc.instance_id = "u0";
    mi.job = "other"; /* another job */
    cr_assert_not(merge_reuse_ok(e, &mi));
    mi.job = "j";
    ra.key = "k2";
    cr_assert_not(merge_reuse_ok(e, &mi));
    ra.key = "k";
    ra.reused = false; /* parsed in full: nothing to check */
    ra.total_count = 99;
    cr_assert(merge_reuse_ok(e, &mi));
    ra.known_occurrences = 2; /* occurrences left out: the instance must count the key, at any count */
    cr_assert(merge_reuse_ok(e, &mi));
    ra.key = "k2";
    cr_assert_not(merge_reuse_ok(e, &mi));
    ra.key = "k";
    doc.instance_id = "u1";
    cr_assert_not(merge_reuse_ok(e, &mi));
    merge_changeset_free(&cs);
    merge_free(e);
}

/* Sources are (job, URL) pairs: a boundary moved between the two is another source. A body that fails to
 * parse fails with the full parse's exact error, and leaves what the source remembers. */
Test(payload_reuse, sources_and_failures)
{
    merge_engine *e = merge_new(NULL);
    agg_cache *cache = agg_cache_new();
    merge_changeset cs;
    merge_changeset_init(&cs);
    gen g = {.seed = 3, .uuid = "u0", .dup = -1, .bad_occ = -1, .future = -1};
    g.present[0] = g.present[1] = 1;
    g.count[0] = g.count[1] = 2;
    char *b = body(&g), err[256], err2[256];
    payload_doc *d = agg_cache_parse(cache, e, "j", "xurl", b, strlen(b), 3, true, err, sizeof err);
    cr_assert_not_null(d);
    ingest_merge_doc(e, "j", "xurl", NULL, NULL, d, false, 0, 1709377200000LL, &cs);
    agg_cache_remember(cache, "j", "xurl", d);
    payload_free(d);
    payload_reuse r;
    cr_assert(agg_cache_reuse(cache, "j", "xurl", &r));
    cr_assert_eq(agg_cache_entries(cache), 2);
    cr_assert_not(agg_cache_reuse(cache, "jx", "url", &r));
    cr_assert_null(r.lookup);
    cr_assert_not(agg_cache_reuse(cache, "j", "xur", &r));
    /* the same aggregates, then a broken tail: the error is the full parse's */
    size_t n = strlen(b);
    char *broken = strdup(b);
    broken[n - 1] = ',';
    cr_assert_null(payload_parse_limited(broken, n, "xurl", 3, err, sizeof err));
    cr_assert_null(agg_cache_parse(cache, e, "j", "xurl", broken, n, 3, true, err2, sizeof err2));
    cr_assert_str_eq(err2, err);
    /* still remembered: the unchanged body reuses both aggregates */
    d = agg_cache_parse(cache, e, "j", "xurl", b, n, 3, true, err, sizeof err);
    cr_assert_not_null(d);
    cr_assert(d->aggregates[0].reused && d->aggregates[1].reused);
    payload_free(d);
    agg_cache_clear(cache); /* error_relabel_configs changed: everything forgotten, the cache still works */
    cr_assert_not(agg_cache_reuse(cache, "j", "xurl", &r));
    d = agg_cache_parse(cache, e, "j", "xurl", b, n, 3, true, err, sizeof err);
    agg_cache_remember(cache, "j", "xurl", d);
    payload_free(d);
    cr_assert(agg_cache_reuse(cache, "j", "xurl", &r));
    cr_assert_eq(agg_cache_entries(cache), 2);
    agg_cache_remember(cache, "j", "other", d = agg_cache_parse(cache, e, "j", "other", b, n, 3, true, err, sizeof err));
    payload_free(d);
    cr_assert_eq(agg_cache_entries(cache), 4);
    agg_cache_forget(cache, "j", "xurl");
    cr_assert_not(agg_cache_reuse(cache, "j", "xurl", &r));
    cr_assert_eq(agg_cache_entries(cache), 2);
    /* nothing fingerprinted, or federated (grouped by origin job): nothing kept, and what was is dropped */
    payload_aggregate one = {.key = "k", .raw_hash = 7};
    agg_cache_remember(cache, "j", "xurl", &(payload_doc){.aggregates = &one, .n_aggregates = 1});
    cr_assert_eq(agg_cache_entries(cache), 3);
    agg_cache_remember(cache, "j", "xurl", &(payload_doc){0});
    cr_assert_not(agg_cache_reuse(cache, "j", "xurl", &r));
    cr_assert_eq(agg_cache_entries(cache), 2);
    payload_aggregate fed[2] = {{.key = "a", .raw_hash = 8}, {.key = "k", .raw_hash = 7, .origin_job = "lower"}};
    agg_cache_remember(cache, "j", "xurl", &(payload_doc){.aggregates = fed, .n_aggregates = 2});
    cr_assert_not(agg_cache_reuse(cache, "j", "xurl", &r));
    agg_cache_remember(cache, "j", "xurl", &(payload_doc){.aggregates = fed, .n_aggregates = 1, .lookout_instance = "l"});
    cr_assert_not(agg_cache_reuse(cache, "j", "xurl", &r));
    cr_assert_eq(agg_cache_entries(cache), 2);
    agg_cache_clear(cache);
    cr_assert_eq(agg_cache_entries(cache), 0);
    free(broken);
    free(b);
    merge_changeset_free(&cs);
    agg_cache_free(cache);
    merge_free(e);
}

/* Without reuse (error_relabel_configs apply) nothing is fingerprinted or reused. */
Test(payload_reuse, off_means_full_parse)
{
    merge_engine *e = merge_new(NULL);
    agg_cache *cache = agg_cache_new();
    gen g = {.seed = 1, .uuid = "u0", .dup = -1, .bad_occ = -1, .future = -1};
    g.present[0] = 1;
    g.count[0] = 1;
    char *b = body(&g), err[256];
    payload_doc *d = agg_cache_parse(cache, e, "j", "u", b, strlen(b), 3, false, err, sizeof err);
    cr_assert_not_null(d);
    cr_assert_eq(d->n_aggregates, 1);
    cr_assert_eq(d->aggregates[0].raw_hash, 0);
    payload_free(d);
    free(b);
    agg_cache_free(cache);
    merge_free(e);
}

#define BIG (256 * 1024) /* one leaked copy of a name is HEAP_USE_TOLERANCE */

/* ---- issue 19: the reuse modules after occurrence-level reuse (mutation testing, seeds 1 and 2) ---- */

/* A copy of s (n bytes) ending exactly where an unreadable page begins: a read one byte past the end
 * faults in the plain build too (not only under ASan). Unmap with guarded_free. */
static char *guarded(const char *s, size_t n, size_t *maplen)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    *maplen = (n / pg + 2) * pg;
    char *m = mmap(NULL, *maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(m, MAP_FAILED);
    cr_assert_eq(mprotect(m + *maplen - pg, pg, PROT_NONE), 0);
    char *b = m + *maplen - pg - n;
    memcpy(b, s, n);
    return b;
}

static void guarded_free(char *b, size_t n, size_t maplen)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    munmap(b + n + pg - maplen, maplen);
}

/* Every prefix of these bodies (ending inside a string with no quote after it, right after a colon, inside
 * an element...) ends at an unreadable page: the scanner answers -1 without reading past the end. */
Test(payload_scan, prefixes_never_read_past_the_end)
{
    static const char *const bodies[] = {
        "{\"target_uuid\":\"u\\\"\", \"n\":1,\"aggregated_errors\":[{\"a\":[1,\"}\"]},{}],\"z\":null}",
        "{\"x\":\"abc\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"latest_errors\":[{\"uuid\":\"q\"}]}]}",
    };
    payload_span sp[8];
    for (size_t b = 0; b < sizeof bodies / sizeof *bodies; b++) {
        size_t n = strlen(bodies[b]);
        for (size_t len = 0; len <= n; len++) {
            size_t maplen;
            char *g = guarded(bodies[b], len, &maplen);
            long r = payload_scan_aggregates(g, len, sp, 8);
            cr_assert_eq(r, len == n ? (b ? 1 : 2) : -1, "body %zu, prefix of %zu bytes", b, len);
            guarded_free(g, len, maplen);
        }
    }
}

/* The list's name is recognised by its exact bytes only: another member of the same length is not the
 * list; something else than a colon after a name is no plain shape. */
Test(payload_scan, names_and_colons)
{
    payload_span sp[8];
    cr_assert_eq(scan("{\"aggregated_errorZ\":[{}],\"aggregated_errors\":[{},{}]}", sp), 2);
    cr_assert_eq(sp[0].start, 47);
    cr_assert_eq(sp[1].start, 50);
    cr_assert_eq(scan("{\"xxxxxxxxxxxxxxxxx\":{},\"aggregated_errors\":[{}]}", sp), 1);
    cr_assert_eq(scan("{\"aggregated_errors\";[{}]}", sp), -1);
    cr_assert_eq(scan("{\"aggregated_errors\"x[{}]}", sp), -1);
    cr_assert_eq(scan("{\"a\" [1],\"aggregated_errors\":[{}]}", sp), -1);
}

/* max_occurrences 0 means the default: the occurrences of a raised aggregate that the previous body held
 * are still left out (at most PAYLOAD_REUSE_MAX_OCC of them). */
Test(payload_reuse, default_limit_leaves_known_occurrences_out)
{
    const char *job = "j", *url = "http://10.0.0.1:80/-/exceptions";
    merge_engine *e = merge_new(NULL);
    agg_cache *cache = agg_cache_new();
    merge_changeset cs;
    merge_changeset_init(&cs);
    gen g = {.seed = 7, .uuid = "u0", .dup = -1, .bad_occ = -1, .future = -1};
    for (int k = 0; k < 2; k++) {
        g.present[k] = 1;
        g.count[k] = 3;
        g.newest[k] = 2;
        g.future_seq[k] = -1;
    }
    char err[256];
    for (int step = 0; step < 2; step++) {
        if (step) {
            g.count[1]++;
            g.newest[1]++;
        }
        char *b = body(&g);
        payload_doc *d = agg_cache_parse(cache, e, job, url, b, strlen(b), 0, true, err, sizeof err);
        cr_assert_not_null(d, "%s", err);
        cr_assert_eq(d->n_aggregates, 2);
        const payload_aggregate *k1 = strcmp(d->aggregates[0].key, "key-1") == 0 ? &d->aggregates[0] : &d->aggregates[1];
        cr_assert_str_eq(k1->key, "key-1");
        cr_assert_eq(k1->n_occ_hashes, step ? 4 : 3);
        cr_assert_eq(k1->known_occurrences, step ? 3 : 0, "step %d", step);
        cr_assert_eq(k1->n_occurrences, step ? 1 : 3, "step %d", step);
        ingest_merge_doc(e, job, url, NULL, NULL, d, false, 0, 1709377200000LL + step, &cs);
        agg_cache_remember(cache, job, url, d);
        payload_free(d);
        free(b);
    }
    merge_aggregate_info info;
    cr_assert(merge_get(e, job, "key-1", &info));
    cr_assert_eq(info.total_count, 4);
    cr_assert_eq(info.n_samples, 4);
    merge_changeset_free(&cs);
    agg_cache_free(cache);
    merge_free(e);
}

/* Only aggregates with a fingerprint are remembered; freeing NULL does nothing. */
Test(payload_reuse, only_fingerprinted_aggregates_are_remembered)
{
    agg_cache_free(NULL);
    agg_cache *cache = agg_cache_new();
    payload_aggregate two[3] = {{.key = "a", .raw_hash = 8}, {.key = "b"}, {.key = "c", .raw_hash = 9}};
    agg_cache_remember(cache, "j", "u", &(payload_doc){.aggregates = two, .n_aggregates = 3});
    cr_assert_eq(agg_cache_entries(cache), 2);
    payload_reuse r;
    cr_assert(agg_cache_reuse(cache, "j", "u", &r));
    payload_aggregate out;
    cr_assert(r.lookup(r.ctx, 9, &out));
    cr_assert_str_eq(out.key, "c");
    cr_assert(r.lookup(r.ctx, 8, &out));
    cr_assert_str_eq(out.key, "a");
    cr_assert_not(r.lookup(r.ctx, 0, &out));
    cr_assert_not(r.lookup(r.ctx, 10, &out));
    agg_cache_free(cache);
}

/* What a cache remembers (keys, occurrence fingerprints, source ids) is freed when sources are replaced,
 * forgotten or cleared and when the cache is freed: 1 to 24 sources with long URLs and keys, measured
 * with heap_use (plain build). */
static void cache_life(int n_sources)
{
    char *longurl = malloc(BIG + 16), *longkey = malloc(BIG + 16);
    memset(longurl, 'u', BIG);
    memset(longkey, 'k', BIG);
    longkey[BIG] = '\0';
    uint64_t occ[2] = {5, 3};
    agg_cache *cache = agg_cache_new();
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n_sources; i++) {
            snprintf(longurl + BIG, 16, "%d", i);
            payload_aggregate a = {.key = longkey, .raw_hash = 100 + (uint64_t)i, .occ_hashes = occ, .n_occ_hashes = 2};
            agg_cache_remember(cache, "j", longurl, &(payload_doc){.aggregates = &a, .n_aggregates = 1});
        }
    cr_assert_eq(agg_cache_entries(cache), (size_t)n_sources);
    snprintf(longurl + BIG, 16, "%d", 0);
    agg_cache_forget(cache, "j", longurl);
    cr_assert_eq(agg_cache_entries(cache), (size_t)n_sources - 1);
    if (n_sources % 2)
        agg_cache_clear(cache);
    agg_cache_free(cache);
    free(longurl);
    free(longkey);
}

Test(payload_reuse, the_cache_frees_what_it_remembers)
{
    cache_life(3);
    for (int n = 1; n <= 24; n++) {
        size_t before = heap_use();
        cache_life(n);
        heap_use_assert_back_to(before);
    }
}

/* An aggregate's key and created_at must be plain strings (no escape) for its occurrences to be
 * scanned; the key's span is its content. (The body sits after blanks in a larger buffer.) */
Test(payload_scan, occurrences_need_a_plain_key_and_created_at)
{
    static const char *const bodies[] = {
        "{\"aggregation_key\":\"kx\",\"created_at\":\"t\",\"latest_errors\":[{},{\"a\":\"\\\\\"}]}",
        "{\"aggregation_key\":\"k\\u0041\",\"created_at\":\"t\",\"latest_errors\":[{}]}",
        "{\"aggregation_key\":\"kx\",\"created_at\":\"\\t\",\"latest_errors\":[{}]}",
        "{\"aggregation_key\":\"kx\",\"latest_errors\":[{}]}",
    };
    const long want[] = {2, -1, -1, -1};
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        char buf[512];
        memset(buf, ' ', sizeof buf);
        size_t n = strlen(bodies[i]);
        memcpy(buf + 256, bodies[i], n);
        payload_span sp[4], key;
        long r = payload_scan_occurrences(buf + 256, (payload_span){0, n}, sp, 4, &key);
        cr_assert_eq(r, want[i], "body %zu: %ld", i, r);
        if (r >= 0) {
            cr_assert_eq(key.start, 20);
            cr_assert_eq(key.end, 22);
            cr_assert_eq(sp[0].start, 58);
            cr_assert_eq(sp[1].start, 61);
        }
    }
}

/* Source ids of every length from 1 to 80 bytes (job and URL): an id one byte short ends on a malloc
 * chunk boundary at some length and corrupts the next chunk, which glibc notices when it is freed. */
Test(payload_reuse, source_ids_of_every_length)
{
    agg_cache *cache = agg_cache_new();
    char job[96], url[96];
    for (size_t n = 1; n <= 80; n++) {
        memset(job, 'j', n), job[n] = '\0';
        memset(url, 'u', n), url[n] = '\0';
        payload_aggregate a = {.key = "k", .raw_hash = n};
        agg_cache_remember(cache, job, url, &(payload_doc){.aggregates = &a, .n_aggregates = 1});
        agg_cache_remember(cache, "j", url, &(payload_doc){.aggregates = &a, .n_aggregates = 1});
        agg_cache_remember(cache, job, "u", &(payload_doc){.aggregates = &a, .n_aggregates = 1});
    }
    cr_assert_eq(agg_cache_entries(cache), 3 * 80 - 2); /* (j, u) three times, (j, uu) and (jj, u) twice */
    payload_reuse r;
    payload_aggregate out;
    for (size_t n = 1; n <= 80; n++) {
        memset(job, 'j', n), job[n] = '\0';
        memset(url, 'u', n), url[n] = '\0';
        cr_assert(agg_cache_reuse(cache, job, url, &r), "length %zu", n);
        cr_assert(r.lookup(r.ctx, n, &out), "length %zu", n);
        agg_cache_forget(cache, job, url);
    }
    agg_cache_free(cache);
}

/* A key sent twice in one body, one copy byte-identical to the previous body's (reused: its occurrences are
 * left out) and capped at max_occ: the full parse keeps the newest 3 of the folded lists (all known, so
 * nothing is added), the reusing parse must not keep the older one in their place (found by
 * fuzz_payload_reuse: fuzz/crashes/fuzz_payload_reuse/). */
#define FOCC(u, s) "{\"error\":{\"class\":\"E\",\"message\":\"m\"},\"uuid\":\"" u "\",\"timestamp\":\"2024-03-02T10:00:0" s "Z\"}"
#define FAGG(list) "{\"aggregation_key\":\"K\",\"total_count\":3,\"severity\":\"error\",\"created_at\":\"2024-03-02T10:00:00Z\",\"latest_errors\":[" list "]}"
Test(payload_reuse, repeated_key_folded_with_a_reused_copy)
{
    const char *bodies[2] = {"{\"aggregated_errors\":[" FAGG(FOCC("u1", "3") "," FOCC("u2", "4") "," FOCC("u3", "5")) "]}",
                             "{\"aggregated_errors\":[" FAGG(FOCC("u0", "1")) "," FAGG(FOCC("u1", "3") "," FOCC("u2", "4") "," FOCC("u3", "5")) "]}"};
    const char *job = "j", *url = "http://10.0.0.1:80/-/exceptions";
    merge_engine *full = merge_new(NULL), *fast = merge_new(NULL);
    agg_cache *cache = agg_cache_new();
    merge_changeset cf, cr;
    merge_changeset_init(&cf);
    merge_changeset_init(&cr);
    for (int step = 0; step < 2; step++) {
        char err[256];
        const char *b = bodies[step];
        payload_doc *d1 = payload_parse_limited(b, strlen(b), url, 3, err, sizeof err);
        cr_assert_not_null(d1, "%s", err);
        payload_doc *d2 = agg_cache_parse(cache, fast, job, url, b, strlen(b), 3, true, err, sizeof err);
        cr_assert_not_null(d2, "%s", err);
        cr_assert_eq(d2->n_aggregates, 1);
        cr_assert_eq(d2->aggregates[0].n_occurrences, 3, "step %d", step);
        cr_assert_str_eq(d2->aggregates[0].occurrences[0]->uuid, d1->aggregates[0].occurrences[0]->uuid);
        ingest_merge_doc(full, job, url, NULL, NULL, d1, false, 0, 1709377200000LL + step * 15000LL, &cf);
        ingest_merge_doc(fast, job, url, NULL, NULL, d2, false, 0, 1709377200000LL + step * 15000LL, &cr);
        agg_cache_remember(cache, job, url, d2);
        same_changes(&cf, &cr, step);
        merge_changeset_clear(&cf);
        merge_changeset_clear(&cr);
        payload_free(d1);
        payload_free(d2);
    }
    merge_changeset_free(&cf);
    merge_changeset_free(&cr);
    agg_cache_free(cache);
    merge_free(full);
    merge_free(fast);
}

/* ---- the scanner's 16-byte blocks ---- */

static unsigned blk_rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

/* A random JSON value (strings full of escapes, brackets, quotes and bytes above 0x7f; long runs that
 * cross 16-byte blocks; nested objects and arrays) appended to sb. */
static void blk_value(strbuf *sb, unsigned *s, int depth)
{
    static const char *const pieces[] = {"a", "\\\\", "\\\"", "]", "}", "{", "[", "\\u0041", " ", "\\n", "\xc3\xa9",
                                         "\xfb", "\xdd", "{[", "aaaaaaaaaaaaaaa", "\\\\\\\"", ";", "\x7f"};
    unsigned k = depth > 3 ? 0 : blk_rnd(s) % 4;
    if (k == 0 || k == 3) {
        strbuf_putc(sb, '"');
        int len = (int)(blk_rnd(s) % 24);
        for (int j = 0; j < len; j++)
            strbuf_puts(sb, pieces[blk_rnd(s) % (sizeof pieces / sizeof *pieces)]);
        strbuf_putc(sb, '"');
        return;
    }
    int n = (int)(blk_rnd(s) % 4);
    strbuf_putc(sb, k == 1 ? '{' : '[');
    for (int i = 0; i < n; i++) {
        if (i)
            strbuf_putc(sb, ',');
        if (k == 1)
            strbuf_printf(sb, "\"m%d\":", i);
        if (blk_rnd(s) % 5 == 0)
            strbuf_puts(sb, "-12.5e3");
        else
            blk_value(sb, s, depth + 1);
    }
    strbuf_putc(sb, k == 1 ? '}' : ']');
}

/* Bodies whose quotes, escapes and brackets fall at every offset of the scanner's 16-byte blocks (a
 * leading run of 0-31 spaces shifts each one): every element's span is where it was written, in a buffer
 * that ends at an unreadable page; every prefix of it is no plain shape. */
Test(payload_scan, spans_at_every_block_offset)
{
    unsigned s = 777;
    payload_span sp[8];
    for (int round = 0; round < 1500; round++) {
        strbuf sb;
        strbuf_init(&sb);
        for (int i = 0; i < round % 32; i++)
            strbuf_putc(&sb, ' ');
        strbuf_puts(&sb, "{\"aggregated_errors\":[");
        size_t want_start[4], want_end[4];
        int n = 1 + (int)(blk_rnd(&s) % 4);
        for (int k = 0; k < n; k++) {
            if (k)
                strbuf_putc(&sb, ',');
            want_start[k] = sb.len;
            strbuf_puts(&sb, "{\"aggregation_key\":");
            blk_value(&sb, &s, 1);
            strbuf_puts(&sb, ",\"latest_errors\":");
            blk_value(&sb, &s, 0);
            strbuf_putc(&sb, '}');
            want_end[k] = sb.len;
        }
        strbuf_puts(&sb, "]}");
        size_t maplen;
        char *g = guarded(sb.buf, sb.len, &maplen);
        cr_assert_eq(payload_scan_aggregates(g, sb.len, sp, 8), n, "%s", sb.buf);
        for (int k = 0; k < n; k++) {
            cr_assert_eq(sp[k].start, want_start[k], "element %d of %s", k, sb.buf);
            cr_assert_eq(sp[k].end, want_end[k], "element %d of %s", k, sb.buf);
        }
        guarded_free(g, sb.len, maplen);
        if (round % 50 == 0)
            for (size_t len = 0; len < sb.len; len++) {
                g = guarded(sb.buf, len, &maplen);
                cr_assert_eq(payload_scan_aggregates(g, len, sp, 8), -1, "prefix of %zu bytes of %s", len, sb.buf);
                guarded_free(g, len, maplen);
            }
        strbuf_free(&sb);
    }
}

/* A string member's value ends at its closing quote, not at a comma, space or bracket inside it; a
 * member whose name is as long as "created_at" (or "aggregation_key") but different is not that member
 * (taking it for one would make the real one look repeated: no reuse). */
Test(payload_scan, string_values_and_names_of_the_same_length)
{
    payload_span sp[8];
    cr_assert_eq(scan("{\"x\":\"a b\",\"y\":\"c,d}]\",\"aggregated_errors\":[{\"z\":\"e f\"}]}", sp), 1);
    cr_assert_eq(sp[0].start, 44);
    cr_assert_eq(sp[0].end, 55);
    const char *a = "{\"created_zz\":\"x\",\"aggregation_key\":\"k\",\"aggregation_kez\":\"q\",\"created_at\":\"t\","
                    "\"latest_errors\":[{}]}";
    payload_span os[4], key;
    cr_assert_eq(payload_scan_occurrences(a, (payload_span){0, strlen(a)}, os, 4, &key), 1);
    cr_assert_eq(key.start, 37);
    cr_assert_eq(key.end, 38);
    cr_assert_eq(os[0].start, 96);
    /* a member name not in quotes after key and created_at were seen: no plain shape, not 0 occurrences */
    a = "{\"aggregation_key\":\"k\",\"created_at\":\"t\",x:1,\"latest_errors\":[{}]}";
    cr_assert_eq(payload_scan_occurrences(a, (payload_span){0, strlen(a)}, os, 4, &key), -1);
}

/* A backslash outside a string (not JSON: the parser refuses the body) escapes nothing, wherever it falls
 * in the scanner's 64-byte blocks: the quote after it opens a string as it would with no backslash. */
Test(payload_scan, backslash_outside_a_string_at_every_block_offset)
{
    const char *elem = "{\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",\"a\":[\\\"x\"],"
                       "\"pad2\":\"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\"}";
    payload_span sp[8];
    for (int shift = 0; shift < 64; shift++) {
        strbuf sb;
        strbuf_init(&sb);
        strbuf_printf(&sb, "{\"p\":\"%.*s\",\"aggregated_errors\":[", shift,
                      "0123456789012345678901234567890123456789012345678901234567890123");
        size_t start = sb.len;
        strbuf_puts(&sb, elem);
        size_t end = sb.len;
        strbuf_puts(&sb, "]}");
        cr_assert_eq(scan(sb.buf, sp), 1, "shift %d", shift);
        cr_assert_eq(sp[0].start, start, "shift %d", shift);
        cr_assert_eq(sp[0].end, end, "shift %d", shift);
        strbuf_free(&sb);
    }
}

/* ---- the placeholder text of a plan ---- */

static uint64_t plan_known[64];
static size_t plan_n_known;

static const uint64_t *plan_all_known(void *ctx, const char *key, size_t len, size_t *n)
{
    (void)ctx;
    (void)key;
    (void)len;
    *n = plan_n_known;
    return plan_known;
}

static int plan_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* 60 known occurrences, each replaced by a one-byte placeholder: the text is exactly the body with "0" in
 * their place, and it fits the block allocated for it (a placeholder's saving counted one byte too large
 * would make it 60 bytes short). */
Test(payload_reuse, placeholder_text_fits_its_allocation)
{
    strbuf sb, want;
    strbuf_init(&sb);
    strbuf_init(&want);
    strbuf_puts(&sb, "{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"created_at\":\"t\",\"latest_errors\":[");
    strbuf_puts(&want, sb.buf);
    for (int k = 0; k < 60; k++) {
        strbuf_printf(&sb, "%s{\"uuid\":\"occurrence-%02d\"}", k ? "," : "", k);
        strbuf_puts(&want, k ? ",0" : "0");
    }
    strbuf_puts(&sb, "]}]}");
    strbuf_puts(&want, "]}]}");
    payload_span agg, os[64], key;
    cr_assert_eq(payload_scan_aggregates(sb.buf, sb.len, &agg, 1), 1);
    cr_assert_eq(payload_scan_occurrences(sb.buf, agg, os, 64, &key), 60);
    plan_n_known = 60;
    for (size_t k = 0; k < 60; k++)
        plan_known[k] = hash_fast64(sb.buf + os[k].start, os[k].end - os[k].start);
    qsort(plan_known, plan_n_known, sizeof *plan_known, plan_cmp);
    payload_reuse r = {.occurrences = plan_all_known};
    reuse_plan p;
    cr_assert(payload_reuse_plan(sb.buf, sb.len, &r, 0, &p));
    cr_assert_eq(p.placeholders, 60);
    cr_assert_eq(p.len, want.len);
    cr_assert_eq(memcmp(p.text, want.buf, want.len), 0, "%.*s", (int)p.len, p.text);
    cr_assert_geq(malloc_usable_size(p.owned), p.len + 1);
    payload_reuse_plan_free(&p);
    strbuf_free(&sb);
    strbuf_free(&want);
}

/* ---- the scanner against its byte-by-byte definition ---- */

/* The end of the value at b[i] as the scanner defines it, one byte at a time: a string ends at a quote
 * not escaped by a backslash; an object or array at the bracket that brings the count of brackets
 * outside strings back to zero; anything else at a separator or whitespace. NOPOS_T: no end. */
#define NOPOS_T ((size_t)-1)
static size_t ref_value_end(const char *b, size_t n, size_t i)
{
    if (b[i] != '{' && b[i] != '[' && b[i] != '"') {
        size_t s = i;
        while (i < n && !strchr(",}] \t\n\r", b[i]))
            i++;
        return i > s ? i : NOPOS_T;
    }
    size_t depth = 0;
    bool in_str = false, esc = false;
    bool str_only = b[i] == '"';
    for (; i < n; i++) {
        char c = b[i];
        if (esc)
            esc = false;
        else if (in_str) {
            if (c == '\\')
                esc = true;
            else if (c == '"') {
                in_str = false;
                if (str_only)
                    return i + 1;
            }
        } else if (c == '"')
            in_str = true;
        else if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0)
            return i + 1;
    }
    return NOPOS_T;
}

/* The list scan of {"aggregated_errors":[...]} by that definition: the number of elements (spans into
 * sp), or -1. */
static long ref_list(const char *b, size_t n, size_t i, payload_span *sp, size_t max)
{
    long found = 0;
    while (i < n && b[i] == ' ')
        i++;
    if (i < n && b[i] == ']')
        return 0;
    for (;;) {
        if (i >= n || b[i] != '{' || (size_t)found == max)
            return -1;
        size_t e = ref_value_end(b, n, i);
        if (e == NOPOS_T)
            return -1;
        sp[found].start = i;
        sp[found].end = e;
        found++;
        i = e;
        while (i < n && b[i] == ' ')
            i++;
        if (i < n && b[i] == ',') {
            i++;
            while (i < n && b[i] == ' ')
                i++;
            continue;
        }
        if (i >= n || b[i] != ']')
            return -1;
        /* more members of the root may follow; what follows the root's end is not looked at */
        for (i++;;) {
            while (i < n && b[i] == ' ')
                i++;
            if (i < n && b[i] == '}')
                return found;
            if (i >= n || b[i] != ',')
                return -1;
            for (i++; i < n && b[i] == ' ';)
                i++;
            if (i >= n || b[i] != '"')
                return -1;
            size_t k = ref_value_end(b, n, i);
            if (k == NOPOS_T || (k - i == 19 && memcmp(b + i, "\"aggregated_errors\"", 19) == 0))
                return -1;
            for (i = k; i < n && b[i] == ' ';)
                i++;
            if (i >= n || b[i] != ':')
                return -1;
            for (i++; i < n && b[i] == ' ';)
                i++;
            if (i >= n || (i = ref_value_end(b, n, i)) == NOPOS_T)
                return -1;
        }
    }
}

/* Random elements (blk_value's strings with escapes, brackets and quotes) with up to 3 bytes overwritten by
 * a quote, backslash, bracket or other byte (runs of backslashes, escaped quotes across blocks,
 * backslashes outside strings, unbalanced brackets): the scanner finds exactly the spans the byte-by-byte
 * definition gives, or refuses the body exactly when it does. */
Test(payload_scan, agrees_with_the_byte_by_byte_definition)
{
    static const char alphabet[] = "\"\\\\\\{}[]{}[],: aaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xfb";
    unsigned s = 4242;
    size_t agree_spans = 0;
    for (int round = 0; round < 20000; round++) {
        strbuf sb;
        strbuf_init(&sb);
        strbuf_puts(&sb, "{\"aggregated_errors\":[");
        size_t list = sb.len;
        int elems = 1 + (int)(blk_rnd(&s) % 3);
        for (int k = 0; k < elems; k++) {
            strbuf_puts(&sb, k ? ",{\"m\":" : "{\"m\":");
            size_t from = sb.len;
            blk_value(&sb, &s, 0);
            strbuf_putc(&sb, '}');
            /* up to 3 bytes of the element overwritten at random */
            for (int j = (int)(blk_rnd(&s) % 4); j > 0; j--)
                sb.buf[from + blk_rnd(&s) % (sb.len - from)] = alphabet[blk_rnd(&s) % (sizeof alphabet - 1)];
        }
        strbuf_puts(&sb, "]}");
        payload_span want[8], got[8];
        long w = ref_list(sb.buf, sb.len, list, want, 8);
        size_t maplen;
        char *g = guarded(sb.buf, sb.len, &maplen);
        long r = payload_scan_aggregates(g, sb.len, got, 8);
        guarded_free(g, sb.len, maplen);
        cr_assert_eq(r, w, "round %d: %s", round, sb.buf);
        for (long k = 0; k < r; k++) {
            cr_assert_eq(got[k].start, want[k].start, "round %d element %ld", round, k);
            cr_assert_eq(got[k].end, want[k].end, "round %d element %ld", round, k);
        }
        agree_spans += r > 0;
        strbuf_free(&sb);
    }
    cr_assert_gt(agree_spans, 5000, "%zu", agree_spans); /* not only refusals */
}
