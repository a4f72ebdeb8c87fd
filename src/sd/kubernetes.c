/* kubernetes: kubernetes_sd_configs watches — the list/watch client (informers), the role wiring and the
 * subscribers a watch sends its groups to (the provider ops and the shared-watch registry: kubernetes_share.c).
 *
 * Each watch runs one thread with one curl multi handle. It holds one informer per watched resource and
 * namespace (pods of ns "a", services of ns "a", ...; nodes are cluster-wide). An informer:
 *   LIST  GET path?limit=500[&continue=][&labelSelector=][&fieldSelector=], page after page, into a fresh
 *         set; at the end the set is diffed against the store and only changed objects are reported
 *         (a re-list after 410 Gone therefore emits only the difference);
 *   WATCH GET path?watch=1&allowWatchBookmarks=true&resourceVersion=RV&timeoutSeconds=N; the chunked body is
 *         split into lines as bytes arrive and each line (one event) is decoded and applied at once
 *         (lines above K8S_MAX_LINE abort the watch and force a re-list). ADDED/MODIFIED/DELETED update the
 *         store, BOOKMARK advances RV, ERROR 410 (or HTTP 410) re-lists; a watch that ends resumes from the
 *         last RV; failures back off exponentially (250 ms .. 30 s). The store is never cleared on error, so
 *         an API server that is away keeps the last targets.
 * Pages and events are parsed as a stream (k8s_json.c) that keeps only what labels need (the prune templates
 * of kubernetes_meta.c), at most json_budget_for(text) of them: no document tree is built.
 *
 * Store changes mark "primary" objects dirty (the role's own resource; for endpoints/endpointslice also the
 * objects that reference a changed pod, service or node). After every pass of the loop the dirty groups are
 * rebuilt and sent in one sd_provider_update — once every informer has finished its first list, so the
 * first groups already carry pod and service labels. A watch event thus reaches the manager within one loop
 * pass (microseconds after curl hands over the bytes).
 *
 * A watch (struct k8s_watch below) is what the informers, store and thread above form; providers of
 * identical blocks subscribe to one (the registry and the provider ops are in kubernetes_share.c). Success
 * (sd_provider_mark_success) is reported once every informer has listed, after the groups of that pass
 * were sent, so "success" always means "the groups sent are complete and fresh".
 *
 * Threading: informers, stores and dirty sets are touched by the watch thread only, except `stop` (atomic)
 * and curl_multi_wakeup. `sub_mu` guards the subscriber list; the watch thread holds it while it calls
 * sd_provider_update/mark_success, so after unsubscribing a provider gets no more updates. Lock order:
 * kubernetes_share.c's reg_mu -> sub_mu -> the manager's lock. */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "http/client.h"
#include "sd/kubernetes_internal.h"
#include "util/json_budget.h"
#include "util/log.h"
#include "util/xalloc.h"

#define COMPONENT "sd/kubernetes"
#define K8S_PAGE_LIMIT 500
#define K8S_MAX_LINE (16u << 20)    /* one watch event */
#define K8S_MAX_PAGE (64u << 20)    /* one list page: 500 objects of 128 KiB */
#define K8S_BACKOFF_MIN_MS 250
#define K8S_BACKOFF_MAX_MS 30000

typedef enum inf_state { INF_IDLE, INF_LISTING, INF_WATCHING } inf_state;

typedef struct k8s_informer {
    k8s_watch *kp;
    k8s_kind kind;
    char *ns;   /* "" = all namespaces (and nodes) */
    char *path;
    const char *label_sel, *field_sel; /* point into the config */
    inf_state state;
    bool synced;     /* first list done */
    bool need_list;  /* next request is a LIST (start, 410, overflow) */
    char *rv;        /* last resourceVersion seen */
    char *cont;      /* list continue token */
    json_t *listing; /* objects of the LIST in progress, key -> slim */
    CURL *easy;
    http_request *req;
    char *buf; /* list page, watch partial line, or an error body */
    size_t len, cap;
    bool gone;     /* watch saw ERROR 410 */
    bool overflow; /* a line or page over its bound */
    int64_t next_ms;
    int64_t backoff_ms;
} k8s_informer;

