/* Scrape loop paths the main scheduler tests do not reach, each through the public API (scheduler.h) and
 * real sockets: which scrapes take the built-in HTTP/1.1 client (its metric, read in the result callback,
 * where it is exact), a body that reaches the caller through curl after the fast path gave up, curl
 * transfers beside fast ones (the loop's descriptor table), a signal interrupting the loop's wait, the
 * idle-connection budget taken from the descriptor limit, curl's reason phrase, and the auth headers'
 * memory. Written for the survivors of `make mutate` (scheduler.c, scheduler_fast.c; docs/testing.md). */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "heap_use.h"
#include "helper_server.h"
#include "scrape/scheduler.h"
#include "test_deadline.h"
#include "util/metrics.h"

#define KEEP 8

/* What one loop delivered: the first KEEP results, and the fast-path metric at each of them. */
typedef struct seen {
    int n;
    char error[KEEP][512];
    long status[KEEP];
    char *body[KEEP];
    size_t body_len[KEEP];
    double done[KEEP], curl[KEEP];
} seen;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static metric_family *fastm; /* lookout_scrape_fast_path_requests_total{outcome} */
static const char *const DONE_LV[] = {"done"}, *const CURL_LV[] = {"curl"};

static void on_result(void *ctx, const scrape_result *r)
{
    seen *s = ctx;
    pthread_mutex_lock(&mu);
    if (s->n < KEEP) {
        int i = s->n;
        snprintf(s->error[i], sizeof s->error[i], "%s", r->error ? r->error : "");
        s->status[i] = r->http_status;
        s->body_len[i] = r->body_len;
        if (r->body) {
            s->body[i] = malloc(r->body_len + 1);
            memcpy(s->body[i], r->body, r->body_len + 1);
        }
        /* the loop counts a fast request before it delivers its result, on this thread */
        s->done[i] = fastm ? metric_value(fastm, DONE_LV) : 0;
        s->curl[i] = fastm ? metric_value(fastm, CURL_LV) : 0;
    }
    s->n++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* Waits until s has n results (true) or ms passed (false). */
static bool wait_seen(seen *s, int n, int ms)
{
    struct timespec dl = test_deadline(ms);
    pthread_mutex_lock(&mu);
    while (s->n < n)
        if (pthread_cond_timedwait(&cv, &mu, &dl) != 0)
            break;
    bool ok = s->n >= n;
    pthread_mutex_unlock(&mu);
    return ok;
}

static void seen_free(seen *s)
{
    for (int i = 0; i < KEEP; i++)
        free(s->body[i]);
    memset(s, 0, sizeof *s);
}

static scrape_loop *loop_start(seen *s, bool fast)
{
    scrape_loop *l = scrape_loop_new(1, on_result, s);
    cr_assert_not_null(l);
    scrape_loop_set_fast_http(l, fast);
    if (!fastm)
        fastm = metric_family_get("lookout_scrape_fast_path_requests_total", METRIC_COUNTER, "", 1,
                                  (const char *[]){"outcome"});
    char err[128];
    cr_assert_eq(scrape_loop_start(l, err, sizeof err), 0, "%s", err);
    return l;
}

static helper_server srv;

static void srv_setup(void)
{
    cr_assert_eq(helper_server_start(&srv, NULL), 0, "exception_server did not start");
}

static void srv_teardown(void)
{
    helper_server_stop(&srv);
}

TestSuite(sched_paths, .init = srv_setup, .fini = srv_teardown, .timeout = 60);

static void upsert(scrape_loop *l, uint64_t hash, const char *path, int64_t iv, const http_client_config *h)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", srv.port, path);
    scrape_target_spec sp = {.job = "p", .hash = hash, .url = url, .interval_ms = iv, .timeout_ms = iv,
                             .http = h};
    scrape_loop_upsert(l, &sp);
}

/* One target alone in a loop, three scrapes: the result errors, statuses, bodies and the fast-path
 * counters (done, curl) relative to before the loop. */
