/* websec: see websec.h. */
#include "http/websec.h"

#include <arpa/inet.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/auth.h"
#include "util/log.h"
#include "util/strv.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#define TLS_MAX_CHAIN 16

typedef struct tls_material {
    gnutls_pcert_st pcerts[TLS_MAX_CHAIN];
    unsigned n;
    gnutls_privkey_t key;
} tls_material;

struct websec {
    pthread_rwlock_t lock; /* cfg, tls_cur */
    web_config *cfg;
    web_config *started_cfg; /* the configuration the server was started with (libmicrohttpd holds pointers) */
    web_config **retired;    /* started_cfg once replaced, freed at websec_free */
    size_t n_retired;
    pcre2_code *cors;
    auth_cache *cache;
    bool tls; /* the server speaks TLS (fixed at start) */
    char *priorities;
    tls_material *tls_cur;
    tls_material **tls_retired;
    size_t n_tls_retired;
    char *ext_scheme, *ext_host; /* --web.external-url's origin (fixed at start) */
    pthread_mutex_t rl_mu; /* rate limiter */
    double tokens;
    int64_t rl_last_ns;
};

/* GnuTLS' certificate callback has no context argument: the one websec serving TLS. */
static websec *tls_owner;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

websec *websec_new(web_config *cfg, pcre2_code *cors)
{
    websec *ws = xcalloc(1, sizeof *ws);
    pthread_rwlock_init(&ws->lock, NULL);
    pthread_mutex_init(&ws->rl_mu, NULL);
    ws->cfg = cfg;
    ws->cors = cors;
    ws->cache = auth_cache_new();
    ws->tls = cfg && cfg->tls;
    ws->tokens = cfg ? (double)cfg->rate_burst : 0;
    ws->rl_last_ns = mono_ns();
    return ws;
}

static void tls_material_free(tls_material *m)
{
    if (!m)
        return;
    for (unsigned i = 0; i < m->n; i++)
        gnutls_pcert_deinit(&m->pcerts[i]);
    if (m->key)
        gnutls_privkey_deinit(m->key);
    free(m);
}

static tls_material *tls_material_load(const web_config *cfg, char *err, size_t errlen)
{
    tls_material *m = xcalloc(1, sizeof *m);
    gnutls_datum_t cd = {(unsigned char *)cfg->cert_pem, (unsigned)strlen(cfg->cert_pem)};
    gnutls_datum_t kd = {(unsigned char *)cfg->key_pem, (unsigned)strlen(cfg->key_pem)};
    m->n = TLS_MAX_CHAIN;
    int rc = gnutls_pcert_list_import_x509_raw(m->pcerts, &m->n, &cd, GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0) {
        m->n = 0;
        snprintf(err, errlen, "%s: certificate: %s", cfg->filename, gnutls_strerror(rc));
        tls_material_free(m);
        return NULL;
    }
    if ((rc = gnutls_privkey_init(&m->key)) < 0 ||
        (rc = gnutls_privkey_import_x509_raw(m->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        snprintf(err, errlen, "%s: private key: %s", cfg->filename, gnutls_strerror(rc));
        tls_material_free(m);
        return NULL;
    }
    return m;
}

static int cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                         const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                         unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
    (void)session, (void)req_ca_dn, (void)nreqs, (void)pk_algos, (void)pk_algos_length;
    websec *ws = tls_owner;
    if (!ws)
        return -1;
    pthread_rwlock_rdlock(&ws->lock);
    tls_material *m = ws->tls_cur;
    if (m) {
        *pcert = m->pcerts;
        *pcert_length = m->n;
        *pkey = m->key;
    }
    pthread_rwlock_unlock(&ws->lock);
    return m ? 0 : -1;
}

/* GnuTLS priority string for versions, cipher suites, curves and preference. */
static char *priorities(const web_config *c)
{
    static const char *const vers[] = {"VERS-TLS1.0", "VERS-TLS1.1", "VERS-TLS1.2", "VERS-TLS1.3"};
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "NORMAL:-VERS-ALL");
    for (unsigned v = WEB_TLS10; v <= WEB_TLS13; v++)
        if (v >= c->min_version && v <= c->max_version)
            strbuf_printf(&sb, ":+%s", vers[v - WEB_TLS10]);
    if (c->n_cipher_suites) {
        /* GnuTLS enables key exchanges, ciphers and MACs separately: the suites' parts. Like Go, the list
         * does not restrict TLS 1.3, whose suites stay enabled. */
        strbuf_puts(&sb, ":-KX-ALL:-CIPHER-ALL:-MAC-ALL");
        const char *seen[3 * 32];
        size_t ns = 0;
        for (size_t i = 0; i < c->n_cipher_suites; i++) {
            const web_cipher_suite *s = web_cipher_suite_find(c->cipher_suites[i]);
            const char *p3[] = {s->kx, s->cipher, s->mac};
            for (int k = 0; k < 3; k++) {
                bool dup = !p3[k];
                for (size_t j = 0; j < ns && !dup; j++)
                    dup = strcmp(seen[j], p3[k]) == 0;
                if (dup || ns == sizeof seen / sizeof *seen)
                    continue;
                seen[ns++] = p3[k];
                strbuf_printf(&sb, ":+%s", p3[k]);
            }
        }
        if (c->max_version >= WEB_TLS13)
            strbuf_puts(&sb, ":+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:+AEAD");
    }
    if (c->n_curves) {
        strbuf_puts(&sb, ":-GROUP-ALL");
        for (size_t i = 0; i < c->n_curves; i++)
            strbuf_printf(&sb, ":+%s", web_curve_gnutls_group(c->curves[i]));
    }
    if (c->prefer_server_cipher_suites)
        strbuf_puts(&sb, ":%SERVER_PRECEDENCE");
    char *r = strbuf_detach(&sb, NULL);
    strbuf_free(&sb);
    return r;
}

