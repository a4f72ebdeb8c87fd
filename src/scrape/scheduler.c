/* scheduler: see scheduler.h.
 *
 * One thread: epoll over the curl sockets (CURLMOPT_SOCKETFUNCTION) and an eventfd for commands; the
 * epoll_wait timeout is the earlier of curl's timer (CURLMOPT_TIMERFUNCTION) and the top of a binary heap
 * holding every target's next start. Every target is always in the heap; a start that finds the previous
 * scrape still running is skipped (Prometheus' ticker drops ticks the same way). Each scrape takes an
 * easy handle and a receive buffer from the loop's small pools (scrape_pool.c) and gives them back at the
 * end: idle targets cost no curl memory and no buffer, and a scrape allocates nothing in the common case;
 * connections live in the multi handle's shared cache and are reused across scrapes.
 *
 * Times: the loop runs on CLOCK_MONOTONIC; phases are computed against the wall clock when a target is
 * (re)phased, and reported times are converted to Unix ms with the wall-minus-monotonic difference taken
 * when the loop was created. */
#include "scrape/scheduler.h"
#include "scrape/scheduler_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http/client.h"
#include "http/h1client.h"
#include "scrape/scheduler_fault.h"
#include "scrape/scrape_pool.h"
#include "util/keymap.h"
#include "util/minheap.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

#define DEFAULT_BODY_LIMIT (10 * 1024 * 1024)
#define MAX_HOST_CONNECTIONS 64 /* per host:port; many targets behind one port (e.g. a gateway) */
/* Starts that fall due within START_SLACK_MS of the first due one share its wake-up: the loop sleeps
 * until the earliest due start plus this slack and then starts everything due by then (run_due), instead
 * of waking once per start (at 10,000 targets @15 s a start falls due every 1.5 ms; an epoll wake-up
 * costs more CPU than the rest of an unchanged scrape's user time). A start is never early and at most
 * this much (plus the loop's own lag) late, which lookout_scrape_delay_seconds shows; the phase grid
 * does not move (the next start is computed from the scheduled time, not the actual one). A wake-up for
 * I/O meanwhile starts whatever is due at that moment. 20 ms rather than 5 (session 6): each shared
 * wake-up is followed by about one more for the answers, so wake-ups per scrape fall with the batch size;
 * at 2,000 targets @3 s (the fleet benchmark's start rate) 0.48 wake-ups per scrape at 5 ms, 0.24 at
 * 20 ms, 0.17 at 50 ms, and a wake-up costs more than the whole user part of an unchanged scrape. 20 ms is
 * 0.13 % of a 15 s interval, well inside issue 14's 50 ms bound for the p99 start delay. */
#define START_SLACK_MS 20

static int64_t clock_ms(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
int64_t scrape_mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- phase ---------------------------------------------------------------------------------- */

int64_t scrape_phase_offset(uint64_t hash, uint64_t seed, int64_t interval_ms)
{
    if (interval_ms <= 0)
        return 0;
    return (int64_t)((hash ^ seed) % (uint64_t)interval_ms);
}

/* Milliseconds from wall time now_wall until the next t with t mod interval == offset; in (0, interval],
 * exactly Prometheus' Target.offset. */
int64_t scrape_phase_wait(int64_t now_wall, int64_t interval, int64_t offset)
{
    int64_t base = interval - now_wall % interval;
    int64_t next = base + offset;
    if (next > interval)
        next -= interval;
    return next;
}

/* Go's strconv.Quote for the characters label values can hold. */
static void seed_quote(uint64_t *h, const char *s)
{
    *h = fnv1a64(*h, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        const char *e = NULL;
        switch (*p) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\n': e = "\\n"; break;
        case '\t': e = "\\t"; break;
        case '\r': e = "\\r"; break;
        case '\a': e = "\\a"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        case '\v': e = "\\v"; break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                snprintf(esc, sizeof esc, "\\x%02x", *p);
                e = esc;
            }
        }
        if (e)
            *h = fnv1a64(*h, e, strlen(e));
        else
            *h = fnv1a64(*h, p, 1);
    }
    *h = fnv1a64(*h, "\"", 1);
}

