/* scrub: see scrub.h. The scanners work on text that may be truncated or malformed (a client may cut a
 * body at any byte): a JSON value that never ends is masked up to the end, and nothing is ever read past
 * the terminating NUL. */
#include "periskop/scrub.h"

#include <ctype.h>
#include <openssl/sha.h>
#include <stdio.h>
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

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted, lower-cased, de-duplicated lines of v[0..n) appended to sb. */
static void canon_list(strbuf *sb, const char *what, char *const *v, size_t n)
{
    char **c = strv_copy(v, n);
    for (size_t i = 0; i < n; i++)
        for (char *p = c[i]; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    if (n)
        qsort(c, n, sizeof *c, cmp_str);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(c[i], c[i - 1]) != 0)
            strbuf_printf(sb, "%s %zu:%s\n", what, strlen(c[i]), c[i]);
    strv_free(c, n);
}

void scrub_rules_fingerprint(const scrub_rules *r, char out[65])
{
    if (r && !r->enabled) {
        strcpy(out, "off");
        return;
    }
    strbuf sb;
    strbuf_init(&sb);
    strbuf_printf(&sb, "lookout scrub %d\n", SCRUB_VERSION);
    if (r) {
        canon_list(&sb, "header", r->headers, r->n_headers);
        canon_list(&sb, "field", r->fields, r->n_fields);
    }
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)sb.buf, sb.len, md);
    strbuf_free(&sb);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
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

/* ASCII lower case, as strncasecmp compares in the C locale. Patterns are stored lower-cased, so a
 * position whose first byte differs is skipped without a call (most of them: this runs for every
 * parameter and header name of every occurrence). */
static inline char lower_ascii(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

static bool pattern_matches(const char *pat, const char *name, size_t n)
{
    size_t pl = strlen(pat);
    if (!pl || pl > n)
        return false;
    for (size_t i = 0; i + pl <= n; i++) {
        if (lower_ascii(name[i]) != pat[0] || strncasecmp(name + i, pat, pl) != 0)
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
        if (lower_ascii(s[i]) == part[0] && strncasecmp(s + i, part, pl) == 0)
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

/* How deep URLs nested in parameters (?next=https://...?redirect=...) are followed: bounds the recursion
 * on hostile text. */
#define SCRUB_MAX_NEST 4

static size_t url_into(const scrub_rules *r, const char *s, strbuf *sb, int depth);

/* A scheme ("https", "postgres+ssl") ending right before "://" at s[len]. */
static size_t scheme_len_before(const char *s, size_t len)
{
    size_t b = len;
    while (b > 0 && (isalnum((unsigned char)s[b - 1]) || s[b - 1] == '+' || s[b - 1] == '-' || s[b - 1] == '.'))
        b--;
    while (b < len && !isalpha((unsigned char)s[b]))
        b++;
    return len - b;
}

static bool has_scheme_at_start(const char *s)
{
    const char *sep = strstr(s, "://");
    return sep && sep > s && scheme_len_before(s, (size_t)(sep - s)) == (size_t)(sep - s);
}

/* Worth parsing as a URL: "scheme://..." or a path with a query ("/login?token=..."). */
static bool looks_like_url(const char *s)
{
    return has_scheme_at_start(s) || (s[0] == '/' && strpbrk(s, "?#"));
}

static bool unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* A parameter value v[0..n) that is itself a URL (literal or percent-encoded: ?next=https%3A%2F%2Fu%3Ap%40h)
 * scrubbed like one into out, encoded as it came. Returns the number of masked values (0: out untouched). */
static size_t nested_url(const scrub_rules *r, const char *v, size_t n, strbuf *out, int depth)
{
    if (depth > SCRUB_MAX_NEST || n < 2)
        return 0;
    char *dec = xmalloc(n + 1);
    bool encoded = false;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '%' && i + 2 < n && hexval(v[i + 1]) >= 0 && hexval(v[i + 2]) >= 0) {
            dec[o++] = (char)(hexval(v[i + 1]) * 16 + hexval(v[i + 2]));
            i += 2;
            encoded = true;
        } else if (v[i] == '+') {
            dec[o++] = ' ';
            encoded = true;
        } else {
            dec[o++] = v[i];
        }
    }
    dec[o] = 0;
    size_t m = 0;
    if (strlen(dec) == o && looks_like_url(dec)) {
        strbuf t;
        strbuf_init(&t);
        m = url_into(r, dec, &t, depth);
        if (m && !encoded) {
            strbuf_append(out, t.buf, t.len);
        } else if (m) {
            static const char hex[] = "0123456789ABCDEF";
            for (size_t i = 0; i < t.len; i++) {
                unsigned char c = (unsigned char)t.buf[i];
                if (unreserved(c)) {
                    strbuf_putc(out, (char)c);
                } else {
                    strbuf_putc(out, '%');
                    strbuf_putc(out, hex[c >> 4]);
                    strbuf_putc(out, hex[c & 15]);
                }
            }
        }
        strbuf_free(&t);
    }
    free(dec);
    return m;
}

/* Appends params s[0..n) ("a=1&b=2", separators & and ;) to sb with matching values masked, and URLs in
 * other values scrubbed as URLs. */
static size_t scrub_params(const scrub_rules *r, const char *s, size_t n, strbuf *sb, int depth)
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
        } else if (eq) {
            strbuf_append(sb, s + i, (size_t)(eq + 1 - (s + i)));
            size_t vs = (size_t)(eq + 1 - s), m = nested_url(r, eq + 1, j - vs, sb, depth + 1);
            if (m)
                masked += m;
            else
                strbuf_append(sb, eq + 1, j - vs);
        } else {
            strbuf_append(sb, s + i, j - i);
        }
        if (j < n)
            strbuf_putc(sb, s[j]);
        i = j + 1;
    }
    return masked;
}

