/* file_parse: reading one file_sd file into target groups, validated as Prometheus' file SD does
 * (discovery/file/file.go readFile and targetgroup.Group's UnmarshalJSON / UnmarshalYAML):
 *   - JSON (streamed by json_groups.c, no document tree): `null` is an empty list; an empty file is a
 *     syntax error (as in Go); unknown keys in a group are rejected (DisallowUnknownFields); keys match
 *     case-insensitively (encoding/json); targets must be strings, label values strings.
 *   - YAML (libyaml's events, first document, no document tree: see below): an empty file or `null` is an
 *     empty list; unknown and duplicate keys are rejected (UnmarshalStrict); scalars of any type are
 *     accepted as strings (yaml.v2 does so); merge keys (`<<`) are not resolved (an unknown field or an
 *     invalid label name).
 *   - a null group is an error ("nil target group item found"); label names must be valid.
 * Every group gets source "PATH:INDEX" and __meta_filepath=PATH; groups without targets are not returned
 * (INDEX keeps counting them). Both formats return frozen groups (views, gen != 0) whose strings are shared
 * through the provider's pool. Pure: no threads, no globals. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "sd/sd_internal.h"
#include "util/keymap.h"
#include "util/xalloc.h"
#include "util/yaml_depth.h"

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
/* The YAML file is read as libyaml's events (yaml_parser_parse), straight into frozen groups: no document
 * tree. Memory is the groups kept plus the group being read (its targets packed by the group builder, its
 * labels packed in one buffer) plus the anchored nodes a later alias may repeat, recorded compactly.
 *
 * Acceptance and texts are those of the former tree reader (yaml_parser_load, then a walk), so:
 *   - precedence: a nesting error (yaml_depth) anywhere in the stream before a syntax error, then the first
 *     document's syntax or composer error (undefined alias, duplicate anchor), then the first semantic
 *     error in walk order. After a semantic error the rest of the stream is only scanned for the former two;
 *     documents after the first are only scanned for nesting, as before;
 *   - within one group the walk's order: a bad key (in document order), then targets' type, then labels'
 *     type, then the alias budget, then the first bad label (a duplicate name counting at its second
 *     occurrence), then the first bad target;
 *   - an alias stands for its node: the node is replayed from its recording, errors name the anchored
 *     node's position. An alias to a node still open (inside itself: always an error) is not replayed: its
 *     kind and position decide, and in the two places where the walk looked inside (targets: *ROOT, and
 *     labels: *GROUP inside that group) the first error the walk found is given directly; the budget then
 *     counts ROOT's items and GROUP's pairs seen so far (the tree counted all of them).
 * Aliases are bounded as before by the number of targets and labels (at most len/2 + 64: without aliases
 * each takes at least two bytes) and, new, by the bytes of their strings (at most 16 * len + 1 MiB: without
 * aliases at most 1.5 bytes per byte of input, for \L, \P and UTF-16; with aliases sharing a few labels
 * among many groups, as real files do, ~6 per byte), which the tree never checked: a 1 MB scalar named by a
 * thousand aliases built a GB of labels. Anchors are found by hashing (the loader compared each new one
 * with all before it). Scalars are C strings as before: a "\0" escape ends one. */

enum { H_SCALAR, H_SEQ, H_MAP, H_END, H_ERR };
enum { SRC_LIVE, SRC_REPLAY, SRC_ALIAS };
enum { R_SCALAR = 1, R_SEQ, R_MAP, R_END, R_ALIAS }; /* records of the anchored nodes */
#define NO_ANCHOR SIZE_MAX
#define REC_HEAD 9 /* type, line, column */

typedef struct yhead {
    int type;          /* H_* */
    size_t line, col;  /* 0-based */
    const char *s;     /* a scalar's value, valid until the next event is read */
    bool plain;        /* plain style: may be a null */
    int src;           /* SRC_* */
    size_t anchor;     /* SRC_ALIAS: the anchor named */
    size_t end;        /* SRC_REPLAY collection: the offset after its records */
} yhead;

typedef struct yanchor {
    char *name;
    int type;         /* H_SCALAR, H_SEQ, H_MAP */
    size_t line, col; /* the anchored node's start */
    size_t off, end;  /* its records [off, end) in the arena; off NO_ANCHOR when not recorded */
    bool open;        /* a collection not yet ended */
} yanchor;

typedef struct ycursor {
    size_t pos, end;
} ycursor;

