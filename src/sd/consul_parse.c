/* consul_parse: the Consul HTTP API responses the Consul provider reads, turned into what Prometheus'
 * discovery/consul/consul.go makes of them (labels, health aggregation, addresses). Pure: no I/O.
 *
 * The catalog and health answers (the big ones: every service, every instance) are parsed as a stream
 * (yajl) straight into catalog entries and targets, with the checks and texts the jansson tree code had:
 * memory is what is kept plus one service entry being read, not a document tree (~77 times the text for
 * some shapes). When a key repeats in an object the last occurrence wins (jansson did the same). A scalar
 * or `null` document is a syntax error ("'[' or '{' expected", as jansson without JSON_DECODE_ANY said).
 * Unlike jansson, yajl lets overlong UTF-8 forms, encoded surrogates and code points above U+10FFFF through,
 * and turns a lone UTF-16 surrogate escape into '?' (as json_groups.c says for http_sd).
 * /v1/agent/self (read once per provider) is streamed too, keeping only Config.Datacenter. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "sd/sd_internal.h"
#include "sd/sd_remote.h"
#include "util/json_budget.h"
#include "util/xalloc.h"

void sd_sanitize_label_name(const char *in, char *out, size_t outlen)
{
    /* Go replaces per rune: one '_' for a whole UTF-8 sequence, one per invalid byte */
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)in;
    while (*p && o + 1 < outlen) {
        unsigned char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
        out[o++] = ok ? (char)ch : '_';
        size_t len = ch >= 0xF0 && ch <= 0xF4 ? 4 : ch >= 0xE0 ? 3 : ch >= 0xC2 && ch < 0xE0 ? 2 : 1;
        if (ch >= 0xF5)
            len = 1;
        for (size_t k = 1; k < len; k++)
            if ((p[k] & 0xC0) != 0x80) {
                len = 1;
                break;
            }
        p += len;
    }
    out[o] = '\0';
}

/* A catalog is three allocations: the entries (plus one hidden entry after the last holding the other two),
 * every name and tag in one string block, every entry's tag pointers in one array. */
void consul_catalog_free(consul_catalog_entry *v, size_t n)
{
    if (!v)
        return;
    free(v[n].name);
    free(v[n].tags);
    free(v);
}


/* ---- streaming helpers ---- */

enum { K_OBJECT, K_ARRAY, K_STRING, K_NUMBER, K_BOOL, K_NULL };

typedef struct growbuf {
    char *b;
    size_t n, cap;
} growbuf;

/* Appends s (len bytes) and a NUL; returns its offset. */
static size_t gb_add(growbuf *g, const void *s, size_t len)
{
    if (g->n + len + 1 > g->cap) {
        size_t cap = g->cap ? g->cap : 256;
        while (g->n + len + 1 > cap)
            cap *= 2;
        g->b = xrealloc(g->b, cap);
        g->cap = cap;
    }
    size_t at = g->n;
    memcpy(g->b + at, s, len);
    g->b[at + len] = 0;
    g->n += len + 1;
    return at;
}

static char *dupn(const unsigned char *s, size_t len)
{
    char *p = xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = 0;
    return p;
}

static bool key_is(const unsigned char *k, size_t len, const char *name)
{
    return strlen(name) == len && !memcmp(k, name, len);
}

/* ---- /v1/catalog/services: {"name": ["tag", ...] | null, ...} ---- */

typedef struct centry {
    size_t name, tags, n_tags, seq; /* offsets into the string block / tag offsets */
} centry;

typedef struct cat {
    char fatal[96];
    yajl_handle h;
    size_t root_end;
    const char *err;
    int depth;
    bool cur_ok; /* the current service's value is a list (or null) */
    centry *v;
    size_t n, cap;
    growbuf strs;
    char **tagoff; /* every tag: its string offset while parsing (the block may move), then its pointer */
    size_t n_tagoff, cap_tagoff;
} cat;

static void cat_value(cat *c, int kind, const unsigned char *s, size_t len)
{
    int d = c->depth + 1; /* where this value lives */
    if (c->err)
        return;
    if (d == 1) {
        if (kind == K_ARRAY)
            c->err = "catalog services: expected an object of service names to tags";
        else if (kind != K_OBJECT)
            snprintf(c->fatal, sizeof c->fatal, "'[' or '{' expected");
        return;
    }
    if (d == 2) {
        c->cur_ok = kind == K_ARRAY || kind == K_NULL;
        if (!c->cur_ok)
            c->err = "catalog services: expected a list of tags";
        return;
    }
    if (d == 3 && c->cur_ok) {
        if (kind != K_STRING) {
            c->err = "catalog services: expected tags to be strings";
            return;
        }
        if (c->n_tagoff == c->cap_tagoff) {
            c->cap_tagoff = c->cap_tagoff ? c->cap_tagoff * 2 : 16;
            c->tagoff = xrealloc(c->tagoff, c->cap_tagoff * sizeof *c->tagoff);
        }
        c->tagoff[c->n_tagoff++] = (char *)(uintptr_t)gb_add(&c->strs, s, len);
        c->v[c->n - 1].n_tags++;
    }
}

