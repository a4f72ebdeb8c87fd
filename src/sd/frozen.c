/* frozen: immutable, reference-counted target groups (sd.h's gen != 0), the form the discovery manager
 * stores, and the group builder the streaming parsers fill (sd_internal.h), so that a response's groups are
 * built once, compactly, and stored by reference instead of parsed into plain groups and copied.
 *
 * A frozen group is one allocation:
 *   [mgroup][source, NUL, padded to 8][labelset per target][label ...][names and values]
 * The source string starts right after the mgroup: a struct copy of the group (a "view", as the parsers
 * return) finds its mgroup from g->source alone (mgroup_of). Within a group, a target's label name equal to
 * the previous target's at the same position shares its bytes (the targets of one group mostly have the
 * same label names).
 *
 * A string found in the group's pool (sd_pool: the strings a provider's groups share) is not copied:
 * the group points into the pool and holds a reference to it.
 *
 * The builder keeps the targets packed while a group is read: per target a uint32 label count, then
 * per label its name (a mark byte, then name NUL unless it is the previous target's name at the same
 * position) and value NUL (a target with only an address: a marker count and the value), instead of a
 * labelset (~100 bytes of allocations) per target. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "sd/manager_internal.h"
#include "util/xalloc.h"

static atomic_uint_fast64_t next_gen;

/* ---- pool ---- */

typedef struct pchunk {
    struct pchunk *next;
    size_t used, cap;
    char data[];
} pchunk;

struct sd_pool {
    atomic_int refs;
    pchunk *chunks; /* newest first; a chunk never moves, so pooled strings stay put */
    keymap map;     /* string -> itself, while interning */
    size_t bytes;   /* in the chunks */
    bool sealed;
};

sd_pool *sd_pool_new(void)
{
    sd_pool *p = xcalloc(1, sizeof *p);
    atomic_init(&p->refs, 1);
    return p;
}

const char *sd_pool_intern(sd_pool *p, const char *s, size_t len)
{
    if (p->sealed || len > SD_POOL_MAX_LEN)
        return NULL;
    uint64_t h = keymap_hash(s, len);
    const char *got = keymap_get_hashed(&p->map, s, len, h);
    if (got || p->map.n >= SD_POOL_MAX_STRINGS || p->bytes + len + 1 > SD_POOL_MAX_BYTES)
        return got;
    pchunk *c = p->chunks;
    if (!c || c->cap - c->used < len + 1) {
        size_t cap = c ? (c->cap < (1u << 16) ? c->cap * 2 : c->cap) : 1024;
        if (cap < len + 1)
            cap = len + 1;
        pchunk *n = xmalloc(sizeof *n + cap);
        n->used = 0;
        n->cap = cap;
        n->next = c;
        p->chunks = c = n;
    }
    char *d = c->data + c->used;
    memcpy(d, s, len);
    d[len] = 0;
    c->used += len + 1;
    p->bytes += len + 1;
    keymap_put_hashed(&p->map, d, len, h, d);
    return d;
}

void sd_pool_seal(sd_pool *p)
{
    keymap_free(&p->map);
    p->map = (keymap)KEYMAP_INIT;
    p->sealed = true;
}

static bool pool_owns(const sd_pool *p, const char *s)
{
    if (!p)
        return false;
    for (const pchunk *c = p->chunks; c; c = c->next)
        if (s >= c->data && s < c->data + c->used)
            return true;
    return false;
}

static sd_pool *pool_ref(sd_pool *p)
{
    if (p)
        atomic_fetch_add(&p->refs, 1);
    return p;
}

