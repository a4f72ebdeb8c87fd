/* http: http_sd_configs (Prometheus discovery/http/http.go). At start and then every refresh_interval,
 * GET url (timeout = refresh_interval, headers Accept: application/json and
 * X-Prometheus-Refresh-Interval-Seconds); a 200 answer with Content-Type application/json (optionally
 * ;charset=utf-8) carrying the file_sd JSON list replaces the groups (sources "URL:INDEX", __meta_url);
 * sources that had targets and have none now are emptied. The body is parsed as a stream (json_groups.c):
 * memory is the groups with targets, not a document tree. Anything else keeps the last groups, is logged and counted in
 * lookout_sd_http_failures_total.
 *
 * Threading: one thread per provider; it waits in curl_multi_poll on the transfer and an eventfd that
 * stop() signals, so stopping never waits for a slow server. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "http/client.h"
#include "sd/http_fetch.h"
#include "sd/sd_internal.h"
#include "sd/sd_remote.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

#define COMPONENT "sd/http"

static metric_family *m_failures;

static void metrics_create(void)
{
    m_failures = metric_family_get("lookout_sd_http_failures_total", METRIC_COUNTER,
                                   "Number of HTTP service discovery refresh failures.", 0, NULL);
}

/* Go: ^(?i:application\/json(;\s*charset=("utf-8"|utf-8))?)$ on the trimmed header. */
static bool content_type_ok(const char *ct)
{
    while (*ct == ' ' || *ct == '\t' || *ct == '\r' || *ct == '\n' || *ct == '\f' || *ct == '\v')
        ct++;
    size_t l = strlen(ct);
    while (l > 0 && (ct[l - 1] == ' ' || ct[l - 1] == '\t' || ct[l - 1] == '\r' || ct[l - 1] == '\n' ||
                     ct[l - 1] == '\f' || ct[l - 1] == '\v'))
        l--;
    if (l < 16 || strncasecmp(ct, "application/json", 16) != 0)
        return false;
    const char *p = ct + 16, *end = ct + l;
    if (p == end)
        return true;
    if (*p++ != ';')
        return false;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\f'))
        p++;
    size_t rest = (size_t)(end - p);
    if (rest < 8 || strncasecmp(p, "charset=", 8) != 0)
        return false;
    p += 8;
    rest = (size_t)(end - p);
    return (rest == 5 && !strncasecmp(p, "utf-8", 5)) || (rest == 7 && !strncasecmp(p, "\"utf-8\"", 7));
}

static int parse_response(const char *url, long status, const char *content_type, const char *body, size_t len,
                          sd_pool *pool, target_group **out, size_t *n, char *err, size_t errlen)
{
    if (status != 200) {
        const char *t = sd_http_status_text(status);
        if (t)
            snprintf(err, errlen, "server returned HTTP status %s", t);
        else
            snprintf(err, errlen, "server returned HTTP status %ld", status);
        return -1;
    }
    if (!content_type_ok(content_type ? content_type : "")) {
        snprintf(err, errlen, "unsupported content type \"%s\"", content_type ? content_type : "");
        return -1;
    }
    /* the body is a file_sd JSON document: reuse its validator, then name sources and labels after the URL */
    char perr[512];
    target_group *g = NULL;
    size_t ng = 0;
    /* __meta_filepath is dropped as when file_sd's parser set it (and this code removed it) */
    if (sd_json_groups_parse(url, "__meta_url", url, "__meta_filepath", pool, body ? body : "", len, &g, NULL, &ng,
                             perr, sizeof perr) != 0) {
        snprintf(err, errlen, "%s", perr);
        return -1;
    }
    *out = g;
    *n = ng;
    return 0;
}

int http_sd_parse_response(const char *url, long status, const char *content_type, const char *body,
                           size_t len, target_group **out, size_t *n, char *err, size_t errlen)
{
    return parse_response(url, status, content_type, body, len, NULL, out, n, err, errlen);
}

typedef struct http_impl {
    sd_provider *p;
    int stop_fd;
    pthread_t thread;
    bool running;
    CURLM *multi;
    sd_fetch f;
    size_t *last_idx; /* positions of the groups with targets sent last time (ascending) */
    size_t n_last;
    sd_pool *pool; /* the strings its groups share, across refreshes (sd_internal.h) */
} http_impl;

