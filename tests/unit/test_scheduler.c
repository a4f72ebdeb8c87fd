/* Scheduler tests against the exception_server helper: phases, intervals, isolation of bad targets,
 * error texts, body limit, upsert/remove semantics, connection reuse, request headers and auth. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "helper_server.h"
#include "scrape/scheduler.h"
#include "test_deadline.h"
#include "util/metrics.h"

#define MAXREC 512

typedef struct rec {
    char job[32], url[256], error[512];
    uint64_t hash;
    int64_t sched, start;
    double dur;
    long status;
    char *body;
    size_t body_len;
    bool has_body;
} rec;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static rec recs[MAXREC];
static int nrec;
static helper_server srv;
static scrape_loop *loop;
static const uint64_t SEED = 0x1234567887654321ULL;

/* A test may stall the scrape loop once: the result callback runs on the loop's thread. */
static atomic_int stall_ms;

/* Set before a test's targets are added: only that job's result stalls the loop ("" = any). */
static char stall_job[32];

static void on_result(void *ctx, const scrape_result *r)
{
    (void)ctx;
    int stall = !stall_job[0] || !strcmp(r->job, stall_job) ? atomic_exchange(&stall_ms, 0) : 0;
    if (stall > 0)
        usleep((useconds_t)stall * 1000);
    pthread_mutex_lock(&mu);
    if (nrec < MAXREC) {
        rec *x = &recs[nrec++];
        snprintf(x->job, sizeof x->job, "%s", r->job);
        snprintf(x->url, sizeof x->url, "%s", r->url);
        snprintf(x->error, sizeof x->error, "%s", r->error ? r->error : "");
        x->hash = r->hash;
        x->sched = r->scheduled_ms;
        x->start = r->start_ms;
        x->dur = r->duration_s;
        x->status = r->http_status;
        x->has_body = r->body != NULL;
        x->body_len = r->body_len;
        if (r->body) {
            x->body = malloc(r->body_len + 1);
            memcpy(x->body, r->body, r->body_len + 1);
        }
    }
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void setup(void)
{
    cr_assert_eq(helper_server_start(&srv, NULL), 0, "exception_server did not start");
    loop = scrape_loop_new(SEED, on_result, NULL);
    cr_assert_not_null(loop);
    char err[256];
    cr_assert_eq(scrape_loop_start(loop, err, sizeof err), 0, "%s", err);
}

static void teardown(void)
{
    scrape_loop_free(loop);
    loop = NULL;
    helper_server_stop(&srv);
    for (int i = 0; i < nrec; i++)
        free(recs[i].body);
    nrec = 0;
}

TestSuite(scheduler, .init = setup, .fini = teardown, .timeout = 30);

static void url_of(char *buf, size_t n, const char *path)
{
    snprintf(buf, n, "http://127.0.0.1:%d%s", srv.port, path);
}

static void add(const char *job, uint64_t hash, const char *path, int64_t iv, int64_t tmo,
                const http_client_config *http, int64_t limit)
{
    char url[256];
    url_of(url, sizeof url, path);
    scrape_target_spec s = {.job = job, .hash = hash, .url = url, .interval_ms = iv, .timeout_ms = tmo,
                            .http = http, .body_size_limit = limit};
    scrape_loop_upsert(loop, &s);
}

/* Number of results of (job, hash) so far. */
static int count_of(const char *job, uint64_t hash)
{
    int n = 0;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < nrec; i++)
        if (recs[i].hash == hash && !strcmp(recs[i].job, job))
            n++;
    pthread_mutex_unlock(&mu);
    return n;
}

/* Waits until (job, hash) has at least n results or ms passed. Returns the index of the n-th, or -1. */
static int wait_n(const char *job, uint64_t hash, int n, int ms)
{
    struct timespec dl = test_deadline(ms);
    pthread_mutex_lock(&mu);
    for (;;) {
        int seen = 0;
        for (int i = 0; i < nrec; i++)
            if (recs[i].hash == hash && !strcmp(recs[i].job, job) && ++seen == n) {
                pthread_mutex_unlock(&mu);
                return i;
            }
        if (pthread_cond_timedwait(&cv, &mu, &dl) != 0) {
            pthread_mutex_unlock(&mu);
            return -1;
        }
    }
}

/* ---- pure phase math ------------------------------------------------------------------------ */

Test(phase, offsets_spread_and_are_stable)
{
    int bins[10] = {0};
    for (uint64_t i = 0; i < 2000; i++) {
        uint64_t h = fnv1a64(FNV64_OFFSET, &i, sizeof i);
        int64_t o = scrape_phase_offset(h, SEED, 15000);
        cr_assert(o >= 0 && o < 15000);
        cr_assert_eq(o, scrape_phase_offset(h, SEED, 15000));
        bins[o * 10 / 15000]++;
    }
    for (int b = 0; b < 10; b++)
        cr_expect(bins[b] > 120 && bins[b] < 280, "bin %d has %d of 2000", b, bins[b]);
    cr_assert_eq(scrape_phase_offset(77, 0, 1000), 77);
    cr_assert_eq(scrape_phase_offset(1077, 0, 1000), 77);
    cr_assert_eq(scrape_phase_offset(5 ^ 3, 3, 1000), 5);
    /* (hash ^ SEED) % interval, computed by hand (python3) */
    cr_assert_eq(scrape_phase_offset(0xabcdef0123ULL, SEED, 400), 2);
    cr_assert_eq(scrape_phase_offset(4242, SEED, 300), 39);
    cr_assert_eq(scrape_phase_offset(987654321, SEED, 300), 224);
    cr_assert_eq(scrape_phase_offset(77, SEED, 1000), 772);
    cr_assert_eq(scrape_phase_offset(5, SEED, 0), 0);
}