void sd_pool_unref(sd_pool *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    keymap_free(&p->map);
    for (pchunk *c = p->chunks, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    free(p);
}

/* ---- frozen groups ---- */

static mgroup *mgroup_of(const target_group *g)
{
    return (mgroup *)(void *)((char *)g->source - sizeof(mgroup));
}

/* The targets of a group being frozen, read twice (sizes, then copy): next(ctx, t) for t = 0, 1, ... */
typedef const labelset *(*target_at_fn)(void *ctx, size_t t);

/* Where a group's strings may already live: the pool, and an arena the group takes (sd_gb_freeze_adopt). */
typedef struct borrow {
    const sd_pool *pool;
    const char *lo, *hi;
} borrow;

static bool borrowed(const borrow *b, const char *s)
{
    return (s >= b->lo && s < b->hi) || pool_owns(b->pool, s);
}

/* The bytes s takes in a blob: none when borrowed. */
static size_t str_room(const borrow *pool, const char *s)
{
    return borrowed(pool, s) ? 0 : strlen(s) + 1;
}

/* s itself when borrowed, else its copy at *dst. */
static char *blob_str(const borrow *pool, char **dst, const char *s)
{
    if (borrowed(pool, s))
        return (char *)s;
    char *d = *dst;
    size_t n = strlen(s) + 1;
    memcpy(d, s, n);
    *dst += n;
    return d;
}

static bool same_name(const labelset *prev, size_t i, const char *name)
{
    return prev && i < prev->n && strcmp(prev->v[i].name, name) == 0;
}

/* take_labels: labels->v is malloc'd and the group takes it (its strings that are not borrowed are copied
 * and its pointers rewritten) instead of copying the array. */
static mgroup *mgroup_build(const char *source, const labelset *labels, bool take_labels, size_t n_targets,
                            target_at_fn at, void *ctx, sd_pool *sdpool, const char *arena, size_t arena_len)
{
    const borrow bw = {sdpool, arena, arena ? arena + arena_len : NULL}, *pool = &bw;
    size_t src_len = strlen(source ? source : "") + 1, src_room = (src_len + 7) & ~(size_t)7;
    size_t n_labels = take_labels ? 0 : labels->n, bytes = 0;
    for (size_t i = 0; i < labels->n; i++)
        bytes += str_room(pool, labels->v[i].name) + str_room(pool, labels->v[i].value);
    /* the previous target must stay readable while the next is read: copy its view (at() may reuse) */
    labelset prev_copy = LABELSET_INIT;
    label *prev_v = NULL;
    size_t prev_cap = 0;
    for (size_t t = 0; t < n_targets; t++) {
        const labelset *ls = at(ctx, t), *prev = t ? &prev_copy : NULL;
        n_labels += ls->n;
        for (size_t i = 0; i < ls->n; i++) {
            if (!same_name(prev, i, ls->v[i].name))
                bytes += str_room(pool, ls->v[i].name);
            bytes += str_room(pool, ls->v[i].value);
        }
        if (ls->n > prev_cap) {
            prev_cap = ls->n;
            prev_v = xrealloc(prev_v, prev_cap * sizeof(label));
        }
        if (ls->n)
            memcpy(prev_v, ls->v, ls->n * sizeof(label));
        prev_copy = (labelset){prev_v, ls->n, ls->n};
    }
    size_t size = sizeof(mgroup) + src_room + n_targets * sizeof(labelset) + n_labels * sizeof(label) + bytes;
    mgroup *g = xmalloc(size);
    char *src = (char *)(g + 1);
    memcpy(src, source ? source : "", src_len);
    labelset *sets = (labelset *)(void *)(src + src_room);
    label *lab = (label *)(sets + n_targets);
    char *str = (char *)(lab + n_labels);
    g->g.source = src;
    g->labels = take_labels ? labels->v : NULL;
    label *own = take_labels ? labels->v : lab;
    g->g.labels = (labelset){labels->n ? own : NULL, labels->n, labels->n};
    for (size_t i = 0; i < labels->n; i++) {
        own[i].name = blob_str(pool, &str, labels->v[i].name);
        own[i].value = blob_str(pool, &str, labels->v[i].value);
    }
    if (!take_labels)
        lab += labels->n;
    g->g.targets = n_targets ? sets : NULL;
    g->g.n_targets = n_targets;
    for (size_t t = 0; t < n_targets; t++) {
        const labelset *ls = at(ctx, t), *prev = t ? &sets[t - 1] : NULL;
        sets[t] = (labelset){ls->n ? lab : NULL, ls->n, ls->n};
        for (size_t i = 0; i < ls->n; i++, lab++) {
            lab->name = same_name(prev, i, ls->v[i].name) ? prev->v[i].name : blob_str(pool, &str, ls->v[i].name);
            lab->value = blob_str(pool, &str, ls->v[i].value);
        }
    }
    free(prev_v);
    g->g.gen = atomic_fetch_add(&next_gen, 1) + 1;
    atomic_init(&g->refs, 1);
    g->pool = pool_ref(sdpool);
    g->arena = NULL;
    g->lazy = 0;
    return g;
}

static const labelset *plain_target_at(void *ctx, size_t t)
{
    return &((const target_group *)ctx)->targets[t];
}

mgroup *sd_mgroup_new(const target_group *src)
{
    return mgroup_build(src->source, &src->labels, false, src->n_targets, plain_target_at, (void *)src, NULL, NULL,
                        0);
}

mgroup *sd_mgroup_of_view(const target_group *g)
{
    mgroup *m = mgroup_of(g);
    atomic_fetch_add(&m->refs, 1);
    return m;
}

void sd_lazy_free(sd_lazy *z)
{
    if (!z)
        return;
    for (size_t i = 0; i < z->n; i++) {
        free((void *)z->m[i].text);
        free((void *)z->m[i].off);
    }
    free(z);
}

label_view target_group_labels(const target_group *g)
{
    label_view v = label_view_of(&g->labels);
    if (g->gen) {
        const mgroup *m = mgroup_of(g);
        if (m->lazy) {
            const sd_lazy *z = (const sd_lazy *)(const void *)m->arena;
            v.maps = z->m;
            v.n_maps = z->n;
        }
    }
    return v;
}

void sd_mgroup_unref(mgroup *g)
{
    if (g && atomic_fetch_sub(&g->refs, 1) == 1) {
        sd_pool_unref(g->pool);
        if (g->lazy)
            sd_lazy_free((sd_lazy *)(void *)g->arena);
        else
            free(g->arena);
        free(g->labels);
        free(g); /* one allocation (mgroup_build), and the arena and label array it took */
    }
}

const target_group *target_group_freeze(const target_group *g)
{
    return &sd_mgroup_new(g)->g;
}

const target_group *target_group_ref(const target_group *g)
{
    return &sd_mgroup_of_view(g)->g;
}

void target_group_unref(const target_group *g)
{
    sd_mgroup_unref(mgroup_of(g));
}

/* ---- builder ---- */

static void gb_put(sd_group_builder *b, const void *s, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len)
            cap *= 2;
        b->buf = xrealloc(b->buf, cap);
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, len);
    b->len += len;
}

