/* federate_api: lookout's merged state exported in the Periskop client format, so that another lookout
 * (or a Periskop server) scrapes it with an ordinary scrape config.
 *
 *   GET /federate/exceptions[?job=J[&job=K...]]   every stored job, or the named ones
 *
 * Body: {"target_uuid": T, "__lookout_instance__": I, "aggregated_errors": [A...]} where each aggregate is
 * {aggregation_key, total_count (the merged total), severity, created_at, latest_errors (the stored
 * samples, oldest first, client shape: RFC 3339 timestamps, uuids kept), "__lookout_job__": its job}.
 * Every status is exported (resolving is a UI state; counts stay cumulative).
 *
 * Identity: I is the instance's persistent id (util/instance_id.h). T is derived from I and the selection
 * (one job: that job; several: the sorted list; none: every job), stable across restarts, so a Periskop
 * server scraping one URL per job sees one stable target per lookout and job. An upper lookout keys its
 * counts on (origin job, I) instead (see ingest_merge_doc), which does not depend on the selection.
 *
 * Threading: handlers run on HTTP threads; the store is thread-safe. */
#ifndef LOOKOUT_API_FEDERATE_API_H
#define LOOKOUT_API_FEDERATE_API_H
#include <stddef.h>

#include "http/server.h"
#include "periskop/selfexc.h"
#include "store/store.h"
#include "util/instance_id.h"
#include "util/strbuf.h"

typedef struct federate_api {
    store *st;
    selfexc *sx; /* may be NULL */
    char instance_id[INSTANCE_ID_LEN];
} federate_api;

/* Appends the export of `jobs` (n_jobs == 0: every job in the store) to out. uuid_name: the name the
 * target_uuid is derived from; NULL derives it from the selection. Returns 0, or -1 with err (store
 * failure; out then holds a partial document). */
int federate_render(store *st, const char *instance_id, const char *const *jobs, size_t n_jobs,
                    const char *uuid_name, strbuf *out, char *err, size_t errlen);
/* Answers with the export, streamed: the head and a first page now (a store failure there returns -1 with
 * err, resp untouched but for its body: answer 500), then page by page as the client reads (a failure
 * then is logged, reported to sx and cuts the answer short). At most a page of aggregates and one job's
 * keys are in memory, whatever the size of the export. */
int federate_respond(store *st, selfexc *sx, const char *instance_id, const char *const *jobs, size_t n_jobs,
                     const char *uuid_name, const api_request *req, api_response *resp, char *err, size_t errlen);
void federate_api_register(federate_api *api, http_server *s);

#endif
