/* targets_api: see targets_api.h. Field order and value formats follow Prometheus' web/api/v1/api.go
 * (Target, DroppedTarget, TargetDiscovery, RelabelStep) and Go's encoding/json. */
#include "api/targets_api.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api/apiutil.h"
#include "util/log.h"
#include "util/xalloc.h"

void targets_api_init(targets_api *api, target_manager *tm, const char *listen_address, const char *hostname)
{
    memset(api, 0, sizeof *api);
    api->tm = tm;
    snprintf(api->listen_address, sizeof api->listen_address, "%s", listen_address ? listen_address : LOOKOUT_DEFAULT_LISTEN_ADDRESS);
    if (hostname) {
        snprintf(api->hostname, sizeof api->hostname, "%s", hostname);
    } else if (gethostname(api->hostname, sizeof api->hostname - 1) != 0) {
        snprintf(api->hostname, sizeof api->hostname, "localhost");
    }
}

/* ---- globalUrl ---- */

/* Go's net.SplitHostPort; host gets the brackets removed. Returns NULL or Go's error text. */
static const char *go_split_host_port(const char *in, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon = strrchr(in, ':');
    if (!colon)
        return "missing port in address";
    const char *h = in, *hend = colon;
    if (in[0] == '[') {
        const char *rb = strchr(in, ']');
        if (!rb)
            return "missing ']' in address";
        if (rb[1] == '\0')
            return "missing port in address";
        if (rb + 1 != colon)
            return rb[1] == ':' ? "too many colons in address" : "missing port in address";
        h = in + 1;
        hend = rb;
    } else if (memchr(in, ':', (size_t)(colon - in))) {
        return "too many colons in address";
    }
    size_t hl = (size_t)(hend - h);
    if (hl >= hostlen || strlen(colon + 1) >= portlen)
        return "address too long";
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, portlen, "%s", colon + 1);
    return NULL;
}

/* Prometheus' sanitizeSplitHostPort: a host without a port is accepted (port ""). */
static const char *sanitize_split(const char *in, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *e = go_split_host_port(in, host, hostlen, port, portlen);
    if (e && strcmp(e, "missing port in address") == 0) {
        char with[600];
        char p2[32];
        snprintf(with, sizeof with, "%s:80", in);
        if (!go_split_host_port(with, host, hostlen, p2, sizeof p2)) {
            port[0] = '\0';
            return NULL;
        }
    }
    return e;
}

static void join_host_port(strbuf *out, const char *host, const char *port)
{
    if (strchr(host, ':'))
        strbuf_printf(out, "[%s]:%s", host, port);
    else
        strbuf_printf(out, "%s:%s", host, port);
}

int targets_api_global_url(const char *url, const char *listen_address, const char *hostname, strbuf *out,
                           char *err, size_t errlen)
{
    const char *sep = strstr(url, "://");
    if (!sep) {
        strbuf_puts(out, url);
        return 0;
    }
    const char *hstart = sep + 3;
    size_t hlen = strcspn(hstart, "/?#");
    char hostport[512], host[512], port[32];
    if (hlen >= sizeof hostport) {
        strbuf_puts(out, url);
        return 0;
    }
    memcpy(hostport, hstart, hlen);
    hostport[hlen] = '\0';
    const char *e = sanitize_split(hostport, host, sizeof host, port, sizeof port);
    if (e) {
        strbuf_puts(out, url);
        snprintf(err, errlen, "address %s: %s", hostport, e);
        return -1;
    }
    static const char *const local[] = {"127.0.0.1", "localhost", "::1"};
    bool is_local = false;
    for (size_t i = 0; i < sizeof local / sizeof *local; i++)
        is_local |= strcmp(host, local[i]) == 0;
    if (!is_local) {
        strbuf_puts(out, url);
        return 0;
    }
    char lhost[256], lport[32];
    e = go_split_host_port(listen_address, lhost, sizeof lhost, lport, sizeof lport);
    if (e) {
        strbuf_puts(out, url);
        snprintf(err, errlen, "address %s: %s", listen_address, e);
        return -1;
    }
    if (strcmp(port, lport) == 0) {
        /* Our own process: the external URL's scheme and host:port (http://HOSTNAME:PORT by default). */
        strbuf_puts(out, "http://");
        join_host_port(out, hostname, lport);
    } else {
        strbuf_append(out, url, (size_t)(hstart - url));
        if (*port)
            join_host_port(out, hostname, port);
        else
            strbuf_puts(out, hostname);
    }
    strbuf_puts(out, hstart + hlen);
    return 0;
}

