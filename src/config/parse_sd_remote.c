/* parse_sd_remote: dns_sd_configs, consul_sd_configs and http_sd_configs, with Prometheus' defaults,
 * validation and messages (discovery/dns, discovery/consul, discovery/http SDConfig.UnmarshalYAML), and each
 * kind's free, equal, copy and canonical text. The rows of parse_sd.c's table point here. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/internal.h"
#include "config/sd_remote.h"
#include "util/xalloc.h"
#include "util/strv.h"

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

/* Own keys followed by the HTTP client keys, NULL-terminated, in `out` (room for 64). */
static void keys_with_http(const char *const *own, const char **out)
{
    size_t n = 0;
    for (size_t i = 0; own[i]; i++)
        out[n++] = own[i];
    for (size_t i = 0; cfg_http_keys[i] && n < 63; i++)
        out[n++] = cfg_http_keys[i];
    out[n] = NULL;
}

/* ---- dns_sd_configs ---- */

int cfg_parse_dns_sd(cfg_ctx *c, const yaml_node_t *node, sd_config *sd)
{
    static const char *const keys[] = {"names", "refresh_interval", "type", "port", NULL};
    dns_sd_config *d = &sd->u.dns;
    d->type = DNS_SD_SRV;
    d->refresh_interval_ms = 30 * 1000;
    if (cfg_check_map(c, node, "dns_sd_config", keys) < 0)
        return -1;
    char *type = NULL;
    uint64_t port = 0;
    if (cfg_read_string_list(c, node, "names", &d->names, &d->n_names) < 0 ||
        cfg_read_duration(c, node, "refresh_interval", &d->refresh_interval_ms) < 0 ||
        cfg_read_string(c, node, "type", &type) < 0 || cfg_read_uint(c, node, "port", &port) < 0) {
        free(type);
        return -1;
    }
    if (port > 65535) {
        free(type);
        return cfg_error(c, cfg_get(c, node, "port"), "invalid port %llu in dns_sd_config (expected 1-65535)",
                         (unsigned long long)port);
    }
    d->port = (int)port;
    if (d->n_names == 0) {
        free(type);
        return cfg_error(c, node, "DNS-SD config must contain at least one SRV record name (expected names: [NAME, ...])");
    }
    int rc = 0;
    if (!type || !strcasecmp(type, "SRV"))
        d->type = DNS_SD_SRV;
    else if (!strcasecmp(type, "A"))
        d->type = DNS_SD_A;
    else if (!strcasecmp(type, "AAAA"))
        d->type = DNS_SD_AAAA;
    else if (!strcasecmp(type, "MX"))
        d->type = DNS_SD_MX;
    else
        rc = cfg_error(c, cfg_get(c, node, "type"), "invalid DNS-SD records type %s (expected SRV, A, AAAA or MX)",
                       type);
    free(type);
    if (rc == 0 && d->type != DNS_SD_SRV && d->port == 0)
        rc = cfg_error(c, node, "a port is required in DNS-SD configs for all record types except SRV");
    return rc;
}

void cfg_free_dns_sd(sd_config *sd)
{
    strv_free(sd->u.dns.names, sd->u.dns.n_names);
}

bool cfg_equal_dns_sd(const sd_config *a, const sd_config *b)
{
    const dns_sd_config *x = &a->u.dns, *y = &b->u.dns;
    return x->type == y->type && x->port == y->port && x->refresh_interval_ms == y->refresh_interval_ms &&
           strv_equal(x->names, x->n_names, y->names, y->n_names);
}

void cfg_copy_dns_sd(sd_config *dst, const sd_config *src)
{
    dst->u.dns = src->u.dns;
    dst->u.dns.names = strv_copy(src->u.dns.names, src->u.dns.n_names);
}

void cfg_canon_dns_sd(strbuf *sb, const sd_config *sd, bool with_secrets)
{
    (void)with_secrets;
    const dns_sd_config *d = &sd->u.dns;
    cfg_canon_strv(sb, "names", d->names, d->n_names);
    cfg_canon_int(sb, "type", d->type);
    cfg_canon_int(sb, "port", d->port);
    cfg_canon_int(sb, "refresh_ms", d->refresh_interval_ms);
}

/* ---- consul_sd_configs ---- */

static int cmp_meta(const void *a, const void *b)
{
    return strcmp(((char *const *)a)[0], ((char *const *)b)[0]);
}

