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

/* The first element of a comma-separated forwarded header, trimmed, into buf; NULL when absent or empty. */
static const char *first_of(const char *h, char *buf, size_t n)
{
    if (!h)
        return NULL;
    while (*h == ' ' || *h == '\t')
        h++;
    size_t l = strcspn(h, ", \t");
    if (l == 0 || l >= n)
        return NULL;
    memcpy(buf, h, l);
    buf[l] = 0;
    return buf;
}

origin_verdict origin_check(const origin_request *r, const pcre2_code *allowed)
{
    if (origin_safe_method(r->method))
        return ORIGIN_PASS;
    if (r->origin && origin_allowed(allowed, r->origin))
        return ORIGIN_ALLOWED;
    const char *sfs = r->sec_fetch_site;
    if (sfs && (strcasecmp(sfs, "cross-site") == 0 || strcasecmp(sfs, "same-site") == 0))
        return ORIGIN_CROSS_SITE;
    if (!r->origin || same_origin(r->origin, r->scheme, r->host))
        return ORIGIN_PASS;
    char pb[16], hb[300];
    const char *fp = first_of(r->fwd_proto, pb, sizeof pb), *fh = first_of(r->fwd_host, hb, sizeof hb);
    if ((fp || fh) && same_origin(r->origin, fp ? fp : r->scheme, fh ? fh : r->host))
        return ORIGIN_PASS;
    if (r->ext_scheme && r->ext_host && same_origin(r->origin, r->ext_scheme, r->ext_host))
        return ORIGIN_PASS;
    return ORIGIN_CROSS_SITE;
}
