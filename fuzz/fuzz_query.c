/* fuzz_query: the search language parser (store/query.h) on arbitrary bytes (cut at the first NUL, as the
 * API's query strings are), then the parsed search run on a small memory store. Invariants: a parse
 * either fails with a message or yields at most STORE_SEARCH_MAX_TERMS terms, each well formed (text
 * values lower-cased and within STORE_SEARCH_MAX_TERM_LEN, masks non-empty, job lists non-empty); a
 * listing with it succeeds and never returns more rows than the store holds; and a term and its
 * negation partition the store. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/query.h"
#include "store/store.h"

static store *st;
static merge_engine *eng;

static void seed(void)
{
    static const char *const bodies[] = {
        "{\"target_uuid\":\"t1\",\"aggregated_errors\":[{\"aggregation_key\":\"Alpha@1\",\"total_count\":3,"
        "\"severity\":\"error\",\"created_at\":\"2024-03-01T10:00:00Z\",\"latest_errors\":[{\"error\":{\"class\":"
        "\"IOError\",\"message\":\"disk full\",\"stacktrace\":[\"at main.go:1\"]},\"uuid\":\"u1\",\"timestamp\":"
        "\"2024-03-01T10:00:00Z\"}]},{\"aggregation_key\":\"beta\",\"total_count\":1,\"severity\":\"info\","
        "\"latest_errors\":[{\"error\":{\"class\":\"Note\",\"message\":\"fyi \\\"quoted\\\"\",\"stacktrace\":[]},"
        "\"uuid\":\"u2\",\"timestamp\":\"2024-03-01T10:01:00Z\"}]}]}",
        "{\"target_uuid\":\"t2\",\"aggregated_errors\":[{\"aggregation_key\":\"gamma\",\"total_count\":2,"
        "\"severity\":\"warning\",\"latest_errors\":[{\"error\":{\"class\":\"Timeout\",\"message\":\"slow up\","
        "\"stacktrace\":[]},\"uuid\":\"u3\",\"timestamp\":\"2024-03-01T10:02:00Z\"}]}]}",
    };
    st = store_memory_new(NULL);
    eng = merge_new(NULL);
    for (int i = 0; i < 2; i++) {
        char err[256];
        payload_doc *d = payload_parse(bodies[i], strlen(bodies[i]), "u", err, sizeof err);
        if (!d)
            abort();
        labelset ls;
        labelset_init(&ls);
        labelset_set(&ls, "job", i ? "web" : "api");
        labelset_set(&ls, "namespace", i ? "prod" : "dev");
        merge_changeset cs;
        merge_changeset_init(&cs);
        merge_input in = {.job = i ? "web" : "api", .url = i ? "http://b" : "http://a", .labels = &ls, .doc = d,
                          .now_ms = 1709287200000LL};
        merge_apply(eng, &in, &cs);
        if (store_apply(st, &cs, in.now_ms, err, sizeof err) != 0)
            abort();
        merge_changeset_free(&cs);
        labelset_free(&ls);
        payload_free(d);
    }
}

static uint64_t count(const store_search *s)
{
    store_query q = {.severity = -1, .status = -1, .search = s};
    store_page p;
    char err[256];
    if (store_list(st, &q, &p, err, sizeof err) != 0)
        abort();
    uint64_t n = p.total;
    if (n > 3 || p.n != n)
        abort();
    store_page_free(&p);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!st)
        seed();
    if (size > STORE_SEARCH_MAX_LEN + 64)
        return 0;
    char q[STORE_SEARCH_MAX_LEN + 65];
    memcpy(q, data, size);
    q[size] = '\0';
    store_search s;
    char err[256] = "";
    if (store_search_parse(q, &s, err, sizeof err) != 0) {
        if (!err[0] || s.n)
            abort();
        store_search_free(&s);
        return 0;
    }
    if (s.n > STORE_SEARCH_MAX_TERMS)
        abort();
    for (size_t i = 0; i < s.n; i++) {
        const store_term *t = &s.v[i];
        switch (t->kind) {
        case STORE_TERM_TEXT:
        case STORE_TERM_CLASS:
        case STORE_TERM_KEY:
            if (!t->value || strlen(t->value) > STORE_SEARCH_MAX_TERM_LEN)
                abort();
            for (const char *c = t->value; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                    abort();
            break;
        case STORE_TERM_IS:
        case STORE_TERM_SEVERITY:
            if (!t->mask || t->mask > 7)
                abort();
            break;
        case STORE_TERM_JOB:
            if (!t->n_values || t->n_values > STORE_SEARCH_MAX_VALUES)
                abort();
            break;
        case STORE_TERM_LABEL:
            if (!t->name || !t->name[0] || !t->value || !t->value[0])
                abort();
            break;
        default:
            abort();
        }
    }
    uint64_t all = count(&s);
    if (s.n == 1) { /* a term and its negation partition the store */
        s.v[0].neg = !s.v[0].neg;
        if (all + count(&s) != 3)
            abort();
    }
    store_search_free(&s);
    return 0;
}