static int read_node_meta(cfg_ctx *c, const yaml_node_t *node, consul_sd_config *cc)
{
    yaml_node_t *v = cfg_get(c, node, "node_meta");
    if (!v)
        return 0;
    if (v->type != YAML_MAPPING_NODE)
        return cfg_error(c, v, "expected a mapping of strings for node_meta, got %s", cfg_kind_name(v));
    size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    char **pairs = calloc(n ? 2 * n : 1, sizeof(char *)); /* key, value, key, value... for sorting */
    if (!pairs)
        abort();
    size_t k = 0;
    int rc = 0;
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(c->doc, p->value);
        const char *key = cfg_scalar(kn);
        if (!key) {
            rc = cfg_error(c, kn, "expected a string key in node_meta, got %s", cfg_kind_name(kn));
            break;
        }
        const char *val = "";
        if (!cfg_is_null(vn)) {
            if (vn->type != YAML_SCALAR_NODE) {
                rc = cfg_error(c, vn, "expected a string value for node_meta \"%s\", got %s", key, cfg_kind_name(vn));
                break;
            }
            val = cfg_scalar(vn);
        }
        for (size_t i = 0; i < k; i += 2)
            if (!strcmp(pairs[i], key)) {
                rc = cfg_error(c, kn, "duplicate key \"%s\" in node_meta", key);
                break;
            }
        if (rc)
            break;
        pairs[k++] = xstrdup(key);
        pairs[k++] = xstrdup(val);
    }
    if (rc) {
        strv_free(pairs, k);
        return -1;
    }
    qsort(pairs, k / 2, 2 * sizeof(char *), cmp_meta);
    cc->n_node_meta = k / 2;
    cc->node_meta_keys = calloc(cc->n_node_meta ? cc->n_node_meta : 1, sizeof(char *));
    cc->node_meta_values = calloc(cc->n_node_meta ? cc->n_node_meta : 1, sizeof(char *));
    if (!cc->node_meta_keys || !cc->node_meta_values)
        abort();
    for (size_t i = 0; i < cc->n_node_meta; i++) {
        cc->node_meta_keys[i] = pairs[2 * i];
        cc->node_meta_values[i] = pairs[2 * i + 1];
    }
    free(pairs);
    return 0;
}

static bool blank(const char *s)
{
    if (!s)
        return true;
    while (*s && isspace((unsigned char)*s))
        s++;
    return *s == '\0';
}

static void drop_empty(char **s)
{
    if (*s && !**s) {
        free(*s);
        *s = NULL;
    }
}

int cfg_parse_consul_sd(cfg_ctx *c, const yaml_node_t *node, sd_config *sd)
{
    static const char *const own[] = {"server", "path_prefix", "token", "datacenter", "namespace", "partition",
                                      "tag_separator", "scheme", "username", "password", "allow_stale",
                                      "refresh_interval", "services", "tags", "node_meta", NULL};
    const char *keys[64];
    keys_with_http(own, keys);
    consul_sd_config *cc = &sd->u.consul;
    http_client_config_init(&cc->http);
    cc->allow_stale = true;
    cc->refresh_interval_ms = 30 * 1000;
    if (cfg_check_map(c, node, "consul_sd_config", keys) < 0)
        return -1;
    char *username = NULL, *password = NULL;
    int rc = -1;
    if (cfg_read_string(c, node, "server", &cc->server) < 0 || cfg_read_string(c, node, "path_prefix", &cc->path_prefix) < 0 ||
        cfg_read_string(c, node, "token", &cc->token) < 0 || cfg_read_string(c, node, "datacenter", &cc->datacenter) < 0 ||
        cfg_read_string(c, node, "namespace", &cc->ns) < 0 || cfg_read_string(c, node, "partition", &cc->partition) < 0 ||
        cfg_read_string(c, node, "tag_separator", &cc->tag_separator) < 0 ||
        cfg_read_string(c, node, "scheme", &cc->scheme) < 0 || cfg_read_string(c, node, "username", &username) < 0 ||
        cfg_read_string(c, node, "password", &password) < 0 ||
        cfg_read_bool(c, node, "allow_stale", &cc->allow_stale) < 0 ||
        cfg_read_duration(c, node, "refresh_interval", &cc->refresh_interval_ms) < 0 ||
        cfg_read_string_list(c, node, "services", &cc->services, &cc->n_services) < 0 ||
        cfg_read_string_list(c, node, "tags", &cc->tags, &cc->n_tags) < 0 || read_node_meta(c, node, cc) < 0 ||
        cfg_parse_http(c, node, &cc->http) < 0)
        goto out;
    /* yaml "omitempty": an empty string means the default */
    if (!cc->server || !*cc->server) {
        free(cc->server);
        cc->server = xstrdup("localhost:8500");
    }
    if (!cc->scheme || !*cc->scheme) {
        free(cc->scheme);
        cc->scheme = xstrdup("http");
    }
    if (!cc->tag_separator || !*cc->tag_separator) {
        free(cc->tag_separator);
        cc->tag_separator = xstrdup(",");
    }
    drop_empty(&cc->path_prefix);
    drop_empty(&cc->token);
    drop_empty(&cc->datacenter);
    drop_empty(&cc->ns);
    drop_empty(&cc->partition);
    if (blank(cc->server)) {
        cfg_error(c, cfg_get(c, node, "server"), "consul SD configuration requires a server address");
        goto out;
    }
    if (strcmp(cc->scheme, "http") != 0 && strcmp(cc->scheme, "https") != 0) {
        cfg_error(c, cfg_get(c, node, "scheme"), "invalid scheme \"%s\" in consul_sd_config (expected http or https)",
                  cc->scheme);
        goto out;
    }
    if ((username && *username) || (password && *password)) {
        if (cc->http.has_basic_auth) {
            cfg_error(c, node, "at most one of consul SD configuration username and password and basic auth can be configured");
            goto out;
        }
        cc->http.has_basic_auth = true;
        cc->http.basic_auth_username = username ? username : xstrdup("");
        cc->http.basic_auth_password = password;
        username = password = NULL;
    }
    if (cc->token && cc->http.has_authorization) {
        cfg_error(c, node, "at most one of consul SD token, authorization, or oauth2 can be configured");
        goto out;
    }
    rc = 0;
out:
    free(username);
    free(password);
    return rc;
}