/* One refresh. Returns false when asked to stop. */
static bool refresh(http_impl *hi)
{
    sd_provider *p = hi->p;
    const http_sd_config *hc = &p->cfg->u.http;
    char err[1024], hdr[96];
    snprintf(hdr, sizeof hdr, "X-Prometheus-Refresh-Interval-Seconds: %g", (double)hc->refresh_interval_ms / 1000.0);
    const char *headers[] = {"Accept: application/json", hdr, NULL};
    if (sd_fetch_prepare(&hi->f, &hc->http, hc->url, headers, (long)hc->refresh_interval_ms, SD_FILE_MAX_BYTES, err,
                         sizeof err) != 0)
        goto failed;
    curl_multi_add_handle(hi->multi, hi->f.h);
    CURLcode code = CURLE_OK;
    bool done = false;
    while (!done) {
        int running = 0;
        curl_multi_perform(hi->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(hi->multi, &left)))
            if (m->msg == CURLMSG_DONE) {
                code = m->data.result;
                done = true;
            }
        if (done)
            break;
        struct curl_waitfd wfd = {.fd = hi->stop_fd, .events = CURL_WAIT_POLLIN};
        int numfds = 0;
        curl_multi_poll(hi->multi, &wfd, 1, 1000, &numfds);
        if (wfd.revents) {
            curl_multi_remove_handle(hi->multi, hi->f.h);
            return false;
        }
    }
    curl_multi_remove_handle(hi->multi, hi->f.h);
    long status = sd_fetch_result(&hi->f, code, err, sizeof err);
    if (status < 0)
        goto failed;
    target_group *g = NULL;
    size_t n = 0;
    if (!hi->pool)
        hi->pool = sd_pool_new();
    int prc = parse_response(hc->url, status, hi->f.content_type, hi->f.body, hi->f.len, hi->pool, &g, &n, err,
                             sizeof err);
    sd_fetch_drop_body(&hi->f);
    if (prc != 0)
        goto failed;
    /* empty groups for sources that had targets and have none now */
    size_t *gone = hi->n_last ? xmalloc(hi->n_last * sizeof(size_t)) : NULL;
    size_t n_gone = sd_groups_gone(hi->last_idx, hi->n_last, g, n, gone);
    size_t *idx = n ? xmalloc(n * sizeof(size_t)) : NULL;
    for (size_t i = 0; i < n; i++)
        idx[i] = sd_group_index(&g[i]);
    if (n_gone) {
        g = xrealloc(g, (n + n_gone) * sizeof *g);
        size_t sl = strlen(hc->url) + 32;
        char *src = xmalloc(sl);
        for (size_t i = 0; i < n_gone; i++) {
            snprintf(src, sl, "%s:%zu", hc->url, gone[i]);
            target_group_init(&g[n + i], src);
        }
        free(src);
    }
    free(gone);
    free(hi->last_idx);
    hi->last_idx = idx;
    hi->n_last = n;
    if (n + n_gone)
        sd_provider_update(p, g, n + n_gone);
    sd_groups_free(g, n + n_gone);
    sd_provider_mark_success(p);
    return true;
failed:
    metric_add(m_failures, NULL, 1);
    char safe_url[2048]; /* no password from the URL's userinfo in the logs */
    http_client_redact_url(hc->url, safe_url, sizeof safe_url);
    log_error(COMPONENT, "Unable to refresh target groups", "job", p->job, "url", safe_url, "err", err);
    return true;
}

static void *http_thread(void *arg)
{
    http_impl *hi = arg;
    int64_t interval = hi->p->cfg->u.http.refresh_interval_ms > 0 ? hi->p->cfg->u.http.refresh_interval_ms : 60000;
    for (;;) {
        int64_t next = sd_now_mono_ms() + interval;
        if (!refresh(hi))
            return NULL;
        for (;;) {
            int64_t now = sd_now_mono_ms();
            if (now >= next)
                break;
            struct pollfd pfd = {.fd = hi->stop_fd, .events = POLLIN};
            int64_t wait = next - now;
            if (poll(&pfd, 1, wait > INT_MAX ? INT_MAX : (int)wait) > 0)
                return NULL;
        }
    }
}

static void http_destroy(sd_provider *p);

static int http_start(sd_provider *p, char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, metrics_create);
    http_impl *hi = calloc(1, sizeof *hi);
    if (!hi)
        abort();
    p->impl = hi;
    hi->p = p;
    hi->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    hi->multi = curl_multi_init();
    if (hi->stop_fd < 0 || !hi->multi) {
        snprintf(err, errlen, "cannot set up HTTP SD: %s", strerror(errno));
        http_destroy(p);
        return -1;
    }
    if (pthread_create(&hi->thread, NULL, http_thread, hi) != 0) {
        snprintf(err, errlen, "cannot start the HTTP SD thread");
        http_destroy(p);
        return -1;
    }
    hi->running = true;
    return 0;
}

static void http_stop(sd_provider *p)
{
    http_impl *hi = p->impl;
    if (!hi || !hi->running)
        return;
    uint64_t one = 1;
    if (write(hi->stop_fd, &one, sizeof one) < 0)
        log_error(COMPONENT, "cannot signal the HTTP SD thread", "job", p->job, "err", strerror(errno));
    pthread_join(hi->thread, NULL);
    hi->running = false;
}

static void http_destroy(sd_provider *p)
{
    http_impl *hi = p->impl;
    if (!hi)
        return;
    sd_fetch_reset(&hi->f);
    free(hi->last_idx);
    sd_pool_unref(hi->pool); /* groups still stored elsewhere keep it */
    if (hi->multi)
        curl_multi_cleanup(hi->multi);
    if (hi->stop_fd >= 0)
        close(hi->stop_fd);
    free(hi);
    p->impl = NULL;
}

const sd_provider_ops sd_http_ops = {
    .kind = "http",
    .start = http_start,
    .stop = http_stop,
    .destroy = http_destroy,
};
