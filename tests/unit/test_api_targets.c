/* /api/v1/targets and relabel_steps JSON (rendered without a socket), Go-compatible numbers and times,
 * globalUrl, and the HTML pages' escaping and paging. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "api/apiutil.h"
#include "api/targets_api.h"
#include "api/targets_page.h"
#include "config/config.h"
#include "scrape/targets.h"
#include "sd/sd.h"

static lookout_config *parse(const char *yaml)
{
    char err[512] = "";
    lookout_config *cfg = config_parse(yaml, strlen(yaml), "test.yml", err, sizeof err);
    cr_assert_not_null(cfg, "config: %s", err);
    return cfg;
}

static char *fmt_float(double v)
{
    static char buf[64];
    strbuf sb;
    strbuf_init(&sb);
    api_json_float(&sb, v);
    snprintf(buf, sizeof buf, "%s", sb.buf);
    strbuf_free(&sb);
    return buf;
}

Test(apiutil, go_floats)
{
    cr_assert_str_eq(fmt_float(0), "0");
    cr_assert_str_eq(fmt_float(0.5), "0.5");
    cr_assert_str_eq(fmt_float(1), "1");
    cr_assert_str_eq(fmt_float(0.001234), "0.001234");
    cr_assert_str_eq(fmt_float(0.000001), "0.000001");
    cr_assert_str_eq(fmt_float(1e-7), "1e-7");
    cr_assert_str_eq(fmt_float(1.25e-10), "1.25e-10");
    cr_assert_str_eq(fmt_float(123456789), "123456789");
    cr_assert_str_eq(fmt_float(1e20), "100000000000000000000");
    cr_assert_str_eq(fmt_float(1.5e21), "1.5e+21");
    cr_assert_str_eq(fmt_float(0.1 + 0.2), "0.30000000000000004");
    cr_assert_str_eq(fmt_float(-2.5), "-2.5");
}

static char *fmt_time(int64_t ms)
{
    static char buf[64];
    strbuf sb;
    strbuf_init(&sb);
    api_json_time(&sb, ms);
    snprintf(buf, sizeof buf, "%s", sb.buf);
    strbuf_free(&sb);
    return buf;
}

Test(apiutil, go_times)
{
    cr_assert_str_eq(fmt_time(0), "\"0001-01-01T00:00:00Z\"");
    cr_assert_str_eq(fmt_time(1700000000123), "\"2023-11-14T22:13:20.123Z\"");
    cr_assert_str_eq(fmt_time(1700000000100), "\"2023-11-14T22:13:20.1Z\"");
    cr_assert_str_eq(fmt_time(1700000000000), "\"2023-11-14T22:13:20Z\"");
}

static char *gurl(const char *url, const char *listen, int *rc)
{
    static char buf[256];
    strbuf sb;
    strbuf_init(&sb);
    char err[256];
    *rc = targets_api_global_url(url, listen, "myhost", &sb, err, sizeof err);
    snprintf(buf, sizeof buf, "%s", sb.buf);
    strbuf_free(&sb);
    return buf;
}

Test(targets_api, global_url)
{
    int rc;
    cr_assert_str_eq(gurl("http://localhost:9100/metrics", ":7777", &rc), "http://myhost:9100/metrics");
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(gurl("http://localhost:7777/-/exceptions", ":7777", &rc), "http://myhost:7777/-/exceptions");
    cr_assert_str_eq(gurl("https://127.0.0.1:7777/x?a=b", "0.0.0.0:7777", &rc), "http://myhost:7777/x?a=b");
    cr_assert_str_eq(gurl("http://[::1]:9100/x", ":7777", &rc), "http://myhost:9100/x");
    cr_assert_str_eq(gurl("http://10.0.0.1:80/x", ":7777", &rc), "http://10.0.0.1:80/x");
    cr_assert_str_eq(gurl("http://example.com:80/x", ":7777", &rc), "http://example.com:80/x");
    cr_assert_str_eq(gurl("http://localhost/x", ":7777", &rc), "http://myhost/x");
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(gurl("http://[::1]/x", ":7777", &rc), "http://myhost/x");
    cr_assert_eq(rc, 0);
    /* no scheme: not a URL Go's url.Parse would give a host for, kept as it is */
    cr_assert_str_eq(gurl("localhost:9100/x", ":7777", &rc), "localhost:9100/x");
    cr_assert_eq(rc, 0);
    /* an IPv6 hostname is bracketed, as Go's net.JoinHostPort does */
    strbuf sb;
    strbuf_init(&sb);
    char err[256];
    cr_assert_eq(targets_api_global_url("http://localhost:9100/x", ":7777", "fe80::1", &sb, err, sizeof err), 0);
    cr_assert_str_eq(sb.buf, "http://[fe80::1]:9100/x");
    strbuf_reset(&sb);
    cr_assert_eq(targets_api_global_url("http://localhost:7777/x", ":7777", "fe80::1", &sb, err, sizeof err), 0);
    cr_assert_str_eq(sb.buf, "http://[fe80::1]:7777/x");
    strbuf_free(&sb);
}