typedef struct ysrc {
    yaml_parser_t p;
    yaml_event_t ev;
    bool have_ev;
    yaml_depth_state depth;
    char lerr[512];   /* the first document's syntax or composer error */
    char derr[256];   /* a nesting error */
    bool fatal;       /* one of those, or the stream ended: the reader stops */
    bool in_doc1;     /* until the first document's end: errors are the loader's, anchors and aliases checked */
    bool done;        /* STREAM_END read, or a syntax error */
    bool record;      /* anchored nodes are recorded (no semantic error yet) */
    int live_depth;   /* open collections of the stream */
    size_t live_anchor[YAML_DEPTH_MAX + 2]; /* the anchor of each open collection, or NO_ANCHOR */
    yanchor *a;
    size_t na, acap;
    keymap names;     /* anchor name -> index + 1 */
    char *rec;        /* the arena of records */
    size_t rlen, rcap;
    size_t *rstack;   /* offsets of the recorded collections still open */
    size_t rn, rscap;
    ycursor *cur;     /* replays in progress, innermost last */
    size_t ncur, ccap;
} ysrc;

static void rec_put(ysrc *s, const void *p, size_t n)
{
    if (s->rlen + n > s->rcap) {
        size_t cap = s->rcap ? s->rcap : 4096;
        while (cap < s->rlen + n)
            cap *= 2;
        s->rec = xrealloc(s->rec, cap);
        s->rcap = cap;
    }
    memcpy(s->rec + s->rlen, p, n);
    s->rlen += n;
}

static void rec_head(ysrc *s, int type, const yaml_mark_t *m)
{
    unsigned char t = (unsigned char)type;
    uint32_t l = (uint32_t)m->line, c = (uint32_t)m->column; /* a file is at most 64 MiB */
    rec_put(s, &t, 1);
    rec_put(s, &l, 4);
    rec_put(s, &c, 4);
}

/* After a semantic error nothing is replayed: the recordings go (record gates every use of the arena). */
static void rec_stop(ysrc *s)
{
    s->record = false;
    free(s->rec);
    s->rec = NULL;
    for (size_t i = 0; i < s->na; i++)
        s->a[i].off = NO_ANCHOR;
}

static void ysrc_lerr(ysrc *s, const yaml_mark_t *m, const char *context, const char *problem)
{
    if (!s->lerr[0])
        snprintf(s->lerr, sizeof s->lerr, "line %d column %d: %s%s%s", (int)m->line + 1, (int)m->column + 1,
                 context ? context : "", context ? ": " : "", problem ? problem : "syntax error");
    s->fatal = true;
}

/* An anchor on a node starting now (the first document only): NO_ANCHOR, or its index. */
static size_t anchor_add(ysrc *s, const char *name, int type, const yaml_mark_t *m)
{
    if (!name || !s->in_doc1)
        return NO_ANCHOR;
    size_t len = strlen(name);
    uint64_t h = keymap_hash(name, len);
    if (keymap_get_hashed(&s->names, name, len, h)) {
        ysrc_lerr(s, m, "found duplicate anchor; first occurrence", "second occurrence");
        return NO_ANCHOR;
    }
    if (s->na == s->acap) {
        s->acap = s->acap ? 2 * s->acap : 16;
        s->a = xrealloc(s->a, s->acap * sizeof *s->a);
    }
    yanchor *a = &s->a[s->na];
    *a = (yanchor){xstrdup(name), type, m->line, m->column, NO_ANCHOR, 0, type != H_SCALAR};
    keymap_put_hashed(&s->names, a->name, len, h, (void *)(uintptr_t)(s->na + 1));
    return s->na++;
}

/* Reads the next event of the stream into s->ev, checking nesting, anchors and aliases (first document)
 * and recording what anchored nodes hold. false after the end of the stream, a syntax or a nesting error;
 * an alias or anchor error sets s->fatal (and lerr) but the scan goes on (a later nesting error wins). */
