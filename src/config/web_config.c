/* web_config: see web_config.h. Parsing reuses the strict YAML layer of the main configuration (unknown
 * and repeated keys are errors, like yaml.UnmarshalStrict); type names in messages are exporter-toolkit's
 * Go types (web.Config, web.TLSConfig, web.HTTPConfig) so the texts match what promtool prints. */
#include "config/web_config.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config/yaml_util.h"
#include "util/strv.h"
#include "util/xalloc.h"
#include "util/yaml_depth.h"

#define WEB_CONFIG_MAX_FILE (1u << 20)
#define WEB_PEM_MAX (1u << 20)

/* Go's tls.CipherSuites() (the ones Go considers secure) and the RSA key exchange suites it still knows. */
static const web_cipher_suite suites[] = {
    {"TLS_RSA_WITH_AES_128_CBC_SHA", "RSA", "AES-128-CBC", "SHA1"},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", "RSA", "AES-256-CBC", "SHA1"},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", "RSA", "AES-128-GCM", "AEAD"},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", "RSA", "AES-256-GCM", "AEAD"},
    {"TLS_AES_128_GCM_SHA256", NULL, "AES-128-GCM", "AEAD"},
    {"TLS_AES_256_GCM_SHA384", NULL, "AES-256-GCM", "AEAD"},
    {"TLS_CHACHA20_POLY1305_SHA256", NULL, "CHACHA20-POLY1305", "AEAD"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA", "AES-128-CBC", "SHA1"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA", "AES-256-CBC", "SHA1"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA", "AES-128-CBC", "SHA1"},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA", "AES-256-CBC", "SHA1"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA", "AES-128-GCM", "AEAD"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA", "AES-256-GCM", "AEAD"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA", "AES-128-GCM", "AEAD"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA", "AES-256-GCM", "AEAD"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA", "CHACHA20-POLY1305", "AEAD"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA", "CHACHA20-POLY1305", "AEAD"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA", "CHACHA20-POLY1305", "AEAD"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA", "CHACHA20-POLY1305", "AEAD"},
};

const web_cipher_suite *web_cipher_suite_find(const char *go_name)
{
    for (size_t i = 0; i < sizeof suites / sizeof *suites; i++)
        if (strcmp(suites[i].go_name, go_name) == 0)
            return &suites[i];
    return NULL;
}

const char *web_curve_gnutls_group(const char *go_name)
{
    static const char *const map[][2] = {{"CurveP256", "GROUP-SECP256R1"},
                                         {"CurveP384", "GROUP-SECP384R1"},
                                         {"CurveP521", "GROUP-SECP521R1"},
                                         {"X25519", "GROUP-X25519"}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strcmp(map[i][0], go_name) == 0)
            return map[i][1];
    return NULL;
}

static bool bcrypt_b64(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
           ch == '/';
}

int web_bcrypt_check(const char *h, char *err, size_t errlen)
{
    size_t n = strlen(h);
    if (n < 59) {
        snprintf(err, errlen, "crypto/bcrypt: hashedSecret too short to be a bcrypted password");
        return -1;
    }
    if (h[0] != '$') {
        snprintf(err, errlen, "crypto/bcrypt: bcrypt hashes must start with '$', but hashedSecret started with '%c'",
                 h[0]);
        return -1;
    }
    if (h[1] > '2') {
        snprintf(err, errlen,
                 "crypto/bcrypt: bcrypt algorithm version '%c' requested is newer than current version '2'", h[1]);
        return -1;
    }
    /* "$2a$", "$2b$", "$2x$", "$2y$" (what crypt_r verifies); Go also reads "$2$" which no tool writes. */
    if (h[1] != '2' || !strchr("abxy", h[2]) || h[3] != '$') {
        snprintf(err, errlen, "crypto/bcrypt: hashedSecret is not a bcrypt hash ($2a$, $2b$ or $2y$)");
        return -1;
    }
    if (h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9' || h[6] != '$') {
        snprintf(err, errlen, "crypto/bcrypt: invalid cost in hashedSecret");
        return -1;
    }
    int cost = (h[4] - '0') * 10 + (h[5] - '0');
    if (cost < 4 || cost > 31) {
        snprintf(err, errlen, "crypto/bcrypt: cost %d is outside allowed range (4,31)", cost);
        return -1;
    }
    if (n != 60) {
        snprintf(err, errlen, "crypto/bcrypt: hashedSecret has %zu characters, a bcrypt hash has 60", n);
        return -1;
    }
    for (size_t i = 7; i < n; i++)
        if (!bcrypt_b64(h[i])) {
            snprintf(err, errlen, "crypto/bcrypt: hashedSecret contains '%c', not a bcrypt base64 character", h[i]);
            return -1;
        }
    return 0;
}

