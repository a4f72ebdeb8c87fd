/* The API handlers' answers over a real socket, byte for byte (status, the headers that matter, body):
 * push (POST /errors, /api/v1/push/{job}, GET /-/errors), federation (GET /federate/exceptions), the
 * Periskop API and the lookout API's multi-job lists and jobs summary, including their error paths through
 * a store that fails on demand (tests/unit/fault_store.h). Written against the answers, not the handlers'
 * internals, so that they hold whether a handler buffers or streams its body. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/errors_api.h"
#include "api/federate_api.h"
#include "api/push_api.h"
#include "api/targets_api.h"
#include "fault_store.h"
#include "http/server.h"
#include "ingest/ingest.h"

typedef struct reply {
    long status;
    strbuf body;
    char content_type[128];
    char www_auth[128];
    char retry_after[32];
} reply;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    strbuf_append(ud, p, sz * n);
    return sz * n;
}

static void header_value(const char *line, size_t len, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    const char *v = line + nl + 1;
    size_t vl = len - nl - 1;
    while (vl && (*v == ' '))
        v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
        vl--;
    snprintf(out, outlen, "%.*s", (int)vl, v);
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    reply *r = ud;
    header_value(p, sz * n, "Content-Type", r->content_type, sizeof r->content_type);
    header_value(p, sz * n, "WWW-Authenticate", r->www_auth, sizeof r->www_auth);
    header_value(p, sz * n, "Retry-After", r->retry_after, sizeof r->retry_after);
    return sz * n;
}

static int port;

/* method path [body] [Authorization header value] -> r (body always NUL-terminated); curl's result (an
 * answer cut short while streaming is not CURLE_OK) */
static CURLcode perform(const char *method, const char *path, const char *body, const char *auth, reply *r)
{
    char url[16384];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    memset(r, 0, sizeof *r);
    strbuf_init(&r->body);
    strbuf_puts(&r->body, "");
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char ah[512];
    if (auth) {
        snprintf(ah, sizeof ah, "Authorization: %s", auth);
        h = curl_slist_append(h, ah);
    }
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    return rc;
}

static void request(const char *method, const char *path, const char *body, const char *auth, reply *r)
{
    CURLcode rc = perform(method, path, body, auth, r);
    cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
}

/* Asserts the whole answer and frees it. */
static void expect(reply *r, long status, const char *content_type, const char *body)
{
    cr_assert_eq(r->status, status, "status %ld, want %ld; body: %s", r->status, status, r->body.buf);
    cr_assert_str_eq(r->content_type, content_type);
    cr_assert_str_eq(r->body.buf, body);
    strbuf_free(&r->body);
}

static void get_expect(const char *path, long status, const char *content_type, const char *body)
{
    reply r;
    request("GET", path, NULL, NULL, &r);
    expect(&r, status, content_type, body);
}

/* ---- the servers under test ---- */

static fault_store *fs;
static store *st; /* == &fs->base */
static target_manager *tm;
static selfexc *sx;
static ingest *in;
static http_server *srv;
static errors_api eapi;
static federate_api fapi;
static push_api papi;
static targets_api tapi;

static void start_server(void)
{
    http_server_options o = {.listen_address = "127.0.0.1:0", .threads = 2};
    srv = http_server_new(&o);
    periskop_api_register(&eapi, srv);
    errors_api_register(&eapi, srv);
    federate_api_register(&fapi, srv);
    push_api_register(&papi, srv, 0);
    targets_api_register(&tapi, srv);
    char err[256];
    cr_assert_eq(http_server_start(srv, err, sizeof err), 0, "%s", err);
    port = http_server_port(srv);
}

static void setup(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    fs = fault_store_new(store_memory_new(NULL));
    st = &fs->base;
    tm = targets_new();
    sx = selfexc_new();
    eapi = (errors_api){.st = st, .tm = tm, .sx = sx};
    fapi = (federate_api){.st = st, .sx = sx};
    snprintf(fapi.instance_id, sizeof fapi.instance_id, "inst-1");
    in = ingest_new(st, NULL, NULL, NULL);
    char err[256];
    cr_assert_eq(ingest_start(in, err, sizeof err), 0, "%s", err);
    push_api_init(&papi, in, &fapi, false);
    targets_api_init(&tapi, tm, "127.0.0.1:9090", "lookout-host");
    start_server();
}

static void teardown(void)
{
    http_server_free(srv);
    push_api_free(&papi);
    ingest_free(in);
    targets_free(tm);
    selfexc_free(sx);
    store_close(st);
    curl_global_cleanup();
}

/* One aggregate straight into the store: count, severity, created_at, one sample at ts_ms, and (when
 * minute >= 0) a series point of `count` at that minute. */
static void put(const char *job, const char *key, uint64_t count, payload_severity sev, int64_t created_ms,
                int64_t ts_ms, int64_t minute)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    cs.v = calloc(1, sizeof(merge_change));
    cs.n = cs.cap = 1;
    merge_change *c = &cs.v[0];
    c->job = strdup(job);
    c->key = strdup(key);
    c->is_new = true;
    c->total_count = count;
    c->severity = sev;
    c->created_at_ms = created_ms;
    c->last_seen_ms = ts_ms;
    c->added = calloc(1, sizeof(void *));
    c->added[0] = payload_occurrence_new("E", key, "", ts_ms, sev, NULL, NULL);
    c->n_added = c->cap_added = 1;
    if (minute >= 0) {
        c->series = calloc(1, sizeof(merge_series_point));
        c->series[0] = (merge_series_point){minute, count};
        c->n_series = c->cap_series = 1;
    }
    char err[256];
    cr_assert_eq(store_apply(st, &cs, ts_ms > 0 ? ts_ms : 1, err, sizeof err), 0, "%s", err);
    merge_changeset_free(&cs);
}

static char *selfexc_json(void)
{
    size_t n;
    return selfexc_export(sx, &n);
}

