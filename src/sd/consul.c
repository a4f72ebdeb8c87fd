/* consul: consul_sd_configs (Prometheus discovery/consul/consul.go) over the Consul HTTP API with libcurl.
 *
 * Watches are Consul blocking queries (index from X-Consul-Index, wait=120000ms, client timeout 135 s):
 *   - without `services`, or with `tags`: one watch on /v1/catalog/services (node-meta filtered); every
 *     listed service whose name (and, when `tags` is set, catalog tags, all of them) matches gets its own
 *     watch; a service gone from the catalog loses its watch and its group is emptied;
 *   - with `services` and no `tags`: one watch per listed service, no catalog.
 * Each service watch queries /v1/health/service/NAME (tag=... for every configured tag) and replaces the
 * group whose source is the service name. A response with the same index as the last one changes nothing;
 * an index that went backwards (agent restart, snapshot restore) is adopted with the data and the next
 * query starts again from 0, as Consul's documentation recommends. The next query of a watch starts
 * refresh_interval after the previous one started (Go's ticker), or at once when it took longer.
 * Errors (transport, non-200, malformed JSON) keep the current groups and retry after a backoff (1 s
 * doubling up to Prometheus' 15 s retryInterval). Without `datacenter`, /v1/agent/self is read first.
 *
 * Threading: one thread per provider drives every watch on one curl multi handle, together with an eventfd
 * that stop() signals. Only that thread touches consul_impl after start. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sd/http_fetch.h"
#include "sd/sd_remote.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#define COMPONENT "sd/consul"
#define WATCH_WAIT_MS 120000L
#define CLIENT_TIMEOUT_MS (WATCH_WAIT_MS + 15000L)
#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 15000
#define BODY_MAX (64u << 20)

static metric_family *m_failures, *m_duration;

static void metrics_create(void)
{
    m_failures = metric_family_get("lookout_sd_consul_rpc_failures_total", METRIC_COUNTER,
                                   "The number of Consul RPC call failures.", 0, NULL);
    static const char *const ln[] = {"endpoint", "call"};
    static const double buckets[] = {.001, .01, .1, 1, 10, 60, 120, 180};
    m_duration = metric_histogram_get("lookout_sd_consul_rpc_duration_seconds",
                                      "The duration of a Consul RPC call in seconds.", 2, ln, buckets,
                                      sizeof buckets / sizeof *buckets);
}

typedef enum { W_AGENT, W_CATALOG, W_SERVICE } watch_kind;

typedef struct cwatch {
    watch_kind kind;
    char *service; /* W_SERVICE */
    uint64_t index;
    sd_fetch f;
    bool in_flight;
    int64_t started_at, next_at;
    int backoff_ms;
} cwatch;

typedef struct consul_impl {
    sd_provider *p;
    int stop_fd;
    pthread_t thread;
    bool running;
    CURLM *multi;
    char *scheme, *host; /* from `server`, which may carry http:// or https:// */
    char *datacenter;    /* configured or from the agent; NULL until known */
    cwatch agent, catalog;
    bool use_catalog;
    cwatch **services; /* sorted by name */
    size_t n_services;
} consul_impl;

/* Go's url.QueryEscape. */
static void query_escape(strbuf *sb, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '_' || *p == '.' || *p == '~')
            strbuf_printf(sb, "%c", *p);
        else if (*p == ' ')
            strbuf_printf(sb, "+");
        else
            strbuf_printf(sb, "%%%02X", *p);
    }
}

/* Path escaping of Go's url.URL.EscapedPath for one segment ('/' escaped too). */
static void path_escape(strbuf *sb, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~$&+,;=:@!*'()", *p))
            strbuf_printf(sb, "%c", *p);
        else
            strbuf_printf(sb, "%%%02X", *p);
    }
}

typedef struct qparam {
    const char *k;
    char *v;
} qparam;

static int cmp_qparam(const void *a, const void *b)
{
    return strcmp(((const qparam *)a)->k, ((const qparam *)b)->k);
}

