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

static void render_active(targets_api *api, const target_pool *p, const active_target *t, strbuf *out)
{
    target_state st;
    targets_state_get(p, t, &st);
    labelset pub;
    target_public_labels(&t->t.labels, &pub);
    labelset disc;
    targets_active_discovered(p, t, &disc);
    strbuf_puts(out, "{\"discoveredLabels\":");
    labelset_write_json(out, &disc);
    labelset_free(&disc);
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

void targets_api_render(targets_api *api, const char *state, const char *scrape_pool, strbuf *out)
{
    if (!state)
        state = "";
    bool any = !*state || strcasecmp(state, "any") == 0;
    bool show_active = any || strcasecmp(state, "active") == 0;
    bool show_dropped = any || strcasecmp(state, "dropped") == 0;
    bool filter = scrape_pool && *scrape_pool;

    targets_read_begin(api->tm);
    size_t np = targets_n_pools(api->tm);
    strbuf_puts(out, "{\"status\":\"success\",\"data\":{\"activeTargets\":[");
    bool first = true;
    for (size_t i = 0; show_active && i < np; i++) {
        const target_pool *p = targets_pool_at(api->tm, i);
        if (filter && strcmp(p->job, scrape_pool) != 0)
            continue;
        for (size_t j = 0; j < p->n_active; j++) {
            if (!first)
                strbuf_putc(out, ',');
            first = false;
            render_active(api, p, p->active[j], out);
        }
    }
    strbuf_puts(out, "],\"droppedTargets\":[");
    first = true;
    for (size_t i = 0; show_dropped && i < np; i++) {
        const target_pool *p = targets_pool_at(api->tm, i);
        if (filter && strcmp(p->job, scrape_pool) != 0)
            continue;
        for (size_t j = 0; j < p->n_dropped; j++) {
            if (!first)
                strbuf_putc(out, ',');
            first = false;
            labelset disc;
            targets_dropped_discovered(p, &p->dropped[j], &disc);
            strbuf_puts(out, "{\"discoveredLabels\":");
            labelset_write_json(out, &disc);
            labelset_free(&disc);
            strbuf_puts(out, ",\"scrapePool\":");
            strbuf_json_string(out, p->job);
            strbuf_putc(out, '}');
        }
    }
    strbuf_puts(out, "],\"droppedTargetCounts\":");
    if (show_dropped) {
        /* Every pool, unfiltered, as Prometheus' TargetsDroppedCounts(). */
        strbuf_putc(out, '{');
        for (size_t i = 0; i < np; i++) {
            const target_pool *p = targets_pool_at(api->tm, i);
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
    targets_read_end(api->tm);
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

static void h_targets(void *ctx, const api_request *req, api_response *resp)
{
    targets_api *api = ctx;
    api_json_ok(resp);
    targets_api_render(api, api_request_query(req, "state"), api_request_query(req, "scrapePool"),
                       &resp->body);
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
