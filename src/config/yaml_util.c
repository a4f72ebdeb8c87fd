/* yaml_util: typed access to libyaml document nodes with FILE:LINE:COLUMN errors. The rules follow what
 * Prometheus gets from gopkg.in/yaml.v2 with UnmarshalStrict: unknown and repeated keys are errors, a null
 * value means "not set", booleans take the YAML 1.1 spellings, and any scalar may fill a string field. */
#include "config/yaml_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/path.h"
#include "util/strbuf.h"
#include "util/strv.h"

config_pos cfg_pos(const yaml_node_t *n)
{
    config_pos p = {0, 0};
    if (n) {
        p.line = (int)n->start_mark.line + 1;
        p.column = (int)n->start_mark.column + 1;
    }
    return p;
}

int cfg_error(cfg_ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
    config_pos p = cfg_pos(n);
    int off = snprintf(c->err, c->errlen, "%s:%d:%d: ", c->file, p.line, p.column);
    if (off < 0 || (size_t)off >= c->errlen)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + off, c->errlen - (size_t)off, fmt, ap);
    va_end(ap);
    return -1;
}

void cfg_warn(cfg_ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
    if (!c->cfg)
        return;
    config_pos p = cfg_pos(n);
    strbuf sb;
    strbuf_init(&sb);
    strbuf_printf(&sb, "line %d, column %d: ", p.line, p.column);
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&sb, fmt, ap);
    va_end(ap);
    config_warning *w = realloc(c->cfg->warnings, (c->cfg->n_warnings + 1) * sizeof *w);
    if (!w) {
        strbuf_free(&sb);
        return;
    }
    c->cfg->warnings = w;
    w[c->cfg->n_warnings].message = strbuf_detach(&sb, NULL);
    strbuf_free(&sb); /* detach re-initialises the buffer */
    w[c->cfg->n_warnings].pos = p;
    c->cfg->n_warnings++;
}

bool cfg_is_null(const yaml_node_t *n)
{
    if (!n || n->type != YAML_SCALAR_NODE)
        return n == NULL;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return strcmp(v, "") == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

const char *cfg_kind_name(const yaml_node_t *n)
{
    if (!n)
        return "nothing";
    switch (n->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_SCALAR_NODE: return cfg_is_null(n) ? "null" : "a scalar";
    default: return "nothing";
    }
}

const char *cfg_scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Lists the allowed keys, folding the ~30 service-discovery keys into one entry to keep it readable. */
static void append_expected(strbuf *sb, const char *const *allowed)
{
    bool sd = false, first = true;
    strbuf_puts(sb, " (expected one of: ");
    for (size_t i = 0; allowed[i] && allowed[i][0]; i++) {
        size_t n = strlen(allowed[i]);
        if (n > 11 && strcmp(allowed[i] + n - 11, "_sd_configs") == 0) {
            sd = true;
            continue;
        }
        strbuf_printf(sb, "%s%s", first ? "" : ", ", allowed[i]);
        first = false;
    }
    if (sd)
        strbuf_puts(sb, ", or a service discovery block such as file_sd_configs");
    strbuf_puts(sb, ")");
}

int cfg_check_map(cfg_ctx *c, const yaml_node_t *n, const char *type, const char *const *allowed)
{
    if (cfg_is_null(n))
        return 1;
    if (n->type != YAML_MAPPING_NODE)
        return cfg_error(c, n, "expected a mapping for %s, got %s", type, cfg_kind_name(n));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const char *ks = cfg_scalar(k);
        if (!ks)
            return cfg_error(c, k, "expected a string key in %s, got %s", type, cfg_kind_name(k));
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(allowed[i], ks) == 0;
        if (!ok) {
            strbuf sb;
            strbuf_init(&sb);
            append_expected(&sb, allowed);
            cfg_error(c, k, "field %s not found in type %s%s", ks, type, sb.buf);
            strbuf_free(&sb);
            return -1;
        }
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k2 = yaml_document_get_node(c->doc, q->key);
            if (strcmp(cfg_scalar(k2), ks) == 0)
                return cfg_error(c, k, "field %s already set in type %s at line %d", ks, type,
                                 cfg_pos(k2).line);
        }
    }
    return 0;
}