void web_config_free(web_config *c)
{
    if (!c)
        return;
    free(c->filename);
    if (c->key_pem) {
        explicit_bzero(c->key_pem, strlen(c->key_pem));
        free(c->key_pem);
    }
    free(c->cert_pem);
    free(c->client_ca_pem);
    strv_free(c->client_allowed_sans, c->n_client_allowed_sans);
    strv_free(c->cipher_suites, c->n_cipher_suites);
    strv_free(c->curves, c->n_curves);
    for (size_t i = 0; i < c->n_headers; i++) {
        free(c->headers[i].name);
        free(c->headers[i].value);
    }
    free(c->headers);
    for (size_t i = 0; i < c->n_users; i++) {
        free(c->users[i].name);
        free(c->users[i].hash);
    }
    free(c->users);
    free(c);
}

const char *web_config_user_hash(const web_config *c, const char *user)
{
    for (size_t i = 0; c && i < c->n_users; i++)
        if (strcmp(c->users[i].name, user) == 0)
            return c->users[i].hash;
    return NULL;
}

/* Reads a whole (small) file; NULL with "open PATH: reason" in err (Go's os.ReadFile wording). */
static char *read_file(const char *path, size_t max, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = xcalloc(1, cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap >= max) {
                snprintf(err, errlen, "read %s: larger than %zu bytes", path, max);
                free(buf);
                fclose(f);
                return NULL;
            }
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb)
                abort();
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "read %s: %s", path, strerror(errno));
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/* Go's tls.X509KeyPair checks, with its messages. */
static int check_key_pair(const char *cert_pem, const char *key_pem, char *err, size_t errlen)
{
    int rc = -1;
    BIO *cb = BIO_new_mem_buf(cert_pem, -1), *kb = BIO_new_mem_buf(key_pem, -1);
    X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    if (!x)
        snprintf(err, errlen, "failed to load X509KeyPair: tls: failed to find any PEM data in certificate input");
    else if (!k)
        snprintf(err, errlen, "failed to load X509KeyPair: tls: failed to find any PEM data in key input");
    else if (X509_check_private_key(x, k) != 1)
        snprintf(err, errlen, "failed to load X509KeyPair: tls: private key does not match public key");
    else
        rc = 0;
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(cb);
    BIO_free(kb);
    return rc;
}

static int check_ca(const char *pem, char *err, size_t errlen)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    ERR_clear_error();
    BIO_free(b);
    if (!x) {
        snprintf(err, errlen, "client CA: no PEM certificate found");
        return -1;
    }
    X509_free(x);
    return 0;
}

static int parse_version(cfg_ctx *c, const yaml_node_t *map, const char *key, uint16_t *out)
{
    yaml_node_t *v = cfg_get(c, map, key);
    if (!v)
        return 0;
    const char *s = cfg_scalar(v);
    static const struct {
        const char *name;
        uint16_t v;
    } vs[] = {{"TLS13", WEB_TLS13}, {"TLS12", WEB_TLS12}, {"TLS11", WEB_TLS11}, {"TLS10", WEB_TLS10}};
    for (size_t i = 0; s && i < sizeof vs / sizeof *vs; i++)
        if (strcmp(s, vs[i].name) == 0)
            return *out = vs[i].v, 0;
    return cfg_error(c, v, "unknown TLS version: %s", s ? s : cfg_kind_name(v));
}

