/* server_response: the request accessors and response builders handlers use (api_request_*, api_response_*)
 * and how a response goes out: whole, or streamed page by page (on the route's pool when it has one). Part
 * of http/server (see server.c). */
#include "http/server_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

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

/* pool: where a streamed answer's later pages are produced (NULL: on the server thread). */
enum MHD_Result http_server_send_response(struct MHD_Connection *conn, api_response *resp, workpool *pool)
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

void http_server_response_free(api_response *resp)
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