yaml_node_t *cfg_get_raw(cfg_ctx *c, const yaml_node_t *n, const char *key)
{
    if (!n || n->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const char *ks = cfg_scalar(yaml_document_get_node(c->doc, p->key));
        if (ks && strcmp(ks, key) == 0)
            return yaml_document_get_node(c->doc, p->value);
    }
    return NULL;
}

yaml_node_t *cfg_key_node(cfg_ctx *c, const yaml_node_t *n, const char *key)
{
    if (!n || n->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        const char *ks = cfg_scalar(k);
        if (ks && strcmp(ks, key) == 0)
            return k;
    }
    return NULL;
}

yaml_node_t *cfg_get(cfg_ctx *c, const yaml_node_t *n, const char *key)
{
    yaml_node_t *v = cfg_get_raw(c, n, key);
    return cfg_is_null(v) ? NULL : v;
}

int cfg_list(cfg_ctx *c, const yaml_node_t *n, const char *what, yaml_node_t ***items)
{
    *items = NULL;
    if (cfg_is_null(n))
        return 0;
    if (n->type != YAML_SEQUENCE_NODE)
        return cfg_error(c, n, "expected a list for %s, got %s", what, cfg_kind_name(n));
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (cnt == 0)
        return 0;
    yaml_node_t **v = calloc(cnt, sizeof *v);
    if (!v)
        return cfg_error(c, n, "out of memory");
    for (size_t i = 0; i < cnt; i++)
        v[i] = yaml_document_get_node(c->doc, n->data.sequence.items.start[i]);
    *items = v;
    return (int)cnt;
}

/* A scalar for a string field: any non-null scalar, as yaml.v2 does. */
static int scalar_for(cfg_ctx *c, const yaml_node_t *v, const char *key, const char *expected, const char **out)
{
    if (v->type != YAML_SCALAR_NODE)
        return cfg_error(c, v, "expected %s for %s, got %s", expected, key, cfg_kind_name(v));
    *out = (const char *)v->data.scalar.value;
    return 0;
}

int cfg_read_string(cfg_ctx *c, const yaml_node_t *map, const char *key, char **out)
{
    yaml_node_t *v = cfg_get(c, map, key);
    const char *s = NULL;
    if (!v)
        return 0;
    if (scalar_for(c, v, key, "a string", &s) < 0)
        return -1;
    char *d = strdup(s);
    if (!d)
        return cfg_error(c, v, "out of memory");
    free(*out);
    *out = d;
    return 0;
}