typedef struct k8s_sub {
    sd_provider *p;
    bool needs_full; /* joined after the first groups: send it everything once */
} k8s_sub;

/* One watch (see the top of the file), shared by its subscribers. */
struct k8s_watch {
    char *key;                       /* canonical block, with secrets: never logged */
    char *job;                       /* the first subscriber's job, for logs */
    sd_config *block;                /* owned copy: subscribers come and go */
    const kubernetes_sd_config *cfg; /* &block->u.kubernetes */
    pthread_mutex_t sub_mu;
    k8s_sub *subs;
    size_t n_subs;
    bool any_needs_full;             /* under sub_mu */
    bool listed;                     /* since success was last reported: a LIST completed, a bookmark came or
                                        a watch ended cleanly (the watch is known current) */
    k8s_conn conn;
    k8s_informer *inf;
    size_t n_inf;
    json_t *store[K8S_ROLE_COUNT]; /* key -> slim object */
    json_t *dirty;                 /* primary keys to rebuild */
    CURLM *multi;
    pthread_t thread;
    bool running;
    atomic_bool stop;
};

static const char *selector(const kubernetes_sd_config *c, k8s_kind kind, bool field)
{
    for (size_t i = 0; i < c->n_selectors; i++)
        if (c->selectors[i].role == kind)
            return field ? c->selectors[i].field : c->selectors[i].label;
    return NULL;
}

/* ---- dirty marking: which primary objects a change affects ---- */

static bool key_in_ns(const char *key, const char *ns)
{
    size_t n = strlen(ns);
    return strncmp(key, ns, n) == 0 && key[n] == '/';
}

/* addrs: an address list of either form (k8s_addr_next), or an array of endpointslice endpoints (their
 * nodeName and targetRef read the same way). */
static bool refs_pod(const json_t *addrs, const char *ns, const char *name)
{
    k8s_addr a;
    for (size_t pos = 0; k8s_addr_next(addrs, &pos, &a);) {
        const char *k = a.ref_kind, *n = a.ref_name, *rns = a.ref_ns;
        if (k && n && strcmp(k, "Pod") == 0 && strcmp(n, name) == 0 && (!rns || strcmp(rns, ns) == 0))
            return true;
    }
    return false;
}

static bool uses_node(const json_t *addrs, const char *node)
{
    k8s_addr a;
    for (size_t pos = 0; k8s_addr_next(addrs, &pos, &a);)
        if (a.node_name && strcmp(a.node_name, node) == 0)
            return true;
    return false;
}

/* Does primary object `o` (endpoints or endpointslice) reference the changed object? */
static bool primary_refs(k8s_role role, const json_t *o, k8s_kind kind, const char *ns, const char *name)
{
    size_t i;
    json_t *x;
    if (kind == K8S_ROLE_SERVICE) {
        if (role == K8S_ROLE_ENDPOINTS)
            return strcmp(k8s_str(o, "metadata.name") ? k8s_str(o, "metadata.name") : "", name) == 0;
        const char *svc = k8s_map_get(k8s_get(o, "metadata.labels"), "kubernetes.io/service-name");
        return svc && strcmp(svc, name) == 0;
    }
    const json_t *list = json_object_get(o, role == K8S_ROLE_ENDPOINTS ? "subsets" : "endpoints");
    json_array_foreach(list, i, x) {
        if (role == K8S_ROLE_ENDPOINTS) {
            const json_t *a = json_object_get(x, "addresses"), *b = json_object_get(x, "notReadyAddresses");
            if (kind == K8S_ROLE_POD ? (refs_pod(a, ns, name) || refs_pod(b, ns, name))
                                     : (uses_node(a, name) || uses_node(b, name)))
                return true;
        } else {
            json_t *one = json_array();
            json_array_append((json_t *)one, x);
            bool r = kind == K8S_ROLE_POD ? refs_pod(one, ns, name) : uses_node(one, name);
            json_decref(one);
            if (r)
                return true;
        }
    }
    return false;
}

