/* The APIs over stored errors, over a real socket: Periskop-compatible shapes (byte-compared with the
 * Periskop server's own test), resolve through DELETE with keys containing '/', lookout's API filters,
 * paging and resolve/reopen, /-/exceptions. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/errors_api.h"
#include "config/config.h"
#include "sd/sd.h"
#include "http/server.h"
#include "util/metrics.h"

typedef struct reply {
    long status;
    strbuf body;
} reply;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    strbuf_append(ud, p, sz * n);
    return sz * n;
}

static void request(int port, const char *method, const char *path, reply *r)
{
    char url[10000];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    strbuf_init(&r->body);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    CURLcode rc = curl_easy_perform(c);
    cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(c);
}

static store *st;
static target_manager *tm;
static selfexc *sx;
static http_server *srv;
static errors_api api;
static int port;

/* One aggregate per call, straight into the store. */
static void put(const char *job, const char *key, uint64_t count, payload_severity sev, int64_t created_ms,
                const char *cls, const char *msg, int64_t ts_ms, const char *label_env)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    cs.v = calloc(1, sizeof(merge_change));
    cs.n = cs.cap = 1;
    merge_change *c = &cs.v[0];
    c->job = strdup(job);
    c->key = strdup(key);
    c->is_new = true;
    c->total_count = count;
    c->severity = sev;
    c->created_at_ms = created_ms;
    c->last_seen_ms = ts_ms;
    c->added = calloc(1, sizeof(void *));
    c->added[0] = payload_occurrence_new(cls, msg, "", ts_ms, sev, NULL, NULL);
    c->n_added = c->cap_added = 1;
    c->labels_added = calloc(1, sizeof(labelset));
    labelset_init(&c->labels_added[0]);
    labelset_set(&c->labels_added[0], "job", job);
    labelset_set(&c->labels_added[0], "env", label_env);
    c->n_labels_added = c->cap_labels_added = 1;
    char err[256];
    cr_assert_eq(store_apply(st, &cs, ts_ms > 0 ? ts_ms : 1, err, sizeof err), 0, "%s", err);
    merge_changeset_free(&cs);
}

static void setup(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    st = store_memory_new(NULL);
    tm = targets_new();
    sx = selfexc_new();
    api = (errors_api){.st = st, .tm = tm, .sx = sx};
    http_server_options o = {.listen_address = "127.0.0.1:0"};
    srv = http_server_new(&o);
    periskop_api_register(&api, srv);
    errors_api_register(&api, srv);
    selfexc_api_register(sx, srv);
    char err[256];
    cr_assert_eq(http_server_start(srv, err, sizeof err), 0, "%s", err);
    port = http_server_port(srv);
}

static void teardown(void)
{
    http_server_free(srv);
    targets_free(tm);
    selfexc_free(sx);
    store_close(st);
    curl_global_cleanup();
}