void cfg_free_consul_sd(sd_config *sd)
{
    consul_sd_config *cc = &sd->u.consul;
    free(cc->server);
    free(cc->path_prefix);
    if (cc->token)
        explicit_bzero(cc->token, strlen(cc->token));
    free(cc->token);
    free(cc->datacenter);
    free(cc->ns);
    free(cc->partition);
    free(cc->scheme);
    free(cc->tag_separator);
    strv_free(cc->services, cc->n_services);
    strv_free(cc->tags, cc->n_tags);
    strv_free(cc->node_meta_keys, cc->n_node_meta);
    strv_free(cc->node_meta_values, cc->n_node_meta);
    http_client_config_release(&cc->http);
}

bool cfg_equal_consul_sd(const sd_config *a, const sd_config *b)
{
    const consul_sd_config *x = &a->u.consul, *y = &b->u.consul;
    return str_eq(x->server, y->server) && str_eq(x->path_prefix, y->path_prefix) && str_eq(x->token, y->token) &&
           str_eq(x->datacenter, y->datacenter) && str_eq(x->ns, y->ns) && str_eq(x->partition, y->partition) &&
           str_eq(x->scheme, y->scheme) && str_eq(x->tag_separator, y->tag_separator) &&
           x->allow_stale == y->allow_stale && x->refresh_interval_ms == y->refresh_interval_ms &&
           strv_equal(x->services, x->n_services, y->services, y->n_services) &&
           strv_equal(x->tags, x->n_tags, y->tags, y->n_tags) &&
           strv_equal(x->node_meta_keys, x->n_node_meta, y->node_meta_keys, y->n_node_meta) &&
           strv_equal(x->node_meta_values, x->n_node_meta, y->node_meta_values, y->n_node_meta) &&
           http_client_config_equal(&x->http, &y->http);
}

void cfg_copy_consul_sd(sd_config *dst, const sd_config *src)
{
    const consul_sd_config *s = &src->u.consul;
    consul_sd_config *d = &dst->u.consul;
    *d = *s;
    d->server = xstrdup(s->server);
    d->path_prefix = xstrdup(s->path_prefix);
    d->token = xstrdup(s->token);
    d->datacenter = xstrdup(s->datacenter);
    d->ns = xstrdup(s->ns);
    d->partition = xstrdup(s->partition);
    d->scheme = xstrdup(s->scheme);
    d->tag_separator = xstrdup(s->tag_separator);
    d->services = strv_copy(s->services, s->n_services);
    d->tags = strv_copy(s->tags, s->n_tags);
    d->node_meta_keys = strv_copy(s->node_meta_keys, s->n_node_meta);
    d->node_meta_values = strv_copy(s->node_meta_values, s->n_node_meta);
    http_client_config_copy(&d->http, &s->http);
}