static void one_target(seen *s, bool fast, const char *path, const http_client_config *h, double *done0,
                       double *curl0)
{
    *done0 = fastm ? metric_value(fastm, DONE_LV) : 0;
    *curl0 = fastm ? metric_value(fastm, CURL_LV) : 0;
    scrape_loop *l = loop_start(s, fast);
    upsert(l, 1, path, 100, h);
    cr_assert(wait_seen(s, 3, 10000), "%s: %d results in 10 s", path, s->n);
    scrape_loop_free(l);
}

/* Which scrapes the built-in client takes, counted by lookout_scrape_fast_path_requests_total: a plain
 * numeric http URL and basic auth with a user name are "done" by it; basic auth with an empty user name
 * and any scrape of a loop with the fast path off are curl's alone (not counted); a redirect is handed to
 * curl once ("curl": curl follows it and delivers exactly the body a direct scrape gets), and the target
 * stays on curl after (the client is unusable for it). */
Test(sched_paths, fast_path_takes_what_it_can_and_counts_it)
{
    seen s = {0};
    double d0, c0;
    http_client_config alice = {.follow_redirects = true, .enable_http2 = true, .has_basic_auth = true,
                                .basic_auth_username = "alice", .basic_auth_password = "pw"};
    http_client_config nouser = alice;
    nouser.basic_auth_username = "";

    one_target(&s, true, "/ok", NULL, &d0, &c0);
    for (int i = 0; i < 3; i++) {
        cr_assert_str_eq(s.error[i], "");
        cr_assert_eq(s.done[i], d0 + i + 1, "plain: result %d with done=%g (before: %g)", i, s.done[i], d0);
        cr_assert_eq(s.curl[i], c0);
    }
    size_t ok_len = s.body_len[0];
    char *ok_body = s.body[0];
    s.body[0] = NULL;
    cr_assert_not_null(ok_body);
    cr_assert_gt(ok_len, 100);
    seen_free(&s);

    one_target(&s, true, "/echo", &alice, &d0, &c0);
    for (int i = 0; i < 3; i++) {
        cr_assert_str_eq(s.error[i], "");
        cr_assert(strstr(s.body[i], "Authorization: Basic YWxpY2U6cHc=\n") != NULL, "%s", s.body[i]);
        cr_assert_eq(s.done[i], d0 + i + 1, "basic auth with a user: result %d done=%g", i, s.done[i]);
        cr_assert_eq(s.curl[i], c0);
    }
    seen_free(&s);

    one_target(&s, true, "/ok", &nouser, &d0, &c0);
    for (int i = 0; i < 3; i++) {
        cr_assert_str_eq(s.error[i], "");
        cr_assert_eq(s.status[i], 200);
        cr_assert_eq(s.done[i], d0, "basic auth without a user name is curl's: done=%g", s.done[i]);
        cr_assert_eq(s.curl[i], c0);
    }
    seen_free(&s);

    one_target(&s, false, "/ok", NULL, &d0, &c0);
    for (int i = 0; i < 3; i++) {
        cr_assert_str_eq(s.error[i], "");
        cr_assert_eq(s.done[i], d0, "fast path off: done=%g", s.done[i]);
        cr_assert_eq(s.curl[i], c0);
    }
    seen_free(&s);

    one_target(&s, true, "/redirect", &alice, &d0, &c0);
    for (int i = 0; i < 3; i++) {
        cr_assert_str_eq(s.error[i], "");
        cr_assert_eq(s.status[i], 200);
        cr_assert_eq(s.done[i], d0);
        /* the first scrape is handed to curl; the redirect marked the client unusable: curl's alone after */
        cr_assert_eq(s.curl[i], c0 + 1, "redirect: result %d with curl=%g (before: %g)", i, s.curl[i], c0);
        cr_assert_eq(s.body_len[i], ok_len, "result %d: %zu bytes, a direct scrape %zu", i, s.body_len[i], ok_len);
        cr_assert(memcmp(s.body[i], ok_body, ok_len) == 0, "result %d: another body than a direct scrape's", i);
    }
    seen_free(&s);
    free(ok_body);
}

/* Curl transfers and fast ones in one loop: every curl socket must reach curl, never the fast client's
 * table of descriptors. malloc fills new blocks with garbage (M_PERTURB) so that a table slot nobody set
 * is not zero by luck. */