/* The wait until the next slot is in (0, interval]: a target whose slot is now waits a whole interval. */
Test(phase, wait_until_next_slot)
{
    cr_assert_eq(scrape_phase_wait(1000, 400, 200), 400); /* 1000 % 400 == 200: exactly at the slot */
    cr_assert_eq(scrape_phase_wait(1000, 400, 0), 200);
    cr_assert_eq(scrape_phase_wait(1001, 400, 0), 199);
    cr_assert_eq(scrape_phase_wait(1000, 400, 199), 399);
    cr_assert_eq(scrape_phase_wait(1000, 400, 201), 1);
    cr_assert_eq(scrape_phase_wait(0, 400, 0), 400);
    cr_assert_eq(scrape_phase_wait(399, 400, 0), 1);
    cr_assert_eq(scrape_phase_wait(1399, 400, 398), 199);
}

Test(phase, seed_depends_on_external_labels)
{
    labelset a = LABELSET_INIT, b = LABELSET_INIT;
    labelset_set(&a, "replica", "a");
    labelset_set(&b, "replica", "b");
    uint64_t s0 = scrape_seed(NULL), sa = scrape_seed(&a), sb = scrape_seed(&b);
    cr_assert_eq(sa, scrape_seed(&a), "seed must be deterministic");
    cr_assert_neq(sa, sb);
    cr_assert_neq(s0, sa);
    /* Empty label set is Prometheus' "{}", the same as no labels. */
    labelset e = LABELSET_INIT;
    cr_assert_eq(scrape_seed(&e), s0);
    /* hostname + "{}" by hand */
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    uint64_t h = fnv1a64(FNV64_OFFSET, host, strlen(host));
    h = fnv1a64(h, "{}", 2);
    cr_assert_eq(s0, h);
    /* hostname + the label set as Go's String() prints it: a control character as \x01 */
    labelset c = LABELSET_INIT;
    labelset_set(&c, "replica", "a\x01\"b");
    static const char want[] = "{replica=\"a\\x01\\\"b\"}";
    h = fnv1a64(FNV64_OFFSET, host, strlen(host));
    h = fnv1a64(h, want, sizeof want - 1);
    cr_assert_eq(scrape_seed(&c), h);
    /* two labels: separated by ", " as in Go's String() */
    labelset_set(&c, "a", "1");
    static const char want2[] = "{a=\"1\", replica=\"a\\x01\\\"b\"}";
    h = fnv1a64(FNV64_OFFSET, host, strlen(host));
    h = fnv1a64(h, want2, sizeof want2 - 1);
    cr_assert_eq(scrape_seed(&c), h);
    labelset_free(&c);
    labelset_free(&a);
    labelset_free(&b);
}

/* ---- scheduling ----------------------------------------------------------------------------- */

Test(scheduler, first_scrape_waits_for_phase_and_keeps_interval)
{
    const uint64_t hash = 0xabcdef0123ULL;
    const int64_t iv = 400;
    add("j", hash, "/ok", iv, 300, NULL, 0);
    int i3 = wait_n("j", hash, 4, 3500);
    cr_assert_geq(i3, 0, "expected 4 scrapes in 3.5 s");
    const int64_t off = 2; /* (0xabcdef0123 ^ SEED) % 400, by hand */
    pthread_mutex_lock(&mu);
    int64_t prev = -1;
    for (int i = 0; i < nrec; i++) {
        rec *r = &recs[i];
        cr_expect_eq(r->sched % iv, off, "scheduled %lld not at phase %lld", (long long)r->sched, (long long)off);
        if (prev >= 0)
            cr_expect_eq(r->sched - prev, iv, "consecutive scrapes %lld ms apart", (long long)(r->sched - prev));
        prev = r->sched;
        cr_expect_geq(r->start, r->sched, "scrape started %lld ms early", (long long)(r->sched - r->start));
        cr_expect_str_empty(r->error);
        cr_expect(r->has_body && r->body_len > 100);
        cr_expect_eq(r->status, 200);
    }
    pthread_mutex_unlock(&mu);
}

Test(scheduler, many_targets_each_at_its_interval)
{
    const int n = 12;
    for (int i = 0; i < n; i++) {
        char p[32];
        snprintf(p, sizeof p, "/t/%d", i);
        add("many", 1000 + (uint64_t)i * 7919, p, 300, 250, NULL, 0);
    }
    /* Every target is scraped on its own 300 ms grid: scheduled times (not wall-clock arrivals) are
     * exactly an interval apart, or a whole number of intervals when a loaded machine made it skip. */
    for (int i = 0; i < n; i++)
        cr_assert_geq(wait_n("many", 1000 + (uint64_t)i * 7919, 4, 10000), 0, "target %d: no 4 scrapes in 10 s", i);
    pthread_mutex_lock(&mu);
    for (int i = 0; i < n; i++) {
        int64_t prev = -1;
        for (int k = 0; k < nrec; k++) {
            if (recs[k].hash != 1000 + (uint64_t)i * 7919)
                continue;
            if (prev >= 0)
                cr_expect(recs[k].sched - prev >= 300 && (recs[k].sched - prev) % 300 == 0,
                          "target %d: scheduled %lld ms after the previous one", i, (long long)(recs[k].sched - prev));
            prev = recs[k].sched;
        }
    }
    pthread_mutex_unlock(&mu);
    /* Phases differ: not all starts in the same 30 ms slot. */
    pthread_mutex_lock(&mu);
    int64_t lo = INT64_MAX, hi = 0;
    for (int i = 0; i < nrec; i++) {
        int64_t o = recs[i].sched % 300;
        lo = o < lo ? o : lo;
        hi = o > hi ? o : hi;
    }
    pthread_mutex_unlock(&mu);
    cr_expect(hi - lo > 100, "phases not spread: %lld..%lld", (long long)lo, (long long)hi);
}

