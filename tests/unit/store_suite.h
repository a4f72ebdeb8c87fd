/* store_suite: the store test suite, run against every backend. An including file defines
 *   SUITE             the criterion suite name (an identifier)
 *   SUITE_PERSISTENT  1 when data survives store_close (SQL backends), else 0
 *   store *suite_open(const store_options *o, bool fresh)   a store; fresh: on an empty database
 * then includes this file. Covers apply, filters, full-text, sort, cursor paging, resolve/regression,
 * jobs, merge state round trip and restart, retention, concurrent readers. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define T0 1709377200000LL
#define MIN 60000LL

static merge_engine *E;
static store *S;
static char err[256];

static void setup(void)
{
    E = merge_new(NULL);
    S = suite_open(NULL, true);
}
static void teardown(void)
{
    store_close(S);
    merge_free(E);
}
#define STEST_(s, n) Test(s, n, .init = setup, .fini = teardown)
#define STEST(s, n) STEST_(s, n)
#define SUITE_TEST(n) STEST(SUITE, n)

/* Merges one payload from (job, url) with labels instance=url, namespace, then applies. */
static void feed_raw(const char *job, const char *url, int64_t now, const char *body)
{
    payload_doc *d = payload_parse(body, strlen(body), url, err, sizeof(err));
    cr_assert_not_null(d, "%s", err);
    labelset ls;
    labelset_init(&ls);
    labelset_set(&ls, "job", job);
    labelset_set(&ls, "instance", url);
    labelset_set(&ls, "namespace", strstr(url, "prod") ? "prod" : "dev");
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_input in = {.job = job, .url = url, .labels = &ls, .doc = d, .now_ms = now};
    merge_apply(E, &in, &cs);
    cr_assert_eq(store_apply(S, &cs, now, err, sizeof(err)), 0, "%s", err);
    merge_changeset_free(&cs);
    labelset_free(&ls);
    payload_free(d);
}

