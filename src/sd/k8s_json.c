/* k8s_json: Kubernetes list pages and watch events parsed as a stream (yajl), keeping only what a prune
 * template names (kubernetes_meta.c). No document tree is built: memory is the pruned values plus a frame
 * per nesting level, so a page of `{}` items, of deep arrays or of fields lookout does not read costs a few
 * bytes per level instead of a jansson tree's ~77 times its text.
 *
 * The contract is exact: k8s_json_parse(kind, doc, text) accepts what jansson's json_loadb(text, flags 0)
 * accepts and yields k8s_doc_prune(kind, doc, that tree) (same values; key order may differ inside template
 * objects, which nothing iterates). A page's items without a metadata.name are not kept at all (the
 * informer skips them), so a page of `{}` keeps nothing. That covers what yajl alone would let through and jansson refused:
 *   - a root that is not an object or an array;
 *   - \f and \v between tokens (yajl takes them for whitespace);
 *   - invalid UTF-8 by jansson's rules (overlong forms, surrogates, above U+10FFFF) and lone or mismatched
 *     UTF-16 surrogate escapes (a pre-scan of the raw text: yajl decodes these without complaint);
 *   - \u0000 in strings and keys, integers beyond long long, reals beyond double;
 *   - more than 2048 nested values, scalars included (jansson's JSON_PARSER_MAX_DEPTH);
 *   - bytes other than whitespace after the root (yajl accepts `null"` there);
 * and one that jansson let through: a NUL byte right after a number or a literal (see prescan).
 * Duplicate keys: the last occurrence decides, as when jansson replaced the value and the prune read it.
 * Maps whose template is "map" (labels, annotations) are never built as objects: their entries are copied
 * as they arrive into one buffer and packed into one string when the map ends (k8s_map_pack), so a pod
 * with 20 MB of labels keeps about its text instead of ~6 times it. Address lists whose template is "addrs" (an
 * endpoints subset's addresses) are never built as arrays of objects either: each address's fields are
 * recorded as they arrive (the last occurrence of a key deciding) and appended to one buffer when the
 * address ends, the packed form of k8s_addrs_pack, so 185,000 addresses keep about half their text instead
 * of ~9 times it.
 *
 * What is kept is bounded (max_kept bytes of jansson allocations, counted by util/json_budget's hooks): past
 * it the parse fails like a document too large to hold. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "sd/kubernetes_internal.h"
#include "util/json_budget.h"
#include "util/xalloc.h"

#define KJ_MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH: every value counts, scalars too */

typedef struct kj_frame {
    const json_t *t; /* template of this container's value (true: copy whole) */
    json_t *v;       /* the pruned container being built; NULL: nothing inside is kept */
    bool want;       /* the parent keeps this value (or a null in its place) */
    bool is_map;
    const json_t *kt; /* maps: template of the pending key's value; NULL: that value is skipped */
    char *key;        /* maps being kept: the pending key */
    size_t klen, kcap;
    bool packing;     /* a map whose template is "map": its entries go to mbuf, packed on close */
    char *mbuf;       /* KEY NUL TAG VALUE NUL per entry, in arrival order (see k8s_map_pack) */
    size_t mlen, mcap;
    size_t *moffs;    /* where each entry starts */
    size_t mn, mocap;
    uint8_t rec;      /* packed address lists: KJ_REC_LIST (the array, packed into mbuf), KJ_REC_ITEM (an
                         address object), KJ_REC_REF (its targetRef object); 0 otherwise */
    int rfield;       /* KJ_REC_ITEM and KJ_REC_REF: the field of the pending key (k8s_addr order), KJ_REF for
                         an item's targetRef, -1 for a key not read */
} kj_frame;

enum { KJ_REC_LIST = 1, KJ_REC_ITEM, KJ_REC_REF };
#define KJ_REF (-2)

typedef struct kj {
    yajl_handle h;
    const json_t *tmpl;
    kj_frame *st;
    int depth, cap;
    json_t *root;
    char fatal[160];
    size_t root_end;
    size_t max_kept, len;
    const json_t *named_only; /* an array template whose items are kept only when they have a name */
    /* the address being read in a packed address list (at most one list is open at a time) */
    char *rf[K8S_ADDR_FIELDS];
    size_t rflen[K8S_ADDR_FIELDS], rfcap[K8S_ADDR_FIELDS];
    bool rfset[K8S_ADDR_FIELDS];
} kj;

static int fatal(kj *c, const char *msg)
{
    if (!c->fatal[0])
        snprintf(c->fatal, sizeof c->fatal, "%s", msg);
    return 0;
}

