/* file_sd YAML read as libyaml's events (src/sd/file_parse.c): what the former document-tree reader did and
 * the streaming reader had to re-create (aliases, anchors, duplicate keys, scalars of every type, documents
 * after the first, empty files, the byte order mark, the order in which errors are reported), and the new
 * bound on the bytes aliases repeat. Every document here gives the same result with the former reader
 * (fuzz/fuzz_file_sd.c keeps it and compares), except the byte bound. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sd_test_util.h"
#include "util/strbuf.h"

static int parse(const char *doc, target_group **g, size_t *n, char *err, size_t errlen)
{
    *g = NULL;
    *n = 0;
    err[0] = 0;
    return sd_file_parse("f.yml", doc, strlen(doc), g, n, err, errlen);
}

/* The error for doc, or "accepted". */
static const char *refused(const char *doc)
{
    static char err[512];
    target_group *g;
    size_t n;
    if (parse(doc, &g, &n, err, sizeof err) == 0) {
        sd_groups_free(g, n);
        return "accepted";
    }
    return err;
}

static const char *addr(const target_group *g, size_t t)
{
    return labelset_get(&g->targets[t], "__address__");
}

Test(sd_file_yaml, aliases_stand_for_their_node)
{
    const char *doc = "- &g\n"
                      "  targets: [&a 'a:1', b:2]\n"
                      "  labels: &l {env: prod, &k team: core}\n"
                      "- *g\n"
                      "- targets: [*a]\n"
                      "  labels: *l\n"
                      "- targets: [c:3]\n"
                      "  labels: {*k : *a}\n";
    target_group *g;
    size_t n;
    char err[256];
    cr_assert_eq(parse(doc, &g, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 4);
    cr_assert_str_eq(g[1].source, "f.yml:1");
    cr_assert_eq(g[1].n_targets, 2);
    cr_assert_str_eq(addr(&g[1], 0), "a:1");
    cr_assert_str_eq(addr(&g[1], 1), "b:2");
    cr_assert_eq(g[1].labels.n, 3);
    cr_assert_str_eq(labelset_get(&g[1].labels, "team"), "core");
    cr_assert_str_eq(addr(&g[2], 0), "a:1");
    cr_assert_str_eq(labelset_get(&g[2].labels, "env"), "prod");
    cr_assert_str_eq(labelset_get(&g[3].labels, "team"), "a:1");
    cr_assert_str_eq(labelset_get(&g[3].labels, "__meta_filepath"), "f.yml");
    sd_groups_free(g, n);
}

Test(sd_file_yaml, alias_errors_name_the_anchored_node)
{
    /* the position is the anchored node's, as in the document tree */
    cr_assert_str_eq(refused("- targets: &t [a]\n  labels: *t\n"),
                     "line 1 column 12: labels: expected a mapping of strings, got list");
    cr_assert_str_eq(refused("- labels: &l {a: b}\n- targets: [*l]\n"),
                     "line 1 column 11: targets: expected a string, got mapping");
    cr_assert_str_eq(refused("- &g {targets: [a]}\n- labels: {x: *g}\n"),
                     "line 1 column 3: label x: expected a string, got mapping");
    cr_assert_str_eq(refused("- targets: [&s a]\n- *s\n"),
                     "line 1 column 13: group 1: expected a mapping with targets and labels, got scalar");
    cr_assert_str_eq(refused("- targets: [&n ~]\n- *n\n"), "line 1 column 13: nil target group item found");
    cr_assert_str_eq(refused("- &g {targets: [a]}\n- {*g : 1}\n"), "line 2 column 3: group 1: expected a string key");
    cr_assert_str_eq(refused("- targets: [&k lables]\n- {*k : 1}\n"),
                     "line 1 column 13: field lables not found in target group (expected targets, labels)");
    /* composer errors, from libyaml's loader before */
    cr_assert_str_eq(refused("- targets: [*a]\n"), "line 1 column 13: found undefined alias");
    cr_assert_str_eq(refused("- targets: [&a x, &a y]\n"),
                     "line 1 column 19: found duplicate anchor; first occurrence: second occurrence");
    /* they come before any error of the walk, wherever they are in the first document */
    cr_assert_str_eq(refused("- foo: 1\n- targets: [*nope]\n"), "line 2 column 13: found undefined alias");
    /* an alias to a node still open (inside itself) is always refused */
    cr_assert_str_eq(refused("&r [{targets: *r}]\n"), "line 1 column 5: targets: expected a string, got mapping");
    cr_assert_str_eq(refused("- &g {labels: *g}\n"), "line 1 column 3: label labels: expected a string, got mapping");
    cr_assert_str_eq(refused("- &g {targets: [a], labels: *g}\n"),
                     "line 1 column 16: label targets: expected a string, got list");
    cr_assert_str_eq(refused("- &g {targets: *g}\n"), "line 1 column 3: targets: expected a list of strings, got mapping");
    cr_assert_str_eq(refused("&r [*r]\n"), "line 1 column 1: group 0: expected a mapping with targets and labels, got list");
    cr_assert_str_eq(refused("- targets: &t [*t]\n"), "line 1 column 12: targets: expected a string, got list");
}

Test(sd_file_yaml, alias_budgets)
{
    /* targets and labels (as before): 22 aliases of a group of 20 labels in a 200-byte file */
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "- &g {targets: [a], labels: {");
    for (int i = 0; i < 20; i++)
        strbuf_printf(&sb, "%sl%d: v", i ? ", " : "", i);
    strbuf_puts(&sb, "}}\n");
    for (int i = 0; i < 22; i++)
        strbuf_puts(&sb, "- *g\n");
    cr_assert_str_eq(refused(sb.buf), "document expands to more targets and labels than its size allows (aliases)");
    /* bytes (new): a 64 kB value named by 300 aliases would be 19 MB of labels from a 66 kB file */
    strbuf_reset(&sb);
    strbuf_puts(&sb, "- targets: [a]\n  labels: {v0: &v ");
    for (int i = 0; i < 65536; i++)
        strbuf_puts(&sb, "x");
    strbuf_puts(&sb, "}\n");
    for (int i = 1; i <= 300; i++)
        strbuf_printf(&sb, "- {targets: [a], labels: {v%d: *v}}\n", i);
    cr_assert_str_eq(refused(sb.buf),
                     "document expands to more bytes of targets and labels than its size allows (aliases)");
    /* 10 aliases of it fit (656 kB of values from 66 kB) */
    strbuf_reset(&sb);
    strbuf_puts(&sb, "- targets: [a]\n  labels: {v0: &v ");
    for (int i = 0; i < 65536; i++)
        strbuf_puts(&sb, "x");
    strbuf_puts(&sb, "}\n");
    for (int i = 1; i <= 10; i++)
        strbuf_printf(&sb, "- {targets: [a], labels: {v%d: *v}}\n", i);
    target_group *g;
    size_t n;
    char err[256];
    cr_assert_eq(parse(sb.buf, &g, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 11);
    cr_assert_eq(strlen(labelset_get(&g[10].labels, "v10")), 65536);
    sd_groups_free(g, n);
    /* the byte bound at its edge: a scalar of S bytes named as 17 labels v0..v16 and the target "a" are
     * 17 * (S + 2) + 41 + 2 bytes (each string and its NUL); the file is S + 172 bytes, the bound 16 times
     * that + 1 MiB. S = 1,051,251: 17,871,344 bytes, the bound exactly; one byte more adds 17 and 16. */
    for (size_t s = 1051251; s <= 1051252; s++) {
        strbuf_reset(&sb);
        strbuf_puts(&sb, "- targets: [a]\n  labels: {v0: &v ");
        for (size_t i = 0; i < s; i++)
            strbuf_putc(&sb, 'x');
        for (int i = 1; i <= 16; i++)
            strbuf_printf(&sb, ", v%d: *v", i);
        strbuf_puts(&sb, "}\n#\n");
        cr_assert_eq(sb.len, s + 172);
        if (s == 1051251) {
            cr_assert_eq(parse(sb.buf, &g, &n, err, sizeof err), 0, "%s", err);
            cr_assert_eq(g[0].labels.n, 18);
            cr_assert_eq(strlen(labelset_get(&g[0].labels, "v16")), s);
            sd_groups_free(g, n);
        } else {
            cr_assert_str_eq(refused(sb.buf),
                             "document expands to more bytes of targets and labels than its size allows (aliases)");
        }
    }
    strbuf_free(&sb);
}

Test(sd_file_yaml, duplicate_keys)
{
    cr_assert_str_eq(refused("- targets: [a]\n  targets: [b]\n"), "line 2 column 3: key \"targets\" already set in map");
    cr_assert_str_eq(refused("- labels: {}\n  labels: ~\n"), "line 2 column 3: key \"labels\" already set in map");
    /* a label name's second occurrence; before a later bad value, after an earlier one */
    cr_assert_str_eq(refused("- targets: [a]\n  labels: {x: 1, y: 2, x: 3, z: [4]}\n"),
                     "line 2 column 24: key \"x\" already set in map");
    cr_assert_str_eq(refused("- targets: [a]\n  labels: {x: 1, z: [4], x: 3}\n"),
                     "line 2 column 21: label z: expected a string, got list");
    /* at the same key, the repeated name comes before its value's type */
    cr_assert_str_eq(refused("- targets: [a]\n  labels: {x: 1, x: [3]}\n"),
                     "line 2 column 18: key \"x\" already set in map");
    /* an invalid name comes before its repetition */
    cr_assert_str_eq(refused("- targets: [a]\n  labels: {0x: 1, 0x: 2}\n"),
                     "line 2 column 12: \"0x\" is not a valid label name");
    /* a bad key of the group comes before anything in its values, wherever it is */
    cr_assert_str_eq(refused("- labels: {a: [1]}\n  targets: 7\n  foo: bar\n"),
                     "line 3 column 3: field foo not found in target group (expected targets, labels)");
    /* then targets' type, labels' type, the labels, the targets */
    cr_assert_str_eq(refused("- labels: 7\n  targets: 8\n"), "line 2 column 12: targets: expected a list of strings, got scalar");
    cr_assert_str_eq(refused("- targets: [[1]]\n  labels: 7\n"), "line 2 column 11: labels: expected a mapping of strings, got scalar");
    cr_assert_str_eq(refused("- targets: [[1]]\n  labels: {a: [2]}\n"), "line 2 column 15: label a: expected a string, got list");
    /* merge keys are not resolved (as before) */
    cr_assert_str_eq(refused("- &g {targets: [a]}\n- <<: *g\n"),
                     "line 2 column 3: field << not found in target group (expected targets, labels)");
    cr_assert_str_eq(refused("- targets: [a]\n  labels: {<<: {a: b}}\n"), "line 2 column 12: \"<<\" is not a valid label name");
}

Test(sd_file_yaml, scalars_of_every_type_are_strings)
{
    const char *doc = "- targets: [1, true, 2.5, ~, '', 'null', 0x1f]\n"
                      "  labels:\n"
                      "    {i: 1, b: false, f: 1.5e3, n: ~, e: '', q: 'null', N: Null, t: !!str 7, d: 2024-01-01}\n"
                      "- targets: [x]\n"
                      "  labels:\n"
                      "    m: |\n      two\n      lines\n";
    target_group *g;
    size_t n;
    char err[256];
    cr_assert_eq(parse(doc, &g, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 2);
    cr_assert_eq(g[0].n_targets, 7);
    cr_assert_str_eq(addr(&g[0], 0), "1");
    cr_assert_str_eq(addr(&g[0], 1), "true");
    cr_assert_str_eq(addr(&g[0], 2), "2.5");
    cr_assert_eq(g[0].targets[3].n, 0); /* a null target: a target without labels */
    cr_assert_eq(g[0].targets[4].n, 0);
    cr_assert_str_eq(addr(&g[0], 5), "null");
    cr_assert_str_eq(addr(&g[0], 6), "0x1f");
    cr_assert_str_eq(labelset_get(&g[0].labels, "i"), "1");
    cr_assert_str_eq(labelset_get(&g[0].labels, "b"), "false");
    cr_assert_str_eq(labelset_get(&g[0].labels, "f"), "1.5e3");
    cr_assert_null(labelset_get(&g[0].labels, "n"));
    cr_assert_null(labelset_get(&g[0].labels, "e"));
    cr_assert_null(labelset_get(&g[0].labels, "N"));
    cr_assert_str_eq(labelset_get(&g[0].labels, "q"), "null");
    cr_assert_str_eq(labelset_get(&g[0].labels, "t"), "7");
    cr_assert_str_eq(labelset_get(&g[0].labels, "d"), "2024-01-01");
    cr_assert_str_eq(labelset_get(&g[1].labels, "m"), "two\nlines\n");
    cr_assert_eq(g[0].labels.n, 7); /* with __meta_filepath */
    sd_groups_free(g, n);
}

Test(sd_file_yaml, the_file_path_replaces_the_files_own)
{
    target_group *g;
    size_t n;
    char err[256];
    cr_assert_eq(parse("- targets: [a]\n  labels: {__meta_filepath: x, __meta_a: 1, __z: 2}\n", &g, &n, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(g[0].labels.n, 3);
    cr_assert_str_eq(g[0].labels.v[0].name, "__meta_a");
    cr_assert_str_eq(g[0].labels.v[1].name, "__meta_filepath");
    cr_assert_str_eq(g[0].labels.v[1].value, "f.yml");
    cr_assert_str_eq(g[0].labels.v[2].name, "__z");
    sd_groups_free(g, n);
    cr_assert_eq(parse("- targets: [a]\n  labels: {A: 1, b: 2}\n", &g, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(g[0].labels.n, 3);
    cr_assert_str_eq(g[0].labels.v[0].name, "A");
    cr_assert_str_eq(g[0].labels.v[1].name, "__meta_filepath");
    cr_assert_str_eq(g[0].labels.v[2].name, "b");
    sd_groups_free(g, n);
}

Test(sd_file_yaml, documents_after_the_first_are_not_read)
{
    target_group *g;
    size_t n;
    char err[256];
    cr_assert_eq(parse("- targets: [a]\n---\n- foo: 1\n--- [\n", &g, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(addr(&g[0], 0), "a");
    sd_groups_free(g, n);
    /* their aliases and anchors neither */
    cr_assert_str_eq(refused("- targets: [&a a]\n---\n- targets: [*b, &a c]\n"), "accepted");
    /* but their nesting is bounded, as before */
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "- targets: [a]\n---\n");
    for (int i = 0; i < 1001; i++)
        strbuf_puts(&sb, "[");
    cr_assert_str_eq(refused(sb.buf), "line 3 column 482: too much nesting for the document's size");
    strbuf_free(&sb);
    /* a syntax error in the first document comes before the walk's errors */
    cr_assert_str_eq(refused("- foo: 1\n- targets: [a\n"),
                     "line 3 column 1: while parsing a flow sequence: did not find expected ',' or ']'");
}

Test(sd_file_yaml, empty_files_and_byte_order_marks)
{
    static const char *empty[] = {"", "\n", "# only a comment\n", "---\n", "~\n", "null", "--- ~\n...\n", "[]"};
    for (size_t i = 0; i < sizeof empty / sizeof *empty; i++)
        cr_assert_str_eq(refused(empty[i]), "accepted", "%zu", i);
    target_group *g;
    size_t n;
    char err[256];
    cr_assert_eq(parse("\xef\xbb\xbf- targets: [a]\n", &g, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(addr(&g[0], 0), "a");
    sd_groups_free(g, n);
    /* UTF-16 (little endian, with its mark) */
    const char *ascii = "- targets: [a]\n";
    char u16[64] = "\xff\xfe";
    size_t ul = 2;
    for (const char *c = ascii; *c; c++) {
        u16[ul++] = *c;
        u16[ul++] = 0;
    }
    cr_assert_eq(sd_file_parse("f.yml", u16, ul, &g, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(addr(&g[0], 0), "a");
    sd_groups_free(g, n);
    /* a syntax error before any document (found while fuzzing the streaming reader) */
    cr_assert_str_eq(refused("`"), "line 1 column 1: while scanning for the next token: found character that cannot "
                                   "start any token");
    cr_assert_str_eq(refused("{}"), "line 1 column 1: expected a list of target groups, got mapping");
    cr_assert_str_eq(refused("x"), "line 1 column 1: expected a list of target groups, got scalar");
    cr_assert_str_eq(refused("- ~\n"), "line 1 column 3: nil target group item found");
    cr_assert_str_eq(refused("- {}\n- targets: ~\n- labels: {a: b}\n"), "accepted");
}
