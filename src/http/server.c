/* server: see server.h. We bind the listening socket ourselves (so that a busy port gives a clear error
 * and ":PORT" means dual-stack like Go) and hand it to libmicrohttpd with MHD_OPTION_LISTEN_SOCKET. */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "http/workpool.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

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

/* The path the router sees for a request to the redirecting "/" or the bare prefix. It cannot come from a
 * client: with a prefix every path a client sends is either mapped here, to "" (no route) or to what
 * follows the prefix, which starts with "/". */
#define PREFIX_REDIRECT_PATH "\x01prefix"

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

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Moves conn's connection to phase (see conn_track) and sets its deadline. */
static void conn_phase(http_server *s, struct MHD_Connection *conn, int phase)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_track *t = ci ? ci->socket_context : NULL;
    if (!t)
        return;
    int64_t now = mono_ms(), read_ms = (int64_t)s->opts.timeout_s * 1000;
    pthread_mutex_lock(&s->conns_mu);
    if (phase == CT_HEADERS) { /* the request line of a request after a keep-alive wait */
        if (t->phase == CT_IDLE) {
            t->start_ms = now;
            t->deadline_ms = now + (int64_t)s->opts.header_timeout_s * 1000;
            t->phase = CT_HEADERS;
        }
    } else {
        t->phase = phase;
        t->deadline_ms = phase == CT_BODY ? t->start_ms + read_ms : phase == CT_IDLE ? now + read_ms : 0;
    }
    pthread_mutex_unlock(&s->conns_mu);
}

static const char *const no_labels[] = {NULL};

/* The reaper: about every 250 ms, shuts down the sockets of connections past their header deadline.
 * Under conns_mu, so a connection cannot be closed (its fd reused) meanwhile: libmicrohttpd tells
 * on_connection CLOSED before it closes the socket, and that waits for the mutex. */
static void *reaper_main(void *arg)
{
    http_server *s = arg;
    pthread_mutex_lock(&s->conns_mu);
    while (!s->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&s->reaper_cv, &s->conns_mu, &ts);
        int64_t now = mono_ms();
        for (conn_track *t = s->conns; t && !s->stopping; t = t->next) {
            if (!t->deadline_ms || now < t->deadline_ms)
                continue;
            t->deadline_ms = 0; /* once */
            shutdown(t->fd, SHUT_RDWR);
            if (t->phase == CT_HEADERS)
                metric_add(metric_family_get("lookout_http_header_timeouts_total", METRIC_COUNTER,
                                             "Connections closed because their request headers were not complete "
                                             "within --web.read-header-timeout.",
                                             0, no_labels),
                           no_labels, 1);
            else if (t->phase == CT_BODY)
                metric_add(metric_family_get("lookout_http_read_timeouts_total", METRIC_COUNTER,
                                             "Connections closed because a request (headers and body) was not "
                                             "read within --web.read-timeout.",
                                             0, no_labels),
                           no_labels, 1);
        }
    }
    pthread_mutex_unlock(&s->conns_mu);
    return NULL;
}

/* Bytes of an oversized body (of unknown length) read and dropped before the connection is closed. */
#define SERVER_DRAIN_MAX (1u << 20)

/* Per-request state kept in MHD's con_cls between the calls of one request. */
typedef struct req_state {
    int kind; /* POOL_JOB_REQUEST (see stream_state) */
    strbuf body;
    bool too_large;
    bool responded; /* the 413 was queued before the body was read */
    size_t drained; /* bytes read and dropped after the limit was exceeded */
    char limit_text[24];
    size_t limit;        /* body limit of the route this request goes to */
    const char *handler; /* the route's handler label, or "other"; the route outlives the request */
    struct timespec start;
    bool discard;  /* answered from the headers (preflight, 503): the body is dropped */
    route *rt;     /* the route found from the headers; NULL when none */
    size_t upload_charge; /* bytes counted in rt->upload_bytes */
    /* a slow handler: the request waits suspended while the pool runs it */
    http_server *srv;
    struct MHD_Connection *conn;
    const char *method, *url;
    atomic_int job; /* JOB_NONE, JOB_QUEUED, JOB_DONE */
    api_response resp;
} req_state;

enum { JOB_NONE, JOB_QUEUED, JOB_DONE };


/* lookout_http_requests_total{handler,code} and lookout_http_request_duration_seconds{handler}, as
 * Prometheus' prometheus_http_*: handler is a route, never the raw path, so cardinality stays bounded. */
static const char *const http_metric_labels[] = {"handler", "code"};
static void count_request(const req_state *st, int status)
{
    static const double buckets[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30};
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double secs = (double)(now.tv_sec - st->start.tv_sec) + (double)(now.tv_nsec - st->start.tv_nsec) / 1e9;
    char code[12];
    snprintf(code, sizeof code, "%d", status ? status : 200);
    const char *lv[] = {st->handler, code};
    metric_add(metric_family_get("lookout_http_requests_total", METRIC_COUNTER,
                                 "HTTP requests served, by route and status code.", 2, http_metric_labels),
               lv, 1);
    metric_observe(metric_histogram_get("lookout_http_request_duration_seconds",
                                        "Time from a request's arrival to its response being queued, by route.",
                                        1, http_metric_labels, buckets, sizeof buckets / sizeof *buckets),
                   lv, secs);
}

