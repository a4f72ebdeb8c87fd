/* apiutil: small helpers shared by the API families: Go-compatible JSON numbers and times, label sets as
 * JSON objects, Prometheus' API envelope. Pure functions. */
#ifndef LOOKOUT_API_APIUTIL_H
#define LOOKOUT_API_APIUTIL_H
#include <stdbool.h>
#include <stdint.h>

#include "http/server.h"
#include "labels/labels.h"
#include "util/strbuf.h"

/* A float64 as Go's encoding/json writes it (shortest round-trip form; exponent only below 1e-6 or from
 * 1e21 on: 0, 0.0123, 1e-07, 1.5). NaN/Inf are written as 0 (JSON has no such values). */
void api_json_float(strbuf *out, double v);
/* A time as Go's time.Time JSON (RFC3339 with trailing-zero-trimmed nanoseconds, UTC "Z"); ms == 0 gives
 * Go's zero time "0001-01-01T00:00:00Z". Includes the quotes. */
void api_json_time(strbuf *out, int64_t unix_ms);
/* Prometheus' error envelope: {"status":"error","errorType":TYPE,"error":MSG} with status 400 for
 * "bad_data", 422 for "execution", 500 for "internal", 404 for "not_found". */
void api_json_error(api_response *resp, const char *type, const char *msg);
/* Sets status 200, content type application/json. */
void api_json_ok(api_response *resp);
/* Labels written one at a time as a JSON object's members ("name":"value", comma-separated, as
 * labelset_write_json writes a set's): a target_label_fn for targets_*_discovered_each, ctx an
 * api_json_labels, so that a target's discovered labels reach a page without a copy of their set. */
typedef struct api_json_labels {
    strbuf *out;
    bool any; /* a label written already: the next one is preceded by ',' */
} api_json_labels;
void api_json_label(void *ctx, const char *name, const char *value);

#endif