/* Starts are coalesced (START_SLACK_MS: the loop wakes for the first due start plus a slack and starts
 * everything due by then) but never early: eleven targets whose phases are 3 ms apart (offsets 100, 103,
 * ..., 130 of a 300 ms interval, chosen through the hash) each start at or after their scheduled time,
 * which stays on their own grid. A loop that started what falls due within the slack ahead would start
 * some of them early. */
Test(scheduler, coalesced_starts_are_never_early)
{
    for (int i = 0; i < 11; i++)
        add("co", SEED ^ (uint64_t)(300 * 1000 + 100 + 3 * i), "/ok", 300, 250, NULL, 0);
    for (int i = 0; i < 11; i++)
        cr_assert_geq(wait_n("co", SEED ^ (uint64_t)(300 * 1000 + 100 + 3 * i), 4, 10000), 0, "target %d", i);
    pthread_mutex_lock(&mu);
    int seen = 0;
    for (int k = 0; k < nrec; k++) {
        if (strcmp(recs[k].job, "co") != 0)
            continue;
        seen++;
        int64_t off = (int64_t)((recs[k].hash ^ SEED) - 300 * 1000);
        cr_expect_eq(recs[k].sched % 300, off, "scheduled off its phase");
        cr_expect_geq(recs[k].start, recs[k].sched, "started %lld ms early (offset %lld)",
                      (long long)(recs[k].sched - recs[k].start), (long long)off);
        cr_expect_str_empty(recs[k].error);
    }
    pthread_mutex_unlock(&mu);
    cr_expect_geq(seen, 44);
}

/* A loop stalled for several intervals (here: its result callback) skips the ticks it missed and keeps the
 * phase: the start after the late one is the first tick of the grid after the late start, not one more
 * interval later (and not a burst of the missed ones). Ordering of recorded times, not timing: whatever
 * the stall's real length, sched_next - interval <= start_late < sched_next holds. */
Test(scheduler, stalled_loop_resumes_on_the_next_tick)
{
    add("stall", 9, "/ok", 300, 250, NULL, 0);
    cr_assert_geq(wait_n("stall", 9, 1, 5000), 0);
    atomic_store(&stall_ms, 1000); /* the next result holds the loop for 1 s: more than 3 intervals */
    int late = wait_n("stall", 9, 3, 10000);
    int next = wait_n("stall", 9, 4, 10000);
    cr_assert_geq(late, 0);
    cr_assert_geq(next, 0);
    pthread_mutex_lock(&mu);
    int64_t start_late = recs[late].start, sched_next = recs[next].sched;
    int64_t gap = recs[next].sched - recs[late].sched;
    pthread_mutex_unlock(&mu);
    cr_expect_gt(sched_next, start_late, "the next start was scheduled before the loop came back");
    cr_expect_leq(sched_next - 300, start_late, "a whole interval more was skipped: next %lld, late start %lld",
                  (long long)sched_next, (long long)start_late);
    cr_expect_eq(gap % 300, 0, "off the phase grid: %lld", (long long)gap);
}

/* A loop that is behind reaches a request's deadline before the event of its answer: the answer already
 * in the socket counts (and the kept-alive connection stays), instead of a "context deadline exceeded"
 * that closes the connection and makes the next scrape reconnect (overloaded loops collapsed that way).
 * Phases are (hash ^ SEED) % interval: "late" starts at slot 100 of a 2 s grid, its answer takes 200 ms;
 * "stall" starts at slot 150, answers at once, and its result holds the loop for 1 s, past late's 600 ms
 * deadline and after late's answer arrived. */
Test(scheduler, answer_read_at_a_missed_deadline_counts)
{
    struct timespec now;
    do { /* both slots of the next cycle ahead: add when the wall clock is in [300, 1800) of the grid */
        clock_gettime(CLOCK_REALTIME, &now);
        if ((now.tv_sec % 2 * 1000 + now.tv_nsec / 1000000) % 2000 >= 300 &&
            (now.tv_sec % 2 * 1000 + now.tv_nsec / 1000000) % 2000 < 1800)
            break;
        usleep(50000);
    } while (1);
    snprintf(stall_job, sizeof stall_job, "stall");
    atomic_store(&stall_ms, 1000);
    add("late", SEED ^ 100, "/slow?ms=200", 2000, 600, NULL, 0);
    add("stall", SEED ^ 150, "/ok", 2000, 600, NULL, 0);
    int late = wait_n("late", SEED ^ 100, 1, 8000), st = wait_n("stall", SEED ^ 150, 1, 8000);
    cr_assert_geq(late, 0);
    cr_assert_geq(st, 0);
    pthread_mutex_lock(&mu);
    rec l = recs[late], s = recs[st];
    pthread_mutex_unlock(&mu);
    stall_job[0] = '\0';
    cr_assert_lt(l.start, s.start, "the scenario did not happen: late started at %lld, stall at %lld",
                 (long long)l.start, (long long)s.start);
    cr_assert_geq(l.dur, 0.6, "the loop was not held past late's deadline (%.3f s)", l.dur);
    cr_expect_str_empty(l.error);
    cr_expect_eq(l.status, 200);
    cr_expect(l.has_body);
    /* the connection was kept: late's next scrape reuses it, so the server saw three connections in all
     * (late's, stall's and this /stats request's) */
    cr_assert_geq(wait_n("late", SEED ^ 100, 2, 8000), 0);
    cr_expect_eq(helper_stat(&srv, "connections", NULL), 3);
}