static int over_budget(kj *c)
{
    char m[160];
    snprintf(m, sizeof m, "JSON document too large to hold: kept objects take more than %zu MiB for a body of %zu bytes",
             c->max_kept >> 20, c->len);
    return fatal(c, m);
}

/* Template of the next value at the current position; *want: the container keeps it. */
static const json_t *next_tmpl(kj *c, bool *want)
{
    if (c->depth == 0) {
        *want = true;
        return c->tmpl;
    }
    kj_frame *f = &c->st[c->depth - 1];
    *want = false;
    if (!f->v) /* packing frames too: a map entry's value is recorded by map_value */
        return NULL;
    if (json_is_true(f->t)) {
        *want = true;
        return f->t;
    }
    if (f->is_map) {
        *want = f->kt != NULL;
        return f->kt;
    }
    *want = true;
    return json_array_get(f->t, 0);
}

/* A kept value is complete: val is prune(value, its template), NULL when that is nothing. */
static void attach(kj *c, json_t *val)
{
    if (c->depth == 0) {
        json_decref(c->root);
        c->root = val;
        return;
    }
    kj_frame *f = &c->st[c->depth - 1];
    if (json_is_true(f->t)) {
        if (f->is_map)
            json_object_setn_new(f->v, f->key, f->klen, val ? val : json_null());
        else
            json_array_append_new(f->v, val ? val : json_null());
    } else if (f->is_map) {
        /* a template object: null or a value of the wrong shape leaves the key out (and drops what an
         * earlier occurrence of the key put there: the last occurrence decides) */
        if (!val || json_is_null(val)) {
            json_decref(val);
            json_object_deln(f->v, f->key, f->klen);
        } else {
            json_object_setn_new(f->v, f->key, f->klen, val);
        }
    } else if (f->t == c->named_only && !k8s_str(val, "metadata.name")) {
        json_decref(val); /* a page item without a name: the informer skips it */
    } else {
        json_array_append_new(f->v, val ? val : json_null());
    }
}

static void mbuf_put(kj_frame *f, const void *p, size_t n)
{
    if (!n)
        return; /* an empty key or value: nothing to copy (and mbuf may not exist yet) */
    if (f->mlen + n > f->mcap) {
        size_t cap = f->mcap ? f->mcap : 256;
        while (cap < f->mlen + n)
            cap *= 2;
        f->mbuf = xrealloc(f->mbuf, cap);
        f->mcap = cap;
    }
    memcpy(f->mbuf + f->mlen, p, n);
    f->mlen += n;
}

/* The value of the pending entry of a packed map (the parent frame): a string's bytes, or 'n' for anything
 * else (its content, if a container, is skipped). */
static void map_value(kj_frame *f, const unsigned char *s, size_t len, bool is_str)
{
    mbuf_put(f, is_str ? "s" : "n", 1);
    if (is_str)
        mbuf_put(f, s, len);
    mbuf_put(f, "", 1);
}

static bool parent_packing(const kj *c)
{
    return c->depth > 0 && c->st[c->depth - 1].packing;
}

typedef struct kj_str {
    const unsigned char *s;
    size_t len;
} kj_str;

/* ---- packed address lists ---- */

static void rec_clear(kj *c, int from, int to)
{
    for (int i = from; i < to; i++)
        c->rfset[i] = false;
}

/* Field i of the address being read: a string value, or (s NULL) a value that is not one. */
static void rec_field(kj *c, int i, const kj_str *s)
{
    if (!s) {
        c->rfset[i] = false;
        return;
    }
    if (s->len + 1 > c->rfcap[i]) {
        c->rfcap[i] = s->len + 1;
        c->rf[i] = xrealloc(c->rf[i], c->rfcap[i]);
    }
    memcpy(c->rf[i], s->s, s->len);
    c->rflen[i] = s->len;
    c->rfset[i] = true;
}

/* Appends the address read (every field 'n' after rec_clear) to the list's buffer. */
static void rec_emit(kj *c, kj_frame *list)
{
    for (int i = 0; i < K8S_ADDR_FIELDS; i++) {
        mbuf_put(list, c->rfset[i] ? "s" : "n", 1);
        if (c->rfset[i])
            mbuf_put(list, c->rf[i], c->rflen[i]);
        mbuf_put(list, "", 1);
    }
}

/* A value at the top frame, which is part of a packed list: s its string, NULL for another scalar or for a
 * container (opened: container true). Returns the rec kind of the frame a container opens (0: skipped). */