/* Prometheus (scrape/manager.go setOffsetSeed): FNV-1a 64 of hostname + labels.String(), where String
 * is {a="b", c="d"}. Prometheus uses the FQDN; lookout uses gethostname() to avoid a DNS lookup. */
uint64_t scrape_seed(const labelset *external_labels)
{
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0)
        host[0] = '\0';
    uint64_t h = fnv1a64(FNV64_OFFSET, host, strlen(host));
    h = fnv1a64(h, "{", 1);
    for (size_t i = 0; external_labels && i < external_labels->n; i++) {
        if (i)
            h = fnv1a64(h, ", ", 2);
        h = fnv1a64(h, external_labels->v[i].name, strlen(external_labels->v[i].name));
        h = fnv1a64(h, "=", 1);
        seed_quote(&h, external_labels->v[i].value);
    }
    return fnv1a64(h, "}", 1);
}

/* ---- heap of next starts (util/minheap: keys beside the pointers, see there) ----------------- */

static void heap_push(scrape_loop *l, target *t)
{
    minheap_push(&l->heap, t->next_ms, t, &t->heap_idx);
}

static void heap_remove(scrape_loop *l, target *t)
{
    minheap_remove(&l->heap, t->heap_idx);
}

/* Re-keys t after its next_ms changed. */
static void heap_fix(scrape_loop *l, target *t)
{
    minheap_rekey(&l->heap, t->heap_idx, t->next_ms);
}

/* ---- target table --------------------------------------------------------------------------- */

/* The table key of (job, hash): the hash's 8 bytes, then the job name (no NUL). dst holds key_len(job). */
static size_t key_len(const char *job)
{
    return sizeof(uint64_t) + strlen(job);
}

static void key_fill(char *dst, const char *job, uint64_t hash)
{
    memcpy(dst, &hash, sizeof hash);
    memcpy(dst + sizeof hash, job, strlen(job));
}

static target *target_find(scrape_loop *l, const char *job, uint64_t hash)
{
    char buf[256];
    size_t len = key_len(job);
    char *k = len <= sizeof buf ? buf : xmalloc(len);
    key_fill(k, job, hash);
    target *t = keymap_get(&l->targets, k, len);
    if (k != buf)
        free(k);
    return t;
}

static void table_insert(scrape_loop *l, target *t)
{
    t->klen = key_len(t->job);
    t->key = xmalloc(t->klen);
    key_fill(t->key, t->job, t->hash);
    keymap_put(&l->targets, t->key, t->klen, t);
    /* Keep one idle connection per target in the cache (curl's default, 4 x running transfers, would
     * close most of them between scrapes). */
    curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, (long)(l->targets.n + 16));
}

static void table_unlink(scrape_loop *l, target *t)
{
    keymap_del(&l->targets, t->key, t->klen);
}

/* Ends an in-flight transfer without reporting it. */
static void transfer_drop(scrape_loop *l, target *t)
{
    if (t->fast_busy) {
        h1_client_abort(t->fast);
        scrape_fast_end(l, t);
    }
    if (t->easy) {
        curl_multi_remove_handle(l->multi, t->easy);
        scrape_pool_put_easy(&l->pool, t->easy);
        t->easy = NULL;
    }
    http_request_free(t->req);
    t->req = NULL;
    scrape_pool_put_buf(&l->pool, t->body, t->body_cap);
    t->body = NULL;
    t->body_off = t->body_len = t->body_cap = 0;
}

static void target_free(scrape_loop *l, target *t)
{
    transfer_drop(l, t);
    h1_client_free(t->fast);
    t->fast = NULL;
    scrape_fast_sync(l, t);
    if (t->has_http)
        http_client_config_release(&t->http);
    free(t->job);
    free(t->key);
    free(t->url);
    free(t->forced_error);
    free(t->ct);
    free(t);
}

