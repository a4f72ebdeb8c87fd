/* /api/v1/targets and relabel_steps JSON (rendered without a socket), Go-compatible numbers and times,
 * globalUrl, and the HTML pages' escaping and paging. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <string.h>

#include "api/apiutil.h"
#include "api/html.h"
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
    /* JSON that is not an object: Go's unmarshal error, nothing written */
    cr_assert_eq(targets_api_render_relabel_steps(&f.api, "web", "[1]", &sb, err, sizeof err), -1);
    cr_assert_str_eq(err, "error parsing labels: json: cannot unmarshal array into Go value of type labels.Labels");
    cr_assert_eq(sb.len, 0);
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

/* ---- /api/v1/targets streamed while the targets change ---- */

#define CS_GROUPS 8
#define CS_PER_GROUP 150

/* Job j's groups at step k: every group holds stable targets x<g><i> (every third one dropped by the
 * skip rule: skipx<g><i>); at odd steps k groups 0 and 5 also hold volatile ones (x<g><i>v<k>,
 * skipx<g><i>v<k>) that exist during step k only and sort among the stable ones (so that positions move
 * both ways from page to page); the group order rotates with k, which
 * rebuilds the pool's dropped list (discovery order) on every sync. */
static void cs_sync(target_manager *tm, const char *job, int k)
{
    target_group gs[CS_GROUPS];
    const target_group *gp[CS_GROUPS];
    for (int g = 0; g < CS_GROUPS; g++) {
        target_group *grp = &gs[(g + k) % CS_GROUPS];
        char src[32];
        snprintf(src, sizeof src, "static:%d", g);
        target_group_init(grp, src);
        for (int i = 0; i < CS_PER_GROUP; i++) {
            char a[64];
            snprintf(a, sizeof a, "%sx%d%03d:80", i % 3 == 0 ? "skip" : "", g, i);
            add(grp, a, NULL, NULL);
            if ((g == 0 || g == 5) && i % 10 == 0 && k % 2) {
                snprintf(a, sizeof a, "%sx%d%03dv%d:80", i % 20 == 0 ? "skip" : "", g, i, k);
                add(grp, a, NULL, NULL);
            }
        }
    }
    for (int g = 0; g < CS_GROUPS; g++)
        gp[g] = &gs[g];
    targets_sync(tm, job, gp, CS_GROUPS);
    for (int g = 0; g < CS_GROUPS; g++)
        target_group_free(&gs[g]);
}

/* How often each (pool, address) is listed in one array of the body. */
static int cs_count(json_t *arr, const char *pool, const char *addr, bool active)
{
    int n = 0;
    size_t i;
    json_t *t;
    json_array_foreach(arr, i, t)
    {
        json_t *ls = json_object_get(t, active ? "labels" : "discoveredLabels");
        const char *a = json_string_value(json_object_get(ls, active ? "instance" : "__address__"));
        const char *p = json_string_value(json_object_get(t, "scrapePool"));
        n += a && p && strcmp(a, addr) == 0 && strcmp(p, pool) == 0;
    }
    return n;
}

