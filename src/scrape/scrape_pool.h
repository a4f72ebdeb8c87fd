/* scrape_pool: the scrape loop's idle curl easy handles and receive buffers, so that a scrape allocates
 * neither in the common case (curl_easy_init + cleanup and a growing 16 KB -> 32 KB buffer per scrape
 * were a large share of an unchanged scrape's cost). Bounded: at most SCRAPE_POOL_MAX of each are kept
 * idle, and buffers that grew past SCRAPE_POOL_MAX_BUF (one huge body) are freed rather than kept.
 * A handle comes back curl_easy_reset (options cleared; the multi handle keeps the connections).
 * Threading: the scrape loop thread only. */
#ifndef LOOKOUT_SCRAPE_SCRAPE_POOL_H
#define LOOKOUT_SCRAPE_SCRAPE_POOL_H
#include <stddef.h>

#include <curl/curl.h>

#define SCRAPE_POOL_MAX 64
#define SCRAPE_POOL_MAX_BUF (1024 * 1024)
#define SCRAPE_POOL_MIN_BUF 32768 /* a typical Periskop payload (~20-25 KB) fits without growing */

typedef struct scrape_pool {
    CURL *easy[SCRAPE_POOL_MAX];
    size_t n_easy;
    char *buf[SCRAPE_POOL_MAX];
    size_t cap[SCRAPE_POOL_MAX];
    size_t n_buf;
} scrape_pool;

/* A fresh (or reset) easy handle; aborts when curl cannot make one. */
CURL *scrape_pool_get_easy(scrape_pool *p);
/* Takes e back (it must not be in a multi handle). NULL is ignored. */
void scrape_pool_put_easy(scrape_pool *p, CURL *e);
/* A buffer of at least SCRAPE_POOL_MIN_BUF bytes; *cap receives its size. */
char *scrape_pool_get_buf(scrape_pool *p, size_t *cap);
/* Takes buf (of cap bytes) back, or frees it. NULL is ignored. */
void scrape_pool_put_buf(scrape_pool *p, char *buf, size_t cap);
/* Frees everything idle; the pool is empty afterwards. */
void scrape_pool_free(scrape_pool *p);

#endif