void cfg_canon_consul_sd(strbuf *sb, const sd_config *sd, bool with_secrets)
{
    const consul_sd_config *c = &sd->u.consul;
    cfg_canon_str(sb, "server", c->server);
    cfg_canon_str(sb, "path_prefix", c->path_prefix);
    cfg_canon_secret(sb, "token", c->token, with_secrets);
    cfg_canon_str(sb, "dc", c->datacenter);
    cfg_canon_str(sb, "ns", c->ns);
    cfg_canon_str(sb, "partition", c->partition);
    cfg_canon_str(sb, "scheme", c->scheme);
    cfg_canon_str(sb, "tag_sep", c->tag_separator);
    cfg_canon_int(sb, "stale", c->allow_stale);
    cfg_canon_int(sb, "refresh_ms", c->refresh_interval_ms);
    cfg_canon_strv(sb, "services", c->services, c->n_services);
    cfg_canon_strv(sb, "tags", c->tags, c->n_tags);
    cfg_canon_strv(sb, "node_meta_keys", c->node_meta_keys, c->n_node_meta);
    cfg_canon_strv(sb, "node_meta_values", c->node_meta_values, c->n_node_meta);
    cfg_canon_http(sb, &c->http, with_secrets);
}

/* ---- http_sd_configs ---- */

/* What Prometheus checks with Go's url.Parse: scheme http or https (case-insensitive) and a host. */
static const char *http_sd_url_problem(const char *url)
{
    const char *colon = strchr(url, ':');
    if (!colon || colon == url)
        return "URL scheme must be 'http' or 'https'";
    size_t sl = (size_t)(colon - url);
    if (!((sl == 4 && !strncasecmp(url, "http", 4)) || (sl == 5 && !strncasecmp(url, "https", 5))))
        return "URL scheme must be 'http' or 'https'";
    const char *rest = colon + 1;
    if (strncmp(rest, "//", 2) != 0)
        return "host is missing in URL";
    rest += 2;
    size_t hl = strcspn(rest, "/?#");
    const char *at = memchr(rest, '@', hl);
    if (at)
        hl -= (size_t)(at + 1 - rest);
    if (hl == 0)
        return "host is missing in URL";
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == ' ')
            return "invalid character in URL";
    return NULL;
}

int cfg_parse_http_sd(cfg_ctx *c, const yaml_node_t *node, sd_config *sd)
{
    static const char *const own[] = {"url", "refresh_interval", NULL};
    const char *keys[64];
    keys_with_http(own, keys);
    http_sd_config *h = &sd->u.http;
    http_client_config_init(&h->http);
    h->refresh_interval_ms = 60 * 1000;
    if (cfg_check_map(c, node, "http_sd_config", keys) < 0)
        return -1;
    if (cfg_read_string(c, node, "url", &h->url) < 0 ||
        cfg_read_duration(c, node, "refresh_interval", &h->refresh_interval_ms) < 0 ||
        cfg_parse_http(c, node, &h->http) < 0)
        return -1;
    if (!h->url || !*h->url)
        return cfg_error(c, node, "URL is missing (expected url: http://HOST/PATH)");
    const char *problem = http_sd_url_problem(h->url);
    if (problem)
        return cfg_error(c, cfg_get(c, node, "url"), "%s: \"%s\"", problem, h->url);
    return 0;
}

void cfg_free_http_sd(sd_config *sd)
{
    free(sd->u.http.url);
    http_client_config_release(&sd->u.http.http);
}

bool cfg_equal_http_sd(const sd_config *a, const sd_config *b)
{
    return str_eq(a->u.http.url, b->u.http.url) && a->u.http.refresh_interval_ms == b->u.http.refresh_interval_ms &&
           http_client_config_equal(&a->u.http.http, &b->u.http.http);
}

void cfg_copy_http_sd(sd_config *dst, const sd_config *src)
{
    dst->u.http = src->u.http;
    dst->u.http.url = xstrdup(src->u.http.url);
    http_client_config_copy(&dst->u.http.http, &src->u.http.http);
}

void cfg_canon_http_sd(strbuf *sb, const sd_config *sd, bool with_secrets)
{
    cfg_canon_str(sb, "url", sd->u.http.url);
    cfg_canon_int(sb, "refresh_ms", sd->u.http.refresh_interval_ms);
    cfg_canon_http(sb, &sd->u.http.http, with_secrets);
}
