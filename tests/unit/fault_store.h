/* fault_store: a store that forwards to a real one (the memory backend) and fails the operations a test
 * names, so the error paths of the API handlers (500 answers, self-exceptions, partial pages) run in
 * unit tests. Header-only, for tests.
 *
 *   fault_store *fs = fault_store_new(store_memory_new(NULL));
 *   fs->fail_get = true;         // every store_get answers -1 with "injected get failure"
 *   fs->get_not_found = true;    // every store_get answers STORE_NOT_FOUND (deleted between list and get)
 *   fs->fail_list_after = 1;     // the 2nd and later store_list calls fail (0: never; 1: all but the first)
 *   fs->fail_get_after = 250;    // the 251st and later store_get calls fail (a dump cut while streaming)
 *   store_close(&fs->base);      // closes the wrapped store too
 */
#ifndef LOOKOUT_TESTS_FAULT_STORE_H
#define LOOKOUT_TESTS_FAULT_STORE_H
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"

typedef struct fault_store {
    store base; /* first: a fault_store * is a store * */
    store *inner;
    bool fail_list, fail_get, get_not_found, fail_jobs, fail_set_status, fail_buckets;
    int fail_list_after; /* > 0: list calls after this many successful ones fail */
    int n_list;          /* list calls seen */
    int fail_get_after;  /* > 0: get calls after this many successful ones fail */
    int n_get;           /* get calls seen */
} fault_store;

static int fault_fail(const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "injected %s failure", what);
    return -1;
}

static int fs_apply(store *s, const merge_changeset *cs, int64_t now_ms, char *err, size_t errlen)
{
    return store_apply(((fault_store *)s)->inner, cs, now_ms, err, errlen);
}

static int fs_list(store *s, const store_query *q, store_page *out, char *err, size_t errlen)
{
    fault_store *f = (fault_store *)s;
    f->n_list++;
    if (f->fail_list || (f->fail_list_after > 0 && f->n_list > f->fail_list_after))
        return fault_fail("list", err, errlen);
    return store_list(f->inner, q, out, err, errlen);
}

/* Dumps (store_keys) read the key list at one instant; fail_list fails it too (it is the dump's list). */
static int fs_keys(store *s, const char *job, int status, store_sort sort, char ***out, size_t *n, char *err,
                   size_t errlen)
{
    fault_store *f = (fault_store *)s;
    if (f->fail_list)
        return fault_fail("keys", err, errlen);
    return store_keys(f->inner, job, status, sort, out, n, err, errlen);
}

static int fs_get(store *s, const char *job, const char *key, store_detail *out, char *err, size_t errlen)
{
    fault_store *f = (fault_store *)s;
    f->n_get++;
    if (f->get_not_found)
        return STORE_NOT_FOUND;
    if (f->fail_get || (f->fail_get_after > 0 && f->n_get > f->fail_get_after))
        return fault_fail("get", err, errlen);
    return store_get(f->inner, job, key, out, err, errlen);
}

static int fs_set_status(store *s, const char *job, const char *key, bool resolve, int64_t now_ms, char *err,
                         size_t errlen)
{
    fault_store *f = (fault_store *)s;
    if (f->fail_set_status)
        return fault_fail("set_status", err, errlen);
    return resolve ? store_resolve(f->inner, job, key, now_ms, err, errlen) : store_reopen(f->inner, job, key, err, errlen);
}

static int fs_jobs(store *s, store_job **out, size_t *n, char *err, size_t errlen)
{
    fault_store *f = (fault_store *)s;
    if (f->fail_jobs)
        return fault_fail("jobs", err, errlen);
    return store_jobs(f->inner, out, n, err, errlen);
}

static int fs_save_state(store *s, const merge_state *st, char *err, size_t errlen)
{
    return store_save_state(((fault_store *)s)->inner, st, err, errlen);
}

static int fs_load(store *s, merge_engine *e, char *err, size_t errlen)
{
    return store_load(((fault_store *)s)->inner, e, err, errlen);
}

static int fs_maintain(store *s, int64_t now_ms, char *err, size_t errlen)
{
    return store_maintain(((fault_store *)s)->inner, now_ms, err, errlen);
}

static int fs_buckets(store *s, const char *job, const char *key, int64_t since_ms, int64_t step_ms, uint64_t *out,
                      size_t n, char *err, size_t errlen)
{
    fault_store *f = (fault_store *)s;
    if (f->fail_buckets)
        return fault_fail("buckets", err, errlen);
    return store_buckets(f->inner, job, key, since_ms, step_ms, out, n, err, errlen);
}

static void fs_close(store *s)
{
    fault_store *f = (fault_store *)s;
    store_close(f->inner);
    free(f);
}

static const store_ops fault_store_ops = {
    .name = "fault",
    .apply = fs_apply,
    .list = fs_list,
    .get = fs_get,
    .keys = fs_keys,
    .set_status = fs_set_status,
    .jobs = fs_jobs,
    .save_state = fs_save_state,
    .load = fs_load,
    .maintain = fs_maintain,
    .close = fs_close,
    .buckets = fs_buckets,
};

static inline fault_store *fault_store_new(store *inner)
{
    fault_store *f = calloc(1, sizeof *f);
    if (!f)
        abort();
    f->base.ops = &fault_store_ops;
    f->inner = inner;
    return f;
}
#endif
