/* keymap: see keymap.h. */
#include "util/keymap.h"

#include <stdlib.h>
#include <string.h>

#include "util/hash.h"

uint64_t keymap_hash(const void *key, size_t klen)
{
    uint64_t h = fnv1a64(FNV64_OFFSET, key, klen);
    /* FNV's low bits mix poorly for short keys; finalise (splitmix64) so masking works. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h ? h : 1;
}

void keymap_free(keymap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

static size_t find(const keymap *m, const void *key, size_t klen, uint64_t h)
{
    size_t mask = m->cap - 1, i = h & mask;
    for (;;) {
        keymap_slot *s = &m->slots[i];
        if (!s->hash)
            return i;
        if (s->hash == h && s->klen == klen && memcmp(s->key, key, klen) == 0)
            return i;
        i = (i + 1) & mask;
    }
}

void *keymap_get(const keymap *m, const void *key, size_t klen)
{
    if (!m->n)
        return NULL;
    size_t i = find(m, key, klen, keymap_hash(key, klen));
    return m->slots[i].hash ? m->slots[i].value : NULL;
}

static void grow(keymap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    keymap_slot *old = m->slots;
    size_t ocap = m->cap;
    m->slots = calloc(ncap, sizeof(keymap_slot));
    if (!m->slots)
        abort();
    m->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i].hash)
            continue;
        size_t j = old[i].hash & (ncap - 1);
        while (m->slots[j].hash)
            j = (j + 1) & (ncap - 1);
        m->slots[j] = old[i];
    }
    free(old);
}

void *keymap_put(keymap *m, const void *key, size_t klen, void *value)
{
    if ((m->n + 1) * 4 > m->cap * 3) /* load factor <= 0.75 */
        grow(m);
    uint64_t h = keymap_hash(key, klen);
    size_t i = find(m, key, klen, h);
    keymap_slot *s = &m->slots[i];
    if (s->hash) {
        void *prev = s->value;
        s->key = key; /* the new value owns the key bytes now */
        s->value = value;
        return prev;
    }
    s->hash = h;
    s->key = key;
    s->klen = klen;
    s->value = value;
    m->n++;
    return NULL;
}

void *keymap_del(keymap *m, const void *key, size_t klen)
{
    if (!m->n)
        return NULL;
    size_t mask = m->cap - 1;
    size_t i = find(m, key, klen, keymap_hash(key, klen));
    if (!m->slots[i].hash)
        return NULL;
    void *v = m->slots[i].value;
    /* Backward-shift: move later entries of the probe run into the hole when that shortens them. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->slots[j].hash)
            break;
        size_t home = m->slots[j].hash & mask;
        /* Entry at j may move to i if its home is not in the cyclic range (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    memset(&m->slots[i], 0, sizeof(keymap_slot));
    m->n--;
    return v;
}
