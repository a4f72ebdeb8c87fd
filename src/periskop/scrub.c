/* scrub: see scrub.h. The scanners work on text that may be truncated or malformed (a client may cut a
 * body at any byte): a JSON value that never ends is masked up to the end, and nothing is ever read past
 * the terminating NUL. */
#include "periskop/scrub.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/strbuf.h"
#include "util/strv.h"
#include "util/xalloc.h"

struct scrub_rules {
    bool enabled;
    char **headers; /* extra exact header names */
    size_t n_headers;
    char **fields; /* extra field patterns, lower-cased */
    size_t n_fields;
};

static const char *const default_headers[] = {"authorization", "proxy-authorization", "cookie", "set-cookie",
                                              "x-api-key",     "x-auth-token",        NULL};
static const char *const default_header_parts[] = {"token", "secret", "password", "session", "api-key", "apikey",
                                                   NULL};
static const char *const default_fields[] = {"token",     "key",        "secret",  "password", "passwd",
                                             "auth",      "authorization", "session", "signature", "sig",
                                             "credential", "apikey",     NULL};

scrub_rules *scrub_rules_new(bool enabled, char *const *extra_headers, size_t n_headers, char *const *extra_fields,
                             size_t n_fields)
{
    scrub_rules *r = xcalloc(1, sizeof *r);
    r->enabled = enabled;
    if (n_headers) {
        r->headers = xcalloc(n_headers, sizeof *r->headers);
        for (size_t i = 0; i < n_headers; i++)
            r->headers[i] = xstrdup(extra_headers[i]);
        r->n_headers = n_headers;
    }
    if (n_fields) {
        r->fields = xcalloc(n_fields, sizeof *r->fields);
        for (size_t i = 0; i < n_fields; i++) {
            r->fields[i] = xstrdup(extra_fields[i]);
            for (char *p = r->fields[i]; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        }
        r->n_fields = n_fields;
    }
    return r;
}

scrub_rules *scrub_rules_default(void)
{
    return scrub_rules_new(true, NULL, 0, NULL, 0);
}

void scrub_rules_free(scrub_rules *r)
{
    if (!r)
        return;
    strv_free(r->headers, r->n_headers);
    strv_free(r->fields, r->n_fields);
    free(r);
}

bool scrub_rules_enabled(const scrub_rules *r)
{
    return r && r->enabled;
}

/* ---- names ---- */

static bool alnum(char c)
{
    return isalnum((unsigned char)c) != 0;
}

/* A word boundary before position i of name (n bytes). */
static bool boundary_before(const char *name, size_t i)
{
    if (i == 0)
        return true;
    char a = name[i - 1], b = name[i];
    return !alnum(a) || (islower((unsigned char)a) && isupper((unsigned char)b));
}

static bool boundary_after(const char *name, size_t n, size_t end)
{
    if (end >= n)
        return true;
    char a = name[end - 1], b = name[end];
    return !alnum(b) || (islower((unsigned char)a) && isupper((unsigned char)b));
}

static bool pattern_matches(const char *pat, const char *name, size_t n)
{
    size_t pl = strlen(pat);
    if (!pl || pl > n)
        return false;
    for (size_t i = 0; i + pl <= n; i++) {
        if (strncasecmp(name + i, pat, pl) != 0)
            continue;
        if (pl >= 5 || (boundary_before(name, i) && boundary_after(name, n, i + pl)))
            return true;
    }
    return false;
}

bool scrub_field_name(const scrub_rules *r, const char *name, size_t n)
{
    for (size_t i = 0; default_fields[i]; i++)
        if (pattern_matches(default_fields[i], name, n))
            return true;
    for (size_t i = 0; r && i < r->n_fields; i++)
        if (pattern_matches(r->fields[i], name, n))
            return true;
    return false;
}

static bool contains_ci(const char *s, const char *part)
{
    size_t n = strlen(s), pl = strlen(part);
    for (size_t i = 0; i + pl <= n; i++)
        if (strncasecmp(s + i, part, pl) == 0)
            return true;
    return false;
}

static bool secret_header(const scrub_rules *r, const char *name)
{
    for (size_t i = 0; default_headers[i]; i++)
        if (strcasecmp(name, default_headers[i]) == 0)
            return true;
    for (size_t i = 0; default_header_parts[i]; i++)
        if (contains_ci(name, default_header_parts[i]))
            return true;
    for (size_t i = 0; r && i < r->n_headers; i++)
        if (strcasecmp(name, r->headers[i]) == 0)
            return true;
    for (size_t i = 0; r && i < r->n_fields; i++)
        if (pattern_matches(r->fields[i], name, strlen(name)))
            return true;
    return false;
}

/* ---- URL and form parameters ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent- and plus-decoded copy of a parameter name, for matching. */
static size_t decode_name(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    out[o] = 0;
    return o;
}

/* Appends params s[0..n) ("a=1&b=2", separators & and ;) to sb with matching values masked. */
static size_t scrub_params(const scrub_rules *r, const char *s, size_t n, strbuf *sb)
{
    size_t masked = 0, i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && s[j] != '&' && s[j] != ';')
            j++;
        const char *eq = memchr(s + i, '=', j - i);
        char name[256];
        size_t nl = eq ? decode_name(s + i, (size_t)(eq - (s + i)), name, sizeof name) : 0;
        if (eq && scrub_field_name(r, name, nl) && !(j - (size_t)(eq + 1 - s) == strlen(SCRUB_MASK) &&
                                                      strncmp(eq + 1, SCRUB_MASK, strlen(SCRUB_MASK)) == 0)) {
            strbuf_append(sb, s + i, (size_t)(eq + 1 - (s + i)));
            strbuf_puts(sb, SCRUB_MASK);
            masked++;
        } else {
            strbuf_append(sb, s + i, j - i);
        }
        if (j < n)
            strbuf_putc(sb, s[j]);
        i = j + 1;
    }
    return masked;
}