/* ---- /api/v1/targets ---- */

/* A target's discovered labels are written as they are merged from its group (targets_*_discovered_each
 * with api_json_label), as labelset_write_json would write their set: one request on a target whose group
 * has a million labels costs their JSON text in the page, not a copy of the set. */

static void render_active(targets_api *api, const target_pool *p, const active_target *t, strbuf *out)
{
    target_state st;
    targets_state_get(p, t, &st);
    labelset pub;
    target_public_labels(&t->t.labels, &pub);
    strbuf_puts(out, "{\"discoveredLabels\":{");
    api_json_labels w = {out, false};
    targets_active_discovered_each(p, t, api_json_label, &w);
    strbuf_putc(out, '}');
    strbuf_puts(out, ",\"labels\":");
    labelset_write_json(out, &pub);
    labelset_free(&pub);
    strbuf_puts(out, ",\"scrapePool\":");
    strbuf_json_string(out, p->job);
    strbuf_puts(out, ",\"scrapeUrl\":");
    strbuf_json_string(out, t->t.url ? t->t.url : "");

    strbuf gurl;
    strbuf_init(&gurl);
    char gerr[600] = "";
    int grc = targets_api_global_url(t->t.url ? t->t.url : "", api->listen_address, api->hostname, &gurl,
                                     gerr, sizeof gerr);
    strbuf_puts(out, ",\"globalUrl\":");
    strbuf_json_string(out, gurl.buf);
    strbuf_free(&gurl);

    /* As Prometheus: a globalUrl error is appended to the last error. */
    strbuf lerr;
    strbuf_init(&lerr);
    if (grc != 0)
        strbuf_printf(&lerr, "%s: %s", st.last_error, gerr);
    else
        strbuf_puts(&lerr, st.last_error);
    strbuf_puts(out, ",\"lastError\":");
    strbuf_json_string(out, lerr.buf);
    strbuf_free(&lerr);

    strbuf_puts(out, ",\"lastScrape\":");
    api_json_time(out, st.last_scrape_ms);
    strbuf_puts(out, ",\"lastScrapeDuration\":");
    api_json_float(out, st.last_duration_s);
    strbuf_puts(out, ",\"health\":");
    strbuf_json_string(out, target_health_name(st.health));
    const char *iv = labelset_get(&t->t.labels, "__scrape_interval__");
    const char *to = labelset_get(&t->t.labels, "__scrape_timeout__");
    strbuf_puts(out, ",\"scrapeInterval\":");
    strbuf_json_string(out, iv ? iv : "");
    strbuf_puts(out, ",\"scrapeTimeout\":");
    strbuf_json_string(out, to ? to : "");
    strbuf_putc(out, '}');
}

/* The dump is produced a page at a time, each page under the target manager's read lock, which is never
 * held while the client reads (see targets_api.h for what a reader gets while targets change). Between
 * pages it keeps a cursor, never an index or a pointer: the pool by job name (pools are sorted by it);
 * active targets by the last one listed, in the pool's display order (URL, then hash: unique, total);
 * dropped targets (in discovery order, which a sync may rearrange) by position while the pool's list is
 * unchanged (dropped_gen), and after a rebuild by starting the pool's list again, skipping the targets
 * already listed (matched by the hash of their discovered labels, each listed one skipping one). */

