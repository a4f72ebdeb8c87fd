/* errors_api: the API families over stored errors. They share one set of dependencies:
 *   periskop_api.c  Periskop-compatible API (Periskop server's api/api.go): /services/..., /targets/,
 *                   /-/health
 *   errors_api.c    lookout's own JSON API (docs/api.md): /api/v1/errors..., /api/v1/jobs
 *   selfexc_api.c   lookout's own exceptions: GET /-/exceptions and GET /errors (Periskop's path)
 *   error_metrics.c /metrics collector: lookout_error_occurrences_total, lookout_errors (by status),
 *                   lookout_target_up, lookout_store_errors, lookout_store_samples
 * Handlers are thread-safe (the store and the target manager are). A failing store call answers 500
 * and is reported into lookout's own exceptions (key "api-error"). */
#ifndef LOOKOUT_API_ERRORS_API_H
#define LOOKOUT_API_ERRORS_API_H
#include "http/server.h"
#include "scrape/targets.h"
#include "periskop/selfexc.h"
#include "store/store.h"

typedef struct errors_api {
    store *st;
    target_manager *tm;
    selfexc *sx; /* may be NULL */
    /* storage.max_errors_per_job: per job, /metrics writes at most this many per-error series (plus the
     * overflow error), whatever a shared or older database holds. 0 = 10,000. */
    uint32_t max_errors_per_job;
} errors_api;

void periskop_api_register(errors_api *api, http_server *s);
void errors_api_register(errors_api *api, http_server *s);
void selfexc_api_register(selfexc *sx, http_server *s);
/* Registers / removes the /metrics collector (util/metrics.h). */
void error_metrics_register(errors_api *api);
void error_metrics_unregister(errors_api *api);

/* Shared by the families: reports a failed request into selfexc and logs it. */
void errors_api_report(errors_api *api, const api_request *req, const char *what, const char *err);
/* Is `job` configured (a target pool exists) or present in the store? */
bool errors_api_job_known(errors_api *api, const char *job);

#endif