static int read_mapping(cfg_ctx *c, const yaml_node_t *n, const char *what, char ***keys, char ***vals, size_t *count)
{
    if (!n || cfg_is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return cfg_error(c, n, "expected a mapping for %s, got %s", what, cfg_kind_name(n));
    size_t m = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    *keys = xcalloc(m + 1, sizeof **keys);
    *vals = xcalloc(m + 1, sizeof **vals);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key), *v = yaml_document_get_node(c->doc, p->value);
        const char *ks = cfg_scalar(k), *vs = cfg_is_null(v) ? "" : cfg_scalar(v);
        if (!ks)
            return cfg_error(c, k, "expected a string key in %s, got %s", what, cfg_kind_name(k));
        if (!vs)
            return cfg_error(c, v, "expected a string value for %s in %s, got %s", ks, what, cfg_kind_name(v));
        for (size_t i = 0; i < *count; i++)
            if (strcmp((*keys)[i], ks) == 0)
                return cfg_error(c, k, "key %s already set in %s", ks, what);
        (*keys)[*count] = xstrdup(ks);
        (*vals)[*count] = xstrdup(vs);
        (*count)++;
    }
    return 0;
}

static int parse_tls(cfg_ctx *c, const yaml_node_t *n, web_config *w)
{
    static const char *const keys[] = {"cert",           "key",           "client_ca",           "cert_file",
                                       "key_file",       "client_auth_type", "client_ca_file",  "cipher_suites",
                                       "curve_preferences", "min_version", "max_version", "prefer_server_cipher_suites",
                                       "client_allowed_sans", NULL};
    int r = cfg_check_map(c, n, "web.TLSConfig", keys);
    if (r)
        return r < 0 ? -1 : 0;
    char *cert = NULL, *key = NULL, *ca = NULL, *cert_file = NULL, *key_file = NULL, *ca_file = NULL, *auth = NULL;
    int rc = -1;
    char e2[512];
    if (cfg_read_string(c, n, "cert", &cert) < 0 || cfg_read_string(c, n, "key", &key) < 0 ||
        cfg_read_string(c, n, "client_ca", &ca) < 0 || cfg_read_string(c, n, "cert_file", &cert_file) < 0 ||
        cfg_read_string(c, n, "key_file", &key_file) < 0 || cfg_read_string(c, n, "client_ca_file", &ca_file) < 0 ||
        cfg_read_string(c, n, "client_auth_type", &auth) < 0 ||
        cfg_read_bool(c, n, "prefer_server_cipher_suites", &w->prefer_server_cipher_suites) < 0 ||
        parse_version(c, n, "min_version", &w->min_version) < 0 ||
        parse_version(c, n, "max_version", &w->max_version) < 0 ||
        cfg_read_string_list(c, n, "client_allowed_sans", &w->client_allowed_sans, &w->n_client_allowed_sans) < 0 ||
        cfg_read_string_list(c, n, "cipher_suites", &w->cipher_suites, &w->n_cipher_suites) < 0 ||
        cfg_read_string_list(c, n, "curve_preferences", &w->curves, &w->n_curves) < 0)
        goto out;
    for (size_t i = 0; i < w->n_cipher_suites; i++)
        if (!web_cipher_suite_find(w->cipher_suites[i])) {
            cfg_error(c, cfg_get(c, n, "cipher_suites"), "unknown cipher: %s", w->cipher_suites[i]);
            goto out;
        }
    for (size_t i = 0; i < w->n_curves; i++)
        if (!web_curve_gnutls_group(w->curves[i])) {
            cfg_error(c, cfg_get(c, n, "curve_preferences"), "unknown curve: %s", w->curves[i]);
            goto out;
        }
#define SET(s) ((s) && *(s))
    w->tls = SET(cert) || SET(key) || SET(ca) || SET(cert_file) || SET(key_file) || SET(ca_file) || SET(auth);
    if (!w->tls) {
        rc = 0;
        goto out;
    }
    if (!SET(cert_file) && !SET(cert)) {
        snprintf(c->err, c->errlen, "%s: tls_server_config: missing one of cert or cert_file", c->file);
        goto out;
    }
    if (!SET(key_file) && !SET(key)) {
        snprintf(c->err, c->errlen, "%s: tls_server_config: missing one of key or key_file", c->file);
        goto out;
    }
    if (SET(cert_file)) {
        char *p = cfg_join_dir(c, cert_file);
        w->cert_pem = read_file(p, WEB_PEM_MAX, e2, sizeof e2);
        if (!w->cert_pem)
            snprintf(c->err, c->errlen, "%s: failed to read cert_file (%s): %s", c->file, p, e2);
        free(p);
        if (!w->cert_pem)
            goto out;
    } else {
        w->cert_pem = xstrdup(cert);
    }
    if (SET(key_file)) {
        char *p = cfg_join_dir(c, key_file);
        w->key_pem = read_file(p, WEB_PEM_MAX, e2, sizeof e2);
        if (!w->key_pem)
            snprintf(c->err, c->errlen, "%s: failed to read key_file (%s): %s", c->file, p, e2);
        free(p);
        if (!w->key_pem)
            goto out;
    } else {
        w->key_pem = xstrdup(key);
    }
    if (check_key_pair(w->cert_pem, w->key_pem, e2, sizeof e2) != 0) {
        snprintf(c->err, c->errlen, "%s: %s", c->file, e2);
        goto out;
    }
    if (SET(ca_file)) {
        char *p = cfg_join_dir(c, ca_file);
        w->client_ca_pem = read_file(p, WEB_PEM_MAX, e2, sizeof e2);
        free(p);
        if (!w->client_ca_pem) {
            snprintf(c->err, c->errlen, "%s: %s", c->file, e2);
            goto out;
        }
    } else if (SET(ca)) {
        w->client_ca_pem = xstrdup(ca);
    }
    if (w->client_ca_pem && check_ca(w->client_ca_pem, e2, sizeof e2) != 0) {
        snprintf(c->err, c->errlen, "%s: %s", c->file, e2);
        goto out;
    }
    const char *a = auth ? auth : "";
    if (!*a || strcmp(a, "NoClientCert") == 0)
        w->client_auth = WEB_CLIENT_NONE;
    else if (strcmp(a, "RequestClientCert") == 0)
        w->client_auth = WEB_CLIENT_REQUEST;
    else if (strcmp(a, "RequireAnyClientCert") == 0 || strcmp(a, "RequireClientCert") == 0)
        w->client_auth = WEB_CLIENT_REQUIRE_ANY;
    else if (strcmp(a, "VerifyClientCertIfGiven") == 0)
        w->client_auth = WEB_CLIENT_VERIFY_IF_GIVEN;
    else if (strcmp(a, "RequireAndVerifyClientCert") == 0)
        w->client_auth = WEB_CLIENT_REQUIRE_VERIFIED;
    else {
        cfg_error(c, cfg_get(c, n, "client_auth_type"), "invalid ClientAuth: %s", a);
        goto out;
    }
    if (w->client_ca_pem && w->client_auth == WEB_CLIENT_NONE) {
        snprintf(c->err, c->errlen, "%s: client CA's have been configured without a Client Auth Policy", c->file);
        goto out;
    }
    /* exporter-toolkit: SANs are matched only where a certificate is required. */
    if (cfg_get(c, n, "client_allowed_sans") && !cfg_is_null(cfg_get(c, n, "client_allowed_sans")) &&
        w->client_auth != WEB_CLIENT_REQUIRE_ANY && w->client_auth != WEB_CLIENT_REQUIRE_VERIFIED) {
        snprintf(c->err, c->errlen,
                 "%s: client_allowed_sans requires client_auth_type to be one of RequireAnyClientCert or "
                 "RequireAndVerifyClientCert",
                 c->file);
        goto out;
    }
    if (w->min_version > w->max_version) {
        snprintf(c->err, c->errlen, "%s: tls_server_config: min_version is above max_version", c->file);
        goto out;
    }
    rc = 0;
out:
    free(cert);
    if (key) {
        explicit_bzero(key, strlen(key));
        free(key);
    }
    free(ca);
    free(cert_file);
    free(key_file);
    free(ca_file);
    free(auth);
    return rc;
}

