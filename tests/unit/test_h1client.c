/* h1client against a real socket server on loopback (a thread): request bytes, keep-alive and its
 * retry, connect errors, the body limit, gzip, and the hand-over to curl for what it does not handle. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "http/h1client.h"

typedef enum mode { M_SERVE, M_CLOSE_AFTER, M_NO_ANSWER, M_RESET, M_RESET_FIRST } mode;

typedef struct server {
    int lfd, port;
    mode m;
    const char *resp; /* sent for each request */
    size_t resp_len;
    pthread_t th;
    pthread_mutex_t mu;
    int conns, reqs;
    char last_req[4096];
    volatile int stop;
    int conn_fd[64];
    pthread_t conn_th[64];
    int n_conn;
} server;

typedef struct conn_arg {
    server *s;
    int fd, conn_no;
} conn_arg;

/* One connection: answers each request by the server's mode. */
static void *serve_conn(void *arg)
{
    conn_arg *ca = arg;
    server *s = ca->s;
    int c = ca->fd, conn_no = ca->conn_no;
    free(ca);
    char buf[4096];
    size_t have = 0;
    for (;;) {
        ssize_t r = recv(c, buf + have, sizeof buf - 1 - have, 0);
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        size_t rl = (size_t)(end + 4 - buf);
        pthread_mutex_lock(&s->mu);
        s->reqs++;
        memcpy(s->last_req, buf, rl);
        s->last_req[rl] = '\0';
        pthread_mutex_unlock(&s->mu);
        memmove(buf, buf + rl, have - rl);
        have -= rl;
        if (s->m == M_NO_ANSWER) {
            while (!s->stop && recv(c, buf, sizeof buf, 0) > 0)
                ;
            break;
        }
        if (s->m == M_RESET || (s->m == M_RESET_FIRST && conn_no == 1)) {
            struct linger lg = {1, 0};
            setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            break;
        }
        send(c, s->resp, s->resp_len, MSG_NOSIGNAL);
        if (s->m == M_CLOSE_AFTER)
            break;
    }
    pthread_mutex_lock(&s->mu);
    s->conn_fd[conn_no - 1] = -1; /* server_stop must not shut down a reused descriptor */
    close(c);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void *serve(void *arg)
{
    server *s = arg;
    for (;;) {
        int c = accept(s->lfd, NULL, NULL);
        if (c < 0)
            return NULL;
        pthread_mutex_lock(&s->mu);
        int conn_no = ++s->conns;
        pthread_mutex_unlock(&s->mu);
        if (conn_no > 64) {
            close(c);
            continue;
        }
        conn_arg *ca = malloc(sizeof *ca);
        ca->s = s;
        ca->fd = c;
        ca->conn_no = conn_no;
        pthread_mutex_lock(&s->mu);
        s->conn_fd[conn_no - 1] = c;
        pthread_create(&s->conn_th[conn_no - 1], NULL, serve_conn, ca);
        s->n_conn = conn_no;
        pthread_mutex_unlock(&s->mu);
    }
}

static void server_start(server *s, mode m, const char *resp, size_t len)
{
    memset(s, 0, sizeof *s);
    s->m = m;
    s->resp = resp;
    s->resp_len = len ? len : (resp ? strlen(resp) : 0);
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    listen(s->lfd, 16);
    pthread_create(&s->th, NULL, serve, s);
}

static void server_stop(server *s)
{
    s->stop = 1;
    shutdown(s->lfd, SHUT_RDWR);
    close(s->lfd);
    pthread_cancel(s->th);
    pthread_join(s->th, NULL);
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_conn; i++)
        if (s->conn_fd[i] >= 0)
            shutdown(s->conn_fd[i], SHUT_RDWR); /* ends its recv (the thread closes it) */
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n_conn; i++)
        pthread_join(s->conn_th[i], NULL);
}

typedef struct body {
    char b[1 << 20];
    size_t len, limit;
} body;

static int sink(void *ctx, const char *p, size_t n)
{
    body *b = ctx;
    if (b->len + n > b->limit)
        return -1;
    memcpy(b->b + b->len, p, n);
    b->len += n;
    b->b[b->len] = '\0';
    return 0;
}

