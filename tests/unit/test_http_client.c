/* http_client tests: secrets, auth headers, proxy environment, redirects, and TLS (CA file and inline
 * PEM, insecure_skip_verify, server_name as SNI and verification name) against real servers: the
 * exception_server helper for plain HTTP and a python3 ssl server with a throwaway certificate. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper_server.h"
#include "http/client.h"

static helper_server srv;
static char body[65536];
static size_t body_len;

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
    (void)ud;
    size_t len = sz * n, room = sizeof body - 1 - body_len;
    size_t c = len < room ? len : room;
    memcpy(body + body_len, p, c);
    body_len += c;
    body[body_len] = '\0';
    return len;
}

/* GET url with cfg; returns the curl code; body in `body`, status in *status. */
static CURLcode get(const http_client_config *cfg, const char *url, const char *const *hdrs, long *status,
                    char *err, size_t errlen)
{
    body_len = 0;
    body[0] = '\0';
    CURL *h = curl_easy_init();
    http_request *r = http_client_prepare(h, cfg, url, hdrs, err, errlen);
    if (!r) {
        curl_easy_cleanup(h);
        return CURLE_FAILED_INIT;
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    CURLcode rc = curl_easy_perform(h);
    *status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(h);
    http_request_free(r);
    return rc;
}

static void start_plain(void) { cr_assert_eq(helper_server_start(&srv, NULL), 0); }
static void stop_plain(void) { helper_server_stop(&srv); }

TestSuite(http_client, .init = start_plain, .fini = stop_plain, .timeout = 20);

static void url_of(char *b, size_t n, const char *path) { snprintf(b, n, "http://127.0.0.1:%d%s", srv.port, path); }

Test(secret, read_trims_and_reports_errors)
{
    char path[] = "/tmp/lookout-secret-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_eq(write(fd, "  pa ss\t\n\n", 10), 10);
    close(fd);
    char err[256];
    char *s = http_client_read_secret(path, err, sizeof err);
    cr_assert_str_eq(s, "pa ss");
    free(s);
    unlink(path);
    cr_assert_null(http_client_read_secret(path, err, sizeof err));
    char want[128];
    snprintf(want, sizeof want, "open %s: no such file or directory", path);
    cr_assert_str_eq(err, want);
    /* Bounded: a huge file is refused, not read whole. */
    strcpy(path, "/tmp/lookout-secret-XXXXXX");
    fd = mkstemp(path);
    cr_assert_eq(ftruncate(fd, 1 << 20), 0);
    close(fd);
    cr_assert_null(http_client_read_secret(path, err, sizeof err));
    cr_assert(strstr(err, "file larger than") != NULL, "%s", err);
    unlink(path);
}

Test(http_client, defaults_ignore_proxy_environment)
{
    setenv("http_proxy", "http://127.0.0.1:1", 1);
    setenv("HTTP_PROXY", "http://127.0.0.1:1", 1);
    char url[128], err[256];
    url_of(url, sizeof url, "/echo");
    long st;
    CURLcode rc = get(NULL, url, NULL, &st, err, sizeof err);
    cr_assert_eq(rc, CURLE_OK, "%s", curl_easy_strerror(rc));
    cr_assert_eq(st, 200);
    cr_assert(strstr(body, "Authorization") == NULL, "%s", body);
}

Test(http_client, proxy_url_is_used)
{
    /* The helper is not a proxy, but with proxy_url pointing at it the request line carries the absolute
     * target URL: the request reaches the helper even though the URL names an unreachable host. */
    char proxy[128], err[256];
    url_of(proxy, sizeof proxy, "");
    http_client_config c = {.follow_redirects = true, .enable_http2 = true, .proxy_url = proxy};
    long st;
    get(&c, "http://unreachable.invalid:9/echo", NULL, &st, err, sizeof err);
    cr_assert_gt(helper_stat(&srv, "requests", NULL), 1, "request did not go through the proxy");
}

Test(http_client, authorization_header_forms)
{
    char url[128], err[256];
    url_of(url, sizeof url, "/echo");
    long st;
    http_client_config c = {.enable_http2 = true, .has_authorization = true, .authorization_type = "Token",
                            .authorization_credentials = "abc"};
    cr_assert_eq(get(&c, url, NULL, &st, err, sizeof err), CURLE_OK);
    cr_expect(strstr(body, "Authorization: Token abc\n") != NULL, "%s", body);
    c.authorization_type = NULL; /* default type */
    cr_assert_eq(get(&c, url, NULL, &st, err, sizeof err), CURLE_OK);
    cr_expect(strstr(body, "Authorization: Bearer abc\n") != NULL, "%s", body);
    c.authorization_credentials = ""; /* empty credentials: no header, like Prometheus */
    cr_assert_eq(get(&c, url, NULL, &st, err, sizeof err), CURLE_OK);
    cr_expect(strstr(body, "Authorization") == NULL, "%s", body);
    /* A caller's own Authorization header wins over the config. */
    c.authorization_credentials = "abc";
    const char *h[] = {"Authorization: Custom x", NULL};
    cr_assert_eq(get(&c, url, h, &st, err, sizeof err), CURLE_OK);
    cr_expect(strstr(body, "Authorization: Custom x\n") != NULL, "%s", body);
    cr_expect(strstr(body, "Bearer") == NULL, "%s", body);
}

Test(http_client, basic_auth_password_file)
{
    char path[] = "/tmp/lookout-pw-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_eq(write(fd, "hunter2\n", 8), 8);
    close(fd);
    char url[128], err[256];
    url_of(url, sizeof url, "/echo");
    long st;
    http_client_config c = {.enable_http2 = true, .has_basic_auth = true, .basic_auth_username = "bob",
                            .basic_auth_password_file = path};
    cr_assert_eq(get(&c, url, NULL, &st, err, sizeof err), CURLE_OK);
    cr_expect(strstr(body, "Authorization: Basic Ym9iOmh1bnRlcjI=\n") != NULL, "%s", body); /* bob:hunter2 */
    unlink(path);
    cr_assert_eq(get(&c, url, NULL, &st, err, sizeof err), CURLE_FAILED_INIT);
    char want[256];
    snprintf(want, sizeof want, "unable to read basic auth password file %s: open %s: no such file or directory",
             path, path);
    cr_expect_str_eq(err, want);
}

Test(http_client, follow_redirects_switch)
{
    char url[128], err[256];
    url_of(url, sizeof url, "/redirect");
    long st;
    http_client_config c = {.follow_redirects = true, .enable_http2 = true};
    cr_assert_eq(get(&c, url, NULL, &st, err, sizeof err), CURLE_OK);
    cr_expect_eq(st, 200);
    c.follow_redirects = false;
    cr_assert_eq(get(&c, url, NULL, &st, err, sizeof err), CURLE_OK);
    cr_expect_eq(st, 302);
}

Test(http_client, copy_and_release)
{
    http_client_config a = {.has_basic_auth = true, .basic_auth_username = "u", .basic_auth_password = "p",
                            .tls = {.server_name = "x", .ca = "PEM"}, .proxy_url = "http://p:1",
                            .follow_redirects = true};
    http_client_config b;
    http_client_config_copy(&b, &a);
    cr_assert_str_eq(b.basic_auth_username, "u");
    cr_assert_neq(b.basic_auth_username, a.basic_auth_username);
    cr_assert_str_eq(b.tls.ca, "PEM");
    cr_assert_null(b.tls.cert);
    cr_assert(b.follow_redirects && b.has_basic_auth);
    http_client_config_release(&b);
    cr_assert_null(b.proxy_url);
}

/* ---- TLS ------------------------------------------------------------------------------------ */

static char tlsdir[64];
static pid_t tls_pid;
static int tls_port;

static const char *tls_server_py =
    "import ssl,sys,http.server\n"
    "d=sys.argv[1]\n"
    "seen={'sni':None}\n"
    "ctx=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "ctx.load_cert_chain(d+'/cert.pem',d+'/key.pem')\n"
    "def cb(s,name,c): seen['sni']=name\n"
    "ctx.sni_callback=cb\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "  protocol_version='HTTP/1.1'\n"
    "  def do_GET(self):\n"
    "    b=('sni=%s host=%s\\n'%(seen['sni'],self.headers.get('Host'))).encode()\n"
    "    self.send_response(200); self.send_header('Content-Length',str(len(b))); self.end_headers()\n"
    "    self.wfile.write(b)\n"
    "  def log_message(self,*a): pass\n"
    "s=http.server.HTTPServer(('127.0.0.1',0),H)\n"
    "s.socket=ctx.wrap_socket(s.socket,server_side=True)\n"
    "print('port=%d'%s.server_address[1],flush=True)\n"
    "s.serve_forever()\n";

static void start_tls(void)
{
    snprintf(tlsdir, sizeof tlsdir, "/tmp/lookout-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(tlsdir));
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
             "-subj /CN=lookout.test -addext subjectAltName=DNS:lookout.test "
             "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1",
             tlsdir, tlsdir);
    cr_assert_eq(system(cmd), 0, "openssl failed");
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    tls_pid = fork();
    if (tls_pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execlp("python3", "python3", "-c", tls_server_py, tlsdir, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[64] = "";
    cr_assert_not_null(fgets(line, sizeof line, f), "python TLS server did not start");
    fclose(f);
    cr_assert_eq(sscanf(line, "port=%d", &tls_port), 1);
}

static void stop_tls(void)
{
    if (tls_pid > 0) {
        kill(tls_pid, SIGTERM);
        waitpid(tls_pid, NULL, 0);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tlsdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tlsdir);
}

TestSuite(tls, .init = start_tls, .fini = stop_tls, .timeout = 30);

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    static char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

Test(tls, server_name_sets_sni_and_verification_name)
{
    char url[128], ca[128], err[256];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/x", tls_port);
    snprintf(ca, sizeof ca, "%s/cert.pem", tlsdir);
    long st;
    /* Without server_name the certificate (for lookout.test) does not match 127.0.0.1. */
    http_client_config c = {.enable_http2 = true, .tls = {.ca_file = ca}};
    CURLcode rc = get(&c, url, NULL, &st, err, sizeof err);
    cr_expect_eq(rc, CURLE_PEER_FAILED_VERIFICATION, "got %s", curl_easy_strerror(rc));
    /* With it: SNI and verification use lookout.test, the TCP peer and Host header stay 127.0.0.1. */
    c.tls.server_name = "lookout.test";
    rc = get(&c, url, NULL, &st, err, sizeof err);
    cr_assert_eq(rc, CURLE_OK, "%s", curl_easy_strerror(rc));
    char want[128];
    snprintf(want, sizeof want, "sni=lookout.test host=127.0.0.1:%d\n", tls_port);
    cr_expect_str_eq(body, want);
}

Test(tls, inline_ca_and_insecure_skip_verify)
{
    char url[128], err[256], ca[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/x", tls_port);
    snprintf(ca, sizeof ca, "%s/cert.pem", tlsdir);
    long st;
    http_client_config c = {.enable_http2 = true, .tls = {.ca = slurp(ca), .server_name = "lookout.test"}};
    CURLcode rc = get(&c, url, NULL, &st, err, sizeof err);
    cr_expect_eq(rc, CURLE_OK, "inline CA: %s", curl_easy_strerror(rc));
    /* No CA at all: the system store does not know this certificate. */
    http_client_config d = {.enable_http2 = true, .tls = {.server_name = "lookout.test"}};
    rc = get(&d, url, NULL, &st, err, sizeof err);
    cr_expect_neq(rc, CURLE_OK);
    d.tls.insecure_skip_verify = true;
    d.tls.server_name = NULL;
    rc = get(&d, url, NULL, &st, err, sizeof err);
    cr_expect_eq(rc, CURLE_OK, "insecure: %s", curl_easy_strerror(rc));
    cr_expect(strstr(body, "sni=None") != NULL, "an IP address must not be sent as SNI: %s", body);
}

/* Go's net/http takes http and https only; every other scheme fails before any connection with the error
 * Prometheus 2.42 shows as lastError (texts taken from its /api/v1/targets for these URLs). */
Test(http_scheme, unsupported_schemes_fail_like_go)
{
    static const char *const cases[][2] = {
        {"ftp://127.0.0.1:21/metrics?a=b+c", "Get \"ftp://127.0.0.1:21/metrics?a=b+c\": unsupported protocol scheme \"ftp\""},
        {"FTP://127.0.0.1:25/metrics", "Get \"ftp://127.0.0.1:25/metrics\": unsupported protocol scheme \"ftp\""},
        {"javascript://127.0.0.1:23/metrics",
         "Get \"javascript://127.0.0.1:23/metrics\": unsupported protocol scheme \"javascript\""},
        {"//127.0.0.1:31/metrics", "Get \"//127.0.0.1:31/metrics\": unsupported protocol scheme \"\""},
        {"1ftp://127.0.0.1:33/metrics",
         "parse \"1ftp://127.0.0.1:33/metrics\": first path segment in URL cannot contain colon"},
        {"Weird Scheme!://127.0.0.1:32/metrics",
         "parse \"Weird Scheme!://127.0.0.1:32/metrics\": first path segment in URL cannot contain colon"},
        {"h\xc3\xa9://127.0.0.1:35/metrics",
         "parse \"h\xc3\xa9://127.0.0.1:35/metrics\": first path segment in URL cannot contain colon"},
        {":x://h:1/m", "parse \":x://h:1/m\": missing protocol scheme"},
        {"a\tb://h:1/m", "parse \"a\\tb://h:1/m\": net/url: invalid control character in URL"},
        {"ftp://u:secret@h:21/m", "Get \"ftp://u:***@h:21/m\": unsupported protocol scheme \"ftp\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CURL *h = curl_easy_init();
        char err[512] = "";
        http_request *r = http_client_prepare(h, NULL, cases[i][0], NULL, err, sizeof err);
        cr_expect_null(r, "%s was accepted", cases[i][0]);
        cr_expect_str_eq(err, cases[i][1]);
        http_request_free(r);
        curl_easy_cleanup(h);
    }
    /* http and https in any case are Go's too (url.Parse lowercases the scheme) */
    const char *okurls[] = {"http://h:1/m", "HTTPS://h:1/m", "Http://h:1/m"};
    for (size_t i = 0; i < 3; i++) {
        CURL *h = curl_easy_init();
        char err[512] = "";
        http_request *r = http_client_prepare(h, NULL, okurls[i], NULL, err, sizeof err);
        cr_expect_not_null(r, "%s: %s", okurls[i], err);
        http_request_free(r);
        curl_easy_cleanup(h);
    }
}