Test(targets_api, stream_consistent_while_targets_change)
{
    static const char *base = "scrape_configs:\n"
                              "  - job_name: a\n"
                              "    relabel_configs: [{source_labels: [__address__], regex: 'skip.*', action: drop}]\n"
                              "  - job_name: b\n"
                              "    relabel_configs: [{source_labels: [__address__], regex: 'skip.*', action: drop}]\n"
                              "  - job_name: c\n"
                              "    relabel_configs: [{source_labels: [__address__], regex: 'skip.*', action: drop}]\n";
    char with_b2[1024];
    snprintf(with_b2, sizeof with_b2, "%s  - job_name: b2\n", base);
    lookout_config *cfg[2] = {parse(base), parse(with_b2)};
    target_manager *tm = targets_new();
    targets_apply_config(tm, cfg[0]);
    targets_api api;
    targets_api_init(&api, tm, ":7777", "myhost");
    static const char *jobs[] = {"a", "b", "c"};
    for (int j = 0; j < 3; j++)
        cs_sync(tm, jobs[j], 0);

    /* Unchanged between pages: the same body as one read section gives, in more than one page. */
    strbuf whole, paged;
    strbuf_init(&whole);
    strbuf_init(&paged);
    targets_api_render(&api, NULL, NULL, &whole);
    targets_dump *d = targets_dump_new(&api, NULL, NULL, &paged);
    int pages = 1;
    while (targets_dump_fill(d, &paged) == 1)
        pages++;
    targets_dump_free(d);
    cr_assert_gt(pages, 20, "pages: %d", pages);
    cr_assert_eq(paged.len, whole.len);
    cr_assert_str_eq(paged.buf, whole.buf);
    strbuf_free(&whole);

    /* Changed after every page: volatile targets come and go, the discovery order rotates, pool b2
     * appears and goes away. */
    strbuf_reset(&paged);
    d = targets_dump_new(&api, NULL, NULL, &paged);
    int k = 0;
    while (targets_dump_fill(d, &paged) == 1) {
        k++;
        cr_assert_lt(k, 200, "the dump does not end"); /* about 40 pages */
        targets_apply_config(tm, cfg[k % 2]);
        for (int j = 0; j < 3; j++)
            cs_sync(tm, jobs[j], k);
        if (k % 2)
            cs_sync(tm, "b2", k);
    }
    targets_dump_free(d);
    cr_assert_gt(k, 20, "pages: %d", k);
    json_error_t e;
    json_t *root = json_loads(paged.buf, 0, &e);
    cr_assert_not_null(root, "invalid JSON (%s)", e.text);
    json_t *data = json_object_get(root, "data");
    json_t *act = json_object_get(data, "activeTargets"), *drop = json_object_get(data, "droppedTargets");
    size_t stable_active = 0, stable_dropped = 0;
    for (int j = 0; j < 3; j++) {
        for (int g = 0; g < CS_GROUPS; g++) {
            for (int i = 0; i < CS_PER_GROUP; i++) {
                char a[64];
                bool skip = i % 3 == 0;
                snprintf(a, sizeof a, "%sx%d%03d:80", skip ? "skip" : "", g, i);
                cr_assert_eq(cs_count(act, jobs[j], a, true), skip ? 0 : 1, "%s %s active", jobs[j], a);
                cr_assert_eq(cs_count(drop, jobs[j], a, false), skip ? 1 : 0, "%s %s dropped", jobs[j], a);
                *(skip ? &stable_dropped : &stable_active) += 1;
            }
        }
    }
    /* Everything else listed is a volatile target or one of b2's, each at most once. */
    size_t i;
    json_t *t;
    json_t *arrs[] = {act, drop};
    for (int w = 0; w < 2; w++) {
        json_array_foreach(arrs[w], i, t)
        {
            json_t *ls = json_object_get(t, w ? "discoveredLabels" : "labels");
            const char *a = json_string_value(json_object_get(ls, w ? "__address__" : "instance"));
            const char *p = json_string_value(json_object_get(t, "scrapePool"));
            cr_assert(a && p);
            if (strcmp(p, "b2") == 0 || strchr(a, 'v'))
                cr_assert_eq(cs_count(arrs[w], p, a, !w), 1, "%s %s listed twice", p, a);
        }
    }
    cr_assert_geq(json_array_size(act), stable_active);
    cr_assert_geq(json_array_size(drop), stable_dropped);
    /* Pools in job order, whatever came and went. */
    const char *prev = "";
    json_array_foreach(act, i, t)
    {
        const char *p = json_string_value(json_object_get(t, "scrapePool"));
        cr_assert_geq(strcmp(p, prev), 0, "%s after %s", p, prev);
        prev = p;
    }
    json_decref(root);
    strbuf_free(&paged);
    targets_free(tm);
    config_free(cfg[0]);
    config_free(cfg[1]);
}

/* The pool being listed is the last one and goes away between two pages: the dump goes on with the
 * dropped targets (nothing after it to list) and ends as valid JSON, the counts of the pools left. */