TestSuite(api_answers, .init = setup, .fini = teardown, .timeout = 60);

/* ---- push ---- */

static const char *PAYLOAD =
    "{\"target_uuid\":\"t1\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":3,"
    "\"severity\":\"error\",\"latest_errors\":[{\"error\":{\"class\":\"E\",\"message\":\"m\"},"
    "\"uuid\":\"o1\",\"timestamp\":\"2024-03-02T11:02:44Z\",\"severity\":\"error\"}]}]}";

static void configure(const char *default_job, const char *user, const char *password)
{
    push_config c = {.enabled = true, .default_job = (char *)default_job};
    if (user) {
        c.has_basic_auth = true;
        c.basic_auth_username = (char *)user;
        c.basic_auth_password = (char *)password;
    }
    push_api_configure(&papi, &c);
}

Test(api_answers, push_off_then_configured_on)
{
    reply r;
    request("POST", "/errors", PAYLOAD, NULL, &r);
    expect(&r, 404, "text/plain; charset=utf-8",
           "push is disabled (enable it with --web.enable-push or push.enabled: true)\n");
    configure("batch", NULL, NULL);
    request("POST", "/errors?instance=host-1", PAYLOAD, NULL, &r);
    expect(&r, 200, "application/json",
           "{\"status\":\"success\",\"data\":{\"job\":\"batch\",\"instance\":\"host-1\",\"target_uuid\":\"t1\","
           "\"aggregates\":1,\"stored\":true}}\n");
    /* without ?instance= the pusher's address is the instance */
    request("POST", "/api/v1/push/nightly", PAYLOAD, NULL, &r);
    expect(&r, 200, "application/json",
           "{\"status\":\"success\",\"data\":{\"job\":\"nightly\",\"instance\":\"127.0.0.1\",\"target_uuid\":\"t1\","
           "\"aggregates\":1,\"stored\":true}}\n");
    /* a reload switching it off again */
    push_api_configure(&papi, &(push_config){0});
    request("POST", "/api/v1/push/nightly", PAYLOAD, NULL, &r);
    expect(&r, 404, "text/plain; charset=utf-8",
           "push is disabled (enable it with --web.enable-push or push.enabled: true)\n");
}

Test(api_answers, push_refusals)
{
    configure(NULL, NULL, NULL);
    const char *bad_job = "invalid job name in the path (expected /api/v1/push/{job}, a non-empty name without '/')\n";
    static const char *const paths[] = {"/api/v1/push/", "/api/v1/push/a/b", "/api/v1/push/a%01b", "/api/v1/push/a%1Fb"};
    reply r;
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        request("POST", paths[i], PAYLOAD, NULL, &r);
        expect(&r, 400, "text/plain; charset=utf-8", bad_job);
    }
    /* a job name of 256 bytes is fine, 257 is not */
    char path[400] = "/api/v1/push/";
    memset(path + 13, 'j', 257);
    path[13 + 257] = 0;
    request("POST", path, PAYLOAD, NULL, &r);
    expect(&r, 400, "text/plain; charset=utf-8", bad_job);
    path[13 + 256] = 0;
    request("POST", path, PAYLOAD, NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body.buf);
    strbuf_free(&r.body);
    /* a body that is no payload: nothing stored, the parse error named */
    request("POST", "/api/v1/push/x", "{\"aggregated_errors\":[{]}", NULL, &r);
    cr_assert_eq(r.status, 400, "%s", r.body.buf);
    cr_assert_str_eq(r.content_type, "text/plain; charset=utf-8");
    cr_assert(strncmp(r.body.buf, "invalid payload: ", 17) == 0, "%s", r.body.buf);
    strbuf_free(&r.body);
    store_job *jobs;
    size_t n;
    char err[256];
    cr_assert_eq(store_jobs(st, &jobs, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 1, "only the 256-byte job was stored");
    store_jobs_free(jobs, n);
}

Test(api_answers, push_basic_auth)
{
    /* a long password: the encoded credentials are longer than one base64 block row */
    char pw[201];
    memset(pw, 'p', 200);
    pw[200] = 0;
    configure(NULL, "u", pw);
    /* base64("u:" + 200 x 'p') */
    strbuf want;
    strbuf_init(&want);
    strbuf_puts(&want, "Basic dTpw");
    for (int i = 0; i < 66; i++)
        strbuf_puts(&want, "cHBw");
    strbuf_puts(&want, "cA==");
    reply r;
    request("POST", "/errors", PAYLOAD, NULL, &r);
    cr_assert_str_eq(r.www_auth, "Basic realm=\"lookout push\"");
    expect(&r, 401, "text/plain; charset=utf-8", "unauthorized\n");
    request("POST", "/errors", PAYLOAD, "Basic dTpw", &r);
    expect(&r, 401, "text/plain; charset=utf-8", "unauthorized\n");
    request("POST", "/errors", PAYLOAD, want.buf, &r);
    expect(&r, 200, "application/json",
           "{\"status\":\"success\",\"data\":{\"job\":\"pushed\",\"instance\":\"127.0.0.1\",\"target_uuid\":\"t1\","
           "\"aggregates\":1,\"stored\":true}}\n");
    /* the scheme is case-insensitive, the credentials are not */
    want.buf[0] = 'b';
    request("POST", "/errors", PAYLOAD, want.buf, &r);
    cr_assert_eq(r.status, 200, "%s", r.body.buf);
    strbuf_free(&r.body);
    want.buf[7] = 't';
    request("POST", "/errors", PAYLOAD, want.buf, &r);
    expect(&r, 401, "text/plain; charset=utf-8", "unauthorized\n");
    strbuf_free(&want);
    /* bearer: "WWW-Authenticate: Bearer" */
    push_config c = {.enabled = true, .has_authorization = true, .authorization_type = "Bearer",
                     .authorization_credentials = "tok"};
    push_api_configure(&papi, &c);
    request("POST", "/errors", PAYLOAD, "Bearer nope", &r);
    cr_assert_str_eq(r.www_auth, "Bearer");
    expect(&r, 401, "text/plain; charset=utf-8", "unauthorized\n");
    request("POST", "/errors", PAYLOAD, "Bearer tok", &r);
    cr_assert_eq(r.status, 200, "%s", r.body.buf);
    strbuf_free(&r.body);
}