static int cat_null(void *ctx)
{
    cat *c = ctx;
    cat_value(c, K_NULL, NULL, 0);
    return !c->fatal[0];
}

static int cat_bool(void *ctx, int b)
{
    (void)b;
    cat *c = ctx;
    cat_value(c, K_BOOL, NULL, 0);
    return !c->fatal[0];
}

static int cat_number(void *ctx, const char *s, size_t len)
{
    cat *c = ctx;
    bool is_int;
    long long iv;
    const char *bad = sd_json_number_check(s, len, &is_int, &iv);
    if (bad) {
        snprintf(c->fatal, sizeof c->fatal, "%s", bad);
        return 0;
    }
    cat_value(c, K_NUMBER, NULL, 0);
    return !c->fatal[0];
}

static int cat_string(void *ctx, const unsigned char *s, size_t len)
{
    cat *c = ctx;
    if (memchr(s, 0, len)) {
        snprintf(c->fatal, sizeof c->fatal, "\\u0000 is not allowed without JSON_ALLOW_NUL");
        return 0;
    }
    cat_value(c, K_STRING, s, len);
    return !c->fatal[0];
}

static int cat_open(cat *c, int kind)
{
    if (c->depth >= 2048) {
        snprintf(c->fatal, sizeof c->fatal, "maximum parsing depth reached");
        return 0;
    }
    cat_value(c, kind, NULL, 0);
    c->depth++;
    return !c->fatal[0];
}

static int cat_start_map(void *ctx)
{
    return cat_open(ctx, K_OBJECT);
}

static int cat_start_array(void *ctx)
{
    return cat_open(ctx, K_ARRAY);
}

static int cat_close(void *ctx)
{
    cat *c = ctx;
    if (--c->depth == 0)
        c->root_end = yajl_get_bytes_consumed(c->h);
    return 1;
}

static int cat_key(void *ctx, const unsigned char *k, size_t len)
{
    cat *c = ctx;
    if (memchr(k, 0, len)) {
        snprintf(c->fatal, sizeof c->fatal, "NUL byte in object key not supported");
        return 0;
    }
    if (c->err || c->depth != 1)
        return 1;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->v = xrealloc(c->v, c->cap * sizeof *c->v);
    }
    c->v[c->n] = (centry){gb_add(&c->strs, k, len), c->n_tagoff, 0, c->n};
    c->n++;
    return 1;
}

static const yajl_callbacks cat_callbacks = {
    .yajl_null = cat_null,
    .yajl_boolean = cat_bool,
    .yajl_number = cat_number,
    .yajl_string = cat_string,
    .yajl_start_map = cat_start_map,
    .yajl_map_key = cat_key,
    .yajl_end_map = cat_close,
    .yajl_start_array = cat_start_array,
    .yajl_end_array = cat_close,
};

