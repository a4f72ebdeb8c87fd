/* The scrape loop when its system calls fail (scheduler_fault.h: epoll_create1, eventfd, curl_multi_init,
 * pthread_create made to fail one at a time, a socket gone from the epoll set), and what it frees: each failure must be reported (NULL with
 * errno, or -1 with the error text), leave no descriptor open and nothing half-started, and the loop must
 * work afterwards. Leaks are measured around a loop's life (heap_use.h: every arena, so the loop thread's
 * allocations count too), with client configs large enough that one dropped release shows. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "heap_use.h"
#include "helper_server.h"
#include "scrape/scheduler.h"
#include "scrape/scheduler_fault.h"
#include "test_files.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int nres;
static char last_error[256], first_error[256];
static long first_status;

static void on_result(void *ctx, const scrape_result *r)
{
    (void)ctx;
    pthread_mutex_lock(&mu);
    if (nres++ == 0) {
        snprintf(first_error, sizeof first_error, "%s", r->error ? r->error : "");
        first_status = r->http_status;
    }
    snprintf(last_error, sizeof last_error, "%s", r->error ? r->error : "");
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* Waits (10 s at most) for a result whose error is want; true when it came. */
static bool wait_error(const char *want)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&mu);
    while (!(nres > 0 && strcmp(last_error, want) == 0))
        if (pthread_cond_timedwait(&cv, &mu, &dl) != 0)
            break;
    bool ok = nres > 0 && strcmp(last_error, want) == 0;
    pthread_mutex_unlock(&mu);
    return ok;
}

static int results(void)
{
    pthread_mutex_lock(&mu);
    int n = nres;
    pthread_mutex_unlock(&mu);
    return n;
}

static void reset_plan(void) { memset(&scrape_fault, 0, sizeof scrape_fault); }

/* Creates and frees one loop first: curl's global initialisation allocates once per process. */
static void setup(void)
{
    reset_plan();
    scrape_loop_free(scrape_loop_new(1, on_result, NULL));
}

TestSuite(scheduler_faults, .init = setup, .timeout = 30);

/* scrape_loop_new with one set-up call failing: NULL with that call's errno, and every descriptor it made
 * closed again. */
static void fail_once(scrape_fault_call call, int err, int want_errno)
{
    int fds = test_open_fds();
    reset_plan();
    scrape_fault.after[call] = 1;
    scrape_fault.err = err;
    errno = 0;
    scrape_loop *l = scrape_loop_new(1, on_result, NULL);
    int e = errno;
    cr_assert_null(l);
    cr_assert_eq(e, want_errno, "errno %d, want %d", e, want_errno);
    cr_assert_eq(scrape_fault.failed, 1);
    cr_assert_eq(test_open_fds(), fds, "a descriptor stayed open");
    reset_plan();
}

/* Once as is, once with descriptor 0 free so that the first descriptor the loop makes is 0 (a valid one,
 * which the clean-up must close too); then the next loop is created and runs. */
static void new_fails(scrape_fault_call call, int err, int want_errno)
{
    int fds = test_open_fds();
    fail_once(call, err, want_errno);
    int saved = dup(0);
    cr_assert_geq(saved, 0);
    close(0);
    fail_once(call, err, want_errno);
    cr_assert_eq(fcntl(0, F_GETFD), -1, "descriptor 0 was left open");
    cr_assert_eq(dup2(saved, 0), 0);
    close(saved);
    cr_assert_eq(test_open_fds(), fds);
    scrape_loop *l = scrape_loop_new(1, on_result, NULL);
    cr_assert_not_null(l);
    char err_buf[128];
    cr_assert_eq(scrape_loop_start(l, err_buf, sizeof err_buf), 0, "%s", err_buf);
    scrape_target_spec s = {.job = "after", .hash = 1, .url = "http://127.0.0.1:1/", .interval_ms = 20,
                            .forced_error = "works"};
    scrape_loop_upsert(l, &s);
    cr_assert(wait_error("works"));
    scrape_loop_free(l);
    cr_assert_eq(test_open_fds(), fds);
}

Test(scheduler_faults, epoll_create1_fails)
{
    new_fails(SCRAPE_FAULT_EPOLL, 0, EMFILE);
}