/* The gateway export: the default job and the jobs pushed to, never the scraped ones; each pushed job
 * remembered once. */
Test(api_answers, push_gateway_export)
{
    configure("batch", NULL, NULL);
    put("scraped", "s-key", 5, PAYLOAD_ERROR, 1000, 2000, -1);
    char want_uuid[INSTANCE_ID_LEN];
    instance_id_derive("inst-1", "push-gateway", want_uuid);
    char want[4096];
    snprintf(want, sizeof want, "{\"target_uuid\":\"%s\",\"__lookout_instance__\":\"inst-1\",\"aggregated_errors\":[]}\n",
             want_uuid);
    get_expect("/-/errors", 200, "application/json", want);
    reply r;
    for (int i = 0; i < 2; i++) {
        request("POST", "/api/v1/push/nightly?instance=h", PAYLOAD, NULL, &r);
        cr_assert_eq(r.status, 200, "%s", r.body.buf);
        strbuf_free(&r.body);
    }
    cr_assert_eq(papi.n_pushed, 1, "a job pushed to twice is remembered once");
    request("POST", "/errors?instance=h", PAYLOAD, NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body.buf);
    strbuf_free(&r.body);
    cr_assert_eq(papi.n_pushed, 2);
    const char *agg = "{\"aggregation_key\":\"k\",\"total_count\":3,\"severity\":\"error\","
                      "\"created_at\":\"2024-03-02T11:02:44.000Z\",\"latest_errors\":[{\"error\":{\"class\":\"E\","
                      "\"message\":\"m\",\"stacktrace\":null,\"cause\":null},\"uuid\":\"o1\","
                      "\"timestamp\":\"2024-03-02T11:02:44.000Z\",\"severity\":\"error\",\"http_context\":null}],"
                      "\"__lookout_job__\":\"%s\"}";
    char a1[1024], a2[1024];
    snprintf(a1, sizeof a1, agg, "batch");
    snprintf(a2, sizeof a2, agg, "nightly");
    snprintf(want, sizeof want,
             "{\"target_uuid\":\"%s\",\"__lookout_instance__\":\"inst-1\",\"aggregated_errors\":[%s,%s]}\n",
             want_uuid, a1, a2);
    request("GET", "/-/errors", NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body.buf, want);
    strbuf_free(&r.body);
    /* a store failure: 500, nothing half-written */
    fs->fail_jobs = true;
    fs->fail_list = true;
    get_expect("/-/errors", 500, "text/plain; charset=utf-8", "internal error\n");
}

/* A reload between the headers (admitted) and the body: the body is judged by the new configuration. */
Test(api_answers, push_reload_between_headers_and_body)
{
    configure(NULL, NULL, NULL);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "POST /api/v1/push/j HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\nExpect: 100-continue\r\n"
                      "Connection: close\r\n\r\n",
                      strlen(PAYLOAD));
    cr_assert_eq(write(fd, head, (size_t)hl), hl);
    char buf[4096];
    size_t n = 0;
    /* "100 Continue" means the headers were admitted */
    while (!strstr(buf, "\r\n\r\n")) {
        ssize_t k = read(fd, buf + n, sizeof buf - 1 - n);
        cr_assert_gt(k, 0, "no 100 Continue");
        n += (size_t)k;
        buf[n] = 0;
    }
    cr_assert(strncmp(buf, "HTTP/1.1 100 Continue\r\n", 23) == 0, "%s", buf);
    push_api_configure(&papi, &(push_config){0});
    cr_assert_eq(write(fd, PAYLOAD, strlen(PAYLOAD)), (ssize_t)strlen(PAYLOAD));
    n = 0;
    for (ssize_t k; (k = read(fd, buf + n, sizeof buf - 1 - n)) > 0;)
        n += (size_t)k;
    buf[n] = 0;
    close(fd);
    cr_assert(strncmp(buf, "HTTP/1.1 404", 12) == 0, "%s", buf);
    cr_assert(strstr(buf, "\r\n\r\npush is disabled (enable it with --web.enable-push or push.enabled: true)\n"), "%s",
              buf);
    store_job *jobs;
    size_t nj;
    char err[256];
    cr_assert_eq(store_jobs(st, &jobs, &nj, err, sizeof err), 0, "%s", err);
    cr_assert_eq(nj, 0, "nothing stored");
    store_jobs_free(jobs, nj);
    cr_assert_eq(papi.n_pushed, 0);
}

/* ---- federation ---- */

