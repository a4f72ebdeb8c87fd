/* The merge engine's memory: everything it allocates over a whole life (applies from several sources,
 * deltas, a restarted instance, a snapshot restored into a second engine, expiry, pruning, forgotten
 * sources) is freed, measured with mallinfo2 around that life (heap_use.h) so that a dropped free of
 * anything named after a job, URL, key or label shows without a sanitizer; and ids of every length up to 80 bytes, so that an allocation one byte short for its NUL
 * ends on a malloc chunk boundary at some length and corrupts the next chunk's header, which glibc
 * notices when that chunk is freed (ASan sees it at once). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "heap_use.h"
#include "store/merge.h"
#include "util/strbuf.h"

#define T0 1709377200000LL /* 2024-03-02T11:00:00Z */
#define MIN 60000LL

static char *repeat(char c, size_t n, const char *suffix)
{
    size_t s = strlen(suffix);
    char *v = malloc(n + s + 1);
    memset(v, c, n);
    memcpy(v + n, suffix, s + 1);
    return v;
}

/* A payload of n_aggs aggregates (keys "KEYPREFIX<i>"), each with two occurrences, counts base + i. */
static payload_doc *doc(const char *uuid, const char *keyprefix, int n_aggs, unsigned long base, int minute)
{
    strbuf sb;
    strbuf_init(&sb);
    strbuf_printf(&sb, "{\"target_uuid\":\"%s\",\"aggregated_errors\":[", uuid);
    for (int i = 0; i < n_aggs; i++)
        strbuf_printf(&sb,
                      "%s{\"aggregation_key\":\"%s%d\",\"total_count\":%lu,\"severity\":\"%s\","
                      "\"created_at\":\"2024-03-02T09:00:00Z\",\"latest_errors\":["
                      "{\"error\":{\"class\":\"E%d\",\"message\":\"m\"},\"uuid\":\"%s-%d-a\","
                      "\"timestamp\":\"2024-03-02T10:%02d:01Z\"},"
                      "{\"error\":{\"class\":\"E%d\",\"message\":\"m\"},\"uuid\":\"%s-%d-b\","
                      "\"timestamp\":\"2024-03-02T10:%02d:02Z\"}]}",
                      i ? "," : "", keyprefix, i, base + (unsigned long)i, i % 2 ? "warning" : "error", i, uuid,
                      i, minute, i, uuid, i, minute);
    strbuf_puts(&sb, "]}");
    char err[256] = "";
    payload_doc *d = payload_parse(sb.buf, sb.len, "http://x/-/exceptions", err, sizeof err);
    cr_assert_not_null(d, "%s", err);
    strbuf_free(&sb);
    return d;
}

static void apply(merge_engine *e, merge_changeset *cs, const char *job, const char *url, payload_doc *d,
                  int64_t now, const labelset *ls)
{
    merge_input in = {.job = job, .url = url, .labels = ls, .doc = d, .now_ms = now};
    merge_apply(e, &in, cs);
    payload_free(d);
}

#define BIG (256 * 1024) /* one leaked copy of a name is HEAP_USE_TOLERANCE */

/* One whole life of two engines; the heap in use grows by what it leaked. */
static void life(void)
{
    /* long names, so that one leaked copy of any of them per source or aggregate is visible */
    char *jobs[2] = {repeat('j', BIG, "1"), repeat('j', BIG, "2")};
    char *urls[3] = {repeat('u', BIG, "a"), repeat('u', BIG, "b"), repeat('u', BIG, "c")};
    char *keyp = repeat('k', BIG, "-");
    char *lv = repeat('l', BIG, "");
    merge_engine *e = merge_new(NULL);
    merge_changeset cs;
    merge_changeset_init(&cs);
    labelset ls;
    labelset_init(&ls);
    labelset_set(&ls, "team", lv);
    labelset_set(&ls, "instance", "i1");
    for (int round = 0; round < 3; round++)
        for (int j = 0; j < 2; j++)
            for (int u = 0; u < 3; u++) {
                char uuid[32];
                /* round 2: the instance behind url 0 restarted (a new uuid) */
                snprintf(uuid, sizeof uuid, "T%d%d%s", j, u, round == 2 && u == 0 ? "r" : "");
                apply(e, &cs, jobs[j], urls[u], doc(uuid, keyp, 4, 10 + (unsigned long)round * 5, round), T0 + round * MIN,
                      &ls);
            }
    merge_aggregate_info ai;
    char *key0 = repeat('k', BIG, "-0");
    cr_assert(merge_get(e, jobs[0], key0, &ai));
    cr_assert_eq(ai.total_count, 75, "%llu", (unsigned long long)ai.total_count); /* 3 x 10, + 3 x 5, + 5 + 5 + 20 (url 0 restarted at 20) */
    free(key0);
    merge_stats stats;
    merge_get_stats(e, &stats);

    /* a snapshot restored into a second engine, which then takes more */
    merge_state st;
    merge_snapshot(e, &st);
    cr_assert_geq(st.n_instances, 6);
    cr_assert_geq(st.n_sources, 6);
    merge_engine *e2 = merge_new(NULL);
    merge_restore(e2, &st);
    merge_state_free(&st);
    apply(e2, &cs, jobs[1], urls[2], doc("T12", keyp, 5, 40, 5), T0 + 5 * MIN, &ls);
    merge_changeset_clear(&cs);

    /* sources forgotten, then everything expired and pruned */
    merge_forget_source(e, jobs[0], urls[1]);
    merge_forget_body_hashes(e);
    merge_expire(e, T0 + 400LL * 24 * 60 * MIN, &cs);
    merge_prune(e, T0 + 400LL * 24 * 60 * MIN);
    merge_changeset_free(&cs);
    merge_free(e);
    merge_free(e2);
    labelset_free(&ls);

    free(jobs[0]), free(jobs[1]), free(urls[0]), free(urls[1]), free(urls[2]), free(keyp), free(lv);
}

