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
void fast_sync(scrape_loop *l, target *t)
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
void fast_end(scrape_loop *l, target *t)
{
    if (t->fast_busy) {
        minheap_remove(&l->fast_deadlines, t->fast_deadline_idx);
        t->fast_busy = false;
    }
    fast_sync(l, t);
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

static int fast_sink(void *ctx, const char *p, size_t n)
{
    return write_cb((char *)p, 1, n, ctx) == n ? 0 : -1;
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
    deliver(l, t, o->status, e, elapsed_s(t));
}

/* After an h1_client call returned st. */
static void fast_step(scrape_loop *l, target *t, h1c_state st, const h1c_outcome *o)
{
    if (st == H1C_RUNNING) {
        fast_sync(l, t);
        return;
    }
    fast_end(l, t);
    const char *lv[] = {st == H1C_DONE ? "done" : "curl"};
    metric_add(l->m_fast, lv, 1);
    if (st == H1C_DONE) {
        fast_done(l, t, o);
        return;
    }
    /* H1C_FALLBACK: curl does this scrape again from the start, in the time left */
    t->fell_back = true;
    t->body_len = 0;
    t->over_limit = false;
    int64_t left = t->start_ms + scrape_timeout(t) - mono_ms();
    if (left <= 0) {
        h1c_outcome to = {.error = H1E_TIMEOUT};
        fast_done(l, t, &to);
        return;
    }
    start_curl(l, t, left);
}

/* Tries the fast path; false when the scrape is curl's. */
bool fast_start(scrape_loop *l, target *t)
{
    if (t->fast_stale) {
        h1_client_free(t->fast);
        t->fast = NULL;
        t->fast_stale = false;
        fast_sync(l, t);
    }
    if (t->fast && !h1_client_usable(t->fast))
        return false;
    if (!t->fast) {
        if (!fast_eligible(l, t))
            return false;
        t->fast = h1_client_new(t->url, l->epfd, &l->fast_idle);
        if (!t->fast)
            return false;
    }
    char err[512];
    const char *hdrs[5];
    scrape_headers(t, hdrs);
    char *basic = NULL, *other = NULL;
    if (http_client_auth_headers(t->has_http ? &t->http : NULL, NULL, &basic, &other, err, sizeof err) != 0) {
        setup_failed(l, t, err);
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
void fast_event(scrape_loop *l, target *t, uint32_t events)
{
    if (!t->fast_busy) {
        h1_client_idle_event(t->fast);
        fast_sync(l, t);
        return;
    }
    h1c_outcome o;
    h1c_state st = h1_client_event(t->fast, events, &o);
    fast_step(l, t, st, &o);
}

/* Fails every fast request whose time is up. */
void fast_expire(scrape_loop *l, int64_t now)
{
    while (l->fast_deadlines.n && minheap_top(&l->fast_deadlines)->key <= now) {
        target *t = minheap_top(&l->fast_deadlines)->item;
        h1c_outcome o;
        h1_client_timeout(t->fast, &o);
        fast_step(l, t, H1C_DONE, &o);
    }
}