static bool pull_live(ysrc *s)
{
    if (s->have_ev) {
        yaml_event_delete(&s->ev);
        s->have_ev = false;
    }
    if (s->done)
        return false;
    if (!yaml_parser_parse(&s->p, &s->ev)) {
        s->done = true;
        if (s->in_doc1)
            ysrc_lerr(s, &s->p.problem_mark, s->p.context, s->p.problem);
        s->fatal = true;
        return false;
    }
    s->have_ev = true;
    yaml_event_t *e = &s->ev;
    const char *bad = yaml_depth_event(&s->depth, e);
    if (bad) {
        snprintf(s->derr, sizeof s->derr, "line %zu column %zu: %s", e->start_mark.line + 1,
                 e->start_mark.column + 1, bad);
        s->done = s->fatal = true;
        return false;
    }
    switch (e->type) {
    case YAML_STREAM_END_EVENT:
        s->done = true;
        break;
    case YAML_DOCUMENT_END_EVENT:
        s->in_doc1 = false; /* nothing more is recorded: no anchor is open, none is added */
        break;
    case YAML_ALIAS_EVENT: {
        if (!s->in_doc1)
            break;
        const char *name = (const char *)e->data.alias.anchor;
        uintptr_t k = (uintptr_t)keymap_get(&s->names, name, strlen(name));
        if (!k) {
            ysrc_lerr(s, &e->start_mark, NULL, "found undefined alias");
            break;
        }
        if (s->record && s->rn) {
            uint32_t i = (uint32_t)(k - 1);
            rec_head(s, R_ALIAS, &e->start_mark);
            rec_put(s, &i, 4);
        }
        break;
    }
    case YAML_SCALAR_EVENT: {
        size_t a = anchor_add(s, (const char *)e->data.scalar.anchor, H_SCALAR, &e->start_mark);
        if (s->record && (s->rn || (a != NO_ANCHOR && s->live_depth > 0))) {
            size_t off = s->rlen;
            const char *v = (const char *)e->data.scalar.value;
            uint32_t n = (uint32_t)strlen(v); /* a C string, as the tree reader used it */
            unsigned char plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            rec_head(s, R_SCALAR, &e->start_mark);
            rec_put(s, &plain, 1);
            rec_put(s, &n, 4);
            rec_put(s, v, n + 1);
            if (a != NO_ANCHOR) {
                s->a[a].off = off;
                s->a[a].end = s->rlen;
            }
        }
        break;
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool seq = e->type == YAML_SEQUENCE_START_EVENT;
        const char *name = (const char *)(seq ? e->data.sequence_start.anchor : e->data.mapping_start.anchor);
        size_t a = anchor_add(s, name, seq ? H_SEQ : H_MAP, &e->start_mark);
        /* the root is never recorded: an alias to it can only be inside it, where it is still open */
        if (s->record && (s->rn || (a != NO_ANCHOR && s->live_depth > 0))) {
            if (a != NO_ANCHOR)
                s->a[a].off = s->rlen;
            if (s->rn == s->rscap) {
                s->rscap = s->rscap ? 2 * s->rscap : 16;
                s->rstack = xrealloc(s->rstack, s->rscap * sizeof *s->rstack);
            }
            s->rstack[s->rn++] = s->rlen;
            uint64_t end = 0; /* patched at its end */
            rec_head(s, seq ? R_SEQ : R_MAP, &e->start_mark);
            rec_put(s, &end, 8);
        }
        s->live_anchor[s->live_depth++] = a; /* yaml_depth bounds live_depth */
        break;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
        if (s->live_depth > 0) {
            size_t a = s->live_anchor[--s->live_depth];
            if (s->record && s->rn) {
                rec_head(s, R_END, &e->start_mark);
                uint64_t end = s->rlen;
                memcpy(s->rec + s->rstack[--s->rn] + REC_HEAD, &end, 8);
            }
            if (a != NO_ANCHOR) {
                s->a[a].open = false;
                if (s->a[a].off != NO_ANCHOR)
                    s->a[a].end = s->rlen;
            }
        }
        break;
    }
    default:
        break;
    }
    return true;
}

/* A head for an alias to anchor i. */
static void alias_head(ysrc *s, size_t i, yhead *h)
{
    const yanchor *a = &s->a[i];
    *h = (yhead){.type = a->type, .line = a->line, .col = a->col, .s = "", .src = SRC_ALIAS, .anchor = i};
    if (a->type == H_SCALAR && a->off != NO_ANCHOR) {
        h->plain = s->rec[a->off + REC_HEAD] != 0;
        h->s = s->rec + a->off + REC_HEAD + 1 + 4;
    }
}

/* The next node (or the end of the collection being read), from a replay when one is in progress. H_ERR
 * when the stream failed or ended where a node was due. */