Test(targets_api, stream_last_pool_goes_away)
{
    lookout_config *both = parse("scrape_configs:\n  - job_name: a\n  - job_name: z\n");
    lookout_config *only_a = parse("scrape_configs:\n  - job_name: a\n");
    target_manager *tm = targets_new();
    targets_apply_config(tm, both);
    targets_api api;
    targets_api_init(&api, tm, ":7777", "myhost");
    target_group ga, gz;
    target_group_init(&ga, "static:0");
    target_group_init(&gz, "static:0");
    add(&ga, "a0:80", NULL, NULL);
    for (int i = 0; i < 400; i++) {
        char addr[32];
        snprintf(addr, sizeof addr, "z%03d:80", i);
        add(&gz, addr, NULL, NULL);
    }
    const target_group *pa[] = {&ga}, *pz[] = {&gz};
    targets_sync(tm, "a", pa, 1);
    targets_sync(tm, "z", pz, 1);
    strbuf out;
    strbuf_init(&out);
    targets_dump *d = targets_dump_new(&api, NULL, NULL, &out);
    cr_assert_eq(targets_dump_fill(d, &out), 1, "400 targets are more than a page");
    targets_apply_config(tm, only_a);
    cr_assert_eq(targets_dump_fill(d, &out), 0);
    targets_dump_free(d);
    json_error_t e;
    json_t *root = json_loads(out.buf, 0, &e);
    cr_assert_not_null(root, "invalid JSON (%s)", e.text);
    json_t *data = json_object_get(root, "data");
    json_t *act = json_object_get(data, "activeTargets");
    size_t n = json_array_size(act);
    cr_assert(n > 1 && n < 401, "a0 and the first page of z: %zu", n);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(act, 0), "scrapePool")), "a");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(act, n - 1), "scrapePool")), "z");
    cr_assert_eq(json_array_size(json_object_get(data, "droppedTargets")), 0);
    char *counts = json_dumps(json_object_get(data, "droppedTargetCounts"), JSON_COMPACT);
    cr_assert_str_eq(counts, "{\"a\":0}");
    free(counts);
    json_decref(root);
    strbuf_free(&out);
    target_group_free(&ga);
    target_group_free(&gz);
    targets_free(tm);
    config_free(both);
    config_free(only_a);
}

/* A listen address that is not host:port (only reachable with a local target): the URL unchanged and
 * Go's error; a bracketed host with an empty port; targets_dump_free(NULL) is a no-op. */