#define TARGETS_API_PAGE (32u << 10)

enum { TD_ACTIVE = 0, TD_DROPPED, TD_COUNTS, TD_DONE };

struct targets_dump {
    targets_api *api;
    bool show_active, show_dropped;
    char *pool_filter; /* NULL: every pool */
    int phase;
    bool first;    /* nothing listed yet in the current array */
    char *job;     /* the pool being listed in this phase (NULL: none yet) */
    bool job_done; /* ... and it is finished: the next pool is the next job name */
    /* active: the last target listed from the pool */
    bool have_last;
    strbuf last_url;
    uint64_t last_hash;
    /* dropped: the pool's list generation didx holds for, and what was listed from the pool */
    uint64_t dgen;
    size_t didx;
    uint64_t *seen;
    size_t n_seen, cap_seen;
    uint64_t *chk; /* after a rebuild: seen, sorted; each match skips one entry (chk_used) */
    bool *chk_used;
    size_t n_chk;
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void dump_enter_pool(targets_dump *d, const target_pool *p)
{
    free(d->job);
    d->job = xstrdup(p->job);
    d->job_done = false;
    d->have_last = false;
    d->dgen = p->dropped_gen;
    d->didx = 0;
    d->n_seen = 0;
    free(d->chk);
    free(d->chk_used);
    d->chk = NULL;
    d->chk_used = NULL;
    d->n_chk = 0;
}

/* The pool to list from now in this phase (entering it when it is a new one), NULL when none is left. */
static const target_pool *dump_pool(targets_dump *d)
{
    const target_manager *tm = d->api->tm;
    size_t np = targets_n_pools(tm), lo = 0;
    if (d->job) {
        lo = targets_pool_lower_bound(tm, d->job);
        if (lo < np && strcmp(targets_pool_at(tm, lo)->job, d->job) == 0) {
            if (!d->job_done)
                return targets_pool_at(tm, lo);
            lo++;
        }
        /* else the pool went away meanwhile: go on with the next job name */
    }
    for (; lo < np; lo++) {
        const target_pool *p = targets_pool_at(tm, lo);
        if (d->pool_filter && strcmp(p->job, d->pool_filter) != 0)
            continue;
        dump_enter_pool(d, p);
        return p;
    }
    return NULL;
}

static void fill_active(targets_dump *d, const target_pool *p, strbuf *out, size_t start)
{
    /* the first target after the last one listed */
    size_t j = d->have_last ? targets_active_after(p, d->last_url.buf, d->last_hash) : 0;
    const active_target *last = NULL;
    for (; j < p->n_active && out->len - start < TARGETS_API_PAGE; j++) {
        if (!d->first)
            strbuf_putc(out, ',');
        d->first = false;
        last = p->active[j];
        render_active(d->api, p, last, out);
    }
    if (last) {
        strbuf_reset(&d->last_url);
        strbuf_puts(&d->last_url, last->t.url ? last->t.url : "");
        d->last_hash = last->t.hash;
        d->have_last = true;
    }
    if (j == p->n_active)
        d->job_done = true;
}

/* true when h is one of the hashes listed before the pool's dropped list was rebuilt (used up once). */
static bool dropped_listed(targets_dump *d, uint64_t h)
{
    size_t lo = 0, hi = d->n_chk;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->chk[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < d->n_chk && d->chk[lo] == h; lo++) {
        if (!d->chk_used[lo]) {
            d->chk_used[lo] = true;
            return true;
        }
    }
    return false;
}

static void fill_dropped(targets_dump *d, const target_pool *p, strbuf *out, size_t start)
{
    if (p->dropped_gen != d->dgen) {
        /* Rebuilt since the last page: the positions no longer hold. Start the pool's list over. */
        free(d->chk);
        free(d->chk_used);
        d->n_chk = d->n_seen;
        d->chk = xcalloc(d->n_chk + 1, sizeof *d->chk);
        d->chk_used = xcalloc(d->n_chk + 1, sizeof *d->chk_used);
        if (d->n_seen)
            memcpy(d->chk, d->seen, d->n_seen * sizeof *d->seen);
        qsort(d->chk, d->n_chk, sizeof *d->chk, cmp_u64);
        d->dgen = p->dropped_gen;
        d->didx = 0;
    }
    while (d->didx < p->n_dropped && out->len - start < TARGETS_API_PAGE) {
        const dropped_target *dt = &p->dropped[d->didx++];
        uint64_t h = targets_dropped_discovered_hash(p, dt);
        if (d->n_chk && dropped_listed(d, h))
            continue;
        if (d->n_seen == d->cap_seen) {
            d->cap_seen = d->cap_seen ? d->cap_seen * 2 : 64;
            d->seen = xrealloc(d->seen, d->cap_seen * sizeof *d->seen);
        }
        d->seen[d->n_seen++] = h;
        if (!d->first)
            strbuf_putc(out, ',');
        d->first = false;
        strbuf_puts(out, "{\"discoveredLabels\":{");
        api_json_labels w = {out, false};
        targets_dropped_discovered_each(p, dt, api_json_label, &w);
        strbuf_puts(out, "},\"scrapePool\":");
        strbuf_json_string(out, p->job);
        strbuf_putc(out, '}');
    }
    if (d->didx >= p->n_dropped)
        d->job_done = true;
}

targets_dump *targets_dump_new(targets_api *api, const char *state, const char *scrape_pool, strbuf *out)
{
    if (!state)
        state = "";
    bool any = !*state || strcasecmp(state, "any") == 0;
    targets_dump *d = xcalloc(1, sizeof *d);
    d->api = api;
    d->show_active = any || strcasecmp(state, "active") == 0;
    d->show_dropped = any || strcasecmp(state, "dropped") == 0;
    d->pool_filter = scrape_pool && *scrape_pool ? xstrdup(scrape_pool) : NULL;
    d->first = true;
    strbuf_init(&d->last_url);
    strbuf_puts(out, "{\"status\":\"success\",\"data\":{\"activeTargets\":[");
    return d;
}

int targets_dump_fill(targets_dump *d, strbuf *out)
{
    size_t start = out->len;
    target_manager *tm = d->api->tm;
    targets_read_begin(tm);
    while (d->phase != TD_DONE && out->len - start < TARGETS_API_PAGE) {
        if (d->phase == TD_COUNTS) {
            strbuf_puts(out, "],\"droppedTargetCounts\":");
            if (d->show_dropped) {
                /* Every pool, unfiltered, as Prometheus' TargetsDroppedCounts(). */
                strbuf_putc(out, '{');
                for (size_t i = 0; i < targets_n_pools(tm); i++) {
                    const target_pool *p = targets_pool_at(tm, i);
                    if (i)
                        strbuf_putc(out, ',');
                    strbuf_json_string(out, p->job);
                    strbuf_printf(out, ":%zu", p->dropped_count);
                }
                strbuf_putc(out, '}');
            } else {
                strbuf_puts(out, "null");
            }
            strbuf_puts(out, "}}");
            d->phase = TD_DONE;
            break;
        }
        bool active = d->phase == TD_ACTIVE;
        const target_pool *p = (active ? d->show_active : d->show_dropped) ? dump_pool(d) : NULL;
        if (!p) {
            if (active)
                strbuf_puts(out, "],\"droppedTargets\":[");
            d->phase++;
            d->first = true;
            free(d->job);
            d->job = NULL;
            d->job_done = false;
            continue;
        }
        if (active)
            fill_active(d, p, out, start);
        else
            fill_dropped(d, p, out, start);
    }
    targets_read_end(tm);
    return d->phase == TD_DONE ? 0 : 1;
}

void targets_dump_free(targets_dump *d)
{
    if (!d)
        return;
    free(d->pool_filter);
    free(d->job);
    strbuf_free(&d->last_url);
    free(d->seen);
    free(d->chk);
    free(d->chk_used);
    free(d);
}

void targets_api_render(targets_api *api, const char *state, const char *scrape_pool, strbuf *out)
{
    targets_dump *d = targets_dump_new(api, state, scrape_pool, out);
    while (targets_dump_fill(d, out) == 1)
        ;
    targets_dump_free(d);
}

/* ---- relabel_steps ---- */

void targets_api_rule_json(strbuf *out, const relabel_rule *r)
{
    strbuf_putc(out, '{');
    if (r->n_source_labels) {
        strbuf_puts(out, "\"source_labels\":[");
        for (size_t i = 0; i < r->n_source_labels; i++) {
            if (i)
                strbuf_putc(out, ',');
            strbuf_json_string(out, r->source_labels[i]);
        }
        strbuf_puts(out, "],");
    }
    strbuf_puts(out, "\"separator\":");
    strbuf_json_string(out, r->separator ? r->separator : ";");
    strbuf_puts(out, ",\"regex\":");
    strbuf_json_string(out, r->regex ? r->regex : "(.*)");
    if (r->modulus)
        strbuf_printf(out, ",\"modulus\":%llu", (unsigned long long)r->modulus);
    if (r->target_label && *r->target_label) {
        strbuf_puts(out, ",\"target_label\":");
        strbuf_json_string(out, r->target_label);
    }
    strbuf_puts(out, ",\"replacement\":");
    strbuf_json_string(out, r->replacement ? r->replacement : "$1");
    strbuf_puts(out, ",\"action\":");
    strbuf_json_string(out, relabel_action_name(r->action));
    strbuf_putc(out, '}');
}

typedef struct step_ctx {
    strbuf *out;
    const relabel_rule *rules;
    size_t emitted;
} step_ctx;

static void emit_step(step_ctx *c, size_t i, const labelset *after, bool keep)
{
    if (c->emitted)
        strbuf_putc(c->out, ',');
    strbuf_puts(c->out, "{\"rule\":");
    targets_api_rule_json(c->out, &c->rules[i]);
    strbuf_puts(c->out, ",\"output\":");
    if (keep && after) {
        labelset_write_json(c->out, after);
    } else {
        strbuf_puts(c->out, "{}");
    }
    strbuf_printf(c->out, ",\"keep\":%s}", keep ? "true" : "false");
    c->emitted++;
}

static void on_step(void *ctx, size_t rule_index, const labelset *after, bool keep)
{
    step_ctx *c = ctx;
    /* Steps arrive in order; fill any gap defensively so that indices stay aligned. */
    while (c->emitted < rule_index)
        emit_step(c, c->emitted, NULL, false);
    if (c->emitted == rule_index)
        emit_step(c, rule_index, after, keep);
}

int targets_api_render_relabel_steps(targets_api *api, const char *scrape_pool, const char *labels_json,
                                     strbuf *out, char *err, size_t errlen)
{
    if (!scrape_pool || !*scrape_pool) {
        snprintf(err, errlen, "no scrapePool parameter provided");
        return -1;
    }
    if (!labels_json || !*labels_json) {
        snprintf(err, errlen, "no labels parameter provided");
        return -1;
    }
    json_error_t jerr;
    json_t *root = json_loads(labels_json, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) {
        snprintf(err, errlen, "error parsing labels: %s", jerr.text);
        return -1;
    }
    labelset ls;
    labelset_init(&ls);
    if (!json_is_object(root) && !json_is_null(root)) {
        snprintf(err, errlen, "error parsing labels: json: cannot unmarshal %s into Go value of type labels.Labels",
                 json_is_array(root) ? "array" : json_is_string(root) ? "string" : json_is_number(root) ? "number" : "bool");
        json_decref(root);
        return -1;
    }
    const char *key;
    json_t *val;
    if (json_is_object(root)) {
        json_object_foreach(root, key, val)
        {
            if (!json_is_string(val)) {
                snprintf(err, errlen, "error parsing labels: json: cannot unmarshal non-string value of label %.100s into Go value of type string", key);
                json_decref(root);
                labelset_free(&ls);
                return -1;
            }
            labelset_set(&ls, key, json_string_value(val));
        }
    }
    json_decref(root);

    targets_read_begin(api->tm);
    const target_pool *p = targets_pool_find(api->tm, scrape_pool);
    if (!p || !p->sc) {
        targets_read_end(api->tm);
        labelset_free(&ls);
        snprintf(err, errlen, "error retrieving scrape config: scrape pool \"%.200s\" not found", scrape_pool);
        return -1;
    }
    const scrape_config *sc = p->sc;
    strbuf_puts(out, "{\"status\":\"success\",\"data\":{\"steps\":[");
    step_ctx c = {out, sc->relabel_configs, 0};
    relabel_apply_steps(sc->relabel_configs, sc->n_relabel_configs, &ls, on_step, &c);
    /* After a drop Prometheus still lists every remaining rule, with keep=false and no labels. */
    while (c.emitted < sc->n_relabel_configs)
        emit_step(&c, c.emitted, NULL, false);
    strbuf_puts(out, "]}}");
    targets_read_end(api->tm);
    labelset_free(&ls);
    return 0;
}

/* ---- handlers ---- */

static int targets_stream(void *ctx, strbuf *out)
{
    return targets_dump_fill(ctx, out);
}

static void targets_stream_free(void *ctx)
{
    targets_dump_free(ctx);
}

static void h_targets(void *ctx, const api_request *req, api_response *resp)
{
    targets_api *api = ctx;
    api_json_ok(resp);
    targets_dump *d = targets_dump_new(api, api_request_query(req, "state"), api_request_query(req, "scrapePool"),
                                       &resp->body);
    /* The first page now; the rest streamed (a small answer goes out whole, with a Content-Length). */
    if (targets_dump_fill(d, &resp->body) == 0) {
        targets_dump_free(d);
        return;
    }
    api_response_stream(resp, targets_stream, d, targets_stream_free);
}

static void h_relabel_steps(void *ctx, const api_request *req, api_response *resp)
{
    targets_api *api = ctx;
    char err[512];
    api_json_ok(resp);
    if (targets_api_render_relabel_steps(api, api_request_query(req, "scrapePool"),
                                         api_request_query(req, "labels"), &resp->body, err, sizeof err) != 0)
        api_json_error(resp, "bad_data", err);
}

static void h_scrape_pools(void *ctx, const api_request *req, api_response *resp)
{
    (void)req;
    targets_api *api = ctx;
    api_json_ok(resp);
    strbuf_puts(&resp->body, "{\"status\":\"success\",\"data\":{\"scrapePools\":[");
    targets_read_begin(api->tm);
    for (size_t i = 0; i < targets_n_pools(api->tm); i++) {
        if (i)
            strbuf_putc(&resp->body, ',');
        strbuf_json_string(&resp->body, targets_pool_at(api->tm, i)->job);
    }
    targets_read_end(api->tm);
    strbuf_puts(&resp->body, "]}}");
}

void targets_api_register(targets_api *api, http_server *s)
{
    /* Prometheus accepts GET and POST (form values) for its API; lookout's are read-only GETs. */
    http_server_route(s, "GET", "/api/v1/targets", false, h_targets, api);
    http_server_route(s, "GET", "/api/v1/targets/relabel_steps", false, h_relabel_steps, api);
    http_server_route(s, "GET", "/api/v1/scrape_pools", false, h_scrape_pools, api);
}