static void target_rephase(scrape_loop *l, target *t, int64_t now_mono)
{
    int64_t iv = t->interval_ms > 0 ? t->interval_ms : 60000;
    int64_t off = scrape_phase_offset(t->hash, l->seed, iv);
    t->next_ms = now_mono + scrape_phase_wait(now_mono + l->wall_minus_mono, iv, off);
}

/* ---- commands ------------------------------------------------------------------------------- */

static void enqueue(scrape_loop *l, cmd *c)
{
    pthread_mutex_lock(&l->mu);
    if (l->q_tail)
        l->q_tail->next = c;
    else
        l->q_head = c;
    l->q_tail = c;
    pthread_mutex_unlock(&l->mu);
    uint64_t one = 1;
    ssize_t w = write(l->evfd, &one, sizeof one);
    (void)w; /* EAGAIN means the counter is already non-zero: the loop will wake anyway */
}

static void cmd_free(cmd *c)
{
    free(c->job);
    free(c->url);
    free(c->forced_error);
    if (c->has_http)
        http_client_config_release(&c->http);
    free(c);
}

void scrape_loop_upsert(scrape_loop *l, const scrape_target_spec *spec)
{
    cmd *c = xcalloc(1, sizeof *c);
    c->kind = CMD_UPSERT;
    c->job = xstrdup_or_empty(spec->job);
    c->url = xstrdup_or_empty(spec->url);
    c->hash = spec->hash;
    c->interval_ms = spec->interval_ms;
    c->timeout_ms = spec->timeout_ms;
    c->body_limit = spec->body_size_limit > 0 ? spec->body_size_limit : DEFAULT_BODY_LIMIT;
    c->forced_error = spec->forced_error && *spec->forced_error ? xstrdup(spec->forced_error) : NULL;
    if (spec->http) {
        http_client_config_copy(&c->http, spec->http);
        c->has_http = true;
    }
    enqueue(l, c);
}

void scrape_loop_remove(scrape_loop *l, const char *job, uint64_t hash)
{
    cmd *c = xcalloc(1, sizeof *c);
    c->kind = CMD_REMOVE;
    c->job = xstrdup_or_empty(job);
    c->hash = hash;
    enqueue(l, c);
}

static void apply_upsert(scrape_loop *l, cmd *c, int64_t now)
{
    target *t = target_find(l, c->job, c->hash);
    if (!t) {
        t = xcalloc(1, sizeof *t);
        t->fast_fd = -1;
        t->job = c->job;
        c->job = NULL;
        t->hash = c->hash;
        t->url = c->url;
        c->url = NULL;
        t->interval_ms = c->interval_ms;
        t->timeout_ms = c->timeout_ms;
        t->body_limit = c->body_limit;
        t->forced_error = c->forced_error;
        c->forced_error = NULL;
        t->http = c->http;
        t->has_http = c->has_http;
        c->has_http = false;
        table_insert(l, t);
        target_rephase(l, t, now);
        heap_push(l, t);
        return;
    }
    /* Existing target: keep phase and any in-flight scrape; new settings apply from the next scrape. */
    if (strcmp(t->url, c->url) != 0 || t->has_http != c->has_http ||
        (t->has_http && !http_client_config_equal(&t->http, &c->http)))
        t->fast_stale = true; /* a new fast client (or none) at the next start */
    free(t->url);
    t->url = c->url;
    c->url = NULL;
    t->timeout_ms = c->timeout_ms;
    t->body_limit = c->body_limit;
    free(t->forced_error);
    t->forced_error = c->forced_error;
    c->forced_error = NULL;
    if (t->has_http)
        http_client_config_release(&t->http);
    t->http = c->http;
    t->has_http = c->has_http;
    c->has_http = false;
    if (c->interval_ms != t->interval_ms) {
        t->interval_ms = c->interval_ms;
        target_rephase(l, t, now);
        heap_fix(l, t);
    }
}

static void apply_remove(scrape_loop *l, cmd *c)
{
    target *t = target_find(l, c->job, c->hash);
    if (!t)
        return;
    table_unlink(l, t);
    heap_remove(l, t);
    target_free(l, t); /* aborts an in-flight scrape without a result callback */
}

