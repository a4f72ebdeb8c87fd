/* strtab: see strtab.h. Chained hash table; an entry is its header and the string in one allocation, so
 * a string's entry is found from its address. */
#include "util/strtab.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"
#include "util/xalloc.h"

struct istr {
    struct istr *next;
    uint64_t hash;
    uint32_t refs;
    char s[];
};

static void strtab_grow(strtab *t, size_t cap)
{
    istr **nb = xcalloc(cap, sizeof *nb);
    for (size_t i = 0; i < t->cap; i++)
        for (istr *e = t->b[i], *next; e; e = next) {
            next = e->next;
            e->next = nb[e->hash & (cap - 1)];
            nb[e->hash & (cap - 1)] = e;
        }
    free(t->b);
    t->b = nb;
    t->cap = cap;
}

const char *strtab_get(strtab *t, const char *s)
{
    size_t len = strlen(s);
    uint64_t h = fnv1a64(FNV64_OFFSET, s, len);
    if (!t->cap)
        strtab_grow(t, 256);
    for (istr *e = t->b[h & (t->cap - 1)]; e; e = e->next)
        if (e->hash == h && strcmp(e->s, s) == 0) {
            e->refs++;
            return e->s;
        }
    istr *e = malloc(sizeof *e + len + 1);
    if (!e)
        abort();
    e->hash = h;
    e->refs = 1;
    memcpy(e->s, s, len + 1);
    e->next = t->b[h & (t->cap - 1)];
    t->b[h & (t->cap - 1)] = e;
    if (++t->n > t->cap)
        strtab_grow(t, t->cap * 2);
    return e->s;
}

void strtab_put(strtab *t, const char *s)
{
    istr *e = (istr *)(s - offsetof(istr, s));
    if (--e->refs)
        return;
    for (istr **pp = &t->b[e->hash & (t->cap - 1)]; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    free(e);
    t->n--;
}

void strtab_free(strtab *t)
{
    for (size_t i = 0; i < t->cap; i++)
        for (istr *e = t->b[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(t->b);
}