Test(scheduler_faults, eventfd_fails_and_the_epoll_instance_is_closed)
{
    new_fails(SCRAPE_FAULT_EVENTFD, ENFILE, ENFILE);
}

Test(scheduler_faults, curl_multi_init_fails_and_both_descriptors_are_closed)
{
    new_fails(SCRAPE_FAULT_MULTI, 0, ENOMEM);
}

/* pthread_create fails: -1 and the error text; the loop is not marked started, so the queued target is
 * scraped once a second start succeeds, and nothing ran before it. */
Test(scheduler_faults, thread_create_fails_then_a_second_start_runs_the_queue)
{
    scrape_loop *l = scrape_loop_new(1, on_result, NULL);
    cr_assert_not_null(l);
    scrape_target_spec s = {.job = "queued", .hash = 7, .url = "http://127.0.0.1:1/", .interval_ms = 20,
                            .forced_error = "queued before the start"};
    scrape_loop_upsert(l, &s);
    scrape_fault.after[SCRAPE_FAULT_THREAD] = 1;
    char err[128] = "";
    cr_assert_eq(scrape_loop_start(l, err, sizeof err), -1);
    cr_assert_str_eq(err, "cannot start the scrape loop thread: Resource temporarily unavailable");
    cr_assert_eq(scrape_fault.failed, 1);
    cr_assert_eq(results(), 0);
    cr_assert_eq(scrape_fault.calls[SCRAPE_FAULT_THREAD], 1);
    cr_assert_eq(scrape_loop_start(l, err, sizeof err), 0, "%s", err);
    cr_assert(wait_error("queued before the start"));
    cr_assert_eq(scrape_loop_start(l, err, sizeof err), -1);
    cr_assert_str_eq(err, "scrape loop already started");
    scrape_loop_free(l);
}

/* A client config big enough that a leaked copy shows among curl's own allocations: two 512 KiB
 * credentials. */
static http_client_config *big_http(void)
{
    static http_client_config h;
    static char *user, *pass;
    if (!user) {
        size_t n = 512 * 1024;
        user = malloc(n + 1);
        pass = malloc(n + 1);
        memset(user, 'u', n);
        memset(pass, 'p', n);
        user[n] = pass[n] = '\0';
        h.has_basic_auth = true;
        h.basic_auth_username = user;
        h.basic_auth_password = pass;
    }
    return &h;
}

/* Upserts queued on a loop that never started (its thread failed) are freed with it, client config and
 * all. */
Test(scheduler_faults, queued_upserts_are_freed_with_a_loop_that_never_started)
{
    http_client_config *h = big_http();
    size_t before = heap_use();
    scrape_loop *l = scrape_loop_new(1, on_result, NULL);
    cr_assert_not_null(l);
    for (uint64_t i = 1; i <= 3; i++) {
        scrape_target_spec s = {.job = "q", .hash = i, .url = "http://127.0.0.1:1/", .interval_ms = 20,
                                .http = h, .forced_error = "never"};
        scrape_loop_upsert(l, &s);
    }
    if (HEAP_USE_COUNTS)
        cr_assert_geq(heap_use(), before + 3 * 1024 * 1024);
    scrape_fault.after[SCRAPE_FAULT_THREAD] = 1;
    char err[128];
    cr_assert_eq(scrape_loop_start(l, err, sizeof err), -1);
    scrape_loop_free(l);
    heap_use_assert_back_to(before);
    cr_assert_eq(results(), 0);
}

/* Running targets: an update replaces the client config (the old one is released), and freeing the loop
 * releases the current ones. */
Test(scheduler_faults, updated_and_running_targets_free_their_client_configs)
{
    http_client_config *h = big_http();
    size_t before = heap_use();
    scrape_loop *l = scrape_loop_new(1, on_result, NULL);
    cr_assert_not_null(l);
    char err[128];
    cr_assert_eq(scrape_loop_start(l, err, sizeof err), 0, "%s", err);
    scrape_target_spec s = {.job = "run", .hash = 3, .url = "http://127.0.0.1:1/", .interval_ms = 20,
                            .http = h, .forced_error = "first"};
    scrape_loop_upsert(l, &s);
    cr_assert(wait_error("first"));
    s.forced_error = "second";
    scrape_loop_upsert(l, &s); /* the same target: its config is replaced */
    cr_assert(wait_error("second"));
    s.forced_error = "third";
    scrape_loop_upsert(l, &s);
    cr_assert(wait_error("third"));
    heap_use_assert_back_to(before + 1024 * 1024); /* one target's config */
    scrape_loop_free(l);
    heap_use_assert_back_to(before);
}