/* exporter-toolkit's extraHTTPHeaders: the only headers that may be set, some with fixed values. */
static int check_header(cfg_ctx *c, const yaml_node_t *n, const char *name, const char *value)
{
    static const struct {
        const char *name;
        const char *values[3];
    } allowed[] = {{"Strict-Transport-Security", {NULL}},
                   {"X-Content-Type-Options", {"nosniff", NULL}},
                   {"X-Frame-Options", {"deny", "sameorigin", NULL}},
                   {"X-XSS-Protection", {NULL}},
                   {"Content-Security-Policy", {NULL}}};
    size_t i = 0, na = sizeof allowed / sizeof *allowed;
    while (i < na && strcmp(allowed[i].name, name) != 0)
        i++;
    if (i == na)
        return cfg_error(c, n, "HTTP header \"%s\" can not be configured", name);
    if (allowed[i].values[0]) {
        for (size_t j = 0; allowed[i].values[j]; j++)
            if (strcmp(allowed[i].values[j], value) == 0)
                return 0;
        if (allowed[i].values[1])
            return cfg_error(c, n, "invalid value for %s. Expected one of: [\"%s\" \"%s\"], but got: \"%s\"", name,
                             allowed[i].values[0], allowed[i].values[1], value);
        return cfg_error(c, n, "invalid value for %s. Expected one of: [\"%s\"], but got: \"%s\"", name,
                         allowed[i].values[0], value);
    }
    /* A header value must not split the response. */
    if (strpbrk(value, "\r\n"))
        return cfg_error(c, n, "invalid value for %s: contains a line break", name);
    return 0;
}

