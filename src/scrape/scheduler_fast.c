/* scheduler_fast: the scrape loop's glue to its built-in HTTP/1.1 client (http/h1client.c): which targets
 * take it, starting a request, its epoll events and deadlines, and handing a scrape to curl when the
 * client cannot finish it. Loop thread only; see scheduler.c for the loop and scheduler.h for the API. */
#include "scrape/scheduler_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/client.h"
#include "http/h1client.h"
#include "scrape/scrape_pool.h"
#include "util/metrics.h"
#include "util/minheap.h"
#include "util/xalloc.h"

/* Keeps fast_by_fd in step with the fast client's socket (call after every h1_client call). */
void scrape_fast_sync(scrape_loop *l, target *t)
{
    int fd = t->fast ? h1_client_fd(t->fast) : -1;
    if (fd == t->fast_fd)
        return;
    if (t->fast_fd >= 0 && (size_t)t->fast_fd < l->fast_n && l->fast_by_fd[t->fast_fd] == t)
        l->fast_by_fd[t->fast_fd] = NULL;
    if (fd >= 0) {
        if ((size_t)fd >= l->fast_n) {
            size_t nn = l->fast_n ? l->fast_n : 256;
            while (nn <= (size_t)fd)
                nn *= 2;
            l->fast_by_fd = xrealloc(l->fast_by_fd, nn * sizeof *l->fast_by_fd);
            memset(l->fast_by_fd + l->fast_n, 0, (nn - l->fast_n) * sizeof *l->fast_by_fd);
            l->fast_n = nn;
        }
        l->fast_by_fd[fd] = t;
    }
    t->fast_fd = fd;
}

/* The fast request ended (any way): no longer busy, no deadline. */
void scrape_fast_end(scrape_loop *l, target *t)
{
    if (t->fast_busy) {
        minheap_remove(&l->fast_deadlines, t->fast_deadline_idx);
        t->fast_busy = false;
    }
    scrape_fast_sync(l, t);
}

/* ---- fast path ------------------------------------------------------------------------------ */

/* What the fast path can do exactly like curl: plain http to a numeric address (h1_url_eligible), no
 * proxy (curl is told to ignore the environment's, so only proxy_url counts), basic auth only with a user
 * name (curl's handling of an empty one is its own). */
static bool fast_eligible(const scrape_loop *l, const target *t)
{
    if (!l->fast_enabled || t->forced_error)
        return false;
    const http_client_config *c = t->has_http ? &t->http : NULL;
    if (c && ((c->proxy_url && *c->proxy_url) ||
              (c->has_basic_auth && !c->has_authorization &&
               (!c->basic_auth_username || !*c->basic_auth_username))))
        return false;
    return h1_url_eligible(t->url);
}

/* Room the client receives into (h1_client_set_space): the end of the target's buffer, where the body
 * goes on; the whole buffer while no body byte has come (headers are parsed as they arrive). At least
 * FAST_RECV_ROOM bytes, so that a typical payload comes in one recv, and one byte kept back for the NUL
 * that scrape_deliver() appends. The buffer grows only by what arrives: the sink refuses a body over the limit
 * and the parser headers over 16 KiB, so it stays below body_limit + headers + FAST_RECV_ROOM. */
#define FAST_RECV_ROOM 16384
static char *fast_space(void *ctx, size_t *n)
{
    target *t = ctx;
    size_t pos = t->body_len ? t->body_off + t->body_len : 0;
    if (t->body_cap - pos < FAST_RECV_ROOM + 1) {
        size_t nc = t->body_cap ? t->body_cap : FAST_RECV_ROOM;
        while (nc - pos < FAST_RECV_ROOM + 1)
            nc *= 2;
        t->body = xrealloc(t->body, nc);
        t->body_cap = nc;
    }
    *n = t->body_cap - pos - 1;
    return t->body + pos;
}

/* Body bytes: usually already in place (received into fast_space right where the body goes on), else
 * moved there (after chunk framing: an overlapping move down) or copied (inflated gzip). The first piece
 * fixes where the body starts: where it lies, or at 0 when it comes from elsewhere. */
static int fast_sink(void *ctx, const char *p, size_t n)
{
    target *t = ctx;
    if ((int64_t)(t->body_len + n) > t->body_limit) {
        t->over_limit = true;
        return -1;
    }
    uintptr_t at = (uintptr_t)p, base = (uintptr_t)t->body;
    bool inside = t->body && at >= base && at < base + t->body_cap;
    if (t->body_len == 0)
        t->body_off = inside ? (size_t)(p - t->body) : 0;
    char *dst = t->body + t->body_off + t->body_len;
    if (!inside && t->body_off + t->body_len + n + 1 > t->body_cap) {
        size_t nc = t->body_cap ? t->body_cap : 16384;
        while (nc < t->body_off + t->body_len + n + 1)
            nc *= 2;
        t->body = xrealloc(t->body, nc);
        t->body_cap = nc;
        dst = t->body + t->body_off + t->body_len;
    }
    if (dst != p)
        memmove(dst, p, n);
    t->body_len += n;
    return 0;
}

