/* Target building: Prometheus 2.42 PopulateLabels (cases ported from scrape/manager_test.go
 * TestPopulateLabels) and Target.URL. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "labels/relabel.h"
#include "scrape/target.h"
#include "util/strbuf.h"

static void set_labels(labelset *ls, ...)
{
    labelset_init(ls);
    va_list ap;
    va_start(ap, ls);
    const char *n;
    while ((n = va_arg(ap, const char *))) {
        const char *v = va_arg(ap, const char *);
        labelset_set(ls, n, v);
    }
    va_end(ap);
}

static char *str(const labelset *ls)
{
    strbuf sb;
    strbuf_init(&sb);
    for (size_t i = 0; i < ls->n; i++)
        strbuf_printf(&sb, "%s%s=%s", i ? "," : "", ls->v[i].name, ls->v[i].value);
    return sb.buf;
}

/* A scrape config as the config loader produces it: https, /metrics, job "job", 1s/1s. */
static scrape_config cfg(const char *scheme)
{
    scrape_config sc;
    memset(&sc, 0, sizeof sc);
    sc.job_name = "job";
    sc.scheme = (char *)scheme;
    sc.metrics_path = "/metrics";
    sc.scrape_interval_ms = 1000;
    sc.scrape_timeout_ms = 1000;
    return sc;
}

/* target_build_final gives what target_build gives, without the discovered labels. */
static void same_final(const scrape_config *sc, const labelset *g, const labelset *in, const built_target *t)
{
    built_target f;
    target_build_final(sc, g, in, &f);
    cr_assert_eq(f.status, t->status);
    cr_assert_eq(f.dropped_by, t->dropped_by);
    cr_assert_str_eq(f.error, t->error);
    cr_assert(labelset_equal(&f.labels, &t->labels));
    cr_assert_eq(f.discovered.n, 0);
    cr_assert_eq(f.hash, t->hash);
    if (t->url)
        cr_assert_str_eq(f.url, t->url);
    else
        cr_assert_null(f.url);
    built_target_free(&f);
}

static void expect(const scrape_config *sc, labelset *in, target_build_status st, const char *labels,
                   const char *discovered, const char *err_or_url)
{
    built_target t;
    target_build(sc, NULL, in, &t);
    same_final(sc, NULL, in, &t);
    cr_assert_eq(t.status, st, "status %d (%s)", t.status, t.error);
    char *l = str(&t.labels), *d = str(&t.discovered);
    if (labels)
        cr_assert_str_eq(l, labels);
    if (discovered)
        cr_assert_str_eq(d, discovered);
    if (st == TARGET_FAILED) {
        cr_assert_str_eq(t.error, err_or_url);
        cr_assert_eq(t.labels.n, 0, "a failed target has no labels");
        cr_assert_null(t.url);
    }
    else if (st == TARGET_ACTIVE && err_or_url)
        cr_assert_str_eq(t.url, err_or_url);
    free(l);
    free(d);
    built_target_free(&t);
    labelset_free(in);
}

Test(target, regular_population)
{
    scrape_config sc = cfg("https");
    labelset in;
    set_labels(&in, "__address__", "1.2.3.4:1000", "custom", "value", NULL);
    expect(&sc, &in, TARGET_ACTIVE,
           "__address__=1.2.3.4:1000,__metrics_path__=/metrics,__scheme__=https,__scrape_interval__=1s,"
           "__scrape_timeout__=1s,custom=value,instance=1.2.3.4:1000,job=job",
           "__address__=1.2.3.4:1000,__metrics_path__=/metrics,__scheme__=https,__scrape_interval__=1s,"
           "__scrape_timeout__=1s,custom=value,job=job",
           "https://1.2.3.4:1000/metrics");
}

Test(target, predefined_labels_win_and_default_port_http)
{
    scrape_config sc = cfg("https");
    labelset in;
    set_labels(&in, "__address__", "1.2.3.4", "__scheme__", "http", "__metrics_path__", "/custom", "job",
               "custom-job", "__scrape_interval__", "2s", "__scrape_timeout__", "2s", NULL);
    expect(&sc, &in, TARGET_ACTIVE,
           "__address__=1.2.3.4:80,__metrics_path__=/custom,__scheme__=http,__scrape_interval__=2s,"
           "__scrape_timeout__=2s,instance=1.2.3.4:80,job=custom-job",
           "__address__=1.2.3.4,__metrics_path__=/custom,__scheme__=http,__scrape_interval__=2s,"
           "__scrape_timeout__=2s,job=custom-job",
           "http://1.2.3.4:80/custom");
}

