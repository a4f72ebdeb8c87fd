/* targets_page: server-rendered HTML in the spirit of Prometheus' pages, usable at 10,000+ targets:
 *   GET /targets?scrapePool=JOB&health=up|down|unknown&search=TEXT&page=N
 *     per job a collapsible section with up/total, each target's endpoint, state, labels, last scrape,
 *     duration and error (at most TARGETS_PAGE_SIZE per job and page, with prev/next links); then the
 *     dropped targets (discovered labels, the rule that dropped them) and the failed ones with reasons.
 *   GET /service-discovery?scrapePool=JOB&page=N
 *     per job, discovered labels next to the resulting target labels (or "dropped").
 * No JavaScript. Thread-safe (reads the target manager under its read lock). */
#ifndef LOOKOUT_API_TARGETS_PAGE_H
#define LOOKOUT_API_TARGETS_PAGE_H
#include <stdint.h>

#include "http/server.h"
#include "scrape/targets.h"

#define TARGETS_PAGE_SIZE 200

typedef struct targets_page_query {
    const char *scrape_pool; /* NULL/"" = all */
    const char *health;      /* NULL/"" = all */
    const char *search;      /* case-insensitive substring of a public label name=value or the URL */
    long page;               /* 1-based */
} targets_page_query;

void targets_page_render(target_manager *tm, const targets_page_query *q, int64_t now_ms, strbuf *out);
void sd_page_render(target_manager *tm, const char *scrape_pool, long page, strbuf *out);
/* Registers /targets and /service-discovery; tm is borrowed. */
void targets_page_register(target_manager *tm, http_server *s);

#endif
