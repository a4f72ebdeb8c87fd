/* ui: the web UI handler. See ui.h. */
#include "api/ui.h"

#include <stdbool.h>
#include <string.h>

#include "api/web_assets.h"

/* True when an If-None-Match value ("a", W/"b", or *) names etag. Weak comparison, as RFC 9110 asks
 * for If-None-Match. */
static bool etag_listed(const char *inm, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = inm;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
            last--;
        if ((size_t)(last - p) == elen && strncmp(p, etag, elen) == 0)
            return true;
        p = end;
    }
    return false;
}

/* etag is quoted; v is the bare value index.html puts into ?v=. */
static bool version_matches(const char *v, const char *etag)
{
    size_t n = strlen(etag);
    return v && n >= 2 && strlen(v) == n - 2 && strncmp(v, etag + 1, n - 2) == 0;
}

static void serve(const web_asset *a, bool immutable, const api_request *req, api_response *resp)
{
    api_response_header(resp, "ETag", a->etag);
    api_response_header(resp, "Cache-Control", immutable ? "public, max-age=31536000, immutable" : "no-cache");
    api_response_header(resp, "Content-Security-Policy", UI_CSP);
    api_response_header(resp, "X-Content-Type-Options", "nosniff");
    api_response_header(resp, "X-Frame-Options", "DENY");
    api_response_header(resp, "Referrer-Policy", "same-origin");
    const char *inm = api_request_header(req, "If-None-Match");
    resp->content_type = a->content_type;
    strbuf_reset(&resp->body);
    if (inm && etag_listed(inm, a->etag)) {
        resp->status = 304;
        return;
    }
    resp->status = 200;
    strbuf_append(&resp->body, (const char *)a->data, a->len);
}

static void not_found(api_response *resp)
{
    api_response_text(resp, 404, "404 page not found\n");
}

static void h_index(void *ctx, const api_request *req, api_response *resp)
{
    (void)ctx;
    const web_asset *a = web_asset_find("/");
    if (!a) {
        not_found(resp);
        return;
    }
    serve(a, false, req, resp);
}

static void h_static(void *ctx, const api_request *req, api_response *resp)
{
    (void)ctx;
    /* The table holds "/" for index.html; only /static/... paths may reach assets here. */
    const web_asset *a = strncmp(req->path, "/static/", 8) == 0 ? web_asset_find(req->path) : NULL;
    if (!a) {
        not_found(resp);
        return;
    }
    serve(a, version_matches(api_request_query(req, "v"), a->etag), req, resp);
}

void ui_register(http_server *s)
{
    http_server_route(s, "GET", "/", false, h_index, NULL);
    http_server_route(s, "GET", "/static/", true, h_static, NULL);
}