static size_t url_into(const scrub_rules *r, const char *s, strbuf *sb)
{
    size_t n = strlen(s), masked = 0, pos = 0;
    /* Userinfo only in an authority right after a scheme at the start ("https://u:p@h"): a "://" further
     * on is inside a parameter (?next=https://...), and taking it for the authority would skip the query. */
    size_t sl = 0;
    if (isalpha((unsigned char)s[0]))
        while (isalnum((unsigned char)s[sl]) || s[sl] == '+' || s[sl] == '-' || s[sl] == '.')
            sl++;
    const char *sch = sl && strncmp(s + sl, "://", 3) == 0 ? s + sl : NULL;
    if (sch) {
        size_t a = (size_t)(sch - s) + 3, e = a;
        while (e < n && s[e] != '/' && s[e] != '?' && s[e] != '#')
            e++;
        const char *at = NULL;
        for (size_t k = a; k < e; k++)
            if (s[k] == '@')
                at = s + k;
        const char *colon = at ? memchr(s + a, ':', (size_t)(at - (s + a))) : NULL;
        if (colon && !((size_t)(at - colon - 1) == strlen(SCRUB_MASK) &&
                       strncmp(colon + 1, SCRUB_MASK, strlen(SCRUB_MASK)) == 0)) {
            strbuf_append(sb, s, (size_t)(colon + 1 - s));
            strbuf_puts(sb, SCRUB_MASK);
            pos = (size_t)(at - s);
            masked++;
        }
    }
    const char *q = strpbrk(s + pos, "?#");
    if (!q) {
        strbuf_puts(sb, s + pos);
        return masked;
    }
    strbuf_append(sb, s + pos, (size_t)(q - (s + pos)) + 1);
    size_t qs = (size_t)(q - s) + 1;
    if (*q == '?') {
        const char *hash = strchr(s + qs, '#');
        size_t qe = hash ? (size_t)(hash - s) : n;
        masked += scrub_params(r, s + qs, qe - qs, sb);
        if (!hash)
            return masked;
        strbuf_putc(sb, '#');
        qs = qe + 1;
    }
    /* The fragment: OAuth's implicit flow puts access_token there. */
    if (strchr(s + qs, '='))
        masked += scrub_params(r, s + qs, n - qs, sb);
    else
        strbuf_puts(sb, s + qs);
    return masked;
}

char *scrub_url(const scrub_rules *r, const char *s)
{
    if (!s || !*s)
        return NULL;
    strbuf sb;
    strbuf_init(&sb);
    size_t m = url_into(r, s, &sb);
    if (!m) {
        strbuf_free(&sb);
        return NULL;
    }
    char *out = strbuf_detach(&sb, NULL);
    strbuf_free(&sb);
    return out;
}

