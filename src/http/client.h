/* http_client: applies a Prometheus HTTPClientConfig (config.h http_client_config) to a libcurl easy
 * handle. Shared by the scrape scheduler and HTTP-based SD providers (Consul, Kubernetes, HTTP SD).
 *
 * What it sets, mirroring Prometheus' common/config http client:
 *   basic_auth (password_file read at every request, trimmed), authorization (credentials_file re-read at
 *   every request, trimmed; header "Authorization: TYPE CREDENTIALS", none when the credentials are empty),
 *   tls_config (ca/cert/key files or inline PEM, insecure_skip_verify, min_version default TLS 1.2,
 *   server_name), proxy_url (no proxy from the environment when unset, like Prometheus),
 *   follow_redirects (max 10, like Go), enable_http2 (HTTP/2 only via TLS ALPN, like Go), and restricts
 *   protocols to http and https.
 *
 * server_name: libcurl has no option to set the TLS SNI/verification name apart from the URL host. So the
 * URL host is replaced by server_name (which makes curl send it as SNI and verify the certificate
 * against it), CURLOPT_CONNECT_TO maps server_name:port back to the original host:port (the TCP
 * destination does not change), and an explicit "Host:" header keeps the original authority in the
 * request. The net effect is Go's tls.Config.ServerName. (CONNECT_TO or RESOLVE alone would change only
 * the destination, not the SNI.)
 *
 * Threading: no shared state; call from the thread that owns the easy handle. */
#ifndef LOOKOUT_HTTP_CLIENT_H
#define LOOKOUT_HTTP_CLIENT_H
#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

#include "config/config.h"

/* Resources a prepared transfer points to (header and connect-to lists, the rewritten URL). They must
 * outlive the transfer: free with http_request_free() after curl_easy_cleanup()/curl_easy_reset(). */
typedef struct http_request http_request;

/* Prepares `h` (fresh or curl_easy_reset) to GET `url` with cfg applied (cfg may be NULL: defaults).
 * extra_headers: NULL-terminated "Name: value" list (may be NULL), sent in addition.
 * Returns NULL and writes a message into err when a secret file cannot be read or the URL is invalid,
 * e.g. "unable to read basic auth password file /x: open /x: no such file or directory". */
http_request *http_client_prepare(CURL *h, const http_client_config *cfg, const char *url,
                                  const char *const *extra_headers, char *err, size_t errlen);
void http_request_free(http_request *r);

/* The Authorization header http_client_prepare would make curl send, for clients that do not use curl
 * (http/h1client.c): *basic gets "Authorization: Basic base64(user:password)" (curl sends it before its
 * Accept-Encoding), *other "Authorization: TYPE CREDENTIALS" (sent after extra_headers); each malloc'd or
 * NULL, holding a secret: wipe before free. None when extra_headers has an Authorization header. Secret
 * files are read now. Returns 0, or -1 with prepare's error text in err. */
int http_client_auth_headers(const http_client_config *cfg, const char *const *extra_headers, char **basic,
                             char **other, char *err, size_t errlen);

/* Error text for a failed transfer in Prometheus' (Go net/http) words, where there is an equivalent:
 *   Get "URL": context deadline exceeded                                  (timeout)
 *   Get "URL": dial tcp 127.0.0.1:9: connect: connection refused          (refused; errno text)
 *   Get "URL": dial tcp: lookup HOST: no such host                         (resolution)
 *   Get "URL": <curl's error buffer or curl_easy_strerror>                 (anything else)
 * h: the finished easy handle (for the OS errno and peer address); errbuf: its CURLOPT_ERRORBUFFER or NULL.
 * The URL is written with its password redacted (http_client_redact_url). */
void http_client_describe_error(CURL *h, CURLcode rc, const char *url, const char *errbuf, char *out, size_t n);
/* url with the password of its userinfo replaced by "***" ("http://u:***@h/"), as Go's net/http writes
 * URLs into errors: for error texts and log lines. */
void http_client_redact_url(const char *url, char *out, size_t n);
/* "server returned HTTP status 500 Internal Server Error": reason is the server's reason phrase (from the
 * status line, what Go's resp.Status holds); NULL/empty uses Go's http.StatusText. */
void http_client_status_error(long status, const char *reason, char *out, size_t n);

/* Copy, compare and release a client config with config.h's http_client_config_copy / _equal / _release
 * (one destructor, wiping secrets). */

/* Reads a secret file the way Prometheus does (whole file, surrounding whitespace trimmed), at most
 * 64 KiB. Returns a malloc'd string, or NULL with err "open PATH: no such file or directory". */
char *http_client_read_secret(const char *path, char *err, size_t errlen);

#endif
