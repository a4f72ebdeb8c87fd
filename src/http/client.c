/* http_client: see http_client.h. */
#include "http/client.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "labels/relabel.h"
#include "util/xalloc.h"

#define SECRET_MAX (64 * 1024)

struct http_request {
    struct curl_slist *headers;
    struct curl_slist *connect_to;
    char *url; /* rewritten URL (server_name), NULL when the original is used */
};

/* Go's os errors read "open PATH: no such file or directory": lower-case strerror. */
static void os_error(char *err, size_t errlen, const char *op, const char *path, int e)
{
    char msg[128];
    snprintf(msg, sizeof msg, "%s", strerror(e));
    if (msg[0])
        msg[0] = (char)tolower((unsigned char)msg[0]);
    snprintf(err, errlen, "%s %s: %s", op, path, msg);
}

char *http_client_read_secret(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        os_error(err, errlen, "open", path, errno);
        return NULL;
    }
    char *buf = malloc(SECRET_MAX + 1);
    if (!buf)
        abort();
    size_t n = fread(buf, 1, SECRET_MAX + 1, f);
    int rerr = ferror(f) ? errno : 0;
    fclose(f);
    if (rerr) {
        os_error(err, errlen, "read", path, rerr);
        free(buf);
        return NULL;
    }
    if (n > SECRET_MAX) {
        snprintf(err, errlen, "read %s: file larger than %d bytes", path, SECRET_MAX);
        free(buf);
        return NULL;
    }
    size_t b = 0, e = n;
    while (b < e && isspace((unsigned char)buf[b]))
        b++;
    while (e > b && isspace((unsigned char)buf[e - 1]))
        e--;
    memmove(buf, buf + b, e - b);
    buf[e - b] = '\0';
    return buf;
}

void http_request_free(http_request *r)
{
    if (!r)
        return;
    curl_slist_free_all(r->headers);
    curl_slist_free_all(r->connect_to);
    free(r->url);
    free(r);
}

static void add_header(http_request *r, const char *h)
{
    struct curl_slist *n = curl_slist_append(r->headers, h);
    if (!n)
        abort();
    r->headers = n;
}

static bool header_present(const char *const *hdrs, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; hdrs && hdrs[i]; i++)
        if (strncasecmp(hdrs[i], name, nl) == 0 && hdrs[i][nl] == ':')
            return true;
    return false;
}

static void set_blob(CURL *h, CURLoption opt, const char *pem)
{
    struct curl_blob b = {.data = (void *)pem, .len = strlen(pem), .flags = CURL_BLOB_COPY};
    curl_easy_setopt(h, opt, &b);
}

static long tls_version(const char *v)
{
    if (!v || !*v)
        return CURL_SSLVERSION_TLSv1_2; /* Go's client default minimum */
    if (!strcmp(v, "TLS10"))
        return CURL_SSLVERSION_TLSv1_0;
    if (!strcmp(v, "TLS11"))
        return CURL_SSLVERSION_TLSv1_1;
    if (!strcmp(v, "TLS13"))
        return CURL_SSLVERSION_TLSv1_3;
    return CURL_SSLVERSION_TLSv1_2;
}

/* Rewrites https URL host to server_name; see the header comment. Returns 0, or -1 with err. */
static int apply_server_name(http_request *r, const char *url, const char *server_name, char *err,
                             size_t errlen)
{
    CURLU *u = curl_url();
    if (!u)
        abort();
    char *scheme = NULL, *host = NULL, *port = NULL, *newurl = NULL;
    int rc = -1;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        snprintf(err, errlen, "parse \"%s\": invalid URL", url);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        snprintf(err, errlen, "parse \"%s\": invalid URL", url);
        goto out;
    }
    if (strcasecmp(scheme, "https") != 0 || strcasecmp(host, server_name) == 0) {
        rc = 0; /* SNI only matters for TLS; same name needs nothing */
        goto out;
    }
    /* Host header: the original authority; the port only when it is not the scheme default. */
    char *explicit_port = NULL;
    curl_url_get(u, CURLUPART_PORT, &explicit_port, 0);
    char buf[1024];
    if (explicit_port)
        snprintf(buf, sizeof buf, "Host: %s:%s", host, explicit_port);
    else
        snprintf(buf, sizeof buf, "Host: %s", host);
    curl_free(explicit_port);
    add_header(r, buf);
    bool v6 = strchr(server_name, ':') != NULL;
    snprintf(buf, sizeof buf, "%s%s%s:%s:%s:%s", v6 ? "[" : "", server_name, v6 ? "]" : "", port, host, port);
    r->connect_to = curl_slist_append(NULL, buf);
    if (!r->connect_to)
        abort();
    if (curl_url_set(u, CURLUPART_HOST, server_name, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &newurl, 0) != CURLUE_OK) {
        snprintf(err, errlen, "tls_config server_name \"%s\" is not a valid host name", server_name);
        goto out;
    }
    r->url = xstrdup(newurl);
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(newurl);
    curl_url_cleanup(u);
    return rc;
}