/* The URL of a watch's next query, parameters sorted by key as url.Values.Encode does. */
static char *watch_url(consul_impl *ci, const cwatch *w)
{
    const consul_sd_config *cc = &ci->p->cfg->u.consul;
    strbuf sb;
    strbuf_init(&sb);
    strbuf_printf(&sb, "%s://%s%s", ci->scheme, ci->host, cc->path_prefix ? cc->path_prefix : "");
    qparam q[64 + 16];
    size_t nq = 0;
    char idx[32];
    if (w->kind == W_AGENT) {
        strbuf_printf(&sb, "/v1/agent/self");
    } else {
        if (w->kind == W_CATALOG) {
            strbuf_printf(&sb, "/v1/catalog/services");
        } else {
            strbuf_printf(&sb, "/v1/health/service/");
            path_escape(&sb, w->service);
            for (size_t i = 0; i < cc->n_tags && nq < 40; i++)
                q[nq++] = (qparam){"tag", xstrdup(cc->tags[i])};
        }
        if (cc->allow_stale)
            q[nq++] = (qparam){"stale", xstrdup("")};
        if (w->index) {
            snprintf(idx, sizeof idx, "%llu", (unsigned long long)w->index);
            q[nq++] = (qparam){"index", xstrdup(idx)};
        }
        q[nq++] = (qparam){"wait", xstrdup("120000ms")};
        for (size_t i = 0; i < cc->n_node_meta && nq < 70; i++) {
            size_t l = strlen(cc->node_meta_keys[i]) + strlen(cc->node_meta_values[i]) + 2;
            char *v = malloc(l);
            if (!v)
                abort();
            snprintf(v, l, "%s:%s", cc->node_meta_keys[i], cc->node_meta_values[i]);
            q[nq++] = (qparam){"node-meta", v};
        }
    }
    if (cc->datacenter)
        q[nq++] = (qparam){"dc", xstrdup(cc->datacenter)};
    if (cc->ns)
        q[nq++] = (qparam){"ns", xstrdup(cc->ns)};
    if (cc->partition)
        q[nq++] = (qparam){"partition", xstrdup(cc->partition)};
    /* stable sort by key: values of one key keep their order */
    for (size_t i = 1; i < nq; i++)
        for (size_t j = i; j > 0 && cmp_qparam(&q[j - 1], &q[j]) > 0; j--) {
            qparam t = q[j];
            q[j] = q[j - 1];
            q[j - 1] = t;
        }
    for (size_t i = 0; i < nq; i++) {
        strbuf_printf(&sb, "%c", i ? '&' : '?');
        query_escape(&sb, q[i].k);
        strbuf_printf(&sb, "=");
        query_escape(&sb, q[i].v);
        free(q[i].v);
    }
    char *url = strbuf_detach(&sb, NULL);
    strbuf_free(&sb);
    return url;
}

static const char *watch_name(const cwatch *w)
{
    return w->kind == W_AGENT ? "agent/self" : w->kind == W_CATALOG ? "catalog/services" : w->service;
}

static void watch_start(consul_impl *ci, cwatch *w)
{
    const consul_sd_config *cc = &ci->p->cfg->u.consul;
    char *url = watch_url(ci, w);
    char err[512];
    char tokhdr[1100];
    const char *headers[2] = {NULL, NULL};
    if (cc->token) {
        snprintf(tokhdr, sizeof tokhdr, "X-Consul-Token: %s", cc->token);
        headers[0] = tokhdr;
    }
    w->started_at = sd_now_mono_ms();
    if (sd_fetch_prepare(&w->f, &cc->http, url, headers, CLIENT_TIMEOUT_MS, BODY_MAX, err, sizeof err) != 0) {
        metric_add(m_failures, NULL, 1);
        log_error(COMPONENT, "Error preparing Consul request", "job", ci->p->job, "watch", watch_name(w), "err", err);
        w->backoff_ms = w->backoff_ms ? (w->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : w->backoff_ms * 2)
                                      : RETRY_MIN_MS;
        w->next_at = sd_now_mono_ms() + w->backoff_ms;
        free(url);
        return;
    }
    free(url);
    w->f.owner = w;
    curl_multi_add_handle(ci->multi, w->f.h);
    w->in_flight = true;
}

static void watch_cancel(consul_impl *ci, cwatch *w)
{
    if (w->in_flight) {
        curl_multi_remove_handle(ci->multi, w->f.h);
        w->in_flight = false;
    }
}

static void watch_free(consul_impl *ci, cwatch *w)
{
    watch_cancel(ci, w);
    sd_fetch_reset(&w->f);
    free(w->service);
}

