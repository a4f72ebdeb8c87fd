/* HTTP SD: response validation (status, Content-Type as Prometheus' regexp, file_sd JSON), configuration,
 * and the provider against tests/fakes/http_sd.py (changes, shrinking lists, failures keep targets). */
#include <criterion/criterion.h>

#include "fake_util.h"
#include "sd/sd_remote.h"
#include "sd_test_util.h"
#include "util/metrics.h"

#define URL "http://sd.example:8080/targets"

Test(sd_http_parse, groups_sources_and_url_label)
{
    const char *body = "[{\"targets\":[\"a:1\",\"b:2\"],\"labels\":{\"env\":\"prod\"}},{\"targets\":[\"c:3\"]}]";
    target_group *g;
    size_t n;
    char err[256];
    cr_assert_eq(http_sd_parse_response(URL, 200, "application/json", body, strlen(body), &g, &n, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(g[0].source, URL ":0");
    cr_assert_str_eq(g[1].source, URL ":1");
    cr_assert_str_eq(labelset_get(&g[0].labels, "__meta_url"), URL);
    cr_assert_null(labelset_get(&g[0].labels, "__meta_filepath"));
    cr_assert_str_eq(labelset_get(&g[0].labels, "env"), "prod");
    cr_assert_str_eq(labelset_get(&g[1].labels, "__meta_url"), URL);
    cr_assert_str_eq(labelset_get(&g[0].targets[1], "__address__"), "b:2");
    sd_groups_free(g, n);
    cr_assert_eq(http_sd_parse_response(URL, 200, "application/json", "null", 4, &g, &n, err, sizeof err), 0);
    cr_assert_eq(n, 0);
    sd_groups_free(g, n);
}

Test(sd_http_parse, content_type_like_prometheus)
{
    static const char *const ok[] = {"application/json", "Application/JSON", " application/json ",
                                      "application/json; charset=utf-8", "application/json;charset=UTF-8",
                                      "application/json;  charset=\"utf-8\""};
    static const char *const bad[] = {"", "text/plain", "application/json; charset=latin1", "application/jsonx",
                                      "application/json;", "application/json charset=utf-8", "text/json"};
    target_group *g;
    size_t n;
    char err[256];
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        cr_assert_eq(http_sd_parse_response(URL, 200, ok[i], "[]", 2, &g, &n, err, sizeof err), 0, "%s: %s", ok[i], err);
        sd_groups_free(g, n);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_eq(http_sd_parse_response(URL, 200, bad[i], "[]", 2, &g, &n, err, sizeof err), -1, "%s", bad[i]);
        cr_assert(strstr(err, "unsupported content type"), "%s", err);
    }
}

Test(sd_http_parse, failures)
{
    target_group *g;
    size_t n;
    char err[256];
    cr_assert_eq(http_sd_parse_response(URL, 404, "application/json", "[]", 2, &g, &n, err, sizeof err), -1);
    cr_assert_str_eq(err, "server returned HTTP status 404 Not Found");
    static const char *const bad[] = {"", "{", "{}", "[null]", "[{\"targets\":\"a\"}]", "[{\"foo\":1}]",
                                      "[{\"labels\":{\"bad-name\":\"x\"}}]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(http_sd_parse_response(URL, 200, "application/json", bad[i], strlen(bad[i]), &g, &n, err, sizeof err),
                     -1, "case %zu", i);
}

static lookout_config *load(const char *block, char *err, size_t errlen)
{
    char y[1024];
    snprintf(y, sizeof y, "scrape_configs:\n- job_name: h\n  http_sd_configs:\n%s", block);
    return config_parse(y, strlen(y), "test.yml", err, errlen);
}

Test(sd_http_config, defaults_and_errors)
{
    char err[512];
    lookout_config *c = load("  - url: http://x:1/sd\n    basic_auth: {username: u, password: p}\n", err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    const http_sd_config *h = &c->scrape_configs[0].sd_configs[0].u.http;
    cr_assert_str_eq(h->url, "http://x:1/sd");
    cr_assert_eq(h->refresh_interval_ms, 60000);
    cr_assert(h->http.has_basic_auth);
    config_free(c);
    static const struct {
        const char *yaml, *want;
    } bad[] = {
        {"  - refresh_interval: 5s\n", "URL is missing"},
        {"  - url: ftp://x/\n", "URL scheme must be 'http' or 'https'"},
        {"  - url: http:///path\n", "host is missing in URL"},
        {"  - url: 'http:x'\n", "host is missing in URL"},
        {"  - url: http://x/\n    files: [a]\n", "field files not found"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        c = load(bad[i].yaml, err, sizeof err);
        cr_assert_null(c, "case %zu loaded", i);
        cr_assert(strstr(err, bad[i].want), "case %zu: %s", i, err);
    }
}

/* ---- live ---- */

static fake_proc FP;
static recorder REC;
static sd_manager *MGR;
static lookout_config *CFG;

static void setup(void)
{
    memset(&FP, 0, sizeof FP);
    rec_init(&REC);
    cr_assert_eq(fake_start(&FP, "tests/fakes/http_sd.py", 0, NULL), 0);
}

static void teardown(void)
{
    if (MGR)
        sd_manager_free(MGR);
    MGR = NULL;
    if (CFG)
        config_free(CFG);
    CFG = NULL;
    fake_stop(&FP);
    rec_free(&REC);
}

static void set(const char *json)
{
    cr_assert_eq(fake_post(FP.port, "/_test/set", json), 200);
}

static bool pred_n(const rec_call *c, void *arg)
{
    return call_targets(c) == (size_t)(uintptr_t)arg;
}

TestSuite(sd_http_live, .init = setup, .fini = teardown, .timeout = 30);

Test(sd_http_live, refreshes_shrinks_and_keeps_on_failure)
{
    set("{\"body\": \"[{\\\"targets\\\":[\\\"a:1\\\",\\\"b:2\\\"]},{\\\"targets\\\":[\\\"c:3\\\"]}]\"}");
    char block[256], err[512];
    snprintf(block, sizeof block, "  - url: http://127.0.0.1:%d/targets\n    refresh_interval: 200ms\n", FP.port);
    CFG = load(block, err, sizeof err);
    cr_assert_not_null(CFG, "%s", err);
    MGR = sd_manager_new(rec_sync, &REC, 20);
    cr_assert_eq(sd_manager_apply_config(MGR, CFG), 0);
    const rec_call *c = rec_wait_for(&REC, "h", pred_n, (void *)(uintptr_t)3, 5000);
    cr_assert_not_null(c);
    char *hdrs = NULL;
    fake_request(FP.port, "GET", "/_test/headers", NULL, &hdrs);
    cr_assert(strstr(hdrs, "\"Accept\": \"application/json\""), "%s", hdrs);
    cr_assert(strstr(hdrs, "\"X-Prometheus-Refresh-Interval-Seconds\": \"0.2\""), "%s", hdrs);
    free(hdrs);

    /* one group fewer: its source is emptied */
    set("{\"body\": \"[{\\\"targets\\\":[\\\"a:1\\\"]}]\"}");
    c = rec_wait_for(&REC, "h", pred_n, (void *)(uintptr_t)1, 5000);
    cr_assert_not_null(c);
    char src[128];
    snprintf(src, sizeof src, "http://127.0.0.1:%d/targets:1", FP.port);
    cr_assert_null(call_group(c, src));
    /* a group in the middle loses its targets: its source is emptied, the later one stays */
    set("{\"body\": \"[{\\\"targets\\\":[\\\"a:1\\\"]},{\\\"targets\\\":[\\\"m:1\\\"]},{\\\"targets\\\":[\\\"z:1\\\"]}]\"}");
    cr_assert_not_null(rec_wait_for(&REC, "h", pred_n, (void *)(uintptr_t)3, 5000));
    set("{\"body\": \"[{\\\"targets\\\":[\\\"a:1\\\"]},{},{\\\"targets\\\":[\\\"z:1\\\"]}]\"}");
    c = rec_wait_for(&REC, "h", pred_n, (void *)(uintptr_t)2, 5000);
    cr_assert_not_null(c);
    cr_assert_null(call_group(c, src));
    snprintf(src, sizeof src, "http://127.0.0.1:%d/targets:2", FP.port);
    cr_assert_not_null(call_group(c, src));
    set("{\"body\": \"[{\\\"targets\\\":[\\\"a:1\\\"]}]\"}");
    cr_assert_not_null(rec_wait_for(&REC, "h", pred_n, (void *)(uintptr_t)1, 5000));

    metric_family *f = metric_family_get("lookout_sd_http_failures_total", METRIC_COUNTER,
                                         "Number of HTTP service discovery refresh failures.", 0, NULL);
    static const char *const failures[] = {
        "{\"status\": 500, \"body\": \"[]\"}",
        "{\"status\": 200, \"content_type\": \"text/plain\", \"body\": \"[]\"}",
        "{\"status\": 200, \"content_type\": \"application/json\", \"body\": \"[{\"}",
    };
    for (size_t i = 0; i < 3; i++) {
        double before = metric_value(f, NULL);
        set(failures[i]);
        int64_t end = sd_now_mono_ms() + 3000;
        while (metric_value(f, NULL) <= before && sd_now_mono_ms() < end)
            sleep_ms(20);
        cr_assert_gt(metric_value(f, NULL), before, "failure %zu not counted", i);
        cr_assert_eq(call_targets(rec_last(&REC, "h")), 1, "failure %zu must keep the targets", i);
    }
    set("{\"status\": 200, \"content_type\": \"application/json; charset=utf-8\", \"body\": \"[]\"}");
    cr_assert_not_null(rec_wait_for(&REC, "h", pred_n, (void *)(uintptr_t)0, 5000));
}

/* A server that never answers in time: each refresh gives up at the interval (a counted failure, no
 * targets), and stopping does not wait for the answer (it would hang until the suite's timeout). */
Test(sd_http_live, slow_server_times_out_at_the_interval_and_stop_is_prompt)
{
    set("{\"body\": \"[{\\\"targets\\\":[\\\"a:1\\\"]}]\", \"delay_ms\": 600000}");
    metric_family *f = metric_family_get("lookout_sd_http_failures_total", METRIC_COUNTER,
                                         "Number of HTTP service discovery refresh failures.", 0, NULL);
    double before = metric_value(f, NULL);
    char block[256], err[512];
    snprintf(block, sizeof block, "  - url: http://127.0.0.1:%d/targets\n    refresh_interval: 300ms\n", FP.port);
    CFG = load(block, err, sizeof err);
    cr_assert_not_null(CFG, "%s", err);
    MGR = sd_manager_new(rec_sync, &REC, 20);
    cr_assert_eq(sd_manager_apply_config(MGR, CFG), 0);
    /* two refreshes gave up: the provider is past its first timeout and inside another request */
    int64_t guard = sd_now_mono_ms() + 20000;
    while (metric_value(f, NULL) < before + 2 && sd_now_mono_ms() < guard)
        sleep_ms(20);
    cr_assert_geq(metric_value(f, NULL), before + 2, "the refreshes did not time out");
    const rec_call *c = rec_last(&REC, "h");
    cr_assert(!c || !call_has_address(c, "a:1"), "the late answer must not count");
    sd_manager_free(MGR);
    MGR = NULL;
}
