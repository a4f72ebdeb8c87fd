/* targets_page: server-rendered HTML in the spirit of Prometheus' pages, usable at 10,000+ targets:
 *   GET /targets?scrapePool=JOB&health=up|down|unknown&search=TEXT&page=N
 *     per job a collapsible section with up/total, each target's endpoint, state, labels, last scrape,
 *     duration and error (at most TARGETS_PAGE_SIZE per job and page, with prev/next links); then the
 *     dropped targets (discovered labels, the rule that dropped them) and the failed ones with reasons.
 *   GET /service-discovery?scrapePool=JOB&page=N
 *     per job, discovered labels next to the resulting target labels (or "dropped").
 * No JavaScript. Thread-safe (reads the target manager under its read lock). Both pages are streamed:
 * written whole pools at a time, each piece under the read lock, never held while the client reads. */
#ifndef LOOKOUT_API_TARGETS_PAGE_H
#define LOOKOUT_API_TARGETS_PAGE_H
#include <stdbool.h>
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

/* The pages whole (what the handlers stream, concatenated). */
void targets_page_render(target_manager *tm, const targets_page_query *q, int64_t now_ms, strbuf *out);
void sd_page_render(target_manager *tm, const char *scrape_pool, long page, strbuf *out);

/* A page a piece at a time: _new writes its head into out (sd: /service-discovery with q's scrape_pool
 * and page, else /targets with q; q's strings are copied); each _fill appends whole pools, under the read
 * lock, until the piece holds at least TARGETS_PAGE_PIECE bytes, and returns 1 while more follows, 0 after
 * the page's end. */
#define TARGETS_PAGE_PIECE (32u << 10)
typedef struct targets_page_writer targets_page_writer;
targets_page_writer *targets_page_writer_new(target_manager *tm, bool sd, const targets_page_query *q,
                                             int64_t now_ms, strbuf *out);
int targets_page_fill(targets_page_writer *w, strbuf *out);
void targets_page_writer_free(targets_page_writer *w);
/* Registers /targets and /service-discovery; tm is borrowed. */
void targets_page_register(target_manager *tm, http_server *s);

#endif
