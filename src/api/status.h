/* status: operational endpoints, as Prometheus serves them:
 *   GET /-/healthy   200 "lookout is Healthy.\n"
 *   GET /-/ready     200 "lookout is Ready.\n" once ready, else 503 "Service Unavailable"
 *   GET /metrics     lookout's own metrics (util/metrics.h) plus process_* metrics from /proc
 *   POST|PUT /-/reload, /-/quit   only with --web.enable-lifecycle (else 403 "Lifecycle API is not
 *                    enabled."); other methods get 405.
 * Thread-safe. */
#ifndef LOOKOUT_API_STATUS_H
#define LOOKOUT_API_STATUS_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "http/server.h"

typedef struct status_api {
    bool enable_lifecycle;
    atomic_bool ready;
    /* Reloads the configuration; returns 0, or -1 with err. Called on a server thread. */
    int (*reload)(void *ctx, char *err, size_t errlen);
    /* Asks the process to stop; must return quickly (the response is sent afterwards). */
    void (*quit)(void *ctx);
    void *ctx;
    /* Optional: appends notes to the 200 answer of /-/ready (e.g. a store write backlog); the status
     * stays 200 (readiness is about serving, not about the store). */
    void (*ready_note)(void *note_ctx, strbuf *out);
    void *note_ctx;
} status_api;

void status_api_register(status_api *st, http_server *s);

/* Registers the process_* collector (idempotent per process; unregister at shutdown). */
void status_process_metrics_register(void);
void status_process_metrics_unregister(void);
/* Appends the process_* families (exposed for tests). */
void status_process_metrics_render(void *ctx, strbuf *out);

#endif
