/* origin: refusal of cross-site writes. A browser tells where a request comes from (Sec-Fetch-Site,
 * Origin); a page on another site must not resolve errors, push, reload or quit lookout by making the
 * operator's browser send a form or a fetch. Requests without those headers (curl, client libraries,
 * the Backstage backend, an upper lookout) are not browser cross-site requests and pass.
 *
 * Rules for a state-changing request (any method but GET and HEAD, OPTIONS preflights included):
 *   1. an Origin matched by --web.cors.origin (a fully anchored regular expression) passes;
 *   2. Sec-Fetch-Site "cross-site" or "same-site" is refused;
 *   3. an Origin other than lookout's own is refused, "null" included. lookout's own: scheme://Host of the
 *      request (default ports ignored), and behind a reverse proxy the same with X-Forwarded-Proto and
 *      X-Forwarded-Host (a cross-site page cannot make a browser send those headers without a preflight,
 *      which rule 3 refuses), and the origin of --web.external-url;
 *   4. everything else passes. */
#ifndef LOOKOUT_HTTP_ORIGIN_H
#define LOOKOUT_HTTP_ORIGIN_H
#include <stdbool.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

typedef enum origin_verdict {
    ORIGIN_PASS,        /* not a cross-site request */
    ORIGIN_ALLOWED,     /* cross-origin, allowed by --web.cors.origin */
    ORIGIN_CROSS_SITE,  /* refused */
} origin_verdict;

/* The request as far as origin_check needs it. */
typedef struct origin_request {
    const char *method;
    const char *origin;         /* Origin header or NULL */
    const char *sec_fetch_site; /* Sec-Fetch-Site header or NULL */
    const char *scheme;         /* "http" or "https": how the request reached lookout */
    const char *host;           /* Host header or NULL */
    const char *fwd_proto, *fwd_host; /* X-Forwarded-Proto, X-Forwarded-Host or NULL */
    const char *ext_scheme, *ext_host; /* scheme and host[:port] of --web.external-url, or NULL */
} origin_request;

/* allowed: the compiled --web.cors.origin or NULL. */
origin_verdict origin_check(const origin_request *r, const pcre2_code *allowed);
/* True when origin is matched (whole) by allowed. */
bool origin_allowed(const pcre2_code *allowed, const char *origin);
/* Compiles a --web.cors.origin value (anchored at both ends). NULL with err on a bad expression. */
pcre2_code *origin_compile(const char *regex, char *err, size_t errlen);
/* True for methods that only read (GET, HEAD). */
bool origin_safe_method(const char *method);

#endif