http_server *http_server_new(const http_server_options *opts)
{
    http_server *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->opts = *opts;
    pthread_mutex_init(&s->retired_mu, NULL);
    s->listen_address = xstrdup(opts->listen_address ? opts->listen_address : LOOKOUT_DEFAULT_LISTEN_ADDRESS);
    s->opts.listen_address = s->listen_address;
    if (!s->opts.threads)
        s->opts.threads = 4;
    if (!s->opts.max_connections)
        s->opts.max_connections = 512;
    if (!s->opts.timeout_s)
        s->opts.timeout_s = HTTP_DEFAULT_READ_TIMEOUT_S;
    if (!s->opts.max_body)
        s->opts.max_body = 1 << 20;
    if (!s->opts.max_header_memory)
        s->opts.max_header_memory = 64 << 10;
    if (!s->opts.max_connections_per_ip)
        s->opts.max_connections_per_ip = HTTP_DEFAULT_CONNECTIONS_PER_IP;
    if (!s->opts.header_timeout_s)
        s->opts.header_timeout_s = HTTP_DEFAULT_HEADER_TIMEOUT_S;
    if (s->opts.header_timeout_s > s->opts.timeout_s)
        s->opts.header_timeout_s = s->opts.timeout_s;
    if (!s->opts.slow_threads)
        s->opts.slow_threads = HTTP_DEFAULT_SLOW_THREADS;
    if (!s->opts.slow_queue)
        s->opts.slow_queue = HTTP_DEFAULT_SLOW_QUEUE;
    if (!s->opts.upload_threads)
        s->opts.upload_threads = HTTP_DEFAULT_UPLOAD_THREADS;
    if (!s->opts.upload_queue)
        s->opts.upload_queue = HTTP_DEFAULT_UPLOAD_QUEUE;
    s->fd = -1;
    pthread_mutex_init(&s->conns_mu, NULL);
    pthread_cond_init(&s->reaper_cv, NULL);
    return s;
}

void http_server_route(http_server *s, const char *method, const char *path, bool prefix, api_handler_fn fn,
                       void *ctx)
{
    route *r = realloc(s->routes, (s->n_routes + 1) * sizeof *r);
    if (!r)
        abort();
    s->routes = r;
    r[s->n_routes] = (route){.method = method ? xstrdup(method) : NULL,
                             .path = xstrdup(path),
                             .prefix = prefix,
                             .fn = fn,
                             .ctx = ctx,
                             .pool = -1};
    strbuf h;
    strbuf_init(&h);
    strbuf_puts(&h, path);
    if (prefix)
        strbuf_puts(&h, "*");
    r[s->n_routes].handler = strbuf_detach(&h, NULL);
    s->n_routes++;
}

void http_server_route_guard(http_server *s, const char *method, const char *path, api_preflight_fn preflight,
                             size_t upload_budget)
{
    for (size_t i = 0; i < s->n_routes; i++)
        if (s->routes[i].method && strcmp(s->routes[i].method, method) == 0 && strcmp(s->routes[i].path, path) == 0) {
            s->routes[i].preflight = preflight;
            s->routes[i].upload_budget = upload_budget;
        }
}

void http_server_route_pool(http_server *s, const char *method, const char *path, http_pool pool)
{
    for (size_t i = 0; i < s->n_routes; i++)
        if (s->routes[i].method && strcmp(s->routes[i].method, method) == 0 && strcmp(s->routes[i].path, path) == 0)
            s->routes[i].pool = (int)pool;
}

void http_server_route_limited(http_server *s, const char *method, const char *path, bool prefix,
                               api_handler_fn fn, void *ctx, size_t (*body_limit)(void *ctx))
{
    http_server_route(s, method, path, prefix, fn, ctx);
    s->routes[s->n_routes - 1].body_limit = body_limit;
}

void http_server_set_gate(http_server *s, http_gate_fn gate, http_decorate_fn decorate, void *ctx)
{
    s->gate = gate;
    s->decorate = decorate;
    s->gate_ctx = ctx;
}

void http_server_set_tls_hooks(http_server *s, http_tls_setup_fn setup, http_tls_release_fn release, void *ctx)
{
    s->tls_setup = setup;
    s->tls_release = release;
    s->tls_ctx = ctx;
}

void *api_request_tls_session(const api_request *r)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    return ci ? ci->tls_session : NULL;
}

void api_request_remote_ip(const api_request *r, char *buf, size_t n)
{
    if (n)
        buf[0] = 0;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr || !n)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)n);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) /* dual-stack listener: show IPv4 clients as IPv4 */
            inet_ntop(AF_INET, &a6->s6_addr[12], buf, (socklen_t)n);
        else
            inet_ntop(AF_INET6, a6, buf, (socklen_t)n);
    }
}

const char *api_request_query(const api_request *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

typedef struct query_iter {
    const char *key;
    const char **out;
    size_t max, n;
} query_iter;

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    query_iter *it = cls;
    if (key && strcmp(key, it->key) == 0) {
        if (it->n < it->max)
            it->out[it->n] = value ? value : "";
        it->n++;
    }
    return MHD_YES;
}

