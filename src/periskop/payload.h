/* payload: parser for the Periskop client wire format (the schema of the Periskop server's
 * scraper/models.go, which every client library emits) into immutable, owned structures, and serializers
 * of an occurrence back to JSON.
 *
 * Leniency is Periskop's, made finer-grained: unknown fields are ignored, missing fields and JSON nulls
 * take defaults, target_uuid and created_at are optional. Where Periskop (Go encoding/json) fails the
 * whole target on one bad value, we skip only the bad occurrence or aggregate and count it, so one
 * broken record does not hide the rest. Only a body that is not JSON, not an object, or whose
 * aggregated_errors is not an array fails entirely.
 *
 * Timestamps: RFC 3339 with or without fraction, with Z or a numeric offset (Go RFC3339Nano, Python
 * isoformat+"Z", Ruby iso8601, Scala ".SSSXXX"); kept as Unix milliseconds (fraction truncated).
 *
 * Parsing streams (payload_parse.c, yajl): structures are built as tokens arrive, values nobody reads are
 * skipped, so memory follows what is kept, not the body's shape.
 *
 * Occurrences are reference-counted (atomic) so the merge engine and store backends can share samples
 * across threads without copying; they are never modified after parsing. Everything else is owned by
 * the payload_doc and freed with payload_free. */
#ifndef LOOKOUT_PERISKOP_PAYLOAD_H
#define LOOKOUT_PERISKOP_PAYLOAD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"

/* Order matters: a larger value is more severe. */
typedef enum payload_severity { PAYLOAD_INFO = 0, PAYLOAD_WARNING = 1, PAYLOAD_ERROR = 2 } payload_severity;

/* A missing or unparseable-but-optional timestamp (created_at absent). */
#define PAYLOAD_TS_NONE INT64_MIN

typedef struct payload_error {
    char *class_name; /* "" when absent (Scala addMessage) */
    char *message;    /* "" when absent */
    char **stacktrace; /* lines in order */
    size_t n_stacktrace;
    /* NULL, or the one allocation the stacktrace lines point into (the parser packs them: a line costs
     * its bytes and a pointer, not a heap block each). payload_error_clear frees whichever applies. */
    char *stack_block;
    struct payload_error *cause; /* NULL or the next link of the chain */
} payload_error;

typedef struct payload_header {
    char *name;
    char *value;
} payload_header;

typedef struct payload_http {
    char *method; /* "" when absent */
    char *url;
    payload_header *headers; /* in the order the client sent them */
    size_t n_headers;
    char *body; /* "" when absent or null */
} payload_http;

typedef struct payload_occurrence {
    int refs; /* atomic; use payload_occurrence_ref/unref */
    payload_error error;
    char *uuid; /* "" when absent */
    int64_t timestamp_ms; /* PAYLOAD_TS_NONE when absent */
    payload_severity severity;
    payload_http *http; /* NULL when absent or null */
    /* Identity for deduplication: FNV-1a 64 of the uuid, or of the content and timestamp when the uuid
     * is empty. Never 0. */
    uint64_t dedup_hash;
} payload_occurrence;

typedef struct payload_aggregate {
    char *key;
    uint64_t total_count;
    payload_severity severity;
    int64_t created_at_ms; /* PAYLOAD_TS_NONE when absent */
    payload_occurrence **occurrences; /* as sent (clients send oldest first); one reference each */
    size_t n_occurrences;
    /* Federation (GET /federate/exceptions of a lower lookout): the job the aggregate came from, from
     * the aggregate's "__lookout_job__" member; NULL when absent. Keys are unique per (origin_job, key). */
    char *origin_job;
    /* Set by error_relabel_configs (ingest/error_relabel.h), NULL otherwise. count_id: the key the client
     * sent, when the aggregate was regrouped under another key; the merge engine then keeps this
     * aggregate's count per original key (each its own delta and reset accounting). labels: the error's
     * own label set for this target, when the rules changed the target's labels. Owned, freed with the
     * document. */
    char *count_id;
    struct labelset *labels;
    /* payload_parse_reuse: the fingerprint of the aggregate's JSON text when it is exactly one element of
     * the body (not folded with another of the same key, no malformed occurrence), else 0; and whether it
     * was reused from the source's previous body instead of parsed (then it has no occurrences: they were
     * merged with that body). */
    uint64_t raw_hash;
    bool reused;
    /* payload_parse_reuse: the fingerprints of the aggregate's occurrences as sent (NULL unless every one
     * is fingerprinted; owned), and how many of them were left out because the source's previous body held
     * them under this key (merged then; merge_reuse_ok checks the engine still holds the error). */
    uint64_t *occ_hashes;
    size_t n_occ_hashes;
    size_t known_occurrences;
} payload_aggregate;

/* Frees what an aggregate owns (its key, occurrences' references, ...), not the struct itself. */
void payload_aggregate_clear(payload_aggregate *a);