static int parse_http(cfg_ctx *c, const yaml_node_t *n, web_config *w)
{
    static const char *const keys[] = {"http2", "headers", NULL};
    int r = cfg_check_map(c, n, "web.HTTPConfig", keys);
    if (r)
        return r < 0 ? -1 : 0;
    if (cfg_read_bool(c, n, "http2", &w->http2) < 0)
        return -1;
    yaml_node_t *h2 = cfg_get(c, n, "http2");
    w->http2_explicit = h2 && !cfg_is_null(h2) && w->http2;
    yaml_node_t *h = cfg_get(c, n, "headers");
    char **names = NULL, **vals = NULL;
    size_t cnt = 0;
    int rc = read_mapping(c, h, "headers", &names, &vals, &cnt);
    if (rc == 0) {
        w->headers = cnt ? xcalloc(cnt, sizeof *w->headers) : NULL;
        for (size_t i = 0; i < cnt; i++) {
            if (rc == 0)
                rc = check_header(c, h, names[i], vals[i]);
            w->headers[i] = (web_header){names[i], vals[i]};
        }
        w->n_headers = cnt;
    } else {
        strv_free(names, cnt);
        strv_free(vals, cnt);
        return -1;
    }
    free(names);
    free(vals);
    return rc;
}

static int parse_root(cfg_ctx *c, const yaml_node_t *root, web_config *w)
{
    static const char *const keys[] = {"tls_server_config", "http_server_config", "basic_auth_users", "rate_limit",
                                       NULL};
    int r = cfg_check_map(c, root, "web.Config", keys);
    if (r)
        return r < 0 ? -1 : 0;
    yaml_node_t *t = cfg_get(c, root, "tls_server_config");
    if (t && parse_tls(c, t, w) < 0)
        return -1;
    yaml_node_t *h = cfg_get(c, root, "http_server_config");
    if (h && parse_http(c, h, w) < 0)
        return -1;
    yaml_node_t *rl = cfg_get(c, root, "rate_limit");
    if (rl) {
        static const char *const rkeys[] = {"burst", "interval", NULL};
        r = cfg_check_map(c, rl, "web.RateLimiterConfig", rkeys);
        if (r < 0 || cfg_read_uint(c, rl, "burst", &w->rate_burst) < 0 ||
            cfg_read_duration(c, rl, "interval", &w->rate_interval_ms) < 0)
            return -1;
    }
    yaml_node_t *u = cfg_get(c, root, "basic_auth_users");
    char **names = NULL, **hashes = NULL;
    size_t cnt = 0;
    if (read_mapping(c, u, "basic_auth_users", &names, &hashes, &cnt) < 0) {
        strv_free(names, cnt);
        strv_free(hashes, cnt);
        return -1;
    }
    w->users = cnt ? xcalloc(cnt, sizeof *w->users) : NULL;
    int rc = 0;
    for (size_t i = 0; i < cnt; i++) {
        char e2[256];
        if (rc == 0 && web_bcrypt_check(hashes[i], e2, sizeof e2) != 0)
            rc = cfg_error(c, u, "basic_auth_users: password of user \"%s\" is not a bcrypt hash: %s", names[i], e2);
        w->users[i] = (web_user){names[i], hashes[i]};
    }
    w->n_users = cnt;
    free(names);
    free(hashes);
    return rc;
}

