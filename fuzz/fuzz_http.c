/* fuzz_http: the request-side code of the HTTP server that sees untrusted bytes after libmicrohttpd has
 * decoded the request line: route lookup (find_route over lookout's real route table, with the 405 Allow
 * list), static asset lookup (web_asset_find), If-None-Match and ?v= handling of the UI (etag_listed,
 * version_matches), and the address helpers (http_split_host_port, targets_api_global_url).
 * server.c and ui.c are included so their static functions can be reached.
 * Input: METHOD \n PATH \n IF-NONE-MATCH \n V (missing parts are empty). */
#include "http/server.c"
#include "api/ui.c"

#include "api/targets_api.h"

static void h_dummy(void *ctx, const api_request *req, api_response *resp)
{
    (void)ctx, (void)req, (void)resp;
}

static http_server *server(void)
{
    static http_server *s;
    if (s)
        return s;
    http_server_options o = {.listen_address = "127.0.0.1:0"};
    s = http_server_new(&o);
    /* The table lookout registers (ui.c, status.c, targets_api.c, targets_page.c). */
    ui_register(s);
    static const struct {
        const char *method, *path;
        bool prefix;
    } routes[] = {
        {"GET", "/-/healthy", false},  {"GET", "/-/ready", false},   {"GET", "/metrics", false},
        {"POST", "/-/reload", false},  {"PUT", "/-/reload", false},  {"POST", "/-/quit", false},
        {"PUT", "/-/quit", false},     {"GET", "/api/v1/targets", false},
        {"GET", "/api/v1/targets/relabel_steps", false},           {"GET", "/api/v1/scrape_pools", false},
        {"GET", "/targets", false},    {"GET", "/service-discovery", false},
        {NULL, "/api/", true},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        http_server_route(s, routes[i].method, routes[i].path, routes[i].prefix, h_dummy, NULL);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *part[4] = {"", "", "", ""};
    char *p = buf;
    for (int i = 0; i < 4 && p; i++) {
        part[i] = p;
        char *nl = strchr(p, '\n');
        if (nl)
            *nl++ = '\0';
        p = nl;
    }
    const char *method = part[0], *path = part[1], *inm = part[2], *v = part[3];

    strbuf allow;
    strbuf_init(&allow);
    bool known;
    const route *r = find_route(server(), method, path, &known, &allow);
    if (r && !known)
        abort();
    strbuf_free(&allow);

    const web_asset *a = web_asset_find(path);
    if (a) {
        etag_listed(inm, a->etag);
        version_matches(v, a->etag);
    }
    etag_listed(inm, "\"0123456789abcdef\"");
    version_matches(v, "\"0123456789abcdef\"");

    char host[256], port[64], err[512];
    http_split_host_port(path, host, sizeof host, port, sizeof port, err, sizeof err);

    strbuf out;
    strbuf_init(&out);
    targets_api_global_url(path, "0.0.0.0:8080", "fuzzhost", &out, err, sizeof err);
    strbuf_free(&out);
    free(buf);
    return 0;
}
