/* push_api: push ingestion (docs/push.md), replacing periskop-pushgateway (its main.go, api.go,
 * adapters/periskop.go):
 *
 *   POST /errors                 body = a Periskop client payload (push_to_gateway of the Go, Python, Ruby
 *                                and Scala clients); job = push.default_job ("pushed")
 *   POST /api/v1/push/{job}      same body, job named in the path
 *   GET  /-/errors               the pushed jobs exported in client format (the gateway's scrape endpoint;
 *                                federate_render of every job pushed to since start and push.default_job)
 *
 * Off unless --web.enable-push or push.enabled (then 404 with a hint). Optional Authorization (bearer or
 * basic, compared in constant time over SHA-256 digests) -> 401. Both are decided from the headers,
 * before the body is read; more than PUSH_MAX_IN_FLIGHT_BYTES of bodies at once -> 503. Body limit push.body_size_limit -> 413.
 * A body that does not parse, or with any malformed record -> 400 with the parse error, nothing applied.
 * 200 once merged and written; 202 when the store did not confirm within PUSH_WAIT_MS (the change is
 * merged and retried by the writer); 503 when the ingest queue is full.
 *
 * Threading: handlers on HTTP threads; the configuration is swapped under a mutex on reload. */
#ifndef LOOKOUT_API_PUSH_API_H
#define LOOKOUT_API_PUSH_API_H
#include <pthread.h>
#include <stdbool.h>

#include "api/federate_api.h"
#include "http/server.h"
#include "config/config.h"
#include "ingest/ingest.h"

#define PUSH_WAIT_MS 10000
/* Bytes of push bodies (per endpoint, by Content-Length) read and held at once; a push that would go past
 * it gets 503 with Retry-After: 1 from its headers. Many small pushes pass; 40 bodies of 9 MB do not pile
 * up (one body is always admitted, whatever body_size_limit is). */
#define PUSH_MAX_IN_FLIGHT_BYTES (32u << 20)

typedef struct push_api {
    ingest *in;
    federate_api *fed; /* store and instance id for GET /-/errors */
    bool flag_enabled; /* --web.enable-push */
    pthread_mutex_t mu;
    push_config cfg; /* deep copy, guarded by mu */
    char **pushed_jobs; /* jobs pushed to since start, guarded by mu */
    size_t n_pushed, cap_pushed;
} push_api;

void push_api_init(push_api *p, ingest *in, federate_api *fed, bool flag_enabled);
/* Takes a deep copy of cfg (at start and on every reload). */
void push_api_configure(push_api *p, const push_config *cfg);
/* max_in_flight: bytes of push bodies in flight per endpoint (0: PUSH_MAX_IN_FLIGHT_BYTES). */
void push_api_register(push_api *p, http_server *s, size_t max_in_flight);
void push_api_free(push_api *p);

/* Exposed for tests: checks an Authorization header against the configuration. Returns 1 when allowed,
 * 0 when not, -1 with err when the credentials file cannot be read (answered 500). */
int push_auth_check(const push_config *cfg, const char *header, char *err, size_t errlen);

#endif
