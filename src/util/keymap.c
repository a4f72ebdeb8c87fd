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

/* Cyclic (i, j]: an entry at j whose home lies there must not move back to i (it would become unreachable). */
static int stays(size_t home, size_t i, size_t j)
{
    return i <= j ? (home > i && home <= j) : (home > i || home <= j);
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
    return keymap_get_hashed(m, key, klen, keymap_hash(key, klen));
}

void *keymap_get_hashed(const keymap *m, const void *key, size_t klen, uint64_t h)
{
    if (!m->n)
        return NULL;
    size_t i = find(m, key, klen, h);
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
    return keymap_put_hashed(m, key, klen, keymap_hash(key, klen), value);
}

void *keymap_put_hashed(keymap *m, const void *key, size_t klen, uint64_t h, void *value)
{
    if ((m->n + 1) * 4 > m->cap * 3) /* load factor <= 0.75 */
        grow(m);
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
    return keymap_del_hashed(m, key, klen, keymap_hash(key, klen));
}

void *keymap_del_hashed(keymap *m, const void *key, size_t klen, uint64_t h)
{
    if (!m->n)
        return NULL;
    size_t mask = m->cap - 1;
    size_t i = find(m, key, klen, h);
    if (!m->slots[i].hash)
        return NULL;
    void *v = m->slots[i].value;
    /* Backward-shift: move later entries of the probe run into the hole when that shortens them. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->slots[j].hash)
            break;
        if (!stays(m->slots[j].hash & mask, i, j)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    memset(&m->slots[i], 0, sizeof(keymap_slot));
    m->n--;
    return v;
}

/* ---- keymap64 ---- */

static size_t home64(uint64_t k, size_t mask)
{
    /* splitmix64's finaliser: keys are hashes already, but generations count up from 1 */
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k & mask;
}

void keymap64_free(keymap64 *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

static size_t find64(const keymap64 *m, uint64_t key)
{
    size_t mask = m->cap - 1, i = home64(key, mask);
    while (m->slots[i].value && m->slots[i].key != key)
        i = (i + 1) & mask;
    return i;
}

void *keymap64_get(const keymap64 *m, uint64_t key)
{
    if (!m->n)
        return NULL;
    return m->slots[find64(m, key)].value;
}

static void grow64(keymap64 *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16, ocap = m->cap;
    keymap64_slot *old = m->slots;
    m->slots = calloc(ncap, sizeof(keymap64_slot));
    if (!m->slots)
        abort();
    m->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].value)
            m->slots[find64(m, old[i].key)] = old[i];
    free(old);
}

void *keymap64_put(keymap64 *m, uint64_t key, void *value)
{
    if (!value)
        abort(); /* NULL marks an empty slot */
    if ((m->n + 1) * 4 > m->cap * 3) /* load factor <= 0.75 */
        grow64(m);
    keymap64_slot *s = &m->slots[find64(m, key)];
    void *prev = s->value;
    s->key = key;
    s->value = value;
    if (!prev)
        m->n++;
    return prev;
}

void *keymap64_del(keymap64 *m, uint64_t key)
{
    if (!m->n)
        return NULL;
    size_t mask = m->cap - 1, i = find64(m, key), j = i;
    void *v = m->slots[i].value;
    if (!v)
        return NULL;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->slots[j].value)
            break;
        if (!stays(home64(m->slots[j].key, mask), i, j)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i] = (keymap64_slot){0, NULL};
    m->n--;
    return v;
}