typedef struct fixture {
    lookout_config *cfg;
    target_manager *tm;
    targets_api api;
} fixture;

static void add(target_group *g, const char *addr, const char *lname, const char *lvalue)
{
    labelset t = LABELSET_INIT;
    labelset_set(&t, "__address__", addr);
    if (lname)
        labelset_set(&t, lname, lvalue);
    target_group_add_target(g, &t);
    labelset_free(&t);
}

static void setup(fixture *f)
{
    f->cfg = parse("global:\n"
                   "  scrape_interval: 90s\n"
                   "scrape_configs:\n"
                   "  - job_name: web\n"
                   "    relabel_configs:\n"
                   "      - source_labels: [__address__]\n"
                   "        regex: 'skip.*'\n"
                   "        action: drop\n"
                   "      - target_label: team\n"
                   "        replacement: a<b>\n"
                   "  - job_name: api\n"
                   "    scrape_interval: 15s\n");
    f->tm = targets_new();
    targets_apply_config(f->tm, f->cfg);
    targets_api_init(&f->api, f->tm, ":7777", "myhost");
    target_group g;
    target_group_init(&g, "static:0");
    labelset_set(&g.labels, "env", "prod");
    add(&g, "localhost:9100", NULL, NULL);
    add(&g, "skip:1", NULL, NULL);
    add(&g, "b:2", "__meta_x", "y");
    const target_group *gs[] = {&g};
    targets_sync(f->tm, "web", gs, 1);
    target_group_free(&g);
    target_group_init(&g, "static:0");
    add(&g, "api:8080", NULL, NULL);
    targets_sync(f->tm, "api", gs, 1);
    target_group_free(&g);
}

static void teardown(fixture *f)
{
    targets_free(f->tm);
    config_free(f->cfg);
}

static json_t *render(fixture *f, const char *state, const char *pool, char **raw)
{
    strbuf sb;
    strbuf_init(&sb);
    targets_api_render(&f->api, state, pool, &sb);
    json_error_t e;
    json_t *j = json_loads(sb.buf, 0, &e);
    cr_assert_not_null(j, "invalid JSON (%s): %s", e.text, sb.buf);
    if (raw)
        *raw = strbuf_detach(&sb, NULL); /* re-initialises sb, which is freed below */
    strbuf_free(&sb);
    return j;
}

