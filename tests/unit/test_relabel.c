/* Relabel engine: Prometheus 2.42 semantics (model/relabel/relabel.go and relabel_test.go). */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "labels/relabel.h"
#include "util/strbuf.h"

static char **split_csv(const char *csv, size_t *n)
{
    *n = 0;
    if (!csv)
        return NULL;
    char **v = calloc(16, sizeof(char *));
    const char *p = csv;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        v[(*n)++] = strndup(p, len);
        if (!c)
            break;
        p = c + 1;
    }
    return v;
}

/* An unprepared rule; NULL fields take Prometheus' defaults in relabel_rule_prepare. */
static relabel_rule mk(relabel_action a, const char *sources, const char *target, const char *regex,
                       const char *replacement)
{
    relabel_rule r;
    memset(&r, 0, sizeof r);
    r.action = a;
    r.source_labels = split_csv(sources, &r.n_source_labels);
    r.target_label = target ? strdup(target) : NULL;
    r.regex = regex ? strdup(regex) : NULL;
    r.replacement = replacement ? strdup(replacement) : NULL;
    return r;
}

static relabel_rule prep(relabel_rule r)
{
    char err[512] = "";
    int rc = relabel_rule_prepare(&r, err, sizeof err);
    cr_assert_eq(rc, 0, "prepare failed: %s", err);
    return r;
}

/* Returns the error of preparing r ("" when it is valid); frees r. */
static const char *prep_err(relabel_rule r)
{
    static char err[512];
    err[0] = 0;
    if (relabel_rule_prepare(&r, err, sizeof err) == 0)
        err[0] = 0;
    relabel_rule_free(&r);
    return err;
}

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

/* Applies rules to ls and checks the result ("" + dropped when want == NULL). */
static void check(relabel_rule *rules, size_t n, labelset *ls, const char *want)
{
    relabel_result res = relabel_apply(rules, n, ls);
    if (!want) {
        cr_assert(!res.keep, "expected a drop");
        cr_assert_eq(ls->n, 0);
    } else {
        char *got = str(ls);
        cr_assert(res.keep, "unexpected drop by rule %d", res.dropped_by);
        cr_assert_str_eq(got, want);
        free(got);
    }
    for (size_t i = 0; i < n; i++)
        relabel_rule_free(&rules[i]);
    labelset_free(ls);
}

Test(relabel, actions_parse_case_insensitive)
{
    relabel_action a;
    cr_assert_eq(relabel_action_parse("Replace", &a), 0);
    cr_assert_eq(a, RELABEL_REPLACE);
    cr_assert_eq(relabel_action_parse("KEEPEQUAL", &a), 0);
    cr_assert_eq(a, RELABEL_KEEPEQUAL);
    cr_assert_eq(relabel_action_parse("labelkeep", &a), 0);
    cr_assert_eq(a, RELABEL_LABELKEEP);
    cr_assert_eq(relabel_action_parse("nope", &a), -1);
    cr_assert_eq(relabel_action_parse("", &a), -1);
    for (int i = 0; i <= RELABEL_UPPERCASE; i++) {
        cr_assert_eq(relabel_action_parse(relabel_action_name((relabel_action)i), &a), 0);
        cr_assert_eq((int)a, i);
    }
}

Test(relabel, defaults_filled)
{
    relabel_rule r = prep(mk(RELABEL_REPLACE, "a", "b", NULL, NULL));
    cr_assert_str_eq(r.separator, ";");
    cr_assert_str_eq(r.regex, "(.*)");
    cr_assert_str_eq(r.replacement, "$1");
    relabel_rule_free(&r);
}

/* Ported from Prometheus' TestRelabel. */
Test(relabel, replace_templates)
{
    labelset ls;
    set_labels(&ls, "a", "foo", "b", "bar", "c", "baz", NULL);
    relabel_rule r[] = {prep(mk(RELABEL_REPLACE, "a", "d", "f(.*)", "ch${1}-ch${1}"))};
    check(r, 1, &ls, "a=foo,b=bar,c=baz,d=choo-choo");
}

Test(relabel, replace_chain_multiple_sources)
{
    labelset ls;
    set_labels(&ls, "a", "foo", "b", "bar", "c", "baz", NULL);
    relabel_rule r[] = {prep(mk(RELABEL_REPLACE, "a,b", "a", "f(.*);(.*)r", "b${1}${2}m")),
                        prep(mk(RELABEL_REPLACE, "c,a", "d", "(b).*b(.*)ba(.*)", "$1$2$2$3"))};
    check(r, 2, &ls, "a=boobam,b=bar,c=baz,d=boooom");
}

Test(relabel, replace_no_match_changes_nothing)
{
    labelset ls;
    set_labels(&ls, "a", "boo", NULL);
    relabel_rule r[] = {prep(mk(RELABEL_REPLACE, "a", "b", "f", "bar"))};
    check(r, 1, &ls, "a=boo");
}

Test(relabel, replace_regex_is_anchored)
{
    labelset ls;
    set_labels(&ls, "a", "abc", NULL);
    /* "b" would match inside "abc" unanchored */
    relabel_rule r[] = {prep(mk(RELABEL_REPLACE, "a", "x", "b", "hit")),
                        prep(mk(RELABEL_REPLACE, "a", "y", ".*(b).*", "$1"))};
    check(r, 2, &ls, "a=abc,y=b");
}