/* A label's name in the buffer: NAME_SAME (the previous target's name at the same position: no bytes
 * besides the mark) or NAME_TEXT then the name. */
#define NAME_TEXT 0
#define NAME_SAME 1

void sd_gb_add_target(sd_group_builder *b, const labelset *t)
{
    uint32_t n = (uint32_t)t->n;
    gb_put(b, &n, sizeof n);
    if (t->n > b->prev_cap) {
        b->prev_cap = t->n;
        b->prev_off = xrealloc(b->prev_off, b->prev_cap * sizeof *b->prev_off);
    }
    for (size_t i = 0; i < t->n; i++) {
        const char *name = t->v[i].name;
        if (i < b->prev_n && strcmp(b->buf + b->prev_off[i], name) == 0) {
            gb_put(b, (char[]){NAME_SAME}, 1);
        } else {
            gb_put(b, (char[]){NAME_TEXT}, 1);
            b->prev_off[i] = b->len;
            gb_put(b, name, strlen(name) + 1);
        }
        gb_put(b, t->v[i].value, strlen(t->v[i].value) + 1);
    }
    b->prev_n = t->n;
    b->n_targets++;
}

#define PACKED_ADDRESS UINT32_MAX /* the count of a target {__address__=VALUE}: only VALUE follows */

void sd_gb_add_address(sd_group_builder *b, const char *addr, size_t len)
{
    uint32_t n = len ? PACKED_ADDRESS : 0; /* an empty value is no label (labelset_set's rule) */
    gb_put(b, &n, sizeof n);
    b->prev_n = 0; /* its name is not in the buffer */
    if (len) {
        gb_put(b, addr, len);
        gb_put(b, "", 1);
    }
    b->n_targets++;
}

/* The pooled copy of s when there is a pool with room, else s. Interning is idempotent, so the two passes
 * over the targets see the same pointers. */
static char *pooled(sd_pool *pool, char *s)
{
    const char *p = pool ? sd_pool_intern(pool, s, strlen(s)) : NULL;
    return p ? (char *)p : s;
}