static void mark_changed(k8s_watch *kp, k8s_kind kind, const char *key, const json_t *obj)
{
    k8s_role role = kp->cfg->role;
    if (kind == role) {
        json_object_set_new(kp->dirty, key, json_true());
        return;
    }
    const json_t *primary = kp->store[role];
    const char *k;
    json_t *o;
    if (kind == K8S_ROLE_NODE && role == K8S_ROLE_POD) {
        json_object_foreach((json_t *)primary, k, o) {
            const char *n = k8s_str(o, "spec.nodeName");
            if (n && strcmp(n, key) == 0)
                json_object_set_new(kp->dirty, k, json_true());
        }
        return;
    }
    if (role != K8S_ROLE_ENDPOINTS && role != K8S_ROLE_ENDPOINTSLICE)
        return;
    char ns[300] = "";
    const char *name = key;
    if (kind != K8S_ROLE_NODE) {
        const char *slash = strchr(key, '/');
        if (!slash)
            return;
        snprintf(ns, sizeof ns, "%.*s", (int)(slash - key), key);
        name = slash + 1;
    }
    (void)obj;
    json_object_foreach((json_t *)primary, k, o) {
        if (kind != K8S_ROLE_NODE && !key_in_ns(k, ns))
            continue;
        if (primary_refs(role, o, kind, ns, name))
            json_object_set_new(kp->dirty, k, json_true());
    }
}

/* Applies one object state (obj NULL = deleted) to the store; marks what it changes. */
static void store_apply(k8s_watch *kp, k8s_kind kind, const char *key, json_t *obj /* stolen */)
{
    json_t *store = kp->store[kind];
    json_t *old = json_object_get(store, key);
    if (!obj) {
        if (!old)
            return;
        json_incref(old);
        json_object_del(store, key);
        mark_changed(kp, kind, key, old);
        json_decref(old);
        return;
    }
    /* resourceVersion changes on every write; compare without it so no-op updates stay silent. */
    json_t *meta = json_object_get(obj, "metadata");
    json_t *rv = json_object_get(meta, "resourceVersion");
    if (rv)
        json_incref(rv), json_object_del(meta, "resourceVersion");
    bool same = old && json_equal(old, obj);
    if (rv)
        json_decref(rv);
    if (same) {
        json_decref(obj);
        return;
    }
    json_object_set_new(store, key, obj);
    /* For pods on a node change the endpoints referencing the pod's old and new state alike. */
    mark_changed(kp, kind, key, obj);
}

/* ---- informers ---- */

/* Empties the buffer; one grown past 1 MiB (a big page or event) is released rather than held while the
 * objects it held are built into groups and sent, and until the next big one. */
static void inf_buf_reset(k8s_informer *in)
{
    in->len = 0;
    if (in->cap > (1u << 20)) {
        free(in->buf);
        in->buf = NULL;
        in->cap = 0;
    }
}

static bool inf_buf_append(k8s_informer *in, const char *d, size_t n, size_t max)
{
    if (in->len + n > max)
        return false;
    if (in->len + n + 1 > in->cap) {
        size_t c = in->cap ? in->cap : 4096;
        while (c < in->len + n + 1)
            c *= 2;
        char *b = realloc(in->buf, c);
        if (!b)
            return false;
        in->buf = b;
        in->cap = c;
    }
    memcpy(in->buf + in->len, d, n);
    in->len += n;
    in->buf[in->len] = 0;
    return true;
}

static void set_rv(k8s_informer *in, const char *rv)
{
    if (!rv || !*rv)
        return;
    free(in->rv);
    in->rv = xstrdup_or_empty(rv);
}

/* What one page or event may keep: its pruned objects, at most json_budget_for(text) — the bound the whole
 * tree had before, so every page or event accepted then is accepted now (real objects keep 1.5-13 times
 * their text). */
static size_t keep_budget(size_t len)
{
    return json_budget_for(len);
}

