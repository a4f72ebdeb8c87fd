/* scrape_pool: see scrape_pool.h. */
#include "scrape/scrape_pool.h"

#include <stdlib.h>

CURL *scrape_pool_get_easy(scrape_pool *p)
{
    if (p->n_easy)
        return p->easy[--p->n_easy];
    CURL *e = curl_easy_init();
    if (!e)
        abort();
    return e;
}

void scrape_pool_put_easy(scrape_pool *p, CURL *e)
{
    if (!e)
        return;
    if (p->n_easy == SCRAPE_POOL_MAX) {
        curl_easy_cleanup(e);
        return;
    }
    curl_easy_reset(e); /* no option (credentials, headers, private pointer) outlives the scrape */
    p->easy[p->n_easy++] = e;
}

char *scrape_pool_get_buf(scrape_pool *p, size_t *cap)
{
    if (p->n_buf) {
        p->n_buf--;
        *cap = p->cap[p->n_buf];
        return p->buf[p->n_buf];
    }
    char *b = malloc(SCRAPE_POOL_MIN_BUF);
    if (!b)
        abort();
    *cap = SCRAPE_POOL_MIN_BUF;
    return b;
}

void scrape_pool_put_buf(scrape_pool *p, char *buf, size_t cap)
{
    if (!buf)
        return;
    if (p->n_buf == SCRAPE_POOL_MAX || cap > SCRAPE_POOL_MAX_BUF) {
        free(buf);
        return;
    }
    p->buf[p->n_buf] = buf;
    p->cap[p->n_buf++] = cap;
}

void scrape_pool_free(scrape_pool *p)
{
    while (p->n_easy)
        curl_easy_cleanup(p->easy[--p->n_easy]);
    while (p->n_buf)
        free(p->buf[--p->n_buf]);
}