Test(target, instance_given_https_port_ipv6)
{
    scrape_config sc = cfg("https");
    labelset in;
    set_labels(&in, "__address__", "[::1]", "instance", "custom-instance", NULL);
    expect(&sc, &in, TARGET_ACTIVE,
           "__address__=[::1]:443,__metrics_path__=/metrics,__scheme__=https,__scrape_interval__=1s,"
           "__scrape_timeout__=1s,instance=custom-instance,job=job",
           NULL, "https://[::1]:443/metrics");
}

Test(target, bare_ipv6_left_alone)
{
    scrape_config sc = cfg("http");
    labelset in;
    set_labels(&in, "__address__", "2001:db8::1", NULL);
    expect(&sc, &in, TARGET_ACTIVE, NULL, NULL, "http://2001:db8::1/metrics");
    set_labels(&in, "__address__", "[2001:db8::1]", NULL);
    expect(&sc, &in, TARGET_ACTIVE, NULL, NULL, "http://[2001:db8::1]:80/metrics");
    set_labels(&in, "__address__", "[2001:db8::1]:9090", NULL);
    expect(&sc, &in, TARGET_ACTIVE, NULL, NULL, "http://[2001:db8::1]:9090/metrics");
    /* an empty port still splits: nothing added */
    set_labels(&in, "__address__", "host:", NULL);
    expect(&sc, &in, TARGET_ACTIVE, NULL, NULL, "http://host:/metrics");
}

Test(target, no_address)
{
    scrape_config sc = cfg("https");
    labelset in;
    set_labels(&in, "custom", "value", NULL);
    expect(&sc, &in, TARGET_FAILED, "", NULL, "no address");
}

Test(target, address_added_by_relabeling)
{
    scrape_config sc = cfg("https");
    relabel_rule r;
    memset(&r, 0, sizeof r);
    r.action = RELABEL_REPLACE;
    r.source_labels = calloc(1, sizeof(char *));
    r.source_labels[0] = strdup("custom");
    r.n_source_labels = 1;
    r.target_label = strdup("__address__");
    r.replacement = strdup("${1}");
    char err[256];
    cr_assert_eq(relabel_rule_prepare(&r, err, sizeof err), 0, "%s", err);
    sc.relabel_configs = &r;
    sc.n_relabel_configs = 1;
    labelset in;
    set_labels(&in, "custom", "host:1234", NULL);
    expect(&sc, &in, TARGET_ACTIVE,
           "__address__=host:1234,__metrics_path__=/metrics,__scheme__=https,__scrape_interval__=1s,"
           "__scrape_timeout__=1s,custom=host:1234,instance=host:1234,job=job",
           "__metrics_path__=/metrics,__scheme__=https,__scrape_interval__=1s,__scrape_timeout__=1s,"
           "custom=host:1234,job=job",
           NULL);
    relabel_rule_free(&r);
}

Test(target, invalid_utf8_value)
{
    scrape_config sc = cfg("https");
    labelset in;
    set_labels(&in, "__address__", "1.2.3.4:1000", "custom", "\xbd", NULL);
    expect(&sc, &in, TARGET_FAILED, NULL, NULL, "invalid label value for \"custom\": \"\\xbd\"");
}

Test(target, interval_timeout_errors)
{
    scrape_config sc = cfg("https");
    labelset in;
    set_labels(&in, "__address__", "1.2.3.4:1000", "__scrape_interval__", "2notseconds", NULL);
    expect(&sc, &in, TARGET_FAILED, NULL, NULL,
           "error parsing scrape interval: not a valid duration string: \"2notseconds\"");
    set_labels(&in, "__address__", "1.2.3.4:1000", "__scrape_timeout__", "2notseconds", NULL);
    expect(&sc, &in, TARGET_FAILED, NULL, NULL,
           "error parsing scrape timeout: not a valid duration string: \"2notseconds\"");
    set_labels(&in, "__address__", "1.2.3.4:1000", "__scrape_interval__", "0s", NULL);
    expect(&sc, &in, TARGET_FAILED, NULL, NULL, "scrape interval cannot be 0");
    set_labels(&in, "__address__", "1.2.3.4:1000", "__scrape_timeout__", "0s", NULL);
    expect(&sc, &in, TARGET_FAILED, NULL, NULL, "scrape timeout cannot be 0");
    set_labels(&in, "__address__", "1.2.3.4:1000", "__scrape_interval__", "1s", "__scrape_timeout__", "2s", NULL);
    expect(&sc, &in, TARGET_FAILED, NULL, NULL,
           "scrape timeout cannot be greater than scrape interval (\"2s\" > \"1s\")");
    /* non-canonical but valid durations pass and keep their text */
    set_labels(&in, "__address__", "1.2.3.4:1000", "__scrape_interval__", "60s", "__scrape_timeout__", "1m", NULL);
    expect(&sc, &in, TARGET_ACTIVE, NULL, NULL, NULL);
}

