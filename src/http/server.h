/* server: lookout's HTTP server (libmicrohttpd, internal thread pool) with a small router. API families
 * register handlers (method + exact path, or method + path prefix) before http_server_start. Handlers run
 * on the server's threads, concurrently: they must be thread-safe.
 *
 * Limits: request bodies are bounded (max_body, larger -> 413), headers by the per-connection memory
 * limit (larger -> 431), connections by max_connections and per client address by
 * max_connections_per_ip, the time a connection may take to complete a request's headers by
 * header_timeout_s (a total deadline from accept, or from the request line of a later request on a
 * keep-alive connection: a client dribbling a byte now and then is cut off too), the whole request
 * (headers and body) and a keep-alive connection's wait for its next request by timeout_s (Prometheus'
 * --web.read-timeout: Go's ReadTimeout, which is also the idle timeout when none is set). Handlers marked slow run on a small separate pool, so that dumps, searches and pushes
 * waiting for the store can never hold every server thread; dumps stream their answer page by page
 * (api_response_stream), so that their size never sits in memory. */
#ifndef LOOKOUT_HTTP_SERVER_H
#define LOOKOUT_HTTP_SERVER_H
#include <stdbool.h>
#include <stddef.h>

#include "util/strbuf.h"

typedef struct http_server http_server;

typedef struct api_request {
    const char *method; /* "GET", "POST", ... (HEAD is routed as GET; the body is not sent) */
    const char *path;   /* decoded path, without the query string */
    const char *body;   /* NUL-terminated; "" when none */
    size_t body_len;
    void *conn; /* private: the libmicrohttpd connection */
} api_request;

typedef struct api_header {
    char *name, *value;
} api_header;

/* A streamed body's producer (api_response_stream): appends the next piece of the body to out (keep it to
 * a page, tens of KiB) and returns 1 while more follows, 0 after the last piece, -1 on a failure (the
 * connection is then closed before the end of the chunked body, so the client sees a truncated answer,
 * never a complete-looking one). Called whenever the client has taken the previous page: on the route's pool
 * (http_server_route_pool; the connection suspended meanwhile, so a page waiting for the store never holds
 * a server thread), else on a server thread. */
typedef int (*api_stream_fn)(void *ctx, strbuf *out);

typedef struct api_response {
    int status;               /* default 200 */
    const char *content_type; /* static string; default "text/plain; charset=utf-8" */
    strbuf body;
    api_header *headers; /* extra headers */
    size_t n_headers;
    /* set by api_response_stream: the body is produced by stream (after `body`, which it may start) */
    api_stream_fn stream;
    void *stream_ctx;
    void (*stream_free)(void *ctx);
} api_response;

typedef void (*api_handler_fn)(void *ctx, const api_request *req, api_response *resp);
/* Decides a request from its method, path, query and headers alone (req->body is ""), before its body is
 * read: returns true with resp filled to answer now (the body is then dropped and the connection
 * closed), false to read the body and call the handler. */
typedef bool (*api_preflight_fn)(void *ctx, const api_request *req, api_response *resp);

/* Connections from one client address at once (more are refused at accept). */
#define HTTP_DEFAULT_CONNECTIONS_PER_IP 128
/* Deadline for a request's headers to be complete, counted from accept (or from the request line of a
 * later request on a keep-alive connection), whatever arrives meanwhile. */
#define HTTP_DEFAULT_HEADER_TIMEOUT_S 10
/* Deadline for a whole request (headers and body) from the same start, and for a keep-alive connection's
 * wait for its next request: Prometheus' --web.read-timeout default (5m). */
#define HTTP_DEFAULT_READ_TIMEOUT_S 300
/* Threads running handlers off the server threads (http_server_route_pool), and how many requests may
 * wait for them: HTTP_POOL_SLOW for reads whose cost grows with the data, HTTP_POOL_UPLOAD for writes
 * that wait for the store (many small pushes at once are normal). */