/* Go's net/http speaks http and https only (url.Parse lowercases the scheme first); Prometheus 2.42 loads
 * any scheme and reports each request of such a target with these errors, which lastError mirrors:
 *   parse "URL": net/url: invalid control character in URL
 *   parse "URL": missing protocol scheme                     (URL begins with ':')
 *   parse "URL": first path segment in URL cannot contain colon   (no valid scheme, e.g. "1ftp", "a b")
 *   Get "URL": unsupported protocol scheme "ftp"             (URL with its scheme lowercased)
 * curl is restricted to http/https as well (CURLOPT_PROTOCOLS_STR); this check gives Go's words and keeps
 * curl from guessing a scheme for "//host/path". Returns 0 for http/https, else -1 with err. */
static int check_scheme(const char *url, char *err, size_t errlen)
{
    char red[2048], q[2200], qs[300];
    http_client_redact_url(url, red, sizeof red);
    for (const char *p = url; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            relabel_go_quote(q, sizeof q, red);
            snprintf(err, errlen, "parse %s: net/url: invalid control character in URL", q);
            return -1;
        }
    }
    size_t n = 0; /* scheme length (Go's getScheme), 0 when none */
    for (size_t i = 0; url[i]; i++) {
        char c = url[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            continue;
        if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.') {
            if (i == 0)
                break;
            continue;
        }
        if (c == ':') {
            if (i == 0) {
                relabel_go_quote(q, sizeof q, red);
                snprintf(err, errlen, "parse %s: missing protocol scheme", q);
                return -1;
            }
            n = i;
        }
        break;
    }
    if ((n == 4 && strncasecmp(url, "http", 4) == 0) || (n == 5 && strncasecmp(url, "https", 5) == 0))
        return 0;
    if (n == 0 && url[0] != '/') {
        size_t seg = strcspn(url, "/?#");
        if (memchr(url, ':', seg)) {
            relabel_go_quote(q, sizeof q, red);
            snprintf(err, errlen, "parse %s: first path segment in URL cannot contain colon", q);
            return -1;
        }
    }
    char scheme[256];
    if (n >= sizeof scheme)
        n = sizeof scheme - 1;
    for (size_t i = 0; i < n; i++) {
        scheme[i] = (char)tolower((unsigned char)url[i]);
        red[i] = scheme[i]; /* the redacted URL starts with the same scheme */
    }
    scheme[n] = '\0';
    relabel_go_quote(q, sizeof q, red);
    relabel_go_quote(qs, sizeof qs, scheme);
    snprintf(err, errlen, "Get %s: unsupported protocol scheme %s", q, qs);
    return -1;
}

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* "Authorization: TYPE CREDENTIALS" for cfg's authorization (credentials_file re-read now), or NULL with
 * err "" when the credentials are empty (no header), or NULL with the error in err. */
static char *authorization_header(const http_client_config *cfg, char *err, size_t errlen)
{
    char *cred = NULL;
    err[0] = '\0';
    if (cfg->authorization_credentials_file && *cfg->authorization_credentials_file) {
        char e2[512];
        cred = http_client_read_secret(cfg->authorization_credentials_file, e2, sizeof e2);
        if (!cred) {
            snprintf(err, errlen, "unable to read authorization credentials file %s: %s",
                     cfg->authorization_credentials_file, e2);
            return NULL;
        }
    } else {
        cred = xstrdup(cfg->authorization_credentials ? cfg->authorization_credentials : "");
    }
    char *hdr = NULL;
    if (*cred) {
        const char *type = cfg->authorization_type && *cfg->authorization_type ? cfg->authorization_type
                                                                              : "Bearer";
        size_t need = strlen(type) + strlen(cred) + 32;
        hdr = xmalloc(need);
        snprintf(hdr, need, "Authorization: %s %s", type, cred);
    }
    wipe_free(cred);
    return hdr;
}