int websec_server_options(websec *ws, http_server_options *o, char *err, size_t errlen)
{
    if (!ws->tls)
        return 0;
    const web_config *c = ws->cfg;
    ws->tls_cur = tls_material_load(c, err, errlen);
    if (!ws->tls_cur)
        return -1;
    free(ws->priorities);
    ws->priorities = priorities(c);
    gnutls_priority_t pc;
    const char *errpos = NULL;
    int rc = gnutls_priority_init(&pc, ws->priorities, &errpos);
    if (rc < 0) {
        snprintf(err, errlen, "%s: TLS settings: %s (GnuTLS priority %s, at %s)", c->filename, gnutls_strerror(rc),
                 ws->priorities, errpos ? errpos : "?");
        return -1;
    }
    gnutls_priority_deinit(pc);
    tls_owner = ws;
    ws->started_cfg = ws->cfg;
    o->tls_cert_callback = (void *)(gnutls_certificate_retrieve_function2 *)cert_callback;
    o->tls_trust_pem = c->client_ca_pem;
    o->tls_priorities = ws->priorities;
    return 0;
}

void websec_attach(websec *ws, http_server *s)
{
    http_server_set_gate(s, websec_gate, websec_decorate, ws);
}

bool websec_tls(const websec *ws)
{
    return ws->tls;
}

static bool str_eq(const char *a, const char *b)
{
    return (!a || !b) ? a == b : strcmp(a, b) == 0;
}


int websec_reload(websec *ws, web_config *cfg, bool *restart_needed, char *err, size_t errlen)
{
    *restart_needed = false;
    bool tls = cfg && cfg->tls;
    if (tls != ws->tls) {
        snprintf(err, errlen, "%s: TLS cannot be switched %s by a reload; restart lookout",
                 cfg ? cfg->filename : "--web.config.file", tls ? "on" : "off");
        web_config_free(cfg);
        return -1;
    }
    tls_material *m = NULL;
    if (tls) {
        const web_config *o = ws->cfg;
        /* Unchanged certificate and key: keep the loaded ones (replaced ones live until websec_free). */
        if (!str_eq(o->cert_pem, cfg->cert_pem) || !str_eq(o->key_pem, cfg->key_pem)) {
            m = tls_material_load(cfg, err, errlen);
            if (!m) {
                web_config_free(cfg);
                return -1;
            }
        }
        *restart_needed = !str_eq(o->client_ca_pem, cfg->client_ca_pem) || o->min_version != cfg->min_version ||
                          o->max_version != cfg->max_version ||
                          o->prefer_server_cipher_suites != cfg->prefer_server_cipher_suites ||
                          !strv_equal(o->cipher_suites, o->n_cipher_suites, cfg->cipher_suites, cfg->n_cipher_suites) ||
                          !strv_equal(o->curves, o->n_curves, cfg->curves, cfg->n_curves);
    }
    pthread_rwlock_wrlock(&ws->lock);
    web_config *old = ws->cfg;
    ws->cfg = cfg;
    if (m) {
        ws->tls_retired = xrealloc(ws->tls_retired, (ws->n_tls_retired + 1) * sizeof *ws->tls_retired);
        ws->tls_retired[ws->n_tls_retired++] = ws->tls_cur;
        ws->tls_cur = m;
    }
    pthread_rwlock_unlock(&ws->lock);
    /* No request reads the old configuration any more (they hold the lock while they do), except the
     * first one, whose CA list and priority string libmicrohttpd was given at start. */
    if (old && old != ws->started_cfg)
        web_config_free(old);
    else if (old) {
        ws->retired = xrealloc(ws->retired, (ws->n_retired + 1) * sizeof *ws->retired);
        ws->retired[ws->n_retired++] = old;
    }
    pthread_mutex_lock(&ws->rl_mu);
    ws->tokens = cfg ? (double)cfg->rate_burst : 0;
    pthread_mutex_unlock(&ws->rl_mu);
    return 0;
}

