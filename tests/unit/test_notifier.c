/* alert/notifier: the Alertmanager URLs a discovered target group yields (Prometheus'
 * AlertmanagerFromGroup and postPath), and the UI link of an error. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "alert/notifier.h"

static void add(target_group *g, const char *addr, const char *scheme)
{
    labelset t;
    labelset_init(&t);
    labelset_set(&t, "__address__", addr);
    if (scheme)
        labelset_set(&t, "__scheme__", scheme);
    target_group_add_target(g, &t);
    labelset_free(&t);
}

static relabel_rule rule(relabel_action a, const char *src, const char *regex, const char *target, const char *repl)
{
    relabel_rule r;
    memset(&r, 0, sizeof r);
    r.action = a;
    if (src) {
        r.source_labels = calloc(1, sizeof(char *));
        r.source_labels[0] = strdup(src);
        r.n_source_labels = 1;
    }
    r.regex = regex ? strdup(regex) : NULL;
    r.target_label = target ? strdup(target) : NULL;
    r.replacement = repl ? strdup(repl) : NULL;
    char err[256];
    cr_assert_eq(relabel_rule_prepare(&r, err, sizeof err), 0, "%s", err);
    return r;
}

static void free_urls(char **urls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(urls[i]);
    free(urls);
}

Test(notifier, alerts_path_is_path_join)
{
    static const char *const cases[][2] = {
        {NULL, "/api/v2/alerts"},     {"", "/api/v2/alerts"},          {"/", "/api/v2/alerts"},
        {"am", "/am/api/v2/alerts"}, {"/am/", "/am/api/v2/alerts"},    {"/a//b/", "/a/b/api/v2/alerts"},
        {"/a/../b", "/b/api/v2/alerts"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *p = notifier_alerts_path(cases[i][0]);
        cr_expect_str_eq(p, cases[i][1], "path_prefix %s", cases[i][0] ? cases[i][0] : "(none)");
        free(p);
    }
}

Test(notifier, group_urls_as_alertmanager_from_group)
{
    target_group g;
    target_group_init(&g, "file:0");
    labelset_set(&g.labels, "__meta_site", "a");
    add(&g, "am-1:9093", NULL);
    add(&g, "am-2:9093", "https"); /* discovery may set __scheme__: it wins over the config's */
    add(&g, "am-1:9093", NULL);    /* the same Alertmanager twice: once */
    add(&g, "canary:9093", NULL);
    relabel_rule rules[2] = {
        rule(RELABEL_DROP, "__address__", "canary:.*", NULL, NULL),
        rule(RELABEL_REPLACE, "__meta_site", "(.*)", "__alerts_path__", "/site-$1/api/v2/alerts"),
    };
    char **urls = NULL, err[600] = "";
    size_t n = 0, dropped = 0;
    cr_assert_eq(notifier_group_urls("http", "/api/v2/alerts", rules, 1, &g, &urls, &n, &dropped, err, sizeof err), 0);
    cr_assert_eq(n, 2);
    cr_expect_str_eq(urls[0], "http://am-1:9093/api/v2/alerts");
    cr_expect_str_eq(urls[1], "https://am-2:9093/api/v2/alerts");
    cr_expect_eq(dropped, 1, "relabel_configs dropped the canary");
    free_urls(urls, n);

    urls = NULL;
    n = dropped = 0;
    cr_assert_eq(notifier_group_urls("http", "/api/v2/alerts", rules, 2, &g, &urls, &n, &dropped, err, sizeof err), 0);
    cr_assert_eq(n, 2);
    cr_expect_str_eq(urls[0], "http://am-1:9093/site-a/api/v2/alerts", "__alerts_path__ rewritten by a rule");

    /* an address with a path fails its whole group; what earlier groups gave stays */
    target_group bad;
    target_group_init(&bad, "file:1");
    add(&bad, "am-3:9093", NULL);
    add(&bad, "am-4:9093/x", NULL);
    cr_assert_eq(notifier_group_urls("http", "/api/v2/alerts", NULL, 0, &bad, &urls, &n, &dropped, err, sizeof err), -1);
    cr_expect_str_eq(err, "\"am-4:9093/x\" is not a valid hostname");
    cr_expect_eq(n, 2, "am-3 of the failed group is not added");
    free_urls(urls, n);
    for (size_t i = 0; i < 2; i++)
        relabel_rule_free(&rules[i]);
    target_group_free(&g);
    target_group_free(&bad);
}

Test(notifier, error_link_encodes_job_and_key)
{
    char *l = notifier_error_link("https://ex.org/lookout", "api", "*url.Error@9f/3 x");
    cr_expect_str_eq(l, "https://ex.org/lookout/#/api/errors/*url.Error%409f%2F3%20x");
    free(l);
}
