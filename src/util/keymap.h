/* keymap: an open-addressing hash map from a byte-string key to a pointer, used by the merge engine
 * and the memory store for (job, aggregation key) and (job, instance id) lookups at 10^6 entries.
 * The map does NOT own keys or values: the key bytes must stay valid while the entry exists (they
 * normally live inside the value). Linear probing with backward-shift deletion (no tombstones), so
 * lookups stay short after churn. Not thread-safe. */
#ifndef LOOKOUT_UTIL_KEYMAP_H
#define LOOKOUT_UTIL_KEYMAP_H
#include <stddef.h>
#include <stdint.h>

typedef struct keymap_slot {
    uint64_t hash; /* 0 = empty (real hashes are forced non-zero) */
    const char *key;
    size_t klen;
    void *value;
} keymap_slot;

typedef struct keymap {
    keymap_slot *slots;
    size_t cap; /* power of two or 0 */
    size_t n;
} keymap;

#define KEYMAP_INIT {NULL, 0, 0}

uint64_t keymap_hash(const void *key, size_t klen);
void keymap_free(keymap *m); /* frees the table only */
void *keymap_get(const keymap *m, const void *key, size_t klen);
/* Inserts or replaces; returns the previous value or NULL. */
void *keymap_put(keymap *m, const void *key, size_t klen, void *value);
/* Removes; returns the removed value or NULL. */
void *keymap_del(keymap *m, const void *key, size_t klen);
/* Iteration: for (size_t i = 0; i < m->cap; i++) if (m->slots[i].hash) ... (do not modify meanwhile). */

#endif
