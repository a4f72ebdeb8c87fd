/* http/server_internal: the HTTP server's structures and the functions its files share (server.c: routes,
 * request dispatch, limits; server_response.c: requests, responses, streaming; server_conn.c: connections,
 * header deadlines, listening, TLS switching). Private to src/http/server*.c. */
#ifndef LOOKOUT_HTTP_SERVER_INTERNAL_H
#define LOOKOUT_HTTP_SERVER_INTERNAL_H

#include "http/server.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>

#include "http/workpool.h"

typedef struct route {
    char *method; /* NULL = any */
    char *path;
    bool prefix;
    api_handler_fn fn;
    void *ctx;
    size_t (*body_limit)(void *ctx); /* NULL: the server's max_body */
    char *handler;                   /* label of its requests in /metrics: the path, "*" after a prefix */
    api_preflight_fn preflight;      /* NULL: none */
    size_t upload_budget;            /* 0: unbounded */
    atomic_size_t upload_bytes;      /* bodies of this route's requests in flight (when upload_budget) */
    int pool;                        /* -1: on the server thread; else the pool (http_pool) */
} route;

struct http_server {
    http_server_options opts;
    char *listen_address;
    route *routes;
    size_t n_routes;
    struct MHD_Daemon *daemon;
    int fd;
    int port;
    atomic_int in_flight;
    http_gate_fn gate;
    http_decorate_fn decorate;
    void *gate_ctx;
    http_tls_setup_fn tls_setup;
    http_tls_release_fn tls_release;
    void *tls_ctx;
    workpool *pools[2]; /* HTTP_POOL_SLOW, HTTP_POOL_UPLOAD (NULL before start) */
    pthread_mutex_t retired_mu;  /* retired */
    struct retired_daemon *retired; /* daemons replaced by http_server_switch_tls, until they are idle */
    char *prefix;       /* --web.route-prefix without the trailing slash ("/lookout"); NULL: none */
    size_t prefix_len;
    /* The header deadline: every connection, and when its request headers must be complete by. */
    pthread_mutex_t conns_mu;
    pthread_cond_t reaper_cv;
    struct conn_track *conns;
    pthread_t reaper;
    bool reaper_running, stopping;
};

/* A daemon replaced when TLS was switched on or off: it accepts nothing more and is stopped by its reaper
 * thread once its last connection is gone (a connection may be suspended in a pool, so it cannot be
 * stopped earlier), or at http_server_free. */
typedef struct retired_daemon {
    struct MHD_Daemon *daemon;
    pthread_t reaper;
    bool reaper_started;
    atomic_bool stop_now;
    struct retired_daemon *next;
} retired_daemon;

/* One connection (libmicrohttpd's socket_context), in http_server.conns from accept to close. deadline_ms
 * (monotonic) is when the current phase must be over, 0 while a request is being handled:
 *   CT_HEADERS  a request's headers, header_timeout_s from accept (or from its request line after a
 *               keep-alive wait); also capped by timeout_s from then;
 *   CT_BODY     its body, timeout_s from the same start (Go's ReadTimeout: the whole request);
 *   CT_IDLE     a keep-alive connection waiting for its next request, timeout_s from the end of the last
 *               one (Go's idle timeout, which is ReadTimeout when no IdleTimeout is set, as in Prometheus).
 * libmicrohttpd's own timeout is an idle limit (any byte restarts it), so a client sending a byte every
 * few seconds would keep a connection forever: the reaper thread shuts down the socket of a connection
 * past its deadline, and libmicrohttpd then closes it as if the client had. */
enum { CT_HEADERS = 0, CT_BODY, CT_IDLE, CT_BUSY };

typedef struct conn_track {
    struct conn_track *prev, *next;
    MHD_socket fd;
    int64_t deadline_ms;
    int64_t start_ms; /* when the current request began: accept, or its request line after CT_IDLE */
    int phase;
    void *tls; /* the TLS settings chosen for this connection (opts.tls_setup), released when it closes */
} conn_track;

/* What a pool job's argument is (the first member of both): cancel_slow tells them apart. */
enum { POOL_JOB_REQUEST = 1, POOL_JOB_STREAM = 2 };
enum { STREAM_IDLE, STREAM_PRODUCING, STREAM_READY };

/* The state of a streamed body while libmicrohttpd sends it: the page being sent and its producer. For a
 * route on a pool, each later page is produced on the pool too (the connection suspended meanwhile), so a
 * dump waiting for the store never holds a server thread. */
typedef struct stream_state {
    int kind; /* POOL_JOB_STREAM */
    strbuf page;
    size_t off;
    int more; /* the producer's last answer: 1 more, 0 done, -1 failed */
    api_stream_fn fill;
    void *ctx;
    void (*free_ctx)(void *ctx);
    workpool *pool; /* NULL: pages are produced on the server thread */
    struct MHD_Connection *conn;
    atomic_int state; /* STREAM_*: a page being produced on the pool, or ready */
} stream_state;

int64_t http_server_mono_ms(void);
void http_server_conn_phase(http_server *s, struct MHD_Connection *conn, int phase);
enum MHD_Result http_server_send_response(struct MHD_Connection *conn, api_response *resp, workpool *pool);
void http_server_response_free(api_response *resp);
void http_server_on_mhd_log(void *cls, const char *fmt, va_list ap);
enum MHD_Result http_server_on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                       const char *version, const char *upload_data, size_t *upload_data_size,
                                       void **con_cls);
void http_server_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe);

#endif
