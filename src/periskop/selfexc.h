/* selfexc: lookout's own exception collector, exported in the Periskop client wire format at
 * /-/exceptions so lookout (or a Periskop server) can scrape itself. Behaves like the Periskop client
 * libraries: aggregates by key with a running count and the last 10 occurrences, one target_uuid per
 * process (generated at creation). At most 1000 keys (later new keys are dropped and counted).
 * Thread-safe (one mutex; reports are rare). */
#ifndef LOOKOUT_PERISKOP_SELFEXC_H
#define LOOKOUT_PERISKOP_SELFEXC_H
#include <stddef.h>
#include <stdint.h>

#include "periskop/payload.h"

#define SELFEXC_MAX_OCCURRENCES 10
#define SELFEXC_MAX_KEYS 1000

typedef struct selfexc selfexc;

selfexc *selfexc_new(void);
void selfexc_free(selfexc *c);
const char *selfexc_target_uuid(const selfexc *c);
/* Records one occurrence. class_name/message may be NULL (""); http_method NULL = no HTTP context. */
void selfexc_report(selfexc *c, const char *key, const char *class_name, const char *message, payload_severity sev,
                    const char *http_method, const char *http_url);
/* Same with an explicit timestamp (tests). */
void selfexc_report_at(selfexc *c, int64_t now_ms, const char *key, const char *class_name, const char *message,
                       payload_severity sev, const char *http_method, const char *http_url);
/* The whole state as client-format JSON ({"target_uuid":..,"aggregated_errors":[..]}), keys in first-report
 * order, occurrences oldest first. Caller frees. */
char *selfexc_export(selfexc *c, size_t *len);
/* Keys refused because SELFEXC_MAX_KEYS was reached. */
uint64_t selfexc_dropped(selfexc *c);
/* A random RFC 4122 version 4 UUID into buf (>= 37 bytes). */
void selfexc_uuid4(char *buf);

#endif