static char *read_fixture(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

TestSuite(api_errors, .init = setup, .fini = teardown);

Test(api_errors, periskop_errors_byte_compatible_with_periskop_test)
{
    put("api-test", "key", 0, PAYLOAD_ERROR, 0, "", "", 0, "x");
    reply r;
    request(port, "GET", "/services/api-test/errors/", &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body.buf, read_fixture("tests/fixtures/periskop_api/errors_known.json"));
    strbuf_free(&r.body);
    request(port, "GET", "/services/", &r);
    cr_assert_str_eq(r.body.buf, "[\"api-test\"]\n");
    strbuf_free(&r.body);
    request(port, "GET", "/services/nope/errors/", &r);
    cr_assert_eq(r.status, 404);
    cr_assert_str_eq(r.body.buf, "service nope not found\n");
    strbuf_free(&r.body);
    request(port, "GET", "/-/health", &r);
    cr_assert_str_eq(r.body.buf, "OK");
    strbuf_free(&r.body);
    request(port, "GET", "/targets/", &r);
    cr_assert_str_eq(r.body.buf, "{}\n");
    strbuf_free(&r.body);
}

Test(api_errors, periskop_delete_resolves_keys_with_slashes)
{
    put("web", "Err@1/a b", 4, PAYLOAD_ERROR, 1000, "Err", "m", 2000, "x");
    reply r;
    request(port, "OPTIONS", "/services/web/errors/Err@1%2Fa%20b/", &r);
    cr_assert_eq(r.status, 204);
    strbuf_free(&r.body);
    request(port, "GET", "/services/web/errors/", &r);
    cr_assert(strstr(r.body.buf, "Err@1/a b"), "OPTIONS must not resolve: %s", r.body.buf);
    strbuf_free(&r.body);
    request(port, "DELETE", "/services/web/errors/Err@1%2Fa%20b/", &r);
    cr_assert_eq(r.status, 204);
    cr_assert_eq(r.body.len, 0);
    strbuf_free(&r.body);
    request(port, "GET", "/services/web/errors/", &r);
    cr_assert_str_eq(r.body.buf, "[]\n");
    strbuf_free(&r.body);
    request(port, "GET", "/api/v1/errors/web/Err@1%2Fa%20b", &r);
    cr_assert(strstr(r.body.buf, "\"status\":\"resolved\""), "%s", r.body.buf);
    cr_assert(strstr(r.body.buf, "\"resolved_count\":4"), "%s", r.body.buf);
    strbuf_free(&r.body);
}

Test(api_errors, lookout_list_filters_and_paging)
{
    put("a", "k1", 10, PAYLOAD_ERROR, 1000, "IOError", "disk full", 5000, "prod");
    put("a", "k2", 20, PAYLOAD_WARNING, 1000, "Timeout", "slow upstream", 6000, "dev");
    put("b", "k3", 30, PAYLOAD_INFO, 1000, "Note", "fyi", 7000, "prod");
    reply r;
    request(port, "GET", "/api/v1/errors?job=a&sort=count", &r);
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(r.body.buf, "\"total\":2}"), "%s", r.body.buf);
    char *k2 = strstr(r.body.buf, "\"k2\""), *k1 = strstr(r.body.buf, "\"k1\"");
    cr_assert(k1 && k2 && k2 < k1, "count order: %s", r.body.buf);
    strbuf_free(&r.body);
    request(port, "GET", "/api/v1/errors?q=UPSTREAM", &r);
    cr_assert(strstr(r.body.buf, "\"k2\"") && strstr(r.body.buf, "\"total\":1}"), "%s", r.body.buf);
    strbuf_free(&r.body);
    request(port, "GET", "/api/v1/errors?label=env%3Dprod&severity=info", &r);
    cr_assert(strstr(r.body.buf, "\"k3\"") && strstr(r.body.buf, "\"total\":1}"), "%s", r.body.buf);
    strbuf_free(&r.body);
    request(port, "GET", "/api/v1/errors?severity=bogus", &r);
    cr_assert_eq(r.status, 400);
    cr_assert_str_eq(r.body.buf, "{\"status\":\"error\",\"errorType\":\"bad_data\","
                                 "\"error\":\"invalid severity (expected info, warning or error)\"}");
    strbuf_free(&r.body);
    /* a cursor lookout never issued is the client's error (400 bad_data naming the cursor), not a 500 */
    request(port, "GET", "/api/v1/errors?limit=2&cursor=not-a-cursor", &r);
    cr_assert_eq(r.status, 400, "%ld %s", (long)r.status, r.body.buf);
    cr_assert(strstr(r.body.buf, "\"errorType\":\"bad_data\"") && strstr(r.body.buf, "cursor"), "%s", r.body.buf);
    strbuf_free(&r.body);
    /* paging: 3 rows, 2 per page */
    request(port, "GET", "/api/v1/errors?limit=2", &r);
    char *c = strstr(r.body.buf, "\"next_cursor\":\"");
    cr_assert(c, "%s", r.body.buf);
    c += strlen("\"next_cursor\":\"");
    char cursor[256];
    snprintf(cursor, sizeof cursor, "%.*s", (int)strcspn(c, "\""), c);
    strbuf_free(&r.body);
    char path[400];
    snprintf(path, sizeof path, "/api/v1/errors?limit=2&cursor=%s", cursor);
    request(port, "GET", path, &r);
    cr_assert(strstr(r.body.buf, "\"k1\"") && strstr(r.body.buf, "\"next_cursor\":null"), "%s", r.body.buf);
    strbuf_free(&r.body);
}

