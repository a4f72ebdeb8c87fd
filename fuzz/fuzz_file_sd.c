/* fuzz_file_sd: sd_file_parse on arbitrary bytes. The first byte picks the format (even: JSON, odd: YAML),
 * the rest is the file's content. Checks what the providers rely on: only groups with targets come out, in
 * strictly ascending positions (sd_groups_gone merges on that), groups are frozen views whose deep copy is
 * an equal plain group that can grow.
 * YAML is also checked against the former reader (a libyaml document tree walked after yaml_parser_load,
 * kept below as it was at 08eb954 except for names): the same files accepted with the same groups, the same
 * error texts, except where either says "(aliases)" (the streaming reader also bounds the bytes aliases
 * repeat, and counts an alias to a node still open as far as that node was read). The former reader is
 * not run when the new one refuses for aliases: it had no byte bound and could take GBs.
 * JSON is parsed twice: group labels copied into each frozen group (labels text up to 64 KiB, as most files)
 * and group labels left in the buffer they were read into, which the group takes (sd_json_adopt_min 0, the
 * path of big labels maps): the same acceptance, error text and groups (`abort()` on any difference). */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "sd/sd_internal.h"
#include "util/xalloc.h"
#include "util/yaml_depth.h"

/* ---- the former reader (src/sd/file_parse.c at 08eb954) ---- */

typedef struct glist {
    target_group *v;
    size_t n, cap;
} glist;

static target_group *glist_add(glist *l, const char *path)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4;
        l->v = realloc(l->v, l->cap * sizeof(target_group));
        if (!l->v)
            abort();
    }
    char source[4096 + 32];
    snprintf(source, sizeof source, "%s:%zu", path, l->n);
    target_group *g = &l->v[l->n++];
    target_group_init(g, source);
    return g;
}

static void add_target(target_group *g, const char *address)
{
    labelset t = LABELSET_INIT;
    labelset_set(&t, "__address__", address);
    target_group_add_target(g, &t);
    labelset_free(&t);
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}


static bool y_null(const yaml_node_t *n)
{
    if (!n)
        return true;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = (const char *)n->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static const char *y_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE: return "mapping";
    case YAML_SEQUENCE_NODE: return "list";
    default: return "scalar";
    }
}

#define YPOS(n) (int)(n)->start_mark.line + 1, (int)(n)->start_mark.column + 1

/* YAML aliases let a small file name the same node many times ("billion laughs"). Without aliases every
 * target and label costs at least two bytes of input, so more than len/2 + 64 of them means expansion. */
static int spend(size_t *budget, size_t n, char *err, size_t errlen)
{
    if (n > *budget)
        return fail(err, errlen, "document expands to more targets and labels than its size allows (aliases)");
    *budget -= n;
    return 0;
}

typedef struct yname {
    const char *name;
    size_t pos;
} yname;

static int yname_cmp(const void *a, const void *b)
{
    const yname *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* A group's labels mapping into g->labels, all at once (labelset_set_many): one labelset_set per key (and
 * one into a set of the names seen) moved the whole set for each key sorting first, quadratic in a big
 * mapping. Errors as read one by one, in document order: a key that is not a string, an invalid name, a
 * name already set (found by sorting the names first), a value that is not a string. */
static int add_yaml_labels(yaml_document_t *doc, yaml_node_t *labels, target_group *g, char *err, size_t errlen)
{
    size_t n = (size_t)(labels->data.mapping.pairs.top - labels->data.mapping.pairs.start), nn = 0;
    yname *names = xmalloc((n ? n : 1) * sizeof *names);
    for (size_t i = 0; i < n; i++) {
        yaml_node_pair_t *pr = labels->data.mapping.pairs.start + i;
        yaml_node_t *k = yaml_document_get_node(doc, pr->key);
        if (k && k->type == YAML_SCALAR_NODE)
            names[nn++] = (yname){(const char *)k->data.scalar.value, i};
    }
    qsort(names, nn, sizeof *names, yname_cmp);
    size_t dup = n; /* the first position whose name an earlier key has */
    for (size_t j = 1; j < nn; j++)
        if (strcmp(names[j - 1].name, names[j].name) == 0 && names[j].pos < dup)
            dup = names[j].pos;
    free(names);
    label *pairs = xmalloc((n ? n : 1) * sizeof *pairs);
    size_t np = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        yaml_node_pair_t *pr = labels->data.mapping.pairs.start + i;
        yaml_node_t *k = yaml_document_get_node(doc, pr->key), *v = yaml_document_get_node(doc, pr->value);
        if (!k || !v || k->type != YAML_SCALAR_NODE) {
            rc = fail(err, errlen, "line %d column %d: labels: expected a string key", YPOS(labels));
            break;
        }
        const char *name = (const char *)k->data.scalar.value;
        if (!label_name_valid(name))
            rc = fail(err, errlen, "line %d column %d: \"%s\" is not a valid label name", YPOS(k), name);
        else if (i == dup)
            rc = fail(err, errlen, "line %d column %d: key \"%s\" already set in map", YPOS(k), name);
        else if (v->type != YAML_SCALAR_NODE)
            rc = fail(err, errlen, "line %d column %d: label %s: expected a string, got %s", YPOS(v), name,
                      y_kind(v));
        else
            pairs[np++] = (label){xstrdup(name), xstrdup(y_null(v) ? "" : (const char *)v->data.scalar.value)};
    }
    if (rc) {
        for (size_t i = 0; i < np; i++) {
            free(pairs[i].name);
            free(pairs[i].value);
        }
    } else {
        labelset_set_many(&g->labels, pairs, np); /* takes the strings */
    }
    free(pairs);
    return rc;
}

