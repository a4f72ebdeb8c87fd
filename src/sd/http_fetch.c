/* http_fetch: see http_fetch.h. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/client.h"
#include "sd/http_fetch.h"

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    sd_fetch *f = arg;
    size_t n = size * nmemb;
    if (f->len + n > f->max) {
        f->too_big = true;
        return 0; /* aborts the transfer */
    }
    if (f->len + n + 1 > f->cap) {
        size_t cap = f->cap ? f->cap : 4096;
        while (cap < f->len + n + 1)
            cap *= 2;
        char *b = realloc(f->body, cap);
        if (!b)
            abort();
        f->body = b;
        f->cap = cap;
    }
    memcpy(f->body + f->len, data, n);
    f->len += n;
    f->body[f->len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    sd_fetch *f = arg;
    size_t n = size * nmemb;
    if (n >= 5 && !strncmp(data, "HTTP/", 5)) { /* a new response (redirect): forget the previous headers */
        f->content_type[0] = '\0';
        f->has_index = false;
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon)
        return n;
    size_t kl = (size_t)(colon - data);
    const char *v = colon + 1, *end = data + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vl = (size_t)(end - v);
    if (kl == 12 && !strncasecmp(data, "Content-Type", 12)) {
        if (vl >= sizeof f->content_type)
            vl = sizeof f->content_type - 1;
        memcpy(f->content_type, v, vl);
        f->content_type[vl] = '\0';
    } else if (kl == 14 && !strncasecmp(data, "X-Consul-Index", 14)) {
        uint64_t x = 0;
        bool ok = vl > 0 && vl <= 20;
        for (size_t i = 0; ok && i < vl; i++) {
            if (!isdigit((unsigned char)v[i]) || x > (UINT64_MAX - (uint64_t)(v[i] - '0')) / 10)
                ok = false;
            else
                x = x * 10 + (uint64_t)(v[i] - '0');
        }
        f->has_index = ok;
        f->index = x;
    }
    return n;
}

int sd_fetch_prepare(sd_fetch *f, const http_client_config *cfg, const char *url, const char *const *headers,
                     long timeout_ms, size_t max_body, char *err, size_t errlen)
{
    if (!f->h) {
        f->h = curl_easy_init();
        if (!f->h) {
            snprintf(err, errlen, "cannot create a curl handle");
            return -1;
        }
    } else {
        curl_easy_reset(f->h);
    }
    http_request_free(f->req);
    f->req = http_client_prepare(f->h, cfg, url, headers, err, errlen);
    if (!f->req)
        return -1;
    f->len = 0;
    if (f->body)
        f->body[0] = '\0';
    f->max = max_body;
    f->too_big = false;
    f->content_type[0] = '\0';
    f->has_index = false;
    f->index = 0;
    f->errbuf[0] = '\0';
    curl_easy_setopt(f->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(f->h, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(f->h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(f->h, CURLOPT_HEADERDATA, f);
    curl_easy_setopt(f->h, CURLOPT_ERRORBUFFER, f->errbuf);
    curl_easy_setopt(f->h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(f->h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 30000 ? timeout_ms : 30000L);
    curl_easy_setopt(f->h, CURLOPT_ACCEPT_ENCODING, ""); /* Go's transport asks for gzip and decodes it */
    curl_easy_setopt(f->h, CURLOPT_USERAGENT, "lookout/" LOOKOUT_VERSION);
    curl_easy_setopt(f->h, CURLOPT_PRIVATE, f);
    return 0;
}

long sd_fetch_result(sd_fetch *f, CURLcode code, char *err, size_t errlen)
{
    if (f->too_big) {
        snprintf(err, errlen, "response body larger than %zu bytes", f->max);
        return -1;
    }
    if (code != CURLE_OK) {
        snprintf(err, errlen, "%s", f->errbuf[0] ? f->errbuf : curl_easy_strerror(code));
        return -1;
    }
    long status = 0;
    curl_easy_getinfo(f->h, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

void sd_fetch_drop_body(sd_fetch *f)
{
    free(f->body);
    f->body = NULL;
    f->len = f->cap = 0;
}

void sd_fetch_reset(sd_fetch *f)
{
    if (f->h)
        curl_easy_cleanup(f->h);
    http_request_free(f->req);
    free(f->body);
    memset(f, 0, sizeof *f);
}

const char *sd_http_status_text(long code)
{
    switch (code) {
    case 200: return "200 OK";
    case 201: return "201 Created";
    case 204: return "204 No Content";
    case 301: return "301 Moved Permanently";
    case 302: return "302 Found";
    case 304: return "304 Not Modified";
    case 400: return "400 Bad Request";
    case 401: return "401 Unauthorized";
    case 403: return "403 Forbidden";
    case 404: return "404 Not Found";
    case 405: return "405 Method Not Allowed";
    case 429: return "429 Too Many Requests";
    case 500: return "500 Internal Server Error";
    case 502: return "502 Bad Gateway";
    case 503: return "503 Service Unavailable";
    case 504: return "504 Gateway Timeout";
    default: return NULL;
    }
}