typedef struct payload_doc {
    char *target_uuid; /* "" when absent */
    /* The instance id the merge engine keys counts on: target_uuid, or the caller's fallback (the scrape
     * URL) when target_uuid is absent or empty. */
    char *instance_id;
    /* Federation: the exporting lookout's persistent instance id ("__lookout_instance__"); NULL when
     * absent. Stable across job selections, unlike target_uuid. */
    char *lookout_instance;
    payload_aggregate *aggregates; /* unique keys: repeated keys are folded into the first (max count) */
    size_t n_aggregates;
    size_t skipped_aggregates;  /* malformed aggregates dropped */
    size_t skipped_occurrences; /* malformed occurrences dropped (inside kept aggregates) */
    char first_problem[200];    /* description of the first skipped record, "" when none */
} payload_doc;

/* Parses body (not necessarily NUL-terminated). fallback_id: the instance id to use when target_uuid is
 * missing (the scrape URL); may be NULL (then ""). Returns NULL on failure with a message in err such as
 * "invalid JSON at line 1 column 17: ...", "payload is not a JSON object (got array)",
 * "\"aggregated_errors\" is not an array (got string)". */
payload_doc *payload_parse(const char *body, size_t len, const char *fallback_id, char *err, size_t errlen);
/* Occurrences kept per aggregate by payload_parse. */
#define PAYLOAD_DEFAULT_MAX_OCCURRENCES 1000
/* payload_parse keeping at most max_occurrences occurrences per aggregate (0: the default), the newest
 * by (timestamp, dedup_hash) like the merge engine, which never stores more than samples_per_error of an
 * error: older ones beyond that could never be kept, so they are not built. The parse streams (yajl):
 * memory is what the kept records need, never a tree of the whole body. */
payload_doc *payload_parse_limited(const char *body, size_t len, const char *fallback_id, size_t max_occurrences,
                                   char *err, size_t errlen);
void payload_free(payload_doc *p);

/* What a source's previous body held, for payload_parse_reuse: lookup returns true and fills *out (key
 * borrowed: the parser copies it; total_count, severity, created_at_ms) when an aggregate whose JSON text
 * had fingerprint raw_hash was parsed from that body (out->occ_hashes borrowed too). */
/* Bodies with more aggregates than this are parsed in full and give no fingerprints. */
#define PAYLOAD_REUSE_MAX 256
/* Nor are the occurrences of an aggregate with more than this many (clients keep 10 by default). */
#define PAYLOAD_REUSE_MAX_OCC 64
typedef struct payload_reuse {
    bool (*lookup)(void *ctx, uint64_t raw_hash, payload_aggregate *out);
    /* The fingerprints, sorted, of the occurrences that the previous body's aggregate with this key (len
     * bytes as sent) held; NULL when none. */
    const uint64_t *(*occurrences)(void *ctx, const char *key, size_t len, size_t *n);
    void *ctx;
} payload_reuse;
/* payload_parse_limited, except that aggregates whose JSON text is byte-identical to one of the source's
 * previous body (reuse->lookup) are not parsed again: they come back with reused set, their key, count,
 * severity and created_at, and no occurrences. Every aggregate that is one element of the body gets its
 * raw_hash, for the caller to remember. Errors, problems and skipped counts are those of a full parse.
 * reuse->lookup NULL: nothing to reuse, only the fingerprints; reuse NULL: payload_parse_limited. */
payload_doc *payload_parse_reuse(const char *body, size_t len, const char *fallback_id, size_t max_occurrences,
                                 const payload_reuse *reuse, char *err, size_t errlen);

void payload_occurrence_ref(payload_occurrence *o);
void payload_occurrence_unref(payload_occurrence *o); /* frees at zero; NULL is a no-op */

/* Recomputes dedup_hash after the occurrence was changed in place (scrubbing, before it is shared). */
void payload_occurrence_rehash(payload_occurrence *o);

/* "info", "warning", "error". */
const char *payload_severity_name(payload_severity s);
/* Case-insensitive; empty, NULL or unknown -> PAYLOAD_ERROR (Periskop's fallback). */
payload_severity payload_severity_parse(const char *s);

/* Parses an RFC 3339 timestamp into Unix ms. Returns 0 on success, -1 when malformed. */
int payload_parse_time(const char *s, int64_t *ms);
/* Formats Unix ms as "2024-03-02T11:02:44.901Z" into buf (>= 32 bytes). */
void payload_format_time(int64_t ms, char *buf, size_t n);

typedef enum payload_shape {
    /* Periskop server API (GET /services/X/errors/): integer Unix-second timestamps, stacktrace null when
     * empty, request_headers {} and request_body "" inside a present http_context. */
    PAYLOAD_SHAPE_SERVER,
    /* Client wire format: RFC 3339 timestamps with milliseconds. */
    PAYLOAD_SHAPE_CLIENT,
} payload_shape;

/* Appends one occurrence as a JSON object. */
void payload_occurrence_write_json(strbuf *sb, const payload_occurrence *o, payload_shape shape);
/* Appends an error object (with its cause chain). */
void payload_error_write_json(strbuf *sb, const payload_error *e);

/* Builds an occurrence programmatically (self-monitoring, tests). Strings are copied; http_method NULL
 * means no http_context. Returns a new occurrence with one reference. */
payload_occurrence *payload_occurrence_new(const char *class_name, const char *message, const char *uuid,
                                           int64_t timestamp_ms, payload_severity sev,
                                           const char *http_method, const char *http_url);

#endif
