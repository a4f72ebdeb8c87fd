/* duration: Prometheus durations (model.Duration). Syntax "1y2w3d4h5m6s7ms" with every part optional but
 * at least one present, or "0"; integers only; units ms s m h d w y (y = 365d). */
#ifndef LOOKOUT_UTIL_DURATION_H
#define LOOKOUT_UTIL_DURATION_H
#include <stddef.h>
#include <stdint.h>

/* Returns 0 and sets *ms, or -1 on a syntax error or overflow. */
int duration_parse(const char *s, int64_t *ms);
/* Canonical form as Prometheus prints it ("1m30s", "1w", "0s"); returns buf. */
const char *duration_format(int64_t ms, char *buf, size_t n);

#endif