static uint8_t rec_value(kj *c, const kj_str *s, bool container, bool is_map)
{
    kj_frame *f = &c->st[c->depth - 1];
    switch (f->rec) {
    case KJ_REC_LIST: /* an item */
        rec_clear(c, 0, K8S_ADDR_FIELDS);
        if (container && is_map)
            return KJ_REC_ITEM; /* emitted when it ends */
        rec_emit(c, f);         /* not an object: an address without fields */
        return 0;
    case KJ_REC_ITEM:
        if (f->rfield == KJ_REF) {
            rec_clear(c, 3, K8S_ADDR_FIELDS); /* a later targetRef replaces an earlier one whole */
            return container && is_map ? KJ_REC_REF : 0;
        }
        /* fall through */
    default:
        if (f->rfield >= 0)
            rec_field(c, f->rfield, container ? NULL : s);
        return 0;
    }
}

static int rec_key(kj_frame *f, const unsigned char *key, size_t len)
{
    static const char *const item[] = {"ip", "hostname", "nodeName", "targetRef"};
    static const char *const ref[] = {"kind", "name", "namespace"};
    f->rfield = -1;
    if (f->rec == KJ_REC_ITEM) {
        for (int i = 0; i < 4; i++)
            if (strlen(item[i]) == len && memcmp(item[i], key, len) == 0)
                f->rfield = i == 3 ? KJ_REF : i;
    } else {
        for (int i = 0; i < 3; i++)
            if (strlen(ref[i]) == len && memcmp(ref[i], key, len) == 0)
                f->rfield = 3 + i;
    }
    return 1;
}

static int scalar(kj *c, json_t *(*make)(const void *), const void *arg, const kj_str *str)
{
    if (c->depth == 0)
        return fatal(c, "'[' or '{' expected");
    if (c->depth + 1 > KJ_MAX_DEPTH)
        return fatal(c, "maximum parsing depth reached");
    if (parent_packing(c)) {
        map_value(&c->st[c->depth - 1], str ? str->s : NULL, str ? str->len : 0, str != NULL);
        return 1;
    }
    if (c->st[c->depth - 1].rec) {
        rec_value(c, str, false, false);
        return 1;
    }
    bool want;
    const json_t *t = next_tmpl(c, &want);
    if (!want)
        return 1;
    attach(c, json_is_true(t) ? make(arg) : NULL); /* a scalar never fits an object or array template */
    return json_budget_exceeded() ? over_budget(c) : 1;
}

static json_t *make_null(const void *a)
{
    (void)a;
    return json_null();
}

static json_t *make_bool(const void *a)
{
    return json_boolean(*(const int *)a);
}

static json_t *make_string(const void *a)
{
    const kj_str *s = a;
    return json_stringn_nocheck((const char *)s->s, s->len); /* UTF-8 checked by the pre-scan and yajl */
}

typedef struct kj_num {
    bool is_int;
    long long iv;
    double dv;
} kj_num;

static json_t *make_number(const void *a)
{
    const kj_num *n = a;
    return n->is_int ? json_integer(n->iv) : json_real(n->dv);
}

static int cb_null(void *ctx)
{
    return scalar(ctx, make_null, NULL, NULL);
}

static int cb_boolean(void *ctx, int b)
{
    return scalar(ctx, make_bool, &b, NULL);
}

static int cb_number(void *ctx, const char *s, size_t len)
{
    kj *c = ctx;
    kj_num n = {0};
    const char *bad = sd_json_number_check(s, len, &n.is_int, &n.iv);
    if (bad)
        return fatal(c, bad);
    if (!n.is_int) {
        char buf[64], *t = len < sizeof buf ? buf : xmalloc(len + 1);
        memcpy(t, s, len);
        t[len] = 0;
        n.dv = strtod(t, NULL);
        if (t != buf)
            free(t);
    }
    return scalar(c, make_number, &n, NULL);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    kj *c = ctx;
    if (memchr(s, 0, len))
        return fatal(c, "\\u0000 is not allowed without JSON_ALLOW_NUL");
    kj_str a = {s, len};
    return scalar(c, make_string, &a, &a);
}