Test(relabel, replace_missing_source_is_empty)
{
    labelset ls;
    set_labels(&ls, "a", "foo", NULL);
    relabel_rule r[] = {prep(mk(RELABEL_REPLACE, "a,nope,a", "x", "(.*)", "[$1]"))};
    check(r, 1, &ls, "a=foo,x=[foo;;foo]");
}

Test(relabel, replace_separator)
{
    labelset ls;
    set_labels(&ls, "a", "foo", "b", "bar", NULL);
    relabel_rule r0 = mk(RELABEL_REPLACE, "a,b", "x", NULL, NULL);
    r0.separator = strdup("--");
    relabel_rule r[] = {prep(r0)};
    check(r, 1, &ls, "a=foo,b=bar,x=foo--bar");
}

Test(relabel, replace_empty_value_deletes_target)
{
    labelset ls;
    set_labels(&ls, "a", "foo", "b", "bar", NULL);
    relabel_rule r[] = {prep(mk(RELABEL_REPLACE, "a", "b", "(f)(.*)", "$3"))};
    check(r, 1, &ls, "a=foo");
}

Test(relabel, replace_invalid_expanded_target_deletes_unexpanded)
{
    labelset ls;
    /* target "${1}" expands to "1ab", not a label name: Prometheus deletes the label named "${1}" (none) */
    set_labels(&ls, "a", "1ab", "b", "keep", NULL);
    relabel_rule r[] = {prep(mk(RELABEL_REPLACE, "a", "${1}", "(.*)", "v"))};
    check(r, 1, &ls, "a=1ab,b=keep");
}

Test(relabel, replace_templated_target)
{
    labelset ls;
    set_labels(&ls, "__meta_x", "env=prod", NULL);
    relabel_rule r[] = {prep(mk(RELABEL_REPLACE, "__meta_x", "${1}_label", "(\\w+)=(\\w+)", "$2"))};
    check(r, 1, &ls, "__meta_x=env=prod,env_label=prod");
}