Test(targets_api, response_shape)
{
    fixture f;
    setup(&f);
    char *raw;
    json_t *j = render(&f, NULL, NULL, &raw);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "success");
    json_t *data = json_object_get(j, "data");
    json_t *active = json_object_get(data, "activeTargets");
    cr_assert_eq(json_array_size(active), 3);
    /* pools sorted: api first; within web, sorted by URL */
    json_t *t0 = json_array_get(active, 0);
    cr_assert_str_eq(json_string_value(json_object_get(t0, "scrapePool")), "api");
    cr_assert_str_eq(json_string_value(json_object_get(t0, "scrapeInterval")), "15s");
    cr_assert_str_eq(json_string_value(json_object_get(t0, "scrapeTimeout")), "10s");
    json_t *t1 = json_array_get(active, 1);
    cr_assert_str_eq(json_string_value(json_object_get(t1, "scrapeUrl")), "http://b:2/-/exceptions");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(t1, "discoveredLabels"), "__meta_x")), "y");
    cr_assert_null(json_object_get(json_object_get(t1, "labels"), "__meta_x"));
    json_t *t2 = json_array_get(active, 2);
    cr_assert_str_eq(json_string_value(json_object_get(t2, "scrapeUrl")), "http://localhost:9100/-/exceptions");
    cr_assert_str_eq(json_string_value(json_object_get(t2, "globalUrl")), "http://myhost:9100/-/exceptions");
    cr_assert_str_eq(json_string_value(json_object_get(t2, "scrapeInterval")), "1m30s");
    json_t *labels = json_object_get(t2, "labels");
    cr_assert_eq(json_object_size(labels), 4, "job, instance, env, team only (no __ labels)");
    cr_assert_str_eq(json_string_value(json_object_get(labels, "instance")), "localhost:9100");
    cr_assert_str_eq(json_string_value(json_object_get(labels, "team")), "a<b>");
    cr_assert_str_eq(json_string_value(json_object_get(t2, "health")), "unknown");
    cr_assert_str_eq(json_string_value(json_object_get(t2, "lastError")), "");
    cr_assert_str_eq(json_string_value(json_object_get(t2, "lastScrape")), "0001-01-01T00:00:00Z");
    cr_assert(json_is_integer(json_object_get(t2, "lastScrapeDuration")));
    /* exact key order of Prometheus' Target struct */
    const char *keys[] = {"\"discoveredLabels\":", "\"labels\":", "\"scrapePool\":", "\"scrapeUrl\":",
                          "\"globalUrl\":", "\"lastError\":", "\"lastScrape\":", "\"lastScrapeDuration\":",
                          "\"health\":", "\"scrapeInterval\":", "\"scrapeTimeout\":"};
    const char *pos = raw;
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *q = strstr(pos, keys[i]);
        cr_assert_not_null(q, "key %s out of order", keys[i]);
        pos = q;
    }
    /* Go escapes < and > in JSON strings */
    cr_assert_not_null(strstr(raw, "\"a\\u003cb\\u003e\""));
    free(raw);

    json_t *dropped = json_object_get(data, "droppedTargets");
    cr_assert_eq(json_array_size(dropped), 1);
    json_t *d0 = json_array_get(dropped, 0);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(d0, "discoveredLabels"), "__address__")),
                     "skip:1");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(d0, "discoveredLabels"), "job")), "web");
    json_t *counts = json_object_get(data, "droppedTargetCounts");
    cr_assert_eq(json_integer_value(json_object_get(counts, "web")), 1);
    cr_assert_eq(json_integer_value(json_object_get(counts, "api")), 0);
    json_decref(j);
    teardown(&f);
}