size_t api_request_query_all(const api_request *r, const char *key, const char **out, size_t max)
{
    query_iter it = {key, out, max, 0};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_query, &it);
    return it.n;
}

const char *api_request_header(const api_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

void api_response_header(api_response *resp, const char *name, const char *value)
{
    api_header *h = realloc(resp->headers, (resp->n_headers + 1) * sizeof *h);
    if (!h)
        abort();
    resp->headers = h;
    h[resp->n_headers++] = (api_header){xstrdup(name), xstrdup(value)};
}

void api_response_stream(api_response *resp, api_stream_fn fill, void *ctx, void (*free_ctx)(void *ctx))
{
    if (resp->stream_free)
        resp->stream_free(resp->stream_ctx);
    resp->stream = fill;
    resp->stream_ctx = ctx;
    resp->stream_free = free_ctx;
}

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

/* On the pool: the next page, then the connection resumes and stream_read sends it. */
static void stream_job(void *arg)
{
    stream_state *ss = arg;
    ss->more = ss->fill(ss->ctx, &ss->page);
    if (ss->more < 0) /* a failure: whatever it produced is not sent */
        strbuf_reset(&ss->page);
    atomic_store(&ss->state, STREAM_READY);
    MHD_resume_connection(ss->conn);
}

/* libmicrohttpd's content reader: copies out of the current page, asking the producer for the next one
 * when it is used up (on the pool: returns 0 with the connection suspended until the page is there). */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream_state *ss = cls;
    for (;;) {
        if (atomic_load(&ss->state) == STREAM_PRODUCING)
            return 0;
        atomic_store(&ss->state, STREAM_IDLE);
        if (ss->off < ss->page.len)
            break;
        if (ss->more < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (ss->more == 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        strbuf_reset(&ss->page);
        ss->off = 0;
        if (ss->pool) {
            atomic_store(&ss->state, STREAM_PRODUCING);
            MHD_suspend_connection(ss->conn);
            if (workpool_submit(ss->pool, stream_job, ss))
                return 0;
            MHD_resume_connection(ss->conn); /* the queue is full: this page here */
            atomic_store(&ss->state, STREAM_IDLE);
        }
        ss->more = ss->fill(ss->ctx, &ss->page);
        if (ss->more < 0) /* a failure: whatever it produced is not sent either */
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = ss->page.len - ss->off;
    if (n > max)
        n = max;
    memcpy(buf, ss->page.buf + ss->off, n);
    ss->off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    stream_state *ss = cls;
    if (ss->free_ctx)
        ss->free_ctx(ss->ctx);
    strbuf_free(&ss->page);
    free(ss);
}

/* The block libmicrohttpd asks the producer for (and buffers per streamed answer). */
#define STREAM_BLOCK (32u << 10)

void api_response_text(api_response *resp, int status, const char *text)
{
    resp->status = status;
    resp->content_type = "text/plain; charset=utf-8";
    api_response_stream(resp, NULL, NULL, NULL); /* drops a stream set before */
    strbuf_reset(&resp->body);
    strbuf_puts(&resp->body, text);
}

static bool method_matches(const route *r, const char *method)
{
    if (!r->method)
        return true;
    if (strcmp(r->method, method) == 0)
        return true;
    return strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0;
}

static bool path_matches(const route *r, const char *path)
{
    if (!r->prefix)
        return strcmp(r->path, path) == 0;
    size_t n = strlen(r->path);
    if (strncmp(r->path, path, n) == 0)
        return true;
    /* "/api/" also matches "/api" */
    return n > 1 && r->path[n - 1] == '/' && strlen(path) == n - 1 && strncmp(r->path, path, n - 1) == 0;
}

static const route *find_route(const http_server *s, const char *method, const char *path, bool *path_known,
                               strbuf *allow);

/* The body limit for a request about to be read; *rt: its route, NULL when none. */
static size_t route_limit(const http_server *s, const char *method, const char *path, route **rt)
{
    strbuf allow;
    strbuf_init(&allow);
    bool known;
    const route *r = find_route(s, method, path, &known, &allow);
    strbuf_free(&allow);
    *rt = (route *)r;
    size_t lim = r && r->body_limit ? r->body_limit(r->ctx) : 0;
    return lim ? lim : s->opts.max_body;
}

/* Best route for (method, path); *path_known tells whether any method matched the path. */
static const route *find_route(const http_server *s, const char *method, const char *path, bool *path_known,
                               strbuf *allow)
{
    const route *best = NULL;
    size_t best_score = 0;
    *path_known = false;
    for (size_t i = 0; i < s->n_routes; i++) {
        const route *r = &s->routes[i];
        if (!path_matches(r, path))
            continue;
        *path_known = true;
        if (!method_matches(r, method)) {
            if (r->method && !strstr(allow->buf, r->method)) {
                if (allow->len)
                    strbuf_puts(allow, ", ");
                strbuf_puts(allow, r->method);
            }
            continue;
        }
        size_t score = r->prefix ? strlen(r->path) + 1 : (size_t)-1;
        if (!best || score > best_score) {
            best = r;
            best_score = score;
        }
    }
    return best;
}

/* pool: where a streamed answer's later pages are produced (NULL: on the server thread). */
static enum MHD_Result send_response(struct MHD_Connection *conn, api_response *resp, workpool *pool)
{
    struct MHD_Response *r;
    if (resp->stream) {
        /* the stream's state now belongs to the response (stream_free when libmicrohttpd is done) */
        stream_state *ss = calloc(1, sizeof *ss);
        if (!ss)
            abort();
        ss->kind = POOL_JOB_STREAM;
        ss->pool = pool;
        ss->conn = conn;
        ss->page = resp->body;
        strbuf_init(&resp->body);
        ss->more = 1;
        ss->fill = resp->stream;
        ss->ctx = resp->stream_ctx;
        ss->free_ctx = resp->stream_free;
        resp->stream = NULL;
        resp->stream_free = NULL;
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, ss, stream_free);
        if (!r) {
            stream_free(ss);
            return MHD_NO;
        }
    } else {
        size_t len;
        char *body = strbuf_detach(&resp->body, &len);
        r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        if (!r) {
            free(body);
            return MHD_NO;
        }
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            resp->content_type ? resp->content_type : "text/plain; charset=utf-8");
    bool nosniff = false;
    for (size_t i = 0; i < resp->n_headers; i++) {
        MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
        nosniff |= strcasecmp(resp->headers[i].name, "X-Content-Type-Options") == 0;
    }
    /* Every answer: a browser must not guess HTML out of a text/plain or JSON body that echoes input. */
    if (!nosniff)
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)(resp->status ? resp->status : 200), r);
    MHD_destroy_response(r);
    return ret;
}

