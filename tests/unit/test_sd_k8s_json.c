/* k8s_json: Kubernetes list pages and watch events parsed as a stream keep exactly what jansson's tree,
 * pruned, kept (k8s_doc_prune), accept exactly what jansson accepted, and keep nothing of what lookout does
 * not read. The differential runs on the fixtures, the fuzz corpus and thousands of mutations of them. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sd/kubernetes_internal.h"
#include "util/strbuf.h"
#include "test_files.h"

#define CASES "tests/fixtures/kubernetes/cases"
#define CORPUS "fuzz/corpus/fuzz_k8s"

/* The streaming parse against jansson + k8s_doc_prune; returns 1 when jansson accepted the text. */
static int differ_one(k8s_kind kind, k8s_doc doc, const char *p, size_t n)
{
    json_error_t jerr;
    json_t *tree = json_loadb(p, n, 0, &jerr);
    json_t *want = tree ? k8s_doc_prune(kind, doc, tree) : NULL, *got = NULL;
    char err[256] = "";
    int rc = k8s_json_parse(kind, doc, p, n, (size_t)-1, &got, err, sizeof err);
    cr_assert_eq(rc == 0, tree != NULL, "kind %d doc %d: jansson %s, stream %s on <%.*s>", kind, doc,
                 tree ? "accepts" : jerr.text, rc ? err : "accepts", (int)(n > 300 ? 300 : n), p);
    cr_assert_eq(want != NULL, got != NULL, "kind %d doc %d on <%.*s>", kind, doc, (int)(n > 300 ? 300 : n), p);
    if (want)
        cr_assert(json_equal(want, got), "kind %d doc %d: different values on <%.*s>", kind, doc,
                  (int)(n > 300 ? 300 : n), p);
    json_decref(tree);
    json_decref(want);
    json_decref(got);
    return tree != NULL;
}