Test(api_errors, lookout_resolve_reopen_detail_and_jobs)
{
    put("a", "k1", 10, PAYLOAD_ERROR, 1000, "IOError", "disk full", 5000, "prod");
    reply r;
    request(port, "POST", "/api/v1/errors/a/k1/resolve", &r);
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(r.body.buf, "\"status\":\"resolved\""), "%s", r.body.buf);
    strbuf_free(&r.body);
    request(port, "GET", "/api/v1/errors?status=resolved", &r);
    cr_assert(strstr(r.body.buf, "\"total\":1}"), "%s", r.body.buf);
    strbuf_free(&r.body);
    request(port, "GET", "/api/v1/jobs", &r);
    cr_assert(strstr(r.body.buf, "\"job\":\"a\",\"open\":0,\"regressed\":0,\"resolved\":1"), "%s", r.body.buf);
    strbuf_free(&r.body);
    request(port, "POST", "/api/v1/errors/a/k1/reopen", &r);
    cr_assert(strstr(r.body.buf, "\"status\":\"open\""), "%s", r.body.buf);
    strbuf_free(&r.body);
    request(port, "GET", "/api/v1/errors/a/k1", &r);
    cr_assert(strstr(r.body.buf, "\"labels_seen\":[{\"env\":\"prod\",\"job\":\"a\"}]"), "%s", r.body.buf);
    cr_assert(strstr(r.body.buf, "\"samples\":[{\"error\":{\"class\":\"IOError\""), "%s", r.body.buf);
    strbuf_free(&r.body);
    request(port, "POST", "/api/v1/errors/a/nope/resolve", &r);
    cr_assert_eq(r.status, 404);
    cr_assert_str_eq(r.body.buf,
                     "{\"status\":\"error\",\"errorType\":\"not_found\",\"error\":\"error \\\"nope\\\" not found in job \\\"a\\\"\"}");
    strbuf_free(&r.body);
}

static char *metrics_text(void)
{
    strbuf sb;
    strbuf_init(&sb);
    metrics_render(&sb);
    return strbuf_detach(&sb, NULL);
}

/* lookout_errors{job,status}: every status of every job, 0 included; a resolved error whose count grows
 * counts as regressed. */