Test(scheduler, hung_target_times_out_alone)
{
    /* The timeout (1 s) is far below the interval (4 s): a timeout that became the interval would end
     * the scrape after 4 s. */
    add("iso", 1, "/hang?ms=10000", 4000, 1000, NULL, 0);
    add("iso", 2, "/ok", 200, 150, NULL, 0);
    int hung = wait_n("iso", 1, 1, 9000);
    cr_assert_geq(hung, 0);
    char url[256];
    url_of(url, sizeof url, "/hang?ms=10000");
    char want[400];
    snprintf(want, sizeof want, "Get \"%s\": context deadline exceeded", url);
    pthread_mutex_lock(&mu);
    cr_expect_str_eq(recs[hung].error, want);
    cr_expect(recs[hung].dur >= 0.98, "timed out after %.3f s, before its 1 s timeout", recs[hung].dur);
    cr_expect(recs[hung].dur < 4.0, "timed out after %.3f s: the interval, not the 1 s timeout", recs[hung].dur);
    cr_expect(!recs[hung].has_body);
    /* While the hung scrape was in flight, the healthy target kept being scraped (a loop blocked by it
     * could start nothing in that second). */
    int64_t from = recs[hung].start, to = recs[hung].start + (int64_t)(recs[hung].dur * 1000);
    int during = 0;
    for (int i = 0; i < nrec; i++)
        if (recs[i].hash == 2) {
            cr_expect_str_empty(recs[i].error);
            during += recs[i].start > from && recs[i].start < to;
        }
    pthread_mutex_unlock(&mu);
    cr_expect_geq(during, 1, "no healthy scrape started while the hung one was in flight");
}

Test(scheduler, connection_refused)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(s, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &al);
    int port = ntohs(a.sin_port);
    close(s); /* nobody listens there now */
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/-/exceptions", port);
    scrape_target_spec sp = {.job = "ref", .hash = 9, .url = url, .interval_ms = 200, .timeout_ms = 150};
    scrape_loop_upsert(loop, &sp);
    int i = wait_n("ref", 9, 1, 2000);
    cr_assert_geq(i, 0);
    char want[256];
    snprintf(want, sizeof want, "Get \"%s\": dial tcp 127.0.0.1:%d: connect: connection refused", url, port);
    pthread_mutex_lock(&mu);
    cr_expect_str_eq(recs[i].error, want);
    cr_expect_eq(recs[i].status, 0);
    pthread_mutex_unlock(&mu);
}

Test(scheduler, http_500_and_404)
{
    add("st", 1, "/status/500", 200, 150, NULL, 0);
    add("st", 2, "/nope", 200, 150, NULL, 0);
    int a = wait_n("st", 1, 1, 2000), b = wait_n("st", 2, 1, 2000);
    cr_assert(a >= 0 && b >= 0);
    pthread_mutex_lock(&mu);
    cr_expect_str_eq(recs[a].error, "server returned HTTP status 500 Internal Server Error");
    cr_expect_eq(recs[a].status, 500);
    cr_expect(!recs[a].has_body);
    cr_expect_str_eq(recs[b].error, "server returned HTTP status 404 Not Found");
    pthread_mutex_unlock(&mu);
}

Test(scheduler, huge_body_aborted_at_limit)
{
    add("big", 1, "/huge?mb=50", 5000, 4000, NULL, 0);                  /* chunked: the write callback */
    add("big", 2, "/huge?mb=50&length=1", 5000, 4000, NULL, 1 << 20); /* Content-Length above limit */
    int a = wait_n("big", 1, 1, 7000), b = wait_n("big", 2, 1, 7000);
    cr_assert(a >= 0 && b >= 0);
    pthread_mutex_lock(&mu);
    cr_expect_str_eq(recs[a].error, "body size limit exceeded (10485760 bytes)");
    cr_expect_str_eq(recs[b].error, "body size limit exceeded (1048576 bytes)");
    pthread_mutex_unlock(&mu);
    long long sent = helper_stat(&srv, "bytes_sent", NULL);
    cr_expect(sent > 0 && sent < 30LL * 1024 * 1024, "server sent %lld bytes: transfer not aborted early", sent);
}

/* The limit at its edge, for a body without Content-Length (only the write callback can tell): exactly
 * the limit is delivered, one byte over is refused. */
Test(scheduler, body_limit_edge_without_content_length)
{
    add("edge", 1, "/huge?mb=1", 2000, 1500, NULL, 1 << 20);
    add("edge", 2, "/huge?mb=1", 2000, 1500, NULL, (1 << 20) - 1);
    int a = wait_n("edge", 1, 1, 5000), b = wait_n("edge", 2, 1, 5000);
    cr_assert(a >= 0 && b >= 0);
    pthread_mutex_lock(&mu);
    cr_expect_str_eq(recs[a].error, "");
    cr_expect_eq(recs[a].body_len, 1 << 20);
    /* chunked: only the filler's bytes, none of the framing (the fast path moves each piece down over it) */
    cr_expect(recs[a].body && strspn(recs[a].body, "[\"x],") == 1 << 20 && !memcmp(recs[a].body, "[\"xxx", 5),
              "framing bytes in the body");
    cr_expect_str_eq(recs[b].error, "body size limit exceeded (1048575 bytes)");
    cr_expect(!recs[b].has_body);
    pthread_mutex_unlock(&mu);
}

Test(scheduler, garbage_is_delivered_as_is)
{
    add("g", 1, "/garbage", 300, 200, NULL, 0);
    int i = wait_n("g", 1, 1, 2000);
    cr_assert_geq(i, 0);
    static const char g[] = "\x00\xff<html>not json{{{\x01\x02 garbage \xfe]]";
    pthread_mutex_lock(&mu);
    cr_expect_str_empty(recs[i].error);
    cr_assert_eq(recs[i].body_len, sizeof g - 1);
    cr_expect(memcmp(recs[i].body, g, sizeof g - 1) == 0);
    cr_expect_eq(recs[i].body[recs[i].body_len], '\0');
    pthread_mutex_unlock(&mu);
}

