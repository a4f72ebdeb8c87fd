/* push_api: see push_api.h. */
#include "api/push_api.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

#define PUSH_MAX_JOB_LEN 256
#define PUSH_CRED_FILE_MAX (64 * 1024)
/* Distinct job names remembered for GET /-/errors: a pusher inventing a new job per request must not grow
 * this list (and its linear scan) without bound. Pushes to further new jobs are refused with 429. */
#define PUSH_MAX_JOBS 10000

static void cfg_copy(push_config *dst, const push_config *src)
{
    *dst = *src;
    dst->default_job = xstrdup(src->default_job);
    dst->authorization_type = xstrdup(src->authorization_type);
    dst->authorization_credentials = xstrdup(src->authorization_credentials);
    dst->authorization_credentials_file = xstrdup(src->authorization_credentials_file);
    dst->basic_auth_username = xstrdup(src->basic_auth_username);
    dst->basic_auth_password = xstrdup(src->basic_auth_password);
    dst->basic_auth_password_file = xstrdup(src->basic_auth_password_file);
}

static void cfg_clear(push_config *c)
{
    free(c->default_job);
    free(c->authorization_type);
    free(c->authorization_credentials);
    free(c->authorization_credentials_file);
    free(c->basic_auth_username);
    free(c->basic_auth_password);
    free(c->basic_auth_password_file);
    memset(c, 0, sizeof *c);
}

static metric_family *m_requests(void)
{
    static const char *names[] = {"code"};
    return metric_family_get("lookout_push_requests_total", METRIC_COUNTER,
                             "Push requests (POST /errors, POST /api/v1/push/{job}) by HTTP status code.", 1, names);
}

void push_api_init(push_api *p, ingest *in, federate_api *fed, bool flag_enabled)
{
    memset(p, 0, sizeof *p);
    p->in = in;
    p->fed = fed;
    p->flag_enabled = flag_enabled;
    p->cfg.body_size_limit = PUSH_DEFAULT_BODY_LIMIT;
    pthread_mutex_init(&p->mu, NULL);
}

void push_api_configure(push_api *p, const push_config *cfg)
{
    push_config n;
    cfg_copy(&n, cfg);
    pthread_mutex_lock(&p->mu);
    push_config old = p->cfg;
    p->cfg = n;
    pthread_mutex_unlock(&p->mu);
    cfg_clear(&old);
}

void push_api_free(push_api *p)
{
    cfg_clear(&p->cfg);
    for (size_t i = 0; i < p->n_pushed; i++)
        free(p->pushed_jobs[i]);
    free(p->pushed_jobs);
    pthread_mutex_destroy(&p->mu);
}

/* ---- authorization ---- */

/* Reads a credentials file: at most 64 KiB, surrounding whitespace trimmed (as Prometheus does). */
static char *read_secret(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read push credentials file %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(PUSH_CRED_FILE_MAX + 1);
    if (!buf)
        abort();
    size_t n = fread(buf, 1, PUSH_CRED_FILE_MAX, f);
    fclose(f);
    buf[n] = 0;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        buf[--n] = 0;
    size_t s = strspn(buf, " \t\r\n");
    memmove(buf, buf + s, n - s + 1);
    if (!buf[0]) {
        free(buf);
        snprintf(err, errlen, "push credentials file %s is empty", path);
        return NULL;
    }
    return buf;
}

static void sha256(const char *s, size_t n, unsigned char out[32])
{
    unsigned int len = 32;
    EVP_Digest(s, n, out, &len, EVP_sha256(), NULL);
}

/* Constant-time equality of two secrets of any lengths: compares fixed-size digests. */
static bool secret_eq(const char *a, size_t na, const char *b, size_t nb)
{
    unsigned char da[32], db[32];
    sha256(a, na, da);
    sha256(b, nb, db);
    return CRYPTO_memcmp(da, db, 32) == 0;
}

int push_auth_check(const push_config *cfg, const char *header, char *err, size_t errlen)
{
    if (!cfg->has_authorization && !cfg->has_basic_auth)
        return 1;
    const char *scheme = cfg->has_basic_auth ? "Basic" : cfg->authorization_type;
    char *secret = NULL;
    if (cfg->has_authorization) {
        if (cfg->authorization_credentials_file && *cfg->authorization_credentials_file) {
            if (!(secret = read_secret(cfg->authorization_credentials_file, err, errlen)))
                return -1;
        } else {
            secret = xstrdup(cfg->authorization_credentials);
        }
    } else {
        char *pw = NULL;
        if (cfg->basic_auth_password_file && *cfg->basic_auth_password_file) {
            if (!(pw = read_secret(cfg->basic_auth_password_file, err, errlen)))
                return -1;
        } else {
            pw = xstrdup(cfg->basic_auth_password);
        }
        size_t ul = strlen(cfg->basic_auth_username), pl = strlen(pw);
        char *plain = malloc(ul + pl + 2);
        if (!plain)
            abort();
        memcpy(plain, cfg->basic_auth_username, ul);
        plain[ul] = ':';
        memcpy(plain + ul + 1, pw, pl + 1);
        size_t elen = 4 * ((ul + 1 + pl + 2) / 3) + 1;
        secret = malloc(elen);
        if (!secret)
            abort();
        EVP_EncodeBlock((unsigned char *)secret, (const unsigned char *)plain, (int)(ul + 1 + pl));
        OPENSSL_cleanse(plain, ul + pl + 1);
        OPENSSL_cleanse(pw, pl);
        free(plain);
        free(pw);
    }
    int ok = 0;
    if (header) {
        /* "<scheme> <credentials>": the scheme is case-insensitive (RFC 9110), the credentials are not. */
        const char *sp = strchr(header, ' ');
        size_t sl = strlen(scheme);
        if (sp && (size_t)(sp - header) == sl && strncasecmp(header, scheme, sl) == 0) {
            const char *cred = sp + 1;
            while (*cred == ' ')
                cred++;
            ok = secret_eq(cred, strlen(cred), secret, strlen(secret));
        }
    }
    OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
    return ok;
}