static void drain_commands(scrape_loop *l)
{
    uint64_t v;
    ssize_t r = read(l->evfd, &v, sizeof v);
    (void)r;
    pthread_mutex_lock(&l->mu);
    cmd *c = l->q_head;
    l->q_head = l->q_tail = NULL;
    pthread_mutex_unlock(&l->mu);
    int64_t now = scrape_mono_ms();
    while (c) {
        cmd *n = c->next;
        switch (c->kind) {
        case CMD_UPSERT: apply_upsert(l, c, now); break;
        case CMD_REMOVE: apply_remove(l, c); break;
        case CMD_STOP: l->stopping = true; break;
        }
        cmd_free(c);
        c = n;
    }
}

/* ---- curl callbacks ------------------------------------------------------------------------- */

/* curl tells which sockets to watch. A socket it already told about carries a non-NULL socketp (set with
 * curl_multi_assign when it was added), so each call is one epoll_ctl that succeeds: a MOD guessed for an
 * unknown socket failed with ENOENT on every new keep-alive transfer (a third of the loop's epoll_ctl
 * calls at 2,000 targets). */
static int socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    scrape_loop *l = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, s, NULL); /* may already be closed: ignore errors */
        return 0;
    }
    struct epoll_event ev = {0};
    ev.data.fd = s;
    if (what & CURL_POLL_IN)
        ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev.events |= EPOLLOUT;
    if (socketp) {
        if (scrape_sys_epoll_mod(l->epfd, s, &ev) != 0 && errno == ENOENT) /* closed and reused meanwhile */
            epoll_ctl(l->epfd, EPOLL_CTL_ADD, s, &ev);
        return 0;
    }
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, s, &ev) != 0 && errno == EEXIST)
        epoll_ctl(l->epfd, EPOLL_CTL_MOD, s, &ev);
    curl_multi_assign(l->multi, s, l); /* any non-NULL pointer: "registered" */
    return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    scrape_loop *l = userp;
    l->curl_deadline = timeout_ms < 0 ? -1 : scrape_mono_ms() + timeout_ms;
    return 0;
}

size_t scrape_write_cb(char *p, size_t sz, size_t n, void *userp)
{
    target *t = userp;
    size_t len = sz * n;
    if ((int64_t)(t->body_len + len) > t->body_limit) {
        t->over_limit = true;
        return CURL_WRITEFUNC_ERROR; /* aborts the transfer now, not after the whole body */
    }
    if (t->body_len + len + 1 > t->body_cap) {
        size_t nc = t->body_cap ? t->body_cap : 16384;
        while (nc < t->body_len + len + 1)
            nc *= 2;
        char *nb = realloc(t->body, nc);
        if (!nb)
            abort();
        t->body = nb;
        t->body_cap = nc;
    }
    memcpy(t->body + t->body_len, p, len);
    t->body_len += len;
    return len;
}

/* Keeps the reason phrase of the last status line ("HTTP/1.1 500 Internal Server Error"): Prometheus
 * reports Go's resp.Status, which is the server's own status text. */
static size_t header_cb(char *p, size_t sz, size_t n, void *userp)
{
    target *t = userp;
    size_t len = sz * n;
    if (len > 5 && memcmp(p, "HTTP/", 5) == 0) {
        const char *sp = memchr(p, ' ', len);
        const char *end = p + len;
        t->ct->reason[0] = '\0';
        if (sp) {
            sp++;
            const char *sp2 = memchr(sp, ' ', (size_t)(end - sp));
            if (sp2) {
                sp2++;
                size_t rl = (size_t)(end - sp2);
                while (rl && (sp2[rl - 1] == '\r' || sp2[rl - 1] == '\n'))
                    rl--;
                if (rl >= sizeof t->ct->reason)
                    rl = sizeof t->ct->reason - 1;
                memcpy(t->ct->reason, sp2, rl);
                t->ct->reason[rl] = '\0';
            }
        }
    }
    return len;
}