Test(scheduler, upsert_keeps_phase_and_applies_new_url)
{
    const uint64_t hash = 4242;
    add("u", hash, "/ok", 300, 250, NULL, 0);
    int first = wait_n("u", hash, 1, 2000);
    cr_assert_geq(first, 0);
    add("u", hash, "/ok?v=2", 300, 250, NULL, 0); /* same job+hash: update */
    int third = wait_n("u", hash, 3, 2000);
    cr_assert_geq(third, 0);
    pthread_mutex_lock(&mu);
    const int64_t off = 39; /* (4242 ^ SEED) % 300, by hand */
    int64_t s0 = recs[first].sched;
    for (int i = 0; i < nrec; i++) {
        cr_expect_eq(recs[i].sched % 300, off);
        cr_expect_eq((recs[i].sched - s0) % 300, 0, "upsert shifted the grid");
    }
    cr_expect(strstr(recs[third].url, "/ok?v=2") != NULL, "new URL not used: %s", recs[third].url);
    pthread_mutex_unlock(&mu);
    cr_expect_eq(count_of("u", hash), 3, "upsert must not cause extra scrapes");
}

/* An upsert applies the new timeout with the new URL (the request header carries the timeout, in seconds
 * with milliseconds: 999 ms is "0.999"). */
Test(scheduler, upsert_applies_new_timeout)
{
    add("to", 1, "/echo?v=1", 1000, 900, NULL, 0);
    add("to", 1, "/echo?v=2", 1000, 999, NULL, 0);
    int i = wait_n("to", 1, 1, 3000);
    cr_assert_geq(i, 0);
    if (strstr(recs[i].url, "v=1")) /* the first scrape was due before the upsert applied */
        i = wait_n("to", 1, 2, 3000);
    cr_assert_geq(i, 0);
    pthread_mutex_lock(&mu);
    cr_expect(strstr(recs[i].url, "/echo?v=2") != NULL, "%s", recs[i].url);
    cr_expect(recs[i].body && strstr(recs[i].body, "X-Prometheus-Scrape-Timeout-Seconds: 0.999\n") != NULL, "%s",
              recs[i].body ? recs[i].body : "(no body)");
    pthread_mutex_unlock(&mu);
}

/* A changed interval re-phases the target at once: the next start is the first slot of the new phase
 * after the update, not the start the old interval had planned (which comes 2 s after the last one; a
 * 300 ms phase has a slot in every 300 ms of that), and the starts after it are 300 ms apart. */
Test(scheduler, interval_change_rephases)
{
    const uint64_t hash = 987654321;
    add("iv", hash, "/ok", 2000, 400, NULL, 0);
    int i0 = wait_n("iv", hash, 1, 4000);
    cr_assert_geq(i0, 0);
    pthread_mutex_lock(&mu);
    int64_t s0 = recs[i0].sched;
    pthread_mutex_unlock(&mu);
    cr_assert_eq(s0 % 2000, 1424); /* (987654321 ^ SEED) % 2000, by hand */
    add("iv", hash, "/ok", 300, 250, NULL, 0);
    int n0 = count_of("iv", hash);
    int k = wait_n("iv", hash, n0 + 3, 4000);
    cr_assert_geq(k, 0);
    int first = wait_n("iv", hash, n0 + 1, 0), prev = wait_n("iv", hash, n0 + 2, 0);
    pthread_mutex_lock(&mu);
    int64_t f = recs[first].sched, a = recs[prev].sched, b = recs[k].sched;
    int in_old_gap = 0; /* starts between the last one at 2 s and the one the old interval had planned */
    for (int i = 0; i < nrec; i++)
        if (recs[i].hash == hash && recs[i].sched > s0 && recs[i].sched < s0 + 2000)
            in_old_gap++;
    pthread_mutex_unlock(&mu);
    /* the loop really starts them there: a target whose heap entry kept the old time would start once,
     * late, at s0 + 2000 (reporting the new slot as scheduled), then every 300 ms */
    cr_assert_geq(in_old_gap, 2, "%d starts in the 2 s after the update", in_old_gap);
    /* (987654321 ^ SEED) % 300 = 224 by hand */
    cr_assert_eq(f % 300, 224);
    cr_assert_eq(a % 300, 224);
    cr_assert_eq(b % 300, 224);
    cr_assert(f > s0 && f < s0 + 2000, "first start %lld ms after the last one at the old interval",
              (long long)(f - s0));
    cr_assert(b > a && (b - a) % 300 == 0, "consecutive starts %lld ms apart at a 300 ms interval",
              (long long)(b - a));
}

/* An interval of 0 means the default of one minute, both for the phase and for the next start (run_due):
 * the hash is chosen so that the minute's phase falls 1.5 s from now (offset = (hash ^ seed) % 60000; the
 * margin is for a loaded machine), so the first start comes soon, scheduled at that phase, and it plans the next one a minute later
 * (a start that took 0 as the interval would divide by zero skipping "missed" ticks). */
Test(scheduler, interval_zero_is_one_minute)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t wall = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    const int64_t off = (wall + 1500) % 60000;
    const uint64_t hash = SEED ^ (uint64_t)off;
    add("iv0", hash, "/ok", 0, 300, NULL, 0);
    int i0 = wait_n("iv0", hash, 1, 5000);
    cr_assert_geq(i0, 0, "no scrape in 5 s");
    /* the loop goes on after the start (a second target is still scraped on its 200 ms grid) */
    add("iv0b", 5, "/ok", 200, 150, NULL, 0);
    cr_assert_geq(wait_n("iv0b", 5, 2, 3000), 0, "the loop stopped after the interval-0 start");
    pthread_mutex_lock(&mu);
    int64_t s0 = recs[i0].sched;
    long st = recs[i0].status;
    pthread_mutex_unlock(&mu);
    cr_assert_eq(s0 % 60000, off);
    cr_assert_eq(st, 200);
    cr_assert_eq(count_of("iv0", hash), 1);
}