static void handle_event(k8s_informer *in, const char *line, size_t n)
{
    char perr[256];
    json_t *ev;
    if (k8s_json_parse(in->kind, K8S_DOC_EVENT, line, n, keep_budget(n), &ev, perr, sizeof perr) < 0) {
        log_warn(COMPONENT, "cannot decode watch event", "job", in->kp->job, "path", in->path, "err", perr);
        in->overflow = true; /* stream out of step: start over from a list */
        return;
    }
    const char *type = k8s_str(ev, "type");
    json_t *obj = json_object_get(ev, "object");
    if (!type || !json_is_object(obj)) {
        json_decref(ev);
        return;
    }
    if (strcmp(type, "ERROR") == 0) {
        json_int_t code = json_integer_value(json_object_get(obj, "code"));
        const char *msg = k8s_str(obj, "message");
        if (code == 410 || (msg && strstr(msg, "too old resource version")))
            in->gone = true;
        else
            log_warn(COMPONENT, "watch error", "job", in->kp->job, "path", in->path, "err", msg ? msg : "");
        json_decref(ev);
        return;
    }
    set_rv(in, k8s_str(obj, "metadata.resourceVersion"));
    if (strcmp(type, "BOOKMARK") == 0) {
        in->kp->listed = true; /* proof of a live, current watch: lookout_sd_last_success_timestamp_seconds */
        json_decref(ev);
        return;
    }
    char *key = k8s_object_key(obj);
    if (key) {
        if (strcmp(type, "DELETED") == 0)
            store_apply(in->kp, in->kind, key, NULL);
        else if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) {
            /* obj is pruned already; without what the event template adds it is k8s_slim(kind, object) */
            json_object_del(obj, "code");
            json_object_del(obj, "message");
            if (in->kind == K8S_ROLE_NODE)
                json_object_del(json_object_get(obj, "metadata"), "namespace");
            store_apply(in->kp, in->kind, key, json_incref(obj));
        }
        free(key);
    }
    json_decref(ev);
}

static size_t on_data(char *data, size_t sz, size_t nm, void *ud)
{
    k8s_informer *in = ud;
    size_t n = sz * nm;
    long code = 0;
    curl_easy_getinfo(in->easy, CURLINFO_RESPONSE_CODE, &code);
    if (in->state == INF_LISTING || code != 200) {
        if (!inf_buf_append(in, data, n, code == 200 ? K8S_MAX_PAGE : 65536)) {
            in->overflow = true;
            return 0;
        }
        return n;
    }
    /* WATCH: cut complete lines out as they arrive; keep the tail for the next chunk. */
    size_t off = 0;
    while (off < n) {
        char *nl = memchr(data + off, '\n', n - off);
        size_t take = nl ? (size_t)(nl - (data + off)) : n - off;
        if (!inf_buf_append(in, data + off, take, K8S_MAX_LINE)) {
            log_warn(COMPONENT, "watch event too large; re-listing", "job", in->kp->job, "path", in->path);
            in->overflow = true;
            return 0;
        }
        off += take;
        if (nl) {
            off++;
            if (in->len)
                handle_event(in, in->buf, in->len);
            inf_buf_reset(in);
            if (in->gone || in->overflow)
                return 0; /* abort the transfer: re-list */
        }
    }
    return n;
}

static void add_param(char *url, size_t len, const char *name, const char *value)
{
    char *esc = curl_easy_escape(NULL, value, 0);
    size_t n = strlen(url);
    snprintf(url + n, len - n, "%s%s=%s", strchr(url, '?') ? "&" : "?", name, esc ? esc : "");
    curl_free(esc);
}