#define HTTP_DEFAULT_SLOW_THREADS 2
#define HTTP_DEFAULT_SLOW_QUEUE 64
#define HTTP_DEFAULT_UPLOAD_THREADS 8
#define HTTP_DEFAULT_UPLOAD_QUEUE 256

typedef enum http_pool { HTTP_POOL_SLOW = 0, HTTP_POOL_UPLOAD = 1 } http_pool;

typedef struct http_server_options {
    const char *listen_address; /* "HOST:PORT", ":PORT", "[::]:PORT"; port 0 picks a free port */
    unsigned threads;           /* default 4 */
    unsigned max_connections;   /* default 512 */
    unsigned timeout_s;         /* read timeout (whole request; keep-alive wait), default HTTP_DEFAULT_READ_TIMEOUT_S */
    size_t max_body;            /* default 1 MiB */
    size_t max_header_memory;   /* per connection, default 64 KiB */
    /* HTTPS (http/websec.h fills these from --web.config.file): with a certificate the server speaks TLS
     * only. The texts must stay valid until http_server_free. */
    const char *tls_cert_pem, *tls_key_pem; /* NULL: plain HTTP unless tls_cert_callback */
    void *tls_cert_callback;                /* gnutls_certificate_retrieve_function2 *, instead of the PEMs */
    const char *tls_trust_pem;              /* client CA list: asks clients for certificates */
    const char *tls_priorities;             /* GnuTLS priority string; NULL: "NORMAL" */
    unsigned max_connections_per_ip; /* default HTTP_DEFAULT_CONNECTIONS_PER_IP */
    unsigned header_timeout_s;       /* default HTTP_DEFAULT_HEADER_TIMEOUT_S, at most timeout_s */
    unsigned slow_threads;           /* default HTTP_DEFAULT_SLOW_THREADS */
    size_t slow_queue;               /* default HTTP_DEFAULT_SLOW_QUEUE */
    unsigned upload_threads;         /* default HTTP_DEFAULT_UPLOAD_THREADS */
    size_t upload_queue;             /* default HTTP_DEFAULT_UPLOAD_QUEUE */
} http_server_options;

http_server *http_server_new(const http_server_options *opts);
/* Registers a handler. method NULL matches any method; prefix routes match path == p or a path that
 * starts with p (give prefixes with a trailing '/'). Exact routes win over prefixes, longer prefixes over
 * shorter. A path matched only by routes of other methods gets 405 with an Allow header. */
void http_server_route(http_server *s, const char *method, const char *path, bool prefix, api_handler_fn fn,
                       void *ctx);
/* Like http_server_route, with the request body limit of this route taken from body_limit(ctx) when the
 * request starts (so it may follow configuration reloads); 0 means the server's max_body. A larger body
 * is answered 413 without calling fn. */
void http_server_route_limited(http_server *s, const char *method, const char *path, bool prefix,
                               api_handler_fn fn, void *ctx, size_t (*body_limit)(void *ctx));
/* Security hooks (http/websec.h). gate runs once per request before its body is read: true lets the
 * request through, false sends resp at once (401, 403, 429, a CORS preflight answer). decorate adds
 * headers to every response (configured security headers, CORS). Either may be NULL. */
typedef bool (*http_gate_fn)(void *ctx, const api_request *req, api_response *resp);
typedef void (*http_decorate_fn)(void *ctx, const api_request *req, api_response *resp);
void http_server_set_gate(http_server *s, http_gate_fn gate, http_decorate_fn decorate, void *ctx);
/* TLS per connection (http/websec.h): setup gets each new connection's GnuTLS session (gnutls_session_t)
 * before its handshake and may set its credentials, priorities and client certificate request; what it
 * returns is given to release when the connection is closed (after the session is gone). */