/* A socket curl already told about has left the epoll set when curl asks to watch it for other events
 * (closed and its number reused): the MOD fails with ENOENT and the socket must be added again, or the
 * answer is never seen and the transfer runs into its timeout. The first scrape, during which the fault
 * fires, must succeed. */
Test(scheduler_faults, socket_gone_from_the_epoll_set_is_added_again)
{
    helper_server srv;
    cr_assert_eq(helper_server_start(&srv, NULL), 0, "exception_server did not start");
    scrape_loop *l = scrape_loop_new(1, on_result, NULL);
    cr_assert_not_null(l);
    scrape_loop_set_fast_http(l, false); /* curl's socket callback is what this is about */
    char err[128], url[128];
    cr_assert_eq(scrape_loop_start(l, err, sizeof err), 0, "%s", err);
    /* an answer 500 ms late: curl's own short timers have run out by then, only epoll can tell */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow?ms=500", srv.port);
    scrape_fault.after[SCRAPE_FAULT_MOD] = 1;
    scrape_target_spec s = {.job = "mod", .hash = 5, .url = url, .interval_ms = 2500, .timeout_ms = 2000};
    scrape_loop_upsert(l, &s);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&mu);
    while (nres == 0 && pthread_cond_timedwait(&cv, &mu, &dl) == 0)
        ;
    int n = nres;
    long status = first_status;
    char e[256];
    snprintf(e, sizeof e, "%s", first_error);
    long failed = scrape_fault.failed;
    pthread_mutex_unlock(&mu);
    scrape_loop_free(l);
    int served = helper_stat(&srv, "path_requests", "/slow");
    helper_server_stop(&srv);
    cr_assert_geq(n, 1, "no scrape finished");
    cr_assert_geq(served, 1);
    cr_assert_eq(failed, 1, "curl never re-armed a known socket");
    cr_assert_str_eq(e, "");
    cr_assert_eq(status, 200);
}

/* Every scrape gives its receive buffer back: 40 scrapes of a small body, then the loop freed, leave the
 * heap as it was (a buffer kept per scrape is at least 16 KiB: 640 KiB). */
Test(scheduler_faults, receive_buffers_are_given_back)
{
    helper_server srv;
    cr_assert_eq(helper_server_start(&srv, NULL), 0, "exception_server did not start");
    size_t before = heap_use();
    scrape_loop *l = scrape_loop_new(1, on_result, NULL);
    cr_assert_not_null(l);
    char err[128], url[128];
    cr_assert_eq(scrape_loop_start(l, err, sizeof err), 0, "%s", err);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/ok", srv.port);
    scrape_target_spec s = {.job = "buf", .hash = 9, .url = url, .interval_ms = 10, .timeout_ms = 1000};
    scrape_loop_upsert(l, &s);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 20;
    pthread_mutex_lock(&mu);
    while (nres < 40 && pthread_cond_timedwait(&cv, &mu, &dl) == 0)
        ;
    int n = nres;
    char e[256];
    snprintf(e, sizeof e, "%s", first_error);
    pthread_mutex_unlock(&mu);
    scrape_loop_free(l);
    helper_server_stop(&srv);
    cr_assert_geq(n, 40);
    cr_assert_str_eq(e, "");
    heap_use_assert_back_to(before);
}

/* A target with no interval (0: lookout's target building refuses it, the loop takes it as a minute) is
 * phased within that minute and does not stop the loop: another target keeps being scraped. */