Test(api_answers, federate_answers)
{
    char uuid[INSTANCE_ID_LEN], want[2048];
    /* an empty store: every job is none */
    instance_id_derive("inst-1", "*", uuid);
    snprintf(want, sizeof want, "{\"target_uuid\":\"%s\",\"__lookout_instance__\":\"inst-1\",\"aggregated_errors\":[]}\n",
             uuid);
    get_expect("/federate/exceptions", 200, "application/json", want);

    put("b", "kb", 7, PAYLOAD_WARNING, 1000, 2000, -1);
    put("a", "ka", 3, PAYLOAD_ERROR, 1000, 2000, -1);
    instance_id_derive("inst-1", "job:b\n", uuid);
    snprintf(want, sizeof want,
             "{\"target_uuid\":\"%s\",\"__lookout_instance__\":\"inst-1\",\"aggregated_errors\":[{\"aggregation_key\":"
             "\"kb\",\"total_count\":7,\"severity\":\"warning\",\"created_at\":\"1970-01-01T00:00:01.000Z\","
             "\"latest_errors\":[{\"error\":{\"class\":\"E\",\"message\":\"kb\",\"stacktrace\":null,\"cause\":null},"
             "\"uuid\":\"\",\"timestamp\":\"1970-01-01T00:00:02.000Z\",\"severity\":\"warning\",\"http_context\":null}],"
             "\"__lookout_job__\":\"b\"}]}\n",
             uuid);
    get_expect("/federate/exceptions?job=b", 200, "application/json", want);
    char head[256];
    reply r;
    /* 256 job parameters are fine, 257 are not; an empty one is refused */
    strbuf q;
    strbuf_init(&q);
    strbuf_puts(&q, "/federate/exceptions?job=a");
    for (int i = 1; i < 256; i++)
        strbuf_puts(&q, "&job=b");
    request("GET", q.buf, NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body.buf);
    instance_id_derive("inst-1", "job:a\njob:b\n", uuid);
    snprintf(head, sizeof head, "{\"target_uuid\":\"%s\",", uuid);
    cr_assert(strncmp(r.body.buf, head, strlen(head)) == 0, "%s", r.body.buf);
    strbuf_free(&r.body);
    strbuf_puts(&q, "&job=b");
    get_expect(q.buf, 400, "text/plain; charset=utf-8", "too many job parameters (at most 256)\n");
    strbuf_free(&q);
    get_expect("/federate/exceptions?job=a&job=", 400, "text/plain; charset=utf-8", "empty job parameter\n");
    get_expect("/federate/exceptions?job=", 400, "text/plain; charset=utf-8", "empty job parameter\n");
}

Test(api_answers, federate_store_failures)
{
    put("a", "ka", 3, PAYLOAD_ERROR, 1000, 2000, -1);
    put("a", "kb", 4, PAYLOAD_ERROR, 1000, 2000, -1);
    /* an error deleted between the list and the get is left out */
    fs->get_not_found = true;
    char uuid[INSTANCE_ID_LEN], want[512];
    instance_id_derive("inst-1", "*", uuid);
    snprintf(want, sizeof want, "{\"target_uuid\":\"%s\",\"__lookout_instance__\":\"inst-1\",\"aggregated_errors\":[]}\n",
             uuid);
    get_expect("/federate/exceptions", 200, "application/json", want);
    fs->get_not_found = false;
    /* each failing store call: 500 and one self-exception */
    fs->fail_get = true;
    get_expect("/federate/exceptions?job=a", 500, "text/plain; charset=utf-8", "internal error\n");
    char *x = selfexc_json();
    cr_assert(strstr(x, "\"aggregation_key\":\"api-error\",\"total_count\":1,"), "%s", x);
    cr_assert(strstr(x, "\"message\":\"injected get failure\""), "%s", x);
    free(x);
    fs->fail_get = false;
    fs->fail_list = true;
    get_expect("/federate/exceptions?job=a", 500, "text/plain; charset=utf-8", "internal error\n");
    fs->fail_list = false;
    fs->fail_jobs = true;
    get_expect("/federate/exceptions", 500, "text/plain; charset=utf-8", "internal error\n");
    x = selfexc_json();
    cr_assert(strstr(x, "\"aggregation_key\":\"api-error\",\"total_count\":3,"), "%s", x);
    cr_assert(strstr(x, "\"message\":\"injected jobs failure\""), "%s", x);
    free(x);
}

/* ---- Periskop API ---- */

Test(api_answers, periskop_store_failures)
{
    put("a", "ka", 3, PAYLOAD_ERROR, 1000, 2000, -1);
    fs->fail_get = true;
    get_expect("/services/a/errors/", 500, "text/plain; charset=utf-8", "internal error\n");
    fs->fail_get = false;
    fs->get_not_found = true;
    get_expect("/services/a/errors/", 200, "application/json", "[]\n");
    fs->get_not_found = false;
    fs->fail_list = true;
    get_expect("/services/a/errors/", 500, "text/plain; charset=utf-8", "internal error\n");
    fs->fail_list = false;
    fs->fail_set_status = true;
    reply r;
    request("DELETE", "/services/a/errors/ka/", NULL, NULL, &r);
    expect(&r, 500, "text/plain; charset=utf-8", "internal error\n");
    fs->fail_set_status = false;
    char *x = selfexc_json();
    cr_assert(strstr(x, "\"message\":\"reading errors failed: injected get failure\""), "%s", x);
    cr_assert(strstr(x, "\"message\":\"resolving an error failed: injected set_status failure\""), "%s", x);
    free(x);
    /* jobs unreadable: the job is unknown (404), /services/ lists the configured jobs (none here) */
    fs->fail_jobs = true;
    get_expect("/services/a/errors/", 404, "text/plain; charset=utf-8", "service a not found\n");
    get_expect("/services/", 200, "application/json", "[]\n");
    fs->fail_jobs = false;
    get_expect("/services/", 200, "application/json", "[\"a\"]\n");
}

/* created_at in whole seconds, rounded towards minus infinity, also far before 1970 */
Test(api_answers, periskop_created_at_before_1970)
{
    put("p", "k", 1, PAYLOAD_ERROR, -1000000, 2000, -1);
    get_expect("/services/p/errors/", 200, "application/json",
               "[{\"aggregation_key\":\"k\",\"total_count\":1,\"severity\":\"error\",\"latest_errors\":[{\"error\":"
               "{\"class\":\"E\",\"message\":\"k\",\"stacktrace\":null,\"cause\":null},\"uuid\":\"\","
               "\"timestamp\":2,\"severity\":\"error\",\"http_context\":null}],\"created_at\":-1000}]\n");
}