static int open_container(kj *c, bool is_map)
{
    if (c->depth + 1 > KJ_MAX_DEPTH)
        return fatal(c, "maximum parsing depth reached");
    if (parent_packing(c))
        map_value(&c->st[c->depth - 1], NULL, 0, false);
    uint8_t rec = 0;
    bool want = false;
    const json_t *t = NULL;
    if (c->depth > 0 && c->st[c->depth - 1].rec)
        rec = rec_value(c, NULL, true, is_map); /* inside a packed list: nothing but its fields is read */
    else
        t = next_tmpl(c, &want);
    if (c->depth == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->st = xrealloc(c->st, (size_t)c->cap * sizeof *c->st);
        memset(c->st + c->depth, 0, (size_t)(c->cap - c->depth) * sizeof *c->st);
    }
    kj_frame *f = &c->st[c->depth++];
    f->t = t;
    f->want = want;
    f->is_map = is_map;
    f->kt = NULL;
    f->klen = 0;
    f->v = NULL;
    f->packing = want && is_map && k8s_map_template(t);
    f->rec = want && !is_map && k8s_addrs_template(t) ? KJ_REC_LIST : rec;
    f->rfield = -1;
    f->mlen = f->mn = 0;
    if (want && (json_is_true(t) || (is_map ? json_is_object(t) : json_is_array(t))))
        f->v = is_map ? json_object() : json_array();
    return json_budget_exceeded() ? over_budget(c) : 1;
}

static int close_container(kj *c)
{
    kj_frame *f = &c->st[--c->depth];
    json_t *v = f->v;
    f->v = NULL;
    if (f->rec == KJ_REC_ITEM || f->rec == KJ_REC_REF) {
        if (f->rec == KJ_REC_ITEM)
            rec_emit(c, &c->st[c->depth - 1]);
        f->rec = 0;
        return 1; /* nothing to attach: the list records it */
    }
    if (f->rec == KJ_REC_LIST) {
        v = json_stringn_nocheck(f->mbuf ? f->mbuf : "", f->mlen);
        f->rec = 0;
        if (f->mcap > 1u << 16) {
            free(f->mbuf), f->mbuf = NULL, f->mcap = 0;
        }
    }
    if (f->packing) {
        v = k8s_map_pack(f->mbuf, f->moffs, f->mn);
        f->packing = false;
        if (f->mcap > 1u << 16) { /* a big map: do not hold its buffers to the end of the document */
            free(f->mbuf), f->mbuf = NULL, f->mcap = 0;
            free(f->moffs), f->moffs = NULL, f->mocap = 0;
        }
    }
    if (f->want)
        attach(c, v);
    else
        json_decref(v);
    if (c->depth == 0)
        c->root_end = yajl_get_bytes_consumed(c->h);
    return json_budget_exceeded() ? over_budget(c) : 1;
}

static int cb_start_map(void *ctx)
{
    return open_container(ctx, true);
}

static int cb_start_array(void *ctx)
{
    return open_container(ctx, false);
}

static int cb_end(void *ctx)
{
    return close_container(ctx);
}

static int cb_map_key(void *ctx, const unsigned char *key, size_t len)
{
    kj *c = ctx;
    if (memchr(key, 0, len))
        return fatal(c, "NUL byte in object key not supported");
    kj_frame *f = &c->st[c->depth - 1];
    if (f->rec)
        return rec_key(f, key, len);
    if (f->packing) {
        if (f->mn == f->mocap) {
            f->mocap = f->mocap ? f->mocap * 2 : 16;
            f->moffs = xrealloc(f->moffs, f->mocap * sizeof *f->moffs);
        }
        f->moffs[f->mn++] = f->mlen;
        mbuf_put(f, key, len);
        mbuf_put(f, "", 1);
        return 1;
    }
    if (!f->v)
        return 1;
    if (json_is_true(f->t)) {
        f->kt = f->t;
    } else {
        f->kt = json_object_getn(f->t, (const char *)key, len);
        if (!f->kt)
            return 1;
    }
    if (len + 1 > f->kcap) {
        f->kcap = len + 1;
        f->key = xrealloc(f->key, f->kcap);
    }
    memcpy(f->key, key, len);
    f->key[len] = 0;
    f->klen = len;
    return 1;
}

static const yajl_callbacks callbacks = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_boolean,
    .yajl_number = cb_number,
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_map_key,
    .yajl_end_map = cb_end,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = cb_end,
};

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                                 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Length of the UTF-8 sequence at p (n bytes left) by jansson's rules, 0 when invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char b = p[0];
    size_t need;
    unsigned v;
    if (b >= 0xC2 && b <= 0xDF)
        need = 2, v = b & 0x1F;
    else if (b >= 0xE0 && b <= 0xEF)
        need = 3, v = b & 0x0F;
    else if (b >= 0xF0 && b <= 0xF4)
        need = 4, v = b & 0x07;
    else
        return 0;
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if ((need == 3 && v < 0x800) || (need == 4 && v < 0x10000) || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    return need;
}

static bool token_char(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '.' ||
           ch == '+' || ch == '-';
}

