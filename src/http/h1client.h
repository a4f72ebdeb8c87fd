/* h1client: a non-blocking HTTP/1.1 GET client for the scrape loop's common case, plain http to a numeric
 * IPv4/IPv6 address, driven by the caller's epoll. It exists because an unchanged scrape through libcurl
 * spent ~70 % of its instructions in curl (URL parsing, header formatting, connection-alive polls).
 *
 * One h1_client per target: it keeps one kept-alive connection and sends exactly the request curl would
 * send for the same scrape (request line, Host, an Authorization: Basic header where curl puts it,
 * curl's Accept-Encoding, then the caller's headers in order). The response goes through h1parse.c; gzip
 * bodies are inflated (zlib) like curl does. Results are either final (a body with its status, a timeout,
 * a failed connect, the body size limit) or H1C_FALLBACK: anything else (a malformed or truncated
 * response, a reset, a redirect, another content coding, oversize headers) closes the connection and the
 * caller runs the scrape through curl, which then decides the result and its error text. A response
 * that was well-formed but unsupported also marks the client unusable (h1_client_usable), so such a
 * target stays on curl.
 *
 * A reused connection that fails before any response byte arrives (the server closed it while idle) is
 * retried once on a new connection, as curl does. An idle connection that becomes readable (a FIN, or
 * bytes nobody asked for) is closed at once (h1_client_idle_event), so the next scrape connects fresh.
 *
 * Threading: the scrape loop thread only; the fd is registered in the caller's epoll by the client with
 * data.fd = the fd, and closing it removes it. */
#ifndef LOOKOUT_HTTP_H1CLIENT_H
#define LOOKOUT_HTTP_H1CLIENT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/h1parse.h"

typedef struct h1_client h1_client;

typedef enum h1c_state { H1C_RUNNING = 0, H1C_DONE, H1C_FALLBACK } h1c_state;
typedef enum h1c_error { H1E_NONE = 0, H1E_TIMEOUT, H1E_CONNECT, H1E_LIMIT } h1c_error;

/* The outcome of a finished (H1C_DONE) request. */
typedef struct h1c_outcome {
    h1c_error error;
    int os_errno;                  /* H1E_CONNECT */
    int status;                    /* H1E_NONE: the response's status code */
    char reason[H1_REASON_MAX];    /* its reason phrase, "" when none */
} h1c_outcome;

/* True when url is one the fast path takes: "http://" + a numeric IPv4 address or a bracketed IPv6
 * address, each in its canonical form (what inet_ntop writes), an optional canonical port, then an
 * optional path and query made only of characters curl sends unchanged (no dot segments, no '#'). */
bool h1_url_eligible(const char *url);

/* Idle kept-alive connections of all clients sharing it, at most max: a connection that would be one
 * too many is closed after its response instead (each target keeping one would otherwise need a
 * descriptor per target). */
typedef struct h1_idle_budget {
    size_t idle, max;
} h1_idle_budget;

/* NULL when !h1_url_eligible(url). epfd: the loop's epoll. budget: shared by the loop's clients, or NULL
 * (no bound). */
h1_client *h1_client_new(const char *url, int epfd, h1_idle_budget *budget);
void h1_client_free(h1_client *c); /* closes the connection; NULL is ignored */
/* The socket, or -1 when there is none (before the first request, after a close). */
int h1_client_fd(const h1_client *c);
bool h1_client_usable(const h1_client *c);
bool h1_client_busy(const h1_client *c);

/* Where the next received bytes should go: a buffer the sink owns, with room for *n >= 1 bytes, or NULL
 * (the client's own stack buffer). Called with the sink's ctx before each recv. */
typedef char *(*h1_space_fn)(void *ctx, size_t *n);

/* Receive straight into the sink's buffer (space) instead of a stack buffer that the sink then copies
 * from: an identity or chunked body then reaches the sink as pointers into that buffer, after the bytes
 * that preceded it (headers, chunk framing). The sink must accept a piece that is already where it
 * belongs (no copy) and one it has to move down (memmove: it may overlap); the client never needs bytes
 * it has passed to the sink again, and bytes it has not parsed yet always lie after the piece. A gzip
 * body is inflated from a copy of its bytes (the inflated text must not overwrite them) and reaches the
 * sink from the client's own buffer. NULL (the default): every recv into the client's stack buffer. */
void h1_client_set_space(h1_client *c, h1_space_fn space);

/* Starts a GET. basic_auth: "Authorization: Basic ..." or NULL (sent before Accept-Encoding, where curl
 * puts it); headers: NULL-terminated "Name: value" list, sent in order after it. body_limit: curl's
 * MAXFILESIZE (a Content-Length above it fails at once) and the decoded body's limit, enforced by the
 * sink. The request bytes after the request line and Host are wiped when the request ends (they may hold
 * credentials); those two are built once per client and kept, as its URL is.
 * Returns H1C_RUNNING (wait for events), H1C_DONE (out filled; a connect that failed at once) or
 * H1C_FALLBACK. */
h1c_state h1_client_start(h1_client *c, const char *basic_auth, const char *const *headers, int64_t body_limit,
                          h1_sink_fn sink, void *sink_ctx, h1c_outcome *out);
/* An epoll event for h1_client_fd(c) while busy. Same returns as h1_client_start. */
h1c_state h1_client_event(h1_client *c, uint32_t events, h1c_outcome *out);
/* An epoll event while not busy: closes the connection. */
void h1_client_idle_event(h1_client *c);
/* At the request's deadline, before h1_client_timeout: reads what has already arrived, since a loop that is
 * behind may reach the deadline before the socket's event. Same returns as h1_client_event; H1C_RUNNING
 * when the answer is not complete (then time it out). Only reads while receiving. */
h1c_state h1_client_collect(h1_client *c, h1c_outcome *out);
/* The request's time is up: closes the connection; out->error = H1E_TIMEOUT. */
void h1_client_timeout(h1_client *c, h1c_outcome *out);
/* Ends a request without an outcome (target removed): closes the connection. */
void h1_client_abort(h1_client *c);

/* Error text for H1E_TIMEOUT / H1E_CONNECT in the words http_client_describe_error uses for curl's. */
void h1_client_describe(const h1_client *c, const h1c_outcome *o, char *out, size_t n);

/* curl's Accept-Encoding value for CURLOPT_ACCEPT_ENCODING "" with the linked libcurl's features,
 * e.g. "deflate, gzip, br, zstd". */
const char *h1_accept_encoding(void);

#endif