Test(api_errors, metrics_errors_by_status)
{
    error_metrics_register(&api);
    put("a", "k1", 5, PAYLOAD_ERROR, 1000, "E", "m", 5000, "prod");
    put("a", "k2", 3, PAYLOAD_ERROR, 1000, "E", "m", 5000, "prod");
    put("a", "k3", 7, PAYLOAD_WARNING, 1000, "E", "m", 5000, "prod");
    put("b", "k1", 1, PAYLOAD_ERROR, 1000, "E", "m", 5000, "prod");
    char err[256];
    cr_assert_eq(store_resolve(st, "a", "k2", 6000, err, sizeof err), 0, "%s", err);
    cr_assert_eq(store_resolve(st, "a", "k3", 6000, err, sizeof err), 0, "%s", err);
    put("a", "k2", 4, PAYLOAD_ERROR, 1000, "E", "m", 7000, "prod"); /* count grows after resolve */
    char *m = metrics_text();
    const char *want[] = {
        "lookout_errors{job=\"a\",status=\"open\"} 1\n",     "lookout_errors{job=\"a\",status=\"regressed\"} 1\n",
        "lookout_errors{job=\"a\",status=\"resolved\"} 1\n", "lookout_errors{job=\"b\",status=\"open\"} 1\n",
        "lookout_errors{job=\"b\",status=\"regressed\"} 0\n", "lookout_errors{job=\"b\",status=\"resolved\"} 0\n",
        "# TYPE lookout_errors gauge\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_assert(strstr(m, want[i]), "missing %s in:\n%s", want[i], m);
    free(m);
    error_metrics_unregister(&api);
}

/* lookout_http_requests_total{handler,code}: handler is the route (prefix routes end in '*'), "other"
 * for paths no route serves; never the raw path. */
Test(api_errors, metrics_http_requests_by_route)
{
    put("a", "k1", 5, PAYLOAD_ERROR, 1000, "E", "m", 5000, "prod");
    reply r;
    request(port, "GET", "/api/v1/jobs", &r);
    strbuf_free(&r.body);
    request(port, "GET", "/api/v1/errors/a/k1", &r);
    strbuf_free(&r.body);
    request(port, "GET", "/api/v1/errors/a/nope", &r);
    cr_assert_eq(r.status, 404);
    strbuf_free(&r.body);
    request(port, "GET", "/no/such/path", &r);
    strbuf_free(&r.body);
    char *m = metrics_text();
    const char *want[] = {
        "lookout_http_requests_total{handler=\"/api/v1/jobs\",code=\"200\"} 1\n",
        "lookout_http_requests_total{handler=\"/api/v1/errors/*\",code=\"200\"} 1\n",
        "lookout_http_requests_total{handler=\"/api/v1/errors/*\",code=\"404\"} 1\n",
        "lookout_http_requests_total{handler=\"other\",code=\"404\"} 1\n",
        "lookout_http_request_duration_seconds_count{handler=\"/api/v1/errors/*\"} 2\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_assert(strstr(m, want[i]), "missing %s in:\n%s", want[i], m);
    cr_assert_null(strstr(m, "/no/such/path"), "a raw path became a label");
    free(m);
}

Test(api_errors, self_exceptions_served_in_client_format)
{
    selfexc_report(sx, "scrape-error", "ScrapeError", "boom", PAYLOAD_ERROR, "GET", "http://x/");
    reply r;
    request(port, "GET", "/-/exceptions", &r);
    cr_assert(strstr(r.body.buf, "\"aggregation_key\":\"scrape-error\""), "%s", r.body.buf);
    cr_assert(strstr(r.body.buf, "\"target_uuid\""));
    strbuf_free(&r.body);
    request(port, "GET", "/errors", &r);
    cr_assert(strstr(r.body.buf, "scrape-error"));
    strbuf_free(&r.body);
}

/* The search language through the API: fields, negation and phrases ANDed with the other parameters;
 * a malformed or over-long q is the user's 400 naming the problem, never lookout's own exception. */
Test(api_errors, search_language_in_q)
{
    put("a", "k1", 10, PAYLOAD_ERROR, 1000, "IOError", "disk full", 5000, "prod");
    put("a", "k2", 20, PAYLOAD_WARNING, 1000, "Timeout", "slow upstream", 6000, "dev");
    put("b", "k3", 30, PAYLOAD_INFO, 1000, "Note", "fyi", 7000, "prod");
    reply r;
    request(port, "GET", "/api/v1/errors?q=env:prod%20-severity:info", &r);
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(r.body.buf, "\"k1\"") && strstr(r.body.buf, "\"total\":1}"), "%s", r.body.buf);
    strbuf_free(&r.body);
    request(port, "GET", "/api/v1/errors?q=%22slow%20upstream%22%20class:time&job=a", &r);
    cr_assert(strstr(r.body.buf, "\"k2\"") && strstr(r.body.buf, "\"total\":1}"), "%s", r.body.buf);
    strbuf_free(&r.body);
    request(port, "GET", "/api/v1/errors?q=severity:warning&severity=error", &r); /* ANDed: nothing */
    cr_assert(strstr(r.body.buf, "\"total\":0}"), "%s", r.body.buf);
    strbuf_free(&r.body);
    request(port, "GET", "/api/v1/errors?q=is:closed", &r);
    cr_assert_eq(r.status, 400);
    cr_assert_str_eq(r.body.buf, "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"invalid q: unknown "
                                 "is: value \\\"closed\\\" (expected open, resolved or regressed)\"}");
    strbuf_free(&r.body);
    request(port, "GET", "/api/v1/errors?q=%22disk%20full", &r);
    cr_assert_eq(r.status, 400);
    cr_assert(strstr(r.body.buf, "unclosed quote in search query (the quote at position 1)"), "%s", r.body.buf);
    strbuf_free(&r.body);
    /* issue 12: 1,500 two-letter words answered 500 and recorded a self-exception */
    char path[8000] = "/api/v1/errors?q=";
    for (int i = 0; i < 1500; i++)
        strcat(path, i ? "+ab" : "ab");
    request(port, "GET", path, &r);
    cr_assert_eq(r.status, 400);
    cr_assert(strstr(r.body.buf, "search query too long (4499 bytes, at most 2048)"), "%s", r.body.buf);
    strbuf_free(&r.body);
    strcpy(path, "/api/v1/errors?q=");
    for (int i = 0; i < 40; i++)
        strcat(path, i ? "+ab" : "ab");
    request(port, "GET", path, &r);
    cr_assert_eq(r.status, 400);
    cr_assert(strstr(r.body.buf, "too many search terms (about 40, at most 32)"), "%s", r.body.buf);
    strbuf_free(&r.body);
    size_t len;
    char *exp = selfexc_export(sx, &len);
    cr_assert(strstr(exp, "\"aggregated_errors\":[]"), "no self-exception: %s", exp);
    free(exp);
}

/* A query over its budget (here SQLite's step bound, deterministic) answers 503 timeout and is not
 * recorded as lookout's own exception. */
Test(api_errors, query_over_budget_is_a_timeout_not_a_self_exception)
{
    store_close(st);
    char dir[] = "/tmp/lookout-apibudget-XXXXXX", path[300], err[512];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/db", dir);
    store_options o = {.query_budget_steps = 1};
    st = store_sqlite_new(path, &o, err, sizeof err);
    cr_assert(st, "%s", err);
    api.st = st;
    for (int i = 0; i < 300; i++) {
        char key[32];
        snprintf(key, sizeof key, "key-%d", i);
        put("a", key, 1, PAYLOAD_ERROR, 1000, "IOError", "disk full", 5000 + i, "prod");
    }
    reply r;
    request(port, "GET", "/api/v1/errors?q=class:ioerror", &r);
    cr_assert_eq(r.status, 503, "%s", r.body.buf);
    cr_assert(strstr(r.body.buf, "\"errorType\":\"timeout\""), "%s", r.body.buf);
    cr_assert(strstr(r.body.buf, "query timed out"), "%s", r.body.buf);
    strbuf_free(&r.body);
    size_t len;
    char *exp = selfexc_export(sx, &len);
    cr_assert(strstr(exp, "\"aggregated_errors\":[]"), "no self-exception: %s", exp);
    free(exp);
}

/* ---- cases found by mutation testing (make mutate) ------------------------------------------- */

Test(api_errors, bad_label_filters_and_job_summary_order)
{
    put("zeta", "k1", 1, PAYLOAD_ERROR, 1000, "E", "m", 5000, "prod");
    put("alpha", "k2", 2, PAYLOAD_ERROR, 1000, "E", "m", 5000, "prod");
    put("mid", "k3", 3, PAYLOAD_ERROR, 1000, "E", "m", 5000, "prod");
    static const char *const bad[] = {"/api/v1/errors?label=noequals", "/api/v1/errors?label=%3Dprod"};
    reply r;
    for (size_t i = 0; i < 2; i++) {
        request(port, "GET", bad[i], &r);
        cr_assert_eq(r.status, 400, "%s", bad[i]);
        cr_assert_str_eq(r.body.buf, "{\"status\":\"error\",\"errorType\":\"bad_data\","
                                     "\"error\":\"invalid label filter (expected NAME=VALUE)\"}");
        strbuf_free(&r.body);
    }
    /* limit is a decimal integer: "a" is no number (it would be 10 in base 11) */
    request(port, "GET", "/api/v1/errors?limit=a", &r);
    cr_assert_eq(r.status, 400);
    cr_assert_str_eq(r.body.buf, "{\"status\":\"error\",\"errorType\":\"bad_data\","
                                 "\"error\":\"invalid limit (expected a positive integer)\"}");
    strbuf_free(&r.body);
    /* an action other than resolve/reopen */
    request(port, "POST", "/api/v1/errors/zeta/k1/bogus", &r);
    cr_assert_eq(r.status, 404);
    cr_assert_str_eq(r.body.buf, "{\"status\":\"error\",\"errorType\":\"not_found\","
                                 "\"error\":\"expected /api/v1/errors/{job}/{key}/resolve or /reopen\"}");
    strbuf_free(&r.body);
    /* resolve without a key */
    request(port, "POST", "/api/v1/errors/zeta/resolve", &r);
    cr_assert_eq(r.status, 404);
    cr_assert_str_eq(r.body.buf, "{\"status\":\"error\",\"errorType\":\"not_found\","
                                 "\"error\":\"expected /api/v1/errors/{job}/{key}/resolve or /reopen\"}");
    strbuf_free(&r.body);
    /* the jobs summary lists jobs by name, whatever the store order */
    request(port, "GET", "/api/v1/jobs", &r);
    cr_assert_eq(r.status, 200);
    char *a = strstr(r.body.buf, "\"job\":\"alpha\""), *m = strstr(r.body.buf, "\"job\":\"mid\""),
         *z = strstr(r.body.buf, "\"job\":\"zeta\"");
    cr_assert(a && m && z && a < m && m < z, "%s", r.body.buf);
    strbuf_free(&r.body);
}

/* The Periskop server shape gives created_at in whole Unix seconds, rounded down (also before 1970), and
 * 0 when unknown. */
Test(api_errors, periskop_created_at_seconds)
{
    put("p", "k1", 1, PAYLOAD_ERROR, 1709377364901LL, "E", "m", 1709377364901LL, "x");
    put("p", "k2", 1, PAYLOAD_ERROR, -1500, "E", "m", 1709377364000LL, "x");
    put("p", "k3", 1, PAYLOAD_ERROR, PAYLOAD_TS_NONE, "E", "m", 1709377364000LL, "x");
    reply r;
    request(port, "GET", "/services/p/errors/", &r);
    cr_assert_eq(r.status, 200);
    char *k1 = strstr(r.body.buf, "\"aggregation_key\":\"k1\""), *k2 = strstr(r.body.buf, "\"aggregation_key\":\"k2\""),
         *k3 = strstr(r.body.buf, "\"aggregation_key\":\"k3\"");
    cr_assert(k1 && k2 && k3, "%s", r.body.buf);
    /* created_at is the last field of each aggregate: the first one after its key is its own */
    long long c1, c2, c3;
    cr_assert_eq(sscanf(strstr(k1, "\"created_at\":"), "\"created_at\":%lld}", &c1), 1);
    cr_assert_eq(sscanf(strstr(k2, "\"created_at\":"), "\"created_at\":%lld}", &c2), 1);
    cr_assert_eq(sscanf(strstr(k3, "\"created_at\":"), "\"created_at\":%lld}", &c3), 1);
    cr_assert_eq(c1, 1709377364LL);
    cr_assert_eq(c2, -2);
    cr_assert_eq(c3, 0);
    strbuf_free(&r.body);
}

/* Detail series: per minute, per hour on request, and per hour automatically when the points span more
 * than 6 hours (exactly 6 hours stays per minute). */
static void put_series(const char *key, const int64_t *minutes, const uint64_t *deltas, size_t n)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    cs.v = calloc(1, sizeof(merge_change));
    cs.n = cs.cap = 1;
    merge_change *c = &cs.v[0];
    c->job = strdup("s");
    c->key = strdup(key);
    c->is_new = true;
    c->severity = PAYLOAD_ERROR;
    c->created_at_ms = minutes[0] * 60000;
    c->last_seen_ms = minutes[n - 1] * 60000;
    c->series = calloc(n, sizeof(merge_series_point));
    for (size_t i = 0; i < n; i++) {
        c->series[i] = (merge_series_point){minutes[i], deltas[i]};
        c->total_count += deltas[i];
    }
    c->n_series = c->cap_series = n;
    char err[256];
    cr_assert_eq(store_apply(st, &cs, minutes[n - 1] * 60000 + 1000, err, sizeof err), 0, "%s", err);
    merge_changeset_free(&cs);
}

