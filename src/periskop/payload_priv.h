/* payload_priv: helpers shared by payload.c (model, writers) and payload_parse.c (the streaming parser).
 * Not for use outside src/periskop/. */
#ifndef LOOKOUT_PERISKOP_PAYLOAD_PRIV_H
#define LOOKOUT_PERISKOP_PAYLOAD_PRIV_H
#include "periskop/payload.h"

/* Frees everything an error owns (its strings, stack lines, cause chain) and zeroes it; NULL members ok. */
void payload_error_clear(payload_error *e);
/* Frees an http context; NULL is a no-op. */
void payload_http_free(payload_http *h);
/* Frees what an aggregate owns (key, origin job, one reference per occurrence). */
void payload_aggregate_clear(payload_aggregate *a);
/* The dedup identity of a fully built occurrence (see payload_occurrence.dedup_hash). */
uint64_t payload_occurrence_hash(const payload_occurrence *o);
/* A zeroed occurrence with one reference. */
payload_occurrence *payload_occurrence_alloc(void);

#endif