static void response_free(api_response *resp)
{
    if (resp->stream_free) /* a stream never handed to libmicrohttpd */
        resp->stream_free(resp->stream_ctx);
    resp->stream = NULL;
    resp->stream_free = NULL;
    strbuf_free(&resp->body);
    for (size_t i = 0; i < resp->n_headers; i++) {
        free(resp->headers[i].name);
        free(resp->headers[i].value);
    }
    free(resp->headers);
}

static void too_large_text(api_response *resp, size_t limit)
{
    char msg[96];
    snprintf(msg, sizeof msg, "request body too large (limit %zu bytes)\n", limit);
    api_response_text(resp, MHD_HTTP_CONTENT_TOO_LARGE, msg);
}

static void decorate(const http_server *s, struct MHD_Connection *conn, const char *method, const char *url,
                     api_response *resp)
{
    if (!s->decorate)
        return;
    api_request req = {method, url, "", 0, conn};
    s->decorate(s->gate_ctx, &req, resp);
}

/* Queues the 413 while the body is still unread. */
static enum MHD_Result send_too_large(const http_server *s, struct MHD_Connection *conn, const char *method,
                                      const char *url, req_state *st)
{
    api_response resp = {.status = 200};
    strbuf_init(&resp.body);
    too_large_text(&resp, st->limit);
    decorate(s, conn, method, url, &resp);
    api_response_header(&resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = send_response(conn, &resp, NULL);
    count_request(st, resp.status);
    response_free(&resp);
    if (ret == MHD_YES)
        st->responded = true;
    return ret;
}

/* Answers now, from the headers, and drops whatever body follows (the connection is then closed). */
static enum MHD_Result answer_early(const http_server *s, struct MHD_Connection *conn, const char *method,
                                   const char *url, req_state *st, api_response *resp)
{
    decorate(s, conn, method, url, resp);
    api_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = send_response(conn, resp, NULL);
    count_request(st, resp->status);
    response_free(resp);
    st->discard = true;
    if (ret == MHD_YES)
        st->responded = true;
    return ret;
}

/* The first call of a request (headers only): the route's preflight may answer it (push switched off,
 * bad credentials) before a byte of the body is read. Returns true when it failed to queue the answer
 * (the connection is then dropped); st->responded tells whether it answered. */
static bool preflight(const http_server *s, struct MHD_Connection *conn, const char *method, const char *url,
                      req_state *st)
{
    route *r = st->rt;
    if (!r || !r->preflight)
        return false;
    api_response resp = {.status = 200};
    strbuf_init(&resp.body);
    api_request req = {method, url, "", 0, conn};
    if (!r->preflight(r->ctx, &req, &resp)) {
        response_free(&resp);
        return false;
    }
    return answer_early(s, conn, method, url, st, &resp) != MHD_YES;
}

/* A route with an upload budget refuses a body that would take the bytes in flight past it (its
 * Content-Length, or the route's limit when unknown; one body is always admitted when none is in
 * flight), so that bodies cannot pile up in memory. */
static enum MHD_Result admit_upload(const http_server *s, struct MHD_Connection *conn, const char *method,
                                    const char *url, req_state *st)
{
    route *r = st->rt;
    if (!r || !r->upload_budget)
        return MHD_YES;
    api_response resp = {.status = 200};
    strbuf_init(&resp.body);
    {
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        size_t charge = cl ? (size_t)strtoull(cl, NULL, 10) : st->limit; /* <= limit: checked before */
        size_t before = atomic_fetch_add(&r->upload_bytes, charge);
        st->upload_charge = charge;
        if (before && before + charge > r->upload_budget) {
            char msg[160];
            snprintf(msg, sizeof msg, "too many request bodies in flight on %s (at most %zu bytes); retry later\n",
                     r->path, r->upload_budget);
            api_response_text(&resp, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
            api_response_header(&resp, "Retry-After", "1");
            return answer_early(s, conn, method, url, st, &resp);
        }
    }
    response_free(&resp);
    return MHD_YES;
}

/* Runs on the slow pool: the handler, then wakes the suspended connection up to send the answer. */
static void run_slow(void *arg)
{
    req_state *st = arg;
    api_request req = {st->method, st->url, st->body.buf, st->body.len, st->conn};
    st->resp.status = 200;
    st->rt->fn(st->rt->ctx, &req, &st->resp);
    atomic_store(&st->job, JOB_DONE);
    MHD_resume_connection(st->conn);
}

/* Still queued when the server stops. */
static void cancel_slow(void *arg)
{
    if (*(int *)arg == POOL_JOB_STREAM) { /* a streamed answer's next page: cut the answer short */
        stream_state *ss = arg;
        ss->more = -1;
        strbuf_reset(&ss->page);
        atomic_store(&ss->state, STREAM_READY);
        MHD_resume_connection(ss->conn);
        return;
    }
    req_state *st = arg;
    api_response_text(&st->resp, MHD_HTTP_SERVICE_UNAVAILABLE, "server shutting down\n");
    atomic_store(&st->job, JOB_DONE);
    MHD_resume_connection(st->conn);
}

/* A slow route's handler goes to the pool while the connection is suspended; the call after the resume
 * sends its answer. A full pool queue is answered 503 at once. */
static enum MHD_Result offload(http_server *s, struct MHD_Connection *conn, const char *method, const char *url,
                               req_state *st)
{
    int job = atomic_load(&st->job);
    if (job == JOB_DONE) {
        decorate(s, conn, method, url, &st->resp);
        enum MHD_Result ret = send_response(conn, &st->resp, s->pools[st->rt->pool]);
        count_request(st, st->resp.status);
        st->responded = true;
        return ret;
    }
    if (job == JOB_QUEUED)
        return MHD_YES;
    st->srv = s;
    st->conn = conn;
    st->method = method;
    st->url = url;
    atomic_store(&st->job, JOB_QUEUED);
    MHD_suspend_connection(conn);
    if (workpool_submit(s->pools[st->rt->pool], run_slow, st))
        return MHD_YES;
    MHD_resume_connection(conn);
    atomic_store(&st->job, JOB_DONE);
    api_response_text(&st->resp, MHD_HTTP_SERVICE_UNAVAILABLE, "too many slow requests in flight; retry later\n");
    api_response_header(&st->resp, "Retry-After", "1");
    decorate(s, conn, method, url, &st->resp);
    enum MHD_Result ret = send_response(conn, &st->resp, NULL);
    count_request(st, st->resp.status);
    st->responded = true;
    return ret;
}

/* The path routes see: url without the route prefix (see http_server_set_route_prefix). */
static const char *route_path(const http_server *s, const char *url)
{
    if (!s->prefix_len)
        return url;
    if (strncmp(url, s->prefix, s->prefix_len) == 0) {
        const char *rest = url + s->prefix_len;
        if (*rest == '/')
            return rest;
        if (!*rest)
            return PREFIX_REDIRECT_PATH;
    }
    return strcmp(url, "/") == 0 ? PREFIX_REDIRECT_PATH : "";
}

static void h_prefix_redirect(void *ctx, const api_request *req, api_response *resp)
{
    (void)req;
    const http_server *s = ctx;
    char *loc = xmalloc(s->prefix_len + 2);
    memcpy(loc, s->prefix, s->prefix_len);
    memcpy(loc + s->prefix_len, "/", 2);
    api_response_text(resp, 302, "Found\n");
    api_response_header(resp, "Location", loc);
    free(loc);
}

void http_server_set_route_prefix(http_server *s, const char *prefix)
{
    size_t n = prefix ? strlen(prefix) : 0;
    while (n && prefix[n - 1] == '/')
        n--;
    if (!n || s->prefix)
        return;
    s->prefix = xstrndup(prefix, n);
    s->prefix_len = n;
    http_server_route(s, "GET", PREFIX_REDIRECT_PATH, false, h_prefix_redirect, s);
    route *r = &s->routes[s->n_routes - 1];
    free(r->handler);
    r->handler = xstrdup("/"); /* the metrics' handler label */
}

char *http_route_prefix(const char *route_prefix, const char *external_url)
{
    const char *p = route_prefix;
    size_t n = p ? strlen(p) : 0;
    if (!p && external_url) { /* the external URL's path: after scheme://host, up to ? or # */
        const char *sep = strstr(external_url, "://");
        p = sep ? sep + 3 + strcspn(sep + 3, "/?#") : external_url;
        if (*p != '/')
            p = "";
        n = strcspn(p, "?#");
    }
    if (!p)
        p = "";
    while (n && *p == '/') {
        p++;
        n--;
    }
    while (n && p[n - 1] == '/')
        n--;
    char *out = xmalloc(n + 2);
    out[0] = 0;
    if (n) {
        out[0] = '/';
        memcpy(out + 1, p, n);
        out[n + 1] = 0;
    }
    return out;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    http_server *s = cls;
    url = route_path(s, url);
    req_state *st = *con_cls;
    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st)
            return MHD_NO;
        st->kind = POOL_JOB_REQUEST;
        strbuf_init(&st->body);
        strbuf_init(&st->resp.body);
        clock_gettime(CLOCK_MONOTONIC, &st->start);
        st->limit = route_limit(s, method, url, &st->rt);
        st->handler = st->rt ? st->rt->handler : "other";
        /* headers are in: the body must follow within the read timeout, counted from the request's start */
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned int)s->opts.timeout_s);
        conn_phase(s, conn, CT_BODY);
        snprintf(st->limit_text, sizeof st->limit_text, "%zu", st->limit);
        *con_cls = st;
        atomic_fetch_add(&s->in_flight, 1);
        if (s->gate) {
            /* Credentials and origin are checked before the body is read: a refused client cannot make the
             * server read (and keep) its upload. */
            api_request req = {method, url, "", 0, conn};
            api_response resp = {.status = 200};
            strbuf_init(&resp.body);
            if (!s->gate(s->gate_ctx, &req, &resp))
                return answer_early(s, conn, method, url, st, &resp);
            response_free(&resp);
        }
        /* The route's own verdict next: push switched off says 404 whatever the body's size. */
        if (preflight(s, conn, method, url, st) || st->responded)
            return st->responded ? MHD_YES : MHD_NO;
        /* A declared body above the limit is refused before it is read (the connection is then closed),
         * so that a client cannot keep a server thread busy uploading gigabytes that end in a 413. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(cl, &end, 10);
            if (end != cl && (errno == ERANGE || v > st->limit)) {
                st->too_large = true;
                return send_too_large(s, conn, method, url, st);
            }
        }
        return admit_upload(s, conn, method, url, st);
    }
    if (*upload_data_size) {
        if (!st->too_large && !st->discard && st->body.len + *upload_data_size <= st->limit) {
            strbuf_append(&st->body, upload_data, *upload_data_size);
        } else {
            /* A body without (or beyond) its declared length, over the limit. libmicrohttpd (0.9.x) cannot
             * queue a response while an upload is pending, so the rest is read and dropped for the 413 to
             * reach the client, but only up to SERVER_DRAIN_MAX: past that the connection is closed, so an
             * endless chunked upload cannot keep a server thread busy. */
            st->too_large = !st->discard;
            st->drained += *upload_data_size;
            if (st->body.cap) {
                strbuf_free(&st->body);
                strbuf_init(&st->body);
            }
            if (st->drained > SERVER_DRAIN_MAX) {
                if (st->discard)
                    return MHD_NO;
                log_debug("web", "closing a connection sending an oversized body", "limit_bytes",
                          st->limit_text);
                return MHD_NO;
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    conn_phase(s, conn, CT_BUSY); /* the request is read */
    if (st->responded)
        return MHD_YES;
    if (!st->too_large && st->rt && st->rt->pool >= 0 && s->pools[st->rt->pool])
        return offload(s, conn, method, url, st);

    api_response resp = {.status = 200};
    strbuf_init(&resp.body);
    if (st->too_large) {
        too_large_text(&resp, st->limit);
    } else {
        strbuf allow;
        strbuf_init(&allow);
        bool path_known;
        const route *r = find_route(s, method, url, &path_known, &allow);
        if (r) {
            api_request req = {method, url, st->body.buf, st->body.len, conn};
            r->fn(r->ctx, &req, &resp);
        } else if (path_known) {
            api_response_text(&resp, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed\n");
            api_response_header(&resp, "Allow", allow.buf);
        } else {
            api_response_text(&resp, MHD_HTTP_NOT_FOUND, "404 page not found\n");
        }
        strbuf_free(&allow);
    }
    decorate(s, conn, method, url, &resp);
    enum MHD_Result ret = send_response(conn, &resp, NULL);
    count_request(st, resp.status);
    response_free(&resp);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    http_server *s = cls;
    req_state *st = *con_cls;
    if (!st)
        return;
    strbuf_free(&st->body);
    if (st->upload_charge)
        atomic_fetch_sub(&st->rt->upload_bytes, st->upload_charge);
    response_free(&st->resp);
    free(st);
    *con_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
    /* a keep-alive connection may wait for its next request up to the read timeout (then the header
     * timeout from that request's first line: on_request_line) */
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned int)s->opts.timeout_s);
    conn_phase(s, conn, CT_IDLE);
}