/* What jansson refused and yajl lets through, found in the raw text (strings located as in valid JSON; an
 * invalid document fails in yajl anyway). Returns the offset + 1 of the first such byte, or 0.
 * And one thing jansson let through that yajl refuses: a NUL byte right after a number or a literal (its
 * lexer reads one character past such a token and puts it back, and a NUL put back is skipped). *fixed
 * then gets a copy of the text (caller frees) with each such NUL turned into a blank, which ends the token
 * just as jansson did. */
static size_t prescan(const char *data, size_t len, char *msg, size_t msglen, char **fixed)
{
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)data[i];
        if (!in_str) {
            if (ch == '"') {
                in_str = true;
            } else if (ch == '\f' || ch == '\v') {
                snprintf(msg, msglen, "invalid token");
                return i + 1;
            } else if (ch == 0 && i > 0 && token_char(data[i - 1])) {
                if (!*fixed) {
                    *fixed = xmalloc(len);
                    memcpy(*fixed, data, len);
                }
                (*fixed)[i] = ' ';
            }
            continue;
        }
        if (ch == '"') {
            in_str = false;
        } else if (ch == '\\') {
            if (i + 1 >= len)
                return 0;
            i++;
            if (data[i] != 'u' || i + 4 >= len)
                continue;
            int v = hex4(data + i + 1);
            if (v < 0)
                continue;
            size_t at = i - 1;
            i += 4;
            if (v >= 0xD800 && v <= 0xDBFF) {
                int v2 = i + 6 < len && data[i + 1] == '\\' && data[i + 2] == 'u' ? hex4(data + i + 3) : -1;
                if (v2 < 0xDC00 || v2 > 0xDFFF) {
                    snprintf(msg, msglen, "invalid Unicode '\\u%04X'", (unsigned)v);
                    return at + 1;
                }
                i += 6;
            } else if (v >= 0xDC00 && v <= 0xDFFF) {
                snprintf(msg, msglen, "invalid Unicode '\\u%04X'", (unsigned)v);
                return at + 1;
            }
        } else if (ch >= 0x80) {
            size_t n = utf8_len((const unsigned char *)data + i, len - i);
            if (!n) {
                snprintf(msg, msglen, "unable to decode byte 0x%02x", ch);
                return i + 1;
            }
            i += n - 1;
        }
    }
    return 0;
}

int k8s_json_parse(k8s_kind kind, k8s_doc doc, const char *data, size_t len, size_t max_kept, json_t **out,
                   char *err, size_t errlen)
{
    *out = NULL;
    const json_t *tmpl = k8s_template(kind, doc);
    if (!tmpl) {
        snprintf(err, errlen, "unknown kind");
        return -1;
    }
    if (!data)
        data = "";
    char msg[160], *fixed = NULL;
    size_t bad = prescan(data, len, msg, sizeof msg, &fixed);
    if (bad) {
        free(fixed);
        return sd_json_syntax_error(NULL, data, len, bad - 1, msg, err, errlen);
    }
    if (fixed)
        data = fixed;
    kj *c = xcalloc(1, sizeof *c);
    c->tmpl = tmpl;
    c->named_only = doc == K8S_DOC_PAGE ? json_object_get(tmpl, "items") : NULL;
    c->max_kept = max_kept;
    c->len = len;
    yajl_handle h = yajl_alloc(&callbacks, NULL, c);
    if (!h)
        abort();
    c->h = h;
    json_budget_begin(max_kept);
    yajl_status s = yajl_parse(h, (const unsigned char *)data, len);
    size_t off = yajl_get_bytes_consumed(h);
    if (s == yajl_status_ok) {
        s = yajl_complete_parse(h);
        off = len; /* the document ended too early */
    }
    int rc = 0;
    size_t garbage = s == yajl_status_ok ? sd_json_trailing_garbage(data, len, c->root_end) : 0;
    if (s != yajl_status_ok)
        rc = sd_json_syntax_error(h, data, len, off, c->fatal, err, errlen);
    else if (garbage)
        rc = sd_json_syntax_error(h, data, len, garbage, "end of file expected", err, errlen);
    for (int i = 0; i < c->cap; i++) {
        json_decref(c->st[i].v);
        free(c->st[i].key);
        free(c->st[i].mbuf);
        free(c->st[i].moffs);
    }
    for (int i = 0; i < K8S_ADDR_FIELDS; i++)
        free(c->rf[i]);
    json_budget_end();
    yajl_free(h);
    free(c->st);
    if (rc)
        json_decref(c->root);
    else
        *out = c->root;
    free(c);
    free(fixed);
    return rc;
}
