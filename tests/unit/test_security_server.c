/* Security review regressions for the HTTP server (src/http/server.c, src/api/status.c, src/api/ui.c) over a real socket:
 * early 413 on a declared or chunked oversized body, header and URL limits, idle (slowloris) timeout,
 * path traversal on /static/, lifecycle endpoints, nosniff on every answer. Raw sockets, so that the
 * test controls exactly what the client sends and how long it waits. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/push_api.h"
#include "http/server.h"
#include "api/status.h"
#include "api/ui.h"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "connect: %s", strerror(errno));
    return fd;
}

/* Sends all of s; returns false when the peer closed or reset (that is allowed after a 413). */
static bool send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        s += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads until the peer closes, the buffer is full, or ms pass. Returns the bytes read (NUL-terminated);
 * *closed tells whether the peer closed the connection. */
static size_t read_reply(int fd, char *buf, size_t cap, int ms, bool *closed)
{
    size_t n = 0;
    int64_t deadline = mono_ms() + ms;
    *closed = false;
    while (n + 1 < cap) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            break;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        if (r <= 0) {
            *closed = true;
            break;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    return n;
}

static int status_of(const char *reply)
{
    int code = 0;
    if (sscanf(reply, "HTTP/1.%*d %d", &code) != 1)
        return 0;
    return code;
}

static void echo(void *ctx, const api_request *req, api_response *resp)
{
    (void)ctx;
    strbuf_printf(&resp->body, "len=%zu", req->body_len);
}

static http_server *start(status_api *st, int *port, unsigned timeout_s)
{
    http_server_options o = {.listen_address = "127.0.0.1:0", .threads = 2, .max_body = 4096,
                             .timeout_s = timeout_s};
    http_server *s = http_server_new(&o);
    status_api_register(st, s);
    ui_register(s);
    http_server_route(s, "POST", "/echo", false, echo, NULL);
    char err[256];
    cr_assert_eq(http_server_start(s, err, sizeof err), 0, "%s", err);
    *port = http_server_port(s);
    return s;
}

/* One request on a fresh connection; returns the status code, reply text in buf. */
static int exchange(int port, const char *req, size_t n, char *buf, size_t cap)
{
    int fd = dial(port);
    send_all(fd, req, n);
    bool closed;
    read_reply(fd, buf, cap, 3000, &closed);
    close(fd);
    return status_of(buf);
}

Test(security_server, declared_oversized_body_is_refused_before_upload)
{
    status_api st = {0};
    int port;
    http_server *s = start(&st, &port, 10);
    /* Declares 10 GB and sends none of it: the 413 must come at once, not after a 10 GB upload. */
    const char *req = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n";
    int fd = dial(port);
    cr_assert(send_all(fd, req, strlen(req)));
    char buf[4096];
    bool closed;
    int64_t t0 = mono_ms();
    read_reply(fd, buf, sizeof buf, 3000, &closed);
    cr_expect_eq(status_of(buf), 413, "reply: %s", buf);
    cr_expect(mono_ms() - t0 < 2000, "413 took %lld ms", (long long)(mono_ms() - t0));
    cr_expect(strstr(buf, "limit 4096 bytes") != NULL, "reply: %s", buf);
    close(fd);
    /* A Content-Length that does not fit 64 bits is refused too (400 from libmicrohttpd or our 413). */
    const char *req2 = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n";
    int code = exchange(port, req2, strlen(req2), buf, sizeof buf);
    cr_expect(code == 413 || code == 400, "reply: %s", buf);
    /* Within the limit still works. */
    const char *ok = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    cr_expect_eq(exchange(port, ok, strlen(ok), buf, sizeof buf), 200, "reply: %s", buf);
    cr_expect(strstr(buf, "len=5") != NULL);
    http_server_free(s);
}

/* Sends a chunked body of up to max bytes in 1 KiB chunks, stopping early when the server answers or
 * closes. Returns the bytes sent; the reply (if any) in buf. */
static size_t send_chunked(int fd, size_t max, char *buf, size_t cap, bool *closed)
{
    const char *hdr = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    cr_assert(send_all(fd, hdr, strlen(hdr)));
    char chunk[1024 + 16];
    int hl = snprintf(chunk, sizeof chunk, "400\r\n");
    memset(chunk + hl, 'x', 1024);
    memcpy(chunk + hl + 1024, "\r\n", 2);
    size_t clen = (size_t)hl + 1026, sent = 0;
    int64_t t0 = mono_ms();
    bool ok = true;
    while (sent < max && mono_ms() - t0 < 5000) {
        if (!(ok = send_all(fd, chunk, clen)))
            break;
        sent += 1024;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 0) > 0)
            break;
    }
    if (ok && sent >= max)
        send_all(fd, "0\r\n\r\n", 5);
    read_reply(fd, buf, cap, 3000, closed);
    return sent;
}