static int differ(const char *p, size_t n)
{
    int ok = 0;
    for (int k = 0; k < K8S_ROLE_COUNT; k++) {
        ok = differ_one((k8s_kind)k, K8S_DOC_PAGE, p, n);
        differ_one((k8s_kind)k, K8S_DOC_EVENT, p, n);
    }
    return ok;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

/* One random edit of s: flip a byte, insert JSON punctuation or odd bytes, delete or repeat a span. */
static void mutate(strbuf *s)
{
    static const char *const ins[] = {"{", "}", "[", "]", ",", ":", "\"", "null", "1e999", "99999999999999999999",
                                      "\\u0000", "\\uD800", "\\uDC00", "\xC0\x80", "\xED\xA0\x80", "\f", "\v",
                                      " ", "\"metadata\":{\"name\":\"x\"}", "\"items\":[]", "\"labels\":null", "-0",
                                      "1.5", "true", "\"\\ud83d\\ude00\"", "\xF0\x9F\x98\x80", "\x7f", "\t"};
    size_t pos = s->len ? next() % (s->len + 1) : 0;
    strbuf t;
    strbuf_init(&t);
    switch (next() % 5) {
    case 0: /* flip */
        strbuf_append(&t, s->buf, s->len);
        if (t.len)
            t.buf[pos % t.len] ^= (char)(1u << (next() % 8));
        break;
    case 1: case 2: { /* insert */
        const char *x = ins[next() % (sizeof ins / sizeof *ins)];
        strbuf_append(&t, s->buf, pos);
        if (next() % 8 == 0)
            strbuf_append(&t, "", 1); /* a NUL byte */
        else
            strbuf_puts(&t, x);
        strbuf_append(&t, s->buf + pos, s->len - pos);
        break;
    }
    case 3: { /* delete a span */
        size_t n = s->len > pos ? next() % (s->len - pos + 1) % 64 : 0;
        strbuf_append(&t, s->buf, pos);
        strbuf_append(&t, s->buf + pos + n, s->len - pos - n);
        break;
    }
    default: { /* repeat a span */
        size_t n = s->len > pos ? next() % (s->len - pos + 1) % 128 : 0;
        strbuf_append(&t, s->buf, pos + n);
        strbuf_append(&t, s->buf + pos, s->len - pos);
        break;
    }
    }
    strbuf_free(s);
    *s = t;
}

static void add_seed(strbuf **seeds, size_t *n, const char *p, size_t len)
{
    *seeds = realloc(*seeds, (*n + 1) * sizeof **seeds);
    strbuf_init(&(*seeds)[*n]);
    strbuf_append(&(*seeds)[*n], p, len);
    (*n)++;
}

Test(k8s_json, same_as_jansson_on_fixtures_corpus_and_mutations)
{
    strbuf *seeds = NULL;
    size_t n_seeds = 0, len;
    char *text = test_slurp("tests/fixtures/kubernetes/cluster.json", &len);
    add_seed(&seeds, &n_seeds, text, len);
    free(text);
    const char *dirs[] = {CASES, CORPUS};
    for (int d = 0; d < 2; d++) {
        DIR *dir = opendir(dirs[d]);
        cr_assert_not_null(dir, "%s", dirs[d]);
        struct dirent *e;
        while ((e = readdir(dir))) {
            if (e->d_name[0] == '.')
                continue;
            char path[600];
            snprintf(path, sizeof path, "%s/%s", dirs[d], e->d_name);
            text = test_slurp(path, &len);
            if (d == 0) { /* a case's object as a page and as an event */
                json_t *c = json_loadb(text, len, 0, NULL);
                cr_assert_not_null(c, "%s", path);
                json_t *page = json_pack("{s:[O]}", "items", json_object_get(c, "object"));
                json_t *ev = json_pack("{s:s,s:O}", "type", "ADDED", "object", json_object_get(c, "object"));
                char *a = json_dumps(page, JSON_COMPACT), *b = json_dumps(ev, JSON_COMPACT);
                add_seed(&seeds, &n_seeds, a, strlen(a));
                add_seed(&seeds, &n_seeds, b, strlen(b));
                free(a), free(b);
                json_decref(page), json_decref(ev), json_decref(c);
            } else { /* a watch stream: byte 0 picks the role, then one event a line */
                const char *p = text + (len ? 1 : 0), *end = text + len;
                while (p < end) {
                    const char *nl = memchr(p, '\n', (size_t)(end - p));
                    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
                    add_seed(&seeds, &n_seeds, p, n);
                    p += n + 1;
                }
            }
            free(text);
        }
        closedir(dir);
    }
    cr_assert_gt(n_seeds, 150);
    size_t inputs = 0, accepted = 0;
    for (size_t i = 0; i < n_seeds; i++) {
        accepted += (size_t)differ(seeds[i].buf, seeds[i].len);
        inputs++;
        strbuf m;
        strbuf_init(&m);
        for (int j = 0; j < 40; j++) { /* one or two edits */
            if (j % 2 == 0) {
                strbuf_reset(&m);
                strbuf_append(&m, seeds[i].buf, seeds[i].len);
            }
            mutate(&m);
            accepted += (size_t)differ(m.buf, m.len);
            inputs++;
        }
        strbuf_free(&m);
        strbuf_free(&seeds[i]);
    }
    free(seeds);
    cr_log_info("k8s_json: %zu inputs (x 6 kinds x page/event), %zu accepted by jansson", inputs, accepted);
    cr_assert_gt(inputs, 6000);
    cr_assert_gt(accepted, inputs / 20); /* the mutations reach the values, not only the syntax */
}

static json_t *parse_ok(k8s_kind kind, k8s_doc doc, const char *text)
{
    json_t *out = NULL;
    char err[256] = "";
    cr_assert_eq(k8s_json_parse(kind, doc, text, strlen(text), (size_t)-1, &out, err, sizeof err), 0, "%s: %s", text,
                 err);
    return out;
}

static void parse_fails(const char *text, size_t len, const char *want)
{
    json_t *out = NULL;
    char err[256] = "";
    cr_assert_eq(k8s_json_parse(K8S_ROLE_POD, K8S_DOC_EVENT, text, len, (size_t)-1, &out, err, sizeof err), -1,
                 "%.*s", (int)len, text);
    cr_assert_null(out);
    cr_assert_str_eq(err, want, "%.*s: %s", (int)len, text, err);
}

Test(k8s_json, keeps_only_the_template_last_key_wins)
{
    json_t *ev = parse_ok(K8S_ROLE_POD, K8S_DOC_EVENT,
                          "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"managedFields\":"
                          "[{\"x\":1}],\"labels\":{\"k\":\"1\",\"k\":\"2\",\"j\":null,\"i\":{\"deep\":[1]},\"\":\"e\"},"
                          "\"annotations\":{\"z\":\"1\"},\"annotations\":null},\"spec\":{\"containers\":[{\"name\":\"c\","
                          "\"env\":[1]},5]}}}");
    char *s = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
    /* labels packed (kubernetes_internal.h): sorted by key, one per key, KEY NUL TAG VALUE NUL */
    cr_assert_str_eq(s, "{\"object\":{\"metadata\":{\"labels\":\"\\u0000se\\u0000i\\u0000n\\u0000j\\u0000n\\u0000"
                        "k\\u0000s2\\u0000\",\"name\":\"a\"},"
                        "\"spec\":{\"containers\":[{\"name\":\"c\"},null]}},\"type\":\"ADDED\"}");
    labelset ls = LABELSET_INIT;
    k8s_add_map(&ls, k8s_get(json_object_get(ev, "object"), "metadata.labels"), "l_", "p_");
    cr_assert_eq(ls.n, 6);
    cr_assert_str_eq(labelset_get(&ls, "l_"), "e");
    cr_assert_str_eq(labelset_get(&ls, "l_k"), "2");
    cr_assert_null(labelset_get(&ls, "l_j"));
    cr_assert_null(labelset_get(&ls, "l_i"));
    cr_assert_str_eq(labelset_get(&ls, "p_"), "true");
    cr_assert_str_eq(labelset_get(&ls, "p_i"), "true");
    cr_assert_str_eq(labelset_get(&ls, "p_j"), "true");
    cr_assert_str_eq(labelset_get(&ls, "p_k"), "true");
    labelset_free(&ls);
    cr_assert_str_eq(k8s_map_get(k8s_get(json_object_get(ev, "object"), "metadata.labels"), "k"), "2");
    cr_assert_null(k8s_map_get(k8s_get(json_object_get(ev, "object"), "metadata.labels"), "j"));
    cr_assert_null(k8s_map_get(k8s_get(json_object_get(ev, "object"), "metadata.labels"), "x"));
    free(s);
    json_decref(ev);
    /* a page: unnamed items are not kept; the last "items" decides */
    json_t *page = parse_ok(K8S_ROLE_NODE, K8S_DOC_PAGE,
                            "{\"items\":[{\"metadata\":{\"name\":\"x\"}}],\"items\":[{},{\"metadata\":{\"name\":5}},"
                            "[],null,{\"metadata\":{\"name\":\"n1\",\"namespace\":\"ns\"}}],"
                            "\"metadata\":{\"continue\":\"c1\",\"resourceVersion\":\"9\",\"x\":{}}}");
    s = json_dumps(page, JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert_str_eq(s, "{\"items\":[{\"metadata\":{\"name\":\"n1\"}}],"
                        "\"metadata\":{\"continue\":\"c1\",\"resourceVersion\":\"9\"}}");
    free(s);
    json_decref(page);
    /* jansson skipped one NUL byte right after a number or a literal (found by fuzz_k8s) */
    const char nul[] = "{\"type\":\"ADDED\",\"object\":{\"code\":1\0,\"message\":true\0}}";
    json_t *o = NULL;
    char err[256];
    cr_assert_eq(k8s_json_parse(K8S_ROLE_POD, K8S_DOC_EVENT, nul, sizeof nul - 1, (size_t)-1, &o, err, sizeof err), 0,
                 "%s", err);
    s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert_str_eq(s, "{\"object\":{\"code\":1,\"message\":true},\"type\":\"ADDED\"}");
    free(s);
    json_decref(o);
    const char nul2[] = "{\"a\":1\0\0}", nul3[] = "{\"a\":tr\0ue}", nul4[] = "{\"a\":[1\0002]}";
    cr_assert_eq(k8s_json_parse(K8S_ROLE_POD, K8S_DOC_EVENT, nul2, sizeof nul2 - 1, (size_t)-1, &o, err, sizeof err), -1);
    cr_assert_eq(k8s_json_parse(K8S_ROLE_POD, K8S_DOC_EVENT, nul3, sizeof nul3 - 1, (size_t)-1, &o, err, sizeof err), -1);
    cr_assert_eq(k8s_json_parse(K8S_ROLE_POD, K8S_DOC_EVENT, nul4, sizeof nul4 - 1, (size_t)-1, &o, err, sizeof err), -1);
    /* and so did jansson */
    cr_assert_eq(differ(nul, sizeof nul - 1), 1);
    cr_assert_eq(differ(nul2, sizeof nul2 - 1), 0);
    cr_assert_eq(differ(nul3, sizeof nul3 - 1), 0);
    cr_assert_eq(differ(nul4, sizeof nul4 - 1), 0);
    /* a root that does not fit: parsed, nothing kept */
    cr_assert_null(parse_ok(K8S_ROLE_POD, K8S_DOC_PAGE, "[{\"items\":[]}]"));
}

Test(k8s_json, refuses_what_jansson_refused)
{
    parse_fails("1", 1, "line 1 column 2: '[' or '{' expected");
    parse_fails("{}\f", 3, "line 1 column 3: invalid token");
    parse_fails("{\"a\":\"\\uD800\"}", 14, "line 1 column 7: invalid Unicode '\\uD800'");
    parse_fails("{\"a\":\"\\uDC00\"}", 14, "line 1 column 7: invalid Unicode '\\uDC00'");
    parse_fails("{\"a\":\"\xED\xA0\x80\"}", 10, "line 1 column 7: unable to decode byte 0xed");
    parse_fails("{\"a\":\"\xC0\x80\"}", 9, "line 1 column 7: unable to decode byte 0xc0");
    parse_fails("{\"a\":\"\\u0000\"}", 14, "line 1 column 14: \\u0000 is not allowed without JSON_ALLOW_NUL");
    parse_fails("{\"a\":99999999999999999999}", 26, "line 1 column 26: too big integer");
    parse_fails("{\"a\":1e999}", 11, "line 1 column 11: real number overflow");
    parse_fails("{} null\"", 8, "line 1 column 8: trailing garbage");
    parse_fails("{}\"", 3, "line 1 column 4: end of file expected");
    parse_fails("", 0, "line 1 column 1: premature EOF");
    /* depth: 2048 nested values in all, scalars included */
    strbuf sb;
    strbuf_init(&sb);
    for (int i = 0; i < 2048; i++)
        strbuf_putc(&sb, '[');
    for (int i = 0; i < 2048; i++)
        strbuf_putc(&sb, ']');
    json_t *out;
    char err[256];
    cr_assert_eq(k8s_json_parse(K8S_ROLE_POD, K8S_DOC_PAGE, sb.buf, sb.len, (size_t)-1, &out, err, sizeof err), 0);
    strbuf_reset(&sb);
    for (int i = 0; i < 2048; i++)
        strbuf_putc(&sb, '[');
    strbuf_putc(&sb, '1');
    for (int i = 0; i < 2048; i++)
        strbuf_putc(&sb, ']');
    cr_assert_eq(k8s_json_parse(K8S_ROLE_POD, K8S_DOC_PAGE, sb.buf, sb.len, (size_t)-1, &out, err, sizeof err), -1);
    cr_assert(strstr(err, "maximum parsing depth reached"), "%s", err);
    strbuf_free(&sb);
}

Test(k8s_json, kept_values_are_bounded)
{
    /* 4 MB of containers on one pod: kept as jansson values they take ~10 times the text */
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "{\"items\":[{\"metadata\":{\"name\":\"p\",\"labels\":{");
    for (int i = 0; sb.len < 4000000; i++)
        strbuf_printf(&sb, "%s\"k%d\":\"v\"", i ? "," : "", i);
    strbuf_puts(&sb, "}},\"spec\":{\"containers\":[");
    size_t labels_end = sb.len;
    for (int i = 0; sb.len < labels_end + 4000000; i++)
        strbuf_printf(&sb, "%s{\"name\":\"c%d\"}", i ? "," : "", i);
    strbuf_puts(&sb, "]}}]}");
    json_t *out = NULL;
    char err[256];
    cr_assert_eq(k8s_json_parse(K8S_ROLE_POD, K8S_DOC_PAGE, sb.buf, sb.len, 3 * sb.len / 2, &out, err, sizeof err), -1);
    cr_assert_null(out);
    char want[200];
    snprintf(want, sizeof want, "JSON document too large to hold: kept objects take more than %zu MiB for a body of %zu bytes",
             (3 * sb.len / 2) >> 20, sb.len);
    cr_assert(strstr(err, want), "%s", err);
    /* without the containers: the 4 MB labels map is kept packed, in less than its text */
    sb.len = labels_end - strlen("}},\"spec\":{\"containers\":[");
    strbuf_puts(&sb, "}}}]}");
    cr_assert_eq(k8s_json_parse(K8S_ROLE_POD, K8S_DOC_PAGE, sb.buf, sb.len, sb.len, &out, err, sizeof err), 0, "%s", err);
    const json_t *labels = k8s_get(json_array_get(json_object_get(out, "items"), 0), "metadata.labels");
    cr_assert(json_string_length(labels) > 3000000 && json_string_length(labels) < sb.len, "%zu",
              json_string_length(labels));
    cr_assert_str_eq(k8s_map_get(labels, "k12345"), "v");
    json_decref(out);
    /* the same page with the labels under a field lookout does not keep: nothing is kept */
    char *at = strstr(sb.buf, "\"labels\"");
    memcpy(at, "\"labelz\"", 8);
    cr_assert_eq(k8s_json_parse(K8S_ROLE_POD, K8S_DOC_PAGE, sb.buf, sb.len, 4096, &out, err, sizeof err), 0, "%s", err);
    cr_assert_eq(json_array_size(json_object_get(out, "items")), 1);
    json_decref(out);
    /* a million empty items keep nothing either (a jansson tree of them: ~230 MB) */
    strbuf_reset(&sb);
    strbuf_putc(&sb, '{');
    strbuf_puts(&sb, "\"items\":[");
    for (int i = 0; i < 1000000; i++)
        strbuf_puts(&sb, i ? ",{}" : "{}");
    strbuf_puts(&sb, "]}");
    cr_assert_eq(k8s_json_parse(K8S_ROLE_POD, K8S_DOC_PAGE, sb.buf, sb.len, 4096, &out, err, sizeof err), 0, "%s", err);
    cr_assert_eq(json_array_size(json_object_get(out, "items")), 0);
    json_decref(out);
    strbuf_free(&sb);
}

/* The pre-scan's edges (mutation testing found them unchecked): overlong 3- and 4-byte UTF-8 sequences, which
 * yajl lets through; a string after a \u escape still ends at its quote (the surrogate in the next string is
 * found); a NUL after a number ending in 9 ends it as jansson's lexer did. */
Test(k8s_json, prescan_edges)
{
    parse_fails("{\"a\":\"\xE0\x80\x80\"}", 10, "line 1 column 7: unable to decode byte 0xe0");
    parse_fails("{\"a\":\"\xF0\x80\x80\x80\"}", 11, "line 1 column 7: unable to decode byte 0xf0");
    parse_fails("{\"a\":\"\\u0041\",\"b\":\"\\uD800\"}", 27, "line 1 column 20: invalid Unicode '\\uD800'");
    static const char nul9[] = "{\"a\":[19\0,9\0],\"metadata\":{\"name\":\"x\"}}";
    cr_assert_eq(differ_one(K8S_ROLE_POD, K8S_DOC_EVENT, nul9, sizeof nul9 - 1), 1);
    json_t *out = NULL;
    char err[256] = "";
    cr_assert_eq(k8s_json_parse(K8S_ROLE_POD, K8S_DOC_EVENT, nul9, sizeof nul9 - 1, (size_t)-1, &out, err, sizeof err),
                 0, "%s", err);
    json_decref(out);
    /* and what it lets through: the shortest 3- and 4-byte forms (U+0800, U+10000), the largest (U+FFFF,
     * U+10FFFF), three-byte characters back to back and before a quote */
    const char *utf8 = "{\"metadata\":{\"name\":\"\xE0\xA0\x80\xF0\x90\x80\x80\xEF\xBF\xBF\xF4\x8F\xBF\xBF\xE2\x82\xAC\xE2\x82\xAC\"}}";
    cr_assert_eq(differ_one(K8S_ROLE_POD, K8S_DOC_EVENT, utf8, strlen(utf8)), 1);
    cr_assert_eq(k8s_json_parse(K8S_ROLE_POD, K8S_DOC_EVENT, utf8, strlen(utf8), (size_t)-1, &out, err, sizeof err), 0,
                 "%s", err);
    json_decref(out);
}

/* The kept-bytes budget of one parse ends with it: jansson allocations after it (here a 100,000-element tree,
 * far beyond the 4096 bytes the parse allowed) are not counted against it. */
Test(k8s_json, budget_ends_with_the_parse)
{
    json_t *out = NULL;
    char err[256] = "";
    const char *page = "{\"items\":[{\"metadata\":{\"name\":\"p\"}}]}";
    cr_assert_eq(k8s_json_parse(K8S_ROLE_POD, K8S_DOC_PAGE, page, strlen(page), 4096, &out, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(json_array_size(json_object_get(out, "items")), 1);
    json_decref(out);
    json_t *big = json_array();
    cr_assert_not_null(big);
    for (int i = 0; i < 100000; i++)
        cr_assert_eq(json_array_append_new(big, json_integer(i)), 0, "element %d", i);
    cr_assert_eq(json_array_size(big), 100000);
    json_decref(big);
}

/* An endpoints subset's address lists are kept packed (kubernetes_internal.h: six fields per address), built
 * as they stream: the same string as k8s_addrs_pack of jansson's array, with every way an address can be odd
 * (a key repeated, a targetRef replaced whole, values that are not strings, items that are not objects, a
 * list that is not an array), and the builders read it as they read the full form. */
Test(k8s_json, endpoints_addresses_packed_as_they_stream)
{
    const char *page =
        "{\"items\":[{\"metadata\":{\"name\":\"e\",\"namespace\":\"ns\"},\"subsets\":[{"
        "\"addresses\":[{\"ip\":\"10.0.0.1\",\"nodeName\":\"n1\",\"targetRef\":{\"kind\":\"Pod\",\"name\":\"p1\","
        "\"namespace\":\"ns\",\"uid\":\"u\"},\"x\":{\"ip\":\"no\"}},"
        "{\"ip\":\"a\",\"ip\":\"10.0.0.2\",\"hostname\":5,\"targetRef\":{\"kind\":\"Pod\",\"name\":\"p0\",\"namespace\":\"old\"},"
        "\"targetRef\":{\"name\":\"p2\",\"kind\":[\"Pod\"]}},"
        "5,[{\"ip\":\"no\"}],null,{},{\"ip\":\"10.0.0.3\",\"ip\":null,\"nodeName\":\"n7\",\"nodeName\":{\"a\":\"b\"},\"targetRef\":\"t\","
        "\"hostname\":\"h3\"}],"
        "\"notReadyAddresses\":{\"ip\":\"no\"},"
        "\"ports\":[{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\"}]},"
        "{\"addresses\":[],\"notReadyAddresses\":[{\"ip\":\"10.0.0.9\"}],\"ports\":[{\"port\":81}]}]}]}";
    differ_one(K8S_ROLE_ENDPOINTS, K8S_DOC_PAGE, page, strlen(page));
    json_t *got = parse_ok(K8S_ROLE_ENDPOINTS, K8S_DOC_PAGE, page);
    const json_t *eps = json_array_get(json_object_get(got, "items"), 0);
    const json_t *ss = json_array_get(json_object_get(eps, "subsets"), 0);
    const json_t *a = json_object_get(ss, "addresses");
    static const char want[] = "s10.0.0.1\0n\0sn1\0sPod\0sp1\0sns\0"
                               "s10.0.0.2\0n\0n\0n\0sp2\0n\0"
                               "n\0n\0n\0n\0n\0n\0" "n\0n\0n\0n\0n\0n\0" "n\0n\0n\0n\0n\0n\0" "n\0n\0n\0n\0n\0n\0"
                               "n\0sh3\0n\0n\0n\0n\0";
    cr_assert(json_is_string(a));
    cr_assert_eq(json_string_length(a), sizeof want - 1);
    cr_assert(memcmp(json_string_value(a), want, sizeof want - 1) == 0);
    cr_assert_null(json_object_get(ss, "notReadyAddresses"), "not an array: not kept");
    k8s_addr ad;
    size_t pos = 0, n = 0;
    while (k8s_addr_next(a, &pos, &ad))
        n++;
    cr_assert_eq(n, 7);
    pos = 0;
    cr_assert(k8s_addr_next(a, &pos, &ad));
    cr_assert_str_eq(ad.ip, "10.0.0.1");
    cr_assert_null(ad.hostname);
    cr_assert_str_eq(ad.node_name, "n1");
    cr_assert_str_eq(ad.ref_kind, "Pod");
    cr_assert_str_eq(ad.ref_name, "p1");
    cr_assert_str_eq(ad.ref_ns, "ns");
    cr_assert(k8s_addr_next(a, &pos, &ad));
    cr_assert_str_eq(ad.ip, "10.0.0.2");
    cr_assert_null(ad.ref_kind);
    cr_assert_str_eq(ad.ref_name, "p2");
    cr_assert_null(ad.ref_ns, "the second targetRef replaced the first whole");
    /* the builder reads the packed object as it reads jansson's full one */
    json_t *full = json_loads(page, 0, NULL);
    target_group gp, gf;
    k8s_build_group(K8S_ROLE_ENDPOINTS, "ns/e", eps, NULL, &gp);
    k8s_build_group(K8S_ROLE_ENDPOINTS, "ns/e", json_array_get(json_object_get(full, "items"), 0), NULL, &gf);
    cr_assert_eq(gp.n_targets, 8);
    cr_assert_eq(gf.n_targets, 8);
    for (size_t t = 0; t < gp.n_targets; t++)
        cr_assert(labelset_equal(&gp.targets[t], &gf.targets[t]), "target %zu", t);
    cr_assert_str_eq(labelset_get(&gp.targets[0], "__address__"), "10.0.0.1:80");
    cr_assert_str_eq(labelset_get(&gp.targets[0], "__meta_kubernetes_endpoint_address_target_name"), "p1");
    cr_assert_str_eq(labelset_get(&gp.targets[2], "__address__"), ":80");
    cr_assert_str_eq(labelset_get(&gp.targets[6], "__meta_kubernetes_endpoint_hostname"), "h3");
    cr_assert_str_eq(labelset_get(&gp.targets[7], "__address__"), "10.0.0.9:81");
    cr_assert_str_eq(labelset_get(&gp.targets[7], "__meta_kubernetes_endpoint_ready"), "false");
    target_group_free(&gp);
    target_group_free(&gf);
    json_decref(full);
    json_decref(got);
}

/* Valid UTF-8 of every length (2, 3 and 4 bytes) passes the pre-scan, as jansson accepted it. */
Test(k8s_json, utf8_of_every_length_accepted)
{
    const char *ev = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"caf\xC3\xA9\",\"namespace\":\"\xE2\x82\xAC\","
                     "\"labels\":{\"k\":\"\xF0\x9F\x98\x80\"}}}}";
    cr_assert_eq(differ_one(K8S_ROLE_POD, K8S_DOC_EVENT, ev, strlen(ev)), 1);
    json_t *o = parse_ok(K8S_ROLE_POD, K8S_DOC_EVENT, ev);
    cr_assert_str_eq(k8s_str(json_object_get(o, "object"), "metadata.name"), "caf\xC3\xA9");
    cr_assert_str_eq(k8s_map_get(k8s_get(json_object_get(o, "object"), "metadata.labels"), "k"), "\xF0\x9F\x98\x80");
    json_decref(o);
}

/* ---- k8s_map_next at the end of readable memory (fe4d330) ---- */

/* jansson's allocations placed so that each block ends exactly where a PROT_NONE page begins: a read one
 * byte past a string's terminating NUL faults at once, with or without AddressSanitizer. */
#define GUARD_MAX 512
static struct guard_block {
    void *p, *base;
    size_t len;
} guard_blocks[GUARD_MAX];

static void *guard_malloc(size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), data = (n + pg - 1) / pg * pg;
    char *base = mmap(NULL, data + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(base, MAP_FAILED);
    cr_assert_eq(mprotect(base + data, pg, PROT_NONE), 0);
    for (size_t i = 0; i < GUARD_MAX; i++) {
        if (!guard_blocks[i].p) {
            guard_blocks[i] = (struct guard_block){base + data - n, base, data + pg};
            return base + data - n; /* jansson's blocks here are strings or multiples of 8 bytes */
        }
    }
    cr_assert_fail("more than %d guarded blocks", GUARD_MAX);
    return NULL;
}

static void guard_free(void *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < GUARD_MAX; i++) {
        if (guard_blocks[i].p == p) {
            munmap(guard_blocks[i].base, guard_blocks[i].len);
            guard_blocks[i].p = NULL;
            return;
        }
    }
    cr_assert_fail("freeing a block that was not guarded");
}

/* s's n bytes as a jansson string whose terminating NUL is the last readable byte. */
static json_t *guarded_string(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    cr_assert_not_null(j);
    long pg = sysconf(_SC_PAGESIZE);
    cr_assert_eq(((uintptr_t)json_string_value(j) + n + 1) % (uintptr_t)pg, 0, "the NUL ends a page");
    return j;
}

/* Every entry of a packed or plain map, as "key=value;" ("key;" for a value that is not a string). */
static void walk(const json_t *map, strbuf *out)
{
    size_t pos = 0, len = json_string_length(map);
    const char *k, *v;
    strbuf_reset(out);
    while (k8s_map_next(map, &pos, &k, &v))
        strbuf_printf(out, v ? "%s=%s;" : "%s;", k, v);
    cr_assert_geq(pos, len, "the walk ends at the string's end");
}

Test(k8s_json, map_next_stops_at_the_end_of_a_plain_string)
{
    json_set_alloc_funcs(guard_malloc, guard_free);
    strbuf sb;
    strbuf_init(&sb);
    /* the reproducers' values (fuzz/crashes/fuzz_k8s/, the two *-read-past-end): a full object's labels or
     * annotations given as a plain string, which reads as one key with no tag after it */
    static const char *const plain[] = {"CltermrIP", "ClusterI(", "Running", "", "k"};
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++) {
        json_t *m = guarded_string(plain[i], strlen(plain[i]));
        walk(m, &sb);
        cr_assert_str_eq(sb.buf, "", "%s", plain[i]);
        cr_assert_null(k8s_map_get(m, plain[i]));
        cr_assert_null(k8s_map_get(m, "k"));
        json_decref(m);
    }
    /* a key and its NUL with no tag after it; a key, a tag and a value with no NUL of its own */
    json_t *m = guarded_string("k\0", 2);
    walk(m, &sb);
    cr_assert_str_eq(sb.buf, "");
    json_decref(m);
    m = guarded_string("k\0sv", 4);
    walk(m, &sb);
    cr_assert_str_eq(sb.buf, "k=v;", "the string's own NUL ends the value");
    json_decref(m);
    /* packed maps (k8s_map_pack: sorted, or not) end where their last value's NUL is */
    char buf[] = "a\0s1\0b\0n\0c\0s\0";
    size_t offs[] = {0, 5, 9}, rev[] = {9, 5, 0};
    m = k8s_map_pack(buf, offs, 3);
    walk(m, &sb);
    cr_assert_str_eq(sb.buf, "a=1;b;c=;");
    cr_assert_str_eq(k8s_map_get(m, "c"), "");
    cr_assert_null(k8s_map_get(m, "b"));
    cr_assert_null(k8s_map_get(m, "d"));
    json_decref(m);
    m = k8s_map_pack(buf, rev, 3);
    walk(m, &sb);
    cr_assert_str_eq(sb.buf, "a=1;b;c=;");
    json_decref(m);
    strbuf_free(&sb);
    json_set_alloc_funcs(malloc, free);
}

/* The reproducers' objects, unpruned (as fuzz_k8s builds them; the informer keeps pruned ones): a pod's and
 * a service's labels and annotations given as plain strings build groups without those maps' labels.
 * jansson's parser gives a string a block a few bytes longer than the string, so the guard page is not
 * right after it here; the bytes after its NUL are a fresh mapping's zeros, which the read past the end
 * (fe4d330) took for a map entry without a value: a *present_Running label. */
Test(k8s_json, builders_read_plain_string_maps_of_full_objects)
{
    static const char *const objs[] = {
        "{\"metadata\":{\"name\":\"te.2\",\"namespace\":\"default\",\"uid\":\"u\",\"labels\":\"Running\","
        "\"annotations\":\"ClusterI(\"},\"spec\":{\"nodeName\":\"n\",\"containers\":[{\"name\":\"c1\","
        "\"ports\":[{\"containerPort\":80,\"protocol\":\"TCP\"}]}]},\"status\":{\"phase\":\"Running\","
        "\"podIP\":\"4.3.2.1\"}}",
        "{\"metadata\":{\"name\":\"s\",\"namespace\":\"default\",\"labels\":\"Running\","
        "\"annotations\":\"CltermrIP\"},\"spec\":{\"clusterIP\":\"10.0.0.1\",\"ports\":[{\"name\":\"p\","
        "\"port\":80,\"protocol\":\"TCP\"}]}}",
    };
    static const k8s_role roles[] = {K8S_ROLE_POD, K8S_ROLE_SERVICE};
    static const char *const addrs[] = {"4.3.2.1:80", "s.default.svc:80"};
    for (size_t i = 0; i < 2; i++) {
        json_set_alloc_funcs(guard_malloc, guard_free);
        json_error_t je;
        json_t *o = json_loads(objs[i], 0, &je);
        cr_assert_not_null(o, "%s", je.text);
        target_group g;
        k8s_build_group(roles[i], "default/x", o, NULL, &g);
        cr_assert_eq(g.n_targets, 1);
        cr_assert_str_eq(labelset_get(&g.targets[0], "__address__"), addrs[i]);
        for (size_t l = 0; l < g.labels.n; l++)
            cr_assert(!strstr(g.labels.v[l].name, "_label") && !strstr(g.labels.v[l].name, "_annotation"),
                      "%s", g.labels.v[l].name);
        target_group_free(&g);
        json_decref(o);
        json_set_alloc_funcs(malloc, free);
    }
}
