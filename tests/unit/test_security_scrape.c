/* Security review regressions for scraping untrusted targets (src/scrape/scheduler.c, src/http/client.c):
 * a gzip bomb is cut at the body limit counted on the decoded bytes, redirects to file:// (or any scheme
 * but http/https) are refused, a target sending endless headers fails fast, and a password in a target's
 * URL never reaches the error text. A small raw-socket server thread plays the hostile target. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/client.h"
#include "scrape/scheduler.h"

/* ---- a gzip bomb: fixed-Huffman deflate of one zero byte and then (length 258, distance 1) copies ---- */

typedef struct bits {
    unsigned char *buf;
    size_t len;
    unsigned acc, n;
} bits;

static void put_bits(bits *b, unsigned v, unsigned n) /* LSB first */
{
    for (unsigned i = 0; i < n; i++) {
        b->acc |= ((v >> i) & 1u) << b->n;
        if (++b->n == 8) {
            b->buf[b->len++] = (unsigned char)b->acc;
            b->acc = b->n = 0;
        }
    }
}

static void put_code(bits *b, unsigned code, unsigned n) /* Huffman codes go MSB first */
{
    for (unsigned i = n; i-- > 0;)
        put_bits(b, (code >> i) & 1u, 1);
}

/* gzip member inflating to about `decoded` zero bytes. */
static unsigned char *gzip_bomb(size_t decoded, size_t *len)
{
    size_t copies = decoded / 258;
    bits b = {malloc(32 + copies * 2), 0, 0, 0};
    static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    memcpy(b.buf, hdr, sizeof hdr);
    b.len = sizeof hdr;
    put_bits(&b, 1, 1);      /* BFINAL */
    put_bits(&b, 1, 2);      /* BTYPE = fixed Huffman */
    put_code(&b, 0x30, 8);   /* literal 0 */
    for (size_t i = 0; i < copies; i++) {
        put_code(&b, 0xC5, 8); /* length 258 (symbol 285) */
        put_code(&b, 0, 5);    /* distance 1 */
    }
    put_code(&b, 0, 7); /* end of block */
    if (b.n)
        put_bits(&b, 0, 8 - b.n);
    memset(b.buf + b.len, 0, 8); /* CRC and size: never reached, the transfer is cut before */
    b.len += 8;
    *len = b.len;
    return b.buf;
}

/* ---- the hostile target ---- */

static int srv_fd = -1, srv_port;
static pthread_t srv_thread;
static atomic_bool srv_stop;
/* Most header bytes one connection took: the fast path (http/h1client.c) stops at its header bound and
 * hands the scrape to curl, so a flood meets two connections, each of which must be cut short. */
static atomic_llong hdr_bytes_sent;
static unsigned char *bomb;
static size_t bomb_len;

static bool send_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        s += w;
        n -= (size_t)w;
    }
    return true;
}

static void serve(int fd)
{
    char req[4096];
    size_t n = 0;
    while (n + 1 < sizeof req && !strstr(req, "\r\n\r\n")) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 2000) <= 0)
            return;
        ssize_t r = recv(fd, req + n, sizeof req - 1 - n, 0);
        if (r <= 0)
            return;
        n += (size_t)r;
        req[n] = '\0';
    }
    char head[512];
    if (strncmp(req, "GET /bomb ", 10) == 0) {
        int hl = snprintf(head, sizeof head,
                          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                          "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                          bomb_len);
        if (send_all(fd, head, (size_t)hl))
            send_all(fd, bomb, bomb_len);
    } else if (strncmp(req, "GET /to-file ", 13) == 0 || strncmp(req, "GET /to-ftp ", 12) == 0 ||
               strncmp(req, "GET /to-gopher ", 15) == 0) {
        const char *loc = req[8] == 'f' && req[9] == 'i' ? "file:///etc/passwd"
                          : req[8] == 'f'                ? "ftp://127.0.0.1/x"
                                                         : "gopher://127.0.0.1/x";
        int hl = snprintf(head, sizeof head,
                          "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                          loc);
        send_all(fd, head, (size_t)hl);
    } else if (strncmp(req, "GET /headers ", 13) == 0) {
        /* Endless headers, as fast as the client takes them, for at most 64 MiB or 5 s. */
        const char *status = "HTTP/1.1 200 OK\r\n";
        send_all(fd, status, strlen(status));
        char line[1024];
        memset(line, 'a', sizeof line);
        memcpy(line, "X-Junk: ", 8);
        memcpy(line + sizeof line - 2, "\r\n", 2);
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (long long sent = 0; sent < (64LL << 20); sent += (long long)sizeof line) {
            if (!send_all(fd, line, sizeof line))
                break;
            if (sent + (long long)sizeof line > atomic_load(&hdr_bytes_sent))
                atomic_store(&hdr_bytes_sent, sent + (long long)sizeof line);
            clock_gettime(CLOCK_MONOTONIC, &t);
            if (t.tv_sec - t0.tv_sec > 5 || atomic_load(&srv_stop))
                break;
        }
    } else {
        const char *nf = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        send_all(fd, nf, strlen(nf));
    }
}

static void *srv_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&srv_stop)) {
        struct pollfd p = {srv_fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int c = accept(srv_fd, NULL, NULL);
        if (c < 0)
            continue;
        serve(c);
        close(c);
    }
    return NULL;
}

/* ---- scrape results ---- */

typedef struct rec {
    char error[512];
    double dur;
    bool has_body;
    bool done;
} rec;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static rec recs[8];
static scrape_loop *loop;