/* ---- scrapes -------------------------------------------------------------------------------- */

/* Prometheus sends strconv.FormatFloat(seconds, 'f', -1, 64): "10", "0.5". */
static void format_seconds(char *buf, size_t n, int64_t ms)
{
    snprintf(buf, n, "%lld.%03lld", (long long)(ms / 1000), (long long)(ms % 1000));
    char *e = buf + strlen(buf) - 1;
    while (*e == '0')
        *e-- = '\0';
    if (*e == '.')
        *e = '\0';
}

/* Counts a finished scrape in lookout_scrapes_total, _failures_total, _duration_seconds and
 * _delay_seconds (and a fast-path "done" when fast_done_pending), through series handles: one lock and no
 * series lookup per scrape. Each target takes its job's handles at its first scrape, so a fleet whose jobs
 * interleave looks nothing up either. */
static void count_scrape(scrape_loop *l, target *t, bool failed, double dur, double delay)
{
    const char *lv[] = {t->job};
    if (!t->mc_scrapes) {
        t->mc_scrapes = metric_series_get(l->m_scrapes, lv);
        t->mc_duration = metric_series_get(l->m_duration, lv);
    }
    if (failed)
        metric_add(l->m_failures, lv, 1);
    if (!l->mc_delay)
        l->mc_delay = metric_series_get(l->m_delay, NULL);
    metric_series *fast = NULL;
    if (l->fast_done_pending) {
        l->fast_done_pending = false;
        if (!l->mc_fast_done) {
            const char *ov[] = {"done"};
            l->mc_fast_done = metric_series_get(l->m_fast, ov);
        }
        fast = l->mc_fast_done;
    }
    metric_series *s[] = {t->mc_scrapes, t->mc_duration, l->mc_delay, fast};
    double v[] = {1, dur, delay, 1};
    metric_series_update(s, v, 4);
}

/* Reports the scrape's result (metrics, then the callback) and gives the receive buffer back. The
 * transfer (curl or fast) must be released already; e: the error text or NULL. */
void scrape_deliver(scrape_loop *l, target *t, long status, const char *e, double dur)
{
    if (!t->body) /* a failure before any buffer was needed */
        t->body = scrape_pool_get_buf(&l->pool, &t->body_cap);
    /* the buffer always has room for it (scrape_pool_get_buf, scrape_write_cb, the fast path's sink and space) */
    t->body[t->body_off + t->body_len] = '\0';
    scrape_result r = {
        .job = t->job, .hash = t->hash, .url = t->url,
        .scheduled_ms = t->sched_ms + l->wall_minus_mono, .start_ms = t->start_ms + l->wall_minus_mono,
        .duration_s = dur, .http_status = status,
        .body = e ? NULL : t->body + t->body_off, .body_len = e ? 0 : t->body_len, .error = e,
    };
    count_scrape(l, t, e != NULL, dur, (double)(t->start_ms - t->sched_ms) / 1000.0);
    char *body = t->body;
    size_t cap = t->body_cap;
    t->body = NULL;
    t->body_off = t->body_len = t->body_cap = 0;
    l->fn(l->ctx, &r); /* may remove or update the target */
    scrape_pool_put_buf(&l->pool, body, cap);
}

double scrape_elapsed_s(const target *t)
{
    return (double)(mono_us() - t->start_us) / 1e6;
}

/* The request headers every scrape sends (after curl's own). The timeout header is formatted once per
 * timeout value, not per scrape. */
void scrape_headers(target *t, const char *hdrs[4])
{
    if (!t->tmo_hdr[0] || t->tmo_hdr_ms != t->timeout_ms) {
        char tmo[48];
        format_seconds(tmo, sizeof tmo, t->timeout_ms);
        snprintf(t->tmo_hdr, sizeof t->tmo_hdr, "X-Prometheus-Scrape-Timeout-Seconds: %s", tmo);
        t->tmo_hdr_ms = t->timeout_ms;
    }
    hdrs[0] = "Accept: application/json";
    hdrs[1] = "User-Agent: lookout/" LOOKOUT_VERSION;
    hdrs[2] = t->tmo_hdr;
    hdrs[3] = NULL;
}