/* ---- handlers ---- */

static size_t body_limit(void *ctx)
{
    push_api *p = ctx;
    pthread_mutex_lock(&p->mu);
    size_t lim = (size_t)p->cfg.body_size_limit;
    pthread_mutex_unlock(&p->mu);
    return lim ? lim : (size_t)PUSH_DEFAULT_BODY_LIMIT;
}

static void remember_job(push_api *p, const char *job)
{
    pthread_mutex_lock(&p->mu);
    bool known = false;
    for (size_t i = 0; i < p->n_pushed && !known; i++)
        known = strcmp(p->pushed_jobs[i], job) == 0;
    if (!known) {
        if (p->n_pushed == p->cap_pushed) {
            p->cap_pushed = p->cap_pushed ? p->cap_pushed * 2 : 8;
            p->pushed_jobs = realloc(p->pushed_jobs, p->cap_pushed * sizeof *p->pushed_jobs);
            if (!p->pushed_jobs)
                abort();
        }
        p->pushed_jobs[p->n_pushed++] = xstrdup(job);
    }
    pthread_mutex_unlock(&p->mu);
}

/* True when job is already remembered or there is room for it. */
static bool job_admissible(push_api *p, const char *job)
{
    pthread_mutex_lock(&p->mu);
    bool ok = p->n_pushed < PUSH_MAX_JOBS;
    for (size_t i = 0; i < p->n_pushed && !ok; i++)
        ok = strcmp(p->pushed_jobs[i], job) == 0;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

static void count(int code)
{
    char c[8];
    snprintf(c, sizeof c, "%d", code);
    const char *lv[] = {c};
    metric_add(m_requests(), lv, 1);
}

static void answer(api_response *resp, int code, const char *text)
{
    api_response_text(resp, code, text);
    count(code);
}

static bool valid_job(const char *job)
{
    size_t n = strlen(job);
    if (!n || n > PUSH_MAX_JOB_LEN || strchr(job, '/'))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)job[i] < 0x20)
            return false;
    return true;
}

/* Everything decided before the body: switched on, credentials, job name, room for a new job. Returns
 * true to go on (jobbuf then holds the job), false with the answer in resp. Called from the headers
 * alone (push_preflight) and again with the body, since a reload may come between. */
static bool admit(push_api *p, const char *job, const api_request *req, api_response *resp,
                  char jobbuf[PUSH_MAX_JOB_LEN + 1])
{
    char err[1024] = "";
    pthread_mutex_lock(&p->mu);
    bool enabled = p->flag_enabled || p->cfg.enabled;
    snprintf(jobbuf, PUSH_MAX_JOB_LEN + 1, "%s",
             job ? job : (p->cfg.default_job ? p->cfg.default_job : PUSH_DEFAULT_JOB));
    int auth = enabled ? push_auth_check(&p->cfg, api_request_header(req, "Authorization"), err, sizeof err) : 0;
    bool basic = p->cfg.has_basic_auth;
    pthread_mutex_unlock(&p->mu);
    if (!enabled) {
        answer(resp, 404, "push is disabled (enable it with --web.enable-push or push.enabled: true)\n");
        return false;
    }
    if (auth < 0) {
        log_error("push", "cannot check push credentials", "err", err);
        answer(resp, 500, "cannot check credentials\n");
        return false;
    }
    if (auth == 0) {
        answer(resp, 401, "unauthorized\n");
        api_response_header(resp, "WWW-Authenticate", basic ? "Basic realm=\"lookout push\"" : "Bearer");
        return false;
    }
    if (job && !valid_job(job)) {
        answer(resp, 400, "invalid job name in the path (expected /api/v1/push/{job}, a non-empty name without '/')\n");
        return false;
    }
    if (!job_admissible(p, jobbuf)) {
        log_warn("push", "refused a push to a new job: too many distinct pushed jobs", "job", jobbuf);
        answer(resp, 429, "too many distinct pushed jobs (at most 10000); push to an existing job\n");
        return false;
    }
    return true;
}