static void ynext(ysrc *s, yhead *h)
{
    while (s->ncur && s->cur[s->ncur - 1].pos >= s->cur[s->ncur - 1].end)
        s->ncur--;
    if (s->ncur) {
        ycursor *c = &s->cur[s->ncur - 1];
        const char *r = s->rec + c->pos;
        uint32_t l, col;
        memcpy(&l, r + 1, 4);
        memcpy(&col, r + 5, 4);
        *h = (yhead){.type = H_END, .line = l, .col = col, .src = SRC_REPLAY};
        c->pos += REC_HEAD;
        switch (r[0]) {
        case R_SCALAR: {
            uint32_t n;
            memcpy(&n, r + REC_HEAD + 1, 4);
            h->type = H_SCALAR;
            h->plain = r[REC_HEAD] != 0;
            h->s = r + REC_HEAD + 5;
            c->pos += 5 + n + 1;
            break;
        }
        case R_SEQ:
        case R_MAP: {
            uint64_t end;
            memcpy(&end, r + REC_HEAD, 8);
            h->type = r[0] == R_SEQ ? H_SEQ : H_MAP;
            h->end = (size_t)end;
            c->pos += 8;
            break;
        }
        case R_ALIAS: {
            uint32_t i;
            memcpy(&i, r + REC_HEAD, 4);
            c->pos += 4;
            alias_head(s, i, h);
            break;
        }
        default: /* R_END */
            break;
        }
        return;
    }
    if (s->fatal || !pull_live(s) || s->fatal) {
        h->type = H_ERR;
        return;
    }
    const yaml_event_t *e = &s->ev;
    *h = (yhead){.type = H_ERR, .line = e->start_mark.line, .col = e->start_mark.column, .src = SRC_LIVE};
    switch (e->type) {
    case YAML_SCALAR_EVENT:
        h->type = H_SCALAR;
        h->s = (const char *)e->data.scalar.value;
        h->plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        break;
    case YAML_SEQUENCE_START_EVENT:
        h->type = H_SEQ;
        break;
    case YAML_MAPPING_START_EVENT:
        h->type = H_MAP;
        break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        h->type = H_END;
        break;
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)e->data.alias.anchor;
        alias_head(s, (uintptr_t)keymap_get(&s->names, name, strlen(name)) - 1, h); /* pull_live found it */
        break;
    }
    default: /* not inside a document's node */
        s->fatal = true;
        break;
    }
}

/* Reads the collection h starts (its items come from ynext until H_END). An alias to an open node is
 * never entered (the caller decides without its content). */
static void yenter(ysrc *s, const yhead *h)
{
    if (h->src != SRC_ALIAS)
        return; /* the stream or the replay goes on inside it */
    const yanchor *a = &s->a[h->anchor];
    if (s->ncur == s->ccap) {
        s->ccap = s->ccap ? 2 * s->ccap : 8;
        s->cur = xrealloc(s->cur, s->ccap * sizeof *s->cur);
    }
    s->cur[s->ncur++] = (ycursor){a->off + REC_HEAD + 8, a->end};
}

/* Passes over the node h starts without reading it. When the stream fails meanwhile, the next ynext says
 * H_ERR (a live node is only read with no replay in progress). */
static void yskip(ysrc *s, const yhead *h)
{
    if (h->type != H_SEQ && h->type != H_MAP)
        return;
    if (h->src == SRC_REPLAY) {
        s->cur[s->ncur - 1].pos = h->end;
        return;
    }
    if (h->src == SRC_ALIAS)
        return;
    for (int d = 1; d > 0;) {
        if (!pull_live(s) || s->fatal)
            return;
        yaml_event_type_t t = s->ev.type;
        d += (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) -
             (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT);
    }
}