static void on_result(void *ctx, const scrape_result *r)
{
    (void)ctx;
    pthread_mutex_lock(&mu);
    if (r->hash < 8 && !recs[r->hash].done) {
        rec *x = &recs[r->hash];
        snprintf(x->error, sizeof x->error, "%s", r->error ? r->error : "");
        x->dur = r->duration_s;
        x->has_body = r->body != NULL;
        x->done = true;
        pthread_cond_broadcast(&cv);
    }
    pthread_mutex_unlock(&mu);
}

static void setup(void)
{
    bomb = gzip_bomb(32u << 20, &bomb_len);
    srv_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(srv_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    cr_assert_eq(bind(srv_fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(srv_fd, 16), 0);
    socklen_t sl = sizeof a;
    getsockname(srv_fd, (struct sockaddr *)&a, &sl);
    srv_port = ntohs(a.sin_port);
    atomic_store(&srv_stop, false);
    pthread_create(&srv_thread, NULL, srv_main, NULL);
    memset(recs, 0, sizeof recs);
    loop = scrape_loop_new(42, on_result, NULL);
    cr_assert_not_null(loop);
    char err[256];
    cr_assert_eq(scrape_loop_start(loop, err, sizeof err), 0, "%s", err);
}

static void teardown(void)
{
    scrape_loop_free(loop);
    atomic_store(&srv_stop, true);
    pthread_join(srv_thread, NULL);
    close(srv_fd);
    free(bomb);
}

TestSuite(security_scrape, .init = setup, .fini = teardown, .timeout = 30);

static void add(uint64_t hash, const char *url, int64_t iv, int64_t tmo, int64_t limit)
{
    http_client_config follow = {.follow_redirects = true, .enable_http2 = true};
    scrape_target_spec s = {.job = "hostile", .hash = hash, .url = url, .interval_ms = iv, .timeout_ms = tmo,
                            .http = &follow, .body_size_limit = limit};
    scrape_loop_upsert(loop, &s);
}

static void add_path(uint64_t hash, const char *path, int64_t iv, int64_t tmo, int64_t limit)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", srv_port, path);
    add(hash, url, iv, tmo, limit);
}

static bool wait_done(uint64_t hash, int ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ms / 1000 + 1;
    pthread_mutex_lock(&mu);
    while (!recs[hash].done)
        if (pthread_cond_timedwait(&cv, &mu, &dl) != 0)
            break;
    bool d = recs[hash].done;
    pthread_mutex_unlock(&mu);
    return d;
}

Test(security_scrape, gzip_bomb_is_cut_at_the_decoded_limit)
{
    cr_assert_lt(bomb_len, 1u << 20, "the compressed bomb (%zu bytes) must be under the limit", bomb_len);
    add_path(1, "/bomb", 1000, 900, 1 << 20);
    cr_assert(wait_done(1, 3000), "no scrape result");
    cr_expect_str_eq(recs[1].error, "body size limit exceeded (1048576 bytes)");
    cr_expect_not(recs[1].has_body);
}

Test(security_scrape, redirects_to_other_schemes_are_refused)
{
    add_path(2, "/to-file", 1000, 900, 0);
    add_path(3, "/to-ftp", 1000, 900, 0);
    add_path(4, "/to-gopher", 1000, 900, 0);
    for (uint64_t h = 2; h <= 4; h++) {
        cr_assert(wait_done(h, 3000), "no scrape result for %llu", (unsigned long long)h);
        cr_expect_str_not_empty(recs[h].error, "redirect %llu was followed", (unsigned long long)h);
        cr_expect_not(recs[h].has_body);
        cr_expect_null(strstr(recs[h].error, "root:"));
    }
    cr_expect(strstr(recs[2].error, "file") != NULL, "error: %s", recs[2].error);
}

Test(security_scrape, endless_headers_fail_fast)
{
    atomic_store(&hdr_bytes_sent, 0);
    add_path(5, "/headers", 4000, 3900, 0);
    cr_assert(wait_done(5, 6000), "no scrape result");
    cr_expect_str_not_empty(recs[5].error);
    cr_expect(recs[5].dur < 2.0, "took %.2f s (the header flood was only stopped by the timeout)", recs[5].dur);
    long long sent = atomic_load(&hdr_bytes_sent);
    cr_expect(sent < (8LL << 20), "client read %lld bytes of headers on one connection", sent);
}

Test(security_scrape, url_password_is_redacted_in_errors)
{
    add(6, "http://scraper:s3cr3t@127.0.0.1:1/metrics", 1000, 900, 0); /* port 1: connection refused */
    cr_assert(wait_done(6, 3000), "no scrape result");
    cr_expect_null(strstr(recs[6].error, "s3cr3t"), "password in error: %s", recs[6].error);
    cr_expect_not_null(strstr(recs[6].error, "scraper:***@127.0.0.1:1"), "error: %s", recs[6].error);
}

Test(review_redact, go_strip_password)
{
    char out[256];
    http_client_redact_url("http://u:p@h:1/x?y=z@w", out, sizeof out);
    cr_expect_str_eq(out, "http://u:***@h:1/x?y=z@w");
    http_client_redact_url("https://u@h/", out, sizeof out);
    cr_expect_str_eq(out, "https://u@h/");
    http_client_redact_url("http://h/a:b@c", out, sizeof out);
    cr_expect_str_eq(out, "http://h/a:b@c");
    http_client_redact_url("http://u:p:q@x@h/", out, sizeof out);
    cr_expect_str_eq(out, "http://u:***@h/");
    http_client_redact_url("no-scheme:p@h", out, sizeof out);
    cr_expect_str_eq(out, "no-scheme:p@h");
}
