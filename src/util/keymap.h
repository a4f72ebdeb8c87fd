/* keymap: lookout's hash map. Two flavours with the same design:
 *   keymap   - byte-string key -> pointer (merge engine, memory store, ingest, scrape loop, SD manager,
 *              string interning): (job, aggregation key), (job, instance id), ... at 10^6 entries;
 *   keymap64 - 64-bit key -> non-NULL pointer (the target manager's tables, keyed by a target hash or a
 *              group generation).
 * Open addressing, linear probing, load factor <= 0.75, backward-shift deletion (no tombstones), so
 * lookups stay short after churn. The maps do NOT own keys or values: a keymap's key bytes must stay valid
 * while the entry exists (they normally live inside the value). Not thread-safe.
 * Iteration: for (size_t i = 0; i < m->cap; i++) if (slot i is used) ...; do not put or delete meanwhile
 * (a deletion may shift a later entry into a slot already visited). */
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
/* The same with h = keymap_hash(key, klen) computed by the caller, for callers that do a lookup and then
 * an insert, or keep the hash with the entry (strtab: measured in bench/strtab_bench.c). */
void *keymap_get_hashed(const keymap *m, const void *key, size_t klen, uint64_t h);
void *keymap_put_hashed(keymap *m, const void *key, size_t klen, uint64_t h, void *value);
void *keymap_del_hashed(keymap *m, const void *key, size_t klen, uint64_t h);
/* Iteration: for (size_t i = 0; i < m->cap; i++) if (m->slots[i].hash) ... (do not modify meanwhile). */

typedef struct keymap64_slot {
    uint64_t key;
    void *value; /* NULL = empty */
} keymap64_slot;

typedef struct keymap64 {
    keymap64_slot *slots;
    size_t cap; /* power of two or 0 */
    size_t n;
} keymap64;

#define KEYMAP64_INIT {NULL, 0, 0}

void keymap64_free(keymap64 *m); /* frees the table only */
void *keymap64_get(const keymap64 *m, uint64_t key);
/* Inserts or replaces (value must not be NULL); returns the previous value or NULL. */
void *keymap64_put(keymap64 *m, uint64_t key, void *value);
/* Removes; returns the removed value or NULL. */
void *keymap64_del(keymap64 *m, uint64_t key);
/* Iteration: for (size_t i = 0; i < m->cap; i++) if (m->slots[i].value) ... (do not modify meanwhile). */

#endif