/* basic_auth's password (password_file re-read now), or NULL with the error in err. */
static char *basic_password(const http_client_config *cfg, char *err, size_t errlen)
{
    if (cfg->basic_auth_password_file && *cfg->basic_auth_password_file) {
        char e2[512];
        char *pw = http_client_read_secret(cfg->basic_auth_password_file, e2, sizeof e2);
        if (!pw)
            snprintf(err, errlen, "unable to read basic auth password file %s: %s", cfg->basic_auth_password_file,
                     e2);
        return pw;
    }
    return xstrdup(cfg->basic_auth_password ? cfg->basic_auth_password : "");
}

int http_client_auth_headers(const http_client_config *cfg, const char *const *extra_headers, char **basic,
                             char **other, char *err, size_t errlen)
{
    *basic = *other = NULL;
    if (!cfg || header_present(extra_headers, "Authorization"))
        return 0;
    if (cfg->has_authorization) {
        *other = authorization_header(cfg, err, errlen);
        return *other || !err[0] ? 0 : -1;
    }
    if (!cfg->has_basic_auth)
        return 0;
    char *pw = basic_password(cfg, err, errlen);
    if (!pw)
        return -1;
    const char *user = cfg->basic_auth_username ? cfg->basic_auth_username : "";
    size_t plain_len = strlen(user) + 1 + strlen(pw);
    char *plain = xmalloc(plain_len + 1);
    snprintf(plain, plain_len + 1, "%s:%s", user, pw);
    wipe_free(pw);
    size_t need = 21 + 4 * ((plain_len + 2) / 3) + 1;
    char *hdr = xmalloc(need);
    memcpy(hdr, "Authorization: Basic ", 21);
    EVP_EncodeBlock((unsigned char *)hdr + 21, (const unsigned char *)plain, (int)plain_len);
    wipe_free(plain);
    *basic = hdr;
    return 0;
}

http_request *http_client_prepare(CURL *h, const http_client_config *cfg, const char *url,
                                  const char *const *extra_headers, char *err, size_t errlen)
{
    if (check_scheme(url, err, errlen) != 0)
        return NULL;
    static const http_client_config defaults = {.follow_redirects = true, .enable_http2 = true};
    if (!cfg)
        cfg = &defaults;
    http_request *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    for (size_t i = 0; extra_headers && extra_headers[i]; i++)
        add_header(r, extra_headers[i]);

    /* Credentials: like Prometheus' round trippers, an Authorization header set by the caller wins. */
    bool caller_auth = header_present(extra_headers, "Authorization");
    if (cfg->has_authorization && !caller_auth) {
        char *hdr = authorization_header(cfg, err, errlen);
        if (!hdr && err[0]) {
            http_request_free(r);
            return NULL;
        }
        if (hdr) {
            add_header(r, hdr);
            wipe_free(hdr);
        }
    } else if (cfg->has_basic_auth && !caller_auth) {
        char *pw = basic_password(cfg, err, errlen);
        if (!pw) {
            http_request_free(r);
            return NULL;
        }
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, cfg->basic_auth_username ? cfg->basic_auth_username : "");
        curl_easy_setopt(h, CURLOPT_PASSWORD, pw); /* curl copies it */
        wipe_free(pw);
    }

    const tls_config *t = &cfg->tls;
    if (t->server_name && *t->server_name && apply_server_name(r, url, t->server_name, err, errlen) != 0) {
        http_request_free(r);
        return NULL;
    }
    if (t->ca && *t->ca)
        set_blob(h, CURLOPT_CAINFO_BLOB, t->ca);
    else if (t->ca_file && *t->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, t->ca_file);
    if (t->cert && *t->cert)
        set_blob(h, CURLOPT_SSLCERT_BLOB, t->cert);
    else if (t->cert_file && *t->cert_file)
        curl_easy_setopt(h, CURLOPT_SSLCERT, t->cert_file);
    if (t->key && *t->key)
        set_blob(h, CURLOPT_SSLKEY_BLOB, t->key);
    else if (t->key_file && *t->key_file)
        curl_easy_setopt(h, CURLOPT_SSLKEY, t->key_file);
    if (t->insecure_skip_verify) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    curl_easy_setopt(h, CURLOPT_SSLVERSION, tls_version(t->min_version));

    /* Prometheus ignores HTTP(S)_PROXY unless configured; curl reads them unless told otherwise. */
    curl_easy_setopt(h, CURLOPT_PROXY, cfg->proxy_url && *cfg->proxy_url ? cfg->proxy_url : "");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, cfg->follow_redirects ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION,
                     cfg->enable_http2 ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);

    curl_easy_setopt(h, CURLOPT_URL, r->url ? r->url : url);
    if (r->connect_to)
        curl_easy_setopt(h, CURLOPT_CONNECT_TO, r->connect_to);
    if (r->headers)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->headers);
    return r;
}