static void inf_start(k8s_informer *in)
{
    k8s_watch *kp = in->kp;
    char url[8192];
    snprintf(url, sizeof url, "%s%s", kp->conn.server, in->path);
    bool list = in->need_list || !in->rv;
    if (list) {
        char lim[16];
        snprintf(lim, sizeof lim, "%d", K8S_PAGE_LIMIT);
        add_param(url, sizeof url, "limit", lim);
        if (in->cont)
            add_param(url, sizeof url, "continue", in->cont);
    } else {
        char to[16];
        snprintf(to, sizeof to, "%d", 300 + rand() % 300); /* client-go: 5..10 minutes */
        add_param(url, sizeof url, "allowWatchBookmarks", "true");
        add_param(url, sizeof url, "resourceVersion", in->rv);
        add_param(url, sizeof url, "timeoutSeconds", to);
        add_param(url, sizeof url, "watch", "1");
    }
    if (in->label_sel)
        add_param(url, sizeof url, "labelSelector", in->label_sel);
    if (in->field_sel)
        add_param(url, sizeof url, "fieldSelector", in->field_sel);
    if (!in->easy)
        in->easy = curl_easy_init();
    else
        curl_easy_reset(in->easy);
    http_request_free(in->req);
    static const char *const hdrs[] = {"Accept: application/json", NULL};
    char err[512];
    in->req = http_client_prepare(in->easy, &kp->conn.http, url, hdrs, err, sizeof err);
    if (!in->req) {
        log_error(COMPONENT, "cannot prepare request", "job", kp->job, "path", in->path, "err", err);
        in->next_ms = sd_now_mono_ms() + in->backoff_ms;
        return;
    }
    curl_easy_setopt(in->easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(in->easy, CURLOPT_WRITEDATA, in);
    curl_easy_setopt(in->easy, CURLOPT_PRIVATE, in);
    curl_easy_setopt(in->easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(in->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(in->easy, CURLOPT_ACCEPT_ENCODING, "");
    if (list)
        curl_easy_setopt(in->easy, CURLOPT_TIMEOUT_MS, 120000L);
    inf_buf_reset(in);
    in->gone = in->overflow = false;
    in->state = list ? INF_LISTING : INF_WATCHING;
    curl_multi_add_handle(kp->multi, in->easy);
}

static void inf_backoff(k8s_informer *in)
{
    in->state = INF_IDLE;
    in->next_ms = sd_now_mono_ms() + in->backoff_ms;
    in->backoff_ms = in->backoff_ms * 2 > K8S_BACKOFF_MAX_MS ? K8S_BACKOFF_MAX_MS : in->backoff_ms * 2;
}

/* The last page of a LIST arrived: replace this informer's share of the store with the listing. */
static void inf_list_done(k8s_informer *in)
{
    k8s_watch *kp = in->kp;
    json_t *store = kp->store[in->kind];
    const char *k;
    json_t *o, *tmp;
    void *it;
    json_object_foreach_safe(store, it, k, o) {
        (void)tmp;
        if (*in->ns && in->kind != K8S_ROLE_NODE && !key_in_ns(k, in->ns))
            continue;
        if (!json_object_get(in->listing, k)) {
            char *key = xstrdup_or_empty(k);
            store_apply(kp, in->kind, key, NULL);
            free(key);
        }
    }
    json_object_foreach(in->listing, k, o)
        store_apply(kp, in->kind, k, json_incref(o));
    json_decref(in->listing);
    in->listing = NULL;
    in->synced = true;
    in->need_list = false;
    kp->listed = true;
}

static void inf_finish(k8s_informer *in, CURLcode res)
{
    k8s_watch *kp = in->kp;
    long code = 0;
    curl_easy_getinfo(in->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_multi_remove_handle(kp->multi, in->easy);
    inf_state was = in->state;
    in->state = INF_IDLE;
    in->next_ms = 0;
    if (was == INF_WATCHING) {
        if (code == 410 || in->gone || in->overflow) {
            log_info(COMPONENT, "watch expired; re-listing", "job", kp->job, "path", in->path);
            in->need_list = true;
            free(in->cont), in->cont = NULL;
            return;
        }
        if ((res == CURLE_OK || res == CURLE_PARTIAL_FILE) && code == 200) {
            in->backoff_ms = K8S_BACKOFF_MIN_MS; /* closed normally: resume now */
            kp->listed = true;
            return;
        }
        char c[16];
        snprintf(c, sizeof c, "%ld", code);
        log_warn(COMPONENT, "watch failed", "job", kp->job, "path", in->path, "status", c, "err",
                 code && code != 200 ? (in->len ? in->buf : "") : curl_easy_strerror(res));
        inf_backoff(in);
        return;
    }
    /* LISTING */
    if (res != CURLE_OK || code != 200) {
        char c[16];
        snprintf(c, sizeof c, "%ld", code);
        log_warn(COMPONENT, "list failed; keeping the last targets", "job", kp->job, "path", in->path, "status",
                 c, "err", res != CURLE_OK ? curl_easy_strerror(res) : (in->len ? in->buf : ""));
        if (code == 410) /* continue token expired: start the list over */
            free(in->cont), in->cont = NULL;
        json_decref(in->listing), in->listing = NULL;
        free(in->cont), in->cont = NULL;
        inf_backoff(in);
        return;
    }
    char perr[256];
    json_t *page;
    int prc = k8s_json_parse(in->kind, K8S_DOC_PAGE, in->buf, in->len, keep_budget(in->len), &page,
                             perr, sizeof perr);
    inf_buf_reset(in);
    if (prc < 0 || !json_is_array(json_object_get(page, "items"))) {
        log_warn(COMPONENT, "cannot decode list", "job", kp->job, "path", in->path, "err", prc < 0 ? perr : "no items");
        json_decref(page);
        json_decref(in->listing), in->listing = NULL;
        free(in->cont), in->cont = NULL;
        inf_backoff(in);
        return;
    }
    if (!in->listing)
        in->listing = json_object();
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(page, "items"), i, item) {
        /* items are pruned already and named: each is k8s_slim(kind, item) */
        char *key = k8s_object_key(item);
        if (key)
            json_object_set_new(in->listing, key, json_incref(item));
        free(key);
    }
    const char *cont = k8s_str(page, "metadata.continue");
    free(in->cont);
    in->cont = cont && *cont ? xstrdup_or_empty(cont) : NULL;
    if (!in->cont) {
        set_rv(in, k8s_str(page, "metadata.resourceVersion"));
        inf_list_done(in);
        in->backoff_ms = K8S_BACKOFF_MIN_MS;
    }
    json_decref(page);
}

/* ---- building and sending ---- */

/* Builds the groups of the primary keys in `keys` (an object used as a set), frozen (views: the manager
 * keeps them by reference). */
static target_group *build_groups(k8s_watch *kp, json_t *keys, size_t *n_out)
{
    k8s_lookup lk = {kp->store[K8S_ROLE_POD], kp->store[K8S_ROLE_SERVICE], kp->store[K8S_ROLE_NODE],
                     kp->cfg->attach_node};
    size_t n = json_object_size(keys), j = 0;
    target_group *gs = calloc(n ? n : 1, sizeof *gs);
    if (!gs)
        abort();
    const char *k;
    json_t *v;
    json_object_foreach(keys, k, v) {
        k8s_build_group_frozen(kp->cfg->role, k, json_object_get(kp->store[kp->cfg->role], k), &lk, &gs[j++]);
    }
    *n_out = j;
    return gs;
}

/* Frees groups built by build_groups. Built label sets are many small allocations of this thread's malloc
 * arena: after a big build (a map of a million labels, an endpoints object of 100,000 addresses) they are
 * given back to the system, so that they do not stay resident while the manager and the scrape layer build
 * their own copies. */
static void free_groups(target_group *gs, size_t n)
{
    size_t labels = 0;
    for (size_t i = 0; i < n; i++) {
        label_view v = target_group_labels(&gs[i]);
        labels += label_view_count(&v);
        for (size_t t = 0; t < gs[i].n_targets; t++)
            labels += gs[i].targets[t].n;
    }
    sd_groups_free(gs, n);
    if (labels > 65536)
        malloc_trim(0);
}

/* Sends what changed to the subscribers (everything to those that just joined), then reports success
 * when a LIST completed. Nothing is sent before every informer has listed once. */
static void flush(k8s_watch *kp)
{
    for (size_t i = 0; i < kp->n_inf; i++)
        if (!kp->inf[i].synced)
            return;
    pthread_mutex_lock(&kp->sub_mu);
    if (json_object_size(kp->dirty) > 0) {
        size_t n;
        target_group *gs = build_groups(kp, kp->dirty, &n);
        for (size_t s = 0; s < kp->n_subs; s++)
            if (!kp->subs[s].needs_full)
                sd_provider_update(kp->subs[s].p, gs, n);
        free_groups(gs, n);
        json_object_clear(kp->dirty);
    }
    if (kp->any_needs_full) {
        size_t n;
        target_group *gs = build_groups(kp, kp->store[kp->cfg->role], &n);
        for (size_t s = 0; s < kp->n_subs; s++)
            if (kp->subs[s].needs_full) {
                sd_provider_update(kp->subs[s].p, gs, n);
                sd_provider_mark_success(kp->subs[s].p); /* the state it got is the watch's current one */
                kp->subs[s].needs_full = false;
            }
        free_groups(gs, n);
        kp->any_needs_full = false;
    }
    if (kp->listed) {
        for (size_t s = 0; s < kp->n_subs; s++)
            sd_provider_mark_success(kp->subs[s].p);
        kp->listed = false;
    }
    pthread_mutex_unlock(&kp->sub_mu);
}

static void *run(void *arg)
{
    k8s_watch *kp = arg;
    while (!atomic_load(&kp->stop)) {
        int64_t now = sd_now_mono_ms(), wait = 1000;
        for (size_t i = 0; i < kp->n_inf; i++) {
            k8s_informer *in = &kp->inf[i];
            if (in->state == INF_IDLE && now >= in->next_ms)
                inf_start(in);
            if (in->state == INF_IDLE && in->next_ms - now < wait)
                wait = in->next_ms - now;
        }
        int running;
        curl_multi_perform(kp->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(kp->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            k8s_informer *in = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&in);
            if (in)
                inf_finish(in, m->data.result);
            wait = 0;
        }
        flush(kp);
        if (wait > 0)
            curl_multi_poll(kp->multi, NULL, 0, (int)(wait < 0 ? 0 : wait), NULL);
    }
    return NULL;
}

static void add_informer(k8s_watch *kp, k8s_kind kind, const char *ns)
{
    kp->inf = realloc(kp->inf, (kp->n_inf + 1) * sizeof *kp->inf);
    if (!kp->inf)
        abort();
    k8s_informer *in = &kp->inf[kp->n_inf++];
    memset(in, 0, sizeof *in);
    in->kp = kp;
    in->kind = kind;
    in->ns = xstrdup_or_empty(kind == K8S_ROLE_NODE ? "" : ns);
    in->path = k8s_resource_path(kind, in->ns);
    in->label_sel = selector(kp->cfg, kind, false);
    in->field_sel = selector(kp->cfg, kind, true);
    in->need_list = true;
    in->backoff_ms = K8S_BACKOFF_MIN_MS;
}

/* ---- a watch's life: create and start, subscribe, stop and free ---- */

static void watch_free(k8s_watch *kp)
{
    for (size_t i = 0; i < kp->n_inf; i++) {
        k8s_informer *in = &kp->inf[i];
        if (in->easy) {
            if (in->state != INF_IDLE && kp->multi)
                curl_multi_remove_handle(kp->multi, in->easy);
            curl_easy_cleanup(in->easy);
        }
        http_request_free(in->req);
        free(in->ns);
        free(in->path);
        free(in->rv);
        free(in->cont);
        free(in->buf);
        json_decref(in->listing);
    }
    free(kp->inf);
    if (kp->multi)
        curl_multi_cleanup(kp->multi);
    for (int i = 0; i < K8S_ROLE_COUNT; i++)
        json_decref(kp->store[i]);
    json_decref(kp->dirty);
    k8s_conn_free(&kp->conn);
    pthread_mutex_destroy(&kp->sub_mu);
    free(kp->subs);
    sd_block_free(kp->block);
    free(kp->key);
    free(kp->job);
    free(kp);
}

k8s_watch *k8s_watch_new(const char *key, const sd_config *block, const char *job, char *err, size_t errlen)
{
    k8s_watch *kp = calloc(1, sizeof *kp);
    if (!kp)
        abort();
    kp->key = xstrdup_or_empty(key);
    kp->job = xstrdup_or_empty(job);
    kp->block = sd_block_copy(block);
    kp->cfg = &kp->block->u.kubernetes;
    pthread_mutex_init(&kp->sub_mu, NULL);
    for (int i = 0; i < K8S_ROLE_COUNT; i++)
        kp->store[i] = json_object();
    kp->dirty = json_object();
    if (k8s_conn_resolve(kp->cfg, &kp->conn, err, errlen) < 0) {
        watch_free(kp);
        return NULL;
    }
    /* Namespaces: names, plus the own namespace; none at all means every namespace. */
    const char *nss[256];
    size_t nn = 0;
    for (size_t i = 0; i < kp->cfg->n_namespaces && nn < 255; i++)
        nss[nn++] = kp->cfg->namespaces[i];
    if (kp->cfg->own_namespace && kp->conn.own_namespace && nn < 255)
        nss[nn++] = kp->conn.own_namespace;
    if (nn == 0)
        nss[nn++] = "";
    k8s_kind kinds[4];
    size_t nk = 0;
    kinds[nk++] = kp->cfg->role;
    if (kp->cfg->role == K8S_ROLE_ENDPOINTS || kp->cfg->role == K8S_ROLE_ENDPOINTSLICE) {
        kinds[nk++] = K8S_ROLE_POD;
        kinds[nk++] = K8S_ROLE_SERVICE;
    }
    if (kp->cfg->attach_node && (kp->cfg->role == K8S_ROLE_POD || kp->cfg->role == K8S_ROLE_ENDPOINTS ||
                                 kp->cfg->role == K8S_ROLE_ENDPOINTSLICE))
        kinds[nk++] = K8S_ROLE_NODE;
    for (size_t k = 0; k < nk; k++) {
        if (kinds[k] == K8S_ROLE_NODE) {
            add_informer(kp, K8S_ROLE_NODE, "");
            continue;
        }
        for (size_t i = 0; i < nn; i++)
            add_informer(kp, kinds[k], nss[i]);
    }
    kp->multi = curl_multi_init();
    atomic_store(&kp->stop, false);
    if (!kp->multi || pthread_create(&kp->thread, NULL, run, kp) != 0) {
        snprintf(err, errlen, "cannot start the kubernetes discovery thread");
        watch_free(kp);
        return NULL;
    }
    kp->running = true;
    return kp;
}

static void watch_stop(k8s_watch *kp)
{
    if (!kp->running)
        return;
    atomic_store(&kp->stop, true);
    curl_multi_wakeup(kp->multi);
    pthread_join(kp->thread, NULL);
    kp->running = false;
}

void k8s_watch_free(k8s_watch *kp)
{
    if (!kp)
        return;
    watch_stop(kp);
    watch_free(kp);
}

const char *k8s_watch_key(const k8s_watch *kp)
{
    return kp->key;
}

size_t k8s_watch_subscribe(k8s_watch *kp, sd_provider *p)
{
    pthread_mutex_lock(&kp->sub_mu);
    kp->subs = realloc(kp->subs, (kp->n_subs + 1) * sizeof *kp->subs);
    if (!kp->subs)
        abort();
    kp->subs[kp->n_subs++] = (k8s_sub){.p = p, .needs_full = true};
    kp->any_needs_full = true;
    size_t n_subs = kp->n_subs;
    pthread_mutex_unlock(&kp->sub_mu);
    return n_subs;
}

void k8s_watch_wakeup(k8s_watch *kp)
{
    curl_multi_wakeup(kp->multi);
}

const char *k8s_watch_job(const k8s_watch *kp)
{
    return kp->job;
}

bool k8s_watch_unsubscribe(k8s_watch *kp, const sd_provider *p)
{
    pthread_mutex_lock(&kp->sub_mu); /* waits for a flush in progress: no update to p after this */
    for (size_t i = 0; i < kp->n_subs; i++)
        if (kp->subs[i].p == p) {
            kp->subs[i] = kp->subs[--kp->n_subs];
            break;
        }
    bool last = kp->n_subs == 0;
    pthread_mutex_unlock(&kp->sub_mu);
    return last;
}