/* Decodes the packed targets in order (labels pooled when the builder has a pool; addresses never: they
 * are unique) into a view whose labels point into the buffer. */
typedef struct gb_reader {
    const sd_group_builder *b;
    const char *address; /* "__address__", pooled when the builder has a pool */
    size_t off;
    labelset view;
    size_t cap;
} gb_reader;

static const labelset *packed_target_at(void *ctx, size_t t)
{
    gb_reader *r = ctx;
    if (t == 0)
        r->off = 0;
    uint32_t n;
    memcpy(&n, r->b->buf + r->off, sizeof n);
    r->off += sizeof n;
    if (n == PACKED_ADDRESS) {
        if (!r->cap) {
            r->cap = 1;
            r->view.v = xmalloc(sizeof(label));
        }
        r->view.v[0].name = (char *)r->address;
        r->view.v[0].value = r->b->buf + r->off;
        r->off += strlen(r->view.v[0].value) + 1;
        r->view.n = r->view.cap = 1;
        return &r->view;
    }
    if (n > r->cap) {
        r->cap = n;
        r->view.v = xrealloc(r->view.v, n * sizeof(label));
    }
    for (uint32_t i = 0; i < n; i++) {
        /* NAME_SAME: v[i] still holds the previous target's label i (pooled already) */
        if (r->b->buf[r->off++] == NAME_TEXT) {
            char *name = r->b->buf + r->off;
            r->off += strlen(name) + 1;
            r->view.v[i].name = pooled(r->b->pool, name);
        }
        char *value = r->b->buf + r->off;
        r->off += strlen(value) + 1;
        r->view.v[i].value = pooled(r->b->pool, value);
    }
    r->view.n = r->view.cap = n;
    return &r->view;
}

static void gb_freeze(sd_group_builder *b, const char *source, const labelset *labels, bool take_labels,
                      char *arena, size_t arena_len, target_group *out)
{
    static const char address[] = "__address__";
    gb_reader r = {.b = b, .address = address};
    if (b->pool) {
        const char *pooled = sd_pool_intern(b->pool, address, sizeof address - 1);
        if (pooled)
            r.address = pooled;
    }
    mgroup *m = mgroup_build(source, labels, take_labels, b->n_targets, packed_target_at, &r, b->pool, arena,
                             arena_len);
    m->arena = arena;
    free(r.view.v);
    sd_gb_clear(b);
    *out = m->g; /* a view holding the one reference */
}

void sd_gb_freeze(sd_group_builder *b, const char *source, const labelset *labels, target_group *out)
{
    gb_freeze(b, source, labels, false, NULL, 0, out);
}

void sd_gb_freeze_adopt(sd_group_builder *b, const char *source, const labelset *labels, char *arena,
                        size_t arena_len, target_group *out)
{
    gb_freeze(b, source, labels, true, arena, arena_len, out);
}

void sd_gb_freeze_lazy(sd_group_builder *b, const char *source, const labelset *labels, sd_lazy *maps,
                       target_group *out)
{
    gb_freeze(b, source, labels, false, NULL, 0, out);
    if (maps) {
        mgroup *m = mgroup_of(out);
        m->arena = (char *)(void *)maps;
        m->lazy = 1;
    }
}

void sd_gb_freeze_arena(sd_group_builder *b, const char *source, const labelset *labels, char *arena,
                        size_t arena_len, target_group *out)
{
    gb_freeze(b, source, labels, false, arena, arena_len, out);
}

void sd_gb_clear(sd_group_builder *b)
{
    b->len = 0;
    b->n_targets = 0;
    b->prev_n = 0;
    if (b->cap > 65536) { /* a big group's buffer is not kept for the next, small one */
        free(b->buf);
        b->buf = NULL;
        b->cap = 0;
    }
    if (b->prev_cap > 1024) {
        free(b->prev_off);
        b->prev_off = NULL;
        b->prev_cap = 0;
    }
}

void sd_gb_free(sd_group_builder *b)
{
    free(b->buf);
    free(b->prev_off);
    b->buf = NULL;
    b->prev_off = NULL;
    b->len = b->cap = b->n_targets = b->prev_n = b->prev_cap = 0;
}
