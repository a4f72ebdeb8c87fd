/* memsearch: the memory store's full-text index must answer exactly like the plain scan (strcasestr over
 * the key and store_occurrence_matches over every live sample), through adds, evictions, compaction,
 * fields left out by the budget, and duplicate fields. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/memsearch.h"
#include "store/store.h"
#include "util/strbuf.h"

/* One occurrence parsed from a JSON body (fields given verbatim; no quotes or backslashes in them). */
static payload_occurrence *occ(const char *cls, const char *msg, const char *stack, const char *cause_cls,
                               const char *url, const char *hname, const char *hval, const char *body,
                               const char *uuid)
{
    strbuf sb;
    strbuf_init(&sb);
    strbuf_printf(&sb,
                  "{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":1,\"latest_errors\":[{"
                  "\"error\":{\"class\":\"%s\",\"message\":\"%s\",\"stacktrace\":[\"%s\"],\"cause\":{\"class\":"
                  "\"%s\",\"message\":\"\"}},\"uuid\":\"%s\",\"http_context\":{\"request_method\":\"GET\","
                  "\"request_url\":\"%s\",\"request_headers\":{\"%s\":\"%s\"},\"request_body\":\"%s\"}}]}]}",
                  cls, msg, stack, cause_cls, uuid, url, hname, hval, body);
    char err[256];
    payload_doc *d = payload_parse(sb.buf, sb.len, "x", err, sizeof(err));
    cr_assert_not_null(d, "%s", err);
    cr_assert_eq(d->n_aggregates, 1);
    payload_occurrence *o = d->aggregates[0].occurrences[0];
    payload_occurrence_ref(o);
    payload_free(d);
    strbuf_free(&sb);
    return o;
}

static payload_occurrence *simple_occ(const char *msg, const char *body, const char *uuid)
{
    return occ("Cls", msg, "at frame", "Cause", "http://svc/path", "X-Name", "hval", body, uuid);
}