Test(sched_paths, curl_transfers_beside_fast_ones)
{
    mallopt(M_PERTURB, 0xa5);
    http_client_config nouser = {.follow_redirects = true, .enable_http2 = true, .has_basic_auth = true,
                                 .basic_auth_username = "", .basic_auth_password = "pw"};
    seen all = {0};
    scrape_loop *l = loop_start(&all, true);
    upsert(l, 1, "/ok", 100, NULL);    /* fast */
    upsert(l, 2, "/ok", 100, &nouser); /* curl */
    cr_assert(wait_seen(&all, KEEP, 10000), "%d results in 10 s", all.n);
    for (int i = 0; i < KEEP; i++) {
        cr_assert_str_eq(all.error[i], "", "result %d", i);
        cr_assert_eq(all.status[i], 200, "result %d", i);
    }
    scrape_loop_free(l);
    seen_free(&all);
}

/* A removed fast target's connection is closed; the descriptor number it had is then curl's (the lowest
 * free number is the next socket's): curl's transfer on it must succeed, not be taken for the removed
 * target's. */
Test(sched_paths, descriptor_of_a_removed_fast_target_goes_to_curl)
{
    seen s = {0};
    scrape_loop *l = loop_start(&s, true);
    upsert(l, 1, "/ok", 100, NULL); /* fast, keeps its connection */
    cr_assert(wait_seen(&s, 1, 10000));
    scrape_loop_remove(l, "p", 1);
    http_client_config nouser = {.follow_redirects = true, .enable_http2 = true, .has_basic_auth = true,
                                 .basic_auth_username = "", .basic_auth_password = "pw"};
    int n = s.n;
    upsert(l, 2, "/ok", 100, &nouser); /* curl */
    cr_assert(wait_seen(&s, n + 3, 10000), "%d results in 10 s", s.n - n);
    pthread_mutex_lock(&mu);
    int last = s.n < KEEP ? s.n : KEEP;
    for (int i = n; i < last; i++) {
        cr_assert_str_eq(s.error[i], "", "result %d", i);
        cr_assert_eq(s.status[i], 200);
    }
    pthread_mutex_unlock(&mu);
    scrape_loop_free(l);
    seen_free(&s);
}

/* A fast connection that gets descriptor 0 (a daemon with stdin closed) is the target's like any other:
 * its events reach the fast client, and its scrapes succeed. */
Test(sched_paths, fast_connection_on_descriptor_0)
{
    seen s = {0};
    scrape_loop *l = loop_start(&s, true); /* its epoll instance and eventfd first: not descriptor 0 */
    int saved = dup(0);
    close(0);
    upsert(l, 1, "/ok", 100, NULL);
    bool got = wait_seen(&s, 3, 10000);
    int fd0 = dup(2); /* still taken by the target's connection: the next free number is not 0 */
    scrape_loop_free(l);
    if (saved >= 0) {
        dup2(saved, 0);
        close(saved);
    }
    if (fd0 >= 0)
        close(fd0);
    cr_assert(got, "%d results in 10 s", s.n);
    cr_assert_neq(fd0, 0, "the precondition: descriptor 0 was the connection's");
    for (int i = 0; i < 3; i++) {
        cr_assert_str_eq(s.error[i], "", "result %d", i);
        cr_assert_eq(s.status[i], 200);
    }
    seen_free(&s);
}

static atomic_int usr1_handled;
static void on_usr1(int sig)
{
    (void)sig;
    atomic_fetch_add(&usr1_handled, 1);
}

/* A signal handled on the loop's thread interrupts its epoll_wait (EINTR): the loop goes on scraping.
 * Only the loop's thread leaves SIGUSR1 unblocked (it inherits the mask before this thread blocks it). */