static int cmp_centry(const void *a, const void *b, void *strs)
{
    const centry *x = a, *y = b;
    const char *base = strs;
    int c = strcmp(base + x->name, base + y->name);
    return c ? c : x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Runs yajl over body with callbacks; 0, or -1 with "PREFIX: line L column C: TEXT" in err. */
static int stream(const yajl_callbacks *cb, void *ctx, yajl_handle *hp, const size_t *root_end, const char *fatal,
                  const char *body, size_t len, const char *prefix, char *err, size_t errlen)
{
    yajl_handle h = yajl_alloc(cb, NULL, ctx);
    if (!h)
        abort();
    *hp = h;
    yajl_status s = yajl_parse(h, (const unsigned char *)(body ? body : ""), len);
    size_t off = yajl_get_bytes_consumed(h);
    if (s == yajl_status_ok) {
        s = yajl_complete_parse(h);
        off = len;
    }
    int rc = 0;
    size_t garbage = s == yajl_status_ok ? sd_json_trailing_garbage(body, len, *root_end) : 0;
    if (s != yajl_status_ok || garbage) {
        char e[400];
        if (garbage)
            sd_json_syntax_error(h, body, len, garbage, "trailing garbage", e, sizeof e);
        else
            sd_json_syntax_error(h, body ? body : "", len, off, fatal, e, sizeof e);
        snprintf(err, errlen, "%s: %s", prefix, e);
        rc = -1;
    }
    yajl_free(h);
    return rc;
}

int consul_parse_catalog(const char *body, size_t len, consul_catalog_entry **out, size_t *n, char *err,
                         size_t errlen)
{
    cat c = {0};
    int rc = stream(&cat_callbacks, &c, &c.h, &c.root_end, c.fatal, body, len, "invalid JSON in catalog services", err, errlen);
    if (!rc && c.err) {
        snprintf(err, errlen, "%s", c.err);
        rc = -1;
    }
    if (rc) {
        free(c.v);
        free(c.strs.b);
        free(c.tagoff);
        return -1;
    }
    /* sorted by name; a repeated name keeps its last list (jansson's object did) */
    if (c.n > 1) /* qsort(NULL, 0) is undefined (found by fuzz_remote_sd) */
        qsort_r(c.v, c.n, sizeof *c.v, cmp_centry, c.strs.b); /* providers parse on their own threads */
    size_t k = 0;
    for (size_t i = 0; i < c.n; i++) {
        if (i + 1 < c.n && !strcmp(c.strs.b + c.v[i].name, c.strs.b + c.v[i + 1].name))
            continue;
        c.v[k++] = c.v[i];
    }
    char *strs = c.strs.b ? xrealloc(c.strs.b, c.strs.n ? c.strs.n : 1) : NULL;
    char **tags = c.tagoff ? xrealloc(c.tagoff, c.n_tagoff * sizeof *tags) : xmalloc(sizeof *tags);
    for (size_t i = 0; i < c.n_tagoff; i++)
        tags[i] = strs + (uintptr_t)tags[i];
    consul_catalog_entry *v = xmalloc((k + 1) * sizeof *v);
    for (size_t i = 0; i < k; i++)
        v[i] = (consul_catalog_entry){strs + c.v[i].name, c.v[i].n_tags ? tags + c.v[i].tags : NULL, c.v[i].n_tags};
    free(c.v);
    v[k] = (consul_catalog_entry){strs, tags, 0}; /* what consul_catalog_free releases */
    *out = v;
    *n = k;
    return 0;
}

/* ---- /v1/agent/self: {"Config": {"Datacenter": "dc1", ...}, ...} ----
 * Streamed like the others: what is kept is Config.Datacenter (the last one when keys repeat, as jansson and
 * Go's encoding/json take it) or, when it is not a string, the first 64 bytes of its text for the error:
 * the value as sent (jansson's dump reformatted it, -1.5e3 as -1500.0), and null as <nil> (jansson: null). */

enum { DC_MISSING, DC_STRING, DC_BAD };

typedef struct agent_self {
    char fatal[96];
    yajl_handle h;
    size_t root_end;
    int depth;
    bool root_key_config; /* the key at depth 1 being read is "Config" */
    bool in_config;       /* inside the object of the last "Config" */
    bool want_dc;         /* the next value is Config.Datacenter */
    int dc_state;
    char *dc;             /* DC_STRING: the value; DC_BAD: its text */
    size_t bad_start;     /* a container Datacenter: where its text starts */
    int bad_depth;        /* ... and the depth its close brings back (0: none open) */
    const char *body;
} agent_self;

static void as_set(agent_self *c, int state, const char *s, size_t len)
{
    free(c->dc);
    c->dc = NULL;
    c->dc_state = state;
    if (state == DC_MISSING)
        return;
    if (state == DC_BAD && len > 64) {
        c->dc = xmalloc(64 + 4);
        memcpy(c->dc, s, 64);
        memcpy(c->dc + 64, "...", 4);
        return;
    }
    c->dc = dupn((const unsigned char *)s, len);
}

/* A value at depth depth+1; text: a scalar's JSON text (NULL for a container or a string). */
static void as_value(agent_self *c, int kind, const unsigned char *s, size_t len, const char *text)
{
    int d = c->depth + 1;
    if (d == 1) {
        if (kind != K_OBJECT && kind != K_ARRAY)
            snprintf(c->fatal, sizeof c->fatal, "'[' or '{' expected");
        return;
    }
    if (d == 2 && c->root_key_config) {
        c->root_key_config = false;
        as_set(c, DC_MISSING, NULL, 0); /* a later "Config" replaces an earlier one whole */
        c->in_config = kind == K_OBJECT;
        return;
    }
    if (d == 3 && c->want_dc) {
        c->want_dc = false;
        if (kind == K_STRING)
            as_set(c, DC_STRING, (const char *)s, len);
        else if (kind == K_NULL)
            as_set(c, DC_BAD, "<nil>", 5); /* Go's %v of a JSON null */
        else if (text)
            as_set(c, DC_BAD, text, strlen(text));
        else { /* an object or array: its text, taken when it closes */
            as_set(c, DC_BAD, "", 0);
            c->bad_start = yajl_get_bytes_consumed(c->h) - 1;
            c->bad_depth = d - 1;
        }
    }
}

static int as_null(void *ctx)
{
    agent_self *c = ctx;
    as_value(c, K_NULL, NULL, 0, NULL);
    return !c->fatal[0];
}

static int as_bool(void *ctx, int b)
{
    agent_self *c = ctx;
    as_value(c, K_BOOL, NULL, 0, b ? "true" : "false");
    return !c->fatal[0];
}

static int as_number(void *ctx, const char *s, size_t len)
{
    agent_self *c = ctx;
    bool is_int;
    long long iv;
    const char *bad = sd_json_number_check(s, len, &is_int, &iv);
    if (bad) {
        snprintf(c->fatal, sizeof c->fatal, "%s", bad);
        return 0;
    }
    char t[72];
    snprintf(t, sizeof t, "%.*s%s", (int)(len > 64 ? 64 : len), s, len > 64 ? "..." : "");
    as_value(c, K_NUMBER, NULL, 0, t);
    return !c->fatal[0];
}

static int as_string(void *ctx, const unsigned char *s, size_t len)
{
    agent_self *c = ctx;
    if (memchr(s, 0, len)) {
        snprintf(c->fatal, sizeof c->fatal, "\\u0000 is not allowed without JSON_ALLOW_NUL");
        return 0;
    }
    as_value(c, K_STRING, s, len, NULL);
    return !c->fatal[0];
}

static int as_open(agent_self *c, int kind)
{
    if (c->depth >= 2048) {
        snprintf(c->fatal, sizeof c->fatal, "maximum parsing depth reached");
        return 0;
    }
    as_value(c, kind, NULL, 0, NULL);
    c->depth++;
    return !c->fatal[0];
}

static int as_start_map(void *ctx)
{
    return as_open(ctx, K_OBJECT);
}

static int as_start_array(void *ctx)
{
    return as_open(ctx, K_ARRAY);
}

static int as_close(void *ctx)
{
    agent_self *c = ctx;
    --c->depth;
    size_t at = yajl_get_bytes_consumed(c->h);
    if (c->bad_depth && c->depth == c->bad_depth) {
        as_set(c, DC_BAD, c->body + c->bad_start, at - c->bad_start);
        c->bad_depth = 0;
    }
    if (c->depth == 1)
        c->in_config = false;
    if (c->depth == 0)
        c->root_end = at;
    return 1;
}

static int as_key(void *ctx, const unsigned char *k, size_t len)
{
    agent_self *c = ctx;
    if (memchr(k, 0, len)) {
        snprintf(c->fatal, sizeof c->fatal, "NUL byte in object key not supported");
        return 0;
    }
    if (c->depth == 1)
        c->root_key_config = key_is(k, len, "Config");
    else if (c->depth == 2 && c->in_config)
        c->want_dc = key_is(k, len, "Datacenter");
    return 1;
}

static const yajl_callbacks as_callbacks = {
    .yajl_null = as_null,
    .yajl_boolean = as_bool,
    .yajl_number = as_number,
    .yajl_string = as_string,
    .yajl_start_map = as_start_map,
    .yajl_map_key = as_key,
    .yajl_end_map = as_close,
    .yajl_start_array = as_start_array,
    .yajl_end_array = as_close,
};

char *consul_parse_agent_datacenter(const char *body, size_t len, char *err, size_t errlen)
{
    agent_self c = {.body = body};
    if (stream(&as_callbacks, &c, &c.h, &c.root_end, c.fatal, body, len, "invalid JSON in agent self", err,
               errlen)) {
        free(c.dc);
        return NULL;
    }
    if (c.dc_state != DC_STRING) {
        snprintf(err, errlen, "invalid value '%s' for Config.Datacenter", c.dc_state == DC_BAD ? c.dc : "<nil>");
        free(c.dc);
        return NULL;
    }
    return c.dc;
}

/* ---- /v1/health/service/NAME: [{"Node": {...}, "Service": {...}, "Checks": [...]}, ...] ---- */

/* A string map (Meta, TaggedAddresses): its pairs in order, and the first error. */
typedef struct smap {
    labelset pairs; /* raw key -> value; sanitised when the target is built */
    label *pend;    /* pairs as they arrive, set into `pairs` all at once (labelset_set_many) when read: one
                       labelset_set per key moved the whole set for each key sorting first (quadratic) */
    size_t npend, pcap;
    const char *err;
    bool bad_type;
} smap;

enum { SEC_NONE, SEC_NODE, SEC_SERVICE, SEC_CHECKS, SEC_OTHER };
enum { NF_NONE, NF_ADDRESS, NF_NODE, NF_META, NF_TAGGED, SF_ADDRESS, SF_NAMESPACE, SF_PARTITION, SF_ID, SF_PORT,
       SF_TAGS, SF_META, CF_ID, CF_STATUS, F_OTHER };

typedef struct hentry {
    bool malformed;            /* entry, Node, Service or Checks of the wrong type */
    int node_kind, svc_kind, checks_kind;
    char *naddr, *nnode, *saddr, *sns, *spart, *sid;
    bool port_set, port_bad, tags_bad, tag_not_string;
    long long port;
    char **tags;
    size_t n_tags, cap_tags;
    smap nmeta, smeta, tagged;
    bool maint, critical, warning, unknown; /* checks */
    char *cid, *cstatus;                    /* the check being read */
    bool check_is_object;
} hentry;

typedef struct health {
    char fatal[96];
    yajl_handle h;
    size_t root_end;
    const char *err;
    int depth;
    int sec;   /* which entry field the value at depth 3+ belongs to */
    int field; /* which field of Node / Service / a check */
    int mapsec; /* inside a map: NF_META, NF_TAGGED or SF_META */
    char *mapkey;
    hentry e;
    const char *sep;
    target_group *g;
    sd_group_builder tb; /* the targets, packed until the answer ends (then frozen into g) */
    size_t kept, budget, len; /* what the targets take (an estimate), at most, the body's size */
    char budget_err[200];
} health;

static void smap_reset(smap *m)
{
    labelset_free(&m->pairs);
    for (size_t i = 0; i < m->npend; i++) {
        free(m->pend[i].name);
        free(m->pend[i].value);
    }
    free(m->pend);
    m->pend = NULL;
    m->npend = m->pcap = 0;
    m->err = NULL;
    m->bad_type = false;
}

static void set_str(char **dst, int kind, const unsigned char *s, size_t len)
{
    free(*dst);
    *dst = kind == K_STRING ? dupn(s, len) : NULL; /* not a string: "" as jstr() read it */
}

static void tags_reset(hentry *e)
{
    for (size_t i = 0; i < e->n_tags; i++)
        free(e->tags[i]);
    e->n_tags = 0;
    e->tags_bad = e->tag_not_string = false;
}

static void node_reset(hentry *e)
{
    free(e->naddr);
    free(e->nnode);
    e->naddr = e->nnode = NULL;
    smap_reset(&e->nmeta);
    smap_reset(&e->tagged);
}

static void svc_reset(hentry *e)
{
    free(e->saddr);
    free(e->sns);
    free(e->spart);
    free(e->sid);
    e->saddr = e->sns = e->spart = e->sid = NULL;
    e->port_set = e->port_bad = false;
    e->port = 0;
    tags_reset(e);
    smap_reset(&e->smeta);
}

static void checks_reset(hentry *e)
{
    e->maint = e->critical = e->warning = e->unknown = false;
}

static void entry_reset(hentry *e)
{
    node_reset(e);
    svc_reset(e);
    checks_reset(e);
    free(e->cid);
    free(e->cstatus);
    e->cid = e->cstatus = NULL;
    e->malformed = false;
    e->node_kind = e->svc_kind = e->checks_kind = K_NULL;
}

static void entry_free(hentry *e)
{
    entry_reset(e);
    free(e->tags);
    e->tags = NULL;
    e->cap_tags = 0;
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* consul/api HealthChecks.AggregatedStatus, one check at a time: maintenance checks count only as such;
 * any other unknown status means no label at all. */
static void check_end(hentry *e)
{
    const char *id = e->check_is_object ? nz(e->cid) : "", *st = e->check_is_object ? nz(e->cstatus) : "";
    if (!strcmp(id, "_node_maintenance") || !strncmp(id, "_service_maintenance:", 21))
        e->maint = true;
    else if (!strcmp(st, "passing"))
        ;
    else if (!strcmp(st, "warning"))
        e->warning = true;
    else if (!strcmp(st, "critical"))
        e->critical = true;
    else
        e->unknown = true;
    free(e->cid);
    free(e->cstatus);
    e->cid = e->cstatus = NULL;
}

static const char *aggregated_status(const hentry *e)
{
    if (e->unknown)
        return ""; /* unknown status: Go returns "", so no label */
    if (e->maint)
        return "maintenance";
    if (e->critical)
        return "critical";
    if (e->warning)
        return "warning";
    return "passing";
}

static int add_map_labels(labelset *t, smap *m, const char *prefix)
{
    if (m->bad_type || m->err)
        return -1;
    labelset_set_many(&m->pairs, m->pend, m->npend); /* takes the strings */
    m->npend = 0;
    /* in key order: when two keys sanitise to one name, the later key wins (as set one by one) */
    label *named = xmalloc((m->pairs.n ? m->pairs.n : 1) * sizeof *named);
    char name[512], clean[400];
    for (size_t i = 0; i < m->pairs.n; i++) {
        sd_sanitize_label_name(m->pairs.v[i].name, clean, sizeof clean);
        snprintf(name, sizeof name, "%s%s", prefix, clean);
        named[i] = (label){xstrdup(name), xstrdup(m->pairs.v[i].value)};
    }
    labelset_set_many(t, named, m->pairs.n);
    free(named);
    return 0;
}

static const char *map_error(const smap *m)
{
    return m->bad_type ? "health service: expected an object of strings" : m->err;
}

/* The entry at depth 2 ends: check it in the old code's order, then make its target. */
static void entry_end(health *c)
{
    hentry *e = &c->e;
    if (c->err)
        return;
    if (e->malformed) {
        c->err = "health service: malformed service entry";
        return;
    }
    if (e->port_bad || e->tags_bad) {
        c->err = "health service: malformed Service.Port or Service.Tags";
        return;
    }
    if (e->tag_not_string) {
        c->err = "health service: expected tags to be strings";
        return;
    }
    const char *me = map_error(&e->nmeta);
    if (!me)
        me = map_error(&e->smeta);
    if (!me)
        me = map_error(&e->tagged);
    if (me) {
        c->err = me;
        return;
    }
    /* tags joined with the separator, and the separator at both ends */
    size_t sl = strlen(c->sep), tl = sl * 2 + 1;
    for (size_t k = 0; k < e->n_tags; k++)
        tl += strlen(e->tags[k]) + sl;
    char *tagstr = xmalloc(tl);
    size_t o = (size_t)snprintf(tagstr, tl, "%s", c->sep);
    for (size_t k = 0; k < e->n_tags; k++)
        o += (size_t)snprintf(tagstr + o, tl - o, "%s%s", k ? c->sep : "", e->tags[k]);
    snprintf(tagstr + o, tl - o, "%s", c->sep);

    const char *saddr = nz(e->saddr), *naddr = nz(e->naddr);
    char portbuf[32], addr[1200];
    snprintf(portbuf, sizeof portbuf, "%lld", e->port);
    sd_join_host_port(*saddr ? saddr : naddr, (int)e->port, addr, sizeof addr);
    labelset t = LABELSET_INIT;
    labelset_set(&t, "__address__", addr);
    labelset_set(&t, "__meta_consul_address", naddr);
    labelset_set(&t, "__meta_consul_node", nz(e->nnode));
    labelset_set(&t, "__meta_consul_namespace", nz(e->sns));
    labelset_set(&t, "__meta_consul_partition", nz(e->spart));
    labelset_set(&t, "__meta_consul_tags", tagstr);
    labelset_set(&t, "__meta_consul_service_address", saddr);
    labelset_set(&t, "__meta_consul_service_port", portbuf);
    labelset_set(&t, "__meta_consul_service_id", nz(e->sid));
    labelset_set(&t, "__meta_consul_health", aggregated_status(e));
    free(tagstr);
    add_map_labels(&t, &e->nmeta, "__meta_consul_metadata_");
    add_map_labels(&t, &e->smeta, "__meta_consul_service_metadata_");
    add_map_labels(&t, &e->tagged, "__meta_consul_tagged_address_");
    /* what is kept is bounded too: `[{},{},...]` makes a target of every 3 bytes (~1 KiB each) */
    size_t bytes = sizeof(labelset) + 64;
    for (size_t i = 0; i < t.n; i++)
        bytes += sizeof(label) + strlen(t.v[i].name) + strlen(t.v[i].value) + 48;
    c->kept += bytes;
    if (c->kept > c->budget) {
        snprintf(c->budget_err, sizeof c->budget_err,
                 "health service: targets take more than %zu MiB for a body of %zu bytes (at most %u times the "
                 "body + 1 MiB)", c->budget >> 20, c->len, JSON_BUDGET_RATIO);
        c->err = c->budget_err;
        labelset_free(&t);
        return;
    }
    sd_gb_add_target(&c->tb, &t);
    labelset_free(&t);
}

static smap *cur_map(health *c)
{
    return c->mapsec == NF_META ? &c->e.nmeta : c->mapsec == NF_TAGGED ? &c->e.tagged : &c->e.smeta;
}

/* A value: kind, with its text for strings and its integer for numbers. It lives at depth + 1. */
static void h_value(health *c, int kind, const unsigned char *s, size_t len, bool is_int, long long iv)
{
    int d = c->depth + 1;
    hentry *e = &c->e;
    if (c->err)
        return;
    if (d == 1) {
        if (kind == K_OBJECT)
            c->err = "health service: expected a list of service entries";
        else if (kind != K_ARRAY)
            snprintf(c->fatal, sizeof c->fatal, "'[' or '{' expected");
        return;
    }
    if (d == 2) {
        entry_reset(e);
        if (kind != K_OBJECT) {
            e->malformed = true;
            entry_end(c);
        }
        return;
    }
    if (d == 3) {
        if (c->sec == SEC_NODE) {
            node_reset(e);
            e->node_kind = kind;
        } else if (c->sec == SEC_SERVICE) {
            svc_reset(e);
            e->svc_kind = kind;
        } else if (c->sec == SEC_CHECKS) {
            checks_reset(e);
            e->checks_kind = kind;
        }
        return;
    }
    if (d == 4) {
        if (c->sec == SEC_CHECKS && e->checks_kind == K_ARRAY) {
            /* a check: an object is read field by field (check_end at its close); anything else counts
             * as a check with no id and no status */
            e->check_is_object = kind == K_OBJECT;
            if (kind != K_OBJECT)
                check_end(e);
            return;
        }
        if (c->sec == SEC_NODE && e->node_kind == K_OBJECT) {
            if (c->field == NF_ADDRESS)
                set_str(&e->naddr, kind, s, len);
            else if (c->field == NF_NODE)
                set_str(&e->nnode, kind, s, len);
            else if (c->field == NF_META || c->field == NF_TAGGED) {
                smap *m = c->field == NF_META ? &e->nmeta : &e->tagged;
                smap_reset(m);
                m->bad_type = kind != K_OBJECT && kind != K_NULL;
            }
            return;
        }
        if (c->sec == SEC_SERVICE && e->svc_kind == K_OBJECT) {
            switch (c->field) {
            case SF_ADDRESS: set_str(&e->saddr, kind, s, len); break;
            case SF_NAMESPACE: set_str(&e->sns, kind, s, len); break;
            case SF_PARTITION: set_str(&e->spart, kind, s, len); break;
            case SF_ID: set_str(&e->sid, kind, s, len); break;
            case SF_PORT:
                e->port_set = true;
                e->port_bad = !(kind == K_NUMBER && is_int);
                e->port = e->port_bad ? 0 : iv;
                break;
            case SF_TAGS:
                tags_reset(e);
                e->tags_bad = kind != K_ARRAY && kind != K_NULL;
                break;
            case SF_META:
                smap_reset(&e->smeta);
                e->smeta.bad_type = kind != K_OBJECT && kind != K_NULL;
                break;
            default: break;
            }
        }
        return;
    }
    if (d == 5) {
        if (c->sec == SEC_CHECKS && e->check_is_object) {
            if (c->field == CF_ID)
                set_str(&e->cid, kind, s, len);
            else if (c->field == CF_STATUS)
                set_str(&e->cstatus, kind, s, len);
            return;
        }
        if (c->sec == SEC_SERVICE && c->field == SF_TAGS && !e->tags_bad) {
            if (kind != K_STRING) {
                e->tag_not_string = true;
                return;
            }
            if (e->n_tags == e->cap_tags) {
                e->cap_tags = e->cap_tags ? e->cap_tags * 2 : 4;
                e->tags = xrealloc(e->tags, e->cap_tags * sizeof *e->tags);
            }
            e->tags[e->n_tags++] = dupn(s, len);
            return;
        }
        if (c->mapsec && c->mapkey) {
            smap *m = cur_map(c);
            if (m->bad_type || m->err)
                return;
            if (kind != K_STRING) {
                m->err = "health service: expected string values in a map";
                return;
            }
            /* a key that repeats keeps its last value; "" is no label (labelset's rule, as before). Pairs are
             * kept sorted by key: when two keys sanitise to one label name, the later key wins (Go's map
             * order is random, so Prometheus has no rule either) */
            if (m->npend == m->pcap) {
                m->pcap = m->pcap ? m->pcap * 2 : 16;
                m->pend = xrealloc(m->pend, m->pcap * sizeof *m->pend);
            }
            m->pend[m->npend++] = (label){xstrdup(c->mapkey), dupn(s, len)};
        }
    }
}

static int h_fatal(health *c)
{
    return !c->fatal[0];
}

static int h_null(void *ctx)
{
    h_value(ctx, K_NULL, NULL, 0, false, 0);
    return h_fatal(ctx);
}

static int h_bool(void *ctx, int b)
{
    (void)b;
    h_value(ctx, K_BOOL, NULL, 0, false, 0);
    return h_fatal(ctx);
}

static int h_number(void *ctx, const char *s, size_t len)
{
    health *c = ctx;
    bool is_int;
    long long iv;
    const char *bad = sd_json_number_check(s, len, &is_int, &iv);
    if (bad) {
        snprintf(c->fatal, sizeof c->fatal, "%s", bad);
        return 0;
    }
    h_value(c, K_NUMBER, NULL, 0, is_int, iv);
    return h_fatal(c);
}

static int h_string(void *ctx, const unsigned char *s, size_t len)
{
    health *c = ctx;
    if (memchr(s, 0, len)) {
        snprintf(c->fatal, sizeof c->fatal, "\\u0000 is not allowed without JSON_ALLOW_NUL");
        return 0;
    }
    h_value(c, K_STRING, s, len, false, 0);
    return h_fatal(c);
}

static int h_open(health *c, int kind)
{
    if (c->depth >= 2048) {
        snprintf(c->fatal, sizeof c->fatal, "maximum parsing depth reached");
        return 0;
    }
    h_value(c, kind, NULL, 0, false, 0);
    c->depth++;
    return h_fatal(c);
}

static int h_start_map(void *ctx)
{
    return h_open(ctx, K_OBJECT);
}

static int h_start_array(void *ctx)
{
    return h_open(ctx, K_ARRAY);
}

static int h_close(health *c, bool is_map)
{
    hentry *e = &c->e;
    if (c->depth == 2 && is_map && !c->err) {
        if ((e->node_kind != K_OBJECT && e->node_kind != K_NULL) ||
            (e->svc_kind != K_OBJECT && e->svc_kind != K_NULL) ||
            (e->checks_kind != K_ARRAY && e->checks_kind != K_NULL))
            e->malformed = true;
        entry_end(c);
    } else if (c->depth == 4 && is_map && c->sec == SEC_CHECKS && e->check_is_object && !c->err) {
        check_end(e);
        e->check_is_object = false;
    }
    if (c->depth == 4 && c->mapsec)
        c->mapsec = 0;
    if (--c->depth == 0)
        c->root_end = yajl_get_bytes_consumed(c->h);
    return 1;
}

static int h_end_map(void *ctx)
{
    return h_close(ctx, true);
}

static int h_end_array(void *ctx)
{
    return h_close(ctx, false);
}

static int h_key(void *ctx, const unsigned char *k, size_t len)
{
    health *c = ctx;
    if (memchr(k, 0, len)) {
        snprintf(c->fatal, sizeof c->fatal, "NUL byte in object key not supported");
        return 0;
    }
    if (c->err)
        return 1;
    hentry *e = &c->e;
    if (c->depth == 2) {
        c->sec = key_is(k, len, "Node") ? SEC_NODE : key_is(k, len, "Service") ? SEC_SERVICE
               : key_is(k, len, "Checks") ? SEC_CHECKS : SEC_OTHER;
        c->field = F_OTHER;
    } else if (c->depth == 3 && c->sec == SEC_NODE && e->node_kind == K_OBJECT) {
        c->field = key_is(k, len, "Address") ? NF_ADDRESS : key_is(k, len, "Node") ? NF_NODE
                 : key_is(k, len, "Meta") ? NF_META : key_is(k, len, "TaggedAddresses") ? NF_TAGGED : F_OTHER;
    } else if (c->depth == 3 && c->sec == SEC_SERVICE && e->svc_kind == K_OBJECT) {
        c->field = key_is(k, len, "Address") ? SF_ADDRESS : key_is(k, len, "Namespace") ? SF_NAMESPACE
                 : key_is(k, len, "Partition") ? SF_PARTITION : key_is(k, len, "ID") ? SF_ID
                 : key_is(k, len, "Port") ? SF_PORT : key_is(k, len, "Tags") ? SF_TAGS
                 : key_is(k, len, "Meta") ? SF_META : F_OTHER;
    } else if (c->depth == 4 && c->sec == SEC_CHECKS && e->check_is_object) {
        c->field = key_is(k, len, "CheckID") ? CF_ID : key_is(k, len, "Status") ? CF_STATUS : F_OTHER;
    } else if (c->depth == 4 && (c->field == NF_META || c->field == NF_TAGGED || c->field == SF_META) &&
               ((c->sec == SEC_NODE && c->field != SF_META) || (c->sec == SEC_SERVICE && c->field == SF_META))) {
        c->mapsec = c->field;
        free(c->mapkey);
        c->mapkey = dupn(k, len);
    }
    return 1;
}

static const yajl_callbacks health_callbacks = {
    .yajl_null = h_null,
    .yajl_boolean = h_bool,
    .yajl_number = h_number,
    .yajl_string = h_string,
    .yajl_start_map = h_start_map,
    .yajl_map_key = h_key,
    .yajl_end_map = h_end_map,
    .yajl_start_array = h_start_array,
    .yajl_end_array = h_end_array,
};

int consul_parse_health(const char *body, size_t len, const char *service, const char *datacenter,
                        const char *tag_separator, target_group *g, char *err, size_t errlen)
{
    health c = {.sep = tag_separator, .g = g, .budget = json_budget_for(len), .len = len};
    entry_reset(&c.e);
    char prefix[600];
    snprintf(prefix, sizeof prefix, "invalid JSON in health service %s", service);
    /* the group labels come first, as before: a failed parse leaves them set (the caller frees g) */
    labelset_set(&g->labels, "__meta_consul_service", service);
    labelset_set(&g->labels, "__meta_consul_dc", datacenter);
    int rc = stream(&health_callbacks, &c, &c.h, &c.root_end, c.fatal, body, len, prefix, err, errlen);
    if (!rc && c.err) {
        snprintf(err, errlen, "%s", c.err);
        rc = -1;
    }
    if (!rc && c.tb.n_targets) { /* frozen: the discovery manager stores it by reference */
        target_group f;
        sd_gb_freeze(&c.tb, g->source, &g->labels, &f);
        target_group_free(g);
        *g = f;
    }
    sd_gb_free(&c.tb);
    entry_free(&c.e);
    free(c.mapkey);
    return rc;
}