/* The reference: store.h's semantics by the plain scan. */
static bool reference(const char *key, payload_occurrence *const *s, size_t n, const char *q, bool all_words)
{
    if (!q || !q[0])
        return true;
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", q);
    char *words[64];
    size_t nw = 0;
    if (all_words) {
        for (char *save = NULL, *w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
            words[nw++] = w;
    } else {
        words[nw++] = buf;
    }
    for (size_t i = 0; i < nw; i++) {
        bool hit = strcasestr(key, words[i]) != NULL;
        for (size_t k = 0; k < n && !hit; k++)
            hit = store_occurrence_matches(s[k], words[i]);
        if (!hit)
            return false;
    }
    return true;
}

static bool search(const memsearch_index *ix, payload_occurrence *const *s, size_t n, const char *q,
                   bool all_words)
{
    memsearch_query mq;
    memsearch_query_init(&mq, q, all_words);
    bool r = memsearch_matches(&mq, ix, s, n);
    memsearch_query_free(&mq);
    return r;
}

Test(memsearch, every_field_case_insensitive)
{
    payload_occurrence *o = occ("java.io.IOException", "Connection REFUSED", "at Foo.bar(Foo.java:12)",
                                "DeepCause", "http://svc/Orders", "X-Trace-Id", "TraceValue", "{body:Alpha}",
                                "uuid-1234");
    memsearch_index ix;
    memsearch_init(&ix, "MyKey@1");
    memsearch_add(&ix, o);
    memsearch_compact(&ix, &o, 1);
    const char *hits[] = {"mykey@", "IOEXCEPTION", "refused", "foo.java:12", "deepcause", "GET", "svc/orders",
                          "x-trace-id", "tracevalue", "body:alpha", "UUID-1234", "o"};
    for (size_t i = 0; i < sizeof(hits) / sizeof(hits[0]); i++)
        cr_assert(search(&ix, &o, 1, hits[i], false), "%s", hits[i]);
    /* substrings across two fields do not match (fields are separate, as with strcasestr per field) */
    const char *misses[] = {"@1java", "exceptionconnection", "refusedat", "nothing", "x-trace-idtrace"};
    for (size_t i = 0; i < sizeof(misses) / sizeof(misses[0]); i++)
        cr_assert_not(search(&ix, &o, 1, misses[i], false), "%s", misses[i]);
    /* words: all must match, in any fields */
    cr_assert(search(&ix, &o, 1, "refused  alpha\tmykey", true));
    cr_assert_not(search(&ix, &o, 1, "refused zzz", true));
    cr_assert_not(search(&ix, &o, 1, "refused alpha", false)); /* one substring */
    cr_assert(search(&ix, &o, 1, "   ", true));                 /* no words: no filter */
    cr_assert(search(&ix, &o, 1, "", false));
    memsearch_free(&ix);
    payload_occurrence_unref(o);
}

Test(memsearch, evicted_samples_stop_matching)
{
    memsearch_index ix;
    memsearch_init(&ix, "k");
    payload_occurrence *s[40];
    char msg[32], uuid[32];
    for (int i = 0; i < 40; i++) {
        snprintf(msg, sizeof(msg), "message-%d;", i);
        snprintf(uuid, sizeof(uuid), "u-%d", i);
        s[i] = simple_occ(msg, "", uuid);
        memsearch_add(&ix, s[i]);
    }
    memsearch_compact(&ix, s, 40);
    cr_assert(search(&ix, s, 40, "message-7", false));
    /* evict samples 0..9 one at a time (index still holds their text until compaction) */
    for (int i = 0; i < 10; i++) {
        memsearch_remove(&ix, s[i]);
        memsearch_compact(&ix, s + i + 1, (size_t)(39 - i));
        char q[32];
        snprintf(q, sizeof(q), "message-%d;", i);
        cr_assert_not(search(&ix, s + i + 1, (size_t)(39 - i), q, false), "%s after eviction", q);
        snprintf(q, sizeof(q), "message-%d;", i + 1);
        cr_assert(search(&ix, s + i + 1, (size_t)(39 - i), q, false), "%s", q);
    }
    cr_assert(ix.stale < 10, "compaction ran (stale %u)", ix.stale);
    memsearch_free(&ix);
    for (int i = 0; i < 40; i++)
        payload_occurrence_unref(s[i]);
}

Test(memsearch, fields_beyond_the_budget_are_still_found)
{
    size_t n = MEMSEARCH_SAMPLE_BUDGET * 3;
    char *body = malloc(n + 16);
    memset(body, 'b', n);
    memcpy(body + n - 12, "NeedleInBody", 12);
    body[n] = 0;
    payload_occurrence *o = simple_occ("short message", body, "u1");
    memsearch_index ix;
    memsearch_init(&ix, "k");
    memsearch_add(&ix, o);
    memsearch_compact(&ix, &o, 1);
    cr_assert_eq(ix.partial, 1);
    cr_assert_lt(ix.len, MEMSEARCH_SAMPLE_BUDGET + 8, "bounded: %u", ix.len);
    cr_assert(search(&ix, &o, 1, "needleinbody", false));
    cr_assert(search(&ix, &o, 1, "short needleinbody", true));
    cr_assert_not(search(&ix, &o, 1, "needleinbodyx", false));
    memsearch_remove(&ix, o);
    memsearch_compact(&ix, NULL, 0);
    cr_assert_eq(ix.partial, 0);
    cr_assert_not(search(&ix, NULL, 0, "short", false));
    cr_assert(search(&ix, NULL, 0, "K", false));
    memsearch_free(&ix);
    payload_occurrence_unref(o);
    free(body);
}

Test(memsearch, equal_fields_are_stored_once)
{
    memsearch_index ix;
    memsearch_init(&ix, "k");
    payload_occurrence *s[100];
    char uuid[16];
    for (int i = 0; i < 100; i++) {
        snprintf(uuid, sizeof(uuid), "u%d", i);
        /* same content but for case: folded fields are equal */
        s[i] = simple_occ(i % 2 ? "Same Long Message About A Failure" : "same long message about a failure",
                          "the same request body", uuid);
        memsearch_add(&ix, s[i]);
    }
    memsearch_compact(&ix, s, 100);
    /* one copy of each shared field + 100 uuids of ~4 bytes */
    cr_assert_lt(ix.len, 200 + 100 * 5, "text %u bytes", ix.len);
    cr_assert(search(&ix, s, 100, "ABOUT a", false));
    cr_assert(search(&ix, s, 100, "u99", false));
    memsearch_free(&ix);
    for (int i = 0; i < 100; i++)
        payload_occurrence_unref(s[i]);
}

/* Random fields over a small alphabet (so queries hit often), random adds/evictions/compactions, random
 * queries: the index always agrees with the plain scan. */
static unsigned long long rs = 0x9E3779B97F4A7C15ULL;
static unsigned rnd(unsigned n)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (unsigned)(rs % n);
}
static void rstr(char *out, size_t maxlen)
{
    static const char al[] = "abcABC-. xyz";
    size_t n = rnd((unsigned)maxlen);
    for (size_t i = 0; i < n; i++)
        out[i] = al[rnd(sizeof(al) - 1)];
    out[n] = 0;
}