/* Several errors of a job: comma-separated, the most recently seen first */
Test(api_answers, periskop_several_errors)
{
    put("p", "old", 1, PAYLOAD_ERROR, 1000, 2000, -1);
    put("p", "new", 2, PAYLOAD_WARNING, 1000, 3000, -1);
    get_expect("/services/p/errors/", 200, "application/json",
               "[{\"aggregation_key\":\"new\",\"total_count\":2,\"severity\":\"warning\",\"latest_errors\":[{\"error\":"
               "{\"class\":\"E\",\"message\":\"new\",\"stacktrace\":null,\"cause\":null},\"uuid\":\"\","
               "\"timestamp\":3,\"severity\":\"warning\",\"http_context\":null}],\"created_at\":1},"
               "{\"aggregation_key\":\"old\",\"total_count\":1,\"severity\":\"error\",\"latest_errors\":[{\"error\":"
               "{\"class\":\"E\",\"message\":\"old\",\"stacktrace\":null,\"cause\":null},\"uuid\":\"\","
               "\"timestamp\":2,\"severity\":\"error\",\"http_context\":null}],\"created_at\":1}]\n");
}

/* ---- lookout API ---- */

Test(api_answers, list_bad_limits_and_too_many_labels)
{
    put("a", "k", 1, PAYLOAD_ERROR, 1000, 2000, -1);
    const char *bad_limit = "{\"status\":\"error\",\"errorType\":\"bad_data\","
                            "\"error\":\"invalid limit (expected a positive integer)\"}";
    get_expect("/api/v1/errors?limit=0", 400, "application/json", bad_limit);
    get_expect("/api/v1/errors?limit=-1", 400, "application/json", bad_limit);
    get_expect("/api/v1/errors?limit=1x", 400, "application/json", bad_limit);
    strbuf q;
    strbuf_init(&q);
    strbuf_puts(&q, "/api/v1/errors?label=job%3Da");
    for (int i = 1; i < 32; i++)
        strbuf_puts(&q, "&label=job%3Da");
    reply r;
    request("GET", q.buf, NULL, NULL, &r);
    expect(&r, 200, "application/json", "{\"status\":\"success\",\"data\":{\"errors\":[],\"next_cursor\":null,\"total\":0}}");
    strbuf_puts(&q, "&label=job%3Da");
    get_expect(q.buf, 400, "application/json",
               "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"too many label parameters (at most 32)\"}");
    strbuf_free(&q);
}

/* keys of a list answer, in order, comma-separated */
static char *keys_of(const char *path, long *total)
{
    reply r;
    request("GET", path, NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "%s: %s", path, r.body.buf);
    strbuf out;
    strbuf_init(&out);
    strbuf_puts(&out, "");
    for (const char *p = r.body.buf; (p = strstr(p, "\"aggregation_key\":\""));) {
        p += strlen("\"aggregation_key\":\"");
        if (out.len)
            strbuf_putc(&out, ',');
        strbuf_append(&out, p, strcspn(p, "\""));
    }
    const char *t = strstr(r.body.buf, "\"total\":");
    cr_assert_not_null(t, "%s", r.body.buf);
    *total = strtol(t + 8, NULL, 10);
    strbuf_free(&r.body);
    return strbuf_detach(&out, NULL);
}

/* Several jobs without a severity filter: one store query per job, every severity, merged in sort order. */
Test(api_answers, list_several_jobs_every_severity)
{
    put("a", "a-info", 1, PAYLOAD_INFO, 1000, 5000, -1);
    put("a", "a-err", 2, PAYLOAD_ERROR, 1000, 4000, -1);
    put("b", "b-warn", 3, PAYLOAD_WARNING, 1000, 6000, -1);
    put("c", "c-err", 4, PAYLOAD_ERROR, 1000, 7000, -1);
    long total;
    char *k = keys_of("/api/v1/errors?job=a&job=b", &total);
    cr_assert_str_eq(k, "b-warn,a-info,a-err");
    cr_assert_eq(total, 3);
    free(k);
    k = keys_of("/api/v1/errors?job=a&job=b&sort=count", &total);
    cr_assert_str_eq(k, "b-warn,a-err,a-info");
    free(k);
    k = keys_of("/api/v1/errors?severity=error&severity=warning", &total);
    cr_assert_str_eq(k, "c-err,b-warn,a-err");
    cr_assert_eq(total, 3);
    free(k);
    /* a store failure in the second query: 500, not a partial list */
    fs->fail_list_after = 1;
    reply r;
    request("GET", "/api/v1/errors?job=a&job=b", NULL, NULL, &r);
    cr_assert_eq(r.status, 500, "%s", r.body.buf);
    strbuf_free(&r.body);
}

/* The jobs summary: regressed apart from open, errors of the last hour (the current minute included, the
 * hour before not). */