/* Go's http.StatusText for responses without a reason phrase (HTTP/2). */
static const char *status_text(long code)
{
    switch (code) {
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
    }
}

void http_client_status_error(long status, const char *reason, char *out, size_t n)
{
    snprintf(out, n, "server returned HTTP status %ld %s", status, reason && *reason ? reason : status_text(status));
    size_t len = strlen(out);
    while (len && out[len - 1] == ' ')
        out[--len] = '\0';
}

static void lower_first(char *s)
{
    if (s[0])
        s[0] = (char)tolower((unsigned char)s[0]);
}

/* Host (IPv6 in brackets) and port (scheme default when absent) of url. */
static int url_host_port(const char *url, char *host, size_t hostlen, long *port)
{
    CURLU *u = curl_url();
    char *h = NULL, *p = NULL;
    int rc = -1;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        snprintf(host, hostlen, "%s", h);
        *port = strtol(p, NULL, 10);
        rc = 0;
    }
    curl_free(h);
    curl_free(p);
    curl_url_cleanup(u);
    return rc;
}

void http_client_redact_url(const char *url, char *out, size_t n)
{
    const char *sep = strstr(url, "://");
    const char *auth = sep ? sep + 3 : NULL;
    size_t alen = auth ? strcspn(auth, "/?#") : 0;
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++) /* the last '@' of the authority ends the userinfo */
        if (auth[i] == '@')
            at = auth + i;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon) {
        snprintf(out, n, "%s", url);
        return;
    }
    snprintf(out, n, "%.*s:***%s", (int)(colon - url), url, at);
}

void http_client_describe_error(CURL *h, CURLcode rc, const char *raw_url, const char *errbuf, char *out, size_t n)
{
    char url[2048];
    http_client_redact_url(raw_url, url, sizeof url);
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(out, n, "Get \"%s\": context deadline exceeded", url);
        return;
    case CURLE_COULDNT_CONNECT: {
        long oserr = 0;
        char *ip = NULL;
        long port = 0;
        curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
        curl_easy_getinfo(h, CURLINFO_PRIMARY_IP, &ip);
        curl_easy_getinfo(h, CURLINFO_PRIMARY_PORT, &port);
        char msg[128], host[256], addr[300];
        snprintf(msg, sizeof msg, "%s", oserr ? strerror((int)oserr) : "connection failed");
        lower_first(msg);
        if (ip && *ip && port > 0) {
            snprintf(host, sizeof host, "%s", ip);
        } else if (url_host_port(url, host, sizeof host, &port) != 0) {
            snprintf(out, n, "Get \"%s\": dial tcp: connect: %s", url, msg);
            return;
        }
        /* Go writes the dialled address, "[::1]:80" for IPv6 */
        bool v6 = strchr(host, ':') != NULL && host[0] != '[';
        snprintf(addr, sizeof addr, "%s%s%s:%ld", v6 ? "[" : "", host, v6 ? "]" : "", port);
        snprintf(out, n, "Get \"%s\": dial tcp %s: connect: %s", url, addr, msg);
        return;
    }
    case CURLE_COULDNT_RESOLVE_HOST: {
        char host[256] = "";
        long port;
        url_host_port(url, host, sizeof host, &port);
        snprintf(out, n, "Get \"%s\": dial tcp: lookup %s: no such host", url, host);
        return;
    }
    default:
        snprintf(out, n, "Get \"%s\": %s", url, errbuf && errbuf[0] ? errbuf : curl_easy_strerror(rc));
        size_t len = strlen(out);
        while (len && (out[len - 1] == '\n' || out[len - 1] == '\r'))
            out[--len] = '\0';
    }
}
