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

/* The TLS settings of one web configuration, shared by the connections whose handshake started under it:
 * its own GnuTLS credentials (certificate and key, client CA list, verify function), priority cache and
 * client certificate policy. Reference-counted: websec holds one for the current configuration, every TLS
 * connection one until it is closed. Live states are listed so that GnuTLS' verify callback, which has no
 * context argument, finds the one of its session by the session's credentials. */
typedef struct tls_state {
    int refs; /* under tls_reg_mu */
    gnutls_certificate_credentials_t cred;
    gnutls_priority_t prio;
    web_client_auth auth;
    char **sans;
    size_t n_sans;
    struct tls_state *next;
} tls_state;

static pthread_mutex_t tls_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static tls_state *tls_live;

struct websec {
    pthread_rwlock_t lock; /* cfg, tls_cur */
    web_config *cfg;
    pcre2_code *cors;
    auth_cache *cache;
    bool tls; /* the server speaks TLS */
    http_server *server; /* websec_attach's, for switching TLS on and off */
    tls_state *tls_cur;
    char *ext_scheme, *ext_host; /* --web.external-url's origin (fixed at start) */
    pthread_mutex_t rl_mu; /* rate limiter */
    double tokens;
    int64_t rl_last_ns;
};

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

static void tls_state_release(tls_state *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&tls_reg_mu);
    bool last = --st->refs == 0;
    if (last)
        for (tls_state **pp = &tls_live; *pp; pp = &(*pp)->next)
            if (*pp == st) {
                *pp = st->next;
                break;
            }
    pthread_mutex_unlock(&tls_reg_mu);
    if (!last)
        return;
    if (st->cred)
        gnutls_certificate_free_credentials(st->cred);
    if (st->prio)
        gnutls_priority_deinit(st->prio);
    strv_free(st->sans, st->n_sans);
    free(st);
}

static tls_state *tls_state_find(gnutls_session_t session)
{
    void *cred = NULL;
    if (gnutls_credentials_get(session, GNUTLS_CRD_CERTIFICATE, &cred) < 0 || !cred)
        return NULL;
    pthread_mutex_lock(&tls_reg_mu);
    tls_state *st = tls_live;
    while (st && (void *)st->cred != cred)
        st = st->next;
    pthread_mutex_unlock(&tls_reg_mu);
    return st; /* the session holds a reference until its connection is closed */
}

static bool san_allowed(char *const *sans, size_t n_sans, const gnutls_datum_t *der);

/* GnuTLS calls this during the handshake when the server asked for a client certificate (also when the
 * client sent none); non-zero fails the handshake, as Go's crypto/tls does for the same policies. */