Test(relabel, expand_edge_cases)
{
    char err[256];
    relabel_regex *re = relabel_regex_compile("(?P<first>a)(b)?(c)", err, sizeof err);
    cr_assert_not_null(re, "%s", err);
    struct {
        const char *tmpl, *want;
    } cases[] = {
        {"$1", "a"},         {"${1}x", "ax"},       {"$1x", ""},           {"$$", "$"},
        {"$$1", "$1"},       {"$2", ""},            {"$3", "c"},           {"$9", ""},
        {"$first", "a"},     {"${first}-", "a-"},   {"$first_", ""},       {"$", "$"},
        {"${", "${"},        {"${1", "${1"},        {"${}", "${}"},        {"a$-b", "a$-b"},
        {"$01", ""},         {"$0", "ac"},          {"${3}${1}", "ca"},    {"x$ y", "x$ y"},
        {"${first}${nope}", "a"}, {"$first$3", "ac"}, {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *out;
        const char *t = cases[i].tmpl;
        cr_assert(relabel_regex_expand(re, "ac", &t, 1, &out));
        cr_assert_str_eq(out, cases[i].want, "template %s", t);
        free(out);
    }
    char *out;
    const char *t = "$1";
    cr_assert(!relabel_regex_expand(re, "xx", &t, 1, &out));
    relabel_regex_free(re);
}

Test(relabel, expand_duplicate_names_first_participating)
{
    char err[256];
    /* Go allows duplicate names; $n takes the first group of that name that participated */
    relabel_regex *re = relabel_regex_compile("(?P<n>a)|(?P<n>b)", err, sizeof err);
    cr_assert_not_null(re, "%s", err);
    char *out;
    const char *t = "[$n]";
    cr_assert(relabel_regex_expand(re, "b", &t, 1, &out));
    cr_assert_str_eq(out, "[b]");
    free(out);
    relabel_regex_free(re);
}

Test(relabel, named_groups_with_go_only_names)
{
    char err[256];
    relabel_regex *re = relabel_regex_compile("(?P<1x>a+)", err, sizeof err); /* PCRE2 forbids this name */
    cr_assert_not_null(re, "%s", err);
    char *out;
    const char *t = "${1x}/$1";
    cr_assert(relabel_regex_expand(re, "aa", &t, 1, &out));
    cr_assert_str_eq(out, "aa/aa");
    free(out);
    relabel_regex_free(re);
}

Test(relabel, keep_and_drop)
{
    labelset ls;
    set_labels(&ls, "a", "foo", NULL);
    relabel_rule r1[] = {prep(mk(RELABEL_DROP, "a", NULL, ".*o.*", NULL))};
    check(r1, 1, &ls, NULL);
    set_labels(&ls, "a", "foo", NULL);
    relabel_rule r2[] = {prep(mk(RELABEL_DROP, "a", NULL, "f|o", NULL))}; /* anchored: no match */
    check(r2, 1, &ls, "a=foo");
    set_labels(&ls, "a", "foo", NULL);
    relabel_rule r3[] = {prep(mk(RELABEL_KEEP, "a", NULL, "no-match", NULL))};
    check(r3, 1, &ls, NULL);
    set_labels(&ls, "a", "foo", NULL);
    relabel_rule r4[] = {prep(mk(RELABEL_KEEP, "a", NULL, "f.*", NULL))};
    check(r4, 1, &ls, "a=foo");
    /* keep on a missing label: the value is "" */
    set_labels(&ls, "a", "foo", NULL);
    relabel_rule r5[] = {prep(mk(RELABEL_KEEP, "zz", NULL, "", NULL))};
    check(r5, 1, &ls, "a=foo");
}

Test(relabel, drop_stops_chain_and_reports_rule)
{
    labelset ls;
    set_labels(&ls, "a", "foo", NULL);
    relabel_rule r[] = {prep(mk(RELABEL_REPLACE, "a", "b", NULL, NULL)), prep(mk(RELABEL_DROP, "b", NULL, "foo", NULL)),
                        prep(mk(RELABEL_REPLACE, "a", "c", NULL, NULL))};
    relabel_result res = relabel_apply(r, 3, &ls);
    cr_assert(!res.keep);
    cr_assert_eq(res.dropped_by, 1);
    for (int i = 0; i < 3; i++)
        relabel_rule_free(&r[i]);
    labelset_free(&ls);
}

Test(relabel, keepequal_dropequal)
{
    labelset ls;
    set_labels(&ls, "a", "foo", "b", "foo", "c", "bar", NULL);
    relabel_rule r1[] = {prep(mk(RELABEL_KEEPEQUAL, "a", "b", NULL, NULL))};
    check(r1, 1, &ls, "a=foo,b=foo,c=bar");
    set_labels(&ls, "a", "foo", "b", "foo", "c", "bar", NULL);
    relabel_rule r2[] = {prep(mk(RELABEL_KEEPEQUAL, "a", "c", NULL, NULL))};
    check(r2, 1, &ls, NULL);
    set_labels(&ls, "a", "foo", "b", "foo", NULL);
    relabel_rule r3[] = {prep(mk(RELABEL_DROPEQUAL, "a", "b", NULL, NULL))};
    check(r3, 1, &ls, NULL);
    set_labels(&ls, "a", "foo", NULL);
    /* missing target label is "": equal to a missing source */
    relabel_rule r4[] = {prep(mk(RELABEL_DROPEQUAL, "x", "y", NULL, NULL))};
    check(r4, 1, &ls, NULL);
}

Test(relabel, hashmod_values)
{
    /* Expected values from Prometheus' relabel_test.go ("baz" mod 1000 = 976, "foo\nbar" = 734) and from
     * python3: int.from_bytes(hashlib.md5(b"foo").digest()[8:], "big") == 17145033699835028696 */
    cr_assert_eq(relabel_hashmod("baz", 1000), 976);
    cr_assert_eq(relabel_hashmod("foo\nbar", 1000), 734);
    cr_assert_eq(relabel_hashmod("foo", 0), 17145033699835028696ULL);
    cr_assert_eq(relabel_hashmod("foo", 7), 2);
    cr_assert_eq(relabel_hashmod("foo;bar", 1000), 750);
    cr_assert_eq(relabel_hashmod("", 1000), 958);

    labelset ls;
    set_labels(&ls, "a", "foo", "b", "bar", "c", "baz", NULL);
    relabel_rule r0 = mk(RELABEL_HASHMOD, "c", "d", NULL, NULL);
    r0.modulus = 1000;
    relabel_rule r[] = {prep(r0)};
    check(r, 1, &ls, "a=foo,b=bar,c=baz,d=976");
}

Test(relabel, labelmap)
{
    labelset ls;
    set_labels(&ls, "a", "foo", "b1", "bar", "b2", "baz", NULL);
    relabel_rule r[] = {prep(mk(RELABEL_LABELMAP, NULL, NULL, "(b.*)", "bar_${1}"))};
    check(r, 1, &ls, "a=foo,b1=bar,b2=baz,bar_b1=bar,bar_b2=baz");

    /* "$1_renamed" names group "1_renamed" (empty): Go's builder then sets a label with an empty name */
    set_labels(&ls, "b1", "bar", NULL);
    relabel_rule r1[] = {prep(mk(RELABEL_LABELMAP, NULL, NULL, "(b.*)", "$1_renamed"))};
    check(r1, 1, &ls, "=bar,b1=bar");

    /* new labels are not mapped again within the same rule */
    set_labels(&ls, "a", "1", NULL);
    relabel_rule r2[] = {prep(mk(RELABEL_LABELMAP, NULL, NULL, "(.*)", "x_$1"))};
    check(r2, 1, &ls, "a=1,x_a=1");

    /* values come from the labels before the rule: a→b and b→c both see the old values */
    set_labels(&ls, "__meta_a", "1", "__meta_b", "2", NULL);
    relabel_rule r3[] = {prep(mk(RELABEL_LABELMAP, NULL, NULL, "__meta_(.+)", "$1"))};
    check(r3, 1, &ls, "__meta_a=1,__meta_b=2,a=1,b=2");

    set_labels(&ls, "__meta_kubernetes_pod_label_app", "web", "__meta_kubernetes_pod_label_tier", "fe", NULL);
    relabel_rule r4[] = {prep(mk(RELABEL_LABELMAP, NULL, NULL, "__meta_kubernetes_pod_label_(.+)", NULL))};
    check(r4, 1, &ls, "__meta_kubernetes_pod_label_app=web,__meta_kubernetes_pod_label_tier=fe,app=web,tier=fe");
}

Test(relabel, labeldrop_labelkeep)
{
    labelset ls;
    set_labels(&ls, "a", "foo", "b1", "bar", "b2", "baz", NULL);
    relabel_rule r[] = {prep(mk(RELABEL_LABELDROP, NULL, NULL, "b.*", NULL))};
    check(r, 1, &ls, "a=foo");
    set_labels(&ls, "a", "foo", "b1", "bar", "b2", "baz", NULL);
    relabel_rule r2[] = {prep(mk(RELABEL_LABELKEEP, NULL, NULL, "b.*", NULL))};
    check(r2, 1, &ls, "b1=bar,b2=baz");
    set_labels(&ls, "ab", "1", "b", "2", NULL);
    relabel_rule r3[] = {prep(mk(RELABEL_LABELDROP, NULL, NULL, "b", NULL))}; /* anchored */
    check(r3, 1, &ls, "ab=1");
}

Test(relabel, lowercase_uppercase)
{
    labelset ls;
    set_labels(&ls, "foo", "bAr123Foo", NULL);
    relabel_rule r[] = {prep(mk(RELABEL_UPPERCASE, "foo", "foo_uppercase", NULL, NULL)),
                        prep(mk(RELABEL_LOWERCASE, "foo", "foo_lowercase", NULL, NULL))};
    check(r, 2, &ls, "foo=bAr123Foo,foo_lowercase=bar123foo,foo_uppercase=BAR123FOO");

    set_labels(&ls, "x", "ÄÖÜ-Ωmega", NULL);
    relabel_rule r2[] = {prep(mk(RELABEL_LOWERCASE, "x", "y", NULL, NULL))};
    check(r2, 1, &ls, "x=ÄÖÜ-Ωmega,y=äöü-ωmega");

    /* invalid UTF-8 becomes U+FFFD as in Go's strings.ToUpper */
    set_labels(&ls, "x", "a\xff" "b", NULL);
    relabel_rule r3[] = {prep(mk(RELABEL_UPPERCASE, "x", "y", NULL, NULL))};
    check(r3, 1, &ls, "x=a\xff" "b,y=A\xef\xbf\xbd" "B");

    /* an empty value deletes the target label */
    set_labels(&ls, "y", "old", NULL);
    relabel_rule r4[] = {prep(mk(RELABEL_LOWERCASE, "nope", "y", NULL, NULL))};
    check(r4, 1, &ls, "");
}

Test(relabel, validation_errors)
{
    relabel_rule r;
    r = mk(RELABEL_HASHMOD, "a", "b", NULL, NULL);
    cr_assert_str_eq(prep_err(r), "relabel configuration for hashmod requires non-zero modulus");
    r = mk(RELABEL_REPLACE, "a", NULL, NULL, NULL);
    cr_assert_str_eq(prep_err(r), "relabel configuration for replace action requires 'target_label' value");
    r = mk(RELABEL_LOWERCASE, "a", NULL, NULL, NULL);
    cr_assert_str_eq(prep_err(r), "relabel configuration for lowercase action requires 'target_label' value");
    r = mk(RELABEL_KEEPEQUAL, "a", NULL, NULL, NULL);
    cr_assert_str_eq(prep_err(r), "relabel configuration for keepequal action requires 'target_label' value");
    r = mk(RELABEL_HASHMOD, "a", NULL, NULL, NULL);
    r.modulus = 3;
    cr_assert_str_eq(prep_err(r), "relabel configuration for hashmod action requires 'target_label' value");
    r = mk(RELABEL_REPLACE, "a", "0bad", NULL, NULL);
    cr_assert_str_eq(prep_err(r), "\"0bad\" is invalid 'target_label' for replace action");
    r = mk(RELABEL_REPLACE, "a", "a-b", NULL, NULL);
    cr_assert_str_eq(prep_err(r), "\"a-b\" is invalid 'target_label' for replace action");
    r = mk(RELABEL_REPLACE, "a", "${1", NULL, NULL);
    cr_assert_str_eq(prep_err(r), "\"${1\" is invalid 'target_label' for replace action");
    r = mk(RELABEL_REPLACE, "a", "$1_x${2}y", NULL, NULL);
    cr_assert_str_eq(prep_err(r), "");
    r = mk(RELABEL_UPPERCASE, "a", "b", NULL, "x");
    cr_assert_str_eq(prep_err(r), "'replacement' can not be set for uppercase action");
    r = mk(RELABEL_LABELMAP, NULL, NULL, NULL, "-x");
    cr_assert_str_eq(prep_err(r), "\"-x\" is invalid 'replacement' for labelmap action");
    r = mk(RELABEL_HASHMOD, "a", "${1}", NULL, NULL);
    r.modulus = 2;
    cr_assert_str_eq(prep_err(r), "\"${1}\" is invalid 'target_label' for hashmod action");
    r = mk(RELABEL_KEEPEQUAL, "a", "b", "(.*)", NULL); /* any explicit regex, even the default text */
    cr_assert_str_eq(prep_err(r), "keepequal action requires only 'source_labels' and `target_label`, and no other fields");
    r = mk(RELABEL_DROPEQUAL, "a", "b", NULL, NULL);
    r.modulus = 2;
    cr_assert_str_eq(prep_err(r), "dropequal action requires only 'source_labels' and `target_label`, and no other fields");
    r = mk(RELABEL_DROPEQUAL, "a", "b", NULL, NULL);
    r.separator = strdup(",");
    cr_assert_str_eq(prep_err(r), "dropequal action requires only 'source_labels' and `target_label`, and no other fields");
    r = mk(RELABEL_DROPEQUAL, "a", "b", NULL, NULL);
    r.separator = strdup(";"); /* separator compared by value */
    cr_assert_str_eq(prep_err(r), "");
    r = mk(RELABEL_LABELDROP, "a", NULL, "x", NULL);
    cr_assert_str_eq(prep_err(r), "labeldrop action requires only 'regex', and no other fields");
    r = mk(RELABEL_LABELKEEP, NULL, "t", "x", NULL);
    cr_assert_str_eq(prep_err(r), "labelkeep action requires only 'regex', and no other fields");
    r = mk(RELABEL_LABELKEEP, NULL, NULL, "x", "$2");
    cr_assert_str_eq(prep_err(r), "labelkeep action requires only 'regex', and no other fields");
    r = mk(RELABEL_LABELKEEP, NULL, NULL, "x", "$1");
    cr_assert_str_eq(prep_err(r), "");
    r = mk(RELABEL_KEEP, "a", NULL, "a(b", NULL);
    cr_assert_str_eq(prep_err(r), "error parsing regexp: missing closing ): `^(?:a(b)$`");
    /* keep/drop/labelmap without target_label are fine */
    r = mk(RELABEL_DROP, "a", NULL, NULL, NULL);
    cr_assert_str_eq(prep_err(r), "");
}

static void expect_regex_error(const char *src, const char *want)
{
    char err[512] = "";
    relabel_regex *re = relabel_regex_compile(src, err, sizeof err);
    cr_assert_null(re, "%s should be rejected", src);
    if (want)
        cr_assert_str_eq(err, want, "regex %s", src);
}

Test(relabel, re2_rejections)
{
    expect_regex_error("(?=a)", "error parsing regexp: invalid or unsupported Perl syntax: `(?=`");
    expect_regex_error("(?!a)", "error parsing regexp: invalid or unsupported Perl syntax: `(?!`");
    expect_regex_error("(?<=a)b", "error parsing regexp: invalid or unsupported Perl syntax: `(?<`");
    expect_regex_error("(?<!a)b", "error parsing regexp: invalid or unsupported Perl syntax: `(?<`");
    expect_regex_error("(?<name>a)", "error parsing regexp: invalid or unsupported Perl syntax: `(?<`");
    expect_regex_error("(?>a)", "error parsing regexp: invalid or unsupported Perl syntax: `(?>`");
    expect_regex_error("(a)\\1", "error parsing regexp: invalid escape sequence: `\\1`");
    expect_regex_error("(?P<n>a)\\k<n>", "error parsing regexp: invalid escape sequence: `\\k`");
    expect_regex_error("a*+", "error parsing regexp: invalid nested repetition operator: `*+`");
    expect_regex_error("a++", "error parsing regexp: invalid nested repetition operator: `++`");
    expect_regex_error("a?+", "error parsing regexp: invalid nested repetition operator: `?+`");
    expect_regex_error("a{2}+", "error parsing regexp: invalid nested repetition operator: `{2}+`");
    expect_regex_error("a**", "error parsing regexp: invalid nested repetition operator: `**`");
    expect_regex_error("\\C", "error parsing regexp: invalid escape sequence: `\\C`");
    expect_regex_error("a{1001}", "error parsing regexp: invalid repeat count: `{1001}`");
    expect_regex_error("a{2,1}", "error parsing regexp: invalid repeat count: `{2,1}`");
    expect_regex_error("(a{100}){100}", "error parsing regexp: invalid repeat count: `{100}`");
    expect_regex_error("*a", "error parsing regexp: missing argument to repetition operator: `*`");
    expect_regex_error("a|*", "error parsing regexp: missing argument to repetition operator: `*`");
    expect_regex_error("(?#comment)", "error parsing regexp: invalid or unsupported Perl syntax: `(?#`");
    expect_regex_error("(?x)a", "error parsing regexp: invalid or unsupported Perl syntax: `(?x`");
    expect_regex_error("(?i-)a", "error parsing regexp: invalid or unsupported Perl syntax: `(?i-)`");
    expect_regex_error("(?|a)", NULL);
    expect_regex_error("(?R)", NULL);
    expect_regex_error("\\Z", "error parsing regexp: invalid escape sequence: `\\Z`");
    expect_regex_error("\\G", NULL);
    expect_regex_error("\\K", NULL);
    expect_regex_error("\\R", NULL);
    expect_regex_error("\\h", NULL);
    expect_regex_error("\\X", NULL);
    expect_regex_error("\\e", NULL);
    expect_regex_error("\\8", NULL);
    expect_regex_error("[\\b]", NULL);
    expect_regex_error("[a", "error parsing regexp: missing closing ]: `[a)$`");
    expect_regex_error("[z-a]", "error parsing regexp: invalid character class range: `z-a`");
    expect_regex_error("[[:foo:]]", "error parsing regexp: invalid character class range: `[:foo:]`");
    expect_regex_error("a)", "error parsing regexp: unexpected ): `^(?:a))$`");
    expect_regex_error("\\", NULL);
    expect_regex_error("\xff", NULL);
    expect_regex_error("(?P<>a)", "error parsing regexp: invalid named capture: `(?P<>`");
    expect_regex_error("(?P<a-b>a)", "error parsing regexp: invalid named capture: `(?P<a-b>`");
    expect_regex_error("(?P=n)", NULL);
    expect_regex_error("\\p{Nope}", NULL);
}

static void expect_match(const char *src, const char *s, bool want)
{
    char err[512] = "";
    relabel_regex *re = relabel_regex_compile(src, err, sizeof err);
    cr_assert_not_null(re, "%s: %s", src, err);
    cr_assert_eq(relabel_regex_match(re, s), want, "%s on \"%s\"", src, s);
    relabel_regex_free(re);
}

Test(relabel, go_syntax_accepted_and_matching)
{
    expect_match("", "", true);
    expect_match("", "a", false);
    expect_match("(.*)", "", true);
    expect_match("a.c", "abc", true);
    expect_match("a.c", "a\nc", false);
    expect_match("(?s)a.c", "a\nc", true);
    expect_match("a.c", "aéc", true); /* . is one code point */
    expect_match("(?i)FOO", "foo", true);
    expect_match("(?i:F)oo", "fOo", false);
    expect_match("a{2,3}", "aaa", true);
    expect_match("a{2,3}", "aaaa", false);
    expect_match("a{,3}", "a{,3}", true); /* not a repeat in Go: literal */
    expect_match("a{01}", "a{01}", true);
    expect_match("x{", "x{", true);
    expect_match("\\d+", "123", true);
    expect_match("\\d", "٣", false); /* ASCII only */
    expect_match("\\w+", "ab_9", true);
    expect_match("\\s", "\v", false); /* Go's \s has no \v */
    expect_match("\\s", "\t", true);
    expect_match("[\\s]", "\v", false);
    expect_match("\\S", "\v", true);
    expect_match("[\\S]", "\v", true);
    expect_match("[[:alpha:]]+", "abC", true);
    expect_match("[[:^digit:]]", "a", true);
    expect_match("\\pL+", "héllo", true);
    expect_match("\\p{Greek}", "Ω", true);
    expect_match("\\P{Greek}", "Ω", false);
    expect_match("\\x41\\x{42}", "AB", true);
    expect_match("\\101", "A", true);  /* octal */
    expect_match("\\0", "\x00", false); /* NUL cannot be in a C string; just compiles */
    expect_match("\\Qa.b\\E", "a.b", true);
    expect_match("\\Qa.b\\E", "axb", false);
    expect_regex_error("\\Qa.b", "error parsing regexp: missing closing ): `^(?:\\Qa.b)$`"); /* \Q eats ")$" */
    expect_match("a\\.b", "a.b", true);
    expect_match("\\_", "_", true);
    expect_match("a$", "a", true);
    expect_match("a$", "a\n", false); /* $ only at the end of the text */
    expect_match("(?m)a$\nb", "a\nb", true);
    expect_match("^a", "a", true);
    expect_match("\\Aa\\z", "a", true);
    expect_match("\\bfoo\\b", "foo", true);
    expect_match("a*?", "aa", true);
    expect_match("(?U)a+", "aa", true);
    expect_match("[]a]+", "]a", true);
    expect_match("[a-]+", "a-", true);
    expect_match("[^a]", "\n", true);
    expect_match("a#b", "a#b", true);
    expect_match("a b", "a b", true);
    expect_match("(?P<1x>a)", "a", true);
    expect_match("a)|(b", "a", true);   /* ^(?:a)|(b)$ as in Go */
    expect_match("a)|(b", "xb", true);
    expect_match("a)|(b", "ax", true);
    expect_match("(?i)k", "\xe2\x84\xaa", true); /* KELVIN SIGN folds to k */
    expect_match("(a{10}){10}", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", true);
    expect_match("a{1000}", "a", false);
    expect_match("(?i)(?-i:a)A", "aA", true);
    expect_match("(?)a", "a", true);
    expect_match("^*a", "a", true);
    expect_match(".*", "a\xff", true); /* Go reads an invalid byte as U+FFFD, which . matches */
    expect_match("a\\x{fffd}", "a\xff", true);
    expect_match("(.)", "\xe2\x82", false);
}

Test(relabel, replace_all_semantics)
{
    char err[256];
    relabel_regex *re = relabel_regex_compile("a)|(b", err, sizeof err);
    cr_assert_not_null(re);
    char *o = relabel_regex_replace_all(re, "xbb", "[$1]");
    cr_assert_str_eq(o, "xb[b]"); /* only the b at the end matches (b)$ */
    free(o);
    relabel_regex_free(re);
}

Test(relabel, copy_is_deep)
{
    relabel_rule r = prep(mk(RELABEL_REPLACE, "a,b", "c", "(x)(.*)", "$2"));
    relabel_rule c;
    relabel_rule_copy(&c, &r);
    relabel_rule_free(&r);
    labelset ls;
    set_labels(&ls, "a", "xy", "b", "z", NULL);
    relabel_rule rules[] = {c};
    check(rules, 1, &ls, "a=xy,b=z,c=y;z");
}

struct steps {
    int calls;
    bool last_keep;
    char seen[256];
};

static void on_step(void *ctx, size_t i, const labelset *after, bool keep)
{
    struct steps *s = ctx;
    s->calls++;
    s->last_keep = keep;
    char *l = str(after);
    size_t n = strlen(s->seen);
    snprintf(s->seen + n, sizeof s->seen - n, "%zu:{%s}", i, l);
    free(l);
}

Test(relabel, apply_steps)
{
    labelset ls;
    set_labels(&ls, "a", "foo", NULL);
    relabel_rule r[] = {prep(mk(RELABEL_REPLACE, "a", "b", NULL, "v")), prep(mk(RELABEL_DROP, "b", NULL, "v", NULL)),
                        prep(mk(RELABEL_REPLACE, "a", "c", NULL, NULL))};
    struct steps s = {0, true, ""};
    relabel_result res = relabel_apply_steps(r, 3, &ls, on_step, &s);
    cr_assert(!res.keep);
    cr_assert_eq(res.dropped_by, 1);
    cr_assert_eq(s.calls, 2);
    cr_assert(!s.last_keep);
    cr_assert_str_eq(s.seen, "0:{a=foo,b=v}1:{}");
    for (int i = 0; i < 3; i++)
        relabel_rule_free(&r[i]);
    labelset_free(&ls);
}

Test(relabel, go_quote)
{
    char b[64];
    relabel_go_quote(b, sizeof b, "a\"b\\c\n\x01\xff é");
    cr_assert_str_eq(b, "\"a\\\"b\\\\c\\n\\x01\\xff é\"");
}

/* ---- cases found by mutation testing (make mutate) ------------------------------------------- */

/* A missing target label reads as "": keepequal drops and dropequal keeps a non-empty source. */
Test(relabel, keepequal_dropequal_missing_target)
{
    labelset ls;
    set_labels(&ls, "a", "foo", NULL);
    relabel_rule r1[] = {prep(mk(RELABEL_KEEPEQUAL, "a", "y", NULL, NULL))};
    check(r1, 1, &ls, NULL);
    set_labels(&ls, "a", "foo", NULL);
    relabel_rule r2[] = {prep(mk(RELABEL_DROPEQUAL, "a", "y", NULL, NULL))};
    check(r2, 1, &ls, "a=foo");
    set_labels(&ls, "a", "foo", NULL);
    relabel_rule r3[] = {prep(mk(RELABEL_KEEPEQUAL, "x", "y", NULL, NULL))}; /* "" == "" */
    check(r3, 1, &ls, "a=foo");
    set_labels(&ls, "a", "", "b", "x", NULL);
    relabel_rule r4[] = {prep(mk(RELABEL_DROPEQUAL, "a", "y", NULL, NULL))}; /* empty source, missing target */
    check(r4, 1, &ls, NULL);
}

/* An empty value deletes the label named by the UNEXPANDED target_label (Prometheus: lb.Del(cfg.TargetLabel)),
 * never the expanded one: "${1}" expands to "b" here, and b stays. */
Test(relabel, replace_empty_value_deletes_unexpanded_target)
{
    labelset ls;
    set_labels(&ls, "a", "b", "b", "keep", NULL);
    relabel_rule r[] = {prep(mk(RELABEL_REPLACE, "a", "${1}", "(.*)", ""))};
    check(r, 1, &ls, "a=b,b=keep");
    /* a plain target_label is deleted by an empty value */
    set_labels(&ls, "a", "b", "b", "keep", NULL);
    relabel_rule r2[] = {prep(mk(RELABEL_REPLACE, "a", "b", "(.*)", ""))};
    check(r2, 1, &ls, "a=b");
}

/* Go's %q: an invalid byte is \x-escaped, the valid bytes around it are kept. */
Test(relabel, go_quote_invalid_sequences)
{
    char b[64];
    relabel_go_quote(b, sizeof b, "\xc3(");
    cr_assert_str_eq(b, "\"\\xc3(\"");
    relabel_go_quote(b, sizeof b, "\xe2\x82x");
    cr_assert_str_eq(b, "\"\\xe2\\x82x\"");
    relabel_go_quote(b, sizeof b, "\xed\xa0\x80");
    cr_assert_str_eq(b, "\"\\xed\\xa0\\x80\"");
    relabel_go_quote(b, sizeof b, "\xed\xbf\xbf"); /* the last surrogate */
    cr_assert_str_eq(b, "\"\\xed\\xbf\\xbf\"");
    relabel_go_quote(b, sizeof b, "\xf0\x9f\x98\x80");
    cr_assert_str_eq(b, "\"\xf0\x9f\x98\x80\"");
}

/* Mutation testing (issue 19, seed 2 of relabel.c): the edges its survivors showed untested. */

Test(relabel, action_parse_of_null_is_unknown)
{
    relabel_action a = RELABEL_KEEP;
    cr_assert_eq(relabel_action_parse(NULL, &a), -1);
    cr_assert_eq(a, RELABEL_KEEP, "left as it was");
}

/* Prometheus' relabelTarget ^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$: every edge of the word classes,
 * after the first character and inside templates, and the characters just outside them. */
Test(relabel, target_label_characters_at_the_class_edges)
{
    const char *good[] = {"aAzZ09_", "Z", "_", "z9", "a${1}Z", "$Az09_", "${zZ_09}", "${1}0", "_aZ$0"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        relabel_rule r = mk(RELABEL_REPLACE, "a", good[i], NULL, NULL);
        cr_assert_str_eq(prep_err(r), "", "%s", good[i]);
    }
    const char *bad[] = {"a@", "a[", "a`", "a{", "a/", "a:", "$@", "${a:}", "${}", "a$"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char want[128];
        snprintf(want, sizeof want, "\"%s\" is invalid 'target_label' for replace action", bad[i]);
        relabel_rule r = mk(RELABEL_REPLACE, "a", bad[i], NULL, NULL);
        cr_assert_str_eq(prep_err(r), want);
    }
}

/* A lead byte whose continuation bytes are not continuation bytes: each invalid byte is one U+FFFD and the
 * bytes after it are read again (Go's strings.ToLower/ToUpper decode with utf8.DecodeRuneInString).
 * Found by mutation testing (issue 19, seed 1 of relabel.c on the current code). */
Test(relabel, case_change_of_truncated_sequences)
{
    labelset ls;
    set_labels(&ls, "x", "A\xc3(", NULL);
    relabel_rule r[] = {prep(mk(RELABEL_LOWERCASE, "x", "y", NULL, NULL))};
    check(r, 1, &ls, "x=A\xc3(,y=a\xef\xbf\xbd(");
    set_labels(&ls, "x", "\xe2\x82" "b\xf0\x9f\x98" "c", NULL);
    relabel_rule r2[] = {prep(mk(RELABEL_UPPERCASE, "x", "y", NULL, NULL))};
    check(r2, 1, &ls, "x=\xe2\x82" "b\xf0\x9f\x98" "c,y=\xef\xbf\xbd\xef\xbf\xbd" "B\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "C");
    set_labels(&ls, "x", "\xc3\x89\xe2\x82\xac", NULL); /* the valid forms: É and € */
    relabel_rule r3[] = {prep(mk(RELABEL_LOWERCASE, "x", "y", NULL, NULL))};
    check(r3, 1, &ls, "x=\xc3\x89\xe2\x82\xac,y=\xc3\xa9\xe2\x82\xac");
}

static int lookups;
static const char *base_get(void *ctx, const char *name)
{
    lookups++;
    return labelset_get(ctx, name);
}

/* A view runs the rules that read labels by name on a base it never copies (the base is read only for the
 * names a rule reads), stops before the first labelmap/labeldrop/labelkeep, and its writes applied to a
 * copy of the base then the remaining rules give what relabel_apply gives; a drop is reported with the
 * same rule index and clears the writes. */
Test(relabel, view_same_as_apply)
{
    labelset base;
    set_labels(&base, "__address__", "h:1", "a", "x", "b", "y", "c", "Web", NULL);
    relabel_rule rules[] = {
        prep(mk(RELABEL_REPLACE, "a,b", "d", "(.*)", "$1")),        /* d = x;y */
        prep(mk(RELABEL_REPLACE, "missing", "a", NULL, NULL)),      /* "" deletes a */
        prep(mk(RELABEL_REPLACE, "b", "a", NULL, "again-$1")),      /* a set again */
        prep(mk(RELABEL_REPLACE, "missing", "b", NULL, NULL)),      /* b deleted */
        prep(mk(RELABEL_LOWERCASE, "c", "lc", NULL, NULL)),         /* lc = web */
        prep(mk(RELABEL_KEEPEQUAL, "lc", "lc", NULL, NULL)),        /* keeps */
        prep(mk(RELABEL_KEEP, "b", NULL, "", NULL)),                /* b is gone: "" kept */
        prep(mk(RELABEL_LABELDROP, NULL, NULL, "c", NULL)),         /* every name: the view stops */
        prep(mk(RELABEL_DROP, "c", NULL, "Web", NULL)),             /* c dropped above: kept */
    };
    size_t n = sizeof rules / sizeof *rules;
    const char *want = "__address__=h:1,a=again-y,d=x;y,lc=web";
    relabel_view v;
    lookups = 0;
    relabel_view_init(&v, base_get, &base);
    relabel_result r = relabel_view_apply(rules, n, &v);
    cr_assert(r.keep);
    cr_assert_eq(r.dropped_by, -1);
    cr_assert_eq(v.done, 7);
    cr_assert_gt(lookups, 0);
    labelset ls;
    labelset_copy(&ls, &base);
    relabel_view_write(&v, &ls);
    r = relabel_apply_from(rules, v.done, n, &ls);
    cr_assert(r.keep);
    char *got = str(&ls);
    cr_assert_str_eq(got, want);
    free(got);
    labelset_free(&ls);
    /* the same by relabel_apply */
    labelset_copy(&ls, &base);
    r = relabel_apply(rules, n, &ls);
    cr_assert(r.keep);
    got = str(&ls);
    cr_assert_str_eq(got, want);
    free(got);
    labelset_free(&ls);
    /* a second call runs nothing more: the view stands before the labeldrop */
    lookups = 0;
    r = relabel_view_apply(rules, n, &v);
    cr_assert(r.keep);
    cr_assert_eq(v.done, 7);
    cr_assert_eq(lookups, 0);
    relabel_view_free(&v);

    /* a drop: rule 1 of a chain (after a write), counted from 0, the writes cleared */
    relabel_rule drop[] = {
        prep(mk(RELABEL_REPLACE, "a", "e", NULL, NULL)),
        prep(mk(RELABEL_DROP, "e", NULL, "x", NULL)),
        prep(mk(RELABEL_LABELMAP, NULL, NULL, "(.*)", "m_$1")),
    };
    relabel_view_init(&v, base_get, &base);
    r = relabel_view_apply(drop, 3, &v);
    cr_assert(!r.keep);
    cr_assert_eq(r.dropped_by, 1);
    cr_assert_eq(v.set.n, 0);
    cr_assert_eq(v.unset.n, 0);
    relabel_view_free(&v);
    /* relabel_apply_from counts dropped_by from rule 0 (rule 0's write made by hand) */
    labelset_copy(&ls, &base);
    labelset_set(&ls, "e", "x");
    r = relabel_apply_from(drop, 1, 3, &ls);
    cr_assert(!r.keep);
    cr_assert_eq(r.dropped_by, 1);
    cr_assert_eq(ls.n, 0);
    labelset_free(&ls);
    /* from past the drop: only the labelmap runs */
    labelset_copy(&ls, &base);
    r = relabel_apply_from(drop, 2, 3, &ls);
    cr_assert(r.keep);
    cr_assert_str_eq(labelset_get(&ls, "m___address__"), "h:1");
    cr_assert_null(labelset_get(&ls, "e"));
    labelset_free(&ls);

    for (size_t i = 0; i < n; i++)
        relabel_rule_free(&rules[i]);
    for (size_t i = 0; i < 3; i++)
        relabel_rule_free(&drop[i]);
    labelset_free(&base);
}
