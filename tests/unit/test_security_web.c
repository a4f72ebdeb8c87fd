/* Security review regressions for the server-rendered pages (/targets, /service-discovery): labels and
 * URLs from service discovery are untrusted (pod annotations, Consul metadata, file_sd written by anyone
 * with access to the directory). No markup or script from them may reach the page. */
#include <criterion/criterion.h>
#include <string.h>

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

/* The usual "scheme and path from annotations" relabeling. */
static const char *const yaml = "scrape_configs:\n"
                                "  - job_name: 'k8s<script>'\n"
                                "    relabel_configs:\n"
                                "      - source_labels: [__meta_scheme]\n"
                                "        regex: '(.+)'\n"
                                "        target_label: __scheme__\n"
                                "      - source_labels: [__meta_path]\n"
                                "        regex: '(.+)'\n"
                                "        target_label: __metrics_path__\n"
                                "      - source_labels: [__meta_drop]\n"
                                "        regex: 'yes'\n"
                                "        action: drop\n";

static void add(target_group *g, const char *addr, const char *scheme, const char *path, const char *lname,
                const char *lvalue, const char *drop)
{
    labelset t = LABELSET_INIT;
    labelset_set(&t, "__address__", addr);
    if (scheme)
        labelset_set(&t, "__meta_scheme", scheme);
    if (path)
        labelset_set(&t, "__meta_path", path);
    if (lname)
        labelset_set(&t, lname, lvalue);
    if (drop)
        labelset_set(&t, "__meta_drop", drop);
    target_group_add_target(g, &t);
    labelset_free(&t);
}

static target_manager *setup(lookout_config **cfg)
{
    *cfg = parse(yaml);
    target_manager *tm = targets_new();
    targets_apply_config(tm, *cfg);
    target_group g;
    target_group_init(&g, "static:0");
    labelset_set(&g.labels, "team", "<img src=x onerror=alert(1)>");
    add(&g, "evil:80", "javascript", "/\nalert(document.cookie)", NULL, NULL, NULL);
    add(&g, "evil2:80", "JavaScript", "/%0aalert(1)", NULL, NULL, NULL);
    add(&g, "data:80", "data", "/text/html,<script>alert(1)</script>", NULL, NULL, NULL);
    add(&g, "good:80", NULL, NULL, "app", "\"><script>alert(1)</script>", NULL);
    add(&g, "gone:80", NULL, NULL, "__meta_note", "<script>alert('dropped')</script>", "yes");
    add(&g, "bad/<script>:1", NULL, NULL, NULL, NULL, NULL); /* invalid address: a failed target */
    const target_group *gs[] = {&g};
    targets_sync(tm, "k8s<script>", gs, 1);
    target_group_free(&g);
    return tm;
}

static void assert_no_active_markup(const char *html)
{
    cr_expect_null(strcasestr(html, "href=\"javascript"), "javascript: link in: %s", html);
    cr_expect_null(strcasestr(html, "href=\"data"), "data: link");
    cr_expect_null(strstr(html, "<script"), "<script> reached the page");
    cr_expect_null(strstr(html, "<img"), "<img> reached the page");
}

Test(security_web, targets_page_links_only_http_urls_and_escapes_labels)
{
    lookout_config *cfg;
    target_manager *tm = setup(&cfg);
    strbuf sb;
    strbuf_init(&sb);
    targets_page_query q = {.page = 1};
    targets_page_render(tm, &q, 1700000000000, &sb);
    assert_no_active_markup(sb.buf);
    /* the targets are still shown, as text */
    cr_expect_not_null(strstr(sb.buf, "javascript://evil:80/"), "%s", sb.buf);
    cr_expect_not_null(strstr(sb.buf, "<a href=\"http://good:80/"), "http targets keep their link");
    cr_expect_not_null(strstr(sb.buf, "&lt;img src=x onerror=alert(1)&gt;"));
    cr_expect_not_null(strstr(sb.buf, "k8s&lt;script&gt;"));
    /* a search echoed into the form stays an attribute value */
    strbuf_reset(&sb);
    q.search = "\"><script>alert(1)</script>";
    targets_page_render(tm, &q, 1700000000000, &sb);
    assert_no_active_markup(sb.buf);
    strbuf_reset(&sb);
    q = (targets_page_query){.page = 1, .scrape_pool = "\"><script>x</script>"};
    targets_page_render(tm, &q, 1700000000000, &sb);
    assert_no_active_markup(sb.buf);
    strbuf_free(&sb);
    targets_free(tm);
    config_free(cfg);
}

/* Any scheme string loads now (as in Prometheus 2.42), so the configured scheme is as untrusted as a
 * relabeled one: it never turns a target URL into a javascript:/data: link, and its warning is text. */
Test(security_web, configured_scheme_is_never_a_link)
{
    lookout_config *cfg = parse("scrape_configs:\n"
                                "  - job_name: js\n"
                                "    scheme: 'javascript'\n"
                                "  - job_name: data\n"
                                "    scheme: 'DATA'\n"
                                "    metrics_path: '/text/html,<script>alert(1)</script>'\n");
    cr_assert_eq(cfg->n_warnings, 2);
    cr_expect_not_null(strstr(cfg->warnings[0].message, "job js: scheme \"javascript\" is not http or https"),
                       "%s", cfg->warnings[0].message);
    target_manager *tm = targets_new();
    targets_apply_config(tm, cfg);
    const char *jobs[] = {"js", "data"};
    for (int j = 0; j < 2; j++) {
        target_group g;
        target_group_init(&g, "static:0");
        add(&g, "evil:80", NULL, NULL, NULL, NULL, NULL);
        const target_group *gs[] = {&g};
        targets_sync(tm, jobs[j], gs, 1);
        target_group_free(&g);
    }
    strbuf sb;
    strbuf_init(&sb);
    targets_page_query q = {.page = 1};
    targets_page_render(tm, &q, 1700000000000, &sb);
    assert_no_active_markup(sb.buf);
    cr_expect_not_null(strstr(sb.buf, "javascript://evil:80/-/exceptions"), "%s", sb.buf);
    cr_expect_not_null(strstr(sb.buf, "DATA://evil:80/text/html,%3Cscript%3E"), "%s", sb.buf);
    strbuf_free(&sb);
    targets_free(tm);
    config_free(cfg);
}

Test(security_web, service_discovery_page_escapes_discovered_labels)
{
    lookout_config *cfg;
    target_manager *tm = setup(&cfg);
    strbuf sb;
    strbuf_init(&sb);
    sd_page_render(tm, NULL, 1, &sb);
    assert_no_active_markup(sb.buf);
    cr_expect_not_null(strstr(sb.buf, "__meta_note=&#34;&lt;script&gt;alert(&#39;dropped&#39;)&lt;/script&gt;&#34;"),
                       "%s", sb.buf);
    strbuf_reset(&sb);
    sd_page_render(tm, "k8s<script>", 1, &sb);
    assert_no_active_markup(sb.buf);
    strbuf_free(&sb);
    targets_free(tm);
    config_free(cfg);
}