static bool y_null(const yhead *h)
{
    if (h->type != H_SCALAR || !h->plain)
        return false;
    const char *s = h->s;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static const char *y_kind(int type)
{
    return type == H_MAP ? "mapping" : type == H_SEQ ? "list" : "scalar";
}

/* An alias that cannot be replayed: to a collection still open (inside itself) or never recorded (the root). */
static bool y_open(const ysrc *s, const yhead *h)
{
    return h->src == SRC_ALIAS && h->type != H_SCALAR && (s->a[h->anchor].open || s->a[h->anchor].off == NO_ANCHOR);
}

#define YPOS(h) (int)(h)->line + 1, (int)(h)->col + 1

/* The reader: the stream, the groups kept, the budgets, the group being read. */
typedef struct yreader {
    ysrc s;
    const char *path;
    char err[2048]; /* the first semantic error */
    size_t count_left, bytes_left;
    size_t root_items;      /* items of the root list so far */
    yhead item0;            /* the first (its kind and position) */
    target_group *out;
    size_t n, cap;
    sd_group_builder tb;    /* the group's targets; tb.pool: the strings groups share */
    char *lb;               /* the group's labels: per pair line (u32), column (u32), name NUL value NUL */
    size_t llen, lcap, npairs;
    label *view;
    size_t vcap;
    char *key;              /* a label name while its value is read */
    size_t kcap;
    struct ygroup *g;       /* the group being read (one, reused) */
} yreader;

/* One group's findings, reported in the walk's order when it ends. */
struct ygroup {
    size_t index;
    yhead at;                 /* the group mapping (position) */
    char key_err[2048];       /* the first bad key */
    bool seen_t, seen_l;
    yhead t, l;               /* the targets and labels values (kind, position, null) */
    bool t_null, l_null;
    bool over_count, over_bytes;
    char label_err[2048];     /* the first label error other than a duplicate name */
    char target_err[512];
};
typedef struct ygroup ygroup;

static int sem(yreader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sem(yreader *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    rec_stop(&r->s); /* nothing is replayed any more */
    return -1;
}

static void group_drop(yreader *r)
{
    sd_gb_clear(&r->tb);
    r->llen = r->npairs = 0;
}

/* Spends n targets and labels of the alias budget and b bytes; once over, the group keeps nothing. */
static void spend(yreader *r, ygroup *g, size_t n, size_t b)
{
    if (n > r->count_left) {
        g->over_count = true;
        r->count_left = 0;
    } else {
        r->count_left -= n;
    }
    if (b > r->bytes_left)
        g->over_bytes = true;
    else
        r->bytes_left -= b;
    if (g->over_count || g->over_bytes)
        group_drop(r);
}

static bool keeps(const ygroup *g)
{
    return !g->over_count && !g->over_bytes;
}

static void lb_put(yreader *r, const void *p, size_t n)
{
    if (r->llen + n > r->lcap) {
        size_t cap = r->lcap ? r->lcap : 256;
        while (cap < r->llen + n)
            cap *= 2;
        r->lb = xrealloc(r->lb, cap);
        r->lcap = cap;
    }
    memcpy(r->lb + r->llen, p, n);
    r->llen += n;
}

static void pair_add(yreader *r, size_t line, size_t col, const char *name, const char *value)
{
    uint32_t l = (uint32_t)line, c = (uint32_t)col;
    lb_put(r, &l, 4);
    lb_put(r, &c, 4);
    lb_put(r, name, strlen(name) + 1);
    lb_put(r, value, strlen(value) + 1);
    r->npairs++;
}

/* The items of a targets list (entered). */
static int y_targets(yreader *r, ygroup *g)
{
    for (;;) {
        yhead t;
        ynext(&r->s, &t);
        if (t.type == H_ERR)
            return -1;
        if (t.type == H_END)
            return 0;
        if (t.type == H_SCALAR) {
            const char *a = y_null(&t) ? "" : t.s;
            size_t al = strlen(a);
            if (!g->target_err[0] && keeps(g)) {
                spend(r, g, 1, al + 1);
                if (keeps(g))
                    sd_gb_add_address(&r->tb, a, al);
            } else {
                spend(r, g, 1, 0);
            }
            continue;
        }
        spend(r, g, 1, 0);
        if (!g->target_err[0])
            snprintf(g->target_err, sizeof g->target_err, "line %d column %d: targets: expected a string, got %s",
                     YPOS(&t), y_kind(t.type));
        yskip(&r->s, &t);
    }
}

/* The pairs of a labels mapping (entered): kept packed with their key's position; the first error that is
 * not a duplicate name is noted (its pair kept when a duplicate name there would win). */
static int y_labels(yreader *r, ygroup *g)
{
    for (;;) {
        yhead k, v;
        ynext(&r->s, &k);
        if (k.type == H_ERR)
            return -1;
        if (k.type == H_END)
            return 0;
        spend(r, g, 1, 0);
        if (g->label_err[0] || !keeps(g) || k.type != H_SCALAR) {
            if (!g->label_err[0] && keeps(g))
                snprintf(g->label_err, sizeof g->label_err, "line %d column %d: labels: expected a string key",
                         YPOS(&g->l));
            yskip(&r->s, &k);
            ynext(&r->s, &v);
            yskip(&r->s, &v);
            continue;
        }
        size_t kl = strlen(k.s);
        if (kl + 1 > r->kcap) {
            r->kcap = kl + 1;
            r->key = xrealloc(r->key, r->kcap);
        }
        memcpy(r->key, k.s, kl + 1); /* k.s goes with the next event */
        ynext(&r->s, &v);
        if (v.type == H_ERR)
            return -1;
        const char *name = r->key;
        if (!label_name_valid(name)) {
            snprintf(g->label_err, sizeof g->label_err, "line %d column %d: \"%s\" is not a valid label name",
                     YPOS(&k), name);
        } else if (v.type != H_SCALAR) {
            pair_add(r, k.line, k.col, name, ""); /* a duplicate name here comes first */
            snprintf(g->label_err, sizeof g->label_err, "line %d column %d: label %s: expected a string, got %s",
                     YPOS(&v), name, y_kind(v.type));
        } else {
            const char *val = y_null(&v) ? "" : v.s;
            spend(r, g, 0, kl + strlen(val) + 2);
            if (keeps(g))
                pair_add(r, k.line, k.col, name, val);
        }
        yskip(&r->s, &v);
    }
}

static int label_cmp(const void *a, const void *b)
{
    const label *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : x->name < y->name ? -1 : x->name > y->name; /* then document order */
}

/* The group's pairs, sorted into r->view: -1 with the duplicate's error when a name repeats. */
static int labels_sort(yreader *r, size_t *n)
{
    if (r->npairs > r->vcap) {
        r->vcap = r->npairs;
        r->view = xrealloc(r->view, r->vcap * sizeof *r->view);
    }
    const char *p = r->lb;
    for (size_t i = 0; i < r->npairs; i++) {
        char *name = (char *)p + 8, *value = name + strlen(name) + 1;
        r->view[i] = (label){name, value};
        p = value + strlen(value) + 1;
    }
    if (r->npairs > 1)
        qsort(r->view, r->npairs, sizeof *r->view, label_cmp);
    const char *dup = NULL; /* the first pair in document order whose name an earlier one has */
    for (size_t i = 1; i < r->npairs; i++)
        if (!strcmp(r->view[i - 1].name, r->view[i].name) && (!dup || r->view[i].name < dup))
            dup = r->view[i].name;
    if (dup) {
        uint32_t l, c;
        memcpy(&l, dup - 8, 4);
        memcpy(&c, dup - 4, 4);
        return sem(r, "line %d column %d: key \"%s\" already set in map", (int)l + 1, (int)c + 1, dup);
    }
    *n = r->npairs;
    return 0;
}

/* The group ends without error: frozen when it has targets, with its labels (sorted in r->view; empty
 * values are none, as labelset_set has it) and __meta_filepath=PATH (replacing the file's own). */
static void group_keep(yreader *r, const ygroup *g, size_t nl)
{
    if (!r->tb.n_targets)
        return;
    static const char fp[] = "__meta_filepath";
    if (r->vcap < nl + 1) {
        r->vcap = nl + 1;
        r->view = xrealloc(r->view, r->vcap * sizeof *r->view);
    }
    label *v = r->view;
    size_t k = 0, at = SIZE_MAX;
    for (size_t i = 0; i < nl; i++) {
        int c = strcmp(v[i].name, fp);
        if (c >= 0 && at == SIZE_MAX)
            at = k;
        if (c == 0 || !v[i].value[0])
            continue;
        v[k++] = v[i];
    }
    if (at == SIZE_MAX)
        at = k;
    memmove(v + at + 1, v + at, (k - at) * sizeof *v);
    v[at] = (label){(char *)fp, (char *)r->path};
    k++;
    for (size_t i = 0; i < k; i++) {
        const char *nm = sd_pool_intern(r->tb.pool, v[i].name, strlen(v[i].name));
        const char *va = sd_pool_intern(r->tb.pool, v[i].value, strlen(v[i].value));
        if (nm)
            v[i].name = (char *)nm;
        if (va)
            v[i].value = (char *)va;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 4;
        r->out = xrealloc(r->out, r->cap * sizeof *r->out);
    }
    char source[4096 + 32];
    snprintf(source, sizeof source, "%s:%zu", r->path, g->index);
    labelset ls = {v, k, k};
    sd_gb_freeze(&r->tb, source, &ls, &r->out[r->n++]);
}

static void group_end_reset(yreader *r)
{
    group_drop(r);
    if (r->lcap > 65536) { /* a big group's buffers are not kept for the next, small one */
        free(r->lb);
        r->lb = NULL;
        r->lcap = 0;
    }
    if (r->vcap > 4096) {
        free(r->view);
        r->view = NULL;
        r->vcap = 0;
    }
}

static int y_group(yreader *r, const yhead *h, size_t index)
{
    if (y_null(h))
        return sem(r, "line %d column %d: nil target group item found", YPOS(h));
    if (h->type != H_MAP || y_open(&r->s, h)) /* no mapping is open around a group */
        return sem(r, "line %d column %d: group %zu: expected a mapping with targets and labels, got %s", YPOS(h),
                   index, y_kind(h->type));
    ygroup *g = r->g;
    g->index = index;
    g->at = *h;
    g->key_err[0] = g->label_err[0] = g->target_err[0] = 0;
    g->seen_t = g->seen_l = g->t_null = g->l_null = g->over_count = g->over_bytes = false;
    int rc = -1;
    spend(r, g, 1, 0);
    yenter(&r->s, h);
    for (;;) {
        yhead k, v;
        ynext(&r->s, &k);
        if (k.type == H_ERR)
            goto out;
        if (k.type == H_END)
            break;
        bool *seen = NULL;
        if (!g->key_err[0]) {
            if (k.type != H_SCALAR)
                snprintf(g->key_err, sizeof g->key_err, "line %d column %d: group %zu: expected a string key",
                         YPOS(h), index);
            else if (!strcmp(k.s, "targets"))
                seen = &g->seen_t;
            else if (!strcmp(k.s, "labels"))
                seen = &g->seen_l;
            else
                snprintf(g->key_err, sizeof g->key_err, "line %d column %d: field %s not found in target group "
                         "(expected targets, labels)", YPOS(&k), k.s);
            if (seen && *seen) {
                snprintf(g->key_err, sizeof g->key_err, "line %d column %d: key \"%s\" already set in map",
                         YPOS(&k), k.s);
                seen = NULL;
            }
        }
        yskip(&r->s, &k);
        ynext(&r->s, &v);
        if (v.type == H_ERR)
            goto out;
        if (g->key_err[0] || !seen) { /* after a bad key only keys matter */
            yskip(&r->s, &v);
            continue;
        }
        *seen = true;
        if (seen == &g->seen_t) {
            g->t = v;
            g->t_null = y_null(&v);
            if (v.type == H_SEQ && y_open(&r->s, &v)) {
                /* targets: *ROOT inside ROOT: its first item, a group mapping, is not a string */
                spend(r, g, r->root_items, 0);
                snprintf(g->target_err, sizeof g->target_err, "line %d column %d: targets: expected a string, "
                         "got %s", YPOS(&r->item0), y_kind(r->item0.type));
            } else if (v.type == H_SEQ) {
                yenter(&r->s, &v);
                if (y_targets(r, g))
                    goto out;
            } else {
                yskip(&r->s, &v);
            }
        } else {
            g->l = v;
            g->l_null = y_null(&v);
            if (v.type == H_MAP && y_open(&r->s, &v)) {
                /* labels: *GROUP inside GROUP: its pairs are targets (when read before) and labels */
                spend(r, g, g->seen_t ? 2 : 1, 0);
                if (g->seen_t && (g->t.type == H_SEQ || g->t.type == H_MAP))
                    snprintf(g->label_err, sizeof g->label_err, "line %d column %d: label targets: expected a "
                             "string, got %s", YPOS(&g->t), y_kind(g->t.type));
                else
                    snprintf(g->label_err, sizeof g->label_err, "line %d column %d: label labels: expected a "
                             "string, got mapping", YPOS(&v));
            } else if (v.type == H_MAP) {
                yenter(&r->s, &v);
                if (y_labels(r, g))
                    goto out;
            } else {
                yskip(&r->s, &v);
            }
        }
    }
    size_t nl = 0;
    if (g->key_err[0])
        rc = sem(r, "%s", g->key_err);
    else if (g->seen_t && !g->t_null && g->t.type != H_SEQ)
        rc = sem(r, "line %d column %d: targets: expected a list of strings, got %s", YPOS(&g->t),
                 y_kind(g->t.type));
    else if (g->seen_l && !g->l_null && g->l.type != H_MAP)
        rc = sem(r, "line %d column %d: labels: expected a mapping of strings, got %s", YPOS(&g->l),
                 y_kind(g->l.type));
    else if (g->over_count)
        rc = sem(r, "document expands to more targets and labels than its size allows (aliases)");
    else if (g->over_bytes)
        rc = sem(r, "document expands to more bytes of targets and labels than its size allows (aliases)");
    else if (labels_sort(r, &nl))
        rc = -1;
    else if (g->label_err[0])
        rc = sem(r, "%s", g->label_err);
    else if (g->target_err[0])
        rc = sem(r, "%s", g->target_err);
    else
        rc = 0;
    if (!rc)
        group_keep(r, g, nl);
out:
    group_end_reset(r);
    return rc;
}

static int y_root(yreader *r, const yhead *h)
{
    if (y_null(h))
        return 0;
    if (h->type != H_SEQ)
        return sem(r, "line %d column %d: expected a list of target groups, got %s", YPOS(h), y_kind(h->type));
    for (size_t i = 0;; i++) {
        yhead it;
        ynext(&r->s, &it);
        if (it.type == H_ERR)
            return -1;
        if (it.type == H_END)
            return 0;
        if (!i)
            r->item0 = it;
        r->root_items++;
        if (y_group(r, &it, i))
            return -1;
    }
}

static int parse_yaml(const char *path, sd_pool *pool, const char *data, size_t len, target_group **out,
                      size_t *n, char *err, size_t errlen)
{
    yreader *r = xcalloc(1, sizeof *r);
    ysrc *s = &r->s;
    if (!yaml_parser_initialize(&s->p)) {
        free(r);
        return fail(err, errlen, "cannot initialise the YAML parser");
    }
    yaml_parser_set_input_string(&s->p, (const unsigned char *)data, len);
    yaml_depth_init(&s->depth, len);
    s->record = s->in_doc1 = true;
    r->g = xcalloc(1, sizeof *r->g);
    r->path = path;
    r->count_left = len / 2 + 64;
    r->bytes_left = 16 * len + (1u << 20);
    sd_pool *own = pool ? NULL : sd_pool_new();
    r->tb.pool = pool ? pool : own;
    /* STREAM_START, then DOCUMENT_START or STREAM_END (no document: an empty list) */
    if (pull_live(s) && pull_live(s) && s->ev.type == YAML_DOCUMENT_START_EVENT) {
        yhead root;
        ynext(s, &root);
        if (root.type != H_ERR && !y_root(r, &root))
            (void)pull_live(s); /* the first document's end */
        else if (!s->fatal && !r->err[0])
            sem(r, "unexpected end of the YAML document"); /* not reached: libyaml's events nest */
    }
    while (pull_live(s)) /* the rest of the stream: nesting, and the first document's anchors and aliases */
        ;
    int rc = 0;
    if (s->derr[0])
        rc = fail(err, errlen, "%s", s->derr);
    else if (s->lerr[0])
        rc = fail(err, errlen, "%s", s->lerr);
    else if (r->err[0])
        rc = fail(err, errlen, "%s", r->err);
    if (s->have_ev)
        yaml_event_delete(&s->ev);
    yaml_parser_delete(&s->p);
    for (size_t i = 0; i < s->na; i++)
        free(s->a[i].name);
    free(s->a);
    keymap_free(&s->names);
    free(s->rec);
    free(s->rstack);
    free(s->cur);
    free(r->lb);
    free(r->view);
    free(r->key);
    free(r->g);
    sd_gb_free(&r->tb);
    if (own) {
        sd_pool_seal(own);
        sd_pool_unref(own); /* the groups keep it alive */
    }
    if (rc) {
        sd_groups_free(r->out, r->n);
    } else {
        if (r->n && r->n < r->cap)
            r->out = xrealloc(r->out, r->n * sizeof *r->out);
        *out = r->out;
        *n = r->n;
    }
    free(r);
    return rc;
}

static int parse_pooled(const char *path, sd_pool *pool, const char *data, size_t len, target_group **out,
                        size_t *n, char *err, size_t errlen)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (dot && slash && dot < slash)
        dot = NULL;
    if (dot && !strcasecmp(dot, ".json"))
        return sd_json_groups_parse(path, "__meta_filepath", path, NULL, pool, data, len, out, NULL, n, err,
                                    errlen);
    if (dot && (!strcasecmp(dot, ".yml") || !strcasecmp(dot, ".yaml")))
        return parse_yaml(path, pool, data, len, out, n, err, errlen);
    return fail(err, errlen, "unhandled file extension %s (expected .json, .yml or .yaml)", dot ? dot : "\"\"");
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