Test(sched_paths, signal_interrupting_the_wait_does_not_stop_the_loop)
{
    struct sigaction sa = {.sa_handler = on_usr1}; /* no SA_RESTART; epoll_wait is never restarted anyway */
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    seen s = {0};
    scrape_loop *l = loop_start(&s, true);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    scrape_target_spec sp = {.job = "sig", .hash = 1, .url = "http://127.0.0.1:1/", .interval_ms = 20,
                             .timeout_ms = 20, .forced_error = "no request"};
    scrape_loop_upsert(l, &sp);
    cr_assert(wait_seen(&s, 1, 5000));
    for (int k = 1; k <= 5; k++) {
        kill(getpid(), SIGUSR1);
        for (int polls = 0; atomic_load(&usr1_handled) < k && polls < 5000; polls++)
            usleep(1000);
        cr_assert_eq(atomic_load(&usr1_handled), k, "signal %d not handled", k);
        int n = s.n;
        cr_assert(wait_seen(&s, n + 2, 5000), "the loop stopped after signal %d", k);
    }
    cr_assert_str_eq(s.error[0], "no request");
    scrape_loop_free(l);
    seen_free(&s);
}

/* The loop keeps at most half its descriptor limit (RLIMIT_NOFILE when the loop is made) of idle fast
 * connections: with room for `max` and max + 3 targets, some targets connect afresh for their next
 * scrapes, so the server sees more connections than there are targets (one each if all were kept). */
Test(sched_paths, idle_connections_bounded_by_half_the_descriptor_limit)
{
    int probe = dup(2);
    cr_assert_geq(probe, 0);
    close(probe); /* the lowest free descriptor: the loop's epoll instance gets it */
    struct rlimit saved, low;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
    low = saved;
    low.rlim_cur = (rlim_t)probe + 4; /* epoll, eventfd, and curl's own pair */
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    seen s = {0};
    scrape_loop *l = scrape_loop_new(1, on_result, &s);
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
    cr_assert_not_null(l);
    char err[128];
    cr_assert_eq(scrape_loop_start(l, err, sizeof err), 0, "%s", err);
    int max = (probe + 4) / 2, n = max + 3;
    long long before = helper_stat(&srv, "connections", NULL);
    for (int i = 0; i < n; i++)
        upsert(l, 100 + (uint64_t)i, "/ok", 200, NULL);
    cr_assert(wait_seen(&s, 5 * n, 20000), "%d results in 20 s", s.n);
    long long conns = helper_stat(&srv, "connections", NULL) - before - 1; /* the stats request itself */
    scrape_loop_free(l);
    for (int i = 0; i < KEEP; i++)
        cr_assert_str_eq(s.error[i], "", "result %d", i);
    cr_assert_gt(conns, n, "%lld connections for %d targets and room for %d idle ones", conns, n, max);
    seen_free(&s);
}

/* ---- curl's status line, on a socket of the test ------------------------------------------- */

typedef struct raw_server {
    int ls, port;
    const char *answer;
    pthread_t th;
} raw_server;

static void *raw_serve(void *arg)
{
    raw_server *rs = arg;
    for (;;) {
        int c = accept(rs->ls, NULL, NULL);
        if (c < 0)
            return NULL;
        char buf[4096];
        size_t have = 0;
        while (have < sizeof buf - 1) {
            ssize_t r = recv(c, buf + have, sizeof buf - 1 - have, 0);
            if (r <= 0)
                break;
            have += (size_t)r;
            buf[have] = '\0';
            if (strstr(buf, "\r\n\r\n"))
                break;
        }
        send(c, rs->answer, strlen(rs->answer), MSG_NOSIGNAL);
        close(c);
    }
}