/* The first life also makes what lives as long as the process (metric families, the parser's tables):
 * the second must leave the heap as it found it. */
Test(merge_memory, a_whole_life_frees_everything)
{
    life();
    size_t before = heap_use();
    life();
    heap_use_assert_back_to(before);
}

/* Jobs, URLs and keys of every length from 1 to 80 bytes; the instances and sources also go through a
 * snapshot restored into a second engine (aggregates come back from the store, not the snapshot). */
Test(merge_memory, ids_of_every_length)
{
    merge_engine *e = merge_new(NULL);
    merge_changeset cs;
    merge_changeset_init(&cs);
    char job[96], url[96], key[96];
    for (size_t n = 1; n <= 80; n++) {
        memset(job, 'j', n), job[n] = '\0';
        memset(url, 'u', n), url[n] = '\0';
        memset(key, 'k', n), key[n] = '\0';
        char uuid[16];
        snprintf(uuid, sizeof uuid, "U%zu", n);
        apply(e, &cs, job, url, doc(uuid, key, 1, n, 0), T0, NULL);
        apply(e, &cs, "j", url, doc(uuid, key, 1, n, 0), T0, NULL);
        apply(e, &cs, job, "u", doc(uuid, "k", 1, n, 0), T0, NULL);
    }
    merge_state st;
    merge_snapshot(e, &st);
    merge_engine *e2 = merge_new(NULL);
    merge_restore(e2, &st);
    merge_state_free(&st);
    for (size_t n = 1; n <= 80; n++) {
        memset(job, 'j', n), job[n] = '\0';
        memset(key, 'k', n), key[n] = '\0';
        strcat(key, "0");
        merge_aggregate_info ai;
        cr_assert(merge_get(e, job, key, &ai), "no aggregate of length %zu", n);
        cr_assert_eq(ai.total_count, n, "length %zu", n);
    }
    merge_changeset_free(&cs);
    merge_free(e);
    merge_free(e2);
}

/* n_aggs aggregates ("k<i>"), each with one occurrence whose message is BIG bytes long, so that one
 * reference to it never released is visible in heap_use. */
static payload_doc *big_doc(const char *uuid, int n_aggs, int second)
{
    char *msg = repeat('m', BIG, "");
    strbuf sb;
    strbuf_init(&sb);
    strbuf_printf(&sb, "{\"target_uuid\":\"%s\",\"aggregated_errors\":[", uuid);
    for (int i = 0; i < n_aggs; i++)
        strbuf_printf(&sb,
                      "%s{\"aggregation_key\":\"k%d\",\"total_count\":%d,\"latest_errors\":[{\"error\":{\"class\":\"E\","
                      "\"message\":\"%s\"},\"uuid\":\"%s-%d-%d\",\"timestamp\":\"2024-03-02T10:00:%02dZ\"}]}",
                      i ? "," : "", i, second + 1, msg, uuid, i, second, second);
    strbuf_puts(&sb, "]}");
    char err[256] = "";
    payload_doc *d = payload_parse(sb.buf, sb.len, "http://x/-/exceptions", err, sizeof err);
    cr_assert_not_null(d, "%s", err);
    strbuf_free(&sb);
    free(msg);
    return d;
}

/* Occurrences are shared by reference: the engine's samples, a change set's added list and a tombstone
 * being made each hold or drop references. Three lives: an engine freed while its change set still holds
 * the new occurrences (merge_free, then the change set cleared), an engine whose errors expire (their
 * samples released when buried), and samples evicted by newer ones. */
