/* origin: see origin.h. */
#include "http/origin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/xalloc.h"

bool origin_safe_method(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

pcre2_code *origin_compile(const char *regex, char *err, size_t errlen)
{
    size_t n = strlen(regex) + 16;
    char *anchored = xcalloc(1, n);
    snprintf(anchored, n, "^(?:%s)$", regex);
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)anchored, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &ec,
                                   &off, NULL);
    free(anchored);
    if (!re) {
        PCRE2_UCHAR msg[200];
        pcre2_get_error_message(ec, msg, sizeof msg);
        snprintf(err, errlen, "invalid --web.cors.origin %s: %s", regex, (const char *)msg);
    }
    return re;
}

bool origin_allowed(const pcre2_code *allowed, const char *origin)
{
    if (!allowed || !origin)
        return false;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(allowed, NULL);
    if (!md)
        return false;
    int rc = pcre2_match(allowed, (PCRE2_SPTR)origin, strlen(origin), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

/* host with the scheme's default port removed, lower-cased, into out. */
static void norm_host(const char *scheme, const char *host, size_t hl, char *out, size_t n)
{
    const char *def = strcmp(scheme, "https") == 0 ? ":443" : ":80";
    size_t dl = strlen(def);
    if (hl > dl && strncmp(host + hl - dl, def, dl) == 0)
        hl -= dl;
    if (hl >= n)
        hl = n - 1;
    for (size_t i = 0; i < hl; i++)
        out[i] = (char)((host[i] >= 'A' && host[i] <= 'Z') ? host[i] + 32 : host[i]);
    out[hl] = 0;
}

static bool same_origin(const char *origin, const char *scheme, const char *host)
{
    if (!host || !*host)
        return false;
    size_t sl = strlen(scheme);
    if (strncasecmp(origin, scheme, sl) != 0 || strncmp(origin + sl, "://", 3) != 0)
        return false;
    const char *oh = origin + sl + 3;
    char a[300], b[300];
    norm_host(scheme, oh, strlen(oh), a, sizeof a);
    norm_host(scheme, host, strlen(host), b, sizeof b);
    return strlen(oh) < sizeof a && strlen(host) < sizeof b && strcmp(a, b) == 0;
}

origin_verdict origin_check(const char *method, const char *origin, const char *sfs, const char *scheme,
                            const char *host, const pcre2_code *allowed)
{
    if (origin_safe_method(method))
        return ORIGIN_PASS;
    if (origin && origin_allowed(allowed, origin))
        return ORIGIN_ALLOWED;
    if (sfs && (strcasecmp(sfs, "cross-site") == 0 || strcasecmp(sfs, "same-site") == 0))
        return ORIGIN_CROSS_SITE;
    if (origin && !same_origin(origin, scheme, host))
        return ORIGIN_CROSS_SITE;
    return ORIGIN_PASS;
}