static int parse_yaml_group(yaml_document_t *doc, yaml_node_t *item, size_t i, const char *path, glist *out,
                            size_t *budget, char *err, size_t errlen)
{
    if (y_null(item))
        return fail(err, errlen, "line %d column %d: nil target group item found", YPOS(item));
    if (item->type != YAML_MAPPING_NODE)
        return fail(err, errlen, "line %d column %d: group %zu: expected a mapping with targets and labels, "
                    "got %s", YPOS(item), i, y_kind(item));
    yaml_node_t *targets = NULL, *labels = NULL;
    for (yaml_node_pair_t *pr = item->data.mapping.pairs.start; pr < item->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = yaml_document_get_node(doc, pr->key), *v = yaml_document_get_node(doc, pr->value);
        if (!k || k->type != YAML_SCALAR_NODE)
            return fail(err, errlen, "line %d column %d: group %zu: expected a string key", YPOS(item), i);
        const char *key = (const char *)k->data.scalar.value;
        yaml_node_t **slot;
        if (!strcmp(key, "targets"))
            slot = &targets;
        else if (!strcmp(key, "labels"))
            slot = &labels;
        else
            return fail(err, errlen, "line %d column %d: field %s not found in target group (expected targets, "
                        "labels)", YPOS(k), key);
        if (*slot)
            return fail(err, errlen, "line %d column %d: key \"%s\" already set in map", YPOS(k), key);
        *slot = v ? v : k; /* a key without a node cannot happen in a loaded document */
    }
    if (targets && !y_null(targets) && targets->type != YAML_SEQUENCE_NODE)
        return fail(err, errlen, "line %d column %d: targets: expected a list of strings, got %s",
                    YPOS(targets), y_kind(targets));
    if (labels && !y_null(labels) && labels->type != YAML_MAPPING_NODE)
        return fail(err, errlen, "line %d column %d: labels: expected a mapping of strings, got %s",
                    YPOS(labels), y_kind(labels));
    size_t cost = 1;
    if (labels && labels->type == YAML_MAPPING_NODE)
        cost += (size_t)(labels->data.mapping.pairs.top - labels->data.mapping.pairs.start);
    if (targets && targets->type == YAML_SEQUENCE_NODE)
        cost += (size_t)(targets->data.sequence.items.top - targets->data.sequence.items.start);
    if (spend(budget, cost, err, errlen))
        return -1;
    target_group *g = glist_add(out, path);
    if (labels && labels->type == YAML_MAPPING_NODE && add_yaml_labels(doc, labels, g, err, errlen))
        return -1;
    if (targets && targets->type == YAML_SEQUENCE_NODE)
        for (yaml_node_item_t *it = targets->data.sequence.items.start; it < targets->data.sequence.items.top;
             it++) {
            yaml_node_t *t = yaml_document_get_node(doc, *it);
            if (!t || t->type != YAML_SCALAR_NODE) {
                const yaml_node_t *at = t ? t : targets;
                return fail(err, errlen, "line %d column %d: targets: expected a string, got %s", YPOS(at),
                            t ? y_kind(t) : "nothing");
            }
            add_target(g, y_null(t) ? "" : (const char *)t->data.scalar.value);
        }
    return 0;
}