/* The same with a printf-style body. */
static void feed(const char *job, const char *url, int64_t now, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void feed(const char *job, const char *url, int64_t now, const char *fmt, ...)
{
    char body[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    feed_raw(job, url, now, body);
}

/* key with count, severity, occurrence at minute m past 10:00, message msg */
static void simple(const char *job, const char *url, const char *key, int count, const char *sev, int m,
                   const char *msg, int64_t now)
{
    feed(job, url, now,
         "{\"target_uuid\":\"%s\",\"aggregated_errors\":[{\"aggregation_key\":\"%s\",\"total_count\":%d,"
         "\"severity\":\"%s\",\"created_at\":\"2024-03-01T%02d:00:00Z\",\"latest_errors\":[{\"error\":{\"class\":"
         "\"Err%s\",\"message\":\"%s\",\"stacktrace\":[\"at frame_%s\"]},\"uuid\":\"%s-%d-%d\",\"timestamp\":"
         "\"2024-03-02T10:%02d:00Z\",\"http_context\":{\"request_method\":\"POST\",\"request_url\":\"http://svc/%s\","
         "\"request_headers\":{\"X-Trace\":\"trace-%s\"},\"request_body\":\"body-%s\"}}]}]}",
         url, key, count, sev, 23 - m % 24, key, msg, key, key, count, m, m, key, key, key);
}

static void seed(void)
{
    simple("api", "http://prod-1", "alpha", 5, "error", 10, "connection refused", T0);
    simple("api", "http://prod-1", "beta", 50, "warning", 20, "slow query", T0);
    simple("api", "http://dev-1", "gamma", 1, "info", 30, "cache miss", T0);
    simple("web", "http://prod-2", "delta", 7, "error", 5, "nil pointer", T0);
    simple("web", "http://prod-2", "epsilon", 500, "error", 40, "timeout", T0);
}

static store_page list(store_query q)
{
    store_page p;
    cr_assert_eq(store_list(S, &q, &p, err, sizeof(err)), 0, "%s", err);
    return p;
}

/* Q(...) sets defaults that a test may override (severity/status). */
#pragma GCC diagnostic ignored "-Woverride-init"
#define Q(...) ((store_query){.severity = -1, .status = -1, __VA_ARGS__})

static void expect_keys(store_page *p, const char *keys)
{
    char got[512] = "";
    for (size_t i = 0; i < p->n; i++) {
        if (i)
            strcat(got, ",");
        strcat(got, p->v[i].key);
    }
    cr_assert_str_eq(got, keys);
}

SUITE_TEST(sort_orders)
{
    seed();
    store_page p = list(Q(.sort = STORE_SORT_COUNT));
    expect_keys(&p, "epsilon,beta,delta,alpha,gamma");
    cr_assert_eq(p.total, 5);
    cr_assert_null(p.next_cursor);
    cr_assert_str_eq(p.v[0].latest->error.message, "timeout");
    store_page_free(&p);
    p = list(Q(.sort = STORE_SORT_LAST_SEEN));
    expect_keys(&p, "epsilon,gamma,beta,alpha,delta");
    store_page_free(&p);
    p = list(Q(.sort = STORE_SORT_FIRST_SEEN)); /* created 23-m%24 h: delta 18, gamma 17, alpha 13, ... */
    expect_keys(&p, "delta,gamma,alpha,epsilon,beta");
    store_page_free(&p);
}

SUITE_TEST(filters)
{
    seed();
    store_page p = list(Q(.job = "web", .sort = STORE_SORT_COUNT));
    expect_keys(&p, "epsilon,delta");
    store_page_free(&p);
    p = list(Q(.severity = PAYLOAD_ERROR, .sort = STORE_SORT_COUNT));
    expect_keys(&p, "epsilon,delta,alpha");
    cr_assert_eq(p.total, 3);
    store_page_free(&p);
    store_label_matcher dev[] = {{"namespace", "dev"}};
    p = list(Q(.labels = dev, .n_labels = 1));
    expect_keys(&p, "gamma");
    store_page_free(&p);
    store_label_matcher both[] = {{"namespace", "prod"}, {"job", "api"}};
    p = list(Q(.labels = both, .n_labels = 2, .sort = STORE_SORT_COUNT));
    expect_keys(&p, "beta,alpha");
    store_page_free(&p);
    store_label_matcher none[] = {{"namespace", "dev"}, {"job", "web"}};
    p = list(Q(.labels = none, .n_labels = 2));
    cr_assert_eq(p.n, 0);
    store_page_free(&p);
}

SUITE_TEST(full_text_search)
{
    seed();
    const char *cases[][2] = {
        {"REFUSED", "alpha"},        /* message, case-insensitive */
        {"errbeta", "beta"},         /* class */
        {"frame_gamma", "gamma"},    /* stacktrace */
        {"svc/delta", "delta"},      /* http url */
        {"trace-epsilon", "epsilon"},/* header value */
        {"x-trace", "epsilon,beta,delta,alpha,gamma"}, /* header name, everywhere */
        {"body-alpha", "alpha"},     /* body */
        {"eps", "epsilon"},          /* key */
        {"nothing-like-this", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        store_page p = list(Q(.q = cases[i][0], .sort = STORE_SORT_COUNT));
        char got[256] = "";
        for (size_t k = 0; k < p.n; k++) {
            if (k)
                strcat(got, ",");
            strcat(got, p.v[k].key);
        }
        cr_assert_str_eq(got, cases[i][1], "q=%s", cases[i][0]);
        store_page_free(&p);
    }
}

/* The search language (store/query.h): every example runs on every backend. */
static void expect_search(const char *q, const char *keys)
{
    store_search se;
    cr_assert_eq(store_search_parse(q, &se, err, sizeof(err)), 0, "q=%s: %s", q, err);
    store_page p = list(Q(.search = &se, .sort = STORE_SORT_COUNT));
    char got[512] = "";
    for (size_t i = 0; i < p.n; i++) {
        if (i)
            strcat(got, ",");
        strcat(got, p.v[i].key);
    }
    cr_assert_str_eq(got, keys, "q=%s", q);
    cr_assert_eq(p.total, p.n, "q=%s", q);
    store_page_free(&p);
    store_search_free(&se);
}

SUITE_TEST(search_language)
{
    seed();
    /* by count: epsilon 500 (web, error), beta 50 (api, warning), delta 7 (web, error), alpha 5 (api,
     * error), gamma 1 (api, info, namespace dev); every other one is namespace prod */
    static const char *const cases[][2] = {
        {"severity:error", "epsilon,delta,alpha"},
        {"severity:warning,info", "beta,gamma"},
        {"-severity:error", "beta,gamma"},
        {"job:web", "epsilon,delta"},
        {"-job:web", "beta,alpha,gamma"},
        {"job:web,api", "epsilon,beta,delta,alpha,gamma"},
        {"job:nope", ""},
        {"-job:nope", "epsilon,beta,delta,alpha,gamma"},
        {"namespace:dev", "gamma"},
        {"-namespace:dev", "epsilon,beta,delta,alpha"},
        {"namespace:prod severity:error job:api", "alpha"},
        {"instance:http://prod-1", "beta,alpha"},
        {"namespace:Prod", ""}, /* label values are exact */
        {"class:ERRDELTA", "delta"},
        {"class:err -class:errbeta", "epsilon,delta,alpha,gamma"},
        {"class:refused", ""}, /* the message is not the class */
        {"key:LPH", "alpha"},
        {"-key:a", "epsilon"},
        {"\"connection refused\"", "alpha"},
        {"\"refused connection\"", ""},
        {"-refused", "epsilon,beta,delta,gamma"},
        {"-\"slow query\" severity:warning,info", "gamma"},
        {"x-trace -eps", "beta,delta,alpha,gamma"},
        {"-ni severity:error", "epsilon,alpha"}, /* a two-letter word (below the trigram size) */
        {"is:open", "epsilon,beta,delta,alpha,gamma"},
        {"is:resolved", ""},
        {"timeout is:open,resolved", "epsilon"},
        {"refused -refused", ""},
        {"", "epsilon,beta,delta,alpha,gamma"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_search(cases[i][0], cases[i][1]);
}

SUITE_TEST(search_language_status_and_fields)
{
    seed();
    cr_assert_eq(store_resolve(S, "api", "alpha", T0 + 1, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(store_resolve(S, "web", "delta", T0 + 1, err, sizeof(err)), 0, "%s", err);
    simple("web", "http://prod-2", "delta", 9, "error", 6, "nil pointer", T0 + 2 * MIN); /* regresses */
    expect_search("is:resolved", "alpha");
    expect_search("is:regressed", "delta");
    expect_search("is:open", "epsilon,beta,delta,gamma"); /* open or regressed, as status=open */
    expect_search("is:open -is:regressed", "epsilon,beta,gamma");
    /* store_query.status STORE_QUERY_UNRESOLVED (the API's status=open, Periskop's list): the SQL
     * backends ignored it and listed resolved errors too */
    store_page up = list(Q(.status = STORE_QUERY_UNRESOLVED, .sort = STORE_SORT_COUNT));
    expect_keys(&up, "epsilon,beta,delta,gamma");
    store_page_free(&up);
    expect_search("-is:resolved severity:error", "epsilon,delta");
    /* with the other filters of store_query: ANDed */
    store_search se;
    cr_assert_eq(store_search_parse("severity:error", &se, err, sizeof(err)), 0);
    store_page p = list(Q(.search = &se, .job = "web", .sort = STORE_SORT_COUNT));
    expect_keys(&p, "epsilon,delta");
    store_page_free(&p);
    store_label_matcher dev[] = {{"namespace", "dev"}};
    p = list(Q(.search = &se, .labels = dev, .n_labels = 1));
    cr_assert_eq(p.n, 0);
    store_page_free(&p);
    store_search_free(&se);
}

SUITE_TEST(full_text_words_anded)
{
    seed();
    /* q_all_words: every word must match, in any field (message + request body here); without it the whole
     * string is one substring */
    store_page p = list(Q(.q = "refused  body-alpha", .q_all_words = true));
    expect_keys(&p, "alpha");
    store_page_free(&p);
    p = list(Q(.q = "refused errbeta", .q_all_words = true));
    cr_assert_eq(p.n, 0);
    store_page_free(&p);
    p = list(Q(.q = "refused body-alpha"));
    cr_assert_eq(p.n, 0);
    store_page_free(&p);
    p = list(Q(.q = "  ", .q_all_words = true)); /* no words: no filter */
    cr_assert_eq(p.total, 5);
    store_page_free(&p);
}

/* The search row of an error holds the lines of its current samples, each once (sql_store.c: text_row):
 * a line only an evicted sample had is no longer found, a line kept samples share still is, and no match
 * spans two lines. */
SUITE_TEST(search_rows_follow_samples_line_by_line)
{
    merge_free(E);
    merge_options o = {.samples_per_error = 2};
    E = merge_new(&o);
    simple("api", "http://a", "k", 1, "error", 1, "first-msg", T0 + 1);
    simple("api", "http://a", "k", 2, "error", 2, "second-msg", T0 + 2);
    simple("api", "http://a", "k", 3, "error", 3, "third-msg", T0 + 3);
    const char *cases[][2] = {
        {"first-msg", ""},   /* only the evicted sample had it */
        {"second-msg", "k"}, {"third-msg", "k"},
        {"at frame_k", "k"}, /* a line both kept samples share */
        {"msgat", ""},       /* "third-msg" ends a line, "at frame_k" starts the next */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        store_page p = list(Q(.q = cases[i][0]));
        cr_assert_eq(p.n, cases[i][1][0] ? 1u : 0u, "q=%s", cases[i][0]);
        if (p.n)
            cr_assert_str_eq(p.v[0].key, cases[i][1]);
        store_page_free(&p);
    }
}

SUITE_TEST(cause_chain_searched)
{
    feed("api", "http://x", T0,
         "{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":1,\"latest_errors\":[{\"error\":{"
         "\"class\":\"A\",\"cause\":{\"class\":\"DeepCause\",\"message\":\"root\"}},\"uuid\":\"u\"}]}]}");
    store_page p = list(Q(.q = "deepcause"));
    cr_assert_eq(p.n, 1);
    store_page_free(&p);
}

SUITE_TEST(cursor_paging_is_stable)
{
    for (int i = 0; i < 25; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%02d", i);
        simple("api", "http://prod-1", key, 100 - (i % 5), "error", i, "m", T0); /* ties in count */
    }
    char seen[25] = {0};
    char *cursor = NULL;
    size_t pages = 0, rows = 0;
    int64_t prev = INT64_MAX;
    do {
        store_page p = list(Q(.sort = STORE_SORT_COUNT, .limit = 7, .cursor = cursor));
        cr_assert_eq(p.total, pages == 0 ? 25 : 26);
        for (size_t i = 0; i < p.n; i++) {
            int k = atoi(p.v[i].key + 1);
            cr_assert_eq(seen[k], 0, "duplicate %s", p.v[i].key);
            seen[k] = 1;
            cr_assert_leq((int64_t)p.v[i].total_count, prev);
            prev = (int64_t)p.v[i].total_count;
            rows++;
        }
        if (pages == 0) {
            /* a new key arriving between pages, sorting before the cursor, does not shift later pages */
            simple("api", "http://prod-1", "zz-new", 1000, "error", 59, "m", T0);
        }
        free(cursor);
        cursor = p.next_cursor ? strdup(p.next_cursor) : NULL;
        store_page_free(&p);
        pages++;
    } while (cursor);
    cr_assert_eq(rows, 25);
    cr_assert_eq(pages, 4);
}

/* store_keys (full dumps): one job's keys in store_list's order, the status filter applied, read at once. */
static void expect_key_list(const char *job, int status, store_sort sort, const char *want)
{
    char **keys;
    size_t n;
    cr_assert_eq(store_keys(S, job, status, sort, &keys, &n, err, sizeof(err)), 0, "%s", err);
    char got[512] = "";
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(got, ",");
        strcat(got, keys[i]);
    }
    store_keys_free(keys, n);
    cr_assert_str_eq(got, want, "%s %d %s", job, status, store_sort_name(sort));
}

SUITE_TEST(keys_for_dumps)
{
    seed();
    expect_key_list("api", -1, STORE_SORT_LAST_SEEN, "gamma,beta,alpha");
    expect_key_list("api", -1, STORE_SORT_FIRST_SEEN, "gamma,alpha,beta");
    expect_key_list("web", -1, STORE_SORT_COUNT, "epsilon,delta");
    expect_key_list("nope", -1, STORE_SORT_LAST_SEEN, "");
    cr_assert_eq(store_resolve(S, "api", "beta", T0 + 1, err, sizeof(err)), 0, "%s", err);
    expect_key_list("api", STORE_QUERY_UNRESOLVED, STORE_SORT_LAST_SEEN, "gamma,alpha");
    expect_key_list("api", STORE_RESOLVED, STORE_SORT_LAST_SEEN, "beta");
    /* ties: by key, as store_list pages them */
    for (int i = 0; i < 3; i++) {
        char key[16];
        snprintf(key, sizeof(key), "t%d", 2 - i);
        simple("tie", "http://prod-1", key, 4, "error", 10, "m", T0);
    }
    expect_key_list("tie", -1, STORE_SORT_LAST_SEEN, "t0,t1,t2");
}

SUITE_TEST(bad_cursor_rejected)
{
    seed();
    store_page p;
    store_query q = Q(.cursor = "garbage");
    cr_assert_eq(store_list(S, &q, &p, err, sizeof(err)), -1);
    cr_assert(strstr(err, "cursor") != NULL);
    /* a cursor of another sort */
    store_cursor c = {.sort = STORE_SORT_COUNT, .value = 5, .job = "api", .key = "x"};
    char *enc = store_cursor_encode(&c);
    q = Q(.cursor = enc, .sort = STORE_SORT_LAST_SEEN);
    cr_assert_eq(store_list(S, &q, &p, err, sizeof(err)), -1);
    free(enc);
}

SUITE_TEST(cursor_roundtrip)
{
    store_cursor c = {.sort = STORE_SORT_FIRST_SEEN, .value = -42, .job = "a.b/c", .key = "*url.Error@9f.3"}, d;
    char *enc = store_cursor_encode(&c);
    cr_assert_eq(strspn(enc, "0123456789abcdef.-"), strlen(enc)); /* URL-safe */
    cr_assert_eq(store_cursor_decode(enc, &d), 0);
    cr_assert_eq(d.sort, c.sort);
    cr_assert_eq(d.value, -42);
    cr_assert_str_eq(d.job, "a.b/c");
    cr_assert_str_eq(d.key, "*url.Error@9f.3");
    store_cursor_clear(&d);
    free(enc);
    cr_assert_eq(store_cursor_decode("1.2.3", &d), -1);
    cr_assert_eq(store_cursor_decode("1.2.zz.00", &d), -1);
    cr_assert_eq(store_cursor_decode("9.2.61.61", &d), -1);
}

SUITE_TEST(detail_samples_labels_series)
{
    simple("api", "http://prod-1", "k", 5, "error", 1, "a", T0);
    simple("api", "http://prod-2", "k", 3, "error", 2, "b", T0 + 10);
    simple("api", "http://prod-1", "k", 9, "error", 3, "c", T0 + 2 * MIN);
    store_detail d;
    cr_assert_eq(store_get(S, "api", "k", &d, err, sizeof(err)), 0);
    cr_assert_eq(d.s.total_count, 12); /* 5 + 3 + (9 - 5) */
    cr_assert_eq(d.n_samples, 3);
    cr_assert_str_eq(d.samples[0]->error.message, "c"); /* newest first */
    cr_assert_str_eq(d.samples[2]->error.message, "a");
    cr_assert_eq(d.n_labels, 2);
    cr_assert_eq(d.n_series, 2);
    cr_assert_eq(d.series[0].minute, T0 / MIN);
    cr_assert_eq(d.series[0].delta, 8);
    cr_assert_eq(d.series[1].delta, 4);
    store_detail_free(&d);
    cr_assert_eq(store_get(S, "api", "nope", &d, err, sizeof(err)), STORE_NOT_FOUND);
}

SUITE_TEST(series_retention)
{
    store_close(S);
    store_options o = {.retention_ms = 10 * MIN};
    S = suite_open(&o, true);
    simple("api", "http://a", "k", 1, "error", 1, "a", T0);
    simple("api", "http://a", "k", 2, "error", 2, "a", T0 + 5 * MIN);
    simple("api", "http://a", "k", 3, "error", 3, "a", T0 + 12 * MIN);
    cr_assert_eq(store_maintain(S, T0 + 12 * MIN, err, sizeof(err)), 0, "%s", err);
    store_detail d;
    store_get(S, "api", "k", &d, err, sizeof(err));
    cr_assert_eq(d.n_series, 2);
    cr_assert_eq(d.series[0].minute, T0 / MIN + 5);
    store_detail_free(&d);
}

SUITE_TEST(samples_follow_evictions)
{
    merge_free(E);
    merge_options o = {.samples_per_error = 2};
    E = merge_new(&o);
    for (int i = 1; i <= 4; i++)
        simple("api", "http://a", "k", i, "error", i, "m", T0 + i);
    store_detail d;
    store_get(S, "api", "k", &d, err, sizeof(err));
    cr_assert_eq(d.n_samples, 2);
    cr_assert_str_eq(d.samples[0]->uuid, "k-4-4");
    cr_assert_str_eq(d.samples[1]->uuid, "k-3-3");
    store_detail_free(&d);
}

/* Merges (without applying) the payload of error "many" from http://a: count, one occurrence at second s
 * past 10:00 with message msg, a cause "cause of msg" and one header X-Msg: msg. */
static void many_into(merge_changeset *cs, int count, int s, const char *msg, int64_t now)
{
    char body[2048];
    snprintf(body, sizeof body,
             "{\"target_uuid\":\"http://a\",\"aggregated_errors\":[{\"aggregation_key\":\"many\",\"total_count\":%d,"
             "\"severity\":\"error\",\"created_at\":\"2024-03-01T09:00:00Z\",\"latest_errors\":[{\"error\":{"
             "\"class\":\"Err\",\"message\":\"%s\",\"stacktrace\":[\"at a\"],\"cause\":{\"class\":\"Io\","
             "\"message\":\"cause of %s\",\"stacktrace\":[]}},\"uuid\":\"u-%d\",\"timestamp\":"
             "\"2024-03-02T10:%02d:%02dZ\",\"http_context\":{\"request_method\":\"GET\",\"request_url\":\"http://svc/x\","
             "\"request_headers\":{\"X-Msg\":\"%s\"},\"request_body\":\"\"}}]}]}",
             count, msg, msg, s, s / 60, s % 60, msg);
    payload_doc *d = payload_parse(body, strlen(body), "http://a", err, sizeof(err));
    cr_assert_not_null(d, "%s", err);
    labelset ls;
    labelset_init(&ls);
    labelset_set(&ls, "instance", "http://a");
    merge_input in = {.job = "api", .url = "http://a", .labels = &ls, .doc = d, .now_ms = now};
    merge_apply(E, &in, cs);
    labelset_free(&ls);
    payload_free(d);
}

/* The samples of "many", newest first, as "message/cause message/header value" joined by spaces. */
static char *many_samples(void)
{
    static char out[4096];
    size_t off = 0;
    store_detail d;
    cr_assert_eq(store_get(S, "api", "many", &d, err, sizeof(err)), 0, "%s", err);
    out[0] = 0;
    for (size_t i = 0; i < d.n_samples; i++) {
        const payload_occurrence *o = d.samples[i];
        off += (size_t)snprintf(out + off, sizeof out - off, "%s%s/%s/%s", i ? " " : "", o->error.message,
                                o->error.cause ? o->error.cause->message : "-",
                                o->http && o->http->n_headers ? o->http->headers[0].value : "-");
    }
    store_detail_free(&d);
    return out;
}

/* Many evictions of one error in one change set (a writer flushing many bodies at once): 21 stored samples
 * all evicted together (PostgreSQL and MariaDB delete them 16 + 4 + 1 per statement, sql_store.c:
 * delete_samples), then 6 more (4 + 1 + 1). Exactly the evicted samples leave, with their causes and
 * headers; another error's sample stays; full-text search forgets the evicted texts. */
SUITE_TEST(many_evictions_in_one_change_set)
{
    merge_free(E);
    merge_options o = {.samples_per_error = 21};
    E = merge_new(&o);
    simple("api", "http://b", "other", 1, "error", 1, "other text", T0);
    merge_changeset cs;
    merge_changeset_init(&cs);
    char msg[16];
    for (int i = 0; i < 21; i++) {
        snprintf(msg, sizeof msg, "old%02d", i);
        many_into(&cs, i + 1, i, msg, T0);
    }
    cr_assert_eq(store_apply(S, &cs, T0, err, sizeof(err)), 0, "%s", err);
    merge_changeset_clear(&cs);
    for (int i = 21; i < 42; i++) {
        snprintf(msg, sizeof msg, "new%02d", i);
        many_into(&cs, i + 1, i, msg, T0 + MIN);
    }
    cr_assert_eq(cs.v[0].n_evicted, 21);
    cr_assert_eq(store_apply(S, &cs, T0 + MIN, err, sizeof(err)), 0, "%s", err);
    merge_changeset_clear(&cs);
    char want[4096];
    size_t off = 0;
    for (int i = 41; i >= 21; i--)
        off += (size_t)snprintf(want + off, sizeof want - off, "%snew%02d/cause of new%02d/new%02d", i < 41 ? " " : "",
                                i, i, i);
    cr_assert_str_eq(many_samples(), want);
    for (int i = 42; i < 48; i++) {
        snprintf(msg, sizeof msg, "late%02d", i);
        many_into(&cs, i + 1, i, msg, T0 + 2 * MIN);
    }
    cr_assert_eq(cs.v[0].n_evicted, 6);
    cr_assert_eq(store_apply(S, &cs, T0 + 2 * MIN, err, sizeof(err)), 0, "%s", err);
    merge_changeset_free(&cs);
    off = 0;
    for (int i = 47; i >= 42; i--)
        off += (size_t)snprintf(want + off, sizeof want - off, "late%02d/cause of late%02d/late%02d ", i, i, i);
    for (int i = 41; i >= 27; i--)
        off += (size_t)snprintf(want + off, sizeof want - off, "%snew%02d/cause of new%02d/new%02d", i < 41 ? " " : "",
                                i, i, i);
    cr_assert_str_eq(many_samples(), want);
    store_page p = list(Q(.q = "old"));
    cr_assert_eq(p.n, 0);
    store_page_free(&p);
    p = list(Q(.q = "new26"));
    cr_assert_eq(p.n, 0);
    store_page_free(&p);
    p = list(Q(.q = "new27"));
    expect_keys(&p, "many");
    store_page_free(&p);
    p = list(Q(.q = "other text"));
    expect_keys(&p, "other");
    store_page_free(&p);
}

static store_status status_of(const char *job, const char *key, uint64_t *total, size_t *n_samples)
{
    store_detail d;
    cr_assert_eq(store_get(S, job, key, &d, err, sizeof(err)), 0, "%s", err);
    store_status st = d.s.status;
    if (total)
        *total = d.s.total_count;
    if (n_samples)
        *n_samples = d.n_samples;
    store_detail_free(&d);
    return st;
}

SUITE_TEST(resolve_regression_reopen)
{
    simple("api", "http://a", "k", 5, "error", 1, "m", T0);
    cr_assert_eq(store_resolve(S, "api", "k", T0 + 1, err, sizeof(err)), 0);
    store_page p = list(Q(.status = STORE_RESOLVED));
    cr_assert_eq(p.n, 1);
    cr_assert_eq(p.v[0].resolved_count, 5);
    store_page_free(&p);
    /* the instance keeps exporting the same count with a new occurrence (another uuid, a newer timestamp,
     * another message): the change set reaches the store (a second sample) but the count did not rise, so
     * the error stays resolved (Periskop re-opened here) */
    simple("api", "http://a", "k", 5, "error", 2, "m2", T0 + MIN);
    uint64_t total = 0;
    size_t n_samples = 0;
    cr_assert_eq(status_of("api", "k", &total, &n_samples), STORE_RESOLVED);
    cr_assert_eq(total, 5);
    cr_assert_eq(n_samples, 2);
    p = list(Q(.status = STORE_RESOLVED));
    cr_assert_eq(p.n, 1);
    cr_assert_str_eq(p.v[0].latest->error.message, "m2");
    store_page_free(&p);
    /* count increases: regression */
    simple("api", "http://a", "k", 6, "error", 3, "m", T0 + 2 * MIN);
    p = list(Q(.status = STORE_REGRESSED));
    cr_assert_eq(p.n, 1);
    cr_assert_eq(p.v[0].total_count, 6);
    store_page_free(&p);
    cr_assert_eq(store_reopen(S, "api", "k", err, sizeof(err)), 0);
    p = list(Q(.status = STORE_OPEN));
    cr_assert_eq(p.n, 1);
    store_page_free(&p);
    cr_assert_eq(store_resolve(S, "api", "missing", T0, err, sizeof(err)), STORE_NOT_FOUND);
}

/* Regression needs a count strictly above the count at resolve time, summed over instances: a second
 * instance reporting the key for the first time with count 0 and a new sample leaves it resolved; one
 * more occurrence anywhere re-opens it. */
SUITE_TEST(regression_needs_a_strictly_higher_count)
{
    simple("api", "http://a", "k", 3, "error", 1, "m", T0);
    cr_assert_eq(store_resolve(S, "api", "k", T0 + 1, err, sizeof(err)), 0);
    simple("api", "http://b", "k", 0, "error", 2, "n", T0 + MIN); /* new instance, nothing counted */
    uint64_t total = 0;
    size_t n_samples = 0;
    cr_assert_eq(status_of("api", "k", &total, &n_samples), STORE_RESOLVED);
    cr_assert_eq(total, 3);
    cr_assert_eq(n_samples, 2);
    simple("api", "http://b", "k", 1, "error", 4, "p", T0 + 3 * MIN);
    cr_assert_eq(status_of("api", "k", &total, NULL), STORE_REGRESSED);
    cr_assert_eq(total, 4);
}

/* STORE_QUERY_UNRESOLVED (Periskop's GET /services/{job}/errors/, the API's status=open): open and
 * regressed errors, never resolved ones, on every backend and (SQL) after a restart. */
SUITE_TEST(unresolved_query_hides_resolved)
{
    seed();
    cr_assert_eq(store_resolve(S, "api", "beta", T0 + 1, err, sizeof(err)), 0);
    cr_assert_eq(store_resolve(S, "api", "alpha", T0 + 1, err, sizeof(err)), 0);
    simple("api", "http://prod-1", "alpha", 6, "error", 11, "again", T0 + MIN); /* alpha regresses */
    store_page p = list(Q(.job = "api", .status = STORE_QUERY_UNRESOLVED, .sort = STORE_SORT_COUNT));
    expect_keys(&p, "alpha,gamma");
    cr_assert_eq(p.total, 2);
    store_page_free(&p);
    p = list(Q(.status = STORE_QUERY_UNRESOLVED, .sort = STORE_SORT_COUNT)); /* every job */
    expect_keys(&p, "epsilon,delta,alpha,gamma");
    cr_assert_eq(p.total, 4);
    store_page_free(&p);
    /* with a text filter too (SQLite builds this query another way) */
    p = list(Q(.job = "api", .status = STORE_QUERY_UNRESOLVED, .q = "post", .sort = STORE_SORT_COUNT));
    expect_keys(&p, "alpha,gamma");
    cr_assert_eq(p.total, 2);
    store_page_free(&p);
    if (SUITE_PERSISTENT) { /* a restart: a new store on the same database */
        store_close(S);
        merge_free(E);
        S = suite_open(NULL, false);
        E = merge_new(NULL);
        cr_assert_eq(store_load(S, E, err, sizeof(err)), 0, "%s", err);
        /* the next scrape of beta's instance exports the same count: still hidden */
        simple("api", "http://prod-1", "beta", 50, "warning", 20, "slow query", T0 + 2 * MIN);
    }
    p = list(Q(.job = "api", .status = STORE_QUERY_UNRESOLVED, .sort = STORE_SORT_COUNT));
    expect_keys(&p, "alpha,gamma");
    store_page_free(&p);
    /* beta occurs again: listed again */
    simple("api", "http://prod-1", "beta", 51, "warning", 21, "slow query", T0 + 3 * MIN);
    p = list(Q(.job = "api", .status = STORE_QUERY_UNRESOLVED, .sort = STORE_SORT_COUNT));
    expect_keys(&p, "beta,alpha,gamma");
    store_page_free(&p);
}

SUITE_TEST(jobs_with_counts)
{
    seed();
    store_resolve(S, "web", "delta", T0, err, sizeof(err));
    store_job *jobs;
    size_t n;
    cr_assert_eq(store_jobs(S, &jobs, &n, err, sizeof(err)), 0);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(jobs[0].job, "api");
    cr_assert_eq(jobs[0].aggregates, 3);
    cr_assert_eq(jobs[0].open, 3);
    cr_assert_eq(jobs[0].total_count, 56);
    cr_assert_str_eq(jobs[1].job, "web");
    cr_assert_eq(jobs[1].open, 1);
    store_jobs_free(jobs, n);
    /* a regressed error counts as open again */
    simple("web", "http://prod-2", "delta", 8, "error", 6, "nil pointer", T0 + MIN);
    cr_assert_eq(status_of("web", "delta", NULL, NULL), STORE_REGRESSED);
    cr_assert_eq(store_jobs(S, &jobs, &n, err, sizeof(err)), 0);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(jobs[1].job, "web");
    cr_assert_eq(jobs[1].aggregates, 2);
    cr_assert_eq(jobs[1].open, 2);
    cr_assert_eq(jobs[1].total_count, 508);
    store_jobs_free(jobs, n);
}

SUITE_TEST(state_roundtrip_into_new_engine)
{
    simple("api", "http://a", "k", 5, "error", 1, "m", T0);
    merge_state st;
    merge_snapshot(E, &st);
    cr_assert_eq(store_save_state(S, &st, err, sizeof(err)), 0);
    merge_state_free(&st);
    merge_free(E);
    E = merge_new(NULL);
    if (SUITE_PERSISTENT) { /* a restart: a new store on the same database */
        store_close(S);
        S = suite_open(NULL, false);
    }
    cr_assert_eq(store_load(S, E, err, sizeof(err)), 0, "%s", err);
    simple("api", "http://a", "k", 7, "error", 2, "m", T0 + MIN);
    store_detail d;
    store_get(S, "api", "k", &d, err, sizeof(err));
    cr_assert_eq(d.s.total_count, 7); /* +2, not +7 */
    cr_assert_eq(d.n_samples, 2);
    cr_assert_eq(d.n_labels, 1);
    store_detail_free(&d);
}

static void *reader(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        store_query q = Q(.q = "m", .sort = STORE_SORT_COUNT, .limit = 5);
        store_page p;
        char e[256];
        if (store_list(S, &q, &p, e, sizeof(e)) == 0)
            store_page_free(&p);
        store_detail d;
        if (store_get(S, "api", "k1", &d, e, sizeof(e)) == 0)
            store_detail_free(&d);
    }
    return NULL;
}

SUITE_TEST(concurrent_readers_one_writer)
{
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, reader, NULL);
    for (int i = 0; i < 200; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i % 10);
        simple("api", "http://a", key, i + 1, "error", i % 60, "m", T0 + i);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    store_page p = list(Q());
    cr_assert_eq(p.total, 10);
    store_page_free(&p);
}

#if SUITE_PERSISTENT
/* Restart without any save_state: the per-instance counts travel with the change sets, so the next
 * scrape of an unchanged instance adds 0, and a resolved error stays resolved. */
SUITE_TEST(restart_adds_nothing_and_keeps_resolution)
{
    simple("api", "http://a", "k", 5, "error", 1, "m", T0);
    simple("api", "http://b", "k", 3, "error", 2, "n", T0);
    cr_assert_eq(store_resolve(S, "api", "k", T0 + 1, err, sizeof(err)), 0);
    store_close(S);
    merge_free(E);
    S = suite_open(NULL, false);
    E = merge_new(NULL);
    cr_assert_eq(store_load(S, E, err, sizeof(err)), 0, "%s", err);
    simple("api", "http://a", "k", 5, "error", 1, "m", T0 + MIN);
    simple("api", "http://b", "k", 3, "error", 2, "n", T0 + MIN);
    store_detail d;
    cr_assert_eq(store_get(S, "api", "k", &d, err, sizeof(err)), 0);
    cr_assert_eq(d.s.total_count, 8);
    cr_assert_eq(d.s.status, STORE_RESOLVED);
    cr_assert_eq(d.n_samples, 2);
    cr_assert_eq(d.n_labels, 2);
    store_detail_free(&d);
    simple("api", "http://b", "k", 4, "error", 3, "o", T0 + 2 * MIN);
    cr_assert_eq(store_get(S, "api", "k", &d, err, sizeof(err)), 0);
    cr_assert_eq(d.s.total_count, 9);
    cr_assert_eq(d.s.status, STORE_REGRESSED);
    store_detail_free(&d);
}

/* Two writers (two lookout shards) on one database: totals add up, nobody overwrites the other. */
SUITE_TEST(two_writers_add_up)
{
    store *s2 = suite_open(NULL, false);
    merge_engine *e2 = merge_new(NULL);
    simple("api", "http://a", "k", 5, "error", 1, "m", T0); /* shard 1 scrapes a */
    const char *b = "{\"target_uuid\":\"b\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":7}]}";
    payload_doc *doc = payload_parse(b, strlen(b), "http://b", err, sizeof(err));
    cr_assert_not_null(doc, "%s", err);
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_input in = {.job = "api", .url = "http://b", .doc = doc, .now_ms = T0};
    merge_apply(e2, &in, &cs); /* shard 2 scrapes b; its engine's total is 7 */
    cr_assert_eq(store_apply(s2, &cs, T0, err, sizeof(err)), 0, "%s", err);
    merge_changeset_free(&cs);
    payload_free(doc);
    simple("api", "http://a", "k", 6, "error", 2, "m", T0 + MIN); /* shard 1: +1, its total 6 */
    store_detail d;
    cr_assert_eq(store_get(S, "api", "k", &d, err, sizeof(err)), 0);
    cr_assert_eq(d.s.total_count, 13);
    store_detail_free(&d);
    store_close(s2);
    merge_free(e2);
}

/* Many keys and pages: keyset paging visits every row once, in order, under every sort. */
SUITE_TEST(paging_many_rows_every_sort)
{
    static char body[200000];
    size_t off = (size_t)snprintf(body, sizeof(body), "{\"target_uuid\":\"t\",\"aggregated_errors\":[");
    for (int i = 0; i < 300; i++)
        off += (size_t)snprintf(body + off, sizeof(body) - off,
                                "%s{\"aggregation_key\":\"key%03d\",\"total_count\":%d,\"created_at\":"
                                "\"2024-03-01T10:%02d:00Z\",\"latest_errors\":[{\"error\":{\"class\":\"C\"},"
                                "\"uuid\":\"u%d\",\"timestamp\":\"2024-03-02T10:%02d:00Z\"}]}",
                                i ? "," : "", i, i % 17, i % 7, i, i % 13);
    snprintf(body + off, sizeof(body) - off, "]}");
    feed_raw("api", "http://t", T0, body);
    for (int sort = 0; sort <= STORE_SORT_FIRST_SEEN; sort++) {
        char seen[300] = {0};
        char *cursor = NULL;
        size_t rows = 0;
        int64_t pv = INT64_MAX;
        char pk[32] = "";
        do {
            store_page p = list(Q(.sort = (store_sort)sort, .limit = 37, .cursor = cursor));
            for (size_t i = 0; i < p.n; i++) {
                int k = atoi(p.v[i].key + 3);
                cr_assert_eq(seen[k], 0);
                seen[k] = 1;
                int64_t v = store_sort_value((store_sort)sort, &p.v[i]);
                cr_assert(v < pv || (v == pv && strcmp(p.v[i].key, pk) > 0), "order at %s", p.v[i].key);
                pv = v;
                snprintf(pk, sizeof(pk), "%s", p.v[i].key);
                rows++;
            }
            free(cursor);
            cursor = p.next_cursor ? strdup(p.next_cursor) : NULL;
            store_page_free(&p);
        } while (cursor);
        cr_assert_eq(rows, 300, "sort %d", sort);
    }
}

#endif

/* Walks every page of q (limit 2, by cursor) and returns "job/key,..." in page order. */
static char *collect(store_query q, uint64_t *total)
{
    size_t cap = 8192, off = 0;
    char *out = calloc(1, cap);
    char *cursor = NULL;
    q.limit = 2;
    do {
        q.cursor = cursor;
        store_page p = list(q);
        if (total)
            *total = p.total;
        for (size_t i = 0; i < p.n; i++)
            off += (size_t)snprintf(out + off, cap - off, "%s/%s,", p.v[i].job, p.v[i].key);
        cr_assert_lt(off, cap - 64);
        free(cursor);
        cursor = p.next_cursor ? strdup(p.next_cursor) : NULL;
        store_page_free(&p);
    } while (cursor);
    return out;
}

/* A search with more than 20 x limit matches: SQLite then selects the page by walking the sort index and
 * probing the match list (sql_read.c) instead of sorting the matches. Pages must be exactly the
 * unfiltered sorted list restricted to the matches, for every sort, with and without a job filter. */
SUITE_TEST(search_many_matches_pages_like_sorted_list)
{
    static char body[64000];
    const char *jobs[] = {"api", "web"};
    for (int j = 0; j < 2; j++) {
        int n = j ? 50 : 100;
        size_t off = (size_t)snprintf(body, sizeof(body), "{\"target_uuid\":\"T%d\",\"aggregated_errors\":[", j);
        for (int i = 0; i < n; i++) /* 9 in 10 match "needle"; counts, created and last seen tie often */
            off += (size_t)snprintf(body + off, sizeof(body) - off,
                                    "%s{\"aggregation_key\":\"k%03d\",\"total_count\":%d,\"severity\":\"error\","
                                    "\"created_at\":\"2024-03-01T%02d:00:00Z\",\"latest_errors\":[{\"error\":{"
                                    "\"class\":\"E\",\"message\":\"%s %d\"},\"uuid\":\"u%d-%d\",\"timestamp\":"
                                    "\"2024-03-02T10:%02d:00Z\"}]}",
                                    i ? "," : "", i, i % 23 + 1, i % 11, i % 10 ? "needle" : "hay", i, j, i, i % 17);
        snprintf(body + off, sizeof(body) - off, "]}");
        feed_raw(jobs[j], j ? "http://w" : "http://a", T0, body);
    }
    for (int sort = 0; sort <= STORE_SORT_FIRST_SEEN; sort++) {
        for (int withjob = 0; withjob < 2; withjob++) {
            const char *job = withjob ? "api" : NULL;
            char *all = collect(Q(.sort = (store_sort)sort, .job = job), NULL);
            /* expected: the sorted list restricted to the matching keys (k%03d with i % 10 != 0) */
            char *want = calloc(1, strlen(all) + 1);
            size_t nwant = 0;
            for (char *e = all; *e;) {
                char *comma = strchr(e, ',');
                int i = atoi(strchr(e, '/') + 2);
                if (i % 10) {
                    strncat(want, e, (size_t)(comma - e + 1));
                    nwant++;
                }
                e = comma + 1;
            }
            cr_assert_eq(nwant, withjob ? 90 : 135);
            uint64_t total = 0;
            char *got = collect(Q(.sort = (store_sort)sort, .job = job, .q = "needle"), &total);
            cr_assert_eq(total, nwant, "sort %d job %s", sort, job ? job : "-");
            cr_assert_str_eq(got, want, "sort %d job %s", sort, job ? job : "-");
            free(got);
            /* the UI's form (all words) takes the same path */
            got = collect(Q(.sort = (store_sort)sort, .job = job, .q = "needle", .q_all_words = true), NULL);
            cr_assert_str_eq(got, want, "sort %d job %s (words)", sort, job ? job : "-");
            free(got);
            free(want);
            free(all);
        }
    }
}

#ifdef SUITE_SQLDB_OPEN
/* Schema migration 4 scrubs what an earlier version stored verbatim (the store itself never scrubs: the
 * ingest writer does, before merging). The database is taken back to version 3 to run it again. */
#include "periskop/scrub.h"
#include "store/sqldb.h"
SUITE_TEST(scrub_migration_masks_stored_secrets)
{
    feed("api", "http://prod-1", T0,
         "{\"target_uuid\":\"t\",\"aggregated_errors\":[{\"aggregation_key\":\"leak\",\"total_count\":1,"
         "\"severity\":\"error\",\"latest_errors\":[{\"error\":{\"class\":\"E\",\"message\":\"m\"},\"uuid\":\"u1\","
         "\"timestamp\":\"2024-03-02T10:00:00Z\",\"http_context\":{\"request_method\":\"POST\",\"request_url\":"
         "\"http://svc/a?x=1&token=zqmigurl\",\"request_headers\":{\"Authorization\":\"Bearer zqmighdr\","
         "\"Accept\":\"text/plain\"},\"request_body\":\"{\\\"password\\\":\\\"zqmigbody\\\",\\\"n\\\":2}\"}}]}]}");
    store_page p = list(Q(.q = "zqmig"));
    cr_assert_eq(p.n, 1, "stored verbatim before the migration");
    store_page_free(&p);
    store_close(S);
    char e[256];
    sqldb *db = SUITE_SQLDB_OPEN(e, sizeof(e));
    cr_assert_not_null(db, "%s", e);
    cr_assert_eq(sqldb_exec(db, "UPDATE lookout_meta SET value = '3' WHERE name = 'schema_version'", NULL, 0, e,
                            sizeof(e)),
                 0, "%s", e);
    db->ops->close(db);
    S = suite_open(NULL, false);
    p = list(Q(.q = "zqmig"));
    cr_expect_eq(p.n, 0, "the search finds no secret after the migration");
    store_page_free(&p);
    p = list(Q(.q = "[filtered]"));
    cr_expect_eq(p.n, 1, "the search rows were rebuilt from the scrubbed texts");
    store_page_free(&p);
    store_detail d;
    cr_assert_eq(store_get(S, "api", "leak", &d, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(d.n_samples, 1);
    const payload_http *h = d.samples[0]->http;
    cr_assert_not_null(h);
    cr_expect_str_eq(h->url, "http://svc/a?x=1&token=[Filtered]");
    cr_expect_str_eq(h->body, "{\"password\":\"[Filtered]\",\"n\":2}");
    cr_assert_eq(h->n_headers, 2);
    cr_expect_str_eq(h->headers[0].value, "[Filtered]");
    cr_expect_str_eq(h->headers[1].value, "text/plain");
    store_detail_free(&d);
}

/* The sample's URL and body as stored (after a reopen). */
static void stored_http(char *url, size_t nu, char *body, size_t nb)
{
    store_detail d;
    cr_assert_eq(store_get(S, "api", "rules", &d, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(d.n_samples, 1);
    snprintf(url, nu, "%s", d.samples[0]->http->url);
    snprintf(body, nb, "%s", d.samples[0]->http->body);
    store_detail_free(&d);
}

/* The configured `scrubbing:` rules (not only the defaults) and a newer scrubber reach what is already
 * stored: a store opened with rules other than those its samples were scrubbed with scrubs them again,
 * rebuilds the search rows, and remembers the rules (lookout_meta scrub_rules) so the next open with the
 * same rules does nothing. */
SUITE_TEST(scrub_rules_change_rescrubs_stored_samples)
{
    feed("api", "http://prod-1", T0,
         "{\"target_uuid\":\"t\",\"aggregated_errors\":[{\"aggregation_key\":\"rules\",\"total_count\":1,"
         "\"severity\":\"error\",\"latest_errors\":[{\"error\":{\"class\":\"E\",\"message\":\"m\"},\"uuid\":\"u1\","
         "\"timestamp\":\"2024-03-02T10:00:00Z\",\"http_context\":{\"request_method\":\"POST\",\"request_url\":"
         "\"http://svc/a?ssn=zqrssn&next=https%%3A%%2F%%2Fu%%3Azqrnest%%40h\",\"request_headers\":{},"
         "\"request_body\":\"{\\\"ssn\\\":\\\"zqrbody\\\",\\\"db\\\":\\\"pg://a:zqrdb@h/x\\\"}\"}}]}]}");
    char url[512], body[512];
    /* Opened again with the rules the suite opened it with: the fingerprint matches, nothing is touched. */
    store_close(S);
    S = suite_open(NULL, false);
    stored_http(url, sizeof url, body, sizeof body);
    cr_expect_str_eq(url, "http://svc/a?ssn=zqrssn&next=https%3A%2F%2Fu%3Azqrnest%40h");
    /* A database scrubbed by an older scrubber (no fingerprint): the defaults of this one mask the nested
     * URL's password and the JSON string's userinfo, not the extra field. */
    char e[256];
    sqldb *db = SUITE_SQLDB_OPEN(e, sizeof(e));
    cr_assert_not_null(db, "%s", e);
    cr_assert_eq(sqldb_exec(db, "DELETE FROM lookout_meta WHERE name = 'scrub_rules'", NULL, 0, e, sizeof(e)), 0, "%s",
                 e);
    db->ops->close(db);
    store_close(S);
    S = suite_open(NULL, false);
    stored_http(url, sizeof url, body, sizeof body);
    cr_expect_str_eq(url, "http://svc/a?ssn=zqrssn&next=https%3A%2F%2Fu%3A%5BFiltered%5D%40h");
    cr_expect_str_eq(body, "{\"ssn\":\"zqrbody\",\"db\":\"pg://a:[Filtered]@h/x\"}");
    /* `scrubbing: {fields: [ssn]}`: the extra field is masked in the URL and the body, and searches no
     * longer find it. */
    char *fields[] = {"SSN"};
    scrub_rules *r = scrub_rules_new(true, NULL, 0, fields, 1);
    store_options o = {.scrub = r};
    store_close(S);
    S = suite_open(&o, false);
    stored_http(url, sizeof url, body, sizeof body);
    cr_expect_str_eq(url, "http://svc/a?ssn=[Filtered]&next=https%3A%2F%2Fu%3A%5BFiltered%5D%40h");
    cr_expect_str_eq(body, "{\"ssn\":\"[Filtered]\",\"db\":\"pg://a:[Filtered]@h/x\"}");
    store_page p = list(Q(.q = "zqr"));
    cr_expect_eq(p.n, 0, "the search rows were rebuilt");
    store_page_free(&p);
    /* Scrubbing turned off: stored values stay masked (nothing is unmasked) and "off" is remembered, so
     * turning it on again runs the pass over what was stored meanwhile. */
    scrub_rules *off = scrub_rules_new(false, NULL, 0, NULL, 0);
    o.scrub = off;
    store_close(S);
    S = suite_open(&o, false);
    feed("api", "http://prod-1", T0 + 60000,
         "{\"target_uuid\":\"t\",\"aggregated_errors\":[{\"aggregation_key\":\"rules\",\"total_count\":2,"
         "\"severity\":\"error\",\"latest_errors\":[{\"error\":{\"class\":\"E\",\"message\":\"m\"},\"uuid\":\"u2\","
         "\"timestamp\":\"2024-03-02T10:01:00Z\",\"http_context\":{\"request_method\":\"GET\",\"request_url\":"
         "\"http://svc/b?ssn=zqroff\",\"request_headers\":{},\"request_body\":\"\"}}]}]}");
    p = list(Q(.q = "zqroff"));
    cr_expect_eq(p.n, 1, "stored verbatim while scrubbing is off");
    store_page_free(&p);
    o.scrub = r;
    store_close(S);
    S = suite_open(&o, false);
    p = list(Q(.q = "zqroff"));
    cr_expect_eq(p.n, 0, "scrubbed when it is on again");
    store_page_free(&p);
    scrub_rules_free(off);
    scrub_rules_free(r);
}
#endif

/* 40 errors of one payload, every one changing in each change set: SQLite sets severity, status and
 * created_at for 32 of them per statement (sql_store.c, sqlite_state_update), so the last chunk of 8 is
 * padded; the changes sit on both sides of the boundary. */
static void forty(int count, int64_t now)
{
    char body[16384];
    size_t off = (size_t)snprintf(body, sizeof body, "{\"target_uuid\":\"t40\",\"aggregated_errors\":[");
    for (int k = 0; k < 40; k++) {
        /* second round: k35 becomes a warning, k39 was first seen an hour earlier, k38 later */
        bool two = count == 2;
        off += (size_t)snprintf(body + off, sizeof body - off,
                                "%s{\"aggregation_key\":\"k%02d\",\"total_count\":%d,\"severity\":\"%s\","
                                "\"created_at\":\"2024-03-01T%02d:00:00Z\",\"latest_errors\":[]}",
                                k ? "," : "", k, count, two && k == 35 ? "warning" : "error",
                                two && k == 39 ? 9 : two && k == 38 ? 11 : 10);
    }
    snprintf(body + off, sizeof body - off, "]}");
    feed_raw("api", "http://prod-40", now, body);
}

SUITE_TEST(state_columns_change_across_a_large_change_set)
{
    forty(1, T0);
    cr_assert_eq(store_resolve(S, "api", "k05", T0 + 1, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(store_resolve(S, "api", "k33", T0 + 1, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(store_resolve(S, "api", "k36", T0 + 1, err, sizeof(err)), 0, "%s", err);
    forty(2, T0 + MIN);
    for (int k = 0; k < 40; k++) {
        char key[16];
        snprintf(key, sizeof key, "k%02d", k);
        store_detail d;
        cr_assert_eq(store_get(S, "api", key, &d, err, sizeof(err)), 0, "%s", err);
        cr_expect_eq(d.s.total_count, 2, "%s", key);
        cr_expect_eq(d.s.status, k == 5 || k == 33 || k == 36 ? STORE_REGRESSED : STORE_OPEN, "%s", key);
        cr_expect_eq(d.s.severity, k == 35 ? PAYLOAD_WARNING : PAYLOAD_ERROR, "%s", key);
        /* 2024-03-01T10:00Z = T0 - 25 h; k39's 09:00 is earlier, k38's 11:00 later (kept at 10:00) */
        cr_expect_eq(d.s.created_at_ms, T0 - 25 * 60 * MIN - (k == 39 ? 60 * MIN : 0), "%s", key);
        store_detail_free(&d);
    }
    /* and the filters see the new state */
    store_search se;
    cr_assert_eq(store_search_parse("is:regressed", &se, err, sizeof(err)), 0, "%s", err);
    store_page p = list(Q(.search = &se));
    expect_keys(&p, "k05,k33,k36");
    cr_expect_eq(p.total, 3);
    store_page_free(&p);
    store_search_free(&se);
    cr_assert_eq(store_search_parse("severity:warning", &se, err, sizeof(err)), 0, "%s", err);
    p = list(Q(.search = &se));
    expect_keys(&p, "k35");
    cr_expect_eq(p.total, 1);
    store_page_free(&p);
    store_search_free(&se);
}

#ifdef SUITE_SQLDB_OPEN
/* ---- issue 15: the search language's field filters use the indexes (schema v7, agg_state) ---- */

/* The plans of the count and the page statements of one store_list, captured through sqldb_trace: each is
 * explained on the readers' connection with its own parameters, one line per plan row. */
typedef struct plan_capture {
    char count[4096], page[4096];
    char *dst;
    sqldb_dialect dialect;
    char err[256];
    int failures;
} plan_capture;

static int plan_row(void *ctx, sqlrow *r)
{
    plan_capture *c = ctx;
    char line[512];
    if (c->dialect == SQLDB_SQLITE) /* EXPLAIN QUERY PLAN: id, parent, notused, detail */
        snprintf(line, sizeof line, "%s\n", sqlrow_text(r, 3));
    else if (c->dialect == SQLDB_POSTGRES) /* one text column */
        snprintf(line, sizeof line, "%s\n", sqlrow_text(r, 0));
    else /* id, select_type, table, type, possible_keys, key, ...: "table:type:key" */
        snprintf(line, sizeof line, "%s:%s:%s\n", sqlrow_text(r, 2), sqlrow_text(r, 3), sqlrow_text(r, 5));
    size_t used = strlen(c->dst);
    snprintf(c->dst + used, sizeof c->count - used, "%s", line);
    return 0;
}

static int ignore_row(void *ctx, sqlrow *r)
{
    (void)ctx;
    (void)r;
    return 0;
}

static void plan_trace(void *ctx, sqldb *db, const char *sql, const sqlv *p, size_t n)
{
    plan_capture *c = ctx;
    if (strncmp(sql, "SELECT count(*) FROM aggregates", 31) == 0)
        c->dst = c->count;
    else if (strstr(sql, "FROM (SELECT a.* FROM aggregates a"))
        c->dst = c->page;
    else
        return;
    c->dst[0] = 0;
    c->dialect = db->dialect;
    size_t len = strlen(sql) + 32;
    char *ex = malloc(len);
    cr_assert_not_null(ex);
    snprintf(ex, len, "%s%s", db->dialect == SQLDB_SQLITE ? "EXPLAIN QUERY PLAN " : "EXPLAIN ", sql);
    if (db->ops->query(db, ex, p, n, plan_row, c, c->err, sizeof c->err) != 0)
        c->failures++;
    free(ex);
}

/* A plan reads the aggregates through agg_state with a condition on its columns, and never scans them. */
static void expect_state_index(sqldb_dialect d, const char *plan, const char *what, const char *q)
{
    bool ok;
    if (d == SQLDB_SQLITE) /* "SEARCH a USING [COVERING ]INDEX agg_state (status=? AND severity=?...)" */
        ok = strstr(plan, "INDEX agg_state (status=? AND severity=?") && !strstr(plan, "SCAN a USING") &&
             !strstr(plan, "SCAN aggregates");
    else if (d == SQLDB_POSTGRES) /* "Index [Only ]Scan using agg_state" or "Bitmap Index Scan on agg_state" */
        ok = (strstr(plan, "using agg_state on aggregates") || strstr(plan, "Bitmap Index Scan on agg_state")) &&
             !strstr(plan, "Seq Scan on aggregates");
    else /* every row of the aggregates (alias a) is a range or ref read of agg_state */
        ok = (strstr(plan, "a:range:agg_state\n") || strstr(plan, "a:ref:agg_state\n")) &&
             !strstr(plan, "a:ALL:") && !strstr(plan, "a:index:");
    cr_expect(ok, "%s of \"%s\" does not use agg_state:\n%s", what, q, plan);
    /* the page's label-set count per row: one seek, not a read of every error's sentinel rows */
    if (d == SQLDB_SQLITE)
        cr_expect(!strstr(plan, "labels_nv (name=?)"), "%s of \"%s\" reads every label set:\n%s", what, q, plan);
    else if (d == SQLDB_POSTGRES)
        cr_expect(!strstr(plan, "Index Cond: ((name = ''::text) AND (agg_id"), "%s of \"%s\":\n%s", what, q, plan);
}

/* 3,000 errors in 20 jobs (j00..j19, i % 20), keys k0000..k2999 with last_seen rising with i: resolved
 * when i % 50 == 4, regressed when i % 50 == 13, else open; info when i % 30 == 4, warning when 5 or 6,
 * else error. Every query below names values that select few of them, so a database with statistics
 * (PostgreSQL, MariaDB: analyzed here, as their automatic statistics would) reads them from the index
 * rather than scanning; SQLite has no statistics and takes what sql_read.c states. The expected totals
 * and newest keys are computed from those rules. */
SUITE_TEST(field_filters_use_the_state_index)
{
    /* A database of schema version 6 (no agg_state) gets the index when opened (migration 7). */
    store_close(S);
    S = NULL;
    char e[256];
    sqldb *db = SUITE_SQLDB_OPEN(e, sizeof(e));
    cr_assert_not_null(db, "%s", e);
    sqldb_dialect d = db->dialect;
    cr_assert_eq(sqldb_exec(db, d == SQLDB_MYSQL ? "DROP INDEX agg_state ON aggregates" : "DROP INDEX agg_state", NULL,
                            0, e, sizeof e),
                 0, "%s", e);
    cr_assert_eq(sqldb_exec(db, "UPDATE lookout_meta SET value = '6' WHERE name = 'schema_version'", NULL, 0, e,
                            sizeof(e)),
                 0, "%s", e);
    S = suite_open(NULL, false);
    cr_assert_eq(sqldb_exec(db, d == SQLDB_MYSQL ? "START TRANSACTION" : "BEGIN", NULL, 0, e, sizeof e), 0, "%s", e);
    for (int i = 0; i < 3000; i++) {
        char job[16], key[16];
        snprintf(job, sizeof job, "j%02d", i % 20);
        snprintf(key, sizeof key, "k%04d", i);
        int st = i % 50 == 4 ? 1 : i % 50 == 13 ? 2 : 0, sev = i % 30 == 4 ? 0 : i % 30 == 5 || i % 30 == 6 ? 1 : 2;
        sqlv p[] = {sqlv_int(i + 1), sqlv_text(job), sqlv_text(key), sqlv_int(i + 1), sqlv_int(sev),
                    sqlv_int(T0 - i), sqlv_int(T0 + i * 1000LL), sqlv_int(st)};
        cr_assert_eq(sqldb_exec(db, "INSERT INTO aggregates (id, job, akey, total, severity, created_at, last_seen,"
                                    " status) VALUES (?,?,?,?,?,?,?,?)", p, 8, e, sizeof e),
                     0, "%s", e);
    }
    cr_assert_eq(sqldb_exec(db, "COMMIT", NULL, 0, e, sizeof e), 0, "%s", e);
    if (d != SQLDB_SQLITE)
        cr_assert_eq(sqldb_query(db, d == SQLDB_MYSQL ? "ANALYZE TABLE aggregates" : "ANALYZE aggregates", NULL, 0,
                                 ignore_row, NULL, e, sizeof e),
                     0, "%s", e);
    db->ops->close(db);

    static const struct {
        const char *q;
        int status, severity;
        uint64_t total;
        const char *newest;
    } cases[] = {
        {"is:regressed", -1, -1, 60, "k2963,k2913"},
        {"job:j04 is:resolved", -1, -1, 30, "k2904,k2804"},
        {"severity:info", -1, -1, 100, "k2974,k2944"},
        {"job:j04 severity:info", -1, -1, 50, "k2944,k2884"},
        {"severity:warning,info -is:open", -1, -1, 20, "k2854,k2704"},
        {"is:open severity:info", -1, -1, 80, "k2974,k2944"},
        {"job:j05 -severity:error is:open", -1, -1, 50, "k2945,k2885"},
        /* the API's status and severity parameters (status=open is "not resolved") take the same path */
        {"", STORE_QUERY_UNRESOLVED, PAYLOAD_INFO, 80, "k2974,k2944"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        store_search se;
        cr_assert_eq(store_search_parse(cases[i].q, &se, err, sizeof(err)), 0, "%s", err);
        /* a page of 50: walking the last-seen index would read about 50 * 3000 / matches entries, so a
         * planner with statistics takes agg_state and sorts (with a page of 2 it may rightly walk) */
        store_query q = Q(.search = &se, .status = cases[i].status, .severity = cases[i].severity, .limit = 50);
        plan_capture pc = {.dst = NULL};
        sqldb_trace = plan_trace;
        sqldb_trace_ctx = &pc;
        store_page p;
        int rc = store_list(S, &q, &p, err, sizeof(err));
        sqldb_trace = NULL;
        sqldb_trace_ctx = NULL;
        cr_assert_eq(rc, 0, "%s: %s", cases[i].q, err);
        cr_expect_eq(pc.failures, 0, "%s: EXPLAIN failed: %s", cases[i].q, pc.err);
        cr_expect_eq(p.total, cases[i].total, "%s", cases[i].q);
        char got[64] = "";
        cr_expect_eq(p.n, cases[i].total < 50 ? cases[i].total : 50, "%s", cases[i].q);
        for (size_t k = 0; k < p.n && k < 2; k++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", k ? "," : "", p.v[k].key);
        cr_expect_str_eq(got, cases[i].newest, "%s", cases[i].q);
        store_page_free(&p);
        store_search_free(&se);
        cr_expect(pc.count[0] && pc.page[0], "%s: both statements traced", cases[i].q);
        expect_state_index(d, pc.count, "the count", cases[i].q);
        expect_state_index(d, pc.page, "the page", cases[i].q);
    }
    if (d == SQLDB_SQLITE) {
        /* is:open (open or regressed) matches 2,940 (20 x 51 or more): the count reads agg_state, the page walks the last-seen
         * index and stops after a page (SQLite has no statistics to choose this itself) */
        store_search se;
        cr_assert_eq(store_search_parse("is:open", &se, err, sizeof(err)), 0, "%s", err);
        store_query q = Q(.search = &se, .limit = 50);
        plan_capture pc = {.dst = NULL};
        sqldb_trace = plan_trace;
        sqldb_trace_ctx = &pc;
        store_page p;
        int rc = store_list(S, &q, &p, err, sizeof(err));
        sqldb_trace = NULL;
        sqldb_trace_ctx = NULL;
        cr_assert_eq(rc, 0, "%s", err);
        cr_expect_eq(p.total, 2940);
        cr_expect_eq(p.n, 50);
        cr_expect_str_eq(p.v[0].key, "k2999");
        cr_expect(strstr(pc.count, "SEARCH a USING COVERING INDEX agg_state (status=? AND severity=?)"), "%s",
                  pc.count);
        cr_expect(strstr(pc.page, "SCAN a USING INDEX agg_last_seen\n"), "%s", pc.page);
        store_page_free(&p);
        store_search_free(&se);
    }
}
#endif

#ifdef SUITE_LOCK_SQL
/* The query budget on a server (PostgreSQL statement_timeout, MariaDB max_statement_time): a search
 * that cannot finish within store_options.query_budget_ms is interrupted and answered STORE_TIMEOUT (the
 * API's 503 "timeout"), and the readers' connection answers normally afterwards. A second connection
 * holds an exclusive lock on the aggregates table (SUITE_LOCK_SQL), so the search waits on it for certain:
 * the budget, not the data size, ends it. */
#include "store/sqldb.h"
SUITE_TEST(query_budget_timeout_on_server)
{
    store_close(S);
    store_options o = {.query_budget_ms = 300};
    S = suite_open(&o, true);
    simple("api", "http://prod-1", "alpha", 5, "error", 10, "connection refused", T0);
    store_search se;
    cr_assert_eq(store_search_parse("class:erralpha", &se, err, sizeof(err)), 0, "%s", err);
    store_query q = Q(.search = &se);
    store_page p = list(q);
    expect_keys(&p, "alpha");
    store_page_free(&p);
    char e[256];
    sqldb *db = SUITE_SQLDB_OPEN(e, sizeof(e));
    cr_assert_not_null(db, "%s", e);
    for (const char *const *sql = (const char *const[]){SUITE_LOCK_SQL, NULL}; *sql; sql++)
        cr_assert_eq(sqldb_exec(db, *sql, NULL, 0, e, sizeof(e)), 0, "%s: %s", *sql, e);
    err[0] = 0;
    cr_assert_eq(store_list(S, &q, &p, err, sizeof(err)), STORE_TIMEOUT, "a locked table: over budget (%s)", err);
    cr_assert_eq(sqldb_exec(db, SUITE_UNLOCK_SQL, NULL, 0, e, sizeof(e)), 0, "%s", e);
    db->ops->close(db);
    p = list(q);
    expect_keys(&p, "alpha");
    store_page_free(&p);
    store_search_free(&se);
}
#endif

/* ---- issue 12: retention of errors and saturating counts, on every backend ---- */

static uint64_t job_total(const char *job, uint64_t *aggregates)
{
    store_job *jobs;
    size_t n;
    cr_assert_eq(store_jobs(S, &jobs, &n, err, sizeof(err)), 0, "%s", err);
    uint64_t t = 0;
    *aggregates = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(jobs[i].job, job) == 0) {
            t = jobs[i].total_count;
            *aggregates = jobs[i].aggregates;
        }
    store_jobs_free(jobs, n);
    return t;
}

/* An error with no new occurrence within retention is deleted with everything it owns: detail, list rows,
 * full-text rows, series, job counts; after a restart it is not restored, and reported again it is new. */
SUITE_TEST(retention_deletes_silent_errors)
{
    merge_free(E);
    merge_options mo = {.retention_ms = 10 * MIN};
    E = merge_new(&mo);
    simple("api", "http://prod-1", "old", 5, "error", 1, "vanishing", T0);
    simple("api", "http://prod-1", "live", 2, "error", 2, "staying", T0);
    simple("api", "http://prod-1", "live", 3, "error", 8, "staying", T0 + 8 * MIN);
    merge_changeset cs;
    merge_changeset_init(&cs);
    cr_assert_eq(merge_expire(E, T0 + 11 * MIN, &cs), 1);
    cr_assert_eq(store_apply(S, &cs, T0 + 11 * MIN, err, sizeof(err)), 0, "%s", err);
    merge_changeset_free(&cs);

    store_detail d;
    cr_assert_eq(store_get(S, "api", "old", &d, err, sizeof(err)), STORE_NOT_FOUND);
    store_page p = list(Q(.sort = STORE_SORT_COUNT));
    expect_keys(&p, "live");
    cr_assert_eq(p.total, 1);
    store_page_free(&p);
    p = list(Q(.q = "vanishing"));
    cr_assert_eq(p.n, 0);
    cr_assert_eq(p.total, 0);
    store_page_free(&p);
    p = list(Q(.q = "frame_old"));
    cr_assert_eq(p.n, 0);
    store_page_free(&p);
    uint64_t naggs;
    cr_assert_eq(job_total("api", &naggs), 3);
    cr_assert_eq(naggs, 1);
    uint64_t b[1];
    cr_assert_eq(store_buckets(S, "api", "old", T0, 20 * MIN, b, 1, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(b[0], 0);
    cr_assert_eq(store_buckets(S, "api", NULL, T0, 20 * MIN, b, 1, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(b[0], 3);

    merge_state st;
    merge_snapshot(E, &st);
    cr_assert_eq(store_save_state(S, &st, err, sizeof(err)), 0, "%s", err);
    merge_state_free(&st);
    merge_free(E);
    E = merge_new(&mo);
    if (SUITE_PERSISTENT) {
        store_close(S);
        S = suite_open(NULL, false);
    }
    cr_assert_eq(store_load(S, E, err, sizeof(err)), 0, "%s", err);
    merge_aggregate_info ai;
    cr_assert(!merge_get(E, "api", "old", &ai));
    cr_assert(merge_get(E, "api", "live", &ai));
#if SUITE_PERSISTENT
    /* the tombstone survived the restart: reported again with nothing new, it stays deleted */
    feed("api", "http://prod-1", T0 + 12 * MIN,
         "{\"target_uuid\":\"http://prod-1\",\"aggregated_errors\":[{\"aggregation_key\":\"old\","
         "\"total_count\":5,\"latest_errors\":[{\"error\":{\"class\":\"E\",\"message\":\"vanishing\"},"
         "\"uuid\":\"old-5-1\",\"timestamp\":\"2024-03-02T10:01:00Z\"}]}]}");
    cr_assert_eq(store_get(S, "api", "old", &d, err, sizeof(err)), STORE_NOT_FOUND);
    /* an increase brings it back holding only the increase */
    simple("api", "http://prod-1", "old", 7, "error", 13, "vanishing", T0 + 13 * MIN);
    cr_assert_eq(store_get(S, "api", "old", &d, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(d.s.total_count, 2);
    cr_assert_eq(d.n_samples, 1);
    cr_assert_eq(d.n_series, 1);
    cr_assert_eq(d.series[0].delta, 2);
    store_detail_free(&d);
    /* and a second restart restores it as a live error (the tombstone went) */
    merge_free(E);
    E = merge_new(&mo);
    store_close(S);
    S = suite_open(NULL, false);
    cr_assert_eq(store_load(S, E, err, sizeof(err)), 0, "%s", err);
    cr_assert(merge_get(E, "api", "old", &ai));
    cr_assert_eq(ai.total_count, 2);
#else
    /* the memory store keeps no tombstone across a reload: reported again, a new error with its full count */
    simple("api", "http://prod-1", "old", 5, "error", 12, "vanishing", T0 + 12 * MIN);
    cr_assert_eq(store_get(S, "api", "old", &d, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(d.s.total_count, 5);
    cr_assert_eq(d.n_samples, 1);
    cr_assert_eq(d.n_labels, 1);
    cr_assert_eq(d.n_series, 1);
    cr_assert_eq(d.series[0].delta, 5);
    store_detail_free(&d);
#endif
}

/* Counts near 2^63 saturate at INT64_MAX in every backend (a BIGINT overflow would wedge the writer on
 * PostgreSQL/MariaDB and turn into a float on SQLite), across separate writes to the same minute. */
SUITE_TEST(counts_saturate_at_int64_max)
{
    feed("api", "http://a", T0,
         "{\"target_uuid\":\"A\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":9223372036854775800},"
         "{\"aggregation_key\":\"j\",\"total_count\":9223372036854775807}]}");
    feed("api", "http://b", T0 + 1,
         "{\"target_uuid\":\"B\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":1000}]}");
    cr_assert_eq(store_resolve(S, "api", "k", T0 + 2, err, sizeof(err)), 0, "%s", err);
    feed("api", "http://b", T0 + 3,
         "{\"target_uuid\":\"B\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":2000}]}");
    store_detail d;
    cr_assert_eq(store_get(S, "api", "k", &d, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(d.s.total_count, 9223372036854775807ULL);
    cr_assert_eq(d.s.status, STORE_RESOLVED); /* no increase past the maximum: not a regression */
    cr_assert_eq(d.n_series, 1);
    cr_assert_eq(d.series[0].delta, 9223372036854775807ULL);
    store_detail_free(&d);
    uint64_t naggs;
    cr_assert_eq(job_total("api", &naggs), 9223372036854775807ULL);
    cr_assert_eq(naggs, 2);
    store_page p = list(Q(.sort = STORE_SORT_COUNT));
    expect_keys(&p, "j,k");
    cr_assert_eq(p.v[1].total_count, 9223372036854775807ULL);
    store_page_free(&p);
}
