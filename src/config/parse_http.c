/* parse_http: Prometheus' HTTPClientConfig (prometheus/common config/http_config.go) and TLSConfig, with the
 * same mutual-exclusion rules and messages, bearer_token folded into authorization as Validate() does, and
 * relative *_file paths joined to the config file's directory (SetDirectory); and the type's whole
 * lifecycle: init, copy, equal, release (the one destructor, wiping secrets) and its canonical text. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/internal.h"
#include "util/xalloc.h"

const char *const cfg_http_keys[] = {"basic_auth", "authorization", "oauth2", "bearer_token", "bearer_token_file",
                                     "proxy_url", "no_proxy", "proxy_from_environment", "proxy_connect_header",
                                     "tls_config", "follow_redirects", "enable_http2", NULL};

void http_client_config_init(http_client_config *h)
{
    memset(h, 0, sizeof *h);
    h->follow_redirects = true;
    h->enable_http2 = true;
}

static int join_file(cfg_ctx *c, char **path)
{
    if (!*path)
        return 0;
    char *j = cfg_join_dir(c, *path);
    free(*path);
    *path = j;
    return 0;
}

static bool tls_version_valid(const char *s)
{
    return strcmp(s, "TLS10") == 0 || strcmp(s, "TLS11") == 0 || strcmp(s, "TLS12") == 0 || strcmp(s, "TLS13") == 0;
}

static int parse_tls(cfg_ctx *c, const yaml_node_t *map, tls_config *t)
{
    static const char *const keys[] = {"ca", "ca_file", "cert", "cert_file", "key", "key_file", "server_name",
                                       "insecure_skip_verify", "min_version", "max_version", NULL};
    int r = cfg_check_map(c, map, "tls_config", keys);
    if (r)
        return r < 0 ? -1 : 0;
    char *max_version = NULL;
    if (cfg_read_string(c, map, "ca", &t->ca) || cfg_read_string(c, map, "ca_file", &t->ca_file) ||
        cfg_read_string(c, map, "cert", &t->cert) || cfg_read_string(c, map, "cert_file", &t->cert_file) ||
        cfg_read_string(c, map, "key", &t->key) || cfg_read_string(c, map, "key_file", &t->key_file) ||
        cfg_read_string(c, map, "server_name", &t->server_name) ||
        cfg_read_bool(c, map, "insecure_skip_verify", &t->insecure_skip_verify) ||
        cfg_read_string(c, map, "min_version", &t->min_version) ||
        cfg_read_string(c, map, "max_version", &max_version))
        return free(max_version), -1;
    if (t->min_version && !tls_version_valid(t->min_version)) {
        free(max_version);
        return cfg_error(c, cfg_get(c, map, "min_version"), "unknown TLS version: %s (expected TLS10, TLS11, TLS12 or TLS13)",
                         t->min_version);
    }
    if (max_version && !tls_version_valid(max_version)) {
        cfg_error(c, cfg_get(c, map, "max_version"), "unknown TLS version: %s (expected TLS10, TLS11, TLS12 or TLS13)",
                  max_version);
        free(max_version);
        return -1;
    }
    if (max_version && t->min_version && strcmp(max_version, t->min_version) < 0) {
        free(max_version);
        return cfg_error(c, map,
                         "tls_config.max_version must be greater than or equal to tls_config.min_version if both are "
                         "specified");
    }
    free(max_version);
    /* Later prometheus/common versions check these pairs at load time; 2.42 fails when the client is built. */
    if (t->ca && t->ca_file)
        return cfg_error(c, map, "at most one of ca and ca_file must be configured");
    if (t->cert && t->cert_file)
        return cfg_error(c, map, "at most one of cert and cert_file must be configured");
    if (t->key && t->key_file)
        return cfg_error(c, map, "at most one of key and key_file must be configured");
    bool has_cert = t->cert || t->cert_file, has_key = t->key || t->key_file;
    if (has_cert && !has_key)
        return cfg_error(c, map, "client cert file %s specified without client key file (expected key_file or key)",
                         t->cert_file ? t->cert_file : "(inline cert)");
    if (has_key && !has_cert)
        return cfg_error(c, map, "client key file %s specified without client cert file (expected cert_file or cert)",
                         t->key_file ? t->key_file : "(inline key)");
    join_file(c, &t->ca_file);
    join_file(c, &t->cert_file);
    join_file(c, &t->key_file);
    return 0;
}