/* A scrape that failed before its request (forced error, unreadable secret file). */
void scrape_setup_failed(scrape_loop *l, target *t, const char *err)
{
    scrape_result r = {.job = t->job, .hash = t->hash, .url = t->url,
                       .scheduled_ms = t->sched_ms + l->wall_minus_mono,
                       .start_ms = t->start_ms + l->wall_minus_mono, .error = err};
    const char *lv[] = {t->job};
    metric_add(l->m_scrapes, lv, 1);
    metric_add(l->m_failures, lv, 1);
    l->fn(l->ctx, &r);
}

/* Starts the scrape through curl with timeout_ms for the whole transfer. */
void scrape_start_curl(scrape_loop *l, target *t, int64_t timeout_ms)
{
    char err[512];
    const char *hdrs[4];
    scrape_headers(t, hdrs);
    if (!t->ct)
        t->ct = xmalloc(sizeof *t->ct);
    t->ct->reason[0] = '\0';
    t->ct->errbuf[0] = '\0';
    t->easy = scrape_pool_get_easy(&l->pool);
    t->req = http_client_prepare(t->easy, t->has_http ? &t->http : NULL, t->url, hdrs, err, sizeof err);
    if (!t->req) {
        /* Unreadable secret file and the like: a failed scrape, reported like any other. */
        scrape_pool_put_easy(&l->pool, t->easy);
        t->easy = NULL;
        scrape_pool_put_buf(&l->pool, t->body, t->body_cap);
        t->body = NULL;
        t->body_cap = 0;
        scrape_setup_failed(l, t, err);
        return;
    }
    curl_easy_setopt(t->easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, scrape_write_cb);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(t->easy, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->ct->errbuf);
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    if (t->body_limit < (int64_t)1 << 62)
        curl_easy_setopt(t->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->body_limit);
    curl_multi_add_handle(l->multi, t->easy);
}

int64_t scrape_timeout(const target *t)
{
    return t->timeout_ms > 0 ? t->timeout_ms : 10000;
}

static void start_scrape(scrape_loop *l, target *t, int64_t sched, int64_t now)
{
    t->sched_ms = sched;
    t->start_ms = now;
    t->start_us = mono_us();
    t->over_limit = false;
    t->fell_back = false;
    t->body_off = t->body_len = 0;
    t->req = NULL;
    if (t->forced_error) { /* target_limit: fail like Prometheus' forced error, without a request */
        scrape_setup_failed(l, t, t->forced_error);
        return;
    }
    if (scrape_fast_start(l, t))
        return;
    if (!t->body)
        t->body = scrape_pool_get_buf(&l->pool, &t->body_cap);
    scrape_start_curl(l, t, scrape_timeout(t));
}

/* Starts every target whose time has come and schedules its next start. */
static void run_due(scrape_loop *l)
{
    int64_t now = scrape_mono_ms();
    while (l->heap.n && minheap_top(&l->heap)->key <= now && !l->stopping) {
        target *t = minheap_top(&l->heap)->item;
        int64_t sched = t->next_ms;
        int64_t iv = t->interval_ms > 0 ? t->interval_ms : 60000;
        t->next_ms += iv;
        if (t->next_ms <= now) /* missed ticks (loop stalled, clock jump): skip them, keep the phase */
            t->next_ms += ((now - t->next_ms) / iv + 1) * iv;
        heap_fix(l, t);
        if (t->easy || t->fast_busy) /* previous scrape still running: skip this tick */
            continue;
        start_scrape(l, t, sched, now);
    }
}

