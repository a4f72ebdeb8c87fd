/* json_groups: the streaming file_sd / http_sd JSON parser. Exact error texts and their order (the same as
 * the jansson tree code had), groups without targets left out with their positions still counted, and
 * the memory a response may take while parsed: peak growth (VmHWM, reset through /proc/self/clear_refs)
 * at most 5 times the body plus 4 MiB for every shape that keeps nothing. */
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sd/sd_internal.h"
#include "sd/sd_remote.h"
#include "util/strbuf.h"

static int parse(const char *doc, target_group **g, size_t **idx, size_t *n, char *err, size_t errlen)
{
    return sd_json_groups_parse("P", NULL, NULL, NULL, NULL, doc, strlen(doc), g, idx, n, err, errlen);
}

Test(sd_json_groups, error_texts_and_their_order)
{
    static const struct {
        const char *doc, *err;
    } cases[] = {
        {"{}", "expected a list of target groups, got object"},
        {"\"x\"", "expected a list of target groups, got string"},
        {"[{}, null]", "nil target group item found"},
        {"[{}, 5]", "group 1: expected an object with targets and labels, got number"},
        {"[[]]", "group 0: expected an object with targets and labels, got array"},
        {"[{\"targets\":\"a\"}]", "group 0: targets: expected a list of strings, got string"},
        {"[{\"labels\":[]}]", "group 0: labels: expected an object of strings, got array"},
        {"[{\"labels\":{\"bad-name\":\"x\"}}]", "group 0: \"bad-name\" is not a valid label name"},
        {"[{\"labels\":{\"a\":true}}]", "group 0: label a: expected a string, got bool"},
        {"[{\"targets\":[\"a\", {\"b\":1}]}]", "group 0: target 1: expected a string, got object"},
        /* an unknown field is reported first even when it comes after other errors of its group */
        {"[{\"targets\":5, \"labels\":{\"a\":1}, \"foo\":1}]",
         "group 0: unknown field \"foo\" (expected targets, labels)"},
        /* then targets' type, labels' type, the first bad label, the first bad target */
        {"[{\"labels\":5, \"targets\":5}]", "group 0: targets: expected a list of strings, got number"},
        {"[{\"targets\":[1], \"labels\":5}]", "group 0: labels: expected an object of strings, got number"},
        {"[{\"targets\":[1], \"labels\":{\"a\":null, \"b\":2}}]", "group 0: label a: expected a string, got null"},
        /* the first group with an error decides */
        {"[{\"targets\":[\"a\"]}, {\"labels\":{\"1\":\"x\"}}, {\"foo\":1}]",
         "group 1: \"1\" is not a valid label name"},
        /* a syntax error anywhere wins over any other error (the document is scanned to its end); syntax texts are
         * yajl's (jansson's before), numbers and NULs refused as jansson did */
        {"[{\"foo\":1}, {\"targets\":[\"a\"]},", "line 1 column 31: premature EOF"},
        {"[null, 1x]", "line 1 column 10: invalid char in json text."},
        {"[{\"foo\":1}]\n[", "line 2 column 2: trailing garbage"},
        /* blanks yajl skips but jansson did not: a form feed or vertical tab after the document */
        {"[{\"targets\":[\"a\"]}]\f", "line 1 column 21: trailing garbage"},
        {"[]\n\v", "line 2 column 2: trailing garbage"},
        {"[{\"foo\":1}, 99999999999999999999]", "line 1 column 33: too big integer"},
        {"[{\"foo\":1}, 1e999]", "line 1 column 18: real number overflow"},
        /* numbers longer than the 64-byte stack buffer are checked in a heap copy */
        {"[0.00000000000000000000000000000000000000000000000000000000000000000000001]", "group 0: expected an object with targets and labels, got number"},
        {"[10000000000000000000000000000000000000000000000000000000000000000000000]", "line 1 column 73: too big integer"},
        {"[\"a\\u0000b\"]", "line 1 column 12: \\u0000 is not allowed without JSON_ALLOW_NUL"},
        {"", "line 1 column 1: premature EOF"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        target_group *g = NULL;
        size_t n = 0;
        char err[512] = "";
        cr_assert_eq(parse(cases[i].doc, &g, NULL, &n, err, sizeof err), -1, "case %zu accepted", i);
        cr_expect_str_eq(err, cases[i].err, "case %zu: %s -> %s", i, cases[i].doc, err);
    }
}

Test(sd_json_groups, depth_limit_is_janssons)
{
    char doc[2 * 2049 + 1];
    memset(doc, '[', 2049);
    memset(doc + 2049, ']', 2049);
    doc[2 * 2049] = 0;
    target_group *g = NULL;
    size_t n = 0;
    char err[512];
    cr_assert_eq(parse(doc, &g, NULL, &n, err, sizeof err), -1);
    cr_assert_str_eq(err, "line 1 column 2050: maximum parsing depth reached");
    doc[2048] = 0; /* 2048 levels: a syntax error, not the depth limit */
    cr_assert_eq(parse(doc, &g, NULL, &n, err, sizeof err), -1);
    cr_assert_str_eq(err, "line 1 column 2049: premature EOF");
}

Test(sd_json_groups, only_groups_with_targets_with_their_positions)
{
    const char *doc = "[{}, {\"targets\":[\"a:1\",\"\",\"b:2\"], \"labels\":{\"env\":\"x\",\"empty\":\"\"}},"
                      " {\"targets\":[], \"labels\":{\"only\":\"labels\"}}, {\"Targets\":null},"
                      " {\"TARGETS\":[\"c:3\"], \"Labels\":{\"z\":\"1\",\"a\":\"2\"}}]";
    target_group *g = NULL;
    size_t *idx = NULL, n = 0;
    char err[512];
    cr_assert_eq(parse(doc, &g, &idx, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 2);
    cr_assert_eq(idx[0], 1);
    cr_assert_eq(idx[1], 4);
    cr_assert_str_eq(g[0].source, "P:1");
    cr_assert_str_eq(g[1].source, "P:4");
    cr_assert_eq(sd_group_index(&g[1]), 4);
    cr_assert_eq(g[0].n_targets, 3);
    cr_assert_str_eq(labelset_get(&g[0].targets[0], "__address__"), "a:1");
    cr_assert_eq(g[0].targets[1].n, 0); /* "" is a target without an address, as before */
    cr_assert_str_eq(labelset_get(&g[0].targets[2], "__address__"), "b:2");
    cr_assert_eq(g[0].labels.n, 1);
    cr_assert_str_eq(labelset_get(&g[0].labels, "env"), "x");
    cr_assert_eq(g[1].labels.n, 2);
    cr_assert_str_eq(g[1].labels.v[0].name, "a"); /* sorted, as labelset keeps them */
    /* the groups come frozen (stored by reference by the manager, never copied); a deep copy is a plain
     * group again, growable like any other */
    cr_assert_neq(g[0].gen, 0);
    cr_assert_neq(g[1].gen, g[0].gen);
    target_group c;
    target_group_copy(&c, &g[1]);
    cr_assert_eq(c.gen, 0);
    labelset t = LABELSET_INIT;
    labelset_set(&t, "__address__", "d:4");
    for (int k = 0; k < 5; k++)
        target_group_add_target(&c, &t);
    labelset_free(&t);
    cr_assert_eq(c.n_targets, 6);
    cr_assert_str_eq(labelset_get(&c.targets[5], "__address__"), "d:4");
    target_group_free(&c);
    sd_groups_free(g, n);
    free(idx);

    size_t gone[4];
    target_group now[1];
    target_group_init(&now[0], "P:4");
    size_t old[] = {0, 1, 4, 7};
    cr_assert_eq(sd_groups_gone(old, 4, now, 1, gone), 3);
    cr_assert_eq(gone[0], 0);
    cr_assert_eq(gone[1], 1);
    cr_assert_eq(gone[2], 7);
    target_group_free(&now[0]);
}

Test(sd_json_groups, repeated_keys_last_wins)
{
    target_group *g = NULL;
    size_t n = 0;
    char err[512];
    cr_assert_eq(parse("[{\"targets\":5, \"targets\":[\"a\"], \"labels\":{\"x\":\"1\"}, \"labels\":{\"y\":\"2\"}}]", &g,
                       NULL, &n, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(labelset_get(&g[0].targets[0], "__address__"), "a");
    cr_assert_null(labelset_get(&g[0].labels, "x"));
    cr_assert_str_eq(labelset_get(&g[0].labels, "y"), "2");
    sd_groups_free(g, n);
    /* a bad label in a labels map that a later one replaces is forgotten with it, and so are bad targets */
    cr_assert_eq(parse("[{\"labels\":{\"1\":\"x\",\"b\":2}, \"targets\":[3], \"labels\":{\"a\":\"b\",\"c\":\"d\"},"
                       " \"targets\":[\"t\"]}]",
                       &g, NULL, &n, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(n, 1);
    cr_assert_eq(g[0].labels.n, 2);
    cr_assert_str_eq(labelset_get(&g[0].labels, "a"), "b");
    cr_assert_str_eq(labelset_get(&g[0].labels, "c"), "d");
    cr_assert_eq(g[0].n_targets, 1);
    cr_assert_str_eq(labelset_get(&g[0].targets[0], "__address__"), "t");
    sd_groups_free(g, n);
}

/* A big labels map is set all at once: keys in descending order (each one set alone went to the front and
 * moved the whole set: 100,000 labels took 1.1 s, 1,000,000 about two minutes), repeated keys (the last
 * wins, "" deletes), and the group's values exact. */
Test(sd_json_groups, big_labels_map_descending_repeats)
{
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "[{\"targets\":[\"a:1\"],\"labels\":{\"zz\":\"1\",\"yy\":\"1\",\"zz\":\"2\",\"yy\":\"\"");
    for (int i = 199999; i >= 0; i--)
        strbuf_printf(&sb, ",\"l%06d\":\"v%d\"", i, i);
    strbuf_puts(&sb, ",\"l000007\":\"last\",\"zz\":\"3\"}}]");
    target_group *g = NULL;
    size_t n = 0;
    char err[512];
    cr_assert_eq(sd_json_groups_parse("P", NULL, NULL, NULL, NULL, sb.buf, sb.len, &g, NULL, &n, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(n, 1);
    cr_assert_eq(g[0].labels.n, 200001);
    cr_assert_str_eq(labelset_get(&g[0].labels, "zz"), "3");
    cr_assert_null(labelset_get(&g[0].labels, "yy"));
    cr_assert_str_eq(labelset_get(&g[0].labels, "l000000"), "v0");
    cr_assert_str_eq(labelset_get(&g[0].labels, "l000007"), "last");
    cr_assert_str_eq(labelset_get(&g[0].labels, "l199999"), "v199999");
    for (size_t i = 1; i < g[0].labels.n; i++)
        cr_assert_lt(strcmp(g[0].labels.v[i - 1].name, g[0].labels.v[i].name), 0);
    sd_groups_free(g, n);
    strbuf_free(&sb);
}

/* What is kept is bounded as the tree was (24 times the body + 1 MiB). Frozen targets are compact (a group
 * of 500,000 one-character targets keeps ~15 bytes per byte of body and passes), but every group repeats
 * its source and the provider's label: 100,000 one-target groups under a 300-byte prefix would keep ~50
 * bytes per byte. */
Test(sd_json_groups, kept_targets_are_bounded)
{
    size_t n = 500000, len = 0;
    char *doc = malloc(4 * n + 32);
    len += (size_t)sprintf(doc, "[{\"targets\":[");
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(doc + len, i ? ",\"a\"" : "\"a\"");
    len += (size_t)sprintf(doc + len, "]}]");
    target_group *g = NULL;
    size_t k = 0;
    char err[512];
    cr_assert_eq(sd_json_groups_parse("P", NULL, NULL, NULL, NULL, doc, len, &g, NULL, &k, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(k, 1);
    cr_assert_eq(g[0].n_targets, n);
    cr_assert_str_eq(labelset_get(&g[0].targets[n - 1], "__address__"), "a");
    sd_groups_free(g, k);
    free(doc);

    n = 100000;
    doc = malloc(18 * n + 32);
    len = (size_t)sprintf(doc, "[");
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(doc + len, i ? ",{\"targets\":[\"a\"]}" : "{\"targets\":[\"a\"]}");
    len += (size_t)sprintf(doc + len, "]");
    char prefix[301];
    memset(prefix, 'p', 300);
    prefix[300] = 0;
    cr_assert_eq(
        sd_json_groups_parse(prefix, "__meta_url", prefix, NULL, NULL, doc, len, &g, NULL, &k, err, sizeof err), -1);
    cr_assert_str_eq(err, "targets take more than 42 MiB for a body of 1800001 bytes (at most 24 times the body + 1 MiB)");
    free(doc);
}

/* ---- memory ---- */

static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    cr_assert_not_null(f);
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl) && line[fl] == ':')
            v = strtol(line + fl + 1, NULL, 10);
    fclose(f);
    return v;
}

/* Peak growth (bytes) of an http_sd parse of body: VmHWM is reset to the current RSS first. */
static long parse_growth(const char *body, size_t len, size_t *n_groups)
{
    malloc_trim(0);
    FILE *f = fopen("/proc/self/clear_refs", "w");
    cr_assert_not_null(f, "cannot reset VmHWM");
    fputs("5", f);
    fclose(f);
    long rss0 = status_kb("VmRSS");
    target_group *g = NULL;
    size_t n = 0;
    char err[512] = "";
    int rc = http_sd_parse_response("http://sd.example/t", 200, "application/json", body, len, &g, &n, err, sizeof err);
    long hwm = status_kb("VmHWM");
    if (rc == 0)
        sd_groups_free(g, n);
    *n_groups = rc == 0 ? n : 0;
    return (hwm - rss0) * 1024;
}

/* A 20 MB body: `head`, then `item` separated by commas as often as fits, then `tail`. */
static char *shape(const char *head, const char *item, const char *sep, const char *tail, size_t *len)
{
    const size_t target = 20u << 20;
    size_t hl = strlen(head), il = strlen(item), sl = strlen(sep), tl = strlen(tail);
    char *b = malloc(target + hl + il + tl + 1);
    cr_assert_not_null(b);
    size_t o = 0;
    memcpy(b, head, hl);
    o += hl;
    for (bool first = true; o + il + sl + tl < target; first = false) {
        if (!first) {
            memcpy(b + o, sep, sl);
            o += sl;
        }
        memcpy(b + o, item, il);
        o += il;
    }
    memcpy(b + o, tail, tl);
    o += tl;
    b[o] = 0;
    *len = o;
    return b;
}

Test(sd_json_groups, memory_is_bounded_whatever_the_shape, .timeout = 120)
{
#ifdef __SANITIZE_ADDRESS__
    /* as in tests/integration/hostile.sh: redzones and quarantine multiply every allocation */
    cr_skip_test("memory bounds are not measured under AddressSanitizer");
#endif
    static const struct {
        const char *name, *head, *item, *sep, *tail;
    } shapes[] = {
        {"empty objects", "[", "{}", ",", "]"},
        {"empty target lists", "[", "{\"targets\":[]}", ",", "]"},
        {"groups with labels and no targets", "[", "{\"labels\":{\"a\":\"b\"}}", ",", "]"},
        {"empty arrays (an error at the first)", "[", "[]", ",", "]"},
        {"deep arrays", "[", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", ",", "]"},
        {"an unknown field first, then many groups", "[{\"x\":1},", "{\"targets\":[\"a\"]}", ",", "]"},
        {"one huge label value", "[{\"labels\":{\"a\":\"", "xxxxxxxxxxxxxxxx", "", "\"}}]"},
        {"one huge unknown object", "[{\"x\":{", "\"k\":{}", ",", "}}]"},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        size_t len, n;
        char *body = shape(shapes[i].head, shapes[i].item, shapes[i].sep, shapes[i].tail, &len);
        long growth = parse_growth(body, len, &n);
        free(body);
        cr_log_info("%s: %zu bytes, peak growth %ld bytes (%.2fx)", shapes[i].name, len, growth,
                    (double)growth / (double)len);
        cr_expect_leq(growth, (long)(5 * len + (4u << 20)), "%s: peak growth %ld bytes for a body of %zu (%.1fx)",
                      shapes[i].name, growth, len, (double)growth / (double)len);
        cr_expect_eq(n, 0, "%s", shapes[i].name);
    }
}

/* The kept-bytes estimate at its edge: 4000 one-target groups under a 300-byte prefix keep more than the
 * 1 MiB base allows their body; each blank byte of the body allows 24 bytes more. The estimate of a group
 * or a target one byte off moves the edge by 4000 bytes (166 blanks). */
static int edge_doc(size_t blanks, char *err, size_t errlen)
{
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "[");
    for (int i = 0; i < 4000; i++)
        strbuf_puts(&sb, i ? ",{\"targets\":[\"a\"]}" : "{\"targets\":[\"a\"]}");
    for (size_t i = 0; i < blanks; i++)
        strbuf_puts(&sb, " ");
    strbuf_puts(&sb, "]");
    char prefix[301];
    memset(prefix, 'p', 300);
    prefix[300] = 0;
    target_group *g = NULL;
    size_t n = 0;
    int rc = sd_json_groups_parse(prefix, NULL, NULL, NULL, NULL, sb.buf, sb.len, &g, NULL, &n, err, errlen);
    if (rc == 0) {
        cr_assert_eq(n, 4000);
        sd_groups_free(g, n);
    }
    strbuf_free(&sb);
    return rc;
}

Test(sd_json_groups, kept_bytes_bound_at_its_edge)
{
    char err[512] = "";
    cr_assert_eq(edge_doc(28475, err, sizeof err), 0, "%s", err);
    cr_assert_eq(edge_doc(28474, err, sizeof err), -1);
    cr_assert_str_eq(err, "targets take more than 3 MiB for a body of 100475 bytes (at most 24 times the body + 1 MiB)");
}

/* A labels map is written into one buffer as it streams and sorted once when its group ends; from 64 KiB of
 * labels text the frozen group takes that buffer (sd_gb_freeze_arena) instead of copying it. Both paths
 * give the labels of labelset_set_many plus the provider's labels: the later pair of a name wins, an empty
 * value deletes, the provider's label replaces the map's, the label it removes is gone; every string
 * readable after the parse (the buffer is the group's, freed with it: ASan). */
static void check_map_rules(size_t filler)
{
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "[{\"labels\":{\"b\":\"1\",\"a\":\"x\",\"__meta_url\":\"mine\",\"__meta_filepath\":\"f\"");
    labelset want;
    labelset_init(&want);
    for (size_t i = 0; i < filler; i++) {
        strbuf_printf(&sb, ",\"f%zu\":\"v%zu\"", filler - i, i);
        char nm[32], v[32];
        snprintf(nm, sizeof nm, "f%zu", filler - i);
        snprintf(v, sizeof v, "v%zu", i);
        labelset_set(&want, nm, v);
    }
    /* a repeated key: the last wins; then one deleted by a later empty value; an empty value alone */
    strbuf_puts(&sb, ",\"a\":\"y\",\"b\":\"\",\"c\":\"\",\"a\":\"z\"},\"targets\":[\"t:1\",\"\"]},"
                     "{\"targets\":[\"u:2\"],\"labels\":{\"k\":\"w\"}}]");
    labelset_set(&want, "a", "z");
    labelset_set(&want, "__meta_url", "http://sd/x");
    target_group *g = NULL;
    size_t n = 0;
    char err[512];
    cr_assert_eq(sd_json_groups_parse("P", "__meta_url", "http://sd/x", "__meta_filepath", NULL, sb.buf, sb.len, &g,
                                      NULL, &n, err, sizeof err),
                 0, "%s", err);
    strbuf_free(&sb);
    cr_assert_eq(n, 2);
    cr_assert_eq(g[0].labels.n, want.n, "%zu labels, want %zu", g[0].labels.n, want.n);
    for (size_t i = 0; i < want.n; i++) {
        cr_assert_str_eq(g[0].labels.v[i].name, want.v[i].name);
        cr_assert_str_eq(g[0].labels.v[i].value, want.v[i].value);
    }
    cr_assert_eq(g[0].n_targets, 2);
    cr_assert_str_eq(labelset_get(&g[0].targets[0], "__address__"), "t:1");
    cr_assert_eq(g[0].targets[1].n, 0);
    /* the next group starts empty */
    cr_assert_eq(g[1].labels.n, 2);
    cr_assert_str_eq(labelset_get(&g[1].labels, "k"), "w");
    cr_assert_str_eq(labelset_get(&g[1].labels, "__meta_url"), "http://sd/x");
    labelset_free(&want);
    sd_groups_free(g, n);
}

Test(sd_json_groups, labels_map_rules_copied_and_adopted)
{
    check_map_rules(0);     /* a few bytes: copied into the frozen group */
    check_map_rules(10000); /* ~100 KiB: the group takes the buffer */
}

/* A key whose value is refused leaves its bytes behind for the next key: the error names the refused key
 * and a later key of the same group cannot pick up its bytes (the first bad label is reported). */
Test(sd_json_groups, refused_label_value_then_more_keys)
{
    target_group *g = NULL;
    size_t n = 0;
    char err[512];
    const char *doc = "[{\"targets\":[\"a\"],\"labels\":{\"ok\":\"1\",\"bad\":{\"x\":\"y\"},\"zz\":\"2\"}}]";
    cr_assert_eq(parse(doc, &g, NULL, &n, err, sizeof err), -1);
    cr_assert_str_eq(err, "group 0: label bad: expected a string, got object");
    doc = "[{\"targets\":[\"a\"],\"labels\":{\"ok\":\"1\",\"bad-name\":\"2\",\"zz\":\"2\"}}]";
    cr_assert_eq(parse(doc, &g, NULL, &n, err, sizeof err), -1);
    cr_assert_str_eq(err, "group 0: \"bad-name\" is not a valid label name");
    /* a second labels object replaces the first (the last key wins), keys before it forgotten */
    doc = "[{\"targets\":[\"a\"],\"labels\":{\"ok\":\"1\",\"p\":\"2\"},\"Labels\":{\"q\":\"3\"}}]";
    cr_assert_eq(parse(doc, &g, NULL, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(g[0].labels.n, 1);
    cr_assert_str_eq(labelset_get(&g[0].labels, "q"), "3");
    sd_groups_free(g, n);
}

/* The provider's label with an empty value deletes the map's label of that name (labelset_set's rule), on
 * both paths; absent from the map, nothing is added. */
Test(sd_json_groups, provider_label_empty_value_deletes)
{
    for (int adopt = 0; adopt < 2; adopt++) {
        size_t keep = sd_json_adopt_min;
        sd_json_adopt_min = adopt ? 0 : keep;
        const char *doc = "[{\"targets\":[\"a\"],\"labels\":{\"p\":\"1\",\"q\":\"2\"}},{\"targets\":[\"b\"],\"labels\":{\"q\":\"3\"}}]";
        target_group *g = NULL;
        size_t n = 0;
        char err[512];
        int rc = sd_json_groups_parse("P", "p", "", NULL, NULL, doc, strlen(doc), &g, NULL, &n, err, sizeof err);
        sd_json_adopt_min = keep;
        cr_assert_eq(rc, 0, "%s", err);
        cr_assert_eq(n, 2);
        cr_assert_eq(g[0].labels.n, 1);
        cr_assert_str_eq(g[0].labels.v[0].name, "q");
        cr_assert_eq(g[1].labels.n, 1);
        cr_assert_str_eq(g[1].labels.v[0].value, "3");
        sd_groups_free(g, n);
    }
}