/* libmicrohttpd's URI logger: a request line is in. After a keep-alive wait, its headers have the header
 * timeout from now (Go: ReadHeaderTimeout from the request's first bytes). Returns the request's initial
 * con_cls (none). */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)uri;
    http_server *s = cls;
    conn_phase(s, conn, CT_HEADERS);
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned int)s->opts.header_timeout_s);
    return NULL;
}

/* A new connection must complete its request headers within the header timeout (a total deadline, see
 * conn_track; libmicrohttpd's idle timeout is set to the same value too). */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    http_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned int)s->opts.header_timeout_s);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_track *t = calloc(1, sizeof *t);
        if (!t || !ci)
            abort();
        t->fd = ci->connect_fd;
        t->start_ms = mono_ms();
        t->phase = CT_HEADERS;
        t->deadline_ms = t->start_ms + (int64_t)s->opts.header_timeout_s * 1000;
        pthread_mutex_lock(&s->conns_mu);
        t->next = s->conns;
        if (s->conns)
            s->conns->prev = t;
        s->conns = t;
        pthread_mutex_unlock(&s->conns_mu);
        /* libmicrohttpd made the GnuTLS session but has not started the handshake yet: the TLS settings of
         * this connection are decided now. */
        const union MHD_ConnectionInfo *ti = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        if (s->tls_setup && ti && ti->tls_session)
            t->tls = s->tls_setup(s->tls_ctx, ti->tls_session);
        *socket_context = t;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        conn_track *t = *socket_context;
        if (t->tls && s->tls_release)
            s->tls_release(s->tls_ctx, t->tls);
        pthread_mutex_lock(&s->conns_mu);
        if (t->prev)
            t->prev->next = t->next;
        else
            s->conns = t->next;
        if (t->next)
            t->next->prev = t->prev;
        pthread_mutex_unlock(&s->conns_mu);
        free(t);
        *socket_context = NULL;
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_debug("web", "libmicrohttpd", "detail", msg);
}