static int ref_parse_yaml(const char *path, const char *data, size_t len, glist *out, char *err, size_t errlen)
{
    size_t dl, dc;
    const char *why;
    if (yaml_depth_check(data, len, &dl, &dc, &why) != 0)
        return fail(err, errlen, "line %zu column %zu: %s", dl + 1, dc + 1, why);
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return fail(err, errlen, "cannot initialise the YAML parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    if (!yaml_parser_load(&parser, &doc)) {
        int rc = fail(err, errlen, "line %d column %d: %s%s%s", (int)parser.problem_mark.line + 1,
                      (int)parser.problem_mark.column + 1, parser.context ? parser.context : "",
                      parser.context ? ": " : "", parser.problem ? parser.problem : "syntax error");
        yaml_parser_delete(&parser);
        return rc;
    }
    int rc = 0;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!y_null(root)) {
        if (root->type != YAML_SEQUENCE_NODE) {
            rc = fail(err, errlen, "line %d column %d: expected a list of target groups, got %s", YPOS(root),
                      y_kind(root));
        } else {
            size_t i = 0, budget = len / 2 + 64;
            for (yaml_node_item_t *it = root->data.sequence.items.start; it < root->data.sequence.items.top;
                 it++, i++)
                if ((rc = parse_yaml_group(&doc, yaml_document_get_node(&doc, *it), i, path, out, &budget, err,
                                           errlen)))
                    break;
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}


/* The former YAML branch of parse_pooled: groups with targets, __meta_filepath set. */
static int ref_parse(const char *path, const char *data, size_t len, glist *l, char *err, size_t errlen)
{
    int rc = ref_parse_yaml(path, data, len, l, err, errlen);
    if (rc) {
        sd_groups_free(l->v, l->n);
        l->v = NULL;
        l->n = 0;
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].n_targets)
            l->v[k++] = l->v[i];
        else
            target_group_free(&l->v[i]);
    l->n = k;
    for (size_t i = 0; i < l->n; i++)
        labelset_set(&l->v[i].labels, "__meta_filepath", path);
    return 0;
}

static bool same_group(const target_group *a, const target_group *b)
{
    if (strcmp(a->source, b->source) || a->n_targets != b->n_targets || !labelset_equal(&a->labels, &b->labels))
        return false;
    for (size_t k = 0; k < a->n_targets; k++)
        if (!labelset_equal(&a->targets[k], &b->targets[k]))
            return false;
    return true;
}

static void differ(const char *what, const char *a, const char *b)
{
    fprintf(stderr, "readers differ: %s\n  streaming: %s\n  tree or copied labels: %s\n", what, a, b);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 256 * 1024)
        return 0;
    bool yaml = data[0] & 1;
    const char *path = yaml ? "/sd/targets.yml" : "/sd/targets.json";
    const char *doc = (const char *)data + 1;
    target_group *g = NULL;
    size_t n = 0;
    char err[512] = "";
    int rc = sd_file_parse(path, doc, size - 1, &g, &n, err, sizeof err);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++) {
            if (!g[i].n_targets || (i && sd_group_index(&g[i]) <= sd_group_index(&g[i - 1]))) {
                fprintf(stderr, "group %zu (%s): %zu targets, out of order or empty\n", i, g[i].source,
                        g[i].n_targets);
                abort();
            }
            if (!g[i].gen) {
                fprintf(stderr, "group %zu (%s): not frozen\n", i, g[i].source);
                abort();
            }
            /* frozen (read-only views): a deep copy holds the same content and is a plain group again */
            target_group c;
            target_group_copy(&c, &g[i]);
            if (c.gen != 0 || !same_group(&c, &g[i])) {
                fprintf(stderr, "group %zu (%s): its copy differs\n", i, g[i].source);
                abort();
            }
            labelset t = LABELSET_INIT;
            labelset_set(&t, "__address__", "x:1");
            target_group_add_target(&c, &t); /* the capacity invariant of target_group_add_target */
            labelset_free(&t);
            target_group_free(&c);
        }
    }
    if (!yaml) {
        target_group *a = NULL;
        size_t na = 0;
        char aerr[512] = "";
        size_t keep = sd_json_adopt_min;
        sd_json_adopt_min = 0;
        int arc = sd_file_parse(path, doc, size - 1, &a, &na, aerr, sizeof aerr);
        sd_json_adopt_min = keep;
        if (rc != arc)
            differ("acceptance (adopted labels)", rc ? err : "accepted", arc ? aerr : "accepted");
        if (rc && strcmp(err, aerr))
            differ("error text (adopted labels)", err, aerr);
        if (!rc) {
            if (n != na)
                differ("number of groups (adopted labels)", "n", "na");
            for (size_t i = 0; i < n; i++)
                if (!same_group(&g[i], &a[i]))
                    differ("a group (adopted labels)", g[i].source, a[i].source);
            sd_groups_free(a, na);
        }
    }
    if (yaml && !(rc && strstr(err, "(aliases)"))) {
        glist l = {0};
        char rerr[512] = "";
        int rrc = ref_parse(path, doc, size - 1, &l, rerr, sizeof rerr);
        if (rc != rrc)
            differ("acceptance", rc ? err : "accepted", rrc ? rerr : "accepted");
        if (rc && strcmp(err, rerr) && !strstr(rerr, "(aliases)"))
            differ("error text", err, rerr);
        if (!rc) {
            if (n != l.n)
                differ("number of groups", "n", "l.n");
            for (size_t i = 0; i < n; i++)
                if (!same_group(&g[i], &l.v[i]))
                    differ("a group", g[i].source, l.v[i].source);
        }
        sd_groups_free(l.v, l.n);
    }
    if (rc == 0)
        sd_groups_free(g, n);
    return 0;
}