static void fast_done(scrape_loop *l, target *t, const h1c_outcome *o)
{
    char err[1024];
    const char *e = NULL;
    if (o->error == H1E_LIMIT) {
        snprintf(err, sizeof err, "body size limit exceeded (%lld bytes)", (long long)t->body_limit);
        e = err;
    } else if (o->error != H1E_NONE) {
        h1_client_describe(t->fast, o, err, sizeof err);
        e = err;
    } else if (o->status < 200 || o->status > 299) {
        http_client_status_error(o->status, o->reason, err, sizeof err);
        e = err;
    }
    scrape_deliver(l, t, o->status, e, scrape_elapsed_s(t));
}

/* After an h1_client call returned st. */
static void fast_step(scrape_loop *l, target *t, h1c_state st, const h1c_outcome *o)
{
    if (st == H1C_RUNNING) {
        scrape_fast_sync(l, t);
        return;
    }
    scrape_fast_end(l, t);
    if (st == H1C_DONE) {
        l->fast_done_pending = true; /* counted with the scrape (scrape_deliver) */
        fast_done(l, t, o);
        return;
    }
    const char *lv[] = {"curl"};
    metric_add(l->m_fast, lv, 1);
    /* H1C_FALLBACK: curl does this scrape again from the start, in the time left */
    t->fell_back = true;
    t->body_off = t->body_len = 0;
    t->over_limit = false;
    int64_t left = t->start_ms + scrape_timeout(t) - scrape_mono_ms();
    if (left <= 0) {
        h1c_outcome to = {.error = H1E_TIMEOUT};
        fast_done(l, t, &to);
        return;
    }
    scrape_start_curl(l, t, left);
}

/* Tries the fast path; false when the scrape is curl's. */
bool scrape_fast_start(scrape_loop *l, target *t)
{
    if (t->fast_stale) {
        h1_client_free(t->fast);
        t->fast = NULL;
        t->fast_stale = false;
        scrape_fast_sync(l, t);
    }
    if (t->fast && !h1_client_usable(t->fast))
        return false;
    if (!t->fast) {
        if (!fast_eligible(l, t))
            return false;
        t->fast = h1_client_new(t->url, l->epfd, &l->fast_idle);
        if (!t->fast)
            return false;
        h1_client_set_space(t->fast, fast_space);
    }
    char err[512];
    const char *hdrs[5];
    scrape_headers(t, hdrs);
    char *basic = NULL, *other = NULL;
    if (http_client_auth_headers(t->has_http ? &t->http : NULL, NULL, &basic, &other, err, sizeof err) != 0) {
        scrape_setup_failed(l, t, err);
        return true;
    }
    hdrs[3] = other;
    hdrs[4] = NULL;
    if (!t->body)
        t->body = scrape_pool_get_buf(&l->pool, &t->body_cap);
    h1c_outcome o;
    t->fast_busy = true;
    minheap_push(&l->fast_deadlines, t->start_ms + scrape_timeout(t), t, &t->fast_deadline_idx);
    h1c_state st = h1_client_start(t->fast, basic, hdrs, t->body_limit, fast_sink, t, &o);
    if (basic) {
        explicit_bzero(basic, strlen(basic));
        free(basic);
    }
    if (other) {
        explicit_bzero(other, strlen(other));
        free(other);
    }
    fast_step(l, t, st, &o);
    return true;
}

/* An epoll event on a fast client's socket. */
void scrape_fast_event(scrape_loop *l, target *t, uint32_t events)
{
    if (!t->fast_busy) {
        h1_client_idle_event(t->fast);
        scrape_fast_sync(l, t);
        return;
    }
    h1c_outcome o;
    h1c_state st = h1_client_event(t->fast, events, &o);
    fast_step(l, t, st, &o);
}

/* Fails every fast request whose time is up, unless its answer is already there: a loop that is behind
 * (more ready sockets than one pass reads) reaches deadlines before it reads the events that would have
 * met them, and timing those out closed their connections, so the next scrapes reconnected and fell
 * further behind (measured: 1,600 targets @100 ms stayed at ~50 bodies/s after an overload). */
void scrape_fast_expire(scrape_loop *l, int64_t now)
{
    while (l->fast_deadlines.n && minheap_top(&l->fast_deadlines)->key <= now) {
        target *t = minheap_top(&l->fast_deadlines)->item;
        h1c_outcome o;
        h1c_state st = h1_client_collect(t->fast, &o);
        if (st == H1C_RUNNING) {
            h1_client_timeout(t->fast, &o);
            st = H1C_DONE;
        }
        fast_step(l, t, st, &o);
    }
}