static cwatch *service_new(const char *name)
{
    cwatch *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    w->kind = W_SERVICE;
    w->service = xstrdup(name);
    return w;
}

static int cmp_watch(const void *a, const void *b)
{
    return strcmp((*(cwatch *const *)a)->service, (*(cwatch *const *)b)->service);
}

/* Prometheus' shouldWatch: name in `services` (when set) and every configured tag among the catalog's. */
static bool should_watch(const consul_sd_config *cc, const consul_catalog_entry *e)
{
    if (cc->n_services) {
        bool found = false;
        for (size_t i = 0; i < cc->n_services && !found; i++)
            found = !strcmp(cc->services[i], e->name);
        if (!found)
            return false;
    }
    for (size_t i = 0; i < cc->n_tags; i++) {
        bool found = false;
        for (size_t k = 0; k < e->n_tags && !found; k++)
            found = !strcmp(cc->tags[i], e->tags[k]);
        if (!found)
            return false;
    }
    return true;
}

static void on_catalog(consul_impl *ci, const consul_catalog_entry *v, size_t n)
{
    sd_provider *p = ci->p;
    const consul_sd_config *cc = &p->cfg->u.consul;
    /* merge walk over two sorted lists: keep, add (matching and new), remove (gone from the catalog) */
    cwatch **next = calloc(ci->n_services + n + 1, sizeof *next);
    if (!next)
        abort();
    size_t nn = 0, i = 0, k = 0;
    target_group *gone = NULL;
    size_t n_gone = 0;
    while (i < ci->n_services || k < n) {
        int c = i >= ci->n_services ? 1 : k >= n ? -1 : strcmp(ci->services[i]->service, v[k].name);
        if (c == 0) { /* watched and still listed: kept even if its tags changed, as in Prometheus */
            next[nn++] = ci->services[i++];
            k++;
        } else if (c < 0) { /* gone from the catalog */
            cwatch *w = ci->services[i++];
            log_debug(COMPONENT, "service removed from the catalog", "job", p->job, "service", w->service);
            gone = realloc(gone, (n_gone + 1) * sizeof *gone);
            if (!gone)
                abort();
            target_group_init(&gone[n_gone++], w->service);
            watch_free(ci, w);
            free(w);
        } else {
            if (should_watch(cc, &v[k])) {
                cwatch *w = service_new(v[k].name);
                next[nn++] = w;
                watch_start(ci, w);
            }
            k++;
        }
    }
    free(ci->services);
    ci->services = next;
    ci->n_services = nn;
    if (n_gone)
        sd_provider_update(p, gone, n_gone);
    sd_groups_free(gone, n_gone);
}

static void watch_failed(consul_impl *ci, cwatch *w, const char *msg, const char *err)
{
    metric_add(m_failures, NULL, 1);
    if (w->kind == W_SERVICE)
        log_error(COMPONENT, msg, "job", ci->p->job, "service", w->service, "err", err);
    else
        log_error(COMPONENT, msg, "job", ci->p->job, "err", err);
    w->backoff_ms = w->backoff_ms ? (w->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : w->backoff_ms * 2) : RETRY_MIN_MS;
    w->next_at = sd_now_mono_ms() + w->backoff_ms;
}

