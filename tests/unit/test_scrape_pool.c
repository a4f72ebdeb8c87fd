/* scrape_pool: the scrape loop's idle easy handles and receive buffers. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "scrape/scrape_pool.h"

Test(scrape_pool, buffers_are_reused_bounded_and_huge_ones_freed)
{
    scrape_pool p = {0};
    size_t cap = 0;
    char *b = scrape_pool_get_buf(&p, &cap);
    cr_assert_eq(cap, SCRAPE_POOL_MIN_BUF);
    char *grown = realloc(b, 65536); /* the scrape grew it */
    cr_assert_not_null(grown);
    scrape_pool_put_buf(&p, grown, 65536);
    size_t cap2 = 0;
    char *again = scrape_pool_get_buf(&p, &cap2);
    cr_assert_eq(again, grown);
    cr_assert_eq(cap2, 65536);
    scrape_pool_put_buf(&p, again, cap2);

    /* a buffer that grew past the limit (one huge body) is not kept */
    char *huge = malloc(SCRAPE_POOL_MAX_BUF + 1);
    scrape_pool_put_buf(&p, huge, SCRAPE_POOL_MAX_BUF + 1);
    cr_assert_eq(p.n_buf, 1);

    /* at most SCRAPE_POOL_MAX idle buffers */
    for (int i = 0; i < SCRAPE_POOL_MAX + 5; i++)
        scrape_pool_put_buf(&p, malloc(16), 16);
    cr_assert_eq(p.n_buf, SCRAPE_POOL_MAX);
    scrape_pool_free(&p);
    cr_assert_eq(p.n_buf, 0);
}

Test(scrape_pool, easy_handles_come_back_reset)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    scrape_pool p = {0};
    CURL *e = scrape_pool_get_easy(&p);
    static int marker;
    curl_easy_setopt(e, CURLOPT_PRIVATE, &marker);
    scrape_pool_put_easy(&p, e);
    cr_assert_eq(p.n_easy, 1);
    CURL *e2 = scrape_pool_get_easy(&p);
    cr_assert_eq(e2, e);
    char *priv = (char *)&marker;
    curl_easy_getinfo(e2, CURLINFO_PRIVATE, &priv);
    cr_assert_null(priv, "options of the previous scrape survived");
    scrape_pool_put_easy(&p, e2);
    scrape_pool_put_easy(&p, NULL);
    cr_assert_eq(p.n_easy, 1);
    scrape_pool_free(&p);
    cr_assert_eq(p.n_easy, 0);
    curl_global_cleanup();
}
