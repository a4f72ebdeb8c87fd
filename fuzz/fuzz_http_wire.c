/* fuzz_http_wire: raw bytes on a client connection of lookout's HTTP server. The input is written to one end
 * of a socketpair handed to a libmicrohttpd daemon configured like http_server_start (same request and
 * completion callbacks, header memory limit, lookout's route table with the real UI handlers), so the
 * request line, headers, URL and query decoding, chunked bodies and the 405/404/413 paths all see it;
 * POST /errors and /api/v1/push/ carry a preflight (401 from the headers unless "Authorization: Bearer ok")
 * and an 8 KiB in-flight body budget, like the push endpoints.
 * server.c and ui.c are included for their static callbacks. */
#include "http/server.c"
#include "api/ui.c"

#include <fcntl.h>

/* Reads what a handler may read: query arguments, headers and the body. */
static void h_echo(void *ctx, const api_request *req, api_response *resp)
{
    (void)ctx;
    static const char *const q[] = {"scrapePool", "labels", "state", "page", "v", "search", "health"};
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        const char *v = api_request_query(req, q[i]);
        if (v)
            strbuf_puts(&resp->body, v);
    }
    const char *h = api_request_header(req, "If-None-Match");
    if (h)
        api_response_header(resp, "X-Echo", h);
    strbuf_append(&resp->body, req->body ? req->body : "", req->body_len);
}

/* Like push_preflight: decided from the headers alone, before the body. */
static bool pf_auth(void *ctx, const api_request *req, api_response *resp)
{
    (void)ctx;
    const char *a = api_request_header(req, "Authorization");
    if (a && strcmp(a, "Bearer ok") == 0)
        return false;
    api_response_text(resp, 401, "unauthorized\n");
    return true;
}

static struct MHD_Daemon *daemon_get(void)
{
    static struct MHD_Daemon *d;
    static http_server *s;
    if (d)
        return d;
    http_server_options o = {.listen_address = "127.0.0.1:0", .max_body = 4096};
    s = http_server_new(&o);
    ui_register(s);
    static const struct {
        const char *method, *path;
        bool prefix;
    } routes[] = {
        {"GET", "/-/healthy", false},  {"POST", "/-/reload", false}, {"PUT", "/-/reload", false},
        {"GET", "/api/v1/targets", false}, {"GET", "/api/v1/targets/relabel_steps", false},
        {"GET", "/targets", false},    {NULL, "/api/", true},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        http_server_route(s, routes[i].method, routes[i].path, routes[i].prefix, h_echo, NULL);
    http_server_route(s, "POST", "/errors", false, h_echo, NULL);
    http_server_route(s, "POST", "/api/v1/push/", true, h_echo, NULL);
    http_server_route_guard(s, "POST", "/errors", pf_auth, 8192);
    http_server_route_guard(s, "POST", "/api/v1/push/", pf_auth, 8192);
    d = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG, 0, NULL, NULL, http_server_on_request, s,
                         MHD_OPTION_CONNECTION_TIMEOUT, 1u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                         (size_t)s->opts.max_header_memory, MHD_OPTION_NOTIFY_COMPLETED, http_server_on_completed, s,
                         MHD_OPTION_EXTERNAL_LOGGER, http_server_on_mhd_log, NULL, MHD_OPTION_END);
    if (!d)
        abort();
    return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    struct MHD_Daemon *d = daemon_get();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        abort();
    if (size && write(sv[0], data, size) != (ssize_t)size)
        abort();
    shutdown(sv[0], SHUT_WR);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(40000)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (MHD_add_connection(d, sv[1], (const struct sockaddr *)&sin, sizeof sin) != MHD_YES) {
        close(sv[1]);
        close(sv[0]);
        return 0;
    }
    char buf[65536];
    for (int i = 0; i < 64; i++) {
        MHD_run(d);
        ssize_t n = read(sv[0], buf, sizeof buf);
        if (n == 0)
            break; /* the server closed the connection */
        if (n > 0 && getenv("FUZZ_HTTP_WIRE_ECHO")) /* debugging: show the responses */
            fwrite(buf, 1, (size_t)n, stderr);
    }
    close(sv[0]);
    /* Let the daemon notice the closed peer and release the connection (on_completed). */
    for (int i = 0; i < 4; i++)
        MHD_run(d);
    return 0;
}