static void finish(scrape_loop *l, target *t, CURLcode rc)
{
    double dur = 0;
    curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME, &dur);
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    char err[1024];
    const char *e = NULL;
    if (t->over_limit || rc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(err, sizeof err, "body size limit exceeded (%lld bytes)", (long long)t->body_limit);
        e = err;
    } else if (rc != CURLE_OK) {
        http_client_describe_error(t->easy, rc, t->url, t->ct->errbuf, err, sizeof err);
        e = err;
    } else if (status < 200 || status > 299) {
        http_client_status_error(status, t->ct->reason, err, sizeof err);
        e = err;
    }
    if (dur <= 0 || t->fell_back) /* after a fast-path attempt: the whole scrape's time */
        dur = scrape_elapsed_s(t);
    /* Free the transfer before the callback so the callback may remove or update the target. */
    curl_multi_remove_handle(l->multi, t->easy);
    scrape_pool_put_easy(&l->pool, t->easy);
    t->easy = NULL;
    http_request_free(t->req);
    t->req = NULL;
    scrape_deliver(l, t, status, e, dur);
}

static void read_done(scrape_loop *l)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(l->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        target *t = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        if (t)
            finish(l, t, m->data.result);
    }
}

/* ---- loop ----------------------------------------------------------------------------------- */

#define LOOP_EVENTS 256 /* events per epoll_wait */
#define LOOP_DRAIN 16   /* batches read back to back before deadlines and starts when sockets keep coming */

static void handle_events(scrape_loop *l, const struct epoll_event *evs, int n, int *running)
{
    for (int i = 0; i < n; i++) {
        int fd = evs[i].data.fd;
        if (fd == l->evfd) {
            drain_commands(l);
            continue;
        }
        if ((size_t)fd < l->fast_n && l->fast_by_fd[fd]) {
            scrape_fast_event(l, l->fast_by_fd[fd], evs[i].events);
            continue;
        }
        int fl = 0;
        if (evs[i].events & EPOLLIN)
            fl |= CURL_CSELECT_IN;
        if (evs[i].events & EPOLLOUT)
            fl |= CURL_CSELECT_OUT;
        if (evs[i].events & (EPOLLERR | EPOLLHUP))
            fl |= CURL_CSELECT_ERR;
        curl_multi_socket_action(l->multi, evs[i].data.fd, fl, running);
    }
}