Test(targets_api, global_url_bad_listen_address)
{
    strbuf sb;
    strbuf_init(&sb);
    char err[256] = "";
    cr_assert_eq(targets_api_global_url("http://localhost:9100/x", "7777", "myhost", &sb, err, sizeof err), -1);
    cr_assert_str_eq(sb.buf, "http://localhost:9100/x");
    cr_assert_str_eq(err, "address 7777: missing port in address");
    /* "[::1]:" is Go's host ::1 with an empty port (not "missing port"): local, another port than ours */
    strbuf_reset(&sb);
    err[0] = 0;
    cr_assert_eq(targets_api_global_url("http://[::1]:/x", ":7777", "myhost", &sb, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(sb.buf, "http://myhost/x");
    strbuf_free(&sb);
    targets_dump_free(NULL);
}

/* ---- the HTML pages, byte for byte ---- */

/* A pool whose targets carry group labels and target labels with every character the page escapes
 * (HTML) or encodes (the relabel link's query): one active target, one dropped by rule #0, one failed
 * (a '/' in its address), and a scrape parameter (a __param_ label in the discovered ones). */
static target_manager *pin_setup(lookout_config **cfg)
{
    *cfg = parse("scrape_configs:\n"
                 "  - job_name: web\n"
                 "    params:\n"
                 "      q: ['a b&c\"<d>']\n"
                 "    relabel_configs:\n"
                 "      - source_labels: [__address__]\n"
                 "        regex: 'skip.*'\n"
                 "        action: drop\n"
                 "      - source_labels: [__meta_x]\n"
                 "        target_label: shown\n");
    target_manager *tm = targets_new();
    targets_apply_config(tm, *cfg);
    target_group g;
    target_group_init(&g, "static:0");
    labelset_set(&g.labels, "env", "prod");
    labelset_set(&g.labels, "__meta_g", "g<&>\"' \xc3\xa9\t%41+");
    add(&g, "h1:80", "__meta_x", "x y+z%/?#=&;\"<>");
    add(&g, "skip:1", "__meta_x", "d\"<'&>\xf0\x9f\x98\x80\n");
    add(&g, "bad/addr:80", "__meta_x", "f&<>");
    const target_group *gs[] = {&g};
    targets_sync(tm, "web", gs, 1);
    target_group_free(&g);
    return tm;
}

static const char pin_targets_page[] =
    "<form class=\"filter\" method=\"get\" action=\"targets\"><select name=\"scrapePool\"><option value=\"\">Al"
    "l scrape pools</option><option value=\"web\">web</option></select><select name=\"health\"><option va"
    "lue=\"\">All states</option><option value=\"up\">up</option><option value=\"down\">down</option><optio"
    "n value=\"unknown\">unknown</option></select><input type=\"text\" name=\"search\" placeholder=\"Filter "
    "by endpoint or labels\" value=\"\" size=\"40\"><button type=\"submit\">Filter</button></form>\n"
    "<details open><summary><h2>web</h2><span class=\"count\">(0/1 up)</span><span class=\"count\">1 drop"
    "ped, 1 failed</span></summary>\n"
    "<table><tr><th>Endpoint</th><th>State</th><th>Labels</th><th>Last scrape</th><th>Scrape duration"
    "</th><th>Error</th></tr>\n"
    "<tr><td><a href=\"http://h1:80/-/exceptions?q=a+b%26c%22%3Cd%3E\">http://h1:80/-/exceptions?q=a+b%"
    "26c%22%3Cd%3E</a></td><td><span class=\"state unknown\">unknown</span></td><td><span class=\"badge\""
    ">env=&#34;prod&#34;</span><span class=\"badge\">instance=&#34;h1:80&#34;</span><span class=\"badge\""
    ">job=&#34;web&#34;</span><span class=\"badge\">shown=&#34;x y+z%/?#=&amp;;&#34;&lt;&gt;&#34;</span"
    "></td><td>never</td><td></td><td class=\"err\"></td></tr>\n"
    "</table>\n"
    "<details><summary>Dropped targets (1)</summary><table><tr><th>Discovered labels</th><th>Dropped "
    "by</th></tr>\n"
    "<tr><td><span class=\"badge\">__address__=&#34;skip:1&#34;</span><span class=\"badge\">__meta_g=&#34"
    ";g&lt;&amp;&gt;&#34;&#39; \xc3\xa9""\t%41+&#34;</span><span class=\"badge\">__meta_x=&#34;d&#34;&lt;&#39;&am"
    "p;&gt;\xf0\x9f\x98\x80""\n"
    "&#34;</span><span class=\"badge\">__metrics_path__=&#34;/-/exceptions&#34;</span><span class=\"badg"
    "e\">__param_q=&#34;a b&amp;c&#34;&lt;d&gt;&#34;</span><span class=\"badge\">__scheme__=&#34;http&#3"
    "4;</span><span class=\"badge\">__scrape_interval__=&#34;1m&#34;</span><span class=\"badge\">__scrape"
    "_timeout__=&#34;10s&#34;</span><span class=\"badge\">env=&#34;prod&#34;</span><span class=\"badge\">"
    "job=&#34;web&#34;</span></td><td>dropped by rule #0 (drop) <a class=\"muted\" href=\"api/v1/targets"
    "/relabel_steps?scrapePool=web&amp;labels=%7B%22__address__%22%3A%22skip%3A1%22%2C%22__meta_g%22%"
    "3A%22g%5Cu003c%5Cu0026%5Cu003e%5C%22%27+%C3%A9%5Ct%2541%2B%22%2C%22__meta_x%22%3A%22d%5C%22%5Cu0"
    "03c%27%5Cu0026%5Cu003e%F0%9F%98%80%5Cn%22%2C%22__metrics_path__%22%3A%22%2F-%2Fexceptions%22%2C%"
    "22__param_q%22%3A%22a+b%5Cu0026c%5C%22%5Cu003cd%5Cu003e%22%2C%22__scheme__%22%3A%22http%22%2C%22"
    "__scrape_interval__%22%3A%221m%22%2C%22__scrape_timeout__%22%3A%2210s%22%2C%22env%22%3A%22prod%2"
    "2%2C%22job%22%3A%22web%22%7D\">relabel steps</a></td></tr>\n"
    "</table></details>\n"
    "<details open><summary>Failed targets (1)</summary><table><tr><th>Discovered labels</th><th>Reas"
    "on</th></tr>\n"
    "<tr><td><span class=\"badge\">__address__=&#34;bad/addr:80&#34;</span><span class=\"badge\">__meta_g"
    "=&#34;g&lt;&amp;&gt;&#34;&#39; \xc3\xa9""\t%41+&#34;</span><span class=\"badge\">__meta_x=&#34;f&amp;&lt;&gt"
    ";&#34;</span><span class=\"badge\">__metrics_path__=&#34;/-/exceptions&#34;</span><span class=\"bad"
    "ge\">__param_q=&#34;a b&amp;c&#34;&lt;d&gt;&#34;</span><span class=\"badge\">__scheme__=&#34;http&#"
    "34;</span><span class=\"badge\">__scrape_interval__=&#34;1m&#34;</span><span class=\"badge\">__scrap"
    "e_timeout__=&#34;10s&#34;</span><span class=\"badge\">env=&#34;prod&#34;</span><span class=\"badge\""
    ">job=&#34;web&#34;</span></td><td class=\"err\">&#34;bad/addr:80&#34; is not a valid hostname</td>"
    "</tr>\n"
    "</table></details>\n"
    "</details>\n"
    "</main></body></html>\n";

static const char pin_sd_page[] =
    "<details open><summary><h2>web</h2><span class=\"count\">(1 / 2 active targets)</span></summary>\n"
    "<table><tr><th>Discovered labels</th><th>Target labels</th></tr>\n"
    "<tr><td><span class=\"badge\">__address__=&#34;h1:80&#34;</span><span class=\"badge\">__meta_g=&#34;"
    "g&lt;&amp;&gt;&#34;&#39; \xc3\xa9""\t%41+&#34;</span><span class=\"badge\">__meta_x=&#34;x y+z%/?#=&amp;;&#3"
    "4;&lt;&gt;&#34;</span><span class=\"badge\">__metrics_path__=&#34;/-/exceptions&#34;</span><span c"
    "lass=\"badge\">__param_q=&#34;a b&amp;c&#34;&lt;d&gt;&#34;</span><span class=\"badge\">__scheme__=&#"
    "34;http&#34;</span><span class=\"badge\">__scrape_interval__=&#34;1m&#34;</span><span class=\"badge"
    "\">__scrape_timeout__=&#34;10s&#34;</span><span class=\"badge\">env=&#34;prod&#34;</span><span clas"
    "s=\"badge\">job=&#34;web&#34;</span></td><td><span class=\"badge\">env=&#34;prod&#34;</span><span cl"
    "ass=\"badge\">instance=&#34;h1:80&#34;</span><span class=\"badge\">job=&#34;web&#34;</span><span cla"
    "ss=\"badge\">shown=&#34;x y+z%/?#=&amp;;&#34;&lt;&gt;&#34;</span></td></tr>\n"
    "<tr><td><span class=\"badge\">__address__=&#34;skip:1&#34;</span><span class=\"badge\">__meta_g=&#34"
    ";g&lt;&amp;&gt;&#34;&#39; \xc3\xa9""\t%41+&#34;</span><span class=\"badge\">__meta_x=&#34;d&#34;&lt;&#39;&am"
    "p;&gt;\xf0\x9f\x98\x80""\n"
    "&#34;</span><span class=\"badge\">__metrics_path__=&#34;/-/exceptions&#34;</span><span class=\"badg"
    "e\">__param_q=&#34;a b&amp;c&#34;&lt;d&gt;&#34;</span><span class=\"badge\">__scheme__=&#34;http&#3"
    "4;</span><span class=\"badge\">__scrape_interval__=&#34;1m&#34;</span><span class=\"badge\">__scrape"
    "_timeout__=&#34;10s&#34;</span><span class=\"badge\">env=&#34;prod&#34;</span><span class=\"badge\">"
    "job=&#34;web&#34;</span></td><td class=\"muted\">Dropped by rule #0 (drop) <a class=\"muted\" href=\""
    "api/v1/targets/relabel_steps?scrapePool=web&amp;labels=%7B%22__address__%22%3A%22skip%3A1%22%2C%"
    "22__meta_g%22%3A%22g%5Cu003c%5Cu0026%5Cu003e%5C%22%27+%C3%A9%5Ct%2541%2B%22%2C%22__meta_x%22%3A%"
    "22d%5C%22%5Cu003c%27%5Cu0026%5Cu003e%F0%9F%98%80%5Cn%22%2C%22__metrics_path__%22%3A%22%2F-%2Fexc"
    "eptions%22%2C%22__param_q%22%3A%22a+b%5Cu0026c%5C%22%5Cu003cd%5Cu003e%22%2C%22__scheme__%22%3A%2"
    "2http%22%2C%22__scrape_interval__%22%3A%221m%22%2C%22__scrape_timeout__%22%3A%2210s%22%2C%22env%"
    "22%3A%22prod%22%2C%22job%22%3A%22web%22%7D\">relabel steps</a></td></tr>\n"
    "</table>\n"
    "</details>\n"
    "</main></body></html>\n";

/* The page's frame (html.c) followed by what targets_page.c writes, compared whole. */
static void assert_page(const strbuf *got, const char *title, const char *body)
{
    strbuf want;
    strbuf_init(&want);
    html_page_begin(&want, title);
    strbuf_puts(&want, body);
    cr_assert_eq(got->len, want.len, "page length %zu, want %zu:\n%s", got->len, want.len, got->buf);
    cr_assert_str_eq(got->buf, want.buf);
    strbuf_free(&want);
}

/* Both pages byte for byte as they were written before the discovered labels were streamed (a label set
 * copied per target): badges, the relabel link's JSON and its query encoding, failed targets. */
Test(targets_page, pinned_bytes)
{
    lookout_config *cfg;
    target_manager *tm = pin_setup(&cfg);
    strbuf sb;
    strbuf_init(&sb);
    targets_page_query q = {.page = 1};
    targets_page_render(tm, &q, 1700000000000, &sb);
    assert_page(&sb, "Targets", pin_targets_page);
    strbuf_reset(&sb);
    sd_page_render(tm, NULL, 1, &sb);
    assert_page(&sb, "Service discovery", pin_sd_page);
    strbuf_free(&sb);
    targets_free(tm);
    config_free(cfg);
}

/* ---- the pages streamed a piece at a time ---- */

/* scrape_configs of jobs "j%03d" for i in [from, to) step 2, plus `extra` (NULL: none) */
static lookout_config *many_jobs(int from, int to, const char *extra)
{
    strbuf y;
    strbuf_init(&y);
    strbuf_puts(&y, "scrape_configs:\n");
    for (int i = from; i < to; i += 2)
        strbuf_printf(&y, "  - job_name: j%03d\n", i);
    if (extra)
        strbuf_printf(&y, "  - job_name: %s\n", extra);
    lookout_config *cfg = parse(y.buf);
    strbuf_free(&y);
    return cfg;
}

static void sync_job(target_manager *tm, const char *job, int n)
{
    target_group g;
    target_group_init(&g, "static:0");
    labelset_set(&g.labels, "__meta_team", job);
    for (int i = 0; i < n; i++) {
        char addr[64];
        snprintf(addr, sizeof addr, "%s-host%02d:80", job, i);
        add(&g, addr, "zone", "eu-west-1a");
    }
    const target_group *gs[] = {&g};
    targets_sync(tm, job, gs, 1);
    target_group_free(&g);
}

/* How often "<h2>JOB</h2>" is in the page. */
static int pool_shown(const char *page, const char *job)
{
    char h[64];
    snprintf(h, sizeof h, "<h2>%s</h2>", job);
    int n = 0;
    for (const char *p = strstr(page, h); p; p = strstr(p + 1, h))
        n++;
    return n;
}

/* 300 pools of 20 targets: /targets and /service-discovery come in pieces of whole pools, each piece
 * written under the read lock and none held between them (the pools are reconfigured between two pieces:
 * with the lock held across pieces that would wait forever); every pool is shown once, in job order; a
 * pool removed or added after the writer's place is left out or shown, one added before it is not. */
Test(targets_page, streamed_in_pieces_without_the_lock, .timeout = 60)
{
    lookout_config *cfg = many_jobs(2, 602, NULL), *cfg2 = many_jobs(2, 600, "j001");
    target_manager *tm = targets_new();
    targets_apply_config(tm, cfg);
    char job[16];
    for (int i = 2; i < 602; i += 2) {
        snprintf(job, sizeof job, "j%03d", i);
        sync_job(tm, job, 20);
    }
    for (int sd = 0; sd < 2; sd++) {
        targets_apply_config(tm, cfg);
        strbuf whole, out;
        strbuf_init(&whole);
        strbuf_init(&out);
        targets_page_query q = {.page = 1};
        if (sd)
            sd_page_render(tm, NULL, 1, &whole);
        else
            targets_page_render(tm, &q, 1700000000000, &whole);
        cr_assert(strstr(whole.buf, "</main></body></html>\n"));
        for (int i = 2; i < 602; i += 2) {
            snprintf(job, sizeof job, "j%03d", i);
            cr_assert_eq(pool_shown(whole.buf, job), 1, "%s", job);
        }
        /* the same page in pieces: each one whole pools of ~6 KiB up to TARGETS_PAGE_PIECE */
        targets_page_writer *w = targets_page_writer_new(tm, sd, &q, 1700000000000, &out);
        size_t pieces = 0, prev = out.len;
        int rc;
        do {
            rc = targets_page_fill(w, &out);
            pieces++;
            cr_assert_lt(out.len - prev, TARGETS_PAGE_PIECE + 16384, "piece %zu: %zu bytes", pieces, out.len - prev);
            prev = out.len;
        } while (rc == 1);
        targets_page_writer_free(w);
        cr_assert_gt(pieces, 20, "%zu pieces", pieces);
        cr_assert_eq(out.len, whole.len);
        cr_assert_str_eq(out.buf, whole.buf);

        /* reconfigured between two pieces: j600 removed, j001 (before the writer's place) added */
        strbuf_reset(&out);
        w = targets_page_writer_new(tm, sd, &q, 1700000000000, &out);
        cr_assert_eq(targets_page_fill(w, &out), 1);
        cr_assert_eq(pool_shown(out.buf, "j002"), 1);
        cr_assert_eq(pool_shown(out.buf, "j300"), 0);
        targets_apply_config(tm, cfg2);
        while (targets_page_fill(w, &out) == 1)
            ;
        targets_page_writer_free(w);
        cr_assert_eq(pool_shown(out.buf, "j001"), 0, "added before the writer's place");
        cr_assert_eq(pool_shown(out.buf, "j600"), 0, "removed after it");
        for (int i = 2; i < 600; i += 2) {
            snprintf(job, sizeof job, "j%03d", i);
            cr_assert_eq(pool_shown(out.buf, job), 1, "%s", job);
        }
        cr_assert(strstr(out.buf, "</main></body></html>\n"));
        strbuf_free(&whole);
        strbuf_free(&out);
    }
    targets_free(tm);
    config_free(cfg);
    config_free(cfg2);
}

/* One pool asked for among many: only it, in one piece or more; an unknown one: the message, once. */
Test(targets_page, streamed_single_pool_and_unknown_pool)
{
    lookout_config *cfg = many_jobs(0, 400, NULL);
    target_manager *tm = targets_new();
    targets_apply_config(tm, cfg);
    sync_job(tm, "j398", 3);
    strbuf sb;
    strbuf_init(&sb);
    targets_page_query q = {.scrape_pool = "j398", .page = 1};
    targets_page_render(tm, &q, 0, &sb);
    cr_assert_eq(pool_shown(sb.buf, "j398"), 1);
    cr_assert_eq(pool_shown(sb.buf, "j000"), 0);
    cr_assert(strstr(sb.buf, "http://j398-host02:80/-/exceptions"));
    cr_assert_null(strstr(sb.buf, "No such scrape pool"));
    strbuf_reset(&sb);
    q.scrape_pool = "nope";
    targets_page_render(tm, &q, 0, &sb);
    cr_assert(strstr(sb.buf, "<p class=\"muted\">No such scrape pool.</p>\n</main></body></html>\n"));
    strbuf_reset(&sb);
    sd_page_render(tm, "j398", 0, &sb);
    cr_assert_eq(pool_shown(sb.buf, "j398"), 1);
    cr_assert_eq(pool_shown(sb.buf, "j396"), 0);
    cr_assert(strstr(sb.buf, "__address__=&#34;j398-host00:80&#34;"));
    strbuf_free(&sb);
    targets_free(tm);
    config_free(cfg);
}

/* Dropped targets beyond keep_dropped_targets and beyond the 100 shown; /service-discovery's pager. */
Test(targets_page, dropped_limits_and_sd_pager)
{
    lookout_config *cfg = parse("scrape_configs:\n"
                                "  - job_name: d1\n"
                                "    keep_dropped_targets: 1\n"
                                "    relabel_configs: [{action: drop, source_labels: [__address__], regex: '.*'}]\n"
                                "  - job_name: d2\n"
                                "    relabel_configs: [{action: drop, source_labels: [__address__], regex: '.*'}]\n"
                                "  - job_name: big\n");
    target_manager *tm = targets_new();
    targets_apply_config(tm, cfg);
    sync_job(tm, "d1", 3);
    sync_job(tm, "d2", 102);
    sync_job(tm, "big", 450);
    strbuf sb;
    strbuf_init(&sb);
    targets_page_query q = {.page = 1};
    targets_page_render(tm, &q, 0, &sb);
    cr_assert(strstr(sb.buf, "<details><summary>Dropped targets (3, 1 kept by keep_dropped_targets)</summary>"));
    cr_assert(strstr(sb.buf, "<details><summary>Dropped targets (102)</summary>"));
    cr_assert(strstr(sb.buf, "<div class=\"pager\">2 more: <a href=\"api/v1/targets?state=dropped&amp;scrapePool=d2\">"
                             "all dropped targets (JSON)</a></div></details>\n"));
    strbuf_reset(&sb);
    sd_page_render(tm, "big", 2, &sb);
    cr_assert(strstr(sb.buf, "<div class=\"pager\"><a href=\"service-discovery?scrapePool=big&amp;page=1\">&laquo; "
                             "previous</a> <a href=\"service-discovery?scrapePool=big&amp;page=3\">next &raquo;</a>"
                             "</div>\n"));
    strbuf_reset(&sb);
    sd_page_render(tm, NULL, 1, &sb);
    cr_assert(strstr(sb.buf, "<div class=\"pager\"><a href=\"service-discovery?scrapePool=big&amp;page=2\">next "
                             "&raquo;</a></div>\n"));
    strbuf_free(&sb);
    targets_page_writer_free(NULL);
    targets_free(tm);
    config_free(cfg);
}

static size_t sb_write(char *p, size_t sz, size_t n, void *ud)
{
    strbuf_append(ud, p, sz * n);
    return sz * n;
}

/* Through the HTTP server: both routes, the page parameter (not a number, out of range: page 1), and a
 * streamed page (chunked) whose bytes are the buffered rendering's. */
static long http_get(int port, const char *path, strbuf *body, bool *chunked)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    strbuf_init(body);
    strbuf head;
    strbuf_init(&head);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sb_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, sb_write);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &head);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    *chunked = strcasestr(head.buf, "Transfer-Encoding: chunked") != NULL;
    strbuf_free(&head);
    return status;
}