static char *dir_of(const char *name)
{
    const char *slash = strrchr(name, '/');
    if (!slash)
        return xstrdup("");
    if (slash == name)
        return xstrdup("/");
    return strndup(name, (size_t)(slash - name));
}

web_config *web_config_parse(const char *yaml, size_t len, const char *name, char *err, size_t errlen)
{
    if (!name)
        name = "<web config>";
    size_t dl, dc;
    const char *why;
    if (yaml_depth_check(yaml, len, &dl, &dc, &why) != 0) {
        snprintf(err, errlen, "%s:%zu:%zu: invalid YAML: %s", name, dl + 1, dc + 1, why);
        return NULL;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "%s: cannot initialise the YAML parser", name);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "%s:%zu:%zu: invalid YAML: %s", name, parser.problem_mark.line + 1,
                 parser.problem_mark.column + 1, parser.problem ? parser.problem : "syntax error");
        yaml_parser_delete(&parser);
        return NULL;
    }
    yaml_parser_delete(&parser);
    web_config *w = xcalloc(1, sizeof *w);
    w->filename = xstrdup(name);
    w->min_version = WEB_TLS12;
    w->max_version = WEB_TLS13;
    w->prefer_server_cipher_suites = true;
    w->http2 = true;
    cfg_ctx c = {.doc = &doc, .file = name, .dir = dir_of(name), .err = err, .errlen = errlen, .cfg = NULL};
    int rc = 0;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && !cfg_is_null(root)) {
        if (root->type != YAML_MAPPING_NODE)
            rc = cfg_error(&c, root, "expected a mapping at the top level (tls_server_config, basic_auth_users, ...), "
                                     "got %s",
                           cfg_kind_name(root));
        else
            rc = parse_root(&c, root, w);
    }
    free(c.dir);
    yaml_document_delete(&doc);
    if (rc < 0) {
        web_config_free(w);
        return NULL;
    }
    return w;
}

web_config *web_config_load(const char *path, char *err, size_t errlen)
{
    char e2[512];
    char *buf = read_file(path, WEB_CONFIG_MAX_FILE, e2, sizeof e2);
    if (!buf) {
        snprintf(err, errlen, "%s: cannot read the web configuration file: %s", path, e2);
        return NULL;
    }
    web_config *w = web_config_parse(buf, strlen(buf), path, err, errlen);
    free(buf);
    return w;
}
