/* origin: refusal of cross-site writes. A browser tells where a request comes from (Sec-Fetch-Site,
 * Origin); a page on another site must not resolve errors, push, reload or quit lookout by making the
 * operator's browser send a form or a fetch. Requests without those headers (curl, client libraries,
 * the Backstage backend, an upper lookout) are not browser cross-site requests and pass.
 *
 * Rules for a state-changing request (any method but GET and HEAD, OPTIONS preflights included):
 *   1. an Origin matched by --web.cors.origin (a fully anchored regular expression) passes;
 *   2. Sec-Fetch-Site "cross-site" or "same-site" is refused;
 *   3. an Origin other than lookout's own (scheme://Host of the request, default ports ignored) is refused,
 *      "null" included;
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

/* allowed: the compiled --web.cors.origin or NULL. scheme: "http" or "https"; host: the Host header. */
origin_verdict origin_check(const char *method, const char *origin, const char *sec_fetch_site, const char *scheme,
                            const char *host, const pcre2_code *allowed);
/* True when origin is matched (whole) by allowed. */
bool origin_allowed(const pcre2_code *allowed, const char *origin);
/* Compiles a --web.cors.origin value (anchored at both ends). NULL with err on a bad expression. */
pcre2_code *origin_compile(const char *regex, char *err, size_t errlen);
/* True for methods that only read (GET, HEAD). */
bool origin_safe_method(const char *method);

#endif