Test(target, slash_in_address)
{
    scrape_config sc = cfg("http");
    labelset in;
    set_labels(&in, "__address__", "http://host:80", NULL);
    expect(&sc, &in, TARGET_FAILED, NULL, NULL, "\"http://host:80\" is not a valid hostname");
    set_labels(&in, "__address__", "host/x", NULL);
    expect(&sc, &in, TARGET_FAILED, NULL, NULL, "\"host/x:80\" is not a valid hostname");
}

Test(target, invalid_scheme_needs_port)
{
    scrape_config sc = cfg("http");
    labelset in;
    set_labels(&in, "__address__", "host", "__scheme__", "ftp", NULL);
    expect(&sc, &in, TARGET_FAILED, NULL, NULL, "invalid scheme: \"http\"");
    set_labels(&in, "__address__", "host:21", "__scheme__", "ftp", NULL);
    expect(&sc, &in, TARGET_ACTIVE, NULL, NULL, "ftp://host:21/metrics");
}

Test(target, meta_dropped_group_overlay_and_dropped_target)
{
    scrape_config sc = cfg("http");
    labelset g, t;
    set_labels(&g, "env", "prod", "__meta_x", "m", "team", "a", NULL);
    set_labels(&t, "__address__", "h:1", "team", "b", NULL);
    built_target bt;
    target_build(&sc, &g, &t, &bt);
    cr_assert_eq(bt.status, TARGET_ACTIVE);
    char *l = str(&bt.labels), *d = str(&bt.discovered);
    cr_assert_str_eq(l, "__address__=h:1,__metrics_path__=/metrics,__scheme__=http,__scrape_interval__=1s,"
                        "__scrape_timeout__=1s,env=prod,instance=h:1,job=job,team=b");
    cr_assert_str_eq(d, "__address__=h:1,__meta_x=m,__metrics_path__=/metrics,__scheme__=http,"
                        "__scrape_interval__=1s,__scrape_timeout__=1s,env=prod,job=job,team=b");
    free(l);
    free(d);
    labelset pub;
    target_public_labels(&bt.labels, &pub);
    l = str(&pub);
    cr_assert_str_eq(l, "env=prod,instance=h:1,job=job,team=b");
    free(l);
    labelset_free(&pub);
    built_target_free(&bt);

    relabel_rule r;
    memset(&r, 0, sizeof r);
    r.action = RELABEL_DROP;
    r.source_labels = calloc(1, sizeof(char *));
    r.source_labels[0] = strdup("env");
    r.n_source_labels = 1;
    r.regex = strdup("prod");
    char err[256];
    cr_assert_eq(relabel_rule_prepare(&r, err, sizeof err), 0, "%s", err);
    sc.relabel_configs = &r;
    sc.n_relabel_configs = 1;
    target_build(&sc, &g, &t, &bt);
    cr_assert_eq(bt.status, TARGET_DROPPED);
    cr_assert_eq(bt.dropped_by, 0);
    cr_assert_eq(bt.labels.n, 0);
    cr_assert_eq(bt.discovered.n, 9);
    cr_assert_null(bt.url);
    built_target_free(&bt);
    relabel_rule_free(&r);
    labelset_free(&g);
    labelset_free(&t);
}

Test(target, params_and_url_escaping)
{
    scrape_config sc = cfg("http");
    char *multi[] = {"c", "a", "b"};
    char *sp[] = {"a b&c=d/é"};
    char *empty_first[] = {""};
    param ps[] = {{"empty", empty_first, 1}, {"multi", multi, 3}, {"q s", sp, 1}};
    sc.params = ps;
    sc.n_params = 3;
    sc.metrics_path = "/pa th/x?y!*'()";
    labelset in;
    set_labels(&in, "__address__", "h:1", "__param_z", "zz", "__param_empty", "from-group", NULL);
    built_target bt;
    target_build(&sc, NULL, &in, &bt);
    cr_assert_eq(bt.status, TARGET_ACTIVE, "%s", bt.error);
    /* a configured param overrides the group's label; an empty first value deletes it */
    cr_assert_null(labelset_get(&bt.discovered, "__param_empty"));
    cr_assert_str_eq(labelset_get(&bt.discovered, "__param_multi"), "c");
    cr_assert_str_eq(labelset_get(&bt.discovered, "__param_z"), "zz");
    cr_assert_str_eq(bt.url, "http://h:1/pa%20th/x%3Fy%21%2A%27%28%29?empty=&multi=c&multi=a&multi=b"
                             "&q+s=a+b%26c%3Dd%2F%C3%A9&z=zz");
    built_target_free(&bt);
    labelset_free(&in);
}