Test(memsearch, agrees_with_the_plain_scan)
{
    enum { ROUNDS = 300, MAXS = 12 };
    static char big[MEMSEARCH_SAMPLE_BUDGET + 64];
    for (int round = 0; round < ROUNDS; round++) {
        char key[16];
        rstr(key, 8);
        memsearch_index ix;
        memsearch_init(&ix, key);
        payload_occurrence *s[MAXS];
        size_t n = 0;
        for (int step = 0; step < 30; step++) {
            if (n < MAXS && (n == 0 || rnd(3))) {
                char f[8][16];
                for (int i = 0; i < 8; i++)
                    rstr(f[i], rnd(4) ? 6 : 12);
                const char *body = f[7];
                if (rnd(10) == 0) { /* over the budget: partial sample */
                    memset(big, 'a', sizeof(big) - 1);
                    big[sizeof(big) - 1] = 0;
                    big[rnd(sizeof(big) - 1)] = 'Z';
                    body = big;
                }
                char uuid[16];
                snprintf(uuid, sizeof(uuid), "%u", rnd(1000));
                payload_occurrence *o = occ(f[0], f[1], f[2], f[3], f[4], f[5][0] ? f[5] : "h", f[6], body, uuid);
                size_t pos = rnd((unsigned)n + 1);
                memmove(s + pos + 1, s + pos, (n - pos) * sizeof(*s));
                s[pos] = o;
                n++;
                memsearch_add(&ix, o);
            } else {
                size_t k = rnd((unsigned)n);
                memsearch_remove(&ix, s[k]);
                payload_occurrence_unref(s[k]);
                memmove(s + k, s + k + 1, (n - k - 1) * sizeof(*s));
                n--;
            }
            if (rnd(2))
                memsearch_compact(&ix, s, n);
            for (int qi = 0; qi < 8; qi++) {
                char q[32];
                rstr(q, qi < 4 ? 3 : 6);
                if (rnd(4) == 0)
                    snprintf(q, sizeof(q), "z");
                bool aw = rnd(2);
                cr_assert_eq(search(&ix, s, n, q, aw), reference(key, s, n, q, aw),
                             "round %d step %d q=\"%s\" all_words=%d stale=%u partial=%u", round, step, q, aw,
                             ix.stale, ix.partial);
            }
        }
        memsearch_free(&ix);
        for (size_t i = 0; i < n; i++)
            payload_occurrence_unref(s[i]);
    }
}
