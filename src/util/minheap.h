/* minheap: a binary min-heap of (key, item) with each item's position kept up to date, so an item can be
 * re-keyed or removed from the middle in O(log n). The scrape loop's start times use it (one entry per
 * target). Keys live in the entries, not behind the item pointers, so a sift compares within one array
 * instead of missing the cache on two items per level; a sift moves entries into a hole instead of
 * swapping. Not thread-safe; the heap owns neither the items nor their position fields. */
#ifndef LOOKOUT_UTIL_MINHEAP_H
#define LOOKOUT_UTIL_MINHEAP_H
#include <stddef.h>
#include <stdint.h>

typedef struct minheap_entry {
    int64_t key;
    void *item;
    size_t *pos; /* the item's own field holding its index in the heap, updated on every move */
} minheap_entry;

typedef struct minheap {
    minheap_entry *v;
    size_t n, cap;
} minheap;

#define MINHEAP_INIT {NULL, 0, 0}

void minheap_free(minheap *h); /* frees the array only */
/* Adds item with key; *pos receives its index and follows every later move. */
void minheap_push(minheap *h, int64_t key, void *item, size_t *pos);
/* Removes the entry at index i (an item's *pos). */
void minheap_remove(minheap *h, size_t i);
/* Gives the entry at index i a new key. */
void minheap_rekey(minheap *h, size_t i, int64_t key);
/* The entry with the smallest key (ties: any), or NULL when empty. Valid until the next change. */
static inline const minheap_entry *minheap_top(const minheap *h)
{
    return h->n ? &h->v[0] : NULL;
}

#endif