typedef void *(*http_tls_setup_fn)(void *ctx, void *tls_session);
typedef void (*http_tls_release_fn)(void *ctx, void *conn_state);
void http_server_set_tls_hooks(http_server *s, http_tls_setup_fn setup, http_tls_release_fn release, void *ctx);
/* Gives the registered route (method, path exactly as registered) a preflight, and/or a budget for the
 * bodies of its requests in flight (upload_budget > 0 bytes: a request whose Content-Length, or the
 * route's body limit when none is declared, would go past it is answered 503 with Retry-After: 1 from
 * its headers, before its body is read; one body is always admitted when none is in flight). */
void http_server_route_guard(http_server *s, const char *method, const char *path, api_preflight_fn preflight,
                             size_t upload_budget);
/* Runs the registered route's handler on a pool (its threads; its queue full -> 503 with Retry-After),
 * never on the threads that serve every other request. */
void http_server_route_pool(http_server *s, const char *method, const char *path, http_pool pool);
/* --web.route-prefix: every route is served under prefix ("/lookout": GET /lookout/api/v1/errors reaches
 * the "/api/v1/errors" route; handlers see paths without it). GET / and GET of the prefix itself answer
 * 302 to prefix + "/"; any other path outside the prefix is 404. NULL, "" or "/": no prefix. Give it
 * normalised (http_route_prefix). Before http_server_start. */
void http_server_set_route_prefix(http_server *s, const char *prefix);
/* Prometheus' route prefix: route_prefix when given (non-NULL, even ""), else the path of external_url
 * (NULL: none); then "/" + the path without leading and trailing slashes, and "" for "/" (no prefix).
 * Caller frees. */
char *http_route_prefix(const char *route_prefix, const char *external_url);
/* Binds and starts serving. Returns 0, or -1 with err ("listen tcp :7777: bind: address already in use"). */
int http_server_start(http_server *s, char *err, size_t errlen);
/* Switches the running server between HTTPS (tls_cert_callback as in http_server_options) and plain HTTP
 * (NULL) without closing its listening socket: a new daemon accepts the next connections, the old one
 * finishes the connections it has and is stopped once they are gone. Returns 0; -1 with err when the new
 * kind of daemon cannot start (the server then goes on as before). Not concurrently with itself. */
int http_server_switch_tls(http_server *s, void *tls_cert_callback, char *err, size_t errlen);
/* The bound port (after start), for tests using port 0. */
int http_server_port(const http_server *s);
/* Stops accepting, lets in-flight requests finish (up to about 2 s), stops the threads and frees. */
void http_server_free(http_server *s);

/* Query parameter (decoded), NULL when absent. */
const char *api_request_query(const api_request *r, const char *key);
/* The client's IP address as text ("127.0.0.1", "::1"); "" when unknown. */
void api_request_remote_ip(const api_request *r, char *buf, size_t n);
/* Every value of a repeated query parameter (?job=a&job=b), in request order; at most max are stored.
 * Returns how many there are (possibly more than max). */
size_t api_request_query_all(const api_request *r, const char *key, const char **out, size_t max);
/* The GnuTLS session of an HTTPS request (gnutls_session_t), NULL over plain HTTP. */
void *api_request_tls_session(const api_request *r);
/* Request header (case-insensitive name), NULL when absent. */
const char *api_request_header(const api_request *r, const char *name);

void api_response_header(api_response *resp, const char *name, const char *value);
/* Streams the rest of the body (after what resp->body already holds) from fill, page by page, with chunked
 * transfer encoding: a dump of any size holds one page in memory, not the whole answer. free_ctx(ctx) is
 * called once the answer is done or dropped (also when it is never sent). */
void api_response_stream(api_response *resp, api_stream_fn fill, void *ctx, void (*free_ctx)(void *ctx));
/* Sets status and a plain-text body (replacing any body). */
void api_response_text(api_response *resp, int status, const char *text);

/* Splits a Go-style listen address into host ("" = any) and port. Returns 0, or -1 with err. */
int http_split_host_port(const char *addr, char *host, size_t hostlen, char *port, size_t portlen, char *err,
                         size_t errlen);

#endif
