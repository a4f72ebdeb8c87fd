/* fuzz_payload_reuse: two bodies of one source (split at the first "\n--\n"; without it, the input is the
 * second body and the first is the input with its first byte dropped), merged in order into two engines:
 * one parsing every body in full, one reusing what the first body held (ingest/agg_cache.c,
 * payload_parse_reuse). The second body must parse to the same result (or the same error text), and
 * merge into the same changes: any difference aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/agg_cache.h"
#include "ingest/ingest.h"
#include "store/merge.h"

#define JOB "j"
#define URL "http://fuzz/errors"

static void check(int ok)
{
    if (!ok)
        abort();
}

static int by_key(const void *a, const void *b)
{
    return strcmp(((const merge_change *)a)->key, ((const merge_change *)b)->key);
}

static void same_changes(merge_changeset *x, merge_changeset *y)
{
    check(x->n == y->n);
    if (x->n) { /* qsort(NULL, 0) is undefined */
        qsort(x->v, x->n, sizeof *x->v, by_key);
        qsort(y->v, y->n, sizeof *y->v, by_key);
    }
    for (size_t i = 0; i < x->n; i++) {
        const merge_change *a = &x->v[i], *b = &y->v[i];
        check(strcmp(a->key, b->key) == 0 && a->is_new == b->is_new && a->total_count == b->total_count);
        check(a->severity == b->severity && a->created_at_ms == b->created_at_ms);
        check(a->last_seen_ms == b->last_seen_ms && a->n_added == b->n_added && a->n_evicted == b->n_evicted);
        for (size_t j = 0; j < a->n_added; j++)
            check(strcmp(a->added[j]->uuid, b->added[j]->uuid) == 0);
        check(a->n_series == b->n_series);
        for (size_t j = 0; j < a->n_series; j++)
            check(a->series[j].delta == b->series[j].delta);
    }
    check(x->n_counts == y->n_counts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *sep = size >= 4 ? memmem(in, size, "\n--\n", 4) : NULL;
    const char *a, *b;
    size_t al, bl;
    if (sep) {
        a = in;
        al = (size_t)(sep - in);
        b = sep + 4;
        bl = size - al - 4;
    } else {
        if (!size)
            return 0;
        a = in + 1;
        al = size - 1;
        b = in;
        bl = size;
    }
    size_t max_occ = size % 2 ? 3 : 10;
    merge_engine *full = merge_new(NULL), *fast = merge_new(NULL);
    agg_cache *cache = agg_cache_new();
    merge_changeset cf, cr;
    merge_changeset_init(&cf);
    merge_changeset_init(&cr);
    char e1[512], e2[512];
    const char *bodies[2] = {a, b};
    size_t lens[2] = {al, bl};
    for (int step = 0; step < 2; step++) {
        payload_doc *d1 = payload_parse_limited(bodies[step], lens[step], URL, max_occ, e1, sizeof e1);
        payload_doc *d2 = agg_cache_parse(cache, fast, JOB, URL, bodies[step], lens[step], max_occ, true, e2, sizeof e2);
        check(!d1 == !d2);
        if (!d1) {
            check(strcmp(e1, e2) == 0);
            continue;
        }
        check(d1->n_aggregates == d2->n_aggregates && d1->skipped_aggregates == d2->skipped_aggregates &&
              d1->skipped_occurrences == d2->skipped_occurrences && strcmp(d1->first_problem, d2->first_problem) == 0);
        for (size_t i = 0; i < d1->n_aggregates; i++) {
            const payload_aggregate *x = &d1->aggregates[i], *y = &d2->aggregates[i];
            check(strcmp(x->key, y->key) == 0 && x->total_count == y->total_count && x->severity == y->severity &&
                  x->created_at_ms == y->created_at_ms);
            check(y->n_occurrences + y->known_occurrences >= x->n_occurrences || y->reused);
        }
        ingest_merge_doc(full, JOB, URL, NULL, NULL, d1, false, 0, 1709377200000LL + step * 15000, &cf);
        ingest_merge_doc(fast, JOB, URL, NULL, NULL, d2, false, 0, 1709377200000LL + step * 15000, &cr);
        agg_cache_remember(cache, JOB, URL, d2);
        same_changes(&cf, &cr);
        merge_changeset_clear(&cf);
        merge_changeset_clear(&cr);
        payload_free(d1);
        payload_free(d2);
    }
    merge_changeset_free(&cf);
    merge_changeset_free(&cr);
    agg_cache_free(cache);
    merge_free(full);
    merge_free(fast);
    return 0;
}