static size_t url_into(const scrub_rules *r, const char *s, strbuf *sb, int depth)
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
        masked += scrub_params(r, s + qs, qe - qs, sb, depth);
        if (!hash)
            return masked;
        strbuf_putc(sb, '#');
        qs = qe + 1;
    }
    /* The fragment: OAuth's implicit flow puts access_token there. */
    if (strchr(s + qs, '='))
        masked += scrub_params(r, s + qs, n - qs, sb, depth);
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
    size_t m = url_into(r, s, &sb, 0);
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

/* Masks the password of every "scheme://user:password@" in text t[0..n) (a JSON string's content: an
 * authority also ends at a quote, backslash or white space). Appends to sb; returns how many. */
static size_t userinfo_in_text(const char *t, size_t n, strbuf *sb)
{
    size_t masked = 0, done = 0;
    for (size_t k = 0; k + 3 <= n; k++) {
        if (memcmp(t + k, "://", 3) != 0 || !scheme_len_before(t, k))
            continue;
        size_t a = k + 3, e = a;
        while (e < n && !strchr("/?#\\\" \t\r\n", t[e]))
            e++;
        const char *at = NULL;
        for (size_t q = a; q < e; q++)
            if (t[q] == '@')
                at = t + q;
        const char *colon = at ? memchr(t + a, ':', (size_t)(at - (t + a))) : NULL;
        if (colon && !((size_t)(at - colon - 1) == strlen(SCRUB_MASK) &&
                       strncmp(colon + 1, SCRUB_MASK, strlen(SCRUB_MASK)) == 0)) {
            strbuf_append(sb, t + done, (size_t)(colon + 1 - (t + done)));
            strbuf_puts(sb, SCRUB_MASK);
            done = (size_t)(at - t);
            masked++;
        }
        k = e > k ? e - 1 : k;
    }
    if (masked)
        strbuf_append(sb, t + done, n - done);
    return masked;
}

/* A JSON string value (not a key) c[0..n) between its quotes: a URL in it is scrubbed (its password, and
 * its query like any URL when the string is one), into sb. Returns the number of masked values (0: sb
 * untouched). */
static size_t json_string_urls(const scrub_rules *r, const char *c, size_t n, strbuf *sb)
{
    if (n < 4 || !memmem(c, n, ":", 1))
        return 0;
    /* JSON may escape '/' as "\/": undone for matching (the result is the same JSON string). */
    char *t = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i] == '\\' && i + 1 < n && c[i + 1] == '/')
            i++;
        else if (c[i] == '\\' && i + 1 < n)
            t[o++] = c[i++];
        t[o++] = c[i];
    }
    t[o] = 0;
    size_t m = 0;
    if (strlen(t) == o && has_scheme_at_start(t) && !memchr(t, '"', o) && !strpbrk(t, " \t\r\n\\")) {
        strbuf u;
        strbuf_init(&u);
        if ((m = url_into(r, t, &u, 1)))
            strbuf_append(sb, u.buf, u.len);
        strbuf_free(&u);
    }
    if (!m)
        m = userinfo_in_text(t, o, sb);
    free(t);
    return m;
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
        const char *after = skip_ws(e);
        if (*after != ':' || e - p < 2) {
            /* A string value: URLs in it lose their secrets. */
            bool closed = e - p >= 2 && e[-1] == '"';
            const char *c = p + 1, *ce = closed ? e - 1 : e;
            size_t before = sb->len;
            strbuf_putc(sb, '"');
            size_t m = ce > c ? json_string_urls(r, c, (size_t)(ce - c), sb) : 0;
            if (m) {
                masked += m;
                if (closed)
                    strbuf_putc(sb, '"');
            } else {
                sb->len = before;
                sb->buf[before] = 0;
                strbuf_append(sb, p, (size_t)(e - p));
            }
            p = e;
            continue;
        }
        strbuf_append(sb, p, (size_t)(e - p));
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
        m = scrub_params(r, s, strlen(s), &sb, 0);
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
