/* server: see server.h. This file holds the routes, request dispatch (limits, preflight, pools) and the
 * server's life; requests and responses are in server_response.c, connections, listening and TLS switching
 * in server_conn.c. We bind the listening socket ourselves (so that a busy port gives a clear error
 * and ":PORT" means dual-stack like Go) and hand it to libmicrohttpd with MHD_OPTION_LISTEN_SOCKET. */
#include "http/server.h"
#include "http/server_internal.h"

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

/* The path the router sees for a request to the redirecting "/" or the bare prefix. It cannot come from a
 * client: with a prefix every path a client sends is either mapped here, to "" (no route) or to what
 * follows the prefix, which starts with "/". */
#define PREFIX_REDIRECT_PATH "\x01prefix"

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
    enum MHD_Result ret = http_server_send_response(conn, &resp, NULL);
    count_request(st, resp.status);
    http_server_response_free(&resp);
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
    enum MHD_Result ret = http_server_send_response(conn, resp, NULL);
    count_request(st, resp->status);
    http_server_response_free(resp);
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
        http_server_response_free(&resp);
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
    http_server_response_free(&resp);
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
        enum MHD_Result ret = http_server_send_response(conn, &st->resp, s->pools[st->rt->pool]);
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
    enum MHD_Result ret = http_server_send_response(conn, &st->resp, NULL);
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

enum MHD_Result http_server_on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
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
        http_server_conn_phase(s, conn, CT_BODY);
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
            http_server_response_free(&resp);
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
    http_server_conn_phase(s, conn, CT_BUSY); /* the request is read */
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
    enum MHD_Result ret = http_server_send_response(conn, &resp, NULL);
    count_request(st, resp.status);
    http_server_response_free(&resp);
    return ret;
}

void http_server_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
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
    http_server_response_free(&st->resp);
    free(st);
    *con_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
    /* a keep-alive connection may wait for its next request up to the read timeout (then the header
     * timeout from that request's first line: on_request_line) */
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned int)s->opts.timeout_s);
    http_server_conn_phase(s, conn, CT_IDLE);
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
        /* closed only now: its threads may still use the quiesced socket until the daemon stopped
         * (libmicrohttpd's contract), and a number closed earlier can be reused by another socket */
        if (lfd != MHD_INVALID_SOCKET)
            close(lfd);
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