Test(security_server, chunked_oversized_body_is_cut_off)
{
    status_api st = {0};
    int port;
    http_server *s = start(&st, &port, 10);
    char buf[4096] = "";
    bool closed = false;
    /* Somewhat over the limit: read to the end, answered 413. */
    int fd = dial(port);
    size_t sent = send_chunked(fd, 64 * 1024, buf, sizeof buf, &closed);
    cr_expect_eq(status_of(buf), 413, "reply after %zu bytes: %s", sent, buf);
    close(fd);
    /* Endless: the server stops reading (closes) after about 1 MiB past the limit. */
    fd = dial(port);
    sent = send_chunked(fd, 64u << 20, buf, sizeof buf, &closed);
    cr_expect(closed || status_of(buf) == 413, "connection neither answered nor closed");
    cr_expect(sent < (8u << 20), "server kept reading: %zu bytes accepted", sent);
    close(fd);
    /* and keeps serving */
    const char *ok = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi";
    cr_expect_eq(exchange(port, ok, strlen(ok), buf, sizeof buf), 200);
    http_server_free(s);
}

Test(security_server, oversized_headers_and_urls_are_refused)
{
    status_api st = {0};
    int port;
    http_server *s = start(&st, &port, 10);
    size_t big = 200 * 1024;
    char *req = malloc(big + 256);
    /* one huge header */
    int n = snprintf(req, 256, "GET /-/healthy HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + n, 'a', big);
    memcpy(req + n + big, "\r\n\r\n", 5);
    char buf[4096];
    int code = exchange(port, req, strlen(req), buf, sizeof buf);
    cr_expect(code == 431 || code == 413, "huge header: %d %s", code, buf);
    /* a huge query string */
    n = snprintf(req, 256, "GET /-/healthy?q=");
    memset(req + n, 'a', big);
    snprintf(req + n + big, 64, " HTTP/1.1\r\nHost: x\r\n\r\n");
    code = exchange(port, req, strlen(req), buf, sizeof buf);
    cr_expect(code == 414 || code == 431 || code == 413, "huge URL: %d %s", code, buf);
    /* many small headers */
    size_t o = (size_t)snprintf(req, 256, "GET /-/healthy HTTP/1.1\r\nHost: x\r\n");
    while (o + 32 < big)
        o += (size_t)snprintf(req + o, 32, "X-%zu: v\r\n", o);
    memcpy(req + o, "\r\n", 3);
    code = exchange(port, req, strlen(req), buf, sizeof buf);
    cr_expect(code == 431 || code == 413, "many headers: %d %s", code, buf);
    free(req);
    /* the server still answers */
    const char *ok = "GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    cr_expect_eq(exchange(port, ok, strlen(ok), buf, sizeof buf), 200);
    http_server_free(s);
}

Test(security_server, idle_and_slow_clients_are_dropped)
{
    status_api st = {0};
    int port;
    http_server *s = start(&st, &port, 1);
    int fd = dial(port);
    cr_assert(send_all(fd, "GET /-/healthy HTTP/1.1\r\nHo", 27)); /* never finishes the headers */
    char buf[512];
    bool closed;
    int64_t t0 = mono_ms();
    read_reply(fd, buf, sizeof buf, 5000, &closed);
    cr_expect(closed, "an idle half-sent request is still open after %lld ms", (long long)(mono_ms() - t0));
    cr_expect(mono_ms() - t0 < 4000);
    close(fd);
    http_server_free(s);
}

Test(security_server, static_path_traversal_is_404)
{
    status_api st = {0};
    int port;
    http_server *s = start(&st, &port, 10);
    static const char *const paths[] = {"/static/../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd",
                                        "/static/..%2f..%2fetc%2fpasswd", "/static//etc/passwd",
                                        "/static/%00", "/static/index.html%00.js", NULL};
    for (int i = 0; paths[i]; i++) {
        char req[512], buf[4096];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", paths[i]);
        int code = exchange(port, req, strlen(req), buf, sizeof buf);
        cr_expect(code == 404 || code == 400, "%s: %d", paths[i], code);
        cr_expect_null(strstr(buf, "root:"), "%s leaked a file", paths[i]);
    }
    http_server_free(s);
}

static int quits;
static void fake_quit(void *ctx)
{
    (void)ctx;
    quits++;
}

Test(security_server, lifecycle_needs_post_and_the_flag)
{
    quits = 0;
    status_api off = {.enable_lifecycle = false, .quit = fake_quit};
    int port;
    http_server *s = start(&off, &port, 10);
    char buf[4096];
    const char *get = "GET /-/quit HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    cr_expect_eq(exchange(port, get, strlen(get), buf, sizeof buf), 405);
    const char *post = "POST /-/quit HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    cr_expect_eq(exchange(port, post, strlen(post), buf, sizeof buf), 403);
    const char *reload = "POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    cr_expect_eq(exchange(port, reload, strlen(reload), buf, sizeof buf), 403);
    cr_expect_eq(quits, 0);
    http_server_free(s);

    status_api on = {.enable_lifecycle = true, .quit = fake_quit};
    s = start(&on, &port, 10);
    cr_expect_eq(exchange(port, get, strlen(get), buf, sizeof buf), 405);
    cr_expect_eq(quits, 0, "GET must not quit");
    cr_expect_eq(exchange(port, post, strlen(post), buf, sizeof buf), 200);
    cr_expect_eq(quits, 1);
    http_server_free(s);
}

Test(security_server, every_answer_says_nosniff_once)
{
    status_api st = {0};
    int port;
    http_server *s = start(&st, &port, 10);
    static const char *const paths[] = {"/-/healthy", "/nope", "/", NULL};
    for (int i = 0; paths[i]; i++) {
        char req[256], buf[65536];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", paths[i]);
        exchange(port, req, strlen(req), buf, sizeof buf);
        char *h = strcasestr(buf, "X-Content-Type-Options: nosniff");
        cr_expect_not_null(h, "%s: no nosniff", paths[i]);
        if (h)
            cr_expect_null(strcasestr(h + 10, "X-Content-Type-Options"), "%s: header twice", paths[i]);
    }
    http_server_free(s);
}

Test(security_server, push_refuses_endless_new_job_names)
{
    push_api p;
    push_api_init(&p, NULL, NULL, true); /* the refusal happens before ingestion */
    /* As if 10000 distinct jobs had been pushed already. */
    p.cap_pushed = 10000;
    p.pushed_jobs = calloc(p.cap_pushed, sizeof *p.pushed_jobs);
    for (size_t i = 0; i < 10000; i++) {
        char j[32];
        snprintf(j, sizeof j, "job%zu", i);
        p.pushed_jobs[p.n_pushed++] = strdup(j);
    }
    http_server_options o = {.listen_address = "127.0.0.1:0", .threads = 2};
    http_server *s = http_server_new(&o);
    push_api_register(&p, s, 0);
    char err[256];
    cr_assert_eq(http_server_start(s, err, sizeof err), 0, "%s", err);
    int port = http_server_port(s);
    const char *req = "POST /api/v1/push/brand-new HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                      "Connection: close\r\n\r\n{}";
    char buf[4096];
    cr_expect_eq(exchange(port, req, strlen(req), buf, sizeof buf), 429, "reply: %s", buf);
    cr_expect_eq(p.n_pushed, 10000);
    http_server_free(s);
    push_api_free(&p);
}