static char *series_of(const char *path)
{
    reply r;
    request(port, "GET", path, &r);
    cr_assert_eq(r.status, 200, "%s", r.body.buf);
    char *s = strstr(r.body.buf, "\"series\":");
    cr_assert_not_null(s, "%s", r.body.buf);
    char *out = strndup(s, strcspn(s, "}") + 1);
    strbuf_free(&r.body);
    return out;
}

Test(api_errors, detail_series_resolution)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t m0 = ((int64_t)now.tv_sec / 3600 - 10) * 60; /* ten hours ago, on the hour */
    put_series("k", (const int64_t[]){m0, m0 + 1, m0 + 60, m0 + 61, m0 + 421}, (const uint64_t[]){2, 3, 4, 1, 5}, 5);
    put_series("six", (const int64_t[]){m0, m0 + 360}, (const uint64_t[]){1, 1}, 2);
    char start[40], want[512];
    payload_format_time(m0 * 60000, start, sizeof start);
    long long s0 = m0 * 60;

    char *got = series_of("/api/v1/errors/s/k?resolution=minute");
    snprintf(want, sizeof want,
             "\"series\":{\"resolution\":\"minute\",\"step_seconds\":60,\"start\":\"%s\",\"points\":"
             "[[%lld,2],[%lld,3],[%lld,4],[%lld,1],[%lld,5]]}",
             start, s0, s0 + 60, s0 + 3600, s0 + 3660, s0 + 421 * 60);
    cr_assert_str_eq(got, want);
    free(got);

    snprintf(want, sizeof want,
             "\"series\":{\"resolution\":\"hour\",\"step_seconds\":3600,\"start\":\"%s\",\"points\":"
             "[[%lld,5],[%lld,5],[%lld,5]]}",
             start, s0, s0 + 3600, s0 + 7 * 3600);
    got = series_of("/api/v1/errors/s/k?resolution=hour");
    cr_assert_str_eq(got, want);
    free(got);
    got = series_of("/api/v1/errors/s/k"); /* 7 h span: hours */
    cr_assert_str_eq(got, want);
    free(got);

    got = series_of("/api/v1/errors/s/six"); /* exactly 6 h: minutes */
    snprintf(want, sizeof want,
             "\"series\":{\"resolution\":\"minute\",\"step_seconds\":60,\"start\":\"%s\",\"points\":[[%lld,1],[%lld,1]]}",
             start, s0, s0 + 360 * 60);
    cr_assert_str_eq(got, want);
    free(got);
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Targets u<i>:80 of job "up" (i < n), plus u<i>v<k>:80 (every 7th i) when k is odd. */
static void up_targets(int n, int k)
{
    target_group g;
    target_group_init(&g, "static:0");
    for (int i = 0; i < n; i++) {
        char a[32];
        labelset t = LABELSET_INIT;
        snprintf(a, sizeof a, "u%04d:80", i);
        labelset_set(&t, "__address__", a);
        target_group_add_target(&g, &t);
        if (k % 2 && i % 7 == 0) {
            snprintf(a, sizeof a, "u%04dv%d:80", i, k);
            labelset_set(&t, "__address__", a);
            target_group_add_target(&g, &t);
        }
        labelset_free(&t);
    }
    const target_group *gs[] = {&g};
    targets_sync(tm, "up", gs, 1);
    target_group_free(&g);
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* The per-error and per-target series are paged (a step of a streamed /metrics each): the steps
 * concatenated are the whole text, and while targets come and go between steps every target that stays
 * is written exactly once and no series twice. */
Test(api_errors, metrics_paged_per_error_and_per_target)
{
    char err[512] = "";
    const char *yml = "scrape_configs:\n  - job_name: up\n";
    lookout_config *cfg = config_parse(yml, strlen(yml), "t.yml", err, sizeof err);
    cr_assert_not_null(cfg, "%s", err);
    targets_apply_config(tm, cfg);
    up_targets(2000, 0);
    error_metrics_register(&api);
    for (int i = 0; i < 1000; i++) {
        char key[32];
        snprintf(key, sizeof key, "key-%04d", i);
        put(i % 2 ? "a" : "b", key, (uint64_t)i + 1, PAYLOAD_ERROR, 1000 + i, "E", "m", 5000 + i, "prod");
    }
    char *whole = metrics_text();
    strbuf steps;
    strbuf_init(&steps);
    metrics_render_state rs = {0};
    int n = 1;
    while (metrics_render_step(&rs, &steps))
        n++;
    metrics_render_state_free(&rs);
    cr_assert_str_eq(steps.buf, whole);
    cr_assert_geq(n, 6, "steps: %d", n); /* 1000 errors in pages of 300, 2000 targets in pages of 32 KiB */
    cr_assert_eq(count_of(whole, "lookout_error_occurrences_total{job=\"a\",severity=\"error\",aggregation_key=\"key-0999\"} 1000\n"), 1);
    cr_assert_eq(count_of(whole, "lookout_error_occurrences_total{"), 1000);
    cr_assert_eq(count_of(whole, "lookout_target_up{"), 2000);
    cr_assert_eq(count_of(whole, "# TYPE lookout_target_up gauge\n"), 1);

    /* Targets change after every step. */
    strbuf_reset(&steps);
    metrics_render_state rs2 = {0};
    int k = 0;
    while (metrics_render_step(&rs2, &steps)) {
        k++;
        cr_assert_lt(k, 200, "the rendering does not end");
        up_targets(2000, k);
    }
    metrics_render_state_free(&rs2);
    for (int i = 0; i < 2000; i += 37) {
        char line[96];
        snprintf(line, sizeof line, "lookout_target_up{job=\"up\",instance=\"u%04d:80\"} 0\n", i);
        cr_assert_eq(count_of(steps.buf, line), 1, "%s", line);
    }
    cr_assert_geq(count_of(steps.buf, "lookout_target_up{"), 2000);
    /* no series twice: every line of lookout_target_up distinct */
    char *copy = strdup(steps.buf);
    size_t nl = 0;
    char **lines = NULL;
    for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (strncmp(l, "lookout_target_up{", 18) == 0) {
            lines = realloc(lines, (nl + 1) * sizeof *lines);
            lines[nl++] = l;
        }
    qsort(lines, nl, sizeof *lines, cmp_strp);
    for (size_t i = 1; i < nl; i++)
        cr_assert_str_neq(lines[i - 1], lines[i]);
    free(lines);
    free(copy);
    strbuf_free(&steps);
    free(whole);
    error_metrics_unregister(&api);
    targets_apply_config(tm, NULL);
    config_free(cfg);
}

/* Per job at most max_errors_per_job per-error series (the newest first seen, across the store's pages, plus
 * lookout.overflow), however many errors the store holds (one filled by a lookout with a larger cap);
 * lookout_store_errors still says how many there are. */
Test(api_errors, metrics_per_error_series_capped_per_job)
{
    api.max_errors_per_job = 250;
    error_metrics_register(&api);
    for (int i = 0; i < 700; i++) {
        char key[32];
        snprintf(key, sizeof key, "key-%04d", i);
        put("c", key, 1, PAYLOAD_ERROR, 1000 + i, "E", "m", 5000 + i, "prod");
    }
    put("c", MERGE_OVERFLOW_KEY, 9, PAYLOAD_INFO, 900, "E", "m", 5000, "prod");
    for (int i = 0; i < 5; i++) {
        char key[32];
        snprintf(key, sizeof key, "d-%d", i);
        put("d", key, 2, PAYLOAD_ERROR, 1000 + i, "E", "m", 5000 + i, "prod");
    }
    char *m = metrics_text();
    cr_assert_eq(count_of(m, "lookout_error_occurrences_total{job=\"c\","), 251);
    cr_assert_eq(count_of(m, "aggregation_key=\"key-0450\"} 1\n"), 1);
    cr_assert_eq(count_of(m, "aggregation_key=\"key-0449\"}"), 0);
    cr_assert_eq(count_of(m, "lookout_error_occurrences_total{job=\"c\",severity=\"info\",aggregation_key=\"lookout.overflow\"} 9\n"), 1);
    cr_assert_eq(count_of(m, "lookout_error_occurrences_total{job=\"d\","), 5);
    cr_assert_eq(count_of(m, "lookout_store_errors{job=\"c\"} 701\n"), 1);
    free(m);
    error_metrics_unregister(&api);
    api.max_errors_per_job = 0;
}

/* Periskop's GET /targets/: each job with its active targets' endpoints (the URL after "://", the default path /-/exceptions), in pool
 * and display order; a pool without targets is an empty list. */
Test(api_errors, periskop_targets_lists_endpoints)
{
    char err[512] = "";
    const char *yml = "scrape_configs:\n  - job_name: up\n  - job_name: zz\n";
    lookout_config *cfg = config_parse(yml, strlen(yml), "t.yml", err, sizeof err);
    cr_assert_not_null(cfg, "%s", err);
    targets_apply_config(tm, cfg);
    up_targets(2, 0);
    reply r;
    request(port, "GET", "/targets/", &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body.buf, "{\"up\":[{\"endpoint\":\"u0000:80/-/exceptions\"},{\"endpoint\":\"u0001:80/-/exceptions\"}],"
                                 "\"zz\":[]}\n");
    strbuf_free(&r.body);
    /* the configured jobs are services, with or without errors */
    request(port, "GET", "/services/", &r);
    cr_assert_str_eq(r.body.buf, "[\"up\",\"zz\"]\n");
    strbuf_free(&r.body);
    targets_apply_config(tm, NULL);
    config_free(cfg);
}