static void watch_done(consul_impl *ci, cwatch *w, CURLcode code)
{
    sd_provider *p = ci->p;
    const consul_sd_config *cc = &p->cfg->u.consul;
    curl_multi_remove_handle(ci->multi, w->f.h);
    w->in_flight = false;
    int64_t now = sd_now_mono_ms();
    const char *lv[2] = {w->kind == W_AGENT ? "agent" : w->kind == W_CATALOG ? "catalog" : "health",
                         w->kind == W_AGENT ? "self" : w->kind == W_CATALOG ? "services" : "service"};
    metric_observe(m_duration, lv, (double)(now - w->started_at) / 1000.0);
    const char *what = w->kind == W_AGENT     ? "Error retrieving datacenter name"
                       : w->kind == W_CATALOG ? "Error refreshing service list"
                                              : "Error refreshing service";
    char err[1024];
    long status = sd_fetch_result(&w->f, code, err, sizeof err);
    if (status < 0) {
        watch_failed(ci, w, what, err);
        return;
    }
    if (status != 200) {
        size_t bl = w->f.len > 200 ? 200 : w->f.len;
        snprintf(err, sizeof err, "Unexpected response code: %ld (%.*s)", status, (int)bl, w->f.body ? w->f.body : "");
        watch_failed(ci, w, what, err);
        return;
    }
    const char *body = w->f.body ? w->f.body : "";
    if (w->kind == W_AGENT) {
        char *dc = consul_parse_agent_datacenter(body, w->f.len, err, sizeof err);
        sd_fetch_drop_body(&w->f); /* read once: the watch would otherwise hold the answer for good */
        if (!dc) {
            watch_failed(ci, w, what, err);
            return;
        }
        ci->datacenter = dc;
        w->backoff_ms = 0;
        return;
    }
    uint64_t idx = w->f.has_index ? w->f.index : 0;
    /* the next query of this watch: one refresh_interval after this one started (Go's ticker) */
    w->next_at = w->started_at + cc->refresh_interval_ms;
    if (w->next_at < now)
        w->next_at = now;
    if (idx == w->index && w->index != 0) {
        sd_fetch_drop_body(&w->f);
        w->backoff_ms = 0;
        sd_provider_mark_success(p);
        return; /* the wait expired without a change */
    }
    if (w->kind == W_CATALOG) {
        consul_catalog_entry *v;
        size_t n;
        int prc = consul_parse_catalog(body, w->f.len, &v, &n, err, sizeof err);
        sd_fetch_drop_body(&w->f); /* every watch would otherwise hold its last answer */
        if (prc != 0) {
            watch_failed(ci, w, what, err);
            return;
        }
        on_catalog(ci, v, n);
        consul_catalog_free(v, n);
    } else {
        target_group g;
        target_group_init(&g, w->service);
        int prc = consul_parse_health(body, w->f.len, w->service, ci->datacenter, cc->tag_separator, &g, err,
                                      sizeof err);
        sd_fetch_drop_body(&w->f);
        if (prc != 0) {
            target_group_free(&g);
            watch_failed(ci, w, what, err);
            return;
        }
        if (g.n_targets == 0)
            labelset_clear(&g.labels); /* an empty group removes the source */
        sd_provider_update(p, &g, 1);
        target_group_free(&g);
    }
    w->backoff_ms = 0;
    sd_provider_mark_success(p);
    if (idx < w->index) {
        char a[32], b[32];
        snprintf(a, sizeof a, "%llu", (unsigned long long)w->index);
        snprintf(b, sizeof b, "%llu", (unsigned long long)idx);
        log_info(COMPONENT, "Consul index went backwards; restarting the watch from 0", "job", p->job, "watch",
                 watch_name(w), "last_index", a, "index", b);
        w->index = 0;
        w->next_at = now;
    } else {
        w->index = idx;
    }
}

static void set_min(int64_t *a, int64_t b)
{
    if (b < *a)
        *a = b;
}

/* Starts what is due; returns the earliest time something idle becomes due. */
static int64_t start_due(consul_impl *ci)
{
    int64_t now = sd_now_mono_ms(), next = now + 60000;
    if (!ci->datacenter) {
        if (!ci->agent.in_flight && ci->agent.next_at <= now)
            watch_start(ci, &ci->agent);
        if (!ci->agent.in_flight)
            set_min(&next, ci->agent.next_at);
        return next;
    }
    if (ci->use_catalog) {
        if (!ci->catalog.in_flight && ci->catalog.next_at <= now)
            watch_start(ci, &ci->catalog);
        if (!ci->catalog.in_flight)
            set_min(&next, ci->catalog.next_at);
    }
    for (size_t i = 0; i < ci->n_services; i++) {
        cwatch *w = ci->services[i];
        if (!w->in_flight && w->next_at <= now)
            watch_start(ci, w);
        if (!w->in_flight)
            set_min(&next, w->next_at);
    }
    return next;
}

