/* file_parse: reading one file_sd file into target groups, validated as Prometheus' file SD does
 * (discovery/file/file.go readFile and targetgroup.Group's UnmarshalJSON / UnmarshalYAML):
 *   - JSON (streamed by json_groups.c, no document tree): `null` is an empty list; an empty file is a
 *     syntax error (as in Go); unknown keys in a group are rejected (DisallowUnknownFields); keys match
 *     case-insensitively (encoding/json); targets must be strings, label values strings.
 *   - YAML (libyaml, first document): an empty file or `null` is an empty list; unknown and duplicate keys
 *     are rejected (UnmarshalStrict); scalars of any type are accepted as strings (yaml.v2 does so).
 *   - a null group is an error ("nil target group item found"); label names must be valid.
 * Every group gets source "PATH:INDEX" and __meta_filepath=PATH; groups without targets are not returned
 * (INDEX keeps counting them). Pure: no threads, no globals. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "sd/sd_internal.h"
#include "util/xalloc.h"
#include "util/yaml_depth.h"

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

/* ---- YAML ---- */

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

static int parse_yaml(const char *path, const char *data, size_t len, glist *out, char *err, size_t errlen)
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

static int parse_pooled(const char *path, sd_pool *pool, const char *data, size_t len, target_group **out,
                        size_t *n, char *err, size_t errlen)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (dot && slash && dot < slash)
        dot = NULL;
    glist l = {0};
    int rc;
    if (dot && !strcasecmp(dot, ".json")) {
        rc = sd_json_groups_parse(path, "__meta_filepath", path, NULL, pool, data, len, &l.v, NULL, &l.n, err,
                                  errlen);
    } else if (dot && (!strcasecmp(dot, ".yml") || !strcasecmp(dot, ".yaml"))) {
        rc = parse_yaml(path, data, len, &l, err, errlen);
        if (!rc) { /* like JSON: only groups with targets */
            size_t k = 0;
            for (size_t i = 0; i < l.n; i++)
                if (l.v[i].n_targets)
                    l.v[k++] = l.v[i];
                else
                    target_group_free(&l.v[i]);
            l.n = k;
        }
    } else {
        rc = fail(err, errlen, "unhandled file extension %s (expected .json, .yml or .yaml)", dot ? dot : "\"\"");
    }
    if (rc) {
        sd_groups_free(l.v, l.n);
        return -1;
    }
    for (size_t i = 0; i < l.n; i++)
        if (!l.v[i].gen) /* YAML; JSON groups come frozen with it */
            labelset_set(&l.v[i].labels, "__meta_filepath", path);
    *out = l.v;
    *n = l.n;
    return 0;
}

int sd_file_parse(const char *path, const char *data, size_t len, target_group **out, size_t *n, char *err,
                  size_t errlen)
{
    return parse_pooled(path, NULL, data, len, out, n, err, errlen);
}

int sd_file_read(const char *path, target_group **out, size_t *n, char *err, size_t errlen)
{
    return sd_file_read_pooled(path, NULL, out, n, err, errlen);
}

int sd_file_read_stream(FILE *f, size_t size, size_t limit, char **out, size_t *outlen, char *err, size_t errlen)
{
    /* the file may grow between fstat and read: read at most the limit plus one byte to notice */
    size_t cap = (size < limit ? size : limit) + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    for (;;) {
        if (len == cap) {
            if (cap > limit) {
                free(buf);
                return fail(err, errlen, "file is more than the %zu bytes allowed", limit);
            }
            cap = cap * 2 > limit + 1 ? limit + 1 : cap * 2;
            buf = realloc(buf, cap);
            if (!buf)
                abort();
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        return fail(err, errlen, "read error");
    }
    *out = buf;
    *outlen = len;
    return 0;
}

int sd_file_read_pooled(const char *path, sd_pool *pool, target_group **out, size_t *n, char *err, size_t errlen)
{
    /* O_NONBLOCK: opening a FIFO (or a device) for reading would otherwise wait for a writer, and hang
     * start-up, reloads and shutdown with it. Only regular files are read; the flag is cleared for them. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, "open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(err, errlen, "not a regular file");
    }
    int fl = fcntl(fd, F_GETFL);
    FILE *f = fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 ? NULL : fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        return fail(err, errlen, "open: %s", strerror(e));
    }
    if ((uint64_t)st.st_size > SD_FILE_MAX_BYTES) {
        fclose(f);
        return fail(err, errlen, "file is %lld bytes, more than the %u allowed", (long long)st.st_size,
                    SD_FILE_MAX_BYTES);
    }
    char *buf;
    size_t len;
    int rc = sd_file_read_stream(f, (size_t)st.st_size, SD_FILE_MAX_BYTES, &buf, &len, err, errlen);
    fclose(f);
    if (rc)
        return -1;
    rc = parse_pooled(path, pool, buf, len, out, n, err, errlen);
    free(buf);
    return rc;
}