int cfg_read_bool(cfg_ctx *c, const yaml_node_t *map, const char *key, bool *out)
{
    static const char *const yes[] = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", NULL};
    static const char *const no[] = {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", NULL};
    yaml_node_t *v = cfg_get(c, map, key);
    const char *s = NULL;
    if (!v)
        return 0;
    if (scalar_for(c, v, key, "a boolean (true or false)", &s) < 0)
        return -1;
    if (v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        for (size_t i = 0; yes[i]; i++)
            if (strcmp(s, yes[i]) == 0)
                return *out = true, 0;
        for (size_t i = 0; no[i]; i++)
            if (strcmp(s, no[i]) == 0)
                return *out = false, 0;
    }
    return cfg_error(c, v, "invalid value \"%s\" for %s (expected a boolean: true or false)", s, key);
}

int cfg_read_duration(cfg_ctx *c, const yaml_node_t *map, const char *key, int64_t *out_ms)
{
    yaml_node_t *v = cfg_get(c, map, key);
    const char *s = NULL;
    if (!v)
        return 0;
    if (scalar_for(c, v, key, "a duration", &s) < 0)
        return -1;
    if (duration_parse(s, out_ms) < 0)
        return cfg_error(c, v,
                         "invalid duration \"%s\" for %s (expected a duration such as 15s, 1m30s or 1h; "
                         "units ms, s, m, h, d, w, y; integers only)",
                         s, key);
    return 0;
}

int cfg_read_uint(cfg_ctx *c, const yaml_node_t *map, const char *key, uint64_t *out)
{
    yaml_node_t *v = cfg_get(c, map, key);
    const char *s = NULL;
    if (!v)
        return 0;
    if (scalar_for(c, v, key, "a non-negative integer", &s) < 0)
        return -1;
    const char *p = s;
    if (*p == '+')
        p++;
    uint64_t x = 0;
    bool ok = *p != '\0' && v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    for (; ok && *p; p++) {
        if (*p < '0' || *p > '9' || x > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            ok = false;
        else
            x = x * 10 + (uint64_t)(*p - '0');
    }
    if (!ok)
        return cfg_error(c, v, "invalid value \"%s\" for %s (expected a non-negative integer)", s, key);
    *out = x;
    return 0;
}

int cfg_read_string_list(cfg_ctx *c, const yaml_node_t *map, const char *key, char ***out, size_t *n)
{
    yaml_node_t *v = cfg_get(c, map, key);
    if (!v)
        return 0;
    yaml_node_t **items;
    int cnt = cfg_list(c, v, key, &items);
    if (cnt < 0)
        return -1;
    char **strs = cnt ? calloc((size_t)cnt, sizeof *strs) : NULL;
    for (int i = 0; i < cnt; i++) {
        const char *s = NULL;
        if (cfg_is_null(items[i])) {
            s = "";
        } else if (scalar_for(c, items[i], key, "a list of strings", &s) < 0) {
            strv_free(strs, (size_t)i);
            free(items);
            return -1;
        }
        strs[i] = strdup(s);
    }
    free(items);
    strv_free(*out, *n);
    *out = strs;
    *n = (size_t)cnt;
    return 0;
}

bool cfg_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        size_t len;
        unsigned cp;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07;
        } else {
            return false;
        }
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += len;
    }
    return true;
}

int cfg_read_labels(cfg_ctx *c, const yaml_node_t *map, const char *key, labelset *out)
{
    yaml_node_t *v = cfg_get(c, map, key);
    if (!v)
        return 0;
    if (v->type != YAML_MAPPING_NODE)
        return cfg_error(c, v, "expected a mapping of label names to values for %s, got %s", key, cfg_kind_name(v));
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *val = yaml_document_get_node(c->doc, p->value);
        const char *name = cfg_scalar(k);
        if (!name || !label_name_valid(name))
            return cfg_error(c, k, "\"%s\" is not a valid label name (expected [a-zA-Z_][a-zA-Z0-9_]*)",
                             name ? name : "");
        if (labelset_get(out, name))
            return cfg_error(c, k, "duplicate label name \"%s\" in %s", name, key);
        const char *value = "";
        if (!cfg_is_null(val)) {
            if (val->type != YAML_SCALAR_NODE)
                return cfg_error(c, val, "expected a string value for label \"%s\", got %s", name,
                                 cfg_kind_name(val));
            value = cfg_scalar(val);
        }
        if (!cfg_utf8_valid(value))
            return cfg_error(c, val, "\"%s\" is not a valid label value (expected UTF-8)", value);
        labelset_set(out, name, value);
    }
    return 0;
}

char *cfg_join_dir(const cfg_ctx *c, const char *path)
{
    if (!path)
        return NULL;
    if (path[0] == '\0' || path[0] == '/')
        return strdup(path);
    /* filepath.Join cleans: "./sd/a.json" and "sd/../sd/a.json" become "<dir>/sd/a.json" (also for a
     * config in the current directory, whose dir Prometheus takes as "."), and so does a glob pattern
     * before it is matched. */
    return path_join(c->dir, path);
}
