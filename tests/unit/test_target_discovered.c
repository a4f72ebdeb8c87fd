/* target_discovered_each (what the targets API writes a target's discovered labels with, without building
 * their set) against target_discovered_labels: the same labels in the same order for group and target
 * labels that collide with each other and with the scrape config's defaults and params (a param replaces,
 * an empty first value deletes, a param without values is ignored; defaults only fill what is absent). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scrape/target.h"
#include "util/strbuf.h"

typedef struct collected {
    strbuf sb;
    size_t n;
} collected;

static void collect(void *ctx, const char *name, const char *value)
{
    collected *c = ctx;
    strbuf_printf(&c->sb, "%s%s=%s", c->n++ ? "," : "", name, value);
}

static char *set_str(const labelset *ls)
{
    strbuf sb;
    strbuf_init(&sb);
    for (size_t i = 0; i < ls->n; i++)
        strbuf_printf(&sb, "%s%s=%s", i ? "," : "", ls->v[i].name, ls->v[i].value);
    return sb.buf;
}

static void same(const scrape_config *sc, const labelset *g, const labelset *t)
{
    labelset want;
    target_discovered_labels(sc, g, t, &want);
    char *ws = set_str(&want);
    collected c;
    strbuf_init(&c.sb);
    c.n = 0;
    target_discovered_each(sc, g, t, collect, &c);
    cr_assert_str_eq(c.sb.buf ? c.sb.buf : "", ws ? ws : "");
    cr_assert_eq(c.n, want.n);
    /* the hash without the set is labelset_hash of the set; the address is the set's */
    const char *addr = "unset";
    cr_assert_eq(target_discovered_hash(sc, g, t, &addr), labelset_hash(&want));
    const char *wa = labelset_get(&want, "__address__");
    if (wa)
        cr_assert_str_eq(addr, wa);
    else
        cr_assert_null(addr);
    free(ws);
    strbuf_free(&c.sb);
    labelset_free(&want);
}

Test(target_discovered, each_is_the_set)
{
    static const char *names[] = {"job",        "__scheme__", "__metrics_path__", "__scrape_interval__",
                                  "__param_a",  "__param_b",  "__param_c",        "__address__",
                                  "__meta_x",   "instance",   "zz",               "a"};
    static const char *values[] = {"1", "v", "https", "/m"};
    char *va[] = {"A1", "A2"}, *vb[] = {""}, *vd[] = {"D"};
    param params[] = {{"a", va, 2}, {"b", vb, 1}, {"c", NULL, 0}, {"d", vd, 1}};
    srand(7);
    for (int round = 0; round < 2000; round++) {
        scrape_config sc;
        memset(&sc, 0, sizeof sc);
        sc.job_name = round % 3 ? "job" : "other";
        sc.scheme = round % 2 ? "https" : NULL;
        sc.metrics_path = round % 5 ? "/metrics" : NULL;
        sc.scrape_interval_ms = 15000;
        sc.scrape_timeout_ms = round % 4 ? 10000 : 1500;
        sc.params = round % 7 ? params : NULL;
        sc.n_params = round % 7 ? 4 : 0;
        labelset g, t;
        labelset_init(&g);
        labelset_init(&t);
        int ng = rand() % 6, nt = rand() % 6;
        for (int i = 0; i < ng; i++)
            labelset_set(&g, names[rand() % 12], values[rand() % 4]);
        for (int i = 0; i < nt; i++)
            labelset_set(&t, names[rand() % 12], values[rand() % 4]);
        same(&sc, round % 11 ? &g : NULL, round % 13 ? &t : NULL);
        labelset_free(&g);
        labelset_free(&t);
    }
}

/* Literal: the target's label wins over the group's, a label the config defaults keeps its value, a param
 * replaces a discovered __param_, an empty first value deletes one. */
Test(target_discovered, literal)
{
    char *va[] = {"A1"}, *vb[] = {""};
    param params[] = {{"a", va, 1}, {"b", vb, 1}};
    scrape_config sc;
    memset(&sc, 0, sizeof sc);
    sc.job_name = "j";
    sc.metrics_path = "/m";
    sc.scrape_interval_ms = 60000;
    sc.scrape_timeout_ms = 10000;
    sc.params = params;
    sc.n_params = 2;
    labelset g, t;
    labelset_init(&g);
    labelset_init(&t);
    labelset_set(&g, "x", "g");
    labelset_set(&g, "__scheme__", "https");
    labelset_set(&g, "__param_b", "gone");
    labelset_set(&t, "x", "t");
    labelset_set(&t, "__param_a", "mine");
    labelset_set(&t, "__address__", "h:1");
    collected c;
    strbuf_init(&c.sb);
    c.n = 0;
    target_discovered_each(&sc, &g, &t, collect, &c);
    cr_assert_str_eq(c.sb.buf, "__address__=h:1,__metrics_path__=/m,__param_a=A1,__scheme__=https,"
                               "__scrape_interval__=1m,__scrape_timeout__=10s,job=j,x=t");
    strbuf_free(&c.sb);
    labelset_free(&g);
    labelset_free(&t);
}
