/* api: every HTTP API family lookout serves, registered on one server in one place. The runtime hands
 * over the stages the handlers read (target manager, store, ingest, own exceptions) and the lifecycle
 * callbacks; api_register_all wires status, targets, the Periskop API, federation, push, the lookout API,
 * /-/exceptions, the /metrics error collector and the web UI, in that order.
 *
 * Adding an endpoint: give its family a file in src/api/ with a `*_register(…, http_server *)`, then call
 * it from api_register_all (api.c). Handlers run on the server's threads and must be thread-safe.
 * Threading: api_register_all runs before http_server_start; api_reconfigure runs on the reload path
 * (under the runtime's reload lock); api_set_ready from any thread; api_free_all after http_server_free. */
#ifndef LOOKOUT_API_API_H
#define LOOKOUT_API_API_H
#include <stdbool.h>

#include "api/error_relabel_api.h"
#include "api/errors_api.h"
#include "api/federate_api.h"
#include "api/push_api.h"
#include "api/status.h"
#include "api/targets_api.h"
#include "config/config.h"
#include "http/server.h"

typedef struct api_deps {
    target_manager *tm;
    store *st;
    selfexc *sx;
    ingest *ingest;
    const char *listen_address; /* as given on the command line (for /api/v1/targets globalUrl) */
    const char *storage_path;   /* the persisted federation instance id lives here */
    bool enable_lifecycle;      /* --web.enable-lifecycle */
    bool enable_push;           /* --web.enable-push */
    size_t push_max_bytes_in_flight; /* --web.push.max-bytes-in-flight; 0: PUSH_MAX_IN_FLIGHT_BYTES */
    const lookout_config *cfg;  /* the configuration at start (push section) */
    /* Lifecycle callbacks for /-/reload, /-/quit and the /-/ready note (see status.h). */
    int (*reload)(void *ctx, char *err, size_t errlen);
    void (*quit)(void *ctx);
    void (*ready_note)(void *ctx, strbuf *out);
    void *ctx;
} api_deps;

/* The state of every API family. Lives as long as the server that serves it. */
typedef struct api_set {
    status_api status;
    targets_api tapi;
    errors_api eapi;
    federate_api fapi; /* GET /federate/exceptions */
    push_api papi;     /* POST /errors, POST /api/v1/push/{job}, GET /-/errors */
    error_relabel_api erapi; /* GET /api/v1/errors/relabel_steps */
    bool registered;
} api_set;

/* Registers every family on s. /-/ready answers "not ready" until api_set_ready(a, true). */
void api_register_all(api_set *a, http_server *s, const api_deps *d);
/* Applies a reloaded configuration to the families that keep a copy of it (push). */
void api_reconfigure(api_set *a, const lookout_config *cfg);
void api_set_ready(api_set *a, bool ready);
/* Releases what api_register_all took; call after the server stopped. A zeroed, unregistered set is a
 * no-op. */
void api_free_all(api_set *a);

#endif