static void *loop_main(void *arg)
{
    scrape_loop *l = arg;
    struct epoll_event evs[LOOP_EVENTS];
    int running = 0;
    while (!l->stopping) {
        int64_t now = scrape_mono_ms();
        int64_t wake = -1;
        if (l->heap.n)
            wake = minheap_top(&l->heap)->key + START_SLACK_MS;
        if (l->curl_deadline >= 0 && (wake < 0 || l->curl_deadline < wake))
            wake = l->curl_deadline;
        if (l->fast_deadlines.n && (wake < 0 || minheap_top(&l->fast_deadlines)->key < wake))
            wake = minheap_top(&l->fast_deadlines)->key;
        int tmo = -1;
        if (wake >= 0)
            tmo = wake <= now ? 0 : (int)(wake - now > 60000 ? 60000 : wake - now);
        int n = epoll_wait(l->epfd, evs, LOOP_EVENTS, tmo);
        if (n < 0 && errno != EINTR) {
            log_error("scrape", "epoll_wait failed", "err", strerror(errno));
            break;
        }
        /* A full batch means more sockets are ready: read them (up to LOOP_DRAIN batches) before timing
         * anything out or starting new scrapes, so a loop that is behind finishes what is in flight first. */
        for (int round = 0; n > 0;) {
            handle_events(l, evs, n, &running);
            if (n < LOOP_EVENTS || ++round == LOOP_DRAIN || l->stopping)
                break;
            n = epoll_wait(l->epfd, evs, LOOP_EVENTS, 0);
        }
        if (l->stopping)
            break;
        if (l->curl_deadline >= 0 && l->curl_deadline <= scrape_mono_ms()) {
            l->curl_deadline = -1;
            curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        read_done(l);
        scrape_fast_expire(l, scrape_mono_ms());
        run_due(l);
        read_done(l); /* setup failures complete synchronously */
    }
    return NULL;
}

static void global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

scrape_loop *scrape_loop_new(uint64_t seed, scrape_result_fn fn, void *ctx)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_init);
    scrape_loop *l = xcalloc(1, sizeof *l);
    l->seed = seed;
    l->fn = fn;
    l->ctx = ctx;
    l->wall_minus_mono = clock_ms(CLOCK_REALTIME) - scrape_mono_ms();
    l->curl_deadline = -1;
    l->fast_enabled = true;
    struct rlimit rl;
    l->fast_idle.max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? rl.rlim_cur / 2 : 4096;
    l->epfd = scrape_sys_epoll_create1(EPOLL_CLOEXEC);
    l->evfd = scrape_sys_eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epfd >= 0 && l->evfd >= 0 && !(l->multi = scrape_sys_multi_init()))
        errno = ENOMEM; /* curl_multi_init fails only when it cannot allocate */
    if (!l->multi) {
        int e = errno;
        if (l->epfd >= 0)
            close(l->epfd);
        if (l->evfd >= 0)
            close(l->evfd);
        free(l);
        errno = e;
        return NULL;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l->evfd};
    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ev);
    pthread_mutex_init(&l->mu, NULL);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)MAX_HOST_CONNECTIONS);
    curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, 16L);
    const char *job[] = {"job"};
    static const double dur_buckets[] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60};
    static const double delay_buckets[] = {.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5};
    l->m_duration = metric_histogram_get("lookout_scrape_duration_seconds", "Duration of scrapes by job.", 1,
                                         job, dur_buckets, sizeof dur_buckets / sizeof *dur_buckets);
    l->m_scrapes = metric_family_get("lookout_scrapes_total", METRIC_COUNTER, "Scrapes attempted, by job.", 1,
                                     job);
    l->m_failures = metric_family_get("lookout_scrape_failures_total", METRIC_COUNTER,
                                      "Scrapes that failed, by job.", 1, job);
    const char *outcome[] = {"outcome"};
    l->m_fast = metric_family_get("lookout_scrape_fast_path_requests_total", METRIC_COUNTER,
                                  "Scrapes that took the built-in HTTP/1.1 client, by outcome: done, or curl "
                                  "(handed to curl, which then decided the result).",
                                  1, outcome);
    l->m_delay = metric_histogram_get("lookout_scrape_delay_seconds",
                                      "Delay between a scrape's scheduled and actual start.", 0, NULL,
                                      delay_buckets, sizeof delay_buckets / sizeof *delay_buckets);
    return l;
}

void scrape_loop_set_fast_http(scrape_loop *l, bool on)
{
    l->fast_enabled = on;
}

int scrape_loop_start(scrape_loop *l, char *err, size_t errlen)
{
    if (l->started) {
        snprintf(err, errlen, "scrape loop already started");
        return -1;
    }
    int rc = scrape_sys_thread_create(&l->thread, loop_main, l);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the scrape loop thread: %s", strerror(rc));
        return -1;
    }
    l->started = true;
    return 0;
}

void scrape_loop_free(scrape_loop *l)
{
    if (!l)
        return;
    if (l->started) {
        cmd *c = xcalloc(1, sizeof *c);
        c->kind = CMD_STOP;
        enqueue(l, c);
        pthread_join(l->thread, NULL);
    }
    /* Pending commands (never applied) and every target with its transfer. */
    for (cmd *c = l->q_head, *n; c; c = n) {
        n = c->next;
        cmd_free(c);
    }
    for (size_t i = 0; i < l->targets.cap; i++)
        if (l->targets.slots[i].hash)
            target_free(l, l->targets.slots[i].value); /* frees the key too: the map goes next */
    keymap_free(&l->targets);
    minheap_free(&l->heap);
    minheap_free(&l->fast_deadlines);
    free(l->fast_by_fd);
    scrape_pool_free(&l->pool);
    curl_multi_cleanup(l->multi);
    pthread_mutex_destroy(&l->mu);
    close(l->epfd);
    close(l->evfd);
    free(l);
}