void websec_set_external_url(websec *ws, const char *url)
{
    const char *sep = url ? strstr(url, "://") : NULL;
    if (!sep || sep == url)
        return;
    const char *host = sep + 3, *end = host + strcspn(host, "/?#");
    if (end == host)
        return;
    free(ws->ext_scheme);
    free(ws->ext_host);
    ws->ext_scheme = xstrndup(url, (size_t)(sep - url));
    ws->ext_host = xstrndup(host, (size_t)(end - host));
}

void websec_free(websec *ws)
{
    if (!ws)
        return;
    free(ws->ext_scheme);
    free(ws->ext_host);
    if (tls_owner == ws)
        tls_owner = NULL;
    web_config_free(ws->cfg);
    for (size_t i = 0; i < ws->n_retired; i++)
        web_config_free(ws->retired[i]);
    free(ws->retired);
    tls_material_free(ws->tls_cur);
    for (size_t i = 0; i < ws->n_tls_retired; i++)
        tls_material_free(ws->tls_retired[i]);
    free(ws->tls_retired);
    free(ws->priorities);
    pcre2_code_free(ws->cors);
    auth_cache_free(ws->cache);
    pthread_rwlock_destroy(&ws->lock);
    pthread_mutex_destroy(&ws->rl_mu);
    free(ws);
}

/* ---- per request ---- */

static bool rate_allow(websec *ws, const web_config *c)
{
    if (!c || c->rate_interval_ms <= 0)
        return true;
    pthread_mutex_lock(&ws->rl_mu);
    int64_t now = mono_ns();
    ws->tokens += (double)(now - ws->rl_last_ns) / ((double)c->rate_interval_ms * 1e6);
    ws->rl_last_ns = now;
    if (ws->tokens > (double)c->rate_burst)
        ws->tokens = (double)c->rate_burst;
    bool ok = ws->tokens >= 1.0;
    if (ok)
        ws->tokens -= 1.0;
    pthread_mutex_unlock(&ws->rl_mu);
    return ok;
}

static bool san_allowed(const web_config *c, const gnutls_datum_t *der)
{
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0)
        return false;
    bool ok = false;
    if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) >= 0) {
        for (unsigned seq = 0; !ok; seq++) {
            char buf[1024];
            size_t size = sizeof buf - 1;
            unsigned critical;
            int t = gnutls_x509_crt_get_subject_alt_name(crt, seq, buf, &size, &critical);
            if (t == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE || t == GNUTLS_E_SHORT_MEMORY_BUFFER)
                break;
            if (t < 0)
                break;
            char text[INET6_ADDRSTRLEN + 1];
            const char *v = buf;
            if (t == GNUTLS_SAN_IPADDRESS) {
                if (!inet_ntop(size == 4 ? AF_INET : AF_INET6, buf, text, sizeof text))
                    continue;
                v = text;
            } else {
                buf[size] = 0;
            }
            for (size_t i = 0; i < c->n_client_allowed_sans && !ok; i++)
                ok = strcmp(c->client_allowed_sans[i], v) == 0;
        }
    }
    gnutls_x509_crt_deinit(crt);
    return ok;
}

