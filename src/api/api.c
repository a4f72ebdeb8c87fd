/* api: see api.h. */
#include "api/api.h"

#include "api/targets_page.h"
#include "api/ui.h"
#include "util/instance_id.h"
#include "util/log.h"

void api_register_all(api_set *a, http_server *s, const api_deps *d)
{
    a->status.enable_lifecycle = d->enable_lifecycle;
    a->status.reload = d->reload;
    a->status.quit = d->quit;
    a->status.ctx = d->ctx;
    a->status.ready_note = d->ready_note;
    a->status.note_ctx = d->ctx;
    atomic_store(&a->status.ready, false);
    status_api_register(&a->status, s);

    targets_api_init(&a->tapi, d->tm, d->listen_address, NULL);
    targets_api_register(&a->tapi, s);
    targets_page_register(d->tm, s);

    a->eapi = (errors_api){.st = d->st, .tm = d->tm, .sx = d->sx,
                           .max_errors_per_job = d->cfg ? d->cfg->storage.max_errors_per_job : 0};
    periskop_api_register(&a->eapi, s);

    a->fapi = (federate_api){.st = d->st, .sx = d->sx};
    char ierr[512];
    if (instance_id_load(d->storage_path, a->fapi.instance_id, ierr, sizeof ierr) != 0)
        log_warn("main", "cannot persist the instance id; federation exports use a temporary target_uuid", "err",
                 ierr);
    federate_api_register(&a->fapi, s);

    push_api_init(&a->papi, d->ingest, &a->fapi, d->enable_push);
    push_api_configure(&a->papi, &d->cfg->push);
    push_api_register(&a->papi, s, d->push_max_bytes_in_flight);
    if (d->enable_push || d->cfg->push.enabled)
        log_info("web", "Push ingestion enabled", "default_job",
                 d->cfg->push.default_job ? d->cfg->push.default_job : PUSH_DEFAULT_JOB);

    errors_api_register(&a->eapi, s);
    a->erapi = (error_relabel_api){.in = d->ingest, .st = d->st, .tm = d->tm};
    if (d->ingest)
        error_relabel_api_register(&a->erapi, s);
    selfexc_api_register(d->sx, s);
    error_metrics_register(&a->eapi);
    ui_register(s);
    /* Handlers whose cost grows with the data (dumps, search, pushes that wait for the store) run on the
     * server's slow pool: however many of them are asked for, the other threads keep serving the UI,
     * health checks and the remaining APIs. */
    static const char *const slow[][2] = {
        {"GET", "/federate/exceptions"}, {"GET", "/services/"}, {"GET", "/-/errors"}, {"GET", "/api/v1/targets"},
        {"GET", "/metrics"},             {"GET", "/api/v1/errors"}, {"GET", "/targets"}, {"GET", "/targets/"},
    };
    for (size_t i = 0; i < sizeof slow / sizeof *slow; i++)
        http_server_route_pool(s, slow[i][0], slow[i][1], HTTP_POOL_SLOW);
    http_server_route_pool(s, "POST", "/errors", HTTP_POOL_UPLOAD);
    http_server_route_pool(s, "POST", "/api/v1/push/", HTTP_POOL_UPLOAD);
    a->registered = true;
}

void api_reconfigure(api_set *a, const lookout_config *cfg)
{
    if (a->registered)
        push_api_configure(&a->papi, &cfg->push);
}

void api_set_ready(api_set *a, bool ready)
{
    atomic_store(&a->status.ready, ready);
}

void api_free_all(api_set *a)
{
    if (!a->registered)
        return;
    push_api_free(&a->papi);
    error_metrics_unregister(&a->eapi);
    a->registered = false;
}
