/* web_config (exporter-toolkit format), auth (basic auth against bcrypt with a cache) and origin
 * (cross-site write refusal). Certificates are made with OpenSSL in the test. */
#include <criterion/criterion.h>
#include <crypt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/web_config.h"
#include "http/auth.h"
#include "http/origin.h"

static char dir[64];

static void write_file(const char *name, const char *text)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* A self-signed certificate and its key (and a second unrelated key) as PEM files in dir. */
static void make_cert(void)
{
    EVP_PKEY *k = EVP_RSA_gen(2048), *k2 = EVP_RSA_gen(2048);
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                               -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_sign(x, k, EVP_sha256());
    char p[128];
    snprintf(p, sizeof p, "%s/server.crt", dir);
    FILE *f = fopen(p, "w");
    PEM_write_X509(f, x);
    fclose(f);
    snprintf(p, sizeof p, "%s/server.key", dir);
    f = fopen(p, "w");
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    snprintf(p, sizeof p, "%s/other.key", dir);
    f = fopen(p, "w");
    PEM_write_PrivateKey(f, k2, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
    EVP_PKEY_free(k2);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/lookout-webcfg-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    make_cert();
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static web_config *load(const char *yaml, char *err, size_t n)
{
    write_file("web.yml", yaml);
    char p[128];
    snprintf(p, sizeof p, "%s/web.yml", dir);
    return web_config_load(p, err, n);
}

static void expect_error(const char *yaml, const char *needle)
{
    char err[1024] = "";
    web_config *w = load(yaml, err, sizeof err);
    cr_expect_null(w, "loaded: %s", yaml);
    web_config_free(w);
    cr_expect(strstr(err, needle) != NULL, "error '%s' lacks '%s'", err, needle);
}

static const char *hash_of(const char *pw)
{
    static char out[128];
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    cr_assert_not_null(crypt_gensalt_rn("$2y$", 4, NULL, 0, salt, sizeof salt));
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    snprintf(out, sizeof out, "%s", crypt_r(pw, salt, &cd));
    return out;
}

TestSuite(web_config, .init = setup, .fini = teardown);

Test(web_config, full_prometheus_file_loads)
{
    char yaml[2048], err[1024] = "";
    snprintf(yaml, sizeof yaml,
             "tls_server_config:\n"
             "  cert_file: server.crt\n"
             "  key_file: server.key\n"
             "  client_auth_type: RequireAndVerifyClientCert\n"
             "  client_ca_file: server.crt\n"
             "  min_version: TLS12\n"
             "  max_version: TLS13\n"
             "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]\n"
             "  curve_preferences: [X25519, CurveP256]\n"
             "  prefer_server_cipher_suites: false\n"
             "  client_allowed_sans: [client.example]\n"
             "http_server_config:\n"
             "  http2: false\n"
             "  headers:\n"
             "    Strict-Transport-Security: max-age=31536000\n"
             "    X-Frame-Options: deny\n"
             "rate_limit:\n"
             "  interval: 1s\n"
             "  burst: 5\n"
             "basic_auth_users:\n"
             "  alice: %s\n",
             hash_of("pw"));
    web_config *w = load(yaml, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_expect(w->tls);
    cr_expect_eq(w->client_auth, WEB_CLIENT_REQUIRE_VERIFIED);
    cr_expect_not_null(w->client_ca_pem);
    cr_expect_eq(w->min_version, WEB_TLS12);
    cr_expect_eq(w->max_version, WEB_TLS13);
    cr_expect_eq(w->n_cipher_suites, 2);
    cr_expect_eq(w->n_curves, 2);
    cr_expect(!w->prefer_server_cipher_suites);
    cr_expect(!w->http2);
    cr_expect_eq(w->n_headers, 2);
    cr_expect_str_eq(w->headers[1].name, "X-Frame-Options");
    cr_expect_eq(w->rate_interval_ms, 1000);
    cr_expect_eq(w->rate_burst, 5);
    cr_expect_eq(w->n_users, 1);
    cr_expect_not_null(web_config_user_hash(w, "alice"));
    cr_expect_null(web_config_user_hash(w, "bob"));
    cr_expect(strstr(w->cert_pem, "BEGIN CERTIFICATE") != NULL);
    web_config_free(w);
}

Test(web_config, empty_file_means_no_tls_no_auth)
{
    char err[256] = "";
    web_config *w = load("", err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_expect(!w->tls);
    cr_expect_eq(w->n_users, 0);
    cr_expect(w->http2);
    web_config_free(w);
}

Test(web_config, errors_name_the_problem)
{
    expect_error("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  bogus: 1\n",
                 "web.yml:4:3: field bogus not found in type web.TLSConfig");
    expect_error("basic_auth_users:\n  alice: hunter2\n", "password of user \"alice\" is not a bcrypt hash: "
                                                           "crypto/bcrypt: hashedSecret too short to be a bcrypted "
                                                           "password");
    expect_error("unknown_top: 1\n", "field unknown_top not found in type web.Config");
    expect_error("tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n",
                 "failed to read cert_file (");
    expect_error("tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n",
                 "missing.crt): open ");
    expect_error("tls_server_config:\n  key_file: server.key\n", "missing one of cert or cert_file");
    expect_error("tls_server_config:\n  cert_file: server.crt\n", "missing one of key or key_file");
    expect_error("tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n",
                 "failed to load X509KeyPair: tls: private key does not match public key");
    expect_error("tls_server_config:\n  cert_file: server.key\n  key_file: server.key\n",
                 "failed to load X509KeyPair: tls: failed to find any PEM data in certificate input");
    expect_error("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: Maybe\n",
                 "invalid ClientAuth: Maybe");
    expect_error("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: server.crt\n",
                 "client CA's have been configured without a Client Auth Policy");
    expect_error("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS9\n",
                 "unknown TLS version: TLS9");
    expect_error("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  cipher_suites: [NOPE]\n",
                 "unknown cipher: NOPE");
    expect_error("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  curve_preferences: [P1]\n",
                 "unknown curve: P1");
    expect_error("http_server_config:\n  headers:\n    X-Powered-By: me\n",
                 "HTTP header \"X-Powered-By\" can not be configured");
    expect_error("http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
                 "invalid value for X-Frame-Options. Expected one of: [\"deny\" \"sameorigin\"], but got: \"allow\"");
    expect_error("tls_server_config: [1]\n", "expected a mapping for web.TLSConfig");
    expect_error("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                 "  client_auth_type: VerifyClientCertIfGiven\n  client_allowed_sans: [a]\n",
                 "client_allowed_sans requires client_auth_type to be one of RequireAnyClientCert or "
                 "RequireAndVerifyClientCert");
    expect_error("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_allowed_sans: [a]\n",
                 "client_allowed_sans requires client_auth_type");
}

/* exporter-toolkit needs no client CA for any policy (Go verifies against the system's roots without
 * one), so each of these Prometheus files loads unchanged. */
Test(web_config, client_auth_without_ca_like_exporter_toolkit)
{
    static const struct {
        const char *type;
        web_client_auth want;
    } cases[] = {{"RequestClientCert", WEB_CLIENT_REQUEST},
                 {"RequireAnyClientCert", WEB_CLIENT_REQUIRE_ANY},
                 {"RequireClientCert", WEB_CLIENT_REQUIRE_ANY},
                 {"VerifyClientCertIfGiven", WEB_CLIENT_VERIFY_IF_GIVEN},
                 {"RequireAndVerifyClientCert", WEB_CLIENT_REQUIRE_VERIFIED}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char yaml[256], err[512] = "";
        snprintf(yaml, sizeof yaml, "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                                    "  client_auth_type: %s\n", cases[i].type);
        web_config *w = load(yaml, err, sizeof err);
        cr_assert_not_null(w, "%s: %s", cases[i].type, err);
        cr_expect_eq(w->client_auth, cases[i].want, "%s", cases[i].type);
        cr_expect_null(w->client_ca_pem);
        web_config_free(w);
    }
}

Test(web_config, http2_explicit_only_when_written_true)
{
    static const struct {
        const char *yaml;
        bool http2, explicit_;
    } cases[] = {{"", true, false},
                 {"http_server_config:\n  headers: {X-Frame-Options: deny}\n", true, false},
                 {"http_server_config:\n  http2: true\n", true, true},
                 {"http_server_config:\n  http2: false\n", false, false}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char err[256] = "";
        web_config *w = load(cases[i].yaml, err, sizeof err);
        cr_assert_not_null(w, "%s", err);
        cr_expect_eq(w->http2, cases[i].http2, "case %zu", i);
        cr_expect_eq(w->http2_explicit, cases[i].explicit_, "case %zu", i);
        web_config_free(w);
    }
}

Test(web_config, bcrypt_syntax_like_go)
{
    char err[256];
    cr_expect_eq(web_bcrypt_check("$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi", err, sizeof err),
                 0);
    cr_expect_eq(web_bcrypt_check("x2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi", err, sizeof err),
                 -1);
    cr_expect_str_eq(err, "crypto/bcrypt: bcrypt hashes must start with '$', but hashedSecret started with 'x'");
    cr_expect_eq(web_bcrypt_check("$2y$40$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi", err, sizeof err),
                 -1);
    cr_expect_str_eq(err, "crypto/bcrypt: cost 40 is outside allowed range (4,31)");
    cr_expect_eq(web_bcrypt_check("$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeS!", err, sizeof err),
                 -1);
}

TestSuite(auth);

Test(auth, parse_basic_header)
{
    char u[64], p[64];
    cr_assert_eq(auth_parse_basic("Basic YWxpY2U6czNjcjp0", u, sizeof u, p, sizeof p), 0); /* alice:s3cr:t */
    cr_expect_str_eq(u, "alice");
    cr_expect_str_eq(p, "s3cr:t");
    cr_assert_eq(auth_parse_basic("basic YTpi", u, sizeof u, p, sizeof p), 0); /* a:b */
    cr_expect_str_eq(p, "b");
    cr_expect_eq(auth_parse_basic("Bearer YTpi", u, sizeof u, p, sizeof p), -1);
    cr_expect_eq(auth_parse_basic("Basic bm9jb2xvbg==", u, sizeof u, p, sizeof p), -1); /* "nocolon" */
    cr_expect_eq(auth_parse_basic("Basic !!!!", u, sizeof u, p, sizeof p), -1);
    cr_expect_eq(auth_parse_basic(NULL, u, sizeof u, p, sizeof p), -1);
    cr_expect_eq(auth_parse_basic("Basic YTpi", u, 1, p, sizeof p), -1); /* does not fit */
}

Test(auth, check_with_cache)
{
    web_user users[1] = {{(char *)"alice", NULL}};
    char h[128];
    snprintf(h, sizeof h, "%s", hash_of("right"));
    users[0].hash = h;
    web_config cfg = {.users = users, .n_users = 1};
    auth_cache *c = auth_cache_new();
    cr_expect(auth_check(c, &cfg, "alice", "right"));
    cr_expect_eq(auth_bcrypt_runs(c), 1);
    for (int i = 0; i < 10; i++)
        cr_expect(auth_check(c, &cfg, "alice", "right"));
    cr_expect_eq(auth_bcrypt_runs(c), 1, "a correct password is verified once, then found in the cache");
    cr_expect(!auth_check(c, &cfg, "alice", "wrong"));
    cr_expect(!auth_check(c, &cfg, "alice", "Right"));
    cr_expect(!auth_check(c, &cfg, "alice", ""));
    cr_expect(!auth_check(c, &cfg, "bob", "right"), "unknown user");
    cr_expect(!auth_check(c, &cfg, "bob", "fakepassword"), "the timing hash's password opens nothing");
    cr_expect(!auth_check(c, &cfg, "alice", "wrong"), "cached refusal stays a refusal");
    /* A new hash for alice (reload): the old password misses the cache and fails. */
    char h2[128];
    snprintf(h2, sizeof h2, "%s", hash_of("new"));
    users[0].hash = h2;
    cr_expect(!auth_check(c, &cfg, "alice", "right"));
    cr_expect(auth_check(c, &cfg, "alice", "new"));
    auth_cache_free(c);
}

TestSuite(origin);

static origin_verdict chk(const char *method, const char *origin, const char *sfs, const char *scheme,
                          const char *host, const pcre2_code *allowed)
{
    origin_request r = {method, origin, sfs, scheme, host, NULL, NULL, NULL, NULL};
    return origin_check(&r, allowed);
}
Test(origin, cross_site_writes_refused)
{
    char err[256];
    pcre2_code *allow = origin_compile("http://localhost:[0-9]+", err, sizeof err);
    cr_assert_not_null(allow, "%s", err);
    const char *host = "lookout:7777";
    cr_expect_eq(chk("GET", "http://evil.example", "cross-site", "http", host, NULL), ORIGIN_PASS);
    cr_expect_eq(chk("POST", NULL, NULL, "http", host, NULL), ORIGIN_PASS, "curl: no Origin");
    cr_expect_eq(chk("POST", "http://lookout:7777", "same-origin", "http", host, NULL), ORIGIN_PASS);
    cr_expect_eq(chk("POST", "http://LOOKOUT:7777", NULL, "http", host, NULL), ORIGIN_PASS);
    cr_expect_eq(chk("POST", "https://lookout:7777", NULL, "http", host, NULL), ORIGIN_CROSS_SITE,
                 "another scheme is another origin");
    cr_expect_eq(chk("POST", "http://lookout", NULL, "http", "lookout:80", NULL), ORIGIN_PASS,
                 "default port");
    cr_expect_eq(chk("POST", "http://evil.example", NULL, "http", host, NULL), ORIGIN_CROSS_SITE);
    cr_expect_eq(chk("DELETE", "null", NULL, "http", host, NULL), ORIGIN_CROSS_SITE);
    cr_expect_eq(chk("PUT", NULL, "cross-site", "http", host, NULL), ORIGIN_CROSS_SITE);
    cr_expect_eq(chk("POST", NULL, "same-site", "http", host, NULL), ORIGIN_CROSS_SITE);
    cr_expect_eq(chk("POST", NULL, "none", "http", host, NULL), ORIGIN_PASS, "typed in the address bar");
    cr_expect_eq(chk("OPTIONS", "http://evil.example", "cross-site", "http", host, NULL),
                 ORIGIN_CROSS_SITE);
    cr_expect_eq(chk("OPTIONS", "http://localhost:3000", "cross-site", "http", host, NULL),
                 ORIGIN_CROSS_SITE, "the Periskop UI's origin only when listed");
    cr_expect_eq(chk("DELETE", "http://localhost:3000", "same-site", "http", host, allow), ORIGIN_ALLOWED);
    cr_expect_eq(chk("DELETE", "http://localhost:3000.evil.example", "cross-site", "http", host, allow),
                 ORIGIN_CROSS_SITE, "anchored");
    cr_expect_eq(chk("POST", "http://evil.example", NULL, "http", NULL, NULL), ORIGIN_CROSS_SITE,
                 "no Host header");
    pcre2_code_free(allow);
    cr_expect_null(origin_compile("(", err, sizeof err));
}

Test(origin, behind_a_reverse_proxy)
{
    /* TLS terminated by an ingress that forwards Host unchanged, or rewrites it (nginx's default). */
    origin_request r = {"POST", "https://lookout.example", "same-origin", "http", "lookout.example", "https", NULL,
                        NULL, NULL};
    cr_expect_eq(origin_check(&r, NULL), ORIGIN_PASS);
    r = (origin_request){"POST", "https://lookout.example", NULL, "http", "10.0.0.7:7777", "https",
                         "lookout.example, proxy.internal", NULL, NULL};
    cr_expect_eq(origin_check(&r, NULL), ORIGIN_PASS);
    r = (origin_request){"POST", "https://evil.example", NULL, "http", "10.0.0.7:7777", "https", "lookout.example",
                         NULL, NULL};
    cr_expect_eq(origin_check(&r, NULL), ORIGIN_CROSS_SITE);
    r = (origin_request){"POST", "https://lookout.example", NULL, "http", "lookout.example", NULL, NULL, NULL, NULL};
    cr_expect_eq(origin_check(&r, NULL), ORIGIN_CROSS_SITE, "without X-Forwarded-Proto the scheme differs");
}

Test(origin, external_url_is_lookouts_own)
{
    /* A proxy that rewrites Host and adds no X-Forwarded-* headers: --web.external-url names the origin. */
    origin_request r = {"POST", "https://errors.example.com", NULL, "http", "10.0.0.7:7777", NULL, NULL,
                        "https", "errors.example.com"};
    cr_expect_eq(origin_check(&r, NULL), ORIGIN_PASS);
    r.origin = "https://errors.example.com:8443";
    cr_expect_eq(origin_check(&r, NULL), ORIGIN_CROSS_SITE, "another port");
    r.origin = "http://errors.example.com";
    cr_expect_eq(origin_check(&r, NULL), ORIGIN_CROSS_SITE, "another scheme");
    r.origin = "https://evil.example";
    cr_expect_eq(origin_check(&r, NULL), ORIGIN_CROSS_SITE);
}
