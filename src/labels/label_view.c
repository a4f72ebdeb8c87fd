/* label views (labels.h): a label set plus maps kept packed, read name by name, in name order, without
 * expanding the maps (a Kubernetes pod's map of a million labels is two million labels when expanded). */
#include <stdlib.h>
#include <string.h>

#include "labels/labels.h"
#include "util/xalloc.h"

label_view label_view_of(const labelset *ls)
{
    return (label_view){ls, NULL, 0};
}

static long pmap_find(const label_pmap *m, const char *key)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->text + m->off[mid], key);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static const char *entry_value(const label_pmap *m, size_t i)
{
    const char *k = m->text + m->off[i];
    return k + strlen(k) + 1;
}

const char *label_view_get(const label_view *v, const char *name)
{
    const char *s = v->ls ? labelset_get(v->ls, name) : NULL;
    if (s)
        return s;
    for (size_t i = 0; i < v->n_maps; i++) {
        const label_pmap *m = &v->maps[i];
        size_t pl = strlen(m->prefix), ql = strlen(m->present_prefix);
        if (strncmp(name, m->prefix, pl) == 0) {
            long e = pmap_find(m, name + pl);
            if (e >= 0 && *entry_value(m, (size_t)e))
                return entry_value(m, (size_t)e);
        }
        if (strncmp(name, m->present_prefix, ql) == 0 && pmap_find(m, name + ql) >= 0)
            return "true";
    }
    return NULL;
}

/* stream 0: the set; 1 + 2k: map k's prefix labels (entries with a value); 2 + 2k: its present labels */
static void stream_load(label_view_iter *it, size_t s)
{
    lv_stream *st = &it->s[s];
    const label_view *v = it->v;
    if (s == 0) {
        if (v->ls && st->i < v->ls->n) {
            st->name = v->ls->v[st->i].name;
            st->value = v->ls->v[st->i].value;
        } else {
            st->name = NULL;
        }
        return;
    }
    const label_pmap *m = &v->maps[(s - 1) / 2];
    bool present = (s - 1) % 2 == 1;
    if (!present)
        while (st->i < m->n && !*entry_value(m, st->i))
            st->i++;
    if (st->i >= m->n) {
        st->name = NULL;
        return;
    }
    const char *prefix = present ? m->present_prefix : m->prefix, *key = m->text + m->off[st->i];
    size_t pl = strlen(prefix), kl = strlen(key);
    if (pl + kl + 1 > st->cap) {
        st->cap = 2 * (pl + kl + 1);
        st->buf = xrealloc(st->buf, st->cap);
    }
    memcpy(st->buf, prefix, pl);
    memcpy(st->buf + pl, key, kl + 1);
    st->name = st->buf;
    st->value = present ? "true" : key + kl + 1;
}

void label_view_iter_init(label_view_iter *it, const label_view *v)
{
    it->v = v;
    it->ns = 1 + 2 * v->n_maps;
    it->s = v->n_maps ? xcalloc(it->ns, sizeof *it->s) : &it->one;
    memset(it->s, 0, it->ns * sizeof *it->s);
    it->pending = it->ns;
    for (size_t s = 0; s < it->ns; s++)
        stream_load(it, s);
}

bool label_view_next(label_view_iter *it, const char **name, const char **value)
{
    if (it->pending < it->ns) { /* the stream given last time: its name stayed readable until now */
        stream_load(it, it->pending);
        it->pending = it->ns;
    }
    size_t best = it->ns;
    for (size_t s = 0; s < it->ns; s++)
        if (it->s[s].name && (best == it->ns || strcmp(it->s[s].name, it->s[best].name) < 0))
            best = s;
    if (best == it->ns)
        return false;
    *name = it->s[best].name;
    *value = it->s[best].value;
    it->s[best].i++;
    it->pending = best;
    return true;
}

void label_view_iter_free(label_view_iter *it)
{
    for (size_t s = 0; s < it->ns; s++)
        free(it->s[s].buf);
    if (it->s != &it->one)
        free(it->s);
    it->s = NULL;
    it->ns = 0;
}

size_t label_view_count(const label_view *v)
{
    size_t n = v->ls ? v->ls->n : 0;
    for (size_t i = 0; i < v->n_maps; i++) {
        n += v->maps[i].n;
        for (size_t e = 0; e < v->maps[i].n; e++)
            n += *entry_value(&v->maps[i], e) != '\0';
    }
    return n;
}

uint64_t label_view_hash(const label_view *v)
{
    static const unsigned char sep = 0xff;
    uint64_t h = FNV64_OFFSET;
    label_view_iter it;
    const char *n, *val;
    label_view_iter_init(&it, v);
    while (label_view_next(&it, &n, &val)) {
        h = fnv1a64(h, n, strlen(n));
        h = fnv1a64(h, &sep, 1);
        h = fnv1a64(h, val, strlen(val));
        h = fnv1a64(h, &sep, 1);
    }
    label_view_iter_free(&it);
    return h;
}

bool label_view_equal(const label_view *a, const label_view *b)
{
    if (!a->n_maps && !b->n_maps) {
        labelset e = LABELSET_INIT;
        return labelset_equal(a->ls ? a->ls : &e, b->ls ? b->ls : &e);
    }
    label_view_iter x, y;
    label_view_iter_init(&x, a);
    label_view_iter_init(&y, b);
    bool eq = true;
    for (;;) {
        const char *xn, *xv, *yn, *yv;
        bool hx = label_view_next(&x, &xn, &xv), hy = label_view_next(&y, &yn, &yv);
        if (hx != hy || (hx && (strcmp(xn, yn) != 0 || strcmp(xv, yv) != 0))) {
            eq = false;
            break;
        }
        if (!hx)
            break;
    }
    label_view_iter_free(&x);
    label_view_iter_free(&y);
    return eq;
}

void label_view_copy(labelset *dst, const label_view *v)
{
    labelset_init(dst);
    size_t n = label_view_count(v);
    if (!n)
        return;
    dst->v = xmalloc(n * sizeof *dst->v);
    dst->cap = n;
    label_view_iter it;
    const char *name, *val;
    label_view_iter_init(&it, v);
    while (label_view_next(&it, &name, &val) && dst->n < n) {
        dst->v[dst->n].name = xstrdup(name);
        dst->v[dst->n++].value = xstrdup(val);
    }
    label_view_iter_free(&it);
}