Test(target, param_label_replaces_first_value_only)
{
    scrape_config sc = cfg("http");
    char *multi[] = {"c", "a"};
    param ps[] = {{"multi", multi, 2}};
    sc.params = ps;
    sc.n_params = 1;
    labelset l;
    set_labels(&l, "__scheme__", "https", "__address__", "h:1", "__metrics_path__", "/m", "__param_multi", "x", NULL);
    char *u = target_url(&sc, &l);
    cr_assert_str_eq(u, "https://h:1/m?multi=x&multi=a");
    free(u);
    labelset_free(&l);
}

Test(target, metrics_path_without_slash_and_host_escaping)
{
    scrape_config sc = cfg("http");
    sc.metrics_path = "metrics";
    labelset in;
    set_labels(&in, "__address__", "we ird@host:1", NULL);
    built_target bt;
    target_build(&sc, NULL, &in, &bt);
    cr_assert_eq(bt.status, TARGET_ACTIVE);
    /* Prometheus keeps the label as written and adds the slash only in the URL (differential test). */
    cr_assert_str_eq(labelset_get(&bt.labels, "__metrics_path__"), "metrics");
    cr_assert_str_eq(bt.url, "http://we%20ird%40host:1/metrics");
    built_target_free(&bt);
    labelset_free(&in);

    labelset l;
    set_labels(&l, "__scheme__", "http", "__address__", "h:1", "__metrics_path__", "rel", NULL);
    char *u = target_url(&sc, &l);
    cr_assert_str_eq(u, "http://h:1/rel"); /* Go adds the slash between host and path */
    free(u);
    labelset_free(&l);
}

Test(target, durations_canonical_and_hash_stable)
{
    scrape_config sc = cfg("http");
    sc.scrape_interval_ms = 90000;
    sc.scrape_timeout_ms = 7 * 86400000LL;
    sc.scrape_timeout_ms = 10000;
    labelset in;
    set_labels(&in, "__address__", "h:1", NULL);
    built_target a, b;
    target_build(&sc, NULL, &in, &a);
    target_build(&sc, NULL, &in, &b);
    cr_assert_str_eq(labelset_get(&a.labels, "__scrape_interval__"), "1m30s");
    cr_assert_str_eq(labelset_get(&a.labels, "__scrape_timeout__"), "10s");
    cr_assert_eq(a.hash, b.hash);
    cr_assert_neq(a.hash, 0);
    built_target_free(&b);
    labelset_free(&in);
    set_labels(&in, "__address__", "h:2", NULL);
    target_build(&sc, NULL, &in, &b);
    cr_assert_neq(a.hash, b.hash);
    built_target_free(&a);
    built_target_free(&b);
    labelset_free(&in);
}

/* A lead byte without its continuation bytes, overlong forms and surrogates are invalid UTF-8 (Go's
 * utf8.ValidString); found by mutation testing (make mutate). */
Test(target, invalid_utf8_sequences)
{
    scrape_config sc = cfg("https");
    labelset in;
    set_labels(&in, "__address__", "1.2.3.4:1000", "custom", "\xc3(", NULL);
    expect(&sc, &in, TARGET_FAILED, NULL, NULL, "invalid label value for \"custom\": \"\\xc3(\"");
    set_labels(&in, "__address__", "1.2.3.4:1000", "custom", "a\xe2\x82", NULL);
    expect(&sc, &in, TARGET_FAILED, NULL, NULL, "invalid label value for \"custom\": \"a\\xe2\\x82\"");
    set_labels(&in, "__address__", "1.2.3.4:1000", "custom", "\xc0\xaf", NULL);
    expect(&sc, &in, TARGET_FAILED, NULL, NULL, "invalid label value for \"custom\": \"\\xc0\\xaf\"");
    set_labels(&in, "__address__", "1.2.3.4:1000", "custom", "\xed\xa0\x80", NULL);
    expect(&sc, &in, TARGET_FAILED, NULL, NULL, "invalid label value for \"custom\": \"\\xed\\xa0\\x80\"");
}

/* The code point bounds of a valid label value (Go's utf8.ValidString): U+10FFFF and the neighbours of
 * the surrogates and of each length's smallest code point are valid, U+110000, surrogates and overlong
 * forms are not. Found by mutation testing (issue 19, seed 2). */
