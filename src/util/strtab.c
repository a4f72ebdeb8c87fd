/* strtab: see strtab.h. A keymap from the string to its entry; an entry is its header and the string in
 * one allocation, so a string's entry is found from its address, and it keeps the string's hash so a
 * release does not hash again.
 *
 * Measured (bench/strtab_bench.c, 20,000 targets x 20 strings, callgrind): the interning calls cost about
 * 125 M instructions here against 88 M with the former chained table of its own, i.e. ~45 instructions
 * more per get or put, ~1.9 k per target - about 2.5% of what building one target costs (relabel_bench:
 * ~77 k instructions per target). Too little to keep a second hash table. */
#include "util/strtab.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

struct istr {
    uint64_t hash; /* keymap_hash of s: a release does not hash the string again */
    uint32_t refs;
    uint32_t len;
    char s[];
};

const char *strtab_get(strtab *t, const char *s)
{
    size_t len = strlen(s);
    uint64_t h = keymap_hash(s, len);
    istr *e = keymap_get_hashed(&t->map, s, len, h);
    if (e) {
        e->refs++;
        return e->s;
    }
    if (len > UINT32_MAX)
        abort();
    e = xmalloc(sizeof *e + len + 1);
    e->hash = h;
    e->refs = 1;
    e->len = (uint32_t)len;
    memcpy(e->s, s, len + 1);
    keymap_put_hashed(&t->map, e->s, len, h, e);
    t->n++;
    return e->s;
}

void strtab_put(strtab *t, const char *s)
{
    istr *e = (istr *)(s - offsetof(istr, s));
    if (--e->refs)
        return;
    keymap_del_hashed(&t->map, e->s, e->len, e->hash);
    free(e);
    t->n--;
}

void strtab_free(strtab *t)
{
    for (size_t i = 0; i < t->map.cap; i++)
        if (t->map.slots[i].hash)
            free(t->map.slots[i].value);
    keymap_free(&t->map);
    t->n = 0;
}