/* A fast request's deadline wakes the loop by itself: with a one-minute interval nothing else is due, and
 * a 200 ms timeout on a server that answers after 3 s ends in "context deadline exceeded", not in the
 * answer (the phase is put 1.5 s from now as in interval_zero_is_one_minute). */
Test(scheduler, fast_timeout_wakes_the_loop)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t wall = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    const uint64_t hash = SEED ^ (uint64_t)((wall + 1500) % 60000);
    add("fto", hash, "/slow?ms=3000", 60000, 200, NULL, 0);
    int i0 = wait_n("fto", hash, 1, 8000);
    cr_assert_geq(i0, 0, "no result in 8 s");
    char url[256], want[512];
    url_of(url, sizeof url, "/slow?ms=3000");
    snprintf(want, sizeof want, "Get \"%s\": context deadline exceeded", url);
    pthread_mutex_lock(&mu);
    rec r = recs[i0];
    pthread_mutex_unlock(&mu);
    cr_assert_str_eq(r.error, want);
    cr_assert_eq(r.status, 0);
}

/* The success range is 200..299 inclusive on the fast path (plain http to 127.0.0.1) as on curl's:
 * 299 is a success with its body, 300 a failure. */
Test(scheduler, status_299_succeeds_300_fails)
{
    add("st", 299, "/status/299", 300, 250, NULL, 0);
    add("st", 300, "/status/300", 300, 250, NULL, 0);
    int a = wait_n("st", 299, 1, 3000), b = wait_n("st", 300, 1, 3000);
    cr_assert_geq(a, 0);
    cr_assert_geq(b, 0);
    pthread_mutex_lock(&mu);
    rec ra = recs[a], rb = recs[b];
    pthread_mutex_unlock(&mu);
    cr_assert_eq(ra.status, 299);
    cr_assert_str_empty(ra.error);
    cr_assert(ra.has_body);
    cr_assert_eq(ra.body_len, 7);
    cr_assert_str_eq(ra.body, "status\n");
    cr_assert_eq(rb.status, 300);
    cr_assert_not(rb.has_body);
    cr_assert_str_eq(rb.error, "server returned HTTP status 300 Multiple Choices");
}

Test(scheduler, remove_stops_scraping_and_aborts_in_flight)
{
    add("rm", 1, "/ok", 200, 150, NULL, 0);
    add("rm", 2, "/slow?ms=1500", 400, 2000, NULL, 0);
    cr_assert_geq(wait_n("rm", 1, 2, 2000), 0);
    /* Target 2 is in its first (1.5 s) scrape once the server has its request: the removal then drops
     * a transfer in flight, with its receive buffer (which must go back to the pool, not leak). */
    int polls = 0;
    while (helper_stat(&srv, "path_requests", "/slow") < 1 && polls++ < 300)
        usleep(10000);
    cr_assert_geq(helper_stat(&srv, "path_requests", "/slow"), 1, "target 2 was never scraped");
    scrape_loop_remove(loop, "rm", 1);
    scrape_loop_remove(loop, "rm", 2);
    /* A control target added after the removals: commands apply in order, so its first result means both
     * removals took effect; its next 8 results (1.6 s of loop activity) prove the loop kept running
     * while the removed targets stayed silent. */
    add("rm", 3, "/ok", 200, 150, NULL, 0);
    cr_assert_geq(wait_n("rm", 3, 1, 2000), 0);
    int c1 = count_of("rm", 1);
    cr_assert_geq(wait_n("rm", 3, 9, 5000), 0, "the loop stopped scraping the control target");
    cr_expect_eq(count_of("rm", 1), c1, "removed target still scraped");
    cr_expect_eq(count_of("rm", 2), 0, "aborted scrape reported a result");
    /* Removing an unknown target is harmless; re-adding works. */
    scrape_loop_remove(loop, "rm", 77);
    add("rm", 1, "/ok", 200, 150, NULL, 0);
    cr_expect_geq(wait_n("rm", 1, c1 + 1, 1500), 0);
}

Test(scheduler, connections_are_reused)
{
    long long before = helper_stat(&srv, "connections", NULL);
    add("keep", 1, "/ok", 200, 150, NULL, 0);
    add("keep", 2, "/t/5", 200, 150, NULL, 0);
    cr_assert_geq(wait_n("keep", 1, 6, 3000), 0);
    cr_assert_geq(wait_n("keep", 2, 6, 3000), 0);
    long long after = helper_stat(&srv, "connections", NULL);
    /* two targets, 12+ scrapes; the stats requests themselves add one connection each */
    cr_expect_leq(after - before - 1, 2, "%lld connections for 12 scrapes", after - before - 1);
}

/* Upserts the "stale" target with path and http, waits for two more of its results (the first may have
 * started before the upsert applied, the second started after it) and returns the server's connections
 * since *conns (the stats request itself is one of them), updating *conns. */
static long long stale_step(const char *path, const http_client_config *http, long long *conns)
{
    int n = count_of("stale", 1);
    add("stale", 1, path, 200, 150, http, 0);
    cr_assert_geq(wait_n("stale", 1, n + 2, 3000), 0);
    long long now = helper_stat(&srv, "connections", NULL);
    long long d = now - *conns;
    *conns = now;
    return d;
}

/* The fast path's kept-alive connection belongs to the target's URL and client config: an upsert that
 * changes either makes the next scrape connect afresh (fast_stale) and then keep that connection; an
 * upsert that changes neither keeps the old one. Counted on the server: 1 is the stats request alone. */