Test(scheduler_faults, zero_interval_is_a_minute)
{
    scrape_loop *l = scrape_loop_new(1, on_result, NULL);
    cr_assert_not_null(l);
    char err[128];
    cr_assert_eq(scrape_loop_start(l, err, sizeof err), 0, "%s", err);
    scrape_target_spec z = {.job = "zero", .hash = 1, .url = "http://127.0.0.1:1/", .interval_ms = 0,
                            .forced_error = "zero"};
    scrape_loop_upsert(l, &z);
    scrape_target_spec s = {.job = "other", .hash = 2, .url = "http://127.0.0.1:1/", .interval_ms = 20,
                            .forced_error = "other"};
    scrape_loop_upsert(l, &s);
    cr_assert(wait_error("other"));
    int n = results();
    s.forced_error = "other again";
    scrape_loop_upsert(l, &s);
    cr_assert(wait_error("other again"));
    cr_assert_gt(results(), n);
    scrape_loop_free(l);
}

/* A one-connection-at-a-time server on a socket of the test: reads the request, writes answer (NULL:
 * nothing) and hangs up; twice at most. */
typedef struct raw_server {
    int ls;
    const char *answer;
} raw_server;

static void *raw_serve(void *arg)
{
    raw_server *rs = arg;
    for (int i = 0; i < 2; i++) {
        int c = accept(rs->ls, NULL, NULL);
        if (c < 0)
            return NULL;
        char buf[1024];
        ssize_t r = read(c, buf, sizeof buf); /* the request */
        (void)r;
        if (rs->answer) {
            ssize_t w = write(c, rs->answer, strlen(rs->answer));
            (void)w;
        }
        close(c);
    }
    return NULL;
}

/* Starts rs (answer set by the caller) on a free loopback port; returns the port. */
static int raw_start(raw_server *rs, pthread_t *th)
{
    rs->ls = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(rs->ls, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    cr_assert_eq(bind(rs->ls, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(rs->ls, 4), 0);
    cr_assert_eq(getsockname(rs->ls, (struct sockaddr *)&a, &alen), 0);
    cr_assert_eq(pthread_create(th, NULL, raw_serve, rs), 0);
    return ntohs(a.sin_port);
}

static void raw_stop(raw_server *rs, pthread_t th)
{
    shutdown(rs->ls, SHUT_RDWR); /* ends a blocked accept */
    close(rs->ls);
    pthread_join(th, NULL);
}

/* Scrapes url once with a fresh loop; true when a result with error want came. */
static bool scrape_once_fails_with(const char *url, const char *want, char *got, size_t gotlen)
{
    scrape_loop *l = scrape_loop_new(1, on_result, NULL);
    cr_assert_not_null(l);
    char err[128];
    cr_assert_eq(scrape_loop_start(l, err, sizeof err), 0, "%s", err);
    scrape_target_spec s = {.job = "raw", .hash = 3, .url = url, .interval_ms = 3000, .timeout_ms = 2000};
    scrape_loop_upsert(l, &s);
    bool ok = wait_error(want);
    pthread_mutex_lock(&mu);
    snprintf(got, gotlen, "%s", first_error);
    pthread_mutex_unlock(&mu);
    scrape_loop_free(l);
    return ok;
}

/* A server that hangs up without answering: the error is libcurl's own text from the error buffer
 * ("Empty reply from server"), not the generic text of the error code. */
Test(scheduler_faults, empty_reply_is_described_by_libcurl)
{
    raw_server rs = {.answer = NULL};
    pthread_t th;
    int port = raw_start(&rs, &th);
    char url[128], want[256], got[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", port);
    snprintf(want, sizeof want, "Get \"%s\": Empty reply from server", url);
    bool ok = scrape_once_fails_with(url, want, got, sizeof got);
    raw_stop(&rs, th);
    cr_assert(ok, "first error: %s", got);
}

/* The server's own reason phrase is reported (Go's resp.Status), cut at 127 bytes. */
Test(scheduler_faults, long_reason_phrase_is_cut)
{
    static char answer[512], reason[201];
    memset(reason, 'r', 200);
    reason[200] = '\0';
    snprintf(answer, sizeof answer, "HTTP/1.1 503 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", reason);
    raw_server rs = {.answer = answer};
    pthread_t th;
    int port = raw_start(&rs, &th);
    char url[128], want[256], got[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", port);
    snprintf(want, sizeof want, "server returned HTTP status 503 %.127s", reason);
    bool ok = scrape_once_fails_with(url, want, got, sizeof got);
    raw_stop(&rs, th);
    cr_assert(ok, "first error: %s", got);
}