static void occurrence_lives(void)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_engine *e = merge_new(NULL);
    apply(e, &cs, "j", "http://a", big_doc("A", 3, 1), T0, NULL);
    cr_assert_eq(cs.n, 3);
    cr_assert_eq(cs.v[0].n_added, 1);
    merge_free(e);
    merge_changeset_clear(&cs);

    e = merge_new(NULL);
    apply(e, &cs, "j", "http://a", big_doc("A", 3, 1), T0, NULL);
    merge_changeset_clear(&cs);
    cr_assert_eq(merge_expire(e, T0 + 400LL * 24 * 60 * MIN, &cs), 3);
    merge_changeset_clear(&cs);
    merge_stats st;
    merge_get_stats(e, &st);
    cr_assert_eq(st.tombstones, 3);
    merge_free(e);

    merge_options o = {.samples_per_error = 1};
    e = merge_new(&o);
    for (int s = 1; s <= 3; s++) {
        apply(e, &cs, "j", "http://a", big_doc("A", 2, s), T0 + s * MIN, NULL);
        merge_changeset_clear(&cs);
    }
    merge_aggregate_info ai;
    cr_assert(merge_get(e, "j", "k1", &ai));
    cr_assert_eq(ai.n_samples, 1);
    cr_assert_str_eq(ai.samples[0]->uuid, "A-1-3");
    merge_free(e);
    merge_changeset_free(&cs);
}

Test(merge_memory, every_occurrence_reference_is_released)
{
    occurrence_lives();
    size_t before = heap_use();
    occurrence_lives();
    heap_use_assert_back_to(before);
}

/* A copy of the string s (its NUL included) ending exactly where an unreadable page begins, so that a
 * read past the NUL faults in the plain build too. Unmap with munmap(*base, *maplen). */
static char *guarded_str(const char *s, char **base, size_t *maplen)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), n = strlen(s) + 1;
    *maplen = (n / pg + 2) * pg;
    *base = mmap(NULL, *maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(*base, MAP_FAILED);
    cr_assert_eq(mprotect(*base + *maplen - pg, pg, PROT_NONE), 0);
    char *p = *base + *maplen - pg - n;
    memcpy(p, s, n);
    return p;
}

/* The engine reads the names it is given (job, URL, key) up to their NUL and never past it: each one ends
 * at an unreadable page, for merging, looking up, restoring and forgetting. */
Test(merge_memory, names_are_not_read_past_their_end)
{
    char *bj, *bu, *bk;
    size_t lj, lu, lk;
    const char *job = guarded_str("job", &bj, &lj), *url = guarded_str("http://a", &bu, &lu),
               *key = guarded_str("k0", &bk, &lk);
    merge_engine *e = merge_new(NULL);
    merge_changeset cs;
    merge_changeset_init(&cs);
    apply(e, &cs, job, url, doc("U", "k", 1, 3, 0), T0, NULL);
    merge_aggregate_info ai;
    cr_assert(merge_get(e, job, key, &ai));
    cr_assert_eq(ai.total_count, 3);
    cr_assert_not(merge_body_unchanged(e, job, url, 1, T0));
    merge_aggregate_state as = {.job = job, .key = key, .total_count = 4, .created_at_ms = T0, .last_seen_ms = T0};
    merge_engine *e2 = merge_new(NULL);
    merge_restore_aggregate(e2, &as);
    merge_restore_tombstone(e2, job, "gone", T0);
    cr_assert(merge_get(e2, job, key, &ai));
    cr_assert_eq(ai.total_count, 4);
    merge_forget_source(e, job, url);
    merge_stats st;
    merge_get_stats(e, &st);
    cr_assert_eq(st.sources, 0);
    merge_changeset_free(&cs);
    merge_free(e);
    merge_free(e2);
    munmap(bj, lj);
    munmap(bu, lu);
    munmap(bk, lk);
}

/* The body hash reads exactly len bytes: a body of every length from 0 to 1100 (every stripe count and tail
 * size, a whole 1 KiB block and the next) ending at an unreadable page hashes without a fault and to the
 * same value as the same bytes in an ordinary buffer; a length one shorter or one longer over the same bytes
 * differs. */
Test(merge_memory, body_hash_reads_exactly_len_bytes)
{
    char src[1101], *base;
    size_t maplen;
    for (size_t i = 0; i < sizeof src - 1; i++)
        src[i] = (char)('a' + (i * 7) % 26);
    src[sizeof src - 1] = '\0';
    char *end = guarded_str(src, &base, &maplen) + (sizeof src - 1); /* the NUL, last readable byte */
    for (size_t len = 0; len <= 1100; len++) {
        const char *p = end - len; /* len bytes, then the NUL, then the unreadable page */
        cr_assert_eq(merge_body_hash(p, len), merge_body_hash(src + 1100 - len, len), "len %zu", len);
        if (len > 0)
            cr_expect_neq(merge_body_hash(p, len), merge_body_hash(p, len - 1), "len %zu", len);
    }
    /* and without the NUL: the last byte of the body is the last readable byte */
    end[0] = 'z';
    for (size_t len = 1; len <= 1100; len++)
        cr_assert_neq(merge_body_hash(end + 1 - len, len), 0, "len %zu", len);
    munmap(base, maplen);
}