static const char *const HDRS[] = {"Accept: application/json", "User-Agent: lookout/test",
                                   "X-Prometheus-Scrape-Timeout-Seconds: 10", NULL};

/* Runs one request to completion (or until `budget_ms` of silence: then a timeout). */
static h1c_state run(h1_client *c, int epfd, body *b, int64_t limit, const char *basic, h1c_outcome *o,
                     int budget_ms)
{
    b->len = 0;
    b->limit = (size_t)limit;
    h1c_state st = h1_client_start(c, basic, HDRS, limit, sink, b, o);
    while (st == H1C_RUNNING) {
        struct epoll_event ev;
        int n = epoll_wait(epfd, &ev, 1, budget_ms);
        if (n <= 0) {
            h1_client_timeout(c, o);
            return H1C_DONE;
        }
        cr_assert_eq(ev.data.fd, h1_client_fd(c));
        st = h1_client_event(c, ev.events, o);
    }
    return st;
}

static char url_buf[128];
static const char *url(int port, const char *path)
{
    snprintf(url_buf, sizeof url_buf, "http://127.0.0.1:%d%s", port, path);
    return url_buf;
}

#define OK_RESP "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}"

Test(h1client, request_bytes_and_keep_alive)
{
    server s;
    server_start(&s, M_SERVE, OK_RESP, 0);
    int epfd = epoll_create1(0);
    h1_client *c = h1_client_new(url(s.port, "/errors?a=b&c=%20d"), epfd, NULL);
    cr_assert_not_null(c);
    static body b;
    h1c_outcome o;
    cr_assert_eq(run(c, epfd, &b, 1000, "Authorization: Basic dTpw", &o, 5000), H1C_DONE);
    cr_assert_eq(o.error, H1E_NONE);
    cr_assert_eq(o.status, 200);
    cr_assert_str_eq(o.reason, "OK");
    cr_assert_str_eq(b.b, "{\"a\":1}");
    char want[1024];
    snprintf(want, sizeof want,
             "GET /errors?a=b&c=%%20d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Basic dTpw\r\n"
             "Accept-Encoding: %s\r\nAccept: application/json\r\nUser-Agent: lookout/test\r\n"
             "X-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n",
             s.port, h1_accept_encoding());
    cr_assert_str_eq(s.last_req, want);
    int fd = h1_client_fd(c);
    cr_assert_geq(fd, 0);
    /* The request line and Host are built once per client; what follows them is built per request (curl's
     * order: Authorization after Host, before Accept-Encoding): the next requests carry no Authorization. */
    snprintf(want, sizeof want,
             "GET /errors?a=b&c=%%20d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept-Encoding: %s\r\n"
             "Accept: application/json\r\nUser-Agent: lookout/test\r\n"
             "X-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n",
             s.port, h1_accept_encoding());
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(run(c, epfd, &b, 1000, NULL, &o, 5000), H1C_DONE);
        cr_assert_str_eq(b.b, "{\"a\":1}");
        cr_assert_str_eq(s.last_req, want, "request %d", i + 2);
    }
    cr_assert_eq(h1_client_fd(c), fd, "the connection is kept");
    cr_assert_eq(s.conns, 1);
    cr_assert_eq(s.reqs, 4);
    h1_client_free(c);
    server_stop(&s);
    close(epfd);
}

Test(h1client, closed_idle_connection_is_retried_once)
{
    server s;
    server_start(&s, M_CLOSE_AFTER, OK_RESP, 0);
    int epfd = epoll_create1(0);
    h1_client *c = h1_client_new(url(s.port, "/"), epfd, NULL);
    static body b;
    h1c_outcome o;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(run(c, epfd, &b, 1000, NULL, &o, 5000), H1C_DONE, "request %d", i);
        cr_assert_eq(o.status, 200);
        cr_assert_str_eq(b.b, "{\"a\":1}");
    }
    cr_assert_eq(s.reqs, 3);
    h1_client_free(c);
    server_stop(&s);
    close(epfd);
}