Test(api_answers, jobs_summary_counts)
{
    int64_t now = (int64_t)time(NULL) * 1000;
    int64_t minute = now / 60000;
    put("a", "k-now", 5, PAYLOAD_ERROR, 1000, now, minute);
    put("a", "k-half", 7, PAYLOAD_ERROR, 1000, now - 1800000, minute - 30);
    put("a", "k-old", 100, PAYLOAD_ERROR, 1000, now - 7200000, minute - 120);
    put("a", "k-reg", 2, PAYLOAD_ERROR, 1000, now - 7200000, -1);
    char err[256];
    cr_assert_eq(store_resolve(st, "a", "k-reg", now - 7100000, err, sizeof err), 0, "%s", err);
    put("a", "k-reg", 3, PAYLOAD_ERROR, 1000, now - 7000000, -1); /* regressed */
    put("a", "k-res", 1, PAYLOAD_ERROR, 1000, now - 7200000, -1);
    cr_assert_eq(store_resolve(st, "a", "k-res", now - 7100000, err, sizeof err), 0, "%s", err);
    reply r;
    request("GET", "/api/v1/jobs", NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    const char *want = "{\"status\":\"success\",\"data\":[{\"job\":\"a\",\"open\":3,\"regressed\":1,\"resolved\":1,"
                       "\"errors_last_hour\":12,\"targets_up\":0,\"targets_down\":0,\"targets_unknown\":0,\"sparkline\":";
    cr_assert(strncmp(r.body.buf, want, strlen(want)) == 0, "%s", r.body.buf);
    strbuf_free(&r.body);
    fs->fail_jobs = true;
    request("GET", "/api/v1/jobs", NULL, NULL, &r);
    cr_assert_eq(r.status, 500, "%s", r.body.buf);
    strbuf_free(&r.body);
}

/* An aggregate with n samples (timestamps 1 s apart, messages m0, m1, ...), straight into the store. */
static void put_samples(const char *job, const char *key, size_t n)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    cs.v = calloc(1, sizeof(merge_change));
    cs.n = cs.cap = 1;
    merge_change *c = &cs.v[0];
    c->job = strdup(job);
    c->key = strdup(key);
    c->is_new = true;
    c->total_count = n;
    c->severity = PAYLOAD_ERROR;
    c->created_at_ms = 1000;
    c->last_seen_ms = (int64_t)n * 1000;
    c->added = calloc(n, sizeof(void *));
    for (size_t i = 0; i < n; i++) {
        char m[24];
        snprintf(m, sizeof m, "m%zu", i);
        c->added[i] = payload_occurrence_new("E", m, "", (int64_t)(i + 1) * 1000, PAYLOAD_ERROR, NULL, NULL);
    }
    c->n_added = c->cap_added = n;
    char err[256];
    cr_assert_eq(store_apply(st, &cs, (int64_t)n * 1000, err, sizeof err), 0, "%s", err);
    merge_changeset_free(&cs);
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Several samples are comma-separated, newest first (Periskop's server shape); oldest first in the client
 * shape of the federation export. */
Test(api_answers, samples_in_both_shapes)
{
    put_samples("s", "k", 2);
    get_expect("/services/s/errors/", 200, "application/json",
               "[{\"aggregation_key\":\"k\",\"total_count\":2,\"severity\":\"error\",\"latest_errors\":["
               "{\"error\":{\"class\":\"E\",\"message\":\"m1\",\"stacktrace\":null,\"cause\":null},\"uuid\":\"\","
               "\"timestamp\":2,\"severity\":\"error\",\"http_context\":null},"
               "{\"error\":{\"class\":\"E\",\"message\":\"m0\",\"stacktrace\":null,\"cause\":null},\"uuid\":\"\","
               "\"timestamp\":1,\"severity\":\"error\",\"http_context\":null}],\"created_at\":1}]\n");
    reply r;
    request("GET", "/federate/exceptions?job=s", NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    const char *m0 = strstr(r.body.buf, "\"message\":\"m0\""), *m1 = strstr(r.body.buf, "\"message\":\"m1\"");
    cr_assert(m0 && m1 && m0 < m1, "%s", r.body.buf);
    cr_assert(strstr(r.body.buf, "\"http_context\":null},{\"error\""), "%s", r.body.buf);
    strbuf_free(&r.body);
    /* the Periskop list gives at most 100 samples per error, the newest */
    put_samples("s", "many", 101);
    request("GET", "/services/s/errors/", NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    const char *many = strstr(r.body.buf, "\"aggregation_key\":\"many\"");
    cr_assert_not_null(many, "%s", r.body.buf);
    char *end = strstr(many, "\"created_at\"");
    cr_assert_not_null(end);
    *end = 0;
    cr_assert_eq(count_of(many, "\"error\":{"), 100);
    cr_assert(strstr(many, "\"message\":\"m100\""), "the newest is kept");
    cr_assert(strstr(many, "\"message\":\"m1\""));
    cr_assert_null(strstr(many, "\"message\":\"m0\""), "the oldest is left out");
    strbuf_free(&r.body);
}

/* More errors in a job than one store page (STORE_MAX_LIMIT): the Periskop list and the federation
 * export follow the cursor to the end. */
Test(api_answers, lists_longer_than_a_store_page)
{
    for (int i = 0; i < STORE_MAX_LIMIT + 5; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%04d", i);
        put("big", key, 1, PAYLOAD_ERROR, 1000, 2000 + i, -1);
    }
    reply r;
    request("GET", "/services/big/errors/", NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(count_of(r.body.buf, "\"aggregation_key\":"), STORE_MAX_LIMIT + 5);
    cr_assert(strstr(r.body.buf, "\"aggregation_key\":\"k0000\""), "the oldest is there");
    strbuf_free(&r.body);
    request("GET", "/federate/exceptions?job=big", NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(count_of(r.body.buf, "\"aggregation_key\":"), STORE_MAX_LIMIT + 5);
    cr_assert(strstr(r.body.buf, "\"aggregation_key\":\"k1004\""), "the newest is there");
    strbuf_free(&r.body);
}

/* A dump longer than its 32 KiB page goes out streamed: whole (ending in `tail`) and without a
 * self-exception when the store answers; when store_get fails after the first page was sent, the answer
 * (status 200 by then) is cut short, what arrived is a prefix of the whole one without its end, and the
 * failure is reported once as a self-exception with `message`. */
static void streamed_then_cut(const char *path, const char *tail, const char *message)
{
    for (int i = 0; i < 400; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%04d", i);
        put("big", key, 1, PAYLOAD_ERROR, 1000, 2000 + i, -1);
    }
    reply whole, cut;
    request("GET", path, NULL, NULL, &whole);
    cr_assert_eq(whole.status, 200);
    cr_assert_eq(count_of(whole.body.buf, "\"aggregation_key\":"), 400);
    cr_assert_gt(whole.body.len, 2 * (32u << 10), "%zu bytes: more than two pages", whole.body.len);
    cr_assert_str_eq(whole.body.buf + whole.body.len - strlen(tail), tail);
    char *x = selfexc_json();
    cr_assert_null(strstr(x, "api-error"), "a whole dump reports nothing: %s", x);
    free(x);

    fs->n_get = 0;
    fs->fail_get_after = 250; /* past the first page (fewer than 150 aggregates) */
    CURLcode rc = perform("GET", path, NULL, NULL, &cut);
    fs->fail_get_after = 0;
    cr_assert_neq(rc, CURLE_OK, "the client must see the answer cut short");
    cr_assert_eq(cut.status, 200);
    cr_assert_gt(cut.body.len, 0);
    cr_assert_lt(cut.body.len, whole.body.len);
    cr_assert(memcmp(cut.body.buf, whole.body.buf, cut.body.len) == 0, "a prefix of the whole answer");
    cr_assert_lt(count_of(cut.body.buf, "\"aggregation_key\":"), 250);
    x = selfexc_json();
    cr_assert(strstr(x, "\"aggregation_key\":\"api-error\",\"total_count\":1,"), "%s", x);
    char want[256];
    snprintf(want, sizeof want, "\"message\":\"%s\"", message);
    cr_assert(strstr(x, want), "%s in %s", want, x);
    free(x);
    strbuf_free(&whole.body);
    strbuf_free(&cut.body);
}

Test(api_answers, federate_streamed_then_cut)
{
    streamed_then_cut("/federate/exceptions?job=big", "]}\n", "injected get failure");
}

Test(api_answers, periskop_streamed_then_cut)
{
    streamed_then_cut("/services/big/errors/", "]\n", "reading errors failed while streaming: injected get failure");
}

/* next_cursor of a value in a list answer, or "" for null */
static void cursor_of(const char *body, char *out, size_t n)
{
    const char *c = strstr(body, "\"next_cursor\":");
    cr_assert_not_null(c, "%s", body);
    c += strlen("\"next_cursor\":");
    out[0] = 0;
    if (*c == '"')
        snprintf(out, n, "%.*s", (int)strcspn(c + 1, "\""), c + 1);
}

/* Paging through a list of several jobs: every error once, in order, then no cursor. */
Test(api_answers, list_several_jobs_paging)
{
    put("a", "a1", 1, PAYLOAD_ERROR, 1000, 5000, -1);
    put("b", "b1", 1, PAYLOAD_ERROR, 1000, 4000, -1);
    put("a", "a2", 1, PAYLOAD_ERROR, 1000, 3000, -1);
    put("b", "b2", 1, PAYLOAD_ERROR, 1000, 2000, -1);
    put("a", "a3", 1, PAYLOAD_ERROR, 1000, 1000, -1);
    put("c", "c1", 1, PAYLOAD_ERROR, 1000, 4500, -1);
    strbuf all;
    strbuf_init(&all);
    char cursor[512] = "", path[700];
    int pages = 0;
    do {
        snprintf(path, sizeof path, "/api/v1/errors?job=a&job=b&limit=2%s%s", cursor[0] ? "&cursor=" : "", cursor);
        long total;
        char *k = keys_of(path, &total);
        cr_assert_eq(total, 5);
        if (all.len)
            strbuf_putc(&all, ',');
        strbuf_puts(&all, k);
        free(k);
        reply r;
        request("GET", path, NULL, NULL, &r);
        cursor_of(r.body.buf, cursor, sizeof cursor);
        strbuf_free(&r.body);
        pages++;
    } while (cursor[0] && pages < 10);
    cr_assert_str_eq(all.buf, "a1,b1,a2,b2,a3");
    cr_assert_eq(pages, 3);
    strbuf_free(&all);
}

Test(api_answers, paths_that_name_nothing)
{
    put("a", "k", 1, PAYLOAD_ERROR, 1000, 2000, -1);
    get_expect("/services/a/errors/k", 404, "text/plain; charset=utf-8", "404 page not found\n");
    get_expect("/services/a/errors", 404, "text/plain; charset=utf-8", "404 page not found\n");
    const char *nf = "{\"status\":\"error\",\"errorType\":\"not_found\","
                     "\"error\":\"expected /api/v1/errors/{job}/{key}/resolve or /reopen\"}";
    reply r;
    request("POST", "/api/v1/errors/a//resolve", NULL, NULL, &r);
    expect(&r, 404, "application/json", nf);
    request("POST", "/api/v1/errors/a/reopen", NULL, NULL, &r);
    expect(&r, 404, "application/json", nf);
    /* a job without a key */
    get_expect("/api/v1/errors/a/", 404, "application/json",
               "{\"status\":\"error\",\"errorType\":\"not_found\",\"error\":\"expected /api/v1/errors/{job}/{key}\"}");
}

/* Credentials files: surrounding whitespace trimmed (as Prometheus reads them). */
Test(api_answers, push_credentials_file_trimmed)
{
    char path[] = "/tmp/lookout-cred-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, " \ttok\r\n \n", 9), 9);
    close(fd);
    push_config c = {.enabled = true, .has_authorization = true, .authorization_type = "Bearer",
                     .authorization_credentials_file = path};
    push_api_configure(&papi, &c);
    reply r;
    request("POST", "/errors", PAYLOAD, "Bearer tok", &r);
    cr_assert_eq(r.status, 200, "%s", r.body.buf);
    strbuf_free(&r.body);
    request("POST", "/errors", PAYLOAD, "Bearer tok\r", &r);
    cr_assert_eq(r.status, 401, "%s", r.body.buf);
    strbuf_free(&r.body);
    unlink(path);
    request("POST", "/errors", PAYLOAD, "Bearer tok", &r);
    expect(&r, 500, "text/plain; charset=utf-8", "cannot check credentials\n");
}

Test(api_answers, scrape_pools_without_pools)
{
    get_expect("/api/v1/scrape_pools", 200, "application/json", "{\"status\":\"success\",\"data\":{\"scrapePools\":[]}}");
}

Test(api_answers, scrape_pools_lists_every_pool)
{
    char err[512] = "";
    const char *yml = "scrape_configs:\n  - job_name: b\n  - job_name: a\n  - job_name: c\n";
    lookout_config *cfg = config_parse(yml, strlen(yml), "t.yml", err, sizeof err);
    cr_assert_not_null(cfg, "%s", err);
    targets_apply_config(tm, cfg);
    get_expect("/api/v1/scrape_pools", 200, "application/json",
               "{\"status\":\"success\",\"data\":{\"scrapePools\":[\"a\",\"b\",\"c\"]}}");
    targets_apply_config(tm, NULL);
    config_free(cfg);
}

/* federate_render (the whole export into one buffer): a failing store call is its -1 with the store's
 * message, whether it is the job list or an error's detail. */
Test(api_answers, federate_render_store_failures)
{
    put("a", "ka", 3, PAYLOAD_ERROR, 1000, 2000, -1);
    const char *jobs[] = {"a"};
    strbuf sb;
    strbuf_init(&sb);
    char err[256] = "";
    cr_assert_eq(federate_render(st, "inst-1", jobs, 1, NULL, &sb, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(sb.buf, "\"aggregation_key\":\"ka\""), "%s", sb.buf);
    strbuf_reset(&sb);
    fs->fail_get = true;
    cr_assert_eq(federate_render(st, "inst-1", jobs, 1, NULL, &sb, err, sizeof err), -1);
    cr_assert_str_eq(err, "injected get failure");
    fs->fail_get = false;
    fs->fail_jobs = true;
    err[0] = 0;
    cr_assert_eq(federate_render(st, "inst-1", NULL, 0, NULL, &sb, err, sizeof err), -1);
    cr_assert_str_eq(err, "injected jobs failure");
    fs->fail_jobs = false;
    strbuf_free(&sb);
}

/* /api/v1/targets longer than its 32 KiB page goes out streamed, whole: every target once, then the
 * dropped list and the counts. */
Test(api_answers, targets_streamed_whole)
{
    char err[512] = "";
    const char *yml = "scrape_configs:\n  - job_name: big\n";
    lookout_config *cfg = config_parse(yml, strlen(yml), "t.yml", err, sizeof err);
    cr_assert_not_null(cfg, "%s", err);
    targets_apply_config(tm, cfg);
    target_group g;
    target_group_init(&g, "static:0");
    for (int i = 0; i < 400; i++) {
        char a[32];
        labelset t = LABELSET_INIT;
        snprintf(a, sizeof a, "t%03d:80", i);
        labelset_set(&t, "__address__", a);
        target_group_add_target(&g, &t);
        labelset_free(&t);
    }
    const target_group *gs[] = {&g};
    targets_sync(tm, "big", gs, 1);
    target_group_free(&g);
    reply r;
    request("GET", "/api/v1/targets", NULL, NULL, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_gt(r.body.len, 2 * (32u << 10), "%zu bytes: more than two pages", r.body.len);
    cr_assert_eq(count_of(r.body.buf, "\"scrapeUrl\":"), 400);
    cr_assert(strstr(r.body.buf, "\"scrapeUrl\":\"http://t399:80/-/exceptions\""), "the last target is there");
    const char *tail = "],\"droppedTargets\":[],\"droppedTargetCounts\":{\"big\":0}}}";
    cr_assert_str_eq(r.body.buf + r.body.len - strlen(tail), tail);
    strbuf_free(&r.body);
    targets_apply_config(tm, NULL);
    config_free(cfg);
}

/* A bad job name in the path is refused from the headers, before the body: a body over the limit still
 * gets the 400 for the name, not the 413 for its size; a good name with that body gets the 413. */
Test(api_answers, push_job_refused_before_the_body)
{
    push_config c = {.enabled = true, .body_size_limit = 16};
    push_api_configure(&papi, &c);
    reply r;
    request("POST", "/api/v1/push/a%01b", PAYLOAD, NULL, &r);
    expect(&r, 400, "text/plain; charset=utf-8",
           "invalid job name in the path (expected /api/v1/push/{job}, a non-empty name without '/')\n");
    request("POST", "/api/v1/push/ab", PAYLOAD, NULL, &r);
    expect(&r, 413, "text/plain; charset=utf-8", "request body too large (limit 16 bytes)\n");
}

/* Every kind of trailing whitespace of a credentials file is trimmed, a tab last too. */
Test(api_answers, push_credentials_file_trailing_tab)
{
    char path[] = "/tmp/lookout-cred-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "tok \n\r\t", 7), 7);
    close(fd);
    push_config c = {.enabled = true, .has_authorization = true, .authorization_type = "Bearer",
                     .authorization_credentials_file = path};
    push_api_configure(&papi, &c);
    reply r;
    request("POST", "/errors", PAYLOAD, "Bearer tok", &r);
    cr_assert_eq(r.status, 200, "%s", r.body.buf);
    strbuf_free(&r.body);
    unlink(path);
}

/* At 10000 distinct pushed jobs a new job is refused (429) before the body, any remembered one, the
 * first included, still accepted. The jobs are remembered through push_api's (public) list rather than
 * 10000 pushes. */
Test(api_answers, push_too_many_jobs)
{
    configure(NULL, NULL, NULL);
    papi.cap_pushed = papi.n_pushed = 10000;
    papi.pushed_jobs = calloc(papi.cap_pushed, sizeof *papi.pushed_jobs);
    for (size_t i = 0; i < papi.n_pushed; i++) {
        char j[32];
        snprintf(j, sizeof j, "j%zu", i);
        papi.pushed_jobs[i] = strdup(j);
    }
    reply r;
    request("POST", "/api/v1/push/new", PAYLOAD, NULL, &r);
    expect(&r, 429, "text/plain; charset=utf-8",
           "too many distinct pushed jobs (at most 10000); push to an existing job\n");
    static const char *const known[] = {"/api/v1/push/j0", "/api/v1/push/j9999"};
    for (size_t i = 0; i < 2; i++) {
        request("POST", known[i], PAYLOAD, NULL, &r);
        cr_assert_eq(r.status, 200, "%s: %s", known[i], r.body.buf);
        strbuf_free(&r.body);
    }
}
