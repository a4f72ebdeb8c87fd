/* labels: see labels.h. Sets are small (tens of labels), so binary search over a sorted array wins
 * over hashing and keeps iteration order canonical for hashing and output. */
#include "labels/labels.h"

#include <stdlib.h>
#include <string.h>

#include "util/strbuf.h"
#include "util/xalloc.h"

void labelset_init(labelset *ls)
{
    ls->v = NULL;
    ls->n = ls->cap = 0;
}

void labelset_clear(labelset *ls)
{
    for (size_t i = 0; i < ls->n; i++) {
        free(ls->v[i].name);
        free(ls->v[i].value);
    }
    ls->n = 0;
}

void labelset_free(labelset *ls)
{
    labelset_clear(ls);
    free(ls->v);
    labelset_init(ls);
}

void labelset_copy(labelset *dst, const labelset *src)
{
    labelset_init(dst);
    if (!src->n)
        return;
    dst->v = malloc(src->n * sizeof(label));
    if (!dst->v)
        abort();
    dst->cap = dst->n = src->n;
    for (size_t i = 0; i < src->n; i++) {
        dst->v[i].name = xstrdup(src->v[i].name);
        dst->v[i].value = xstrdup(src->v[i].value);
    }
}

/* Returns the index of name, or -(insertion point)-1 when absent. */
static long find(const labelset *ls, const char *name)
{
    size_t lo = 0, hi = ls->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(ls->v[mid].name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

const char *labelset_get(const labelset *ls, const char *name)
{
    long i = find(ls, name);
    return i >= 0 ? ls->v[i].value : NULL;
}

void labelset_del(labelset *ls, const char *name)
{
    long i = find(ls, name);
    if (i < 0)
        return;
    free(ls->v[i].name);
    free(ls->v[i].value);
    memmove(&ls->v[i], &ls->v[i + 1], (ls->n - (size_t)i - 1) * sizeof(label));
    ls->n--;
}

void labelset_set(labelset *ls, const char *name, const char *value)
{
    if (!value || !*value) {
        labelset_del(ls, name);
        return;
    }
    long i = find(ls, name);
    if (i >= 0) {
        if (strcmp(ls->v[i].value, value) != 0) {
            free(ls->v[i].value);
            ls->v[i].value = xstrdup(value);
        }
        return;
    }
    size_t at = (size_t)(-i - 1);
    if (ls->n == ls->cap) {
        size_t cap = ls->cap ? ls->cap * 2 : 8;
        label *nv = realloc(ls->v, cap * sizeof(label));
        if (!nv)
            abort();
        ls->v = nv;
        ls->cap = cap;
    }
    memmove(&ls->v[at + 1], &ls->v[at], (ls->n - at) * sizeof(label));
    ls->v[at].name = xstrdup(name);
    ls->v[at].value = xstrdup(value);
    ls->n++;
}

typedef struct tagged {
    label l;
    size_t at; /* position in the caller's order: the later pair of a name wins */
} tagged;

static int by_name_then_order(const void *a, const void *b)
{
    const tagged *x = a, *y = b;
    int c = strcmp(x->l.name, y->l.name);
    return c ? c : (x->at > y->at) - (x->at < y->at);
}

void labelset_set_many(labelset *ls, label *pairs, size_t n)
{
    if (!n)
        return;
    tagged *t = malloc(n * sizeof *t);
    if (!t)
        abort();
    for (size_t i = 0; i < n; i++)
        t[i] = (tagged){pairs[i], i};
    qsort(t, n, sizeof *t, by_name_then_order);
    /* the last pair of each name, the others freed */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && strcmp(t[i].l.name, t[i + 1].l.name) == 0) {
            free(t[i].l.name);
            free(t[i].l.value);
            continue;
        }
        t[k++] = t[i];
    }
    /* merged with the set in one pass; an empty value deletes */
    size_t cap = ls->n + k;
    label *out = malloc(cap * sizeof *out);
    if (!out)
        abort();
    size_t i = 0, j = 0, o = 0;
    while (i < ls->n || j < k) {
        int c = i == ls->n ? 1 : j == k ? -1 : strcmp(ls->v[i].name, t[j].l.name);
        if (c < 0) {
            out[o++] = ls->v[i++];
            continue;
        }
        label nl = t[j++].l;
        if (c == 0) {
            free(ls->v[i].name);
            free(ls->v[i].value);
            i++;
        }
        if (nl.value && *nl.value) {
            out[o++] = nl;
        } else {
            free(nl.name);
            free(nl.value);
        }
    }
    free(t);
    free(ls->v);
    ls->v = out;
    ls->n = o;
    ls->cap = cap;
}

void labelset_set_default(labelset *ls, const char *name, const char *value)
{
    if (!labelset_get(ls, name))
        labelset_set(ls, name, value);
}

void labelset_merge(labelset *dst, const labelset *src)
{
    for (size_t i = 0; i < src->n; i++)
        labelset_set(dst, src->v[i].name, src->v[i].value);
}

bool labelset_equal(const labelset *a, const labelset *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i].name, b->v[i].name) != 0 || strcmp(a->v[i].value, b->v[i].value) != 0)
            return false;
    return true;
}


uint64_t labelset_hash(const labelset *ls)
{
    static const unsigned char sep = 0xff;
    uint64_t h = FNV64_OFFSET;
    for (size_t i = 0; i < ls->n; i++) {
        h = fnv1a64(h, ls->v[i].name, strlen(ls->v[i].name));
        h = fnv1a64(h, &sep, 1);
        h = fnv1a64(h, ls->v[i].value, strlen(ls->v[i].value));
        h = fnv1a64(h, &sep, 1);
    }
    return h;
}

bool label_name_valid(const char *name)
{
    if (!name || !*name)
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (p != name && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

void labelset_write_json(strbuf *out, const labelset *ls)
{
    strbuf_putc(out, '{');
    for (size_t i = 0; i < ls->n; i++) {
        if (i)
            strbuf_putc(out, ',');
        strbuf_json_string(out, ls->v[i].name);
        strbuf_putc(out, ':');
        strbuf_json_string(out, ls->v[i].value);
    }
    strbuf_putc(out, '}');
}