/* What Go's url.Parse plus an HTTP proxy needs: scheme://host[:port][/path], no spaces or bad escapes. */
static const char *proxy_url_problem(const char *u)
{
    const char *p = u;
    if (!isalpha((unsigned char)*p))
        return "missing protocol scheme";
    while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
        p++;
    if (strncmp(p, "://", 3) != 0)
        return "missing protocol scheme";
    for (const char *q = u; *q; q++) {
        if ((unsigned char)*q <= 0x20 || *q == 0x7f)
            return "invalid control character or space in URL";
        if (*q == '%' && (!isxdigit((unsigned char)q[1]) || !isxdigit((unsigned char)q[2])))
            return "invalid URL escape";
    }
    const char *host = p + 3;
    const char *at = NULL, *end = host;
    while (*end && *end != '/' && *end != '?' && *end != '#') {
        if (*end == '@')
            at = end;
        end++;
    }
    if (at)
        host = at + 1;
    if (host == end)
        return "missing host";
    const char *port = NULL;
    if (*host == '[') {
        const char *rb = memchr(host, ']', (size_t)(end - host));
        if (!rb)
            return "missing ']' in host";
        if (rb + 1 < end) {
            if (rb[1] != ':')
                return "invalid character after IPv6 host";
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(host, ':', (size_t)(end - host));
        if (colon)
            port = colon + 1;
    }
    if (port) {
        for (const char *q = port; q < end; q++)
            if (!isdigit((unsigned char)*q))
                return "invalid port";
    }
    return NULL;
}

int cfg_parse_http(cfg_ctx *c, const yaml_node_t *map, http_client_config *h)
{
    char *bearer = NULL, *bearer_file = NULL;
    yaml_node_t *ba = cfg_get(c, map, "basic_auth");
    yaml_node_t *az = cfg_get(c, map, "authorization");
    yaml_node_t *oa = cfg_get(c, map, "oauth2");
    int rc = -1;

    if (cfg_read_string(c, map, "bearer_token", &bearer) || cfg_read_string(c, map, "bearer_token_file", &bearer_file))
        goto out;
    if (bearer && !*bearer)
        free(bearer), bearer = NULL;
    if (bearer_file && !*bearer_file)
        free(bearer_file), bearer_file = NULL;

    if (ba) {
        static const char *const keys[] = {"username", "username_file", "password", "password_file", NULL};
        if (cfg_check_map(c, ba, "basic_auth", keys) < 0)
            goto out;
        h->has_basic_auth = true;
        char *username_file = NULL;
        if (cfg_read_string(c, ba, "username", &h->basic_auth_username) ||
            cfg_read_string(c, ba, "username_file", &username_file) ||
            cfg_read_string(c, ba, "password", &h->basic_auth_password) ||
            cfg_read_string(c, ba, "password_file", &h->basic_auth_password_file)) {
            free(username_file);
            goto out;
        }
        if (username_file) {
            cfg_warn(c, ba, "basic_auth username_file is not supported by lookout; ignored");
            free(username_file);
        }
        if (h->basic_auth_password && *h->basic_auth_password && h->basic_auth_password_file &&
            *h->basic_auth_password_file) {
            cfg_error(c, ba, "at most one of basic_auth password & password_file must be configured");
            goto out;
        }
        join_file(c, &h->basic_auth_password_file);
    }
    if (oa) {
        static const char *const keys[] = {"client_id", "client_secret", "client_secret_file", "scopes", "token_url",
                                           "endpoint_params", "tls_config", "proxy_url", "no_proxy",
                                           "proxy_from_environment", "proxy_connect_header", NULL};
        if (cfg_check_map(c, oa, "oauth2", keys) < 0)
            goto out;
    }
    if ((bearer || bearer_file) && (ba || oa)) {
        if (bearer && bearer_file)
            cfg_error(c, map, "at most one of bearer_token & bearer_token_file must be configured");
        else
            cfg_error(c, map, "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured");
        goto out;
    }
    if (bearer && bearer_file) {
        cfg_error(c, map, "at most one of bearer_token & bearer_token_file must be configured");
        goto out;
    }
    if (az) {
        static const char *const keys[] = {"type", "credentials", "credentials_file", NULL};
        if (cfg_check_map(c, az, "authorization", keys) < 0)
            goto out;
        if (bearer || bearer_file) {
            cfg_error(c, az, "authorization is not compatible with bearer_token & bearer_token_file");
            goto out;
        }
        h->has_authorization = true;
        if (cfg_read_string(c, az, "type", &h->authorization_type) ||
            cfg_read_string(c, az, "credentials", &h->authorization_credentials) ||
            cfg_read_string(c, az, "credentials_file", &h->authorization_credentials_file))
            goto out;
        if (h->authorization_credentials && *h->authorization_credentials && h->authorization_credentials_file &&
            *h->authorization_credentials_file) {
            cfg_error(c, az, "at most one of authorization credentials & credentials_file must be configured");
            goto out;
        }
        /* Trim as strings.TrimSpace; empty means Bearer. */
        char *t = h->authorization_type;
        if (t) {
            size_t a = 0, n = strlen(t);
            while (a < n && isspace((unsigned char)t[a]))
                a++;
            while (n > a && isspace((unsigned char)t[n - 1]))
                n--;
            memmove(t, t + a, n - a);
            t[n - a] = '\0';
        }
        if (!t || !*t) {
            free(t);
            h->authorization_type = strdup("Bearer");
        }
        if (strcasecmp(h->authorization_type, "basic") == 0) {
            cfg_error(c, az, "authorization type cannot be set to \"basic\", use \"basic_auth\" instead");
            goto out;
        }
        if (ba || oa) {
            cfg_error(c, az, "at most one of basic_auth, oauth2 & authorization must be configured");
            goto out;
        }
        join_file(c, &h->authorization_credentials_file);
    } else if (bearer || bearer_file) {
        h->has_authorization = true;
        h->authorization_type = strdup("Bearer");
        h->authorization_credentials = bearer;
        h->authorization_credentials_file = cfg_join_dir(c, bearer_file);
        bearer = NULL;
    }
    if (oa) {
        if (ba) {
            cfg_error(c, oa, "at most one of basic_auth, oauth2 & authorization must be configured");
            goto out;
        }
        cfg_warn(c, cfg_key_node(c, map, "oauth2"), "%s%s%soauth2 is not supported by lookout yet; requests are sent without it",
                 c->job ? "job " : "", c->job ? c->job : "", c->job ? ": " : "");
    }

    yaml_node_t *tls = cfg_get(c, map, "tls_config");
    if (tls && parse_tls(c, tls, &h->tls) < 0)
        goto out;

    if (cfg_read_string(c, map, "proxy_url", &h->proxy_url))
        goto out;
    if (h->proxy_url && !*h->proxy_url)
        free(h->proxy_url), h->proxy_url = NULL;
    if (h->proxy_url) {
        const char *problem = proxy_url_problem(h->proxy_url);
        if (problem) {
            cfg_error(c, cfg_get(c, map, "proxy_url"),
                      "invalid proxy_url \"%s\": %s (expected a URL such as http://proxy.example.com:3128)",
                      h->proxy_url, problem);
            goto out;
        }
    }
    yaml_node_t *pch = cfg_get(c, map, "proxy_connect_header");
    if (pch && !h->proxy_url) {
        cfg_error(c, pch, "if proxy_connect_header is configured proxy_url must also be configured");
        goto out;
    }
    char *no_proxy = NULL;
    bool from_env = false;
    if (cfg_read_string(c, map, "no_proxy", &no_proxy) || cfg_read_bool(c, map, "proxy_from_environment", &from_env)) {
        free(no_proxy);
        goto out;
    }
    bool has_no_proxy = no_proxy != NULL;
    free(no_proxy);
    if (pch || has_no_proxy || from_env)
        cfg_warn(c, pch ? pch : map, "no_proxy, proxy_from_environment and proxy_connect_header are accepted but not "
                                     "used by lookout");
    if (cfg_read_bool(c, map, "follow_redirects", &h->follow_redirects) ||
        cfg_read_bool(c, map, "enable_http2", &h->enable_http2))
        goto out;
    rc = 0;
out:
    free(bearer);
    free(bearer_file);
    return rc;
}

static void wipe(char *s)
{
    if (s)
        explicit_bzero(s, strlen(s));
}

void http_client_config_release(http_client_config *h)
{
    wipe(h->basic_auth_password);
    wipe(h->authorization_credentials);
    wipe(h->tls.key);
    free(h->basic_auth_username), free(h->basic_auth_password), free(h->basic_auth_password_file);
    free(h->authorization_type), free(h->authorization_credentials), free(h->authorization_credentials_file);
    free(h->proxy_url);
    tls_config *t = &h->tls;
    free(t->ca_file), free(t->cert_file), free(t->key_file), free(t->server_name);
    free(t->ca), free(t->cert), free(t->key), free(t->min_version);
    memset(h, 0, sizeof *h);
}

void http_client_config_copy(http_client_config *dst, const http_client_config *src)
{
    *dst = *src;
    dst->basic_auth_username = xstrdup(src->basic_auth_username);
    dst->basic_auth_password = xstrdup(src->basic_auth_password);
    dst->basic_auth_password_file = xstrdup(src->basic_auth_password_file);
    dst->authorization_type = xstrdup(src->authorization_type);
    dst->authorization_credentials = xstrdup(src->authorization_credentials);
    dst->authorization_credentials_file = xstrdup(src->authorization_credentials_file);
    dst->tls.ca_file = xstrdup(src->tls.ca_file);
    dst->tls.cert_file = xstrdup(src->tls.cert_file);
    dst->tls.key_file = xstrdup(src->tls.key_file);
    dst->tls.server_name = xstrdup(src->tls.server_name);
    dst->tls.ca = xstrdup(src->tls.ca);
    dst->tls.cert = xstrdup(src->tls.cert);
    dst->tls.key = xstrdup(src->tls.key);
    dst->tls.min_version = xstrdup(src->tls.min_version);
    dst->proxy_url = xstrdup(src->proxy_url);
}

void cfg_canon_http(strbuf *sb, const http_client_config *h, bool with_secrets)
{
    cfg_canon_int(sb, "basic", h->has_basic_auth);
    cfg_canon_str(sb, "user", h->basic_auth_username);
    cfg_canon_secret(sb, "pass", h->basic_auth_password, with_secrets);
    cfg_canon_str(sb, "pass_file", h->basic_auth_password_file);
    cfg_canon_int(sb, "authz", h->has_authorization);
    cfg_canon_str(sb, "authz_type", h->authorization_type);
    cfg_canon_secret(sb, "authz_cred", h->authorization_credentials, with_secrets);
    cfg_canon_str(sb, "authz_file", h->authorization_credentials_file);
    cfg_canon_str(sb, "ca_file", h->tls.ca_file);
    cfg_canon_str(sb, "cert_file", h->tls.cert_file);
    cfg_canon_str(sb, "key_file", h->tls.key_file);
    cfg_canon_str(sb, "server_name", h->tls.server_name);
    cfg_canon_str(sb, "ca", h->tls.ca);
    cfg_canon_str(sb, "cert", h->tls.cert);
    cfg_canon_secret(sb, "key", h->tls.key, with_secrets);
    cfg_canon_int(sb, "insecure", h->tls.insecure_skip_verify);
    cfg_canon_str(sb, "min_version", h->tls.min_version);
    cfg_canon_str(sb, "proxy", h->proxy_url);
    cfg_canon_int(sb, "redirects", h->follow_redirects);
    cfg_canon_int(sb, "http2", h->enable_http2);
}

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

bool http_client_config_equal(const http_client_config *a, const http_client_config *b)
{
    const tls_config *x = &a->tls, *y = &b->tls;
    return a->has_basic_auth == b->has_basic_auth && str_eq(a->basic_auth_username, b->basic_auth_username) &&
           str_eq(a->basic_auth_password, b->basic_auth_password) &&
           str_eq(a->basic_auth_password_file, b->basic_auth_password_file) &&
           a->has_authorization == b->has_authorization && str_eq(a->authorization_type, b->authorization_type) &&
           str_eq(a->authorization_credentials, b->authorization_credentials) &&
           str_eq(a->authorization_credentials_file, b->authorization_credentials_file) &&
           str_eq(a->proxy_url, b->proxy_url) && a->follow_redirects == b->follow_redirects &&
           a->enable_http2 == b->enable_http2 && str_eq(x->ca_file, y->ca_file) && str_eq(x->cert_file, y->cert_file) &&
           str_eq(x->key_file, y->key_file) && str_eq(x->server_name, y->server_name) && str_eq(x->ca, y->ca) &&
           str_eq(x->cert, y->cert) && str_eq(x->key, y->key) && x->insecure_skip_verify == y->insecure_skip_verify &&
           str_eq(x->min_version, y->min_version);
}
