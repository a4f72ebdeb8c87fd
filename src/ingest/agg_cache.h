/* agg_cache: per scraped source (job, URL), the aggregates of its last merged body by the fingerprint of
 * their JSON text, so that when a body changes only the aggregates that changed are parsed
 * (payload_parse_reuse): a client that raises one new exception rewrites one aggregate of its payload,
 * and the others are byte-identical.
 *
 * Writer thread only. Bounded: at most PAYLOAD_REUSE_MAX aggregates per source, and a source is forgotten
 * with its target (or all at once when error_relabel_configs change, as the body hashes are). */
#ifndef LOOKOUT_INGEST_AGG_CACHE_H
#define LOOKOUT_INGEST_AGG_CACHE_H
#include <stdbool.h>

#include "periskop/payload.h"
#include "store/merge.h"

typedef struct agg_cache agg_cache;

agg_cache *agg_cache_new(void);
void agg_cache_free(agg_cache *c);
/* Fills *out with the lookup of source (job, url). False (lookup NULL: only fingerprints) when it
 * remembers nothing. */
bool agg_cache_reuse(agg_cache *c, const char *job, const char *url, payload_reuse *out);
/* Parses a scraped body of source (job, url) for merging into e: with reuse, aggregates byte-identical
 * to what the source's last merged body held are reused (payload_parse_reuse) when the engine still
 * holds what they stand for (merge_reuse_ok), else the body is parsed in full. reuse false: in full,
 * without fingerprints (error_relabel_configs apply: their result depends on the occurrences). */
payload_doc *agg_cache_parse(agg_cache *c, const merge_engine *e, const char *job, const char *url, const char *body,
                             size_t len, size_t max_occurrences, bool reuse, char *err, size_t errlen);
/* Replaces what source (job, url) remembers with the aggregates of doc that have a raw_hash; a federated
 * document (grouped by origin job) is never remembered. */
void agg_cache_remember(agg_cache *c, const char *job, const char *url, const payload_doc *doc);
void agg_cache_forget(agg_cache *c, const char *job, const char *url);
/* Aggregates remembered over every source. */
size_t agg_cache_entries(const agg_cache *c);
void agg_cache_clear(agg_cache *c);

#endif
