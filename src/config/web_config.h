/* web_config: the web configuration file of --web.config.file, in the format of Prometheus'
 * exporter-toolkit (web/tls_config.go), so that the file a Prometheus operator already has works unchanged:
 *
 *   tls_server_config:            # HTTPS only when present
 *     cert_file: server.crt       # or cert: <PEM>; relative paths are relative to the file's directory
 *     key_file: server.key        # or key: <PEM>
 *     client_auth_type: RequireAndVerifyClientCert   # NoClientCert (default), RequestClientCert,
 *                                 # RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert
 *     client_ca_file: ca.crt      # or client_ca: <PEM>
 *     client_allowed_sans: [...]  # a verified client certificate must carry one of these SANs
 *     min_version: TLS12          # TLS10..TLS13; default TLS12 .. TLS13
 *     max_version: TLS13
 *     cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, ...]   # Go names; TLS 1.0-1.2 only
 *     curve_preferences: [X25519, CurveP256]
 *     prefer_server_cipher_suites: true
 *   http_server_config:
 *     http2: true                 # accepted, ignored: libmicrohttpd has no HTTP/2 (lookout serves HTTP/1.1)
 *     headers: {Strict-Transport-Security: max-age=31536000, X-Frame-Options: deny, ...}
 *   rate_limit: {interval: 1s, burst: 10}   # 429 beyond it (whole server)
 *   basic_auth_users:             # every endpoint then requires one of these users
 *     alice: $2y$10$...           # bcrypt hash
 *
 * Unknown keys, unreadable or mismatched certificates and passwords that are not bcrypt hashes are errors,
 * with exporter-toolkit's texts where it has one. Certificates and keys are read at load time (the
 * server re-reads the file on reload, keeping the old one when the new one is invalid). */
#ifndef LOOKOUT_CONFIG_WEB_CONFIG_H
#define LOOKOUT_CONFIG_WEB_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum web_client_auth {
    WEB_CLIENT_NONE = 0,         /* NoClientCert */
    WEB_CLIENT_REQUEST,          /* RequestClientCert: asked for, neither required nor verified */
    WEB_CLIENT_REQUIRE_ANY,      /* RequireAnyClientCert (RequireClientCert): required, not verified */
    WEB_CLIENT_VERIFY_IF_GIVEN,  /* VerifyClientCertIfGiven */
    WEB_CLIENT_REQUIRE_VERIFIED, /* RequireAndVerifyClientCert */
} web_client_auth;

/* TLS protocol versions as on the wire (Go's tls.VersionTLS1x). */
#define WEB_TLS10 0x0301
#define WEB_TLS11 0x0302
#define WEB_TLS12 0x0303
#define WEB_TLS13 0x0304

typedef struct web_user {
    char *name;
    char *hash; /* bcrypt ("$2a$", "$2b$", "$2y$", "$2x$"), syntax checked */
} web_user;

typedef struct web_header {
    char *name, *value;
} web_header;

typedef struct web_config {
    char *filename;
    bool tls; /* tls_server_config configures TLS (exporter-toolkit IsEnabled) */
    char *cert_pem, *key_pem; /* contents (from cert/key or the files), NUL-terminated */
    char *client_ca_pem;      /* NULL when none */
    web_client_auth client_auth;
    char **client_allowed_sans;
    size_t n_client_allowed_sans;
    uint16_t min_version, max_version;
    char **cipher_suites; /* Go names, validated */
    size_t n_cipher_suites;
    char **curves; /* Go names, validated */
    size_t n_curves;
    bool prefer_server_cipher_suites; /* default true */
    bool http2;                       /* default true; ignored (HTTP/1.1 only) */
    bool http2_explicit;              /* http2: true written in the file (the default is not) */
    web_header *headers;
    size_t n_headers;
    int64_t rate_interval_ms; /* 0: no rate limit */
    uint64_t rate_burst;
    web_user *users;
    size_t n_users;
} web_config;

/* Loads and validates FILE. Returns NULL with "FILE: what is wrong" (or "FILE:LINE:COLUMN: ...") in err. */
web_config *web_config_load(const char *path, char *err, size_t errlen);
/* Same from memory; name is used in messages and for relative paths (its directory). */
web_config *web_config_parse(const char *yaml, size_t len, const char *name, char *err, size_t errlen);
void web_config_free(web_config *c);

/* The user's bcrypt hash, NULL when there is no such user. */
const char *web_config_user_hash(const web_config *c, const char *user);

/* Checks the syntax of a bcrypt hash like Go's bcrypt.Cost. Returns 0, or -1 with Go's message
 * ("crypto/bcrypt: hashedSecret too short to be a bcrypted password"). */
int web_bcrypt_check(const char *hash, char *err, size_t errlen);

/* The Go cipher suite / curve names lookout accepts and their GnuTLS priority tokens (for http/). */
typedef struct web_cipher_suite {
    const char *go_name;
    const char *kx, *cipher, *mac; /* GnuTLS priority names */
} web_cipher_suite;
const web_cipher_suite *web_cipher_suite_find(const char *go_name);
const char *web_curve_gnutls_group(const char *go_name); /* "GROUP-X25519", NULL when unknown */

#endif