Test(target, utf8_code_point_bounds)
{
    scrape_config sc = cfg("https");
    const char *good[] = {"\xf4\x8f\xbf\xbf", "\xed\x9f\xbf", "\xee\x80\x80", "\xc2\x80", "\xdf\xbf",
                          "\xe0\xa0\x80", "\xf0\x90\x80\x80", "\xc2\xa0"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        labelset in;
        set_labels(&in, "__address__", "1.2.3.4:1000", "custom", good[i], NULL);
        expect(&sc, &in, TARGET_ACTIVE, NULL, NULL, NULL);
    }
    const char *bad[][2] = {
        {"\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"}, {"\xed\xbf\xbf", "\\xed\\xbf\\xbf"},
        {"\xe0\x9f\xbf", "\\xe0\\x9f\\xbf"},         {"\xf0\x8f\xbf\xbf", "\\xf0\\x8f\\xbf\\xbf"},
        {"\xc1\xbf", "\\xc1\\xbf"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char want[128];
        snprintf(want, sizeof want, "invalid label value for \"custom\": \"%s\"", bad[i][1]);
        labelset in;
        set_labels(&in, "__address__", "1.2.3.4:1000", "custom", bad[i][0], NULL);
        expect(&sc, &in, TARGET_FAILED, NULL, NULL, want);
    }
}

/* A __param_ label that sorts first in the set (no __address__ before it) still makes the query, as Go's
 * url.URL{Scheme: "http", RawQuery: "a=1"}.String() would. */
Test(target, url_of_a_param_label_sorted_first)
{
    scrape_config sc = cfg("http");
    labelset l;
    set_labels(&l, "__param_a", "1", "__scheme__", "http", NULL);
    cr_assert_str_eq(l.v[0].name, "__param_a");
    char *u = target_url(&sc, &l);
    cr_assert_str_eq(u, "http:?a=1");
    free(u);
    labelset_free(&l);
    set_labels(&l, "__param_a", "1", "__param_b", "2", NULL);
    u = target_url(&sc, &l);
    cr_assert_str_eq(u, "?a=1&b=2");
    free(u);
    labelset_free(&l);
}

/* Go's url.URL.String() special cases: the path "*" is not escaped (EscapedPath), and a relative path
 * whose first segment holds a colon gets "./" so that it does not read as a scheme (RFC 3986 4.2). Found
 * by mutation testing (issue 19, seed 1 of target.c on the current code). */
Test(target, url_special_paths)
{
    scrape_config sc = cfg("http");
    struct {
        const char *scheme, *addr, *path, *want;
    } cases[] = {
        {"http", "h:1", "*", "http://h:1/*"},
        {"http", "h:1", "/*", "http://h:1/%2A"},
        {"http", "h:1", "**", "http://h:1/%2A%2A"},
        {NULL, NULL, "a:b", "./a:b"},
        {NULL, NULL, "a:b/c", "./a:b/c"},
        {NULL, NULL, "a/b:c", "a/b:c"},
        {NULL, NULL, "ab", "ab"},
        {"http", NULL, "a:b", "http://a:b"}, /* Go writes "//" for a path without a host too */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        labelset l;
        labelset_init(&l);
        if (cases[i].scheme)
            labelset_set(&l, "__scheme__", cases[i].scheme);
        if (cases[i].addr)
            labelset_set(&l, "__address__", cases[i].addr);
        labelset_set(&l, "__metrics_path__", cases[i].path);
        char *u = target_url(&sc, &l);
        cr_assert_str_eq(u, cases[i].want, "path %s: %s", cases[i].path, u);
        free(u);
        labelset_free(&l);
    }
}

static relabel_rule mkrule(relabel_action a, const char *src1, const char *src2, const char *target, const char *regex,
                           const char *replacement)
{
    relabel_rule r;
    memset(&r, 0, sizeof r);
    r.action = a;
    if (src1)
        r.source_labels = calloc(2, sizeof(char *));
    if (src1)
        r.source_labels[r.n_source_labels++] = strdup(src1);
    if (src2)
        r.source_labels[r.n_source_labels++] = strdup(src2);
    r.target_label = target ? strdup(target) : NULL;
    r.regex = regex ? strdup(regex) : NULL;
    r.replacement = replacement ? strdup(replacement) : NULL;
    char err[256];
    cr_assert_eq(relabel_rule_prepare(&r, err, sizeof err), 0, "%s", err);
    return r;
}

/* target_build_final leaves out the __meta_* labels no rule reads: each way a rule reads one (a source
 * label, keepequal/dropequal's target_label, a labelmap regex, after a labeldrop, after a write) still sees
 * it, with the same result as target_build (issue 12: a running pod's million-label map was copied twice
 * per target). */
Test(target, final_build_reads_the_meta_labels_rules_name)
{
    scrape_config sc = cfg("http");
    labelset g, t;
    set_labels(&g, "__meta_a", "1", "__meta_b", "x", "__meta_c", "x", "__meta_k_label_app", "web",
               "__meta_k_label_tier", "db", "__meta_unread", "u", "env", "prod", NULL);
    set_labels(&t, "__address__", "h:1", "__meta_t", "tv", NULL);
    struct {
        relabel_rule rules[3];
        size_t n;
        target_build_status st;
        const char *labels;
    } cases[] = {
        {{mkrule(RELABEL_REPLACE, "__meta_a", NULL, "a", NULL, NULL)}, 1, TARGET_ACTIVE, "a=1,env=prod"},
        {{mkrule(RELABEL_REPLACE, "__meta_t", "__meta_b", "tb", NULL, NULL)}, 1, TARGET_ACTIVE, "env=prod,tb=tv;x"},
        {{mkrule(RELABEL_DROPEQUAL, "__meta_b", NULL, "__meta_c", NULL, NULL)}, 1, TARGET_DROPPED, ""},
        {{mkrule(RELABEL_KEEPEQUAL, "__meta_b", NULL, "__meta_c", NULL, NULL)}, 1, TARGET_ACTIVE, "env=prod"},
        {{mkrule(RELABEL_LABELMAP, NULL, NULL, NULL, "__meta_k_label_(.+)", NULL)}, 1, TARGET_ACTIVE,
         "app=web,env=prod,tier=db"},
        {{mkrule(RELABEL_LABELDROP, NULL, NULL, NULL, "__meta_a", NULL),
          mkrule(RELABEL_REPLACE, "__meta_a", NULL, "a", "(.*)", "v$1")},
         2, TARGET_ACTIVE, "a=v,env=prod"},
        {{mkrule(RELABEL_REPLACE, "__meta_t", NULL, "__meta_unread", NULL, NULL),
          mkrule(RELABEL_REPLACE, "__meta_unread", NULL, "w", NULL, NULL)},
         2, TARGET_ACTIVE, "env=prod,w=tv"},
        {{mkrule(RELABEL_KEEP, "__meta_k_label_tier", NULL, NULL, "web", NULL)}, 1, TARGET_DROPPED, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sc.relabel_configs = cases[i].rules;
        sc.n_relabel_configs = cases[i].n;
        built_target bt;
        target_build(&sc, &g, &t, &bt);
        cr_assert_eq(bt.status, cases[i].st, "case %zu: status %d", i, bt.status);
        labelset pub;
        target_public_labels(&bt.labels, &pub);
        labelset_del(&pub, "instance");
        labelset_del(&pub, "job");
        char *l = str(&pub);
        cr_assert_str_eq(l, cases[i].labels, "case %zu", i);
        free(l);
        labelset_free(&pub);
        same_final(&sc, &g, &t, &bt);
        built_target_free(&bt);
        for (size_t k = 0; k < cases[i].n; k++)
            relabel_rule_free(&cases[i].rules[k]);
    }
    labelset_free(&g);
    labelset_free(&t);
}

/* Relabeling that deletes __scrape_interval__ or __scrape_timeout__ leaves an empty duration: Prometheus'
 * "empty duration string", and the target stops there (no labels, no URL). */
Test(target, interval_or_timeout_deleted_by_relabeling)
{
    const char *names[] = {"__scrape_interval__", "__scrape_timeout__"};
    const char *errs[] = {"error parsing scrape interval: empty duration string",
                          "error parsing scrape timeout: empty duration string"};
    for (size_t i = 0; i < 2; i++) {
        scrape_config sc = cfg("http");
        relabel_rule r = mkrule(RELABEL_LABELDROP, NULL, NULL, NULL, names[i], NULL);
        sc.relabel_configs = &r;
        sc.n_relabel_configs = 1;
        labelset in;
        set_labels(&in, "__address__", "h:1", NULL);
        expect(&sc, &in, TARGET_FAILED, NULL, NULL, errs[i]);
        relabel_rule_free(&r);
    }
}

/* A configured param without values takes a __param_ label's value as its only one (Go: params[k] is
 * empty, so the label's value is set as a new list). */
Test(target, param_without_values_takes_the_label)
{
    scrape_config sc = cfg("http");
    param p = {"module", NULL, 0};
    sc.params = &p;
    sc.n_params = 1;
    labelset in;
    set_labels(&in, "__address__", "h:1", "__param_module", "icmp", NULL);
    expect(&sc, &in, TARGET_ACTIVE, NULL, NULL, "http://h:1/metrics?module=icmp");
}

/* The ingest keeps one public label set per target: it is sized exactly (cap == n), drops "__" names and
 * empty values, and a label set that is not sorted (never built by labelset_set) still comes out sorted. */
Test(target, public_labels_exact_and_sorted)
{
    labelset ls;
    labelset_init(&ls);
    labelset_set(&ls, "job", "j");
    labelset_set(&ls, "__address__", "h:1");
    labelset_set(&ls, "instance", "h:1");
    labelset_set(&ls, "__metrics_path__", "/m");
    labelset_set(&ls, "zone", "a");
    labelset pub;
    target_public_labels(&ls, &pub);
    char *s = str(&pub);
    cr_assert_str_eq(s, "instance=h:1,job=j,zone=a");
    free(s);
    cr_assert_eq(pub.n, 3);
    cr_assert_eq(pub.cap, 3);
    labelset_free(&pub);
    labelset_free(&ls);

    label v[] = {{"zone", "a"}, {"__x", "1"}, {"empty", ""}, {"instance", "h:1"}, {"job", "j"}};
    labelset unsorted = {v, 5, 5};
    target_public_labels(&unsorted, &pub);
    s = str(&pub);
    cr_assert_str_eq(s, "instance=h:1,job=j,zone=a");
    free(s);
    labelset_free(&pub);

    labelset only_private = {v + 1, 1, 1};
    target_public_labels(&only_private, &pub);
    cr_assert_eq(pub.n, 0);
    cr_assert_null(pub.v);
}

/* xorshift64: a fixed seed, the same chains on every run */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (unsigned)(rnd_state % n);
}

/* target_build_final runs the rules on a view of the discovered labels (read by name, nothing copied) until
 * one drops the target or reads every name, then copies and goes on: for random groups, targets, params and
 * chains of every action (labelmap/labeldrop/labelkeep anywhere in them), the same status, dropped_by,
 * error, labels, URL and hash as target_build, which copies the labels first (issue 12). */
Test(target, final_build_on_a_view_same_as_copied_random_chains)
{
    static const char *names[] = {"__address__", "__meta_a", "__meta_b", "__meta_k_label_x", "env", "job",
                                  "__scheme__", "__metrics_path__", "__param_module", "__scrape_interval__",
                                  "__scrape_timeout__", "instance", "z", "__meta_z"};
    static const char *values[] = {"", "h:1", "a", "A", "web", "1s", "https", "x;y", "h:2", "__meta_a", "2s"};
    static const char *regexes[] = {"(.*)", "a|web", "__meta_(.+)", ".*a.*", "h:.*", "env|z", "(h):(.*)",
                                    "__meta_k_label_(.+)", "1s|https"};
    static const char *repls[] = {"$1", "v$1", "", "${2}x", "z"};
#define PICK(a) (a)[rnd(sizeof(a) / sizeof *(a))]
    size_t ran = 0, dropped = 0, active = 0, failed = 0, viewed_all = 0;
    for (int iter = 0; iter < 4000; iter++) {
        scrape_config sc = cfg(rnd(4) ? "http" : "https");
        sc.scrape_interval_ms = 1000 * (1 + rnd(3));
        sc.scrape_timeout_ms = 1000 * (1 + rnd(3));
        param p[2] = {{"module", NULL, 0}, {"module", NULL, 0}};
        char *pv[2] = {(char *)PICK(values), (char *)PICK(values)};
        size_t np = rnd(3);
        for (size_t i = 0; i < np; i++) {
            p[i].values = &pv[i];
            p[i].n_values = rnd(2);
        }
        sc.params = p;
        sc.n_params = np;
        labelset g, t;
        labelset_init(&g);
        labelset_init(&t);
        for (unsigned k = rnd(6); k; k--)
            labelset_set(&g, PICK(names), PICK(values));
        for (unsigned k = rnd(4); k; k--)
            labelset_set(&t, PICK(names), PICK(values));
        if (rnd(4))
            labelset_set(&t, "__address__", rnd(2) ? "h:1" : "h");
        relabel_rule rules[5];
        size_t n = 0;
        bool every_name = false;
        for (unsigned k = rnd(6); k && n < 5; k--) {
            relabel_action a = (relabel_action)rnd(RELABEL_UPPERCASE + 1);
            bool names_only = a == RELABEL_LABELMAP || a == RELABEL_LABELDROP || a == RELABEL_LABELKEEP;
            bool needs_target = a == RELABEL_REPLACE || a == RELABEL_HASHMOD || a == RELABEL_LOWERCASE ||
                                a == RELABEL_UPPERCASE || a == RELABEL_KEEPEQUAL || a == RELABEL_DROPEQUAL;
            bool simple = a == RELABEL_KEEPEQUAL || a == RELABEL_DROPEQUAL || a == RELABEL_LOWERCASE ||
                          a == RELABEL_UPPERCASE;
            const char *s1 = names_only ? NULL : PICK(names);
            const char *s2 = names_only || rnd(2) ? NULL : PICK(names);
            const char *tl = needs_target ? PICK(names) : NULL;
            const char *re = simple ? NULL : PICK(regexes);
            const char *rp = a == RELABEL_REPLACE || a == RELABEL_LABELMAP ? PICK(repls) : NULL;
            relabel_rule r;
            memset(&r, 0, sizeof r);
            r.action = a;
            r.source_labels = calloc(2, sizeof(char *));
            if (s1)
                r.source_labels[r.n_source_labels++] = strdup(s1);
            if (s2)
                r.source_labels[r.n_source_labels++] = strdup(s2);
            if (!r.n_source_labels) {
                free(r.source_labels);
                r.source_labels = NULL;
            }
            r.target_label = tl ? strdup(tl) : NULL;
            r.regex = re ? strdup(re) : NULL;
            r.replacement = rp ? strdup(rp) : NULL;
            r.modulus = a == RELABEL_HASHMOD ? 1 + rnd(3) : 0;
            char err[256];
            if (relabel_rule_prepare(&r, err, sizeof err) < 0) {
                relabel_rule_free(&r);
                continue;
            }
            every_name = every_name || names_only;
            rules[n++] = r;
        }
        sc.relabel_configs = rules;
        sc.n_relabel_configs = n;
        built_target bt;
        target_build(&sc, &g, &t, &bt);
        same_final(&sc, &g, &t, &bt);
        dropped += bt.status == TARGET_DROPPED;
        active += bt.status == TARGET_ACTIVE;
        failed += bt.status == TARGET_FAILED;
        viewed_all += !every_name && n > 0;
        ran++;
        built_target_free(&bt);
        for (size_t k = 0; k < n; k++)
            relabel_rule_free(&rules[k]);
        labelset_free(&g);
        labelset_free(&t);
    }
#undef PICK
    /* the chains reach every outcome, on the view alone and past a rule that reads every name */
    cr_assert_eq(ran, 4000);
    cr_assert_gt(dropped, 400, "%zu dropped", dropped);
    cr_assert_gt(active, 400, "%zu active", active);
    cr_assert_gt(failed, 100, "%zu failed", failed);
    cr_assert_gt(viewed_all, 1000, "%zu", viewed_all);
}

/* A rule reading both defaults, __scrape_timeout__ as its source and __scrape_interval__ as dropequal's
 * target label, compares "10s" with "1m" on the view too (fuzz_target_build found them formatted into one
 * buffer: the second read overwrote the first, and the target was dropped). */
Test(target, final_build_view_reads_interval_and_timeout_apart)
{
    scrape_config sc = cfg("http");
    sc.scrape_interval_ms = 60000;
    sc.scrape_timeout_ms = 10000;
    relabel_rule r = mkrule(RELABEL_DROPEQUAL, "__scrape_timeout__", NULL, "__scrape_interval__", NULL, NULL);
    sc.relabel_configs = &r;
    sc.n_relabel_configs = 1;
    labelset in;
    set_labels(&in, "__address__", "h:1", NULL);
    built_target bt;
    target_build_final(&sc, NULL, &in, &bt);
    cr_assert_eq(bt.status, TARGET_ACTIVE, "status %d, dropped by %d", bt.status, bt.dropped_by);
    cr_assert_str_eq(labelset_get(&bt.labels, "__scrape_interval__"), "1m");
    cr_assert_str_eq(labelset_get(&bt.labels, "__scrape_timeout__"), "10s");
    built_target_free(&bt);
    labelset_free(&in);
    relabel_rule_free(&r);
}

/* Public labels: every name not starting with "__" (one underscore is public), with a value. */
Test(target, public_labels_single_underscore)
{
    labelset in, out;
    set_labels(&in, "_a", "1", "__b", "2", "c", "3", "__", "4", "_", "5", NULL);
    target_public_labels(&in, &out);
    char *s = str(&out);
    cr_assert_str_eq(s, "_=5,_a=1,c=3");
    free(s);
    labelset_free(&in);
    labelset_free(&out);
}