int http_split_host_port(const char *addr, char *host, size_t hostlen, char *port, size_t portlen, char *err,
                         size_t errlen)
{
    const char *colon = strrchr(addr, ':');
    if (!colon) {
        snprintf(err, errlen, "address %s: missing port in address", addr);
        return -1;
    }
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (hl && addr[0] == '[') {
        if (addr[hl - 1] != ']') {
            snprintf(err, errlen, "address %s: missing ']' in address", addr);
            return -1;
        }
        h = addr + 1;
        hl -= 2;
    } else if (memchr(addr, ':', hl)) {
        snprintf(err, errlen, "address %s: too many colons in address", addr);
        return -1;
    }
    const char *p = colon + 1;
    if (hl >= hostlen || strlen(p) >= portlen) {
        snprintf(err, errlen, "address %s: too long", addr);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    strcpy(port, p);
    return 0;
}

/* Binds a listening socket for addr. Empty host: every address, IPv6 dual-stack when available. */
static int bind_listen(const char *addr, int *out_port, char *err, size_t errlen)
{
    char host[256], port[32];
    if (http_split_host_port(addr, host, sizeof host, port, sizeof port, err, errlen) != 0)
        return -1;
    char *end;
    long pn = strtol(port, &end, 10);
    if (!*port || *end || pn < 0 || pn > 65535) {
        snprintf(err, errlen, "listen tcp %s: invalid port %s", addr, port);
        return -1;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    hints.ai_family = *host ? AF_UNSPEC : AF_INET6;
    int rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);
    if (rc != 0 && !*host) {
        hints.ai_family = AF_INET; /* no IPv6 on this machine */
        rc = getaddrinfo(NULL, port, &hints, &res);
    }
    if (rc != 0) {
        snprintf(err, errlen, "listen tcp %s: lookup %s: %s", addr, host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, last_errno = 0;
    const char *what = "socket";
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            what = "socket";
            continue;
        }
        int one = 1, zero = 0;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6 && !*host)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            last_errno = errno;
            what = "bind";
        } else if (listen(fd, 128) != 0) {
            last_errno = errno;
            what = "listen";
        } else {
            break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        /* Go's wording: "listen tcp :7777: bind: address already in use" */
        char msg[128];
        snprintf(msg, sizeof msg, "%s", strerror(last_errno));
        if (msg[0] >= 'A' && msg[0] <= 'Z' && msg[1] >= 'a' && msg[1] <= 'z')
            msg[0] = (char)(msg[0] - 'A' + 'a');
        snprintf(err, errlen, "listen tcp %s: %s: %s", addr, what, msg);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *out_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                             : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* Starts a libmicrohttpd daemon on the listening socket fd, speaking TLS when opts has a certificate. */
static struct MHD_Daemon *start_daemon(http_server *s, int fd, char *err, size_t errlen)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME;
#ifdef __linux__
    flags |= MHD_USE_EPOLL;
#else
    flags |= MHD_USE_POLL;
#endif
    /* HTTPS: libmicrohttpd's GnuTLS layer; the options are passed as an array since they are optional. */
    struct MHD_OptionItem tls[6];
    size_t nt = 0;
    if (s->opts.tls_cert_pem || s->opts.tls_cert_callback) {
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
            snprintf(err, errlen, "listen tcp %s: TLS is configured but libmicrohttpd was built without TLS support",
                     s->listen_address);
            return NULL;
        }
        flags |= MHD_USE_TLS;
        if (s->opts.tls_cert_callback) {
            tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, s->opts.tls_cert_callback};
        } else {
            tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)s->opts.tls_cert_pem};
            tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)s->opts.tls_key_pem};
        }
        if (s->opts.tls_trust_pem)
            tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, (void *)s->opts.tls_trust_pem};
        if (s->opts.tls_priorities)
            tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)s->opts.tls_priorities};
    }
    tls[nt] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)s->opts.threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)s->opts.max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)s->opts.timeout_s,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)s->opts.max_connections_per_ip,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_URI_LOG_CALLBACK, on_request_line, s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)s->opts.max_header_memory, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (!d)
        snprintf(err, errlen, "listen tcp %s: cannot start the HTTP server", s->listen_address);
    return d;
}