Test(targets_page, served_streamed_and_paged, .timeout = 60)
{
    lookout_config *cfg = many_jobs(0, 400, "big");
    target_manager *tm = targets_new();
    targets_apply_config(tm, cfg);
    sync_job(tm, "big", 450);
    for (int i = 0; i < 400; i += 2) {
        char job[16];
        snprintf(job, sizeof job, "j%03d", i);
        sync_job(tm, job, 5);
    }
    http_server *s = http_server_new(&(http_server_options){.listen_address = "127.0.0.1:0"});
    targets_page_register(tm, s);
    char err[256];
    cr_assert_eq(http_server_start(s, err, sizeof err), 0, "%s", err);
    int port = http_server_port(s);
    strbuf body, want;
    bool chunked;
    static const char *const page1[] = {"page=2x", "page=0", "page=1000001", "page=-3", "page="};
    for (size_t i = 0; i < sizeof page1 / sizeof *page1; i++) {
        char path[128];
        snprintf(path, sizeof path, "/targets?scrapePool=big&%s", page1[i]);
        cr_assert_eq(http_get(port, path, &body, &chunked), 200);
        cr_assert(strstr(body.buf, "Showing 1&ndash;200 of 450"), "%s", page1[i]);
        strbuf_free(&body);
    }
    cr_assert_eq(http_get(port, "/targets?scrapePool=big&page=1000000", &body, &chunked), 200);
    cr_assert(strstr(body.buf, "Showing 450&ndash;450 of 450"), "page 1,000,000 is a page (past the end)");
    strbuf_free(&body);
    cr_assert_eq(http_get(port, "/service-discovery?scrapePool=big&page=3", &body, &chunked), 200);
    int rows = 0;
    for (const char *r = strstr(body.buf, "<tr><td>"); r; r = strstr(r + 1, "<tr><td>"))
        rows++;
    cr_assert_eq(rows, 50, "page 3 of 450: the last 50");
    strbuf_free(&body);
    /* every pool: more than one piece */
    for (int sd = 0; sd < 2; sd++) {
        cr_assert_eq(http_get(port, sd ? "/service-discovery" : "/targets", &body, &chunked), 200);
        cr_assert(chunked, "streamed");
        strbuf_init(&want);
        targets_page_query q = {.page = 1};
        if (sd)
            sd_page_render(tm, NULL, 1, &want);
        else
            targets_page_render(tm, &q, 0, &want);
        cr_assert_eq(body.len, want.len);
        cr_assert_str_eq(body.buf, want.buf);
        strbuf_free(&body);
        strbuf_free(&want);
    }
    http_server_free(s);
    targets_free(tm);
    config_free(cfg);
}