static int verify_client_(const tls_state *st, gnutls_session_t session, gnutls_alert_description_t *alert)
{
    unsigned n = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(session, &n);
    if (!peers || n == 0) {
        if (st->auth != WEB_CLIENT_REQUIRE_ANY && st->auth != WEB_CLIENT_REQUIRE_VERIFIED)
            return 0;
        *alert = gnutls_protocol_get_version(session) == GNUTLS_TLS1_3 ? GNUTLS_A_CERTIFICATE_REQUIRED
                                                                         : GNUTLS_A_BAD_CERTIFICATE;
        log_debug("web", "TLS handshake refused: client certificate required");
        return GNUTLS_E_CERTIFICATE_REQUIRED;
    }
    if (st->auth == WEB_CLIENT_REQUEST)
        return 0;
    if (st->auth == WEB_CLIENT_VERIFY_IF_GIVEN || st->auth == WEB_CLIENT_REQUIRE_VERIFIED) {
        /* Go verifies client certificates against ClientCAs for the client-auth key usage. */
        gnutls_typed_vdata_st purpose = {GNUTLS_DT_KEY_PURPOSE_OID, (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0};
        unsigned status = 0;
        if (gnutls_certificate_verify_peers(session, &purpose, 1, &status) < 0 || status != 0) {
            *alert = GNUTLS_A_BAD_CERTIFICATE;
            log_debug("web", "TLS handshake refused: client certificate not verified by client_ca");
            return GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR;
        }
    }
    if (st->n_sans && !san_allowed(st->sans, st->n_sans, &peers[0])) {
        *alert = GNUTLS_A_BAD_CERTIFICATE;
        log_debug("web", "TLS handshake refused: client certificate has none of client_allowed_sans");
        return GNUTLS_E_CERTIFICATE_ERROR;
    }
    return 0;
}

/* GnuTLS calls this during the handshake when the server asked for a client certificate (also when the
 * client sent none); non-zero fails the handshake, as Go's crypto/tls does for the same policies. The
 * alert tells the client why (libmicrohttpd closes a failed handshake without one). */
static int verify_client(gnutls_session_t session)
{
    tls_state *st = tls_state_find(session);
    gnutls_alert_description_t alert = GNUTLS_A_INTERNAL_ERROR;
    int rc = st ? verify_client_(st, session, &alert) : GNUTLS_E_CERTIFICATE_ERROR;
    if (rc != 0)
        gnutls_alert_send(session, GNUTLS_AL_FATAL, alert);
    return rc;
}

/* The daemon's own credentials are replaced on every connection (tls_setup); should a connection ever
 * keep them, its handshake fails rather than serve something unconfigured. */
static int refuse_cert(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                       const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                       unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
    (void)session, (void)req_ca_dn, (void)nreqs, (void)pk_algos, (void)pk_algos_length, (void)pcert;
    (void)pcert_length, (void)pkey;
    return -1;
}

static char *priorities(const web_config *c);

static tls_state *tls_state_new(const web_config *cfg, char *err, size_t errlen)
{
    tls_state *st = xcalloc(1, sizeof *st);
    st->refs = 1;
    st->auth = cfg->client_auth;
    st->sans = strv_copy(cfg->client_allowed_sans, cfg->n_client_allowed_sans);
    st->n_sans = cfg->n_client_allowed_sans;
    int rc = gnutls_certificate_allocate_credentials(&st->cred);
    if (rc < 0) {
        st->cred = NULL;
        snprintf(err, errlen, "%s: TLS credentials: %s", cfg->filename, gnutls_strerror(rc));
        goto fail;
    }
    gnutls_datum_t cd = {(unsigned char *)cfg->cert_pem, (unsigned)strlen(cfg->cert_pem)};
    gnutls_datum_t kd = {(unsigned char *)cfg->key_pem, (unsigned)strlen(cfg->key_pem)};
    if ((rc = gnutls_certificate_set_x509_key_mem(st->cred, &cd, &kd, GNUTLS_X509_FMT_PEM)) < 0) {
        snprintf(err, errlen, "%s: certificate and key: %s", cfg->filename, gnutls_strerror(rc));
        goto fail;
    }
    bool verifies = cfg->client_auth == WEB_CLIENT_VERIFY_IF_GIVEN || cfg->client_auth == WEB_CLIENT_REQUIRE_VERIFIED;
    if (cfg->client_ca_pem) {
        gnutls_datum_t ca = {(unsigned char *)cfg->client_ca_pem, (unsigned)strlen(cfg->client_ca_pem)};
        if ((rc = gnutls_certificate_set_x509_trust_mem(st->cred, &ca, GNUTLS_X509_FMT_PEM)) < 0) {
            snprintf(err, errlen, "%s: client CA: %s", cfg->filename, gnutls_strerror(rc));
            goto fail;
        }
    } else if (verifies) {
        /* Go verifies against the system's roots when ClientCAs is empty. */
        if ((rc = gnutls_certificate_set_x509_system_trust(st->cred)) < 0) {
            snprintf(err, errlen, "%s: client certificates are verified but there is no client_ca_file and the "
                                  "system's CA certificates cannot be loaded: %s",
                     cfg->filename, gnutls_strerror(rc));
            goto fail;
        }
    }
    if (cfg->client_auth != WEB_CLIENT_NONE)
        gnutls_certificate_set_verify_function(st->cred, verify_client);
    char *prio = priorities(cfg);
    const char *errpos = NULL;
    rc = gnutls_priority_init(&st->prio, prio, &errpos);
    if (rc < 0) {
        st->prio = NULL;
        snprintf(err, errlen, "%s: TLS settings: %s (GnuTLS priority %s, at %s)", cfg->filename, gnutls_strerror(rc),
                 prio, errpos ? errpos : "?");
        free(prio);
        goto fail;
    }
    free(prio);
    pthread_mutex_lock(&tls_reg_mu);
    st->next = tls_live;
    tls_live = st;
    pthread_mutex_unlock(&tls_reg_mu);
    return st;
fail:
    if (st->cred)
        gnutls_certificate_free_credentials(st->cred);
    strv_free(st->sans, st->n_sans);
    free(st);
    return NULL;
}

/* Server hook: a new TLS connection takes the current state. */
static void *tls_setup(void *ctx, void *session_)
{
    websec *ws = ctx;
    gnutls_session_t session = session_;
    pthread_rwlock_rdlock(&ws->lock);
    tls_state *st = ws->tls_cur;
    if (st) {
        pthread_mutex_lock(&tls_reg_mu);
        st->refs++;
        pthread_mutex_unlock(&tls_reg_mu);
    }
    pthread_rwlock_unlock(&ws->lock);
    if (!st)
        return NULL;
    if (gnutls_priority_set(session, st->prio) < 0 ||
        gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, st->cred) < 0)
        log_warn("web", "cannot apply the TLS settings to a connection; its handshake will fail");
    /* Asked for, never GNUTLS_CERT_REQUIRE: verify_client decides, also when none came, and sends the alert
     * that says why (GnuTLS fails a required but missing certificate without one). */
    gnutls_certificate_server_set_request(session, st->auth == WEB_CLIENT_NONE ? GNUTLS_CERT_IGNORE
                                                                                : GNUTLS_CERT_REQUEST);
    return st;
}