/* job NULL: POST /errors (the default job). */
static void handle_push(push_api *p, const char *job, const api_request *req, api_response *resp)
{
    char jobbuf[PUSH_MAX_JOB_LEN + 1];
    char err[1024] = "";
    if (!admit(p, job, req, resp, jobbuf))
        return;
    char ip[64], inst[300];
    api_request_remote_ip(req, ip, sizeof ip);
    const char *qi = api_request_query(req, "instance");
    snprintf(inst, sizeof inst, "%s", qi && *qi ? qi : (ip[0] ? ip : "unknown"));
    ingest_push_info info = {0};
    ingest_push_result r =
        ingest_push(p->in, jobbuf, inst, req->body, req->body_len, PUSH_WAIT_MS, &info, err, sizeof err);
    switch (r) {
    case INGEST_PUSH_INVALID: {
        char msg[1200];
        snprintf(msg, sizeof msg, "invalid payload: %s\n", err);
        log_debug("push", "rejected an invalid push", "job", jobbuf, "instance", inst, "err", err);
        answer(resp, 400, msg);
        return;
    }
    case INGEST_PUSH_BUSY:
        answer(resp, 503, "ingest queue full; retry later\n");
        api_response_header(resp, "Retry-After", "5");
        return;
    case INGEST_PUSH_STORED:
    case INGEST_PUSH_QUEUED:
        break;
    }
    remember_job(p, jobbuf);
    int code = r == INGEST_PUSH_STORED ? 200 : 202;
    count(code);
    resp->status = code;
    resp->content_type = "application/json";
    strbuf_puts(&resp->body, "{\"status\":\"success\",\"data\":{\"job\":");
    strbuf_json_string(&resp->body, jobbuf);
    strbuf_puts(&resp->body, ",\"instance\":");
    strbuf_json_string(&resp->body, inst);
    strbuf_puts(&resp->body, ",\"target_uuid\":");
    strbuf_json_string(&resp->body, info.instance_id);
    strbuf_printf(&resp->body, ",\"aggregates\":%zu,\"stored\":%s}}\n", info.aggregates,
                  r == INGEST_PUSH_STORED ? "true" : "false");
}

static void h_push_default(void *ctx, const api_request *req, api_response *resp)
{
    handle_push(ctx, NULL, req, resp);
}

static void h_push_job(void *ctx, const api_request *req, api_response *resp)
{
    const char *job = req->path + strlen("/api/v1/push/");
    if (strncmp(req->path, "/api/v1/push/", 13) != 0)
        job = "";
    handle_push(ctx, job, req, resp);
}

/* POST /errors and /api/v1/push/{job} from their headers: 404 (off), 401, 400, 429 before the body. */
static bool push_preflight(void *ctx, const api_request *req, api_response *resp)
{
    char jobbuf[PUSH_MAX_JOB_LEN + 1];
    const char *job = NULL;
    if (strcmp(req->path, "/errors") != 0)
        job = strncmp(req->path, "/api/v1/push/", 13) == 0 ? req->path + 13 : "";
    return !admit(ctx, job, req, resp, jobbuf);
}

static void h_gateway_export(void *ctx, const api_request *req, api_response *resp)
{
    push_api *p = ctx;
    pthread_mutex_lock(&p->mu);
    size_t n = p->n_pushed + 1;
    const char **jobs = calloc(n, sizeof *jobs);
    char **owned = calloc(n, sizeof *owned);
    if (!jobs || !owned)
        abort();
    owned[0] = xstrdup(p->cfg.default_job ? p->cfg.default_job : PUSH_DEFAULT_JOB);
    for (size_t i = 0; i < p->n_pushed; i++)
        owned[i + 1] = xstrdup(p->pushed_jobs[i]);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < n; i++)
        jobs[i] = owned[i];
    char err[512];
    /* One target_uuid whatever jobs were pushed to, as the gateway had: a Periskop server scraping this
     * keeps one target. */
    int rc = federate_respond(p->fed->st, p->fed->sx, p->fed->instance_id, jobs, n, "push-gateway", req, resp, err,
                              sizeof err);
    for (size_t i = 0; i < n; i++)
        free(owned[i]);
    free(owned);
    free(jobs);
    if (rc != 0) {
        log_error("web", "push export failed", "path", req->path, "err", err);
        api_response_text(resp, 500, "internal error\n");
    }
}

void push_api_register(push_api *p, http_server *s, size_t max_in_flight)
{
    if (!max_in_flight)
        max_in_flight = PUSH_MAX_IN_FLIGHT_BYTES;
    http_server_route_limited(s, "POST", "/errors", false, h_push_default, p, body_limit);
    http_server_route_limited(s, "POST", "/api/v1/push/", true, h_push_job, p, body_limit);
    http_server_route(s, "GET", "/-/errors", false, h_gateway_export, p);
    http_server_route_guard(s, "POST", "/errors", push_preflight, max_in_flight);
    http_server_route_guard(s, "POST", "/api/v1/push/", push_preflight, max_in_flight);
}