char *scrub_header(const scrub_rules *r, const char *name, const char *value)
{
    if (!name || !value)
        return NULL;
    if (secret_header(r, name))
        return strcmp(value, SCRUB_MASK) == 0 ? NULL : xstrdup(SCRUB_MASK);
    if (strcasecmp(name, "Referer") == 0 || strcasecmp(name, "Location") == 0 ||
        strcasecmp(name, "Content-Location") == 0)
        return scrub_url(r, value);
    return NULL;
}

/* ---- JSON ---- */

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* End of the JSON string starting at p (the opening quote): the byte after its closing quote, or the end
 * of the text when it is not closed. */
static const char *string_end(const char *p)
{
    for (p++; *p; p++) {
        if (*p == '\\') {
            if (!p[1])
                return p + 1;
            p++;
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return p;
}

/* End of the JSON value at p: strings, balanced objects/arrays (strings inside skipped), or a scalar. */
static const char *value_end(const char *p)
{
    if (*p == '"')
        return string_end(p);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (*p) {
            if (*p == '"') {
                p = string_end(p);
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if (*p == '}' || *p == ']') {
                if (--depth == 0)
                    return p + 1;
            }
            p++;
        }
        return p;
    }
    while (*p && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')
        p++;
    return p;
}

static size_t json_into(const scrub_rules *r, const char *s, strbuf *sb)
{
    size_t masked = 0;
    const char *p = s;
    while (*p) {
        if (*p != '"') {
            strbuf_putc(sb, *p++);
            continue;
        }
        const char *e = string_end(p);
        strbuf_append(sb, p, (size_t)(e - p));
        const char *after = skip_ws(e);
        if (*after != ':' || e - p < 2) {
            p = e;
            continue;
        }
        /* A key: its raw text between the quotes. */
        bool secret = scrub_field_name(r, p + 1, (size_t)(e - p - 2));
        strbuf_append(sb, e, (size_t)(after + 1 - e));
        p = after + 1;
        if (!secret)
            continue;
        const char *v = skip_ws(p);
        strbuf_append(sb, p, (size_t)(v - p));
        if (!*v)
            break;
        const char *ve = value_end(v);
        if (!(ve - v == (long)strlen(SCRUB_MASK) + 2 && strncmp(v + 1, SCRUB_MASK, strlen(SCRUB_MASK)) == 0 &&
              *v == '"'))
            masked++;
        strbuf_puts(sb, "\"" SCRUB_MASK "\"");
        p = ve;
    }
    return masked;
}

char *scrub_body(const scrub_rules *r, const char *s)
{
    if (!s || !*s)
        return NULL;
    const char *t = skip_ws(s);
    strbuf sb;
    strbuf_init(&sb);
    size_t m = 0;
    if (*t == '{' || *t == '[')
        m = json_into(r, s, &sb);
    else if (strchr(s, '='))
        m = scrub_params(r, s, strlen(s), &sb);
    if (!m) {
        strbuf_free(&sb);
        return NULL;
    }
    char *out = strbuf_detach(&sb, NULL);
    strbuf_free(&sb);
    return out;
}

/* ---- occurrences ---- */

static size_t replace(char **field, char *scrubbed)
{
    if (!scrubbed)
        return 0;
    free(*field);
    *field = scrubbed;
    return 1;
}

size_t scrub_occurrence(const scrub_rules *r, payload_occurrence *o)
{
    if (!scrub_rules_enabled(r) || !o->http)
        return 0;
    payload_http *h = o->http;
    size_t n = 0;
    n += replace(&h->url, scrub_url(r, h->url));
    n += replace(&h->body, scrub_body(r, h->body));
    for (size_t i = 0; i < h->n_headers; i++)
        n += replace(&h->headers[i].value, scrub_header(r, h->headers[i].name, h->headers[i].value));
    if (n)
        payload_occurrence_rehash(o);
    return n;
}

size_t scrub_doc(const scrub_rules *r, payload_doc *d)
{
    if (!scrub_rules_enabled(r) || !d)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < d->n_aggregates; i++)
        for (size_t k = 0; k < d->aggregates[i].n_occurrences; k++)
            n += scrub_occurrence(r, d->aggregates[i].occurrences[k]);
    return n;
}
