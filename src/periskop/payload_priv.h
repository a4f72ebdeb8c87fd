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

/* Byte span [start, end) of one element of a body's "aggregated_errors" (payload_scan.c). */
typedef struct payload_span {
    size_t start, end;
} payload_span;
/* Fills spans with the elements of the root object's "aggregated_errors" array, in order, and returns how
 * many (at most max), or -1 when the body does not have that plain shape. Finds, never validates. */
long payload_scan_aggregates(const char *body, size_t len, payload_span *spans, size_t max);

#endif