Test(targets_api, state_and_pool_filters)
{
    fixture f;
    setup(&f);
    json_t *j = render(&f, "active", NULL, NULL);
    json_t *data = json_object_get(j, "data");
    cr_assert_eq(json_array_size(json_object_get(data, "activeTargets")), 3);
    cr_assert_eq(json_array_size(json_object_get(data, "droppedTargets")), 0);
    cr_assert(json_is_null(json_object_get(data, "droppedTargetCounts")));
    json_decref(j);

    j = render(&f, "Dropped", "web", NULL);
    data = json_object_get(j, "data");
    cr_assert_eq(json_array_size(json_object_get(data, "activeTargets")), 0);
    cr_assert_eq(json_array_size(json_object_get(data, "droppedTargets")), 1);
    json_decref(j);

    j = render(&f, "any", "api", NULL);
    data = json_object_get(j, "data");
    cr_assert_eq(json_array_size(json_object_get(data, "activeTargets")), 1);
    cr_assert_eq(json_array_size(json_object_get(data, "droppedTargets")), 0);
    /* counts are for every pool, as Prometheus */
    cr_assert_eq(json_object_size(json_object_get(data, "droppedTargetCounts")), 2);
    json_decref(j);

    j = render(&f, "bogus", NULL, NULL);
    data = json_object_get(j, "data");
    cr_assert_eq(json_array_size(json_object_get(data, "activeTargets")), 0);
    cr_assert_eq(json_array_size(json_object_get(data, "droppedTargets")), 0);
    json_decref(j);

    /* scrape results show up */
    targets_read_begin(f.tm);
    uint64_t h = targets_pool_find(f.tm, "api")->active[0]->t.hash;
    targets_read_end(f.tm);
    targets_report_scrape(f.tm, "api", h, "boom", 1700000000123, 0.0125);
    j = render(&f, "active", "api", NULL);
    json_t *t = json_array_get(json_object_get(json_object_get(j, "data"), "activeTargets"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(t, "health")), "down");
    cr_assert_str_eq(json_string_value(json_object_get(t, "lastError")), "boom");
    cr_assert_str_eq(json_string_value(json_object_get(t, "lastScrape")), "2023-11-14T22:13:20.123Z");
    cr_assert_float_eq(json_real_value(json_object_get(t, "lastScrapeDuration")), 0.0125, 1e-12);
    json_decref(j);
    teardown(&f);
}

