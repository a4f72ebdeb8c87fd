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
/* The elements of the "latest_errors" array of the aggregate at span (at most max) and the content of its
 * "aggregation_key" string (as sent); -1 when either has no plain shape (the key written with escapes) or
 * the aggregate has no "created_at" string. */
long payload_scan_occurrences(const char *body, payload_span agg, payload_span *spans, size_t max, payload_span *key);

/* The plan of a reusing parse (payload_parse_reuse): the text to parse (the body, or a copy in which a
 * placeholder 0 stands for each reused aggregate and each known occurrence), and per element of the
 * aggregate list its span in that text and the fingerprint of its bytes in the body. */
typedef struct reuse_occ {
    payload_span span; /* in the text */
    uint64_t hash;
    bool known; /* the previous body's aggregate of the same key held it: a placeholder stands for it */
} reuse_occ;
typedef struct reuse_elem {
    payload_span span; /* in the text */
    uint64_t hash;
    payload_aggregate found; /* key non-NULL: reused (borrowed from the lookup), a placeholder stands for it */
    reuse_occ *occ;          /* its occurrences; NULL when they have no plain shape (then none is known) */
    size_t n_occ;
} reuse_elem;
typedef struct reuse_plan {
    const char *text;
    size_t len;
    char *owned; /* text, when it is a copy */
    reuse_elem *el;
    size_t n;
    size_t placeholders; /* in the text */
} reuse_plan;
/* Scans and fingerprints body and asks reuse what it knows (lookup, occurrences may be NULL). False when
 * the body has no plain shape: parse it in full, without fingerprints. max_occ: the parse's limit (a list
 * longer than that is never thinned, the parse keeps its newest). */
bool payload_reuse_plan(const char *body, size_t len, const payload_reuse *reuse, size_t max_occ, reuse_plan *p);
void payload_reuse_plan_free(reuse_plan *p);

#endif