static void tls_release(void *ctx, void *conn_state)
{
    (void)ctx;
    tls_state_release(conn_state);
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
    ws->tls_cur = tls_state_new(ws->cfg, err, errlen);
    if (!ws->tls_cur)
        return -1;
    /* libmicrohttpd needs credentials of its own to start a TLS daemon; tls_setup replaces them. */
    o->tls_cert_callback = (void *)(gnutls_certificate_retrieve_function2 *)refuse_cert;
    return 0;
}

void websec_attach(websec *ws, http_server *s)
{
    http_server_set_gate(s, websec_gate, websec_decorate, ws);
    http_server_set_tls_hooks(s, tls_setup, tls_release, ws);
    ws->server = s;
}

bool websec_tls(const websec *ws)
{
    return ws->tls;
}

int websec_reload(websec *ws, web_config *cfg, char *err, size_t errlen)
{
    bool tls = cfg && cfg->tls;
    /* Every TLS setting applies to the handshakes after the reload (Prometheus reads them per handshake);
     * connections already open keep theirs. */
    tls_state *st = NULL;
    if (tls && !(st = tls_state_new(cfg, err, errlen))) {
        web_config_free(cfg);
        return -1;
    }
    pthread_rwlock_wrlock(&ws->lock);
    tls_state *old_st = ws->tls_cur;
    if (st)
        ws->tls_cur = st; /* read by TLS connections only */
    pthread_rwlock_unlock(&ws->lock);
    if (tls != ws->tls) {
        /* TLS switched on or off: a new daemon of the other kind takes the listening socket. */
        if (!ws->server || http_server_switch_tls(ws->server, tls ? (void *)refuse_cert : NULL, err, errlen) != 0) {
            if (!ws->server)
                snprintf(err, errlen, "%s: TLS cannot be switched %s before the server starts",
                         cfg ? cfg->filename : "--web.config.file", tls ? "on" : "off");
            pthread_rwlock_wrlock(&ws->lock);
            if (st)
                ws->tls_cur = old_st;
            pthread_rwlock_unlock(&ws->lock);
            tls_state_release(st);
            web_config_free(cfg);
            return -1;
        }
        log_info("web", tls ? "TLS is enabled." : "TLS is disabled.", "http2", "false", "reason", "reload");
    }
    pthread_rwlock_wrlock(&ws->lock);
    web_config *old = ws->cfg;
    ws->cfg = cfg;
    ws->tls = tls;
    if (!tls)
        ws->tls_cur = NULL; /* the connections of the retired TLS daemon hold their own references */
    pthread_rwlock_unlock(&ws->lock);
    /* Requests read the configuration only under the lock. */
    web_config_free(old);
    if (st || !tls)
        tls_state_release(old_st);
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
    web_config_free(ws->cfg);
    tls_state_release(ws->tls_cur);
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

/* Go's VerifyPeerCertificate in exporter-toolkit: one of the leaf's DNS, email, IP or URI SANs is listed. */
static bool san_allowed(char *const *sans, size_t n_sans, const gnutls_datum_t *der)
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
            for (size_t i = 0; i < n_sans && !ok; i++)
                ok = strcmp(sans[i], v) == 0;
        }
    }
    gnutls_x509_crt_deinit(crt);
    return ok;
}

bool websec_gate(void *ctx, const api_request *req, api_response *resp)
{
    websec *ws = ctx;
    bool pass = false;
    pthread_rwlock_rdlock(&ws->lock);
    const web_config *c = ws->cfg;
    if (!rate_allow(ws, c)) {
        api_response_text(resp, 429, "Too Many Requests\n");
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
