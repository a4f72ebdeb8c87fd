/* error_relabel_api: GET /api/v1/errors/relabel_steps — for an error of a job (and a target), each
 * error_relabel_configs rule and the labels after it, like Prometheus' /api/v1/targets/relabel_steps
 * (docs/api.md). The input labels are the target's public labels (the target whose instance label is
 * `instance`, else the job's first active target, else {job}) plus __aggregation_key__ = key and
 * __class__, __message__, __severity__ from the stored error of that key when there is one (parameters
 * class, message, severity override them). The answer ends with the result: dropped, or the key,
 * severity and labels the error is stored under. Threading: any server thread. */
#ifndef LOOKOUT_API_ERROR_RELABEL_API_H
#define LOOKOUT_API_ERROR_RELABEL_API_H
#include "http/server.h"
#include "ingest/ingest.h"
#include "scrape/targets.h"
#include "store/store.h"

typedef struct error_relabel_api {
    ingest *in; /* the rules in use */
    store *st;
    target_manager *tm;
} error_relabel_api;

void error_relabel_api_register(error_relabel_api *api, http_server *s);

#endif