int http_server_start(http_server *s, char *err, size_t errlen)
{
    s->fd = bind_listen(s->listen_address, &s->port, err, errlen);
    if (s->fd < 0)
        return -1;
    s->daemon = start_daemon(s, s->fd, err, errlen);
    if (!s->daemon) {
        close(s->fd);
        s->fd = -1;
        return -1;
    }
    s->pools[HTTP_POOL_SLOW] = workpool_new(s->opts.slow_threads, s->opts.slow_queue);
    s->pools[HTTP_POOL_UPLOAD] = workpool_new(s->opts.upload_threads, s->opts.upload_queue);
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0)
        abort();
    s->reaper_running = true;
    return 0;
}

static size_t daemon_connections(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return di ? di->num_connections : 0;
}

static void *reap_daemon(void *arg)
{
    retired_daemon *r = arg;
    /* Idle keep-alive connections close within the header timeout; requests finish within their own. */
    while (!atomic_load(&r->stop_now) && daemon_connections(r->daemon) > 0) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!atomic_load(&r->stop_now)) {
        MHD_stop_daemon(r->daemon);
        r->daemon = NULL;
    }
    return NULL;
}

int http_server_switch_tls(http_server *s, void *tls_cert_callback, char *err, size_t errlen)
{
    if (!s->daemon)
        return -1;
    void *was = s->opts.tls_cert_callback;
    if (!was == !tls_cert_callback) {
        s->opts.tls_cert_callback = tls_cert_callback;
        return 0;
    }
    /* The new daemon takes over the listening socket; the old one stops accepting and serves the
     * connections it has until they end (a plain HTTP keep-alive connection stays plain). */
    MHD_socket lfd = MHD_quiesce_daemon(s->daemon);
    if (lfd == MHD_INVALID_SOCKET) {
        snprintf(err, errlen, "listen tcp %s: cannot hand the listening socket over", s->listen_address);
        return -1;
    }
    s->opts.tls_cert_callback = tls_cert_callback;
    struct MHD_Daemon *d = start_daemon(s, (int)lfd, err, errlen);
    if (!d) {
        /* Serve on as before from a fresh daemon of the old kind. */
        char e2[256];
        s->opts.tls_cert_callback = was;
        d = start_daemon(s, (int)lfd, e2, sizeof e2);
        if (!d) {
            log_error("web", "cannot serve HTTP any more", "err", e2);
            return -1;
        }
    }
    retired_daemon *r = xcalloc(1, sizeof *r);
    r->daemon = s->daemon;
    s->daemon = d;
    pthread_mutex_lock(&s->retired_mu);
    r->next = s->retired;
    s->retired = r;
    if (pthread_create(&r->reaper, NULL, reap_daemon, r) != 0)
        atomic_store(&r->stop_now, true); /* no reaper: stopped at http_server_free */
    else
        r->reaper_started = true;
    pthread_mutex_unlock(&s->retired_mu);
    return s->opts.tls_cert_callback == tls_cert_callback ? 0 : -1;
}