Test(scheduler, fast_connection_renewed_only_when_url_or_client_config_changes)
{
    add("stale", 1, "/ok", 200, 150, NULL, 0);
    cr_assert_geq(wait_n("stale", 1, 2, 3000), 0);
    long long conns = helper_stat(&srv, "connections", NULL);
    cr_assert_gt(conns, 0);
    cr_expect_eq(stale_step("/ok", NULL, &conns), 1, "same URL, no client config: the connection stays");
    cr_expect_eq(stale_step("/ok?v=2", NULL, &conns), 2, "new URL: one new connection");
    cr_expect_eq(stale_step("/ok?v=2", NULL, &conns), 1, "then kept");
    http_client_config h = {.follow_redirects = true, .enable_http2 = true, .has_basic_auth = true,
                            .basic_auth_username = "alice", .basic_auth_password = "s3cret"};
    cr_expect_eq(stale_step("/ok?v=2", &h, &conns), 2, "a client config where there was none");
    cr_expect_eq(stale_step("/ok?v=2", &h, &conns), 1, "an equal client config");
    http_client_config h2 = h;
    h2.basic_auth_password = "other";
    cr_expect_eq(stale_step("/ok?v=2", &h2, &conns), 2, "a changed client config");
    cr_expect_eq(stale_step("/ok?v=2", NULL, &conns), 2, "no client config where there was one");
    pthread_mutex_lock(&mu);
    for (int i = 0; i < nrec; i++)
        cr_expect_str_empty(recs[i].error, "scrape %d failed: %s", i, recs[i].error);
    pthread_mutex_unlock(&mu);
}

Test(scheduler, request_headers_and_basic_auth)
{
    http_client_config h = {.follow_redirects = true, .enable_http2 = true, .has_basic_auth = true,
                            .basic_auth_username = "alice", .basic_auth_password = "s3cret"};
    add("hd", 1, "/echo", 500, 2250, &h, 0); /* 2250 ms: "2.25", trailing zeros trimmed, not "2.250" */
    int i = wait_n("hd", 1, 1, 2000);
    cr_assert_geq(i, 0);
    pthread_mutex_lock(&mu);
    const char *b = recs[i].body;
    cr_assert_not_null(b);
    cr_expect(strstr(b, "Accept: application/json\n") != NULL, "%s", b);
    cr_expect(strstr(b, "User-Agent: lookout/" LOOKOUT_VERSION "\n") != NULL, "%s", b);
    cr_expect(strstr(b, "X-Prometheus-Scrape-Timeout-Seconds: 2.25\n") != NULL, "%s", b);
    cr_expect(strstr(b, "Accept-Encoding: ") != NULL, "%s", b);
    cr_expect(strstr(b, "Authorization: Basic YWxpY2U6czNjcmV0\n") != NULL, "%s", b); /* alice:s3cret */
    pthread_mutex_unlock(&mu);
}

Test(scheduler, bearer_credentials_file_is_reread)
{
    char path[] = "/tmp/lookout-test-cred-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "token-one\n", 10), 10);
    close(fd);
    http_client_config h = {.follow_redirects = true, .enable_http2 = true, .has_authorization = true,
                            .authorization_type = "Bearer", .authorization_credentials_file = path};
    add("br", 1, "/echo", 300, 250, &h, 0);
    int i = wait_n("br", 1, 1, 2000);
    cr_assert_geq(i, 0);
    FILE *f = fopen(path, "w");
    fputs("token-two", f);
    fclose(f);
    int n = count_of("br", 1);
    int j = wait_n("br", 1, n + 1, 2000);
    cr_assert_geq(j, 0);
    pthread_mutex_lock(&mu);
    cr_expect(strstr(recs[i].body, "Authorization: Bearer token-one\n") != NULL, "%s", recs[i].body);
    cr_expect(strstr(recs[j].body, "Authorization: Bearer token-two\n") != NULL, "%s", recs[j].body);
    pthread_mutex_unlock(&mu);
    unlink(path);
    /* A missing file fails the scrape with a clear error (and no secret in it). */
    n = count_of("br", 1);
    j = wait_n("br", 1, n + 1, 2000);
    cr_assert_geq(j, 0);
    pthread_mutex_lock(&mu);
    char want[256];
    snprintf(want, sizeof want,
             "unable to read authorization credentials file %s: open %s: no such file or directory", path, path);
    cr_expect_str_eq(recs[j].error, want);
    pthread_mutex_unlock(&mu);
}

Test(scheduler, redirects_follow_or_fail)
{
    http_client_config follow = {.follow_redirects = true, .enable_http2 = true};
    http_client_config nofollow = {.follow_redirects = false, .enable_http2 = true};
    add("rd", 1, "/redirect", 300, 250, &follow, 0);
    add("rd", 2, "/redirect", 300, 250, &nofollow, 0);
    int a = wait_n("rd", 1, 1, 2000), b = wait_n("rd", 2, 1, 2000);
    cr_assert(a >= 0 && b >= 0);
    pthread_mutex_lock(&mu);
    cr_expect_str_empty(recs[a].error);
    cr_expect(recs[a].has_body && strstr(recs[a].body, "aggregated_errors"));
    cr_expect_str_eq(recs[b].error, "server returned HTTP status 302 Found");
    pthread_mutex_unlock(&mu);
}

