/* targets_api: Prometheus' target endpoints, wire-compatible:
 *   GET /api/v1/targets?state=active|dropped|any&scrapePool=JOB
 *   GET /api/v1/targets/relabel_steps?scrapePool=JOB&labels={...}   (Prometheus 3.8)
 *   GET /api/v1/scrape_pools
 * The render functions work without a socket (unit tests). Thread-safe: reads the target manager under
 * its read lock (for /api/v1/targets, one page at a time). */
#ifndef LOOKOUT_API_TARGETS_API_H
#define LOOKOUT_API_TARGETS_API_H
#include <stddef.h>

#include "http/server.h"
#include "scrape/targets.h"
#include "util/strbuf.h"

typedef struct targets_api {
    target_manager *tm;        /* borrowed */
    char listen_address[256];  /* for globalUrl (our own port) */
    char hostname[256];        /* os.Hostname() as Prometheus' default external URL */
} targets_api;

/* hostname NULL: gethostname(). */
void targets_api_init(targets_api *api, target_manager *tm, const char *listen_address, const char *hostname);
void targets_api_register(targets_api *api, http_server *s);

/* The response body of /api/v1/targets. state: NULL/""/"any"/"active"/"dropped" (case-insensitive;
 * anything else shows neither, as Prometheus). scrape_pool: NULL/"" = every pool.
 *
 * Streamed: targets_dump_new writes the head into out; each targets_dump_fill appends about a page (32 KiB)
 * under the manager's read lock (released before it returns, so a slow client never holds it) and
 * returns 1 while more follows, 0 after the end. Consistency while targets change between pages:
 *   - an active or dropped target that exists throughout the dump is listed exactly once (dropped ones
 *     counted as a multiset of discovered label sets: two identical ones throughout are listed twice);
 *   - one added or removed meanwhile is listed at most once;
 *   - pools in job order and active targets in display order (URL, then hash) as in one snapshot; a
 *     pool's dropped targets in the discovery order of the page that lists them;
 *   - droppedTargetCounts as they are when the last page is produced.
 * With no change between pages the body is the one a single read section would give. */
typedef struct targets_dump targets_dump;
targets_dump *targets_dump_new(targets_api *api, const char *state, const char *scrape_pool, strbuf *out);
int targets_dump_fill(targets_dump *d, strbuf *out);
void targets_dump_free(targets_dump *d);
/* The whole body at once (the dump run to its end). */
void targets_api_render(targets_api *api, const char *state, const char *scrape_pool, strbuf *out);
/* The response body of relabel_steps; -1 with err (the message of a bad_data error) when the pool or the
 * labels are missing or invalid. */
int targets_api_render_relabel_steps(targets_api *api, const char *scrape_pool, const char *labels_json,
                                     strbuf *out, char *err, size_t errlen);

/* Prometheus' getGlobalURL: a target on localhost gets this machine's host name (and, when it is our own
 * port, our scheme and host:port). Writes the URL to out; returns -1 with err when the URL's host cannot
 * be split (out then holds the URL unchanged). */
int targets_api_global_url(const char *url, const char *listen_address, const char *hostname, strbuf *out,
                           char *err, size_t errlen);

/* Relabel rule as Prometheus marshals relabel.Config to JSON. */
void targets_api_rule_json(strbuf *out, const relabel_rule *r);

#endif
