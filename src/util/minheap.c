/* minheap: see minheap.h. */
#include "util/minheap.h"

#include <stdlib.h>

static inline void put(minheap *h, size_t i, minheap_entry e)
{
    h->v[i] = e;
    *e.pos = i;
}

static void sift_up(minheap *h, size_t i)
{
    minheap_entry e = h->v[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->v[p].key <= e.key)
            break;
        put(h, i, h->v[p]);
        i = p;
    }
    put(h, i, e);
}

static void sift_down(minheap *h, size_t i)
{
    minheap_entry e = h->v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1].key < h->v[c].key)
            c++;
        if (e.key <= h->v[c].key)
            break;
        put(h, i, h->v[c]);
        i = c;
    }
    put(h, i, e);
}

void minheap_free(minheap *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

void minheap_push(minheap *h, int64_t key, void *item, size_t *pos)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->v = realloc(h->v, h->cap * sizeof *h->v);
        if (!h->v)
            abort();
    }
    put(h, h->n++, (minheap_entry){key, item, pos});
    sift_up(h, h->n - 1);
}

void minheap_remove(minheap *h, size_t i)
{
    if (i >= h->n)
        return;
    h->n--;
    if (i == h->n)
        return;
    size_t *moved = h->v[h->n].pos;
    put(h, i, h->v[h->n]);
    sift_down(h, i); /* the entry from the end may belong below the hole... */
    sift_up(h, *moved); /* ...or above it (the hole was in another subtree) */
}

void minheap_rekey(minheap *h, size_t i, int64_t key)
{
    if (i >= h->n)
        return;
    int64_t old = h->v[i].key;
    h->v[i].key = key;
    if (key < old)
        sift_up(h, i);
    else
        sift_down(h, i);
}
