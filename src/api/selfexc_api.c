/* selfexc_api: lookout's own exceptions in the Periskop client format, at GET /-/exceptions (scraped by
 * the default configuration) and GET /errors (where the Periskop server exposes its own; POST /errors is
 * reserved for the push endpoint). */
#include <stdlib.h>

#include "api/errors_api.h"

static void h_exceptions(void *ctx, const api_request *req, api_response *resp)
{
    (void)req;
    size_t len = 0;
    char *json = selfexc_export(ctx, &len);
    strbuf_append(&resp->body, json, len);
    free(json);
    resp->content_type = "application/json";
}

void selfexc_api_register(selfexc *sx, http_server *s)
{
    http_server_route(s, "GET", "/-/exceptions", false, h_exceptions, sx);
    http_server_route(s, "GET", "/errors", false, h_exceptions, sx);
}
