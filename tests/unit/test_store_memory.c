/* The store suite (store_suite.h) against the memory backend. */
#include <stdbool.h>

#include "store/store.h"

#define SUITE mem
#define SUITE_PERSISTENT 0
static store *suite_open(const store_options *o, bool fresh)
{
    (void)fresh;
    return store_memory_new(o);
}

#include "store_suite.h"

/* ---- memory backend only: the hot array, interned jobs and the bounded page heap ---- */

/* Pages under every sort, with a text filter and a job filter, equal a full sort of the matches. */
SUITE_TEST(paging_with_filters_equals_full_sort)
{
    static char body[400000];
    for (int j = 0; j < 2; j++) {
        size_t off = (size_t)snprintf(body, sizeof(body), "{\"target_uuid\":\"t%d\",\"aggregated_errors\":[", j);
        for (int i = 0; i < 400; i++)
            off += (size_t)snprintf(body + off, sizeof(body) - off,
                                    "%s{\"aggregation_key\":\"key%03d\",\"total_count\":%d,\"created_at\":"
                                    "\"2024-03-01T10:%02d:00Z\",\"latest_errors\":[{\"error\":{\"class\":\"C\","
                                    "\"message\":\"%s %s\"},\"uuid\":\"u%d\",\"timestamp\":\"2024-03-02T10:%02d:00Z\"}]}",
                                    i ? "," : "", i, 1 + i % 5, i % 3, i % 3 ? "Alpha" : "beta",
                                    i % 7 ? "gamma" : "delta", i, i % 11);
        snprintf(body + off, sizeof(body) - off, "]}");
        feed_raw(j ? "web" : "api", j ? "http://prod-w" : "http://prod-a", T0, body);
    }
    const char *qs[] = {NULL, "alpha", "ALPHA gamma", "delta beta", "nothing"};
    size_t want[] = {400, 266, 228, 20, 0};
    for (size_t qi = 0; qi < 5; qi++)
        for (int sort = 0; sort <= STORE_SORT_FIRST_SEEN; sort++) {
            store_page all = list(Q(.job = "api", .q = qs[qi], .q_all_words = true, .sort = (store_sort)sort,
                                    .limit = 1000));
            cr_assert_eq(all.total, want[qi], "q=%s: %lu", qs[qi], (unsigned long)all.total);
            cr_assert_eq(all.n, want[qi]);
            cr_assert_null(all.next_cursor);
            for (size_t i = 0; i < all.n; i++) {
                cr_assert_str_eq(all.v[i].job, "api");
                if (i)
                    cr_assert_lt(store_row_cmp((store_sort)sort, store_sort_value((store_sort)sort, &all.v[i - 1]),
                                               all.v[i - 1].job, all.v[i - 1].key,
                                               store_sort_value((store_sort)sort, &all.v[i]), all.v[i].job,
                                               all.v[i].key),
                                 0);
            }
            size_t limits[] = {1, 7, want[qi] ? want[qi] : 1};
            for (size_t li = 0; li < 3; li++) {
                char *cursor = NULL;
                size_t at = 0;
                do {
                    store_page p = list(Q(.job = "api", .q = qs[qi], .q_all_words = true, .sort = (store_sort)sort,
                                          .limit = limits[li], .cursor = cursor));
                    cr_assert_eq(p.total, want[qi]);
                    for (size_t i = 0; i < p.n; i++, at++)
                        cr_assert_str_eq(p.v[i].key, all.v[at].key, "q=%s sort=%d limit=%zu row %zu", qs[qi], sort,
                                         limits[li], at);
                    free(cursor);
                    cursor = p.next_cursor ? strdup(p.next_cursor) : NULL;
                    /* no next page when exactly `limit` rows were left */
                    cr_assert(cursor || at == all.n);
                    store_page_free(&p);
                } while (cursor);
                cr_assert_eq(at, all.n);
            }
            store_page_free(&all);
        }
}

SUITE_TEST(unknown_job_and_status_changes_seen_by_lists)
{
    seed();
    store_page p = list(Q(.job = "nope"));
    cr_assert_eq(p.total, 0);
    cr_assert_eq(p.n, 0);
    store_page_free(&p);
    p = list(Q(.job = "ap")); /* a prefix of a job is another job */
    cr_assert_eq(p.total, 0);
    store_page_free(&p);
    cr_assert_eq(store_resolve(S, "api", "alpha", T0, err, sizeof(err)), 0);
    p = list(Q(.job = "api", .status = STORE_QUERY_UNRESOLVED));
    expect_keys(&p, "gamma,beta");
    store_page_free(&p);
    p = list(Q(.status = STORE_RESOLVED, .q = "refused"));
    expect_keys(&p, "alpha");
    store_page_free(&p);
    cr_assert_eq(store_reopen(S, "api", "alpha", err, sizeof(err)), 0);
    p = list(Q(.status = STORE_RESOLVED));
    cr_assert_eq(p.total, 0);
    store_page_free(&p);
}
