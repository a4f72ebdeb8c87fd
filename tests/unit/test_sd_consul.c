/* Consul SD: response parsing (fixtures shaped like real Consul answers), configuration, and the provider
 * against the fake agent tests/fakes/consul.py (blocking queries, service add/remove, tag filters, health
 * changes, index reset, agent restart and outage, slow answers, malformed JSON, query parameters). */
#include <criterion/criterion.h>
#include <jansson.h>

#include "fake_util.h"
#include "heap_use.h"
#include "sd/sd_remote.h"
#include "sd_test_util.h"
#include "util/metrics.h"
#include "util/strbuf.h"

#define FX "tests/fixtures/consul/"

/* the health entries of one service of a fixture, as the agent would serve them */
static char *fixture_service(const char *file, const char *service)
{
    json_error_t je;
    json_t *root = json_load_file(file, 0, &je);
    cr_assert_not_null(root, "%s", je.text);
    char *s = json_dumps(json_object_get(json_object_get(root, "services"), service), JSON_ENCODE_ANY);
    json_decref(root);
    return s;
}

static const labelset *target_by_id(const target_group *g, const char *id)
{
    for (size_t i = 0; i < g->n_targets; i++) {
        const char *v = labelset_get(&g->targets[i], "__meta_consul_service_id");
        if (v && !strcmp(v, id))
            return &g->targets[i];
    }
    return NULL;
}