Test(scheduler, metrics_count_scrapes_and_failures)
{
    const char *ok[] = {"m_ok"}, *bad[] = {"m_bad"};
    metric_family *scrapes = metric_family_get("lookout_scrapes_total", METRIC_COUNTER, "", 1,
                                               (const char *[]){"job"});
    metric_family *fails = metric_family_get("lookout_scrape_failures_total", METRIC_COUNTER, "", 1,
                                             (const char *[]){"job"});
    add("m_ok", 1, "/ok", 200, 150, NULL, 0);
    add("m_bad", 1, "/status/503", 200, 150, NULL, 0);
    cr_assert_geq(wait_n("m_ok", 1, 3, 2000), 0);
    cr_assert_geq(wait_n("m_bad", 1, 3, 2000), 0);
    /* Stopped, with a control target added after the removals: its first result means both are gone, so
     * the counters can be compared with the results delivered, one each. */
    scrape_loop_remove(loop, "m_ok", 1);
    scrape_loop_remove(loop, "m_bad", 1);
    add("m_ctl", 1, "/ok", 200, 150, NULL, 0);
    cr_assert_geq(wait_n("m_ctl", 1, 1, 2000), 0);
    cr_expect_eq(metric_value(scrapes, ok), count_of("m_ok", 1));
    cr_expect_eq(metric_value(fails, ok), 0);
    cr_expect_eq(metric_value(scrapes, bad), count_of("m_bad", 1));
    cr_expect_eq(metric_value(fails, bad), count_of("m_bad", 1), "one failure per failed scrape");
    strbuf sb;
    strbuf_init(&sb);
    metrics_render(&sb);
    cr_expect(strstr(sb.buf, "lookout_scrape_delay_seconds_bucket") != NULL);
    cr_expect(strstr(sb.buf, "lookout_scrape_duration_seconds_count{job=\"m_ok\"}") != NULL);
    /* the bucket bounds, in order: Prometheus' default buckets (DefBuckets) and 30 s, 60 s for slow targets */
    static const char *const les[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
                                      "10", "30", "60", "+Inf"};
    const char *at = sb.buf;
    for (size_t i = 0; i < sizeof les / sizeof *les; i++) {
        char want[128];
        snprintf(want, sizeof want, "lookout_scrape_duration_seconds_bucket{job=\"m_ok\",le=\"%s\"}", les[i]);
        const char *f = strstr(at, want);
        cr_expect_not_null(f, "no bucket le=%s after the previous one", les[i]);
        if (f)
            at = f;
    }
    strbuf_free(&sb);
}

/* The example emitter (examples/emitter/emitter.py) is scrapeable and its payload grows. */
Test(scheduler, example_emitter_payload_grows)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* no stray emitter when an assertion below fails */
        if (getppid() != parent)
            _exit(1);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execlp("python3", "python3", "examples/emitter/emitter.py", "--port", "0", "--new-every", "0.5",
               "--seed", "1", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[256] = "";
    int port = 0;
    if (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "127.0.0.1:");
        if (p)
            port = atoi(p + 10);
    }
    fclose(f);
    if (port <= 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        cr_assert_fail("emitter did not start: %s", line);
    }
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/-/exceptions", port);
    scrape_target_spec sp = {.job = "em", .hash = 5, .url = url, .interval_ms = 400, .timeout_ms = 300};
    scrape_loop_upsert(loop, &sp);
    int a = wait_n("em", 5, 1, 2000), b = wait_n("em", 5, 4, 3000);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    cr_assert(a >= 0 && b >= 0);
    pthread_mutex_lock(&mu);
    cr_expect_str_empty(recs[b].error);
    const char *styles[] = {"*url.Error@", "ValueError@", "NoMethodError@", "java.lang.IllegalStateException@",
                            "\"target_uuid\"", "\"latest_errors\""};
    for (size_t i = 0; i < sizeof styles / sizeof *styles; i++)
        cr_expect(strstr(recs[b].body, styles[i]) != NULL, "%s missing", styles[i]);
    cr_expect_gt(recs[b].body_len, recs[a].body_len, "payload did not grow (%zu -> %zu)", recs[a].body_len,
                 recs[b].body_len);
    pthread_mutex_unlock(&mu);
}

/* A loop that was never started (lookout failing before its start) frees without joining a thread that
 * does not exist, and drops the targets queued meanwhile. Found by mutation testing (make mutate). */
Test(phase, free_without_start)
{
    scrape_loop *l = scrape_loop_new(SEED, on_result, NULL);
    cr_assert_not_null(l);
    scrape_target_spec s = {.job = "never", .hash = 1, .url = "http://127.0.0.1:1/", .interval_ms = 1000,
                            .timeout_ms = 500};
    scrape_loop_upsert(l, &s);
    scrape_loop_free(l);
    cr_assert_eq(count_of("never", 1), 0);
}

/* A forced error (target_limit): every scrape fails with it at its start and sends no request; cleared,
 * the target is scraped again. */
Test(scheduler, forced_error_fails_without_a_request)
{
    char url[256];
    url_of(url, sizeof url, "/ok");
    const char *forced = "target_limit exceeded (number of targets: 3, limit: 2)";
    scrape_target_spec s = {.job = "lim", .hash = 77, .url = url, .interval_ms = 200, .timeout_ms = 150,
                            .forced_error = forced};
    scrape_loop_upsert(loop, &s);
    int i = wait_n("lim", 77, 2, 10000);
    cr_assert_geq(i, 0);
    pthread_mutex_lock(&mu);
    cr_assert_str_eq(recs[i].error, forced);
    cr_assert_eq(recs[i].status, 0);
    cr_assert(!recs[i].has_body);
    pthread_mutex_unlock(&mu);
    cr_assert_eq(helper_stat(&srv, "path_requests", "/ok"), 0);
    s.forced_error = NULL;
    scrape_loop_upsert(loop, &s);
    int n = count_of("lim", 77);
    i = wait_n("lim", 77, n + 2, 10000);
    cr_assert_geq(i, 0);
    pthread_mutex_lock(&mu);
    cr_assert_str_eq(recs[i].error, "");
    cr_assert_eq(recs[i].status, 200);
    pthread_mutex_unlock(&mu);
    cr_assert_geq(helper_stat(&srv, "path_requests", "/ok"), 1);
}
