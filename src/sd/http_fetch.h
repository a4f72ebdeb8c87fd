/* http_fetch: one HTTP GET of an SD provider (Consul, HTTP SD) on a libcurl easy handle, with the job's
 * http_client_config applied (http/client.h), a bounded body, and the response headers SD needs
 * (Content-Type, X-Consul-Index). Providers run these on a curl multi handle in their own thread.
 * Not thread-safe: one owner thread. */
#ifndef LOOKOUT_SD_HTTP_FETCH_H
#define LOOKOUT_SD_HTTP_FETCH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "config/config.h"

typedef struct sd_fetch {
    CURL *h;
    struct http_request *req;
    char *body;
    size_t len, cap, max;
    bool too_big;
    char content_type[256];
    bool has_index;
    uint64_t index; /* X-Consul-Index */
    char errbuf[CURL_ERROR_SIZE];
    void *owner; /* for the provider: which watch this transfer belongs to */
} sd_fetch;

/* Prepares f (zeroed or reset) to GET url. timeout_ms: whole transfer. Returns 0 or -1 with err (a secret
 * file that cannot be read, a bad URL). */
int sd_fetch_prepare(sd_fetch *f, const http_client_config *cfg, const char *url, const char *const *headers,
                     long timeout_ms, size_t max_body, char *err, size_t errlen);
/* After the transfer: its outcome as Go would describe it. Returns the HTTP status (200...) or -1 with err
 * filled (transport error, body too large). */
long sd_fetch_result(sd_fetch *f, CURLcode code, char *err, size_t errlen);
/* Frees the body once it has been parsed: a provider that refreshes rarely does not hold its last answer
 * (up to the body limit) between refreshes, next to the targets made of it. */
void sd_fetch_drop_body(sd_fetch *f);
/* Frees the transfer's resources (keeps nothing); f can be prepared again. */
void sd_fetch_reset(sd_fetch *f);

/* "200 OK", "404 Not Found", ... as Go's resp.Status. */
const char *sd_http_status_text(long code);

#endif