Test(targets_api, relabel_steps)
{
    fixture f;
    setup(&f);
    strbuf sb;
    strbuf_init(&sb);
    char err[256];
    int rc = targets_api_render_relabel_steps(&f.api, "web", "{\"__address__\":\"a:1\",\"job\":\"web\"}", &sb, err,
                                              sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(sb.buf,
                     "{\"status\":\"success\",\"data\":{\"steps\":["
                     "{\"rule\":{\"source_labels\":[\"__address__\"],\"separator\":\";\",\"regex\":\"skip.*\","
                     "\"replacement\":\"$1\",\"action\":\"drop\"},"
                     "\"output\":{\"__address__\":\"a:1\",\"job\":\"web\"},\"keep\":true},"
                     "{\"rule\":{\"separator\":\";\",\"regex\":\"(.*)\",\"target_label\":\"team\","
                     "\"replacement\":\"a\\u003cb\\u003e\",\"action\":\"replace\"},"
                     "\"output\":{\"__address__\":\"a:1\",\"job\":\"web\",\"team\":\"a\\u003cb\\u003e\"},"
                     "\"keep\":true}]}}");
    strbuf_reset(&sb);
    rc = targets_api_render_relabel_steps(&f.api, "web", "{\"__address__\":\"skip:1\"}", &sb, err, sizeof err);
    cr_assert_eq(rc, 0);
    json_t *j = json_loads(sb.buf, 0, NULL);
    json_t *steps = json_object_get(json_object_get(j, "data"), "steps");
    cr_assert_eq(json_array_size(steps), 2, "every rule is listed, also after a drop");
    cr_assert(json_is_false(json_object_get(json_array_get(steps, 0), "keep")));
    cr_assert_eq(json_object_size(json_object_get(json_array_get(steps, 0), "output")), 0);
    cr_assert(json_is_false(json_object_get(json_array_get(steps, 1), "keep")));
    json_decref(j);

    strbuf_reset(&sb);
    cr_assert_eq(targets_api_render_relabel_steps(&f.api, NULL, "{}", &sb, err, sizeof err), -1);
    cr_assert_str_eq(err, "no scrapePool parameter provided");
    cr_assert_eq(targets_api_render_relabel_steps(&f.api, "web", NULL, &sb, err, sizeof err), -1);
    cr_assert_str_eq(err, "no labels parameter provided");
    cr_assert_eq(targets_api_render_relabel_steps(&f.api, "nope", "{}", &sb, err, sizeof err), -1);
    cr_assert_str_eq(err, "error retrieving scrape config: scrape pool \"nope\" not found");
    cr_assert_eq(targets_api_render_relabel_steps(&f.api, "web", "{\"a\":1}", &sb, err, sizeof err), -1);
    cr_assert_eq(targets_api_render_relabel_steps(&f.api, "web", "{bad", &sb, err, sizeof err), -1);
    cr_assert_eq(strncmp(err, "error parsing labels: ", 22), 0);
    strbuf_free(&sb);
    teardown(&f);
}

Test(targets_page, escapes_and_filters)
{
    fixture f;
    setup(&f);
    strbuf sb;
    strbuf_init(&sb);
    targets_page_query q = {.page = 1};
    targets_page_render(f.tm, &q, 1700000000000, &sb);
    cr_assert_not_null(strstr(sb.buf, "team=&#34;a&lt;b&gt;&#34;"));
    cr_assert_null(strstr(sb.buf, "a<b>"));
    cr_assert_not_null(strstr(sb.buf, "(0/2 up)"));
    cr_assert_not_null(strstr(sb.buf, "dropped by rule #0 (drop)"));
    cr_assert_not_null(strstr(sb.buf, "http://b:2/-/exceptions"));

    strbuf_reset(&sb);
    q.scrape_pool = "web";
    q.search = "localhost";
    targets_page_render(f.tm, &q, 1700000000000, &sb);
    cr_assert_not_null(strstr(sb.buf, "http://localhost:9100/-/exceptions"));
    cr_assert_null(strstr(sb.buf, "http://b:2/-/exceptions"));
    cr_assert_null(strstr(sb.buf, "api:8080"));

    strbuf_reset(&sb);
    q = (targets_page_query){.health = "up", .page = 1};
    targets_page_render(f.tm, &q, 1700000000000, &sb);
    cr_assert_null(strstr(sb.buf, "http://b:2/-/exceptions"));

    strbuf_reset(&sb);
    sd_page_render(f.tm, NULL, 1, &sb);
    cr_assert_not_null(strstr(sb.buf, "__meta_x=&#34;y&#34;"));
    cr_assert_not_null(strstr(sb.buf, "Dropped by rule #0 (drop)"));
    strbuf_free(&sb);
    teardown(&f);
}

Test(targets_page, paging)
{
    lookout_config *cfg = parse("scrape_configs:\n  - job_name: big\n");
    target_manager *tm = targets_new();
    targets_apply_config(tm, cfg);
    target_group g;
    target_group_init(&g, "s:0");
    char addr[32];
    for (int i = 0; i < 450; i++) {
        snprintf(addr, sizeof addr, "h%04d:80", i);
        add(&g, addr, NULL, NULL);
    }
    const target_group *gs[] = {&g};
    targets_sync(tm, "big", gs, 1);
    target_group_free(&g);
    strbuf sb;
    strbuf_init(&sb);
    targets_page_query q = {.page = 1};
    targets_page_render(tm, &q, 0, &sb);
    cr_assert_not_null(strstr(sb.buf, "http://h0199:80/"));
    cr_assert_null(strstr(sb.buf, "http://h0200:80/"));
    cr_assert_not_null(strstr(sb.buf, "Showing 1&ndash;200 of 450"));
    cr_assert_not_null(strstr(sb.buf, "href=\"targets?scrapePool=big&amp;page=2\""), "relative: works under a route prefix");
    strbuf_reset(&sb);
    q = (targets_page_query){.scrape_pool = "big", .page = 3};
    targets_page_render(tm, &q, 0, &sb);
    cr_assert_not_null(strstr(sb.buf, "http://h0449:80/"));
    cr_assert_null(strstr(sb.buf, "http://h0399:80/"));
    cr_assert_not_null(strstr(sb.buf, "Showing 401&ndash;450 of 450"));
    strbuf_free(&sb);
    targets_free(tm);
    config_free(cfg);
}