Test(h1client, reset_on_a_fresh_connection_goes_to_curl)
{
    server s;
    server_start(&s, M_RESET, NULL, 0);
    int epfd = epoll_create1(0);
    h1_client *c = h1_client_new(url(s.port, "/"), epfd, NULL);
    static body b;
    h1c_outcome o;
    cr_assert_eq(run(c, epfd, &b, 1000, NULL, &o, 5000), H1C_FALLBACK);
    cr_assert_eq(s.conns, 1, "no retry on a new connection");
    cr_assert(h1_client_usable(c), "a reset is no reason to leave the fast path");
    cr_assert_eq(h1_client_fd(c), -1);
    h1_client_free(c);
    server_stop(&s);
    close(epfd);
}

Test(h1client, refused_and_timeout_texts)
{
    server s;
    server_start(&s, M_NO_ANSWER, NULL, 0);
    int port = s.port;
    int epfd = epoll_create1(0);
    h1_client *c = h1_client_new(url(port, "/x"), epfd, NULL);
    static body b;
    h1c_outcome o;
    cr_assert_eq(run(c, epfd, &b, 1000, NULL, &o, 200), H1C_DONE);
    cr_assert_eq(o.error, H1E_TIMEOUT);
    cr_assert_eq(o.status, 0, "no response: status 0");
    cr_assert_eq(o.os_errno, 0);
    cr_assert_str_eq(o.reason, "");
    char txt[512], want[512];
    h1_client_describe(c, &o, txt, sizeof txt);
    snprintf(want, sizeof want, "Get \"http://127.0.0.1:%d/x\": context deadline exceeded", port);
    cr_assert_str_eq(txt, want);
    cr_assert_eq(h1_client_fd(c), -1, "a timed-out connection is closed");
    server_stop(&s);
    h1_client_free(c);
    c = h1_client_new(url(port, "/x"), epfd, NULL); /* nobody listens there now */
    cr_assert_eq(run(c, epfd, &b, 1000, NULL, &o, 5000), H1C_DONE);
    cr_assert_eq(o.error, H1E_CONNECT);
    cr_assert_eq(o.os_errno, ECONNREFUSED);
    cr_assert_eq(o.status, 0, "no response: status 0");
    cr_assert_str_eq(o.reason, "");
    cr_assert_eq(h1_client_fd(c), -1, "a refused connection is closed");
    cr_assert_not(h1_client_busy(c), "a refused request is over");
    h1_client_describe(c, &o, txt, sizeof txt);
    snprintf(want, sizeof want, "Get \"http://127.0.0.1:%d/x\": dial tcp 127.0.0.1:%d: connect: connection refused",
             port, port);
    cr_assert_str_eq(txt, want);
    h1_client_free(c);
    close(epfd);
}

Test(h1client, body_limit)
{
    server s;
    server_start(&s, M_SERVE, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n01234567890", 0);
    int epfd = epoll_create1(0);
    h1_client *c = h1_client_new(url(s.port, "/"), epfd, NULL);
    static body b;
    h1c_outcome o;
    cr_assert_eq(run(c, epfd, &b, 10, NULL, &o, 5000), H1C_DONE);
    cr_assert_eq(o.error, H1E_LIMIT, "Content-Length above the limit");
    cr_assert_eq(o.status, 200);
    cr_assert_eq(o.os_errno, 0);
    cr_assert_str_eq(o.reason, "", "the outcome's other fields are cleared");
    cr_assert_eq(b.len, 0, "refused before the body");
    cr_assert_eq(run(c, epfd, &b, 11, NULL, &o, 5000), H1C_DONE);
    cr_assert_eq(o.error, H1E_NONE, "exactly the limit is fine");
    h1_client_free(c);
    server_stop(&s);
    server_start(&s, M_SERVE, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n6\r\n678901\r\n0\r\n\r\n", 0);
    c = h1_client_new(url(s.port, "/"), epfd, NULL);
    cr_assert_eq(run(c, epfd, &b, 10, NULL, &o, 5000), H1C_DONE);
    cr_assert_eq(o.error, H1E_LIMIT, "a chunked body past the limit");
    cr_assert_eq(run(c, epfd, &b, 12, NULL, &o, 5000), H1C_DONE);
    cr_assert_eq(o.error, H1E_NONE);
    cr_assert_str_eq(b.b, "012345678901");
    h1_client_free(c);
    server_stop(&s);
    close(epfd);
}

static size_t gzip_of(const char *in, char *out, size_t cap)
{
    z_stream z = {0};
    deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)strlen(in);
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    return n;
}

Test(h1client, gzip_is_inflated_and_limited_after_inflating)
{
    static char resp[70000], gz[65536], plain[60001];
    memset(plain, 'x', 60000);
    size_t gl = gzip_of(plain, gz, sizeof gz);
    int n = snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %zu\r\n\r\n", gl);
    memcpy(resp + n, gz, gl);
    server s;
    server_start(&s, M_SERVE, resp, (size_t)n + gl);
    int epfd = epoll_create1(0);
    h1_client *c = h1_client_new(url(s.port, "/"), epfd, NULL);
    static body b;
    h1c_outcome o;
    cr_assert_eq(run(c, epfd, &b, 100000, NULL, &o, 5000), H1C_DONE);
    cr_assert_eq(o.error, H1E_NONE);
    cr_assert_eq(b.len, 60000);
    cr_assert(memcmp(b.b, plain, 60000) == 0);
    cr_assert_eq(run(c, epfd, &b, 50000, NULL, &o, 5000), H1C_DONE);
    cr_assert_eq(o.error, H1E_LIMIT, "the inflated size counts");
    h1_client_free(c);
    server_stop(&s);
    /* a corrupt gzip body: curl's business */
    snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 16\r\n\r\n"
                                "garbage!garbage!");
    server_start(&s, M_SERVE, resp, 0);
    c = h1_client_new(url(s.port, "/"), epfd, NULL);
    cr_assert_eq(run(c, epfd, &b, 100000, NULL, &o, 5000), H1C_FALLBACK);
    h1_client_free(c);
    server_stop(&s);
    close(epfd);
}