static void *consul_thread(void *arg)
{
    consul_impl *ci = arg;
    for (;;) {
        int64_t due = start_due(ci);
        int running = 0;
        curl_multi_perform(ci->multi, &running);
        CURLMsg *m;
        int left;
        bool finished = false;
        while ((m = curl_multi_info_read(ci->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            sd_fetch *f = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&f);
            CURLcode code = m->data.result;
            watch_done(ci, f->owner, code); /* may add or remove handles: info_read stays valid */
            finished = true;
        }
        if (finished)
            continue; /* start follow-ups (datacenter known, new services) right away */
        int64_t now = sd_now_mono_ms();
        long wait = due - now;
        if (wait < 0)
            wait = 0;
        if (wait > 1000)
            wait = 1000;
        struct curl_waitfd wfd = {.fd = ci->stop_fd, .events = CURL_WAIT_POLLIN};
        int numfds = 0;
        curl_multi_poll(ci->multi, &wfd, 1, (int)wait, &numfds);
        if (wfd.revents)
            return NULL;
    }
}

static void consul_destroy(sd_provider *p);

static int consul_start(sd_provider *p, char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, metrics_create);
    const consul_sd_config *cc = &p->cfg->u.consul;
    consul_impl *ci = calloc(1, sizeof *ci);
    if (!ci)
        abort();
    p->impl = ci;
    ci->p = p;
    ci->stop_fd = -1;
    /* consul/api NewClient: an address may carry its scheme */
    const char *server = cc->server ? cc->server : "localhost:8500", *sep = strstr(server, "://");
    if (sep) {
        size_t sl = (size_t)(sep - server);
        if (!(sl == 4 && !strncmp(server, "http", 4)) && !(sl == 5 && !strncmp(server, "https", 5))) {
            snprintf(err, errlen, "Unknown protocol scheme: %.*s", (int)sl, server);
            consul_destroy(p);
            return -1;
        }
        ci->scheme = strndup(server, sl);
        ci->host = xstrdup(sep + 3);
    } else {
        ci->scheme = xstrdup(cc->scheme ? cc->scheme : "http");
        ci->host = xstrdup(server);
    }
    ci->agent.kind = W_AGENT;
    ci->catalog.kind = W_CATALOG;
    ci->use_catalog = cc->n_services == 0 || cc->n_tags != 0;
    if (cc->datacenter)
        ci->datacenter = xstrdup(cc->datacenter);
    if (!ci->use_catalog) {
        ci->services = calloc(cc->n_services, sizeof *ci->services);
        if (!ci->services)
            abort();
        for (size_t i = 0; i < cc->n_services; i++) {
            bool dup = false;
            for (size_t k = 0; k < ci->n_services; k++)
                dup = dup || !strcmp(ci->services[k]->service, cc->services[i]);
            if (!dup)
                ci->services[ci->n_services++] = service_new(cc->services[i]);
        }
        qsort(ci->services, ci->n_services, sizeof *ci->services, cmp_watch);
    }
    ci->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ci->multi = curl_multi_init();
    if (ci->stop_fd < 0 || !ci->multi) {
        snprintf(err, errlen, "cannot set up Consul SD: %s", strerror(errno));
        consul_destroy(p);
        return -1;
    }
    if (pthread_create(&ci->thread, NULL, consul_thread, ci) != 0) {
        snprintf(err, errlen, "cannot start the Consul SD thread");
        consul_destroy(p);
        return -1;
    }
    ci->running = true;
    return 0;
}

static void consul_stop(sd_provider *p)
{
    consul_impl *ci = p->impl;
    if (!ci || !ci->running)
        return;
    uint64_t one = 1;
    if (write(ci->stop_fd, &one, sizeof one) < 0)
        log_error(COMPONENT, "cannot signal the Consul SD thread", "job", p->job, "err", strerror(errno));
    pthread_join(ci->thread, NULL);
    ci->running = false;
}

static void consul_destroy(sd_provider *p)
{
    consul_impl *ci = p->impl;
    if (!ci)
        return;
    if (ci->multi) {
        watch_free(ci, &ci->agent);
        watch_free(ci, &ci->catalog);
        for (size_t i = 0; i < ci->n_services; i++) {
            watch_free(ci, ci->services[i]);
            free(ci->services[i]);
        }
        curl_multi_cleanup(ci->multi);
    } else {
        for (size_t i = 0; i < ci->n_services; i++) {
            free(ci->services[i]->service);
            free(ci->services[i]);
        }
    }
    free(ci->services);
    if (ci->stop_fd >= 0)
        close(ci->stop_fd);
    free(ci->scheme);
    free(ci->host);
    free(ci->datacenter);
    free(ci);
    p->impl = NULL;
}

const sd_provider_ops sd_consul_ops = {
    .kind = "consul",
    .start = consul_start,
    .stop = consul_stop,
    .destroy = consul_destroy,
};