Test(sd_consul_parse, health_labels_like_prometheus)
{
    char *body = fixture_service(FX "basic.json", "web");
    target_group g;
    target_group_init(&g, "web");
    char err[256];
    cr_assert_eq(consul_parse_health(body, strlen(body), "web", "dc1", ",", &g, err, sizeof err), 0, "%s", err);
    cr_assert_eq(g.n_targets, 2);
    cr_assert_str_eq(labelset_get(&g.labels, "__meta_consul_service"), "web");
    cr_assert_str_eq(labelset_get(&g.labels, "__meta_consul_dc"), "dc1");
    const labelset *a = target_by_id(&g, "web-1"), *b = target_by_id(&g, "web-2");
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    /* no service address: the node's */
    cr_assert_str_eq(labelset_get(a, "__address__"), "10.0.0.1:8080");
    cr_assert_str_eq(labelset_get(a, "__meta_consul_address"), "10.0.0.1");
    cr_assert_null(labelset_get(a, "__meta_consul_service_address"));
    cr_assert_str_eq(labelset_get(a, "__meta_consul_node"), "node-a");
    cr_assert_str_eq(labelset_get(a, "__meta_consul_tags"), ",prod,v1,");
    cr_assert_str_eq(labelset_get(a, "__meta_consul_service_port"), "8080");
    cr_assert_str_eq(labelset_get(a, "__meta_consul_health"), "passing");
    cr_assert_str_eq(labelset_get(a, "__meta_consul_metadata_rack"), "r1");
    cr_assert_str_eq(labelset_get(a, "__meta_consul_metadata_os_name"), "linux"); /* sanitized */
    cr_assert_str_eq(labelset_get(a, "__meta_consul_service_metadata_version"), "1.2.3");
    cr_assert_str_eq(labelset_get(a, "__meta_consul_service_metadata_git_sha"), "abc");
    cr_assert_str_eq(labelset_get(a, "__meta_consul_tagged_address_lan"), "10.0.0.1");
    cr_assert_null(labelset_get(a, "__meta_consul_namespace"));
    cr_assert_null(labelset_get(a, "__meta_consul_partition"));
    /* service address wins for __address__; node address stays in __meta_consul_address */
    cr_assert_str_eq(labelset_get(b, "__address__"), "192.168.1.2:8081");
    cr_assert_str_eq(labelset_get(b, "__meta_consul_address"), "10.0.0.2");
    cr_assert_str_eq(labelset_get(b, "__meta_consul_service_address"), "192.168.1.2");
    cr_assert_str_eq(labelset_get(b, "__meta_consul_health"), "warning");
    cr_assert_str_eq(labelset_get(b, "__meta_consul_tagged_address_wan"), "203.0.113.2");
    cr_assert_str_eq(labelset_get(b, "__meta_consul_tagged_address_lan_ipv4"), "10.0.0.2");
    target_group_free(&g);
    free(body);

    /* IPv6 service address, critical, no tags; custom separator */
    body = fixture_service(FX "basic.json", "db");
    target_group_init(&g, "db");
    cr_assert_eq(consul_parse_health(body, strlen(body), "db", "dc9", ";", &g, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(labelset_get(&g.targets[0], "__address__"), "[2001:db8::3]:5432");
    cr_assert_str_eq(labelset_get(&g.targets[0], "__meta_consul_tags"), ";;");
    cr_assert_str_eq(labelset_get(&g.targets[0], "__meta_consul_health"), "critical");
    target_group_free(&g);
    free(body);

    /* a maintenance check wins over everything */
    body = fixture_service(FX "basic.json", "cache");
    target_group_init(&g, "cache");
    cr_assert_eq(consul_parse_health(body, strlen(body), "cache", "dc1", ",", &g, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(labelset_get(&g.targets[0], "__meta_consul_health"), "maintenance");
    target_group_free(&g);
    free(body);
}

Test(sd_consul_parse, health_edge_cases)
{
    char err[256];
    target_group g;
    target_group_init(&g, "s");
    const char *ns = "[{\"Node\":{\"Node\":\"n\",\"Address\":\"1.2.3.4\"},\"Service\":{\"ID\":\"i\",\"Port\":1,"
                     "\"Namespace\":\"team-a\",\"Partition\":\"part\",\"Tags\":null},\"Checks\":[]}]";
    cr_assert_eq(consul_parse_health(ns, strlen(ns), "s", "dc1", ",", &g, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(labelset_get(&g.targets[0], "__meta_consul_namespace"), "team-a");
    cr_assert_str_eq(labelset_get(&g.targets[0], "__meta_consul_partition"), "part");
    cr_assert_str_eq(labelset_get(&g.targets[0], "__meta_consul_health"), "passing"); /* no checks */
    cr_assert_str_eq(labelset_get(&g.targets[0], "__meta_consul_tags"), ",,");
    target_group_free(&g);
    /* an unknown check status gives no health label (Go returns "") */
    const char *odd = "[{\"Node\":{},\"Service\":{\"Port\":2},\"Checks\":[{\"CheckID\":\"c\",\"Status\":\"weird\"}]}]";
    target_group_init(&g, "s");
    cr_assert_eq(consul_parse_health(odd, strlen(odd), "s", "dc1", ",", &g, err, sizeof err), 0, "%s", err);
    cr_assert_null(labelset_get(&g.targets[0], "__meta_consul_health"));
    target_group_free(&g);
    /* objects under other Node fields are skipped: only Node.Meta and Node.TaggedAddresses become labels (an
     * object Node.Address reads as "", as jstr() read it); Node after Service, so that nothing read under Node
     * can hide in the service's meta map */
    const char *nobj = "[{\"Service\":{\"ID\":\"i\",\"Address\":\"10.1.1.1\",\"Port\":7},\"Checks\":[],"
                       "\"Node\":{\"Node\":\"n\",\"Datacenter\":{\"k\":\"v\"},\"Address\":{\"x\":\"y\"}}}]";
    target_group_init(&g, "s");
    cr_assert_eq(consul_parse_health(nobj, strlen(nobj), "s", "dc1", ",", &g, err, sizeof err), 0, "%s", err);
    cr_assert_eq(g.n_targets, 1);
    cr_assert_str_eq(labelset_get(&g.targets[0], "__address__"), "10.1.1.1:7");
    cr_assert_str_eq(labelset_get(&g.targets[0], "__meta_consul_node"), "n");
    cr_assert_null(labelset_get(&g.targets[0], "__meta_consul_address")); /* "" is no label */
    cr_assert_null(labelset_get(&g.targets[0], "__meta_consul_service_metadata_k"));
    cr_assert_null(labelset_get(&g.targets[0], "__meta_consul_service_metadata_x"));
    cr_assert_null(labelset_get(&g.targets[0], "__meta_consul_metadata_k"));
    target_group_free(&g);
    /* the tree code's texts and order: entry shape, then Port/Tags, tag strings, Node.Meta, Service.Meta,
     * Node.TaggedAddresses; the first entry with an error decides */
    static const char *const bad[][2] = {
        {"", "invalid JSON in health service s: line 1 column 1: premature EOF"},
        {"{", "invalid JSON in health service s: line 1 column 2: premature EOF"},
        {"5", "invalid JSON in health service s: line 1 column 2: '[' or '{' expected"},
        {"[] x", "invalid JSON in health service s: line 1 column 5: trailing garbage"},
        {"{}", "health service: expected a list of service entries"},
        {"[1]", "health service: malformed service entry"},
        {"[{\"Checks\":{}, \"Service\":{\"Port\":\"80\"}}]", "health service: malformed service entry"},
        {"[{\"Service\":{\"Port\":\"80\"}}]", "health service: malformed Service.Port or Service.Tags"},
        {"[{\"Service\":{\"Port\":null}}]", "health service: malformed Service.Port or Service.Tags"},
        {"[{\"Service\":{\"Tags\":{}}}]", "health service: malformed Service.Port or Service.Tags"},
        {"[{\"Service\":{\"Tags\":[1], \"Meta\":5}}]", "health service: expected tags to be strings"},
        {"[{\"Node\":{\"Meta\":{\"a\":1}}}]", "health service: expected string values in a map"},
        {"[{\"Service\":{\"Meta\":[]}}]", "health service: expected an object of strings"},
        {"[{\"Node\":{\"TaggedAddresses\":{\"lan\":5}}}, {\"Checks\":7}]",
         "health service: expected string values in a map"},
        /* a NUL in a key stops the parse there (jansson refused it) */
        {"[{\"Node\":{\"a\\u0000b\":\"x\"}}]", "invalid JSON in health service s: line 1 column 21: NUL byte in object key not supported"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        target_group_init(&g, "s");
        cr_assert_eq(consul_parse_health(bad[i][0], strlen(bad[i][0]), "s", "dc1", ",", &g, err, sizeof err), -1,
                     "case %zu", i);
        cr_expect_str_eq(err, bad[i][1], "case %zu: %s", i, err);
        target_group_free(&g);
    }
}

Test(sd_consul_parse, catalog_and_agent_self)
{
    consul_catalog_entry *v;
    size_t n;
    char err[256];
    const char *cat = "{\"web\":[\"prod\",\"v1\"],\"consul\":[],\"db\":null}";
    cr_assert_eq(consul_parse_catalog(cat, strlen(cat), &v, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(v[0].name, "consul"); /* sorted */
    cr_assert_str_eq(v[2].name, "web");
    cr_assert_eq(v[2].n_tags, 2);
    cr_assert_str_eq(v[2].tags[1], "v1");
    cr_assert_eq(v[1].n_tags, 0);
    consul_catalog_free(v, n);
    cr_assert_eq(consul_parse_catalog("{}", 2, &v, &n, err, sizeof err), 0, "%s", err); /* fuzz_remote_sd: UB once */
    cr_assert_eq(n, 0);
    consul_catalog_free(v, n);
    /* a repeated service keeps its last list, as jansson's object did */
    const char *dup = "{\"b\":[\"x\"],\"a\":null,\"b\":[\"y\",\"z\"]}";
    cr_assert_eq(consul_parse_catalog(dup, strlen(dup), &v, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(v[1].name, "b");
    cr_assert_eq(v[1].n_tags, 2);
    cr_assert_str_eq(v[1].tags[0], "y");
    consul_catalog_free(v, n);
    cr_assert_eq(consul_parse_catalog("[]", 2, &v, &n, err, sizeof err), -1);
    cr_assert_str_eq(err, "catalog services: expected an object of service names to tags");
    cr_assert_eq(consul_parse_catalog("{\"a\":[1]}", 9, &v, &n, err, sizeof err), -1);
    cr_assert_str_eq(err, "catalog services: expected tags to be strings");
    cr_assert_eq(consul_parse_catalog("{\"a\":5}", 7, &v, &n, err, sizeof err), -1);
    cr_assert_str_eq(err, "catalog services: expected a list of tags");
    cr_assert_eq(consul_parse_catalog("{\"web\": [\"a\", ", 14, &v, &n, err, sizeof err), -1);
    cr_assert(strstr(err, "invalid JSON in catalog services: line 1 column "), "%s", err);
    err[0] = 0;
    cr_assert_eq(consul_parse_catalog("{\"web\":\"prod\"}", 14, &v, &n, err, sizeof err), -1);
    cr_assert_str_eq(err, "catalog services: expected a list of tags");

    const char *self = "{\"Config\":{\"Datacenter\":\"eu-1\",\"NodeName\":\"x\"}}";
    char *dc = consul_parse_agent_datacenter(self, strlen(self), err, sizeof err);
    cr_assert_str_eq(dc, "eu-1");
    free(dc);
    cr_assert_null(consul_parse_agent_datacenter("{\"Config\":{\"Datacenter\":5}}", 27, err, sizeof err));
    cr_assert(strstr(err, "invalid value '5' for Config.Datacenter"), "%s", err);

    /* Go's encoding/json (the Consul client) takes duplicate keys, the last one winning */
    const char *dup2 = "{\"web\":[\"a\"],\"web\":[\"b\",\"c\"]}";
    cr_assert_eq(consul_parse_catalog(dup2, strlen(dup2), &v, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 1);
    cr_assert_eq(v[0].n_tags, 2);
    cr_assert_str_eq(v[0].tags[0], "b");
    consul_catalog_free(v, n);
    const char *dself = "{\"Config\":{\"Datacenter\":\"eu-1\",\"Datacenter\":\"eu-2\"},\"Config\":{\"Datacenter\":\"eu-3\"}}";
    dc = consul_parse_agent_datacenter(dself, strlen(dself), err, sizeof err);
    cr_assert_not_null(dc, "%s", err);
    cr_assert_str_eq(dc, "eu-3");
    free(dc);
}

/* /v1/agent/self is streamed: only Config.Datacenter counts, the last one when keys repeat (a later
 * "Config" replaces an earlier one whole), and a value that is not a string is named in the error. */
Test(sd_consul_parse, agent_self_streamed)
{
    static const struct {
        const char *body, *dc, *err;
    } cases[] = {
        {"{\"Member\":{\"Datacenter\":\"no\"},\"Config\":{\"NodeName\":\"n\",\"Datacenter\":\"eu\\u002d1\"}}", "eu-1", NULL},
        {"{\"Config\":{\"Datacenter\":null}}", NULL, "invalid value '<nil>' for Config.Datacenter"},
        {"{\"Config\":{\"Datacenter\":true}}", NULL, "invalid value 'true' for Config.Datacenter"},
        {"{\"Config\":{\"Datacenter\":-1.5e3}}", NULL, "invalid value '-1.5e3' for Config.Datacenter"},
        {"{\"Config\":{\"Datacenter\": {\"a\": [1, {}]} }}", NULL,
         "invalid value '{\"a\": [1, {}]}' for Config.Datacenter"},
        {"{\"Config\":{\"Datacenter\":[\"0123456789\",\"0123456789\",\"0123456789\",\"0123456789\",\"0123456789\"]}}",
         NULL, "invalid value '[\"0123456789\",\"0123456789\",\"0123456789\",\"0123456789\",\"0123456789...' for "
               "Config.Datacenter"},
        {"{\"Config\":{\"Datacenter\":\"a\"},\"Config\":{\"NodeName\":\"n\"}}", NULL,
         "invalid value '<nil>' for Config.Datacenter"},
        {"{\"Config\":{\"Datacenter\":[1]},\"Config\":{\"Datacenter\":\"b\"}}", "b", NULL},
        {"{\"Config\":{\"Datacenter\":\"a\",\"Datacenter\":5}}", NULL, "invalid value '5' for Config.Datacenter"},
        {"{\"Config\":{\"X\":{\"Datacenter\":\"deep\"}}}", NULL, "invalid value '<nil>' for Config.Datacenter"},
        {"{\"Config\":\"dc1\"}", NULL, "invalid value '<nil>' for Config.Datacenter"},
        {"[{\"Config\":{\"Datacenter\":\"a\"}}]", NULL, "invalid value '<nil>' for Config.Datacenter"},
        {"{}", NULL, "invalid value '<nil>' for Config.Datacenter"},
        {"\"dc1\"", NULL, "invalid JSON in agent self: line 1 column 6: '[' or '{' expected"},
        {"{\"Config\":{\"Datacenter\":\"a\"}} x", NULL, "invalid JSON in agent self: line 1 column 32: trailing garbage"},
        {"{\"Config\":{\"Datacenter\":\"a\"", NULL, "invalid JSON in agent self: line 1 column 28: premature EOF"},
        {"{\"Config\":{\"Datacenter\":{\"x\":[1,", NULL, "invalid JSON in agent self: line 1 column 33: premature EOF"},
        {"{\"Config\":{\"Datacenter\":0.1234567890123456789012345678901234567890123456789012345678901234567890}}", NULL,
         "invalid value '0.12345678901234567890123456789012345678901234567890123456789012...' for Config.Datacenter"},
        {"{\"Config\":{\"Datacenter\":\"a\",\"Port\":123456789012345678901234567890}}", NULL,
         "invalid JSON in agent self: line 1 column 66: too big integer"},
        {"{\"Member\":{\"a\\u0000\":1},\"Config\":{\"Datacenter\":\"a\"}}", NULL,
         "invalid JSON in agent self: line 1 column 21: NUL byte in object key not supported"},
        {"{\"Config\":{\"Datacenter\":\"a\\u0000b\"}}", NULL,
         "invalid JSON in agent self: line 1 column 35: \\u0000 is not allowed without JSON_ALLOW_NUL"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        char *dc = consul_parse_agent_datacenter(cases[i].body, strlen(cases[i].body), err, sizeof err);
        if (cases[i].dc) {
            cr_assert_not_null(dc, "%s: %s", cases[i].body, err);
            cr_assert_str_eq(dc, cases[i].dc, "%s", cases[i].body);
        } else {
            cr_assert_null(dc, "%s: %s", cases[i].body, dc);
            cr_assert_str_eq(err, cases[i].err, "%s: %s", cases[i].body, err);
        }
        free(dc);
    }
}

/* Every map of strings is checked: node Meta, service Meta and the node's TaggedAddresses. */
Test(sd_consul_parse, map_labels_must_hold_strings)
{
    static const char *const bad[] = {
        "[{\"Node\":{\"Node\":\"n\",\"Meta\":{\"a\":1}},\"Service\":{\"Port\":1}}]",
        "[{\"Node\":{\"Node\":\"n\"},\"Service\":{\"Port\":1,\"Meta\":{\"a\":true}}}]",
        "[{\"Node\":{\"Node\":\"n\",\"TaggedAddresses\":{\"lan\":[\"x\"]}},\"Service\":{\"Port\":1}}]",
        "[{\"Node\":{\"Node\":\"n\",\"TaggedAddresses\":[]},\"Service\":{\"Port\":1}}]",
    };
    char err[256];
    target_group g;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        target_group_init(&g, "s");
        err[0] = 0;
        cr_assert_eq(consul_parse_health(bad[i], strlen(bad[i]), "s", "dc1", ",", &g, err, sizeof err), -1, "case %zu",
                     i);
        cr_assert(strstr(err, "health service: expected "), "case %zu: %s", i, err);
        target_group_free(&g);
    }
    const char *ok = "[{\"Node\":{\"Node\":\"n\",\"Address\":\"10.0.0.1\",\"TaggedAddresses\":{\"lan\":\"10.0.0.1\","
                     "\"wan-v4\":\"1.2.3.4\"}},\"Service\":{\"Port\":80}}]";
    target_group_init(&g, "s");
    cr_assert_eq(consul_parse_health(ok, strlen(ok), "s", "dc1", ",", &g, err, sizeof err), 0, "%s", err);
    cr_assert_eq(g.n_targets, 1);
    cr_assert_str_eq(labelset_get(&g.targets[0], "__meta_consul_tagged_address_lan"), "10.0.0.1");
    cr_assert_str_eq(labelset_get(&g.targets[0], "__meta_consul_tagged_address_wan_v4"), "1.2.3.4");
    cr_assert_str_eq(labelset_get(&g.targets[0], "__address__"), "10.0.0.1:80");
    target_group_free(&g);
}

/* A big Meta map set all at once (one labelset_set per key, keys in descending order moved the whole set
 * each time: quadratic): repeated keys (the last wins, "" deletes), two keys sanitised to one name (the
 * later key in key order wins, as set one by one), values exact. */
Test(sd_consul_parse, big_meta_map_descending_repeats)
{
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "[{\"Node\":{\"Node\":\"n\",\"Address\":\"10.0.0.1\"},\"Service\":{\"Port\":80,\"Meta\":{"
                     "\"zz\":\"1\",\"yy\":\"1\",\"zz\":\"2\",\"yy\":\"\",\"a-b\":\"dash\",\"a.b\":\"dot\"");
    for (int i = 99999; i >= 0; i--)
        strbuf_printf(&sb, ",\"m%05d\":\"v%d\"", i, i);
    strbuf_puts(&sb, ",\"m00007\":\"last\"}}}]");
    target_group g;
    target_group_init(&g, "s");
    char err[256];
    cr_assert_eq(consul_parse_health(sb.buf, sb.len, "s", "dc1", ",", &g, err, sizeof err), 0, "%s", err);
    cr_assert_eq(g.n_targets, 1);
    const labelset *t = &g.targets[0];
    cr_assert_str_eq(labelset_get(t, "__meta_consul_service_metadata_zz"), "2");
    cr_assert_null(labelset_get(t, "__meta_consul_service_metadata_yy"));
    cr_assert_str_eq(labelset_get(t, "__meta_consul_service_metadata_a_b"), "dot"); /* "a.b" sorts after "a-b" */
    cr_assert_str_eq(labelset_get(t, "__meta_consul_service_metadata_m00000"), "v0");
    cr_assert_str_eq(labelset_get(t, "__meta_consul_service_metadata_m00007"), "last");
    cr_assert_str_eq(labelset_get(t, "__meta_consul_service_metadata_m99999"), "v99999");
    size_t meta = 0;
    for (size_t i = 0; i < t->n; i++)
        meta += strncmp(t->v[i].name, "__meta_consul_service_metadata_", 31) == 0;
    cr_assert_eq(meta, 100002);
    target_group_free(&g);
    strbuf_free(&sb);
}

/* `[{},{},...]`: every 3 bytes an instance (":0", ten labels, ~1 KiB kept): what is kept is bounded at
 * 24 times the body + 1 MiB like the tree parser was, so 2 MB of it fails instead of building GiBs. */
Test(sd_consul_parse, health_targets_are_bounded)
{
    size_t n = 700000, len = 0;
    char *body = malloc(3 * n + 2);
    body[len++] = '[';
    for (size_t i = 0; i < n; i++) {
        if (i)
            body[len++] = ',';
        body[len++] = '{';
        body[len++] = '}';
    }
    body[len++] = ']';
    body[len] = 0;
    target_group g;
    target_group_init(&g, "s");
    char err[256];
    cr_assert_eq(consul_parse_health(body, len, "s", "dc1", ",", &g, err, sizeof err), -1);
    cr_assert_str_eq(err, "health service: targets take more than 49 MiB for a body of 2100001 bytes (at most 24 times "
                          "the body + 1 MiB)");
    target_group_free(&g);
    free(body);
}

Test(sd_consul_parse, sanitize)
{
    char out[64];
    sd_sanitize_label_name("a-b.c/d_é9", out, sizeof out);
    cr_assert_str_eq(out, "a_b_c_d__9"); /* é: one rune, one '_' (Go's regexp works on runes) */
    sd_sanitize_label_name("x\xff\xfey", out, sizeof out);
    cr_assert_str_eq(out, "x__y"); /* invalid bytes: one each */
    /* the ends of each range are kept, their neighbours are not */
    sd_sanitize_label_name("09azAZ_`{@[/:", out, sizeof out);
    cr_assert_str_eq(out, "09azAZ_______");
    /* stray continuation bytes and an overlong lead byte: one '_' per byte, as Go's per-rune replacement */
    sd_sanitize_label_name("x\x80\x80y\xc0\x80z", out, sizeof out);
    cr_assert_str_eq(out, "x__y__z");
}

/* ---- configuration ---- */

static lookout_config *load(const char *block, char *err, size_t errlen)
{
    char y[2048];
    snprintf(y, sizeof y, "scrape_configs:\n- job_name: c\n  consul_sd_configs:\n%s", block);
    return config_parse(y, strlen(y), "test.yml", err, errlen);
}

Test(sd_consul_config, defaults_fields_and_errors)
{
    char err[512];
    lookout_config *c = load("  - {}\n", err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    const consul_sd_config *cc = &c->scrape_configs[0].sd_configs[0].u.consul;
    cr_assert_str_eq(cc->server, "localhost:8500");
    cr_assert_str_eq(cc->scheme, "http");
    cr_assert_str_eq(cc->tag_separator, ",");
    cr_assert(cc->allow_stale);
    cr_assert_eq(cc->refresh_interval_ms, 30000);
    cr_assert_null(cc->datacenter);
    cr_assert_null(cc->token);
    cr_assert(cc->http.follow_redirects);
    config_free(c);

    c = load("  - server: consul:8501\n    path_prefix: /consul\n    token: s3cr3t\n    datacenter: dc2\n"
             "    namespace: ns1\n    partition: p1\n    scheme: https\n    tag_separator: ';'\n"
             "    allow_stale: false\n    refresh_interval: 10s\n    services: [web, db]\n    tags: [prod]\n"
             "    node_meta: {rack: r1, os: linux}\n    tls_config: {insecure_skip_verify: true}\n"
             "    username: u\n    password: p\n",
             err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cc = &c->scrape_configs[0].sd_configs[0].u.consul;
    cr_assert_str_eq(cc->server, "consul:8501");
    cr_assert_str_eq(cc->path_prefix, "/consul");
    cr_assert_str_eq(cc->token, "s3cr3t");
    cr_assert_str_eq(cc->datacenter, "dc2");
    cr_assert_str_eq(cc->ns, "ns1");
    cr_assert_str_eq(cc->partition, "p1");
    cr_assert_str_eq(cc->scheme, "https");
    cr_assert_str_eq(cc->tag_separator, ";");
    cr_assert(!cc->allow_stale);
    cr_assert_eq(cc->refresh_interval_ms, 10000);
    cr_assert_eq(cc->n_services, 2);
    cr_assert_eq(cc->n_tags, 1);
    cr_assert_eq(cc->n_node_meta, 2);
    cr_assert_str_eq(cc->node_meta_keys[0], "os"); /* sorted */
    cr_assert_str_eq(cc->node_meta_values[1], "r1");
    cr_assert(cc->http.tls.insecure_skip_verify);
    cr_assert(cc->http.has_basic_auth); /* username/password folded in */
    cr_assert_str_eq(cc->http.basic_auth_username, "u");
    cr_assert_str_eq(cc->http.basic_auth_password, "p");
    const sd_config *b = &c->scrape_configs[0].sd_configs[0];
    cr_assert(sd_config_equal(b, b));
    config_free(c);

    static const struct {
        const char *yaml, *want;
    } bad[] = {
        {"  - server: '  '\n", "consul SD configuration requires a server address"},
        {"  - token: t\n    authorization: {credentials: x}\n", "at most one of consul SD token, authorization"},
        {"  - username: u\n    basic_auth: {username: v}\n", "at most one of consul SD configuration username"},
        {"  - scheme: ftp\n", "invalid scheme"},
        {"  - node_meta: [a]\n", "node_meta"},
        {"  - services: web\n", "services"},
        {"  - servr: x\n", "field servr not found"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        c = load(bad[i].yaml, err, sizeof err);
        cr_assert_null(c, "case %zu loaded", i);
        cr_assert(strstr(err, bad[i].want), "case %zu: %s", i, err);
    }
}

/* ---- the provider against the fake agent ---- */

static fake_proc FA;
static recorder REC;
static sd_manager *MGR;
static lookout_config *CFG;

static void live_setup(void)
{
    memset(&FA, 0, sizeof FA);
    rec_init(&REC);
    MGR = NULL;
    CFG = NULL;
    cr_assert_eq(fake_start(&FA, "tests/fakes/consul.py", 0, (const char *[]){"--fixture", FX "basic.json", NULL}), 0,
                 "cannot start tests/fakes/consul.py");
}

static void live_teardown(void)
{
    if (MGR)
        sd_manager_free(MGR);
    if (CFG)
        config_free(CFG);
    fake_stop(&FA);
    rec_free(&REC);
}

static void run(const char *extra)
{
    char block[1024], err[512];
    snprintf(block, sizeof block, "  - server: 127.0.0.1:%d\n    refresh_interval: 50ms\n%s", FA.port, extra);
    CFG = load(block, err, sizeof err);
    cr_assert_not_null(CFG, "%s", err);
    MGR = sd_manager_new(rec_sync, &REC, 20);
    cr_assert_eq(sd_manager_apply_config(MGR, CFG), 0);
}

static bool pred_n(const rec_call *c, void *arg)
{
    return call_targets(c) == (size_t)(uintptr_t)arg;
}

static const labelset *find_id(const rec_call *c, const char *id)
{
    for (size_t i = 0; i < c->n; i++) {
        const labelset *t = target_by_id(&c->groups[i], id);
        if (t)
            return t;
    }
    return NULL;
}

static bool pred_health(const rec_call *c, void *arg)
{
    const labelset *t = find_id(c, "web-2");
    return t && labelset_get(t, "__meta_consul_health") && !strcmp(labelset_get(t, "__meta_consul_health"), arg);
}

static char *requests(void)
{
    char *body = NULL;
    fake_request(FA.port, "GET", "/_test/requests", NULL, &body);
    return body ? body : strdup("");
}

/* The fake's counters: requests answered or held so far, and requests held now (blocking queries). */
static void stats(long *requests, long *held)
{
    char *body = NULL;
    *requests = *held = -1;
    if (fake_request(FA.port, "GET", "/_test/stats", NULL, &body) == 200 && body) {
        const char *r = strstr(body, "\"requests\":"), *h = strstr(body, "\"held\":");
        if (r)
            *requests = strtol(r + 11, NULL, 10);
        if (h)
            *held = strtol(h + 7, NULL, 10);
    }
    free(body);
}

/* Waits until the fake has seen more than `after` requests and holds a blocking query now: the provider
 * finished its cycle and waits for the next change. Returns the request count. */
static long wait_held(long after)
{
    long req = -1, held = -1;
    for (int64_t guard = sd_now_mono_ms() + 10000; sd_now_mono_ms() < guard; sleep_ms(10)) {
        stats(&req, &held);
        if (req > after && held >= 1)
            return req;
    }
    cr_assert_fail("the provider never waited in a blocking query (requests %ld, held %ld)", req, held);
    return -1;
}

/* Waits until the counter f goes past before (liveness guard 10 s). */
static void wait_counted(metric_family *f, double before, const char *what)
{
    for (int64_t guard = sd_now_mono_ms() + 10000; metric_value(f, NULL) <= before && sd_now_mono_ms() < guard;)
        sleep_ms(10);
    cr_assert_gt(metric_value(f, NULL), before, "%s", what);
}

TestSuite(sd_consul_live, .init = live_setup, .fini = live_teardown, .timeout = 40);

/* Changes arrive through blocking queries: each one is posted while the provider waits in one (the
 * fake holds it until the index moves), and the refresh interval alone would never bring it. */
Test(sd_consul_live, discovers_changes_through_blocking_queries)
{
    run("");
    const rec_call *c = rec_wait_for(&REC, "c", pred_n, (void *)(uintptr_t)4, 5000);
    cr_assert_not_null(c, "expected web x2, db, cache");
    const target_group *web = call_group(c, "web");
    cr_assert_not_null(web);
    cr_assert_str_eq(labelset_get(&web->labels, "__meta_consul_dc"), "dc1"); /* from /v1/agent/self */

    /* a new instance, a removed service, a health change */
    long seen = wait_held(0);
    cr_assert_eq(fake_post(FA.port, "/_test/state", "{\"fixture\": \"" FX "web_added.json\"}"), 200);
    cr_assert_not_null(rec_wait_for(&REC, "c", pred_has, "10.0.0.4:8082", 5000));

    seen = wait_held(seen);
    cr_assert_eq(fake_post(FA.port, "/_test/state", "{\"fixture\": \"" FX "db_removed.json\"}"), 200);
    c = rec_wait_for(&REC, "c", pred_lacks, "[2001:db8::3]:5432", 5000);
    cr_assert_not_null(c, "a service removed from the catalog must lose its targets");
    cr_assert_null(call_group(c, "db"));

    wait_held(seen);
    cr_assert_eq(fake_post(FA.port, "/_test/state", "{\"fixture\": \"" FX "web_critical.json\"}"), 200);
    cr_assert_not_null(rec_wait_for(&REC, "c", pred_health, "critical", 5000));

    char *r = requests();
    cr_assert(strstr(r, "/v1/agent/self"), "%s", r);
    cr_assert(strstr(r, "index="), "blocking queries carry the index: %s", r);
    cr_assert(strstr(r, "wait=120000ms"), "%s", r);
    cr_assert(strstr(r, "stale="), "allow_stale defaults to true: %s", r);
    free(r);
}

Test(sd_consul_live, tag_filter_all_tags_and_node_meta)
{
    run("    tags: [prod, v1]\n    node_meta: {rack: r1}\n");
    const rec_call *c = rec_wait_for(&REC, "c", pred_n, (void *)(uintptr_t)1, 5000);
    cr_assert_not_null(c);
    wait_held(0); /* every service read, the provider waits for changes: nothing more is coming */
    c = rec_last(&REC, "c");
    cr_assert_eq(call_targets(c), 1, "only web-1 carries prod and v1 on rack r1");
    cr_assert_not_null(find_id(c, "web-1"));
    char *r = requests();
    cr_assert(strstr(r, "tag=prod&tag=v1"), "%s", r);
    cr_assert(strstr(r, "node-meta=rack%3Ar1"), "%s", r);
    free(r);
}

Test(sd_consul_live, fixed_services_skip_the_catalog_and_send_token_and_dc)
{
    fake_post(FA.port, "/_test/state", "{\"token\": \"s3cr3t\", \"services\": {}}");
    fake_post(FA.port, "/_test/state", "{\"fixture\": \"" FX "basic.json\"}");
    run("    services: [db, nosuch]\n    token: s3cr3t\n    datacenter: dc7\n    allow_stale: false\n");
    const rec_call *c = rec_wait_for(&REC, "c", pred_n, (void *)(uintptr_t)1, 5000);
    cr_assert_not_null(c);
    cr_assert_str_eq(labelset_get(&call_group(c, "db")->labels, "__meta_consul_dc"), "dc7");
    char *r = requests();
    cr_assert_null(strstr(r, "/v1/catalog/services"), "%s", r);
    cr_assert_null(strstr(r, "/v1/agent/self"), "datacenter is configured: %s", r);
    cr_assert(strstr(r, "/v1/health/service/nosuch"), "%s", r);
    cr_assert(strstr(r, "dc=dc7"), "%s", r);
    cr_assert_null(strstr(r, "stale"), "%s", r);
    cr_assert(strstr(r, "\"token\": \"s3cr3t\""), "%s", r);
    free(r);
}

Test(sd_consul_live, index_reset_and_agent_restart)
{
    run("");
    cr_assert_not_null(rec_wait_for(&REC, "c", pred_n, (void *)(uintptr_t)4, 5000));
    /* the index goes backwards: the provider starts again from 0 and still sees the next change */
    long req, held;
    stats(&req, &held);
    cr_assert_eq(fake_post(FA.port, "/_test/restart", "{}"), 200);
    wait_held(req); /* queried the restarted agent and waits on its (lower) index */
    cr_assert_eq(fake_post(FA.port, "/_test/state", "{\"fixture\": \"" FX "web_added.json\"}"), 200);
    cr_assert_not_null(rec_wait_for(&REC, "c", pred_has, "10.0.0.4:8082", 5000));

    /* the agent goes away: targets stay, failures are counted; it comes back with fresh indexes */
    metric_family *f = metric_family_get("lookout_sd_consul_rpc_failures_total", METRIC_COUNTER,
                                         "The number of Consul RPC call failures.", 0, NULL);
    double before = metric_value(f, NULL);
    int port = FA.port;
    fake_stop(&FA);
    wait_counted(f, before, "a refused connection is a counted failure");
    cr_assert_eq(call_targets(rec_last(&REC, "c")), 5, "targets survive a Consul outage");
    cr_assert_eq(fake_start(&FA, "tests/fakes/consul.py", port, (const char *[]){"--fixture", FX "db_removed.json", NULL}),
                 0);
    const rec_call *c = rec_wait_for(&REC, "c", pred_n, (void *)(uintptr_t)3, 20000);
    cr_assert_not_null(c, "after the restart the new state (db gone) is picked up");
}

Test(sd_consul_live, slow_and_malformed_answers)
{
    cr_assert_eq(fake_post(FA.port, "/_test/delay", "{\"ms\": 400}"), 200);
    run("");
    cr_assert_not_null(rec_wait_for(&REC, "c", pred_n, (void *)(uintptr_t)4, 8000), "slow answers still arrive");
    cr_assert_eq(fake_post(FA.port, "/_test/delay", "{\"ms\": 0}"), 200);
    metric_family *f = metric_family_get("lookout_sd_consul_rpc_failures_total", METRIC_COUNTER,
                                         "The number of Consul RPC call failures.", 0, NULL);
    double before = metric_value(f, NULL);
    cr_assert_eq(fake_post(FA.port, "/_test/malformed", "{\"on\": true}"), 200);
    cr_assert_eq(fake_post(FA.port, "/_test/state", "{\"fixture\": \"" FX "empty.json\"}"), 200);
    wait_counted(f, before, "malformed JSON is a counted failure");
    cr_assert_eq(call_targets(rec_last(&REC, "c")), 4, "and keeps the targets");
    cr_assert_eq(fake_post(FA.port, "/_test/malformed", "{\"on\": false}"), 200);
    before = metric_value(f, NULL);
    cr_assert_eq(fake_post(FA.port, "/_test/status", "{\"code\": 500}"), 200);
    wait_counted(f, before, "a 500 is a counted failure");
    cr_assert_eq(call_targets(rec_last(&REC, "c")), 4, "a 500 keeps the targets");
    cr_assert_eq(fake_post(FA.port, "/_test/status", "{\"code\": 0}"), 200);
    /* recovery after the backoff: the empty catalog removes everything */
    cr_assert_not_null(rec_wait_for(&REC, "c", pred_n, (void *)(uintptr_t)0, 8000));
}

/* consul/api HealthChecks.AggregatedStatus: maintenance > critical > warning > passing, in any order; an
 * unknown status anywhere gives no label. Found by mutation testing (make mutate). */
static const char *health_of(const char *checks)
{
    static char out[32];
    char body[1024], err[256];
    snprintf(body, sizeof body, "[{\"Node\":{\"Node\":\"n\",\"Address\":\"1.2.3.4\"},\"Service\":{\"ID\":\"i\",\"Port\":1},"
                                "\"Checks\":[%s]}]", checks);
    target_group g;
    target_group_init(&g, "s");
    cr_assert_eq(consul_parse_health(body, strlen(body), "s", "dc1", ",", &g, err, sizeof err), 0, "%s", err);
    cr_assert_eq(g.n_targets, 1);
    const char *h = labelset_get(&g.targets[0], "__meta_consul_health");
    snprintf(out, sizeof out, "%s", h ? h : "(none)");
    target_group_free(&g);
    return out;
}
#define CHK(id, st) "{\"CheckID\":\"" id "\",\"Status\":\"" st "\"}"

Test(sd_consul_parse, health_aggregation_order)
{
    cr_assert_str_eq(health_of(CHK("a", "warning") "," CHK("b", "critical")), "critical");
    cr_assert_str_eq(health_of(CHK("a", "critical") "," CHK("b", "warning")), "critical");
    cr_assert_str_eq(health_of(CHK("a", "passing") "," CHK("b", "warning")), "warning");
    cr_assert_str_eq(health_of(CHK("a", "warning") "," CHK("b", "passing")), "warning");
    cr_assert_str_eq(health_of(CHK("a", "passing") "," CHK("b", "passing")), "passing");
    cr_assert_str_eq(health_of(CHK("_node_maintenance", "critical") "," CHK("b", "critical")), "maintenance");
    cr_assert_str_eq(health_of(CHK("b", "passing") "," CHK("_service_maintenance:i", "critical")), "maintenance");
    cr_assert_str_eq(health_of(CHK("_service_maintenance", "passing") "," CHK("b", "passing")), "passing");
    cr_assert_str_eq(health_of(CHK("a", "critical") "," CHK("b", "weird")), "(none)");
}

/* Everything the health parser allocates per entry (tags, service and node fields, meta maps, check
 * state) is released: parsing 8 entries whose first tag, address, node name and meta value are 64 KiB
 * each, then freeing the group, leaves the heap as it was (heap_use.h). A dropped free of one field per
 * entry would keep 512 KiB. */
Test(sd_consul_parse, health_parse_frees_what_it_allocates)
{
    size_t big = 64 * 1024, n = 8;
    char *v = malloc(big + 1);
    memset(v, 'v', big);
    v[big] = '\0';
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "[");
    for (size_t i = 0; i < n; i++)
        strbuf_printf(&sb,
                      "%s{\"Node\":{\"Node\":\"n%s\",\"Address\":\"a%s\",\"Meta\":{\"m\":\"%s\"},"
                      "\"TaggedAddresses\":{\"lan\":\"%s\"}},"
                      "\"Service\":{\"ID\":\"s%zu%s\",\"Service\":\"web\",\"Tags\":[\"%s\",\"t\"],"
                      "\"Address\":\"%s\",\"Namespace\":\"%s\",\"Partition\":\"%s\",\"Port\":80,"
                      "\"Meta\":{\"k\":\"%s\"}},"
                      "\"Checks\":[{\"CheckID\":\"%s\",\"Status\":\"warning\"}]}",
                      i ? "," : "", v, v, v, v, i, v, v, v, v, v, v, v);
    strbuf_puts(&sb, "]");
    free(v);
    size_t before = heap_use();
    target_group g;
    target_group_init(&g, "web");
    char err[256] = "";
    cr_assert_eq(consul_parse_health(sb.buf, sb.len, "web", "dc1", ",", &g, err, sizeof err), 0, "%s", err);
    cr_assert_eq(g.n_targets, n);
    cr_assert_str_eq(labelset_get(&g.targets[0], "__meta_consul_health"), "warning");
    target_group_free(&g);
    heap_use_assert_back_to(before);
    strbuf_free(&sb);
}

/* A service without a Port is port 0, as Prometheus formats Go's zero int ("10.0.0.2:0"), also right
 * after an entry that had one (nothing carries over between entries). */
Test(sd_consul_parse, service_without_port_is_port_0)
{
    const char *body = "[{\"Node\":{\"Node\":\"a\",\"Address\":\"10.0.0.1\"},"
                       "\"Service\":{\"ID\":\"s1\",\"Service\":\"web\",\"Port\":8080},\"Checks\":[]},"
                       "{\"Node\":{\"Node\":\"b\",\"Address\":\"10.0.0.2\"},"
                       "\"Service\":{\"ID\":\"s2\",\"Service\":\"web\"},\"Checks\":[]}]";
    target_group g;
    target_group_init(&g, "web");
    char err[256] = "";
    cr_assert_eq(consul_parse_health(body, strlen(body), "web", "dc1", ",", &g, err, sizeof err), 0, "%s", err);
    cr_assert_eq(g.n_targets, 2);
    const labelset *a = target_by_id(&g, "s1"), *b = target_by_id(&g, "s2");
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_str_eq(labelset_get(a, "__address__"), "10.0.0.1:8080");
    cr_assert_str_eq(labelset_get(b, "__address__"), "10.0.0.2:0");
    cr_assert_str_eq(labelset_get(b, "__meta_consul_service_port"), "0");
    target_group_free(&g);
}

/* Nesting is bounded at 2048 open containers (jansson's limit, which these parsers replaced): 2048 in
 * all is still read (and refused for its shape), 2049 stops at the limit. */
static char *nested(const char *open, int n, const char *close)
{
    char *b = malloc(strlen(open) + 2 * (size_t)n + strlen(close) + 1);
    size_t len = 0;
    len += (size_t)sprintf(b, "%s", open);
    memset(b + len, '[', (size_t)n), len += (size_t)n;
    memset(b + len, ']', (size_t)n), len += (size_t)n;
    strcpy(b + len, close);
    return b;
}

Test(sd_consul_parse, nesting_is_bounded_at_2048)
{
    char err[256];
    consul_catalog_entry *v;
    size_t k;
    char *b = nested("{\"s\":", 2047, "}");
    cr_assert_eq(consul_parse_catalog(b, strlen(b), &v, &k, err, sizeof err), -1);
    cr_assert_str_eq(err, "catalog services: expected tags to be strings");
    free(b);
    b = nested("{\"s\":", 2048, "}");
    cr_assert_eq(consul_parse_catalog(b, strlen(b), &v, &k, err, sizeof err), -1);
    cr_assert_str_eq(err, "invalid JSON in catalog services: line 1 column 2054: maximum parsing depth reached");
    free(b);
    target_group g;
    target_group_init(&g, "s");
    b = nested("[", 2047, "]");
    cr_assert_eq(consul_parse_health(b, strlen(b), "s", "dc1", ",", &g, err, sizeof err), -1);
    cr_assert_str_eq(err, "health service: malformed service entry");
    free(b);
    b = nested("[", 2048, "]");
    cr_assert_eq(consul_parse_health(b, strlen(b), "s", "dc1", ",", &g, err, sizeof err), -1);
    cr_assert_str_eq(err, "invalid JSON in health service s: line 1 column 2050: maximum parsing depth reached");
    free(b);
    target_group_free(&g);
}

/* The bound on what a health answer may make, at its exact edge: `[{},{},...]` entries cost 3 bytes each
 * and make a target of ~430 bytes of accounted labels (x86-64 struct sizes), so 2920 of them fit in
 * 24 x the body + 1 MiB and 2921 do not. A change of the per-target accounting moves this edge. */
static int empty_entries(size_t n, target_group *g, char *err, size_t errlen)
{
    char *b = malloc(3 * n + 3);
    size_t len = 0;
    b[len++] = '[';
    for (size_t i = 0; i < n; i++) {
        if (i)
            b[len++] = ',';
        b[len++] = '{';
        b[len++] = '}';
    }
    b[len++] = ']';
    b[len] = '\0';
    target_group_init(g, "s");
    int rc = consul_parse_health(b, len, "s", "dc1", ",", g, err, errlen);
    free(b);
    return rc;
}

Test(sd_consul_parse, health_bound_at_its_edge)
{
    target_group g;
    char err[256] = "";
    cr_assert_eq(empty_entries(2920, &g, err, sizeof err), 0, "%s", err);
    cr_assert_eq(g.n_targets, 2920);
    target_group_free(&g);
    cr_assert_eq(empty_entries(2921, &g, err, sizeof err), -1);
    cr_assert_str_eq(err, "health service: targets take more than 1 MiB for a body of 8764 bytes (at most 24 times "
                          "the body + 1 MiB)");
    target_group_free(&g);
}