Test(h1client, unusual_responses_go_to_curl)
{
    struct { const char *resp; bool usable_after; } cases[] = {
        {"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n", false},
        {"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 0\r\n\r\n", false},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", true},        /* truncated, then closed */
        {"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", true},          /* malformed */
        {"NOT HTTP AT ALL\r\n\r\n", true},
    };
    int epfd = epoll_create1(0);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        server s;
        server_start(&s, M_CLOSE_AFTER, cases[i].resp, 0);
        h1_client *c = h1_client_new(url(s.port, "/"), epfd, NULL);
        static body b;
        h1c_outcome o;
        cr_assert_eq(run(c, epfd, &b, 1000, NULL, &o, 5000), H1C_FALLBACK, "case %zu", i);
        cr_assert_eq(h1_client_usable(c), cases[i].usable_after, "case %zu", i);
        cr_assert_eq(h1_client_fd(c), -1, "case %zu: connection closed", i);
        h1_client_free(c);
        server_stop(&s);
    }
    close(epfd);
}

Test(h1client, status_without_body_and_until_close)
{
    server s;
    server_start(&s, M_CLOSE_AFTER, "HTTP/1.0 500 Broken Thing\r\n\r\nwhatever", 0);
    int epfd = epoll_create1(0);
    h1_client *c = h1_client_new(url(s.port, "/"), epfd, NULL);
    static body b;
    h1c_outcome o;
    cr_assert_eq(run(c, epfd, &b, 1000, NULL, &o, 5000), H1C_DONE);
    cr_assert_eq(o.status, 500);
    cr_assert_str_eq(o.reason, "Broken Thing");
    cr_assert_str_eq(b.b, "whatever");
    cr_assert_eq(h1_client_fd(c), -1);
    h1_client_free(c);
    server_stop(&s);
    close(epfd);
}

