/* util/minheap: every operation against a reference (a plain array scanned for its minimum), with the
 * items' position fields checked after each step. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "util/minheap.h"

typedef struct item {
    int64_t key;
    size_t pos;
    bool in;
} item;

#define N 300

static void check(const minheap *h, item *items, size_t n_items)
{
    size_t live = 0;
    int64_t min = INT64_MAX;
    for (size_t i = 0; i < n_items; i++)
        if (items[i].in) {
            live++;
            min = items[i].key < min ? items[i].key : min;
            cr_assert_lt(items[i].pos, h->n);
            cr_assert_eq(h->v[items[i].pos].item, &items[i], "item %zu: position field not followed", i);
            cr_assert_eq(h->v[items[i].pos].key, items[i].key);
        }
    cr_assert_eq(h->n, live);
    for (size_t i = 1; i < h->n; i++)
        cr_assert_leq(h->v[(i - 1) / 2].key, h->v[i].key, "heap order broken at %zu", i);
    if (live)
        cr_assert_eq(minheap_top(h)->key, min);
    else
        cr_assert_null(minheap_top(h));
}

Test(minheap, random_operations_match_a_reference)
{
    item items[N] = {0};
    minheap h = MINHEAP_INIT;
    srand(7);
    for (int step = 0; step < 20000; step++) {
        size_t i = (size_t)rand() % N;
        int64_t key = rand() % 1000 - 500;
        int op = rand() % 3;
        if (!items[i].in) {
            items[i].key = key;
            items[i].in = true;
            minheap_push(&h, key, &items[i], &items[i].pos);
        } else if (op == 0) {
            minheap_remove(&h, items[i].pos);
            items[i].in = false;
        } else {
            items[i].key = key;
            minheap_rekey(&h, items[i].pos, key);
        }
        check(&h, items, N);
    }
    minheap_free(&h);
}

/* The case a removal from the middle must handle: the last entry moved into the hole is smaller than the
 * hole's parent (it came from the other subtree), so it has to go up. */
Test(minheap, removal_moves_the_last_entry_up)
{
    item it[7] = {{.key = 1}, {.key = 10}, {.key = 2}, {.key = 11}, {.key = 12}, {.key = 3}, {.key = 4}};
    minheap h = MINHEAP_INIT;
    for (int i = 0; i < 7; i++) {
        it[i].in = true;
        minheap_push(&h, it[i].key, &it[i], &it[i].pos);
    }
    /* 1 / (10: 11 12) (2: 3 4): removing 11 moves 4 under 10, where it must rise above 10 */
    minheap_remove(&h, it[3].pos);
    it[3].in = false;
    check(&h, it, 7);
    cr_assert_eq(h.v[1].key, 4);
    int64_t order[6];
    for (int k = 0; k < 6; k++) {
        const minheap_entry *e = minheap_top(&h);
        order[k] = e->key;
        item *x = e->item;
        minheap_remove(&h, x->pos);
        x->in = false;
        check(&h, it, 7);
    }
    int64_t want[6] = {1, 2, 3, 4, 10, 12};
    cr_assert_arr_eq(order, want, sizeof want);
    minheap_remove(&h, 0); /* out of range: nothing */
    minheap_free(&h);
}