int http_server_port(const http_server *s)
{
    return s->port;
}

void http_server_free(http_server *s)
{
    if (!s)
        return;
    if (s->daemon) {
        /* Stop accepting, then give in-flight requests (e.g. the /-/quit response) a moment to finish. */
        MHD_socket lfd = MHD_quiesce_daemon(s->daemon);
        if (lfd != MHD_INVALID_SOCKET)
            close(lfd);
        for (int i = 0; i < 200 && atomic_load(&s->in_flight) > 0; i++) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        /* running slow handlers finish, queued ones are answered 503: no connection stays suspended. The
         * pools stay allocated until the daemon stopped: a streamed answer still being sent asks its pool
         * for its next page (refused now: produced on the server thread). */
        workpool_stop(s->pools[HTTP_POOL_SLOW], cancel_slow);
        workpool_stop(s->pools[HTTP_POOL_UPLOAD], cancel_slow);
        /* Replaced daemons: no pool holds their connections any more. */
        for (retired_daemon *r = s->retired, *next; r; r = next) {
            next = r->next;
            atomic_store(&r->stop_now, true);
            if (r->reaper_started)
                pthread_join(r->reaper, NULL);
            if (r->daemon)
                MHD_stop_daemon(r->daemon);
            free(r);
        }
        MHD_stop_daemon(s->daemon);
        workpool_free(s->pools[HTTP_POOL_SLOW], NULL);
        workpool_free(s->pools[HTTP_POOL_UPLOAD], NULL);
        if (s->reaper_running) {
            pthread_mutex_lock(&s->conns_mu);
            s->stopping = true;
            pthread_cond_signal(&s->reaper_cv);
            pthread_mutex_unlock(&s->conns_mu);
            pthread_join(s->reaper, NULL);
        }
    } else if (s->fd >= 0) {
        close(s->fd);
    }
    for (size_t i = 0; i < s->n_routes; i++) {
        free(s->routes[i].method);
        free(s->routes[i].path);
        free(s->routes[i].handler);
    }
    free(s->routes);
    free(s->listen_address);
    pthread_mutex_destroy(&s->retired_mu);
    free(s->prefix);
    pthread_mutex_destroy(&s->conns_mu);
    pthread_cond_destroy(&s->reaper_cv);
    free(s);
}