Test(h1client, eligible_urls)
{
    const char *yes[] = {"http://127.0.0.1:9090/metrics", "http://127.0.0.1/", "http://127.0.0.1",
                         "http://10.1.2.3:80/-/exceptions?x=1&y=%2F", "http://[::1]:8080/x", "http://[fe80::1]/",
                         "http://127.0.0.1:1/a/b.c/d..e/"};
    const char *no[] = {"https://127.0.0.1/", "HTTP://127.0.0.1/", "http://localhost:80/", "http://127.1/",
                        "http://127.0.0.01/", "http://[::0001]/", "http://[::1%25eth0]/", "http://u:p@127.0.0.1/",
                        "http://127.0.0.1:080/", "http://127.0.0.1:65536/", "http://127.0.0.1:/",
                        "http://127.0.0.1/a/../b", "http://127.0.0.1/a/./b", "http://127.0.0.1/a/..",
                        "http://127.0.0.1/#frag", "http://127.0.0.1/a b", "http://127.0.0.1/a%zz",
                        "http://127.0.0.1/\"", "http://[::1/", "http://[::1]x/", "http://[FE80::1]/",
                        "http://127.0.0.1/\xc3\xa9", "http://127.0.0.1:9090x/",
                        /* hosts of 63 and 64 characters, the second as long as the parser's buffer */
                        "http://127.0000000000000000000000000000000000000000000000000000000.0.1/",
                        "http://127.00000000000000000000000000000000000000000000000000000000.0.1/"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        cr_assert(h1_url_eligible(yes[i]), "%s", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        cr_assert_not(h1_url_eligible(no[i]), "%s", no[i]);
}

Test(h1client, host_header_and_target_forms)
{
    server s;
    server_start(&s, M_SERVE, OK_RESP, 0);
    int epfd = epoll_create1(0);
    char u[128];
    snprintf(u, sizeof u, "http://127.0.0.1:%d?q=1", s.port);
    h1_client *c = h1_client_new(u, epfd, NULL);
    static body b;
    h1c_outcome o;
    cr_assert_eq(run(c, epfd, &b, 1000, NULL, &o, 5000), H1C_DONE);
    char want[128];
    snprintf(want, sizeof want, "GET /?q=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", s.port);
    cr_assert(strncmp(s.last_req, want, strlen(want)) == 0, "%s", s.last_req);
    h1_client_free(c);
    server_stop(&s);
    close(epfd);
}

Test(h1client, idle_connections_are_bounded)
{
    server s;
    server_start(&s, M_SERVE, OK_RESP, 0);
    int epfd = epoll_create1(0);
    h1_idle_budget budget = {.idle = 0, .max = 1};
    h1_client *a = h1_client_new(url(s.port, "/a"), epfd, &budget);
    h1_client *b = h1_client_new(url(s.port, "/b"), epfd, &budget);
    static body bd;
    h1c_outcome o;
    cr_assert_eq(run(a, epfd, &bd, 1000, NULL, &o, 5000), H1C_DONE);
    cr_assert_eq(budget.idle, 1);
    cr_assert_eq(run(b, epfd, &bd, 1000, NULL, &o, 5000), H1C_DONE);
    cr_assert_eq(o.status, 200);
    cr_assert_eq(budget.idle, 1, "the second is closed after its response");
    cr_assert_geq(h1_client_fd(a), 0);
    cr_assert_eq(h1_client_fd(b), -1);
    cr_assert_eq(run(a, epfd, &bd, 1000, NULL, &o, 5000), H1C_DONE, "a reuses its connection");
    cr_assert_eq(budget.idle, 1);
    h1_client_idle_event(a); /* the server closed it, say */
    cr_assert_eq(budget.idle, 0);
    cr_assert_eq(run(b, epfd, &bd, 1000, NULL, &o, 5000), H1C_DONE);
    cr_assert_eq(budget.idle, 1, "now b may keep its connection");
    cr_assert_geq(h1_client_fd(b), 0);
    h1_client_free(b);
    cr_assert_eq(budget.idle, 0);
    h1_client_free(a);
    cr_assert_eq(s.conns, 3, "a, b (closed after its response), b again");
    server_stop(&s);
    close(epfd);
}

/* ---- receiving into the sink's buffer (h1_client_set_space) ------------------------------------- */

/* A sink that owns its buffer and offers the client `room` bytes of it per recv, as the scrape loop's
 * does (scheduler_fast.c): in-place pieces are kept, others moved or copied to the body's end. */
typedef struct sbody {
    char buf[1 << 17];
    size_t off, len, limit, room;
    int in_place, moved, copied;
} sbody;

static char *sb_space(void *ctx, size_t *n)
{
    sbody *b = ctx;
    size_t pos = b->len ? b->off + b->len : 0;
    size_t free_ = sizeof b->buf - pos - 1;
    *n = b->room < free_ ? b->room : free_;
    return b->buf + pos;
}

static int sb_sink(void *ctx, const char *p, size_t n)
{
    sbody *b = ctx;
    if (b->len + n > b->limit)
        return -1;
    bool inside = p >= b->buf && p < b->buf + sizeof b->buf;
    if (b->len == 0)
        b->off = inside ? (size_t)(p - b->buf) : 0;
    char *dst = b->buf + b->off + b->len;
    cr_assert(b->off + b->len + n < sizeof b->buf);
    if (dst == p)
        b->in_place++;
    else if (inside) {
        cr_assert(p > dst, "a piece inside the buffer lies before the body's end");
        memmove(dst, p, n);
        b->moved++;
    } else {
        memcpy(dst, p, n);
        b->copied++;
    }
    b->len += n;
    return 0;
}

static h1c_state srun(h1_client *c, int epfd, sbody *b, size_t room, int64_t limit, h1c_outcome *o)
{
    b->off = b->len = 0;
    b->in_place = b->moved = b->copied = 0;
    b->room = room;
    b->limit = (size_t)limit;
    h1c_state st = h1_client_start(c, NULL, HDRS, limit, sb_sink, b, o);
    while (st == H1C_RUNNING) {
        struct epoll_event ev;
        if (epoll_wait(epfd, &ev, 1, 5000) <= 0) {
            h1_client_timeout(c, o);
            return H1C_DONE;
        }
        st = h1_client_event(c, ev.events, o);
    }
    return st;
}

/* The body arrives in as many pieces as the room allows (1 byte per recv at the least) and lands whole:
 * in place for a Content-Length body, moved down over the framing for a chunked one, inflated from a copy
 * for gzip (plain or chunked). The limit is kept at its edge in each form. */
Test(h1client, body_received_into_the_sinks_buffer_in_any_pieces)
{
    static char plain[3001], gz[8192], resp[5][16384];
    for (int i = 0; i < 3000; i++)
        plain[i] = (char)('A' + (i * 7 + i / 13) % 26);
    size_t gl = gzip_of(plain, gz, sizeof gz);
    size_t rl[5];
    int n = snprintf(resp[0], sizeof resp[0], "HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n");
    memcpy(resp[0] + n, plain, 3000);
    rl[0] = (size_t)n + 3000;
    /* chunked: 1000, 1, 1999 bytes */
    n = snprintf(resp[1], sizeof resp[1], "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n%.1000s\r\n"
                 "1;ext=1\r\n%.1s\r\n7cf\r\n%.1999s\r\n0\r\n\r\n", plain, plain + 1000, plain + 1001);
    rl[1] = (size_t)n;
    n = snprintf(resp[2], sizeof resp[2], "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %zu\r\n\r\n",
                 gl);
    memcpy(resp[2] + n, gz, gl);
    rl[2] = (size_t)n + gl;
    size_t half = gl / 2;
    n = snprintf(resp[3], sizeof resp[3], "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked"
                 "\r\n\r\n%zx\r\n", half);
    memcpy(resp[3] + n, gz, half);
    n += (int)half;
    n += snprintf(resp[3] + n, sizeof resp[3] - (size_t)n, "\r\n%zx\r\n", gl - half);
    memcpy(resp[3] + n, gz + half, gl - half);
    n += (int)(gl - half);
    n += snprintf(resp[3] + n, sizeof resp[3] - (size_t)n, "\r\n0\r\n\r\n");
    rl[3] = (size_t)n;
    const char *what[] = {"identity", "chunked", "gzip", "gzip chunked"};
    static const size_t rooms[] = {1, 2, 7, 100, 1024, 60000};
    static sbody b;
    int epfd = epoll_create1(0);
    for (int k = 0; k < 4; k++) {
        server s;
        server_start(&s, M_SERVE, resp[k], rl[k]);
        h1_client *c = h1_client_new(url(s.port, "/"), epfd, NULL);
        h1_client_set_space(c, sb_space);
        for (size_t r = 0; r < sizeof rooms / sizeof *rooms; r++) {
            h1c_outcome o;
            cr_assert_eq(srun(c, epfd, &b, rooms[r], 3000, &o), H1C_DONE, "%s room %zu", what[k], rooms[r]);
            cr_assert_eq(o.error, H1E_NONE, "%s room %zu", what[k], rooms[r]);
            cr_assert_eq(o.status, 200);
            cr_assert_eq(b.len, 3000, "%s room %zu: %zu bytes", what[k], rooms[r], b.len);
            cr_assert(memcmp(b.buf + b.off, plain, 3000) == 0, "%s room %zu: body differs", what[k], rooms[r]);
            if (k == 0)
                cr_assert(b.moved == 0 && b.copied == 0, "identity room %zu: %d moved, %d copied", rooms[r],
                          b.moved, b.copied);
            if (k == 1 && rooms[r] == 60000)
                cr_assert(b.in_place == 1 && b.moved == 2 && b.copied == 0, "chunked: %d %d %d", b.in_place,
                          b.moved, b.copied);
            if (k >= 2)
                cr_assert(b.in_place == 0 && b.moved == 0 && b.copied > 0, "%s: inflated text copied", what[k]);
            cr_assert_eq(srun(c, epfd, &b, rooms[r], 2999, &o), H1C_DONE);
            cr_assert_eq(o.error, H1E_LIMIT, "%s room %zu: one byte over the limit", what[k], rooms[r]);
        }
        h1_client_free(c);
        server_stop(&s);
    }
    close(epfd);
}

/* A Content-Length above the limit fails as soon as the headers are in, before any body byte reaches the
 * sink (here the body never completes: waiting for it would end in the timeout). */
Test(h1client, content_length_above_the_limit_fails_before_the_body)
{
    server s;
    server_start(&s, M_SERVE, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", 0);
    int epfd = epoll_create1(0);
    h1_client *c = h1_client_new(url(s.port, "/"), epfd, NULL);
    static body b;
    h1c_outcome o;
    cr_assert_eq(run(c, epfd, &b, 10, NULL, &o, 2000), H1C_DONE);
    cr_assert_eq(o.error, H1E_LIMIT);
    cr_assert_eq(o.status, 200);
    cr_assert_eq(b.len, 0, "%zu body bytes reached the sink", b.len);
    cr_assert_eq(h1_client_fd(c), -1, "the connection is closed");
    h1_client_free(c);
    server_stop(&s);
    close(epfd);
}

/* The caller's errno may still hold EINTR from an interrupted epoll_wait before a later successful one
 * (a successful call leaves errno alone): the end of a body delimited by the connection's close must
 * still end the request. */
Test(h1client, end_of_stream_with_a_stale_eintr, .timeout = 20)
{
    server s;
    server_start(&s, M_CLOSE_AFTER, "HTTP/1.0 200 OK\r\n\r\nuntil close", 0);
    int epfd = epoll_create1(0);
    h1_client *c = h1_client_new(url(s.port, "/"), epfd, NULL);
    static body b;
    b.len = 0;
    b.limit = 1000;
    h1c_outcome o;
    h1c_state st = h1_client_start(c, NULL, HDRS, 1000, sink, &b, &o);
    while (st == H1C_RUNNING) {
        struct epoll_event ev;
        cr_assert_eq(epoll_wait(epfd, &ev, 1, 5000), 1);
        errno = EINTR;
        st = h1_client_event(c, ev.events, &o);
    }
    cr_assert_eq(st, H1C_DONE);
    cr_assert_eq(o.error, H1E_NONE);
    cr_assert_eq(o.status, 200);
    cr_assert_str_eq(b.b, "until close");
    h1_client_free(c);
    server_stop(&s);
    close(epfd);
}

/* The server resets a kept-alive connection while it is idle: sending the next request fails at once,
 * and the client retries it once on a new connection (the request never reached the server). */
Test(h1client, reset_idle_connection_fails_the_send_and_is_retried)
{
    server s;
    server_start(&s, M_SERVE, OK_RESP, 0);
    int epfd = epoll_create1(0);
    h1_client *c = h1_client_new(url(s.port, "/"), epfd, NULL);
    static body b;
    h1c_outcome o;
    cr_assert_eq(run(c, epfd, &b, 1000, NULL, &o, 5000), H1C_DONE);
    cr_assert_eq(o.status, 200);
    pthread_mutex_lock(&s.mu);
    int sfd = s.conn_fd[0];
    struct linger lg = {1, 0};
    setsockopt(sfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    shutdown(sfd, SHUT_RD); /* ends the server thread's recv: it closes the socket, with a reset */
    pthread_mutex_unlock(&s.mu);
    struct epoll_event ev;
    cr_assert_eq(epoll_wait(epfd, &ev, 1, 5000), 1, "the reset did not arrive");
    cr_assert_eq(ev.data.fd, h1_client_fd(c));
    cr_assert_eq(run(c, epfd, &b, 1000, NULL, &o, 2000), H1C_DONE);
    cr_assert_eq(o.error, H1E_NONE);
    cr_assert_eq(o.status, 200);
    cr_assert_str_eq(b.b, "{\"a\":1}");
    cr_assert_eq(s.conns, 2);
    h1_client_free(c);
    server_stop(&s);
    close(epfd);
}

/* A connection on descriptor 0 (a daemon with stdin closed) is kept alive like any other.
 * The helper server's thread shares this process's descriptor table, and a blocked accept() reserves the
 * lowest free descriptor before it waits (Linux allocates it first): if that thread enters accept() after
 * descriptor 0 is closed (it starts late under AddressSanitizer), the server, not the client, gets 0. So the
 * client is made again until its socket is 0 (the server is by then waiting in accept with a higher one). */
Test(h1client, connection_on_descriptor_0_is_kept)
{
    server s;
    server_start(&s, M_SERVE, OK_RESP, 0);
    int epfd = epoll_create1(0);
    int saved = dup(0);
    static body b;
    h1c_outcome o;
    h1_client *c = NULL;
    int fd = -1, conns_before = 0;
    for (int attempt = 0; attempt < 200 && fd != 0; attempt++) {
        if (c) {
            h1_client_free(c);
            usleep(5000);
        }
        pthread_mutex_lock(&s.mu);
        conns_before = s.conns;
        pthread_mutex_unlock(&s.mu);
        c = h1_client_new(url(s.port, "/"), epfd, NULL);
        close(0);
        cr_assert_eq(run(c, epfd, &b, 1000, NULL, &o, 5000), H1C_DONE);
        fd = h1_client_fd(c);
        if (fd != 0 && saved >= 0)
            dup2(saved, 0);
    }
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(run(c, epfd, &b, 1000, NULL, &o, 5000), H1C_DONE);
        cr_assert_eq(o.status, 200);
    }
    pthread_mutex_lock(&s.mu);
    int conns = s.conns - conns_before;
    pthread_mutex_unlock(&s.mu);
    h1_client_free(c);
    if (saved >= 0) {
        dup2(saved, 0);
        close(saved);
    }
    cr_assert_eq(fd, 0, "the precondition: the client's socket is descriptor 0");
    cr_assert_eq(conns, 1, "%d connections for 4 requests", conns);
    server_stop(&s);
    close(epfd);
}

/* gzip with back-references far into its 32 KiB window (a 20,000-byte block of noise, twice: the second
 * copy refers 20,000 bytes back) inflates whole, as curl inflates it. */
Test(h1client, gzip_with_references_across_the_whole_window)
{
    static char plain[40001], gz[65536], resp[70000];
    unsigned x = 12345;
    for (int i = 0; i < 20000; i++) {
        x = x * 1103515245u + 12345u;
        plain[i] = (char)('a' + (x >> 16) % 26);
    }
    memcpy(plain + 20000, plain, 20000);
    plain[40000] = '\0';
    size_t gl = gzip_of(plain, gz, sizeof gz);
    cr_assert_lt(gl, 30000, "the second copy was not compressed as a reference (%zu bytes)", gl);
    int n = snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %zu\r\n\r\n", gl);
    memcpy(resp + n, gz, gl);
    server s;
    server_start(&s, M_SERVE, resp, (size_t)n + gl);
    int epfd = epoll_create1(0);
    h1_client *c = h1_client_new(url(s.port, "/"), epfd, NULL);
    static body b;
    h1c_outcome o;
    cr_assert_eq(run(c, epfd, &b, 100000, NULL, &o, 5000), H1C_DONE);
    cr_assert_eq(o.error, H1E_NONE);
    cr_assert_eq(b.len, 40000);
    cr_assert(memcmp(b.b, plain, 40000) == 0);
    h1_client_free(c);
    server_stop(&s);
    close(epfd);
}