/* NULL when the client's certificate satisfies client_auth_type, else why not. */
static const char *client_cert_problem(const web_config *c, const api_request *req)
{
    if (!c->tls || c->client_auth == WEB_CLIENT_NONE || c->client_auth == WEB_CLIENT_REQUEST)
        return NULL;
    gnutls_session_t s = api_request_tls_session(req);
    if (!s)
        return "no TLS session";
    unsigned n = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(s, &n);
    if (!peers || n == 0)
        return c->client_auth == WEB_CLIENT_VERIFY_IF_GIVEN ? NULL : "client certificate required";
    if (c->client_auth == WEB_CLIENT_REQUIRE_ANY)
        return NULL;
    unsigned status = 0;
    if (gnutls_certificate_verify_peers2(s, &status) < 0 || status != 0)
        return "client certificate not signed by client_ca";
    if (c->n_client_allowed_sans && !san_allowed(c, &peers[0]))
        return "client certificate has none of client_allowed_sans";
    return NULL;
}

bool websec_gate(void *ctx, const api_request *req, api_response *resp)
{
    websec *ws = ctx;
    bool pass = false;
    pthread_rwlock_rdlock(&ws->lock);
    const web_config *c = ws->cfg;
    const char *why;
    if (!rate_allow(ws, c)) {
        api_response_text(resp, 429, "Too Many Requests\n");
        goto out;
    }
    if (c && (why = client_cert_problem(c, req))) {
        char msg[160];
        snprintf(msg, sizeof msg, "Forbidden: %s\n", why);
        api_response_text(resp, 403, msg);
        goto out;
    }
    const char *origin = api_request_header(req, "Origin");
    origin_request oreq = {.method = req->method,
                           .origin = origin,
                           .sec_fetch_site = api_request_header(req, "Sec-Fetch-Site"),
                           .scheme = ws->tls ? "https" : "http",
                           .host = api_request_header(req, "Host"),
                           .fwd_proto = api_request_header(req, "X-Forwarded-Proto"),
                           .fwd_host = api_request_header(req, "X-Forwarded-Host"),
                           .ext_scheme = ws->ext_scheme,
                           .ext_host = ws->ext_host};
    origin_verdict v = origin_check(&oreq, ws->cors);
    if (v == ORIGIN_CROSS_SITE) {
        log_debug("web", "refused a cross-site request", "method", req->method, "path", req->path, "origin",
                  origin ? origin : "");
        api_response_text(resp, 403,
                          "Forbidden: cross-site requests may not change lookout's state (allow an origin with "
                          "--web.cors.origin)\n");
        goto out;
    }
    if (v == ORIGIN_ALLOWED && strcmp(req->method, "OPTIONS") == 0 &&
        api_request_header(req, "Access-Control-Request-Method")) {
        /* A preflight carries no credentials; it has no effect and is answered here. */
        api_response_text(resp, 204, "");
        goto out;
    }
    if (c && c->n_users) {
        char user[256], pass_[1024];
        bool ok = auth_parse_basic(api_request_header(req, "Authorization"), user, sizeof user, pass_,
                                   sizeof pass_) == 0 &&
                  auth_check(ws->cache, c, user, pass_);
        explicit_bzero(pass_, sizeof pass_);
        if (!ok) {
            api_response_text(resp, 401, "Unauthorized\n");
            api_response_header(resp, "WWW-Authenticate", "Basic");
            goto out;
        }
    }
    pass = true;
out:
    pthread_rwlock_unlock(&ws->lock);
    return pass;
}

void websec_decorate(void *ctx, const api_request *req, api_response *resp)
{
    websec *ws = ctx;
    pthread_rwlock_rdlock(&ws->lock);
    const web_config *c = ws->cfg;
    for (size_t i = 0; c && i < c->n_headers; i++)
        api_response_header(resp, c->headers[i].name, c->headers[i].value);
    pthread_rwlock_unlock(&ws->lock);
    const char *origin = api_request_header(req, "Origin");
    if (origin && origin_allowed(ws->cors, origin)) {
        api_response_header(resp, "Access-Control-Allow-Origin", origin);
        api_response_header(resp, "Access-Control-Allow-Credentials", "true");
        api_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS");
        api_response_header(resp, "Access-Control-Allow-Headers", "Accept, Authorization, Content-Type, Origin");
        api_response_header(resp, "Access-Control-Expose-Headers", "Date");
        api_response_header(resp, "Vary", "Origin");
    }
}