static void raw_start(raw_server *rs, const char *answer)
{
    rs->answer = answer;
    rs->ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(rs->ls, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(rs->ls, (struct sockaddr *)&a, &al);
    rs->port = ntohs(a.sin_port);
    cr_assert_eq(listen(rs->ls, 8), 0);
    pthread_create(&rs->th, NULL, raw_serve, rs);
}

static void raw_stop(raw_server *rs)
{
    shutdown(rs->ls, SHUT_RDWR);
    close(rs->ls);
    pthread_join(rs->th, NULL);
}

/* The reason phrase comes from the status line only: a header whose name starts with "HTTP" is not one. */
Test(sched_paths, curl_reason_phrase_from_the_status_line_only)
{
    raw_server rs;
    raw_start(&rs, "HTTP/1.1 500 Broken Thing\r\nHTTP-Extra: a b\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    seen s = {0};
    scrape_loop *l = loop_start(&s, false);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", rs.port);
    scrape_target_spec sp = {.job = "r", .hash = 1, .url = url, .interval_ms = 100, .timeout_ms = 100};
    scrape_loop_upsert(l, &sp);
    cr_assert(wait_seen(&s, 1, 10000));
    scrape_loop_free(l);
    raw_stop(&rs);
    cr_assert_str_eq(s.error[0], "server returned HTTP status 500 Broken Thing");
    cr_assert_eq(s.status[0], 500);
    seen_free(&s);
}

/* ---- memory of the auth headers ---------------------------------------------------------------- */

/* The Authorization headers a fast scrape builds (basic from user and password, the other from type and
 * credentials) are freed after each scrape: with 150 KiB credentials, four scrapes of a leaking loop
 * would keep 600 KiB. The target refuses connections, so each scrape ends at once. */
static void auth_headers_freed(const http_client_config *h)
{
    seen w = {0};
    scrape_loop *warm = loop_start(&w, true); /* curl's and the metrics' one-time allocations */
    scrape_loop_free(warm);
    size_t before = heap_use();
    seen s = {0};
    scrape_loop *l = loop_start(&s, true);
    scrape_target_spec sp = {.job = "a", .hash = 1, .url = "http://127.0.0.1:1/", .interval_ms = 20,
                             .timeout_ms = 20, .http = h};
    scrape_loop_upsert(l, &sp);
    cr_assert(wait_seen(&s, 4, 10000));
    scrape_loop_free(l);
    cr_assert_str_eq(s.error[0], "Get \"http://127.0.0.1:1/\": dial tcp 127.0.0.1:1: connect: connection refused");
    seen_free(&s);
    heap_use_assert_back_to(before);
}

static char *big_string(char ch)
{
    size_t n = 150 * 1024;
    char *p = malloc(n + 1);
    memset(p, ch, n);
    p[n] = '\0';
    return p;
}

Test(sched_paths, basic_auth_header_freed_after_each_scrape)
{
    char *pass = big_string('p');
    http_client_config h = {.follow_redirects = true, .enable_http2 = true, .has_basic_auth = true,
                            .basic_auth_username = "u", .basic_auth_password = pass};
    auth_headers_freed(&h);
    free(pass);
}

Test(sched_paths, authorization_header_freed_after_each_scrape)
{
    char *cred = big_string('c');
    http_client_config h = {.follow_redirects = true, .enable_http2 = true, .has_authorization = true,
                            .authorization_type = "Bearer", .authorization_credentials = cred};
    auth_headers_freed(&h);
    free(cred);
}

/* ---- the fast path's body placement ------------------------------------------------------------ */

/* A chunked body whose first chunk is one byte: the first piece fixes where the body starts, the later
 * pieces are moved down over the chunk framing behind it; the result is the body byte for byte. */
Test(sched_paths, fast_chunked_body_first_chunk_one_byte)
{
    raw_server rs;
    raw_start(&rs, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                   "1\r\nx\r\n5\r\nhello\r\n3\r\n!!!\r\n0\r\n\r\n");
    seen s = {0};
    scrape_loop *l = loop_start(&s, true);
    double d0 = metric_value(fastm, DONE_LV);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", rs.port);
    scrape_target_spec sp = {.job = "c", .hash = 1, .url = url, .interval_ms = 100, .timeout_ms = 1000};
    scrape_loop_upsert(l, &sp);
    cr_assert(wait_seen(&s, 1, 10000));
    scrape_loop_free(l);
    raw_stop(&rs);
    cr_assert_str_empty(s.error[0]);
    cr_assert_eq(s.status[0], 200);
    cr_assert_eq(s.done[0], d0 + 1, "the fast path delivered it");
    cr_assert_eq(s.body_len[0], 9);
    cr_assert_str_eq(s.body[0], "xhello!!!");
    seen_free(&s);
}
