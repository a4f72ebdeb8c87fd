/* payload_scan: where each aggregate of a Periskop body starts and ends, found without parsing it, so
 * that aggregates byte-identical to the same source's previous body can be reused instead of parsed
 * again (payload_parse_reuse in payload_parse.c).
 *
 * Not a validator and never trusted alone: the parser checks every span against yajl's own offsets
 * before a span's hash is remembered, and parses the body with reused spans replaced by a placeholder,
 * so a body the scanner misreads is only parsed in full, never misread. Whatever shape it does not
 * recognise (root not an object, "aggregated_errors" absent, repeated or written with escapes, an element
 * not an object, a truncated body, more than max elements) gives -1: no reuse.
 *
 * Cost: strings are crossed with memchr (most of a payload is stack traces and HTTP context); only the
 * bytes between strings are looked at one by one. */
#include <string.h>

#include "periskop/payload_priv.h"

#define NOPOS ((size_t)-1)

static size_t skip_ws(const char *b, size_t n, size_t i)
{
    while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
        i++;
    return i;
}

/* b[i] is an opening quote: the index after the closing one, or NOPOS. A quote preceded by an odd
 * number of backslashes is escaped; the run of backslashes is bounded by the previous quote, so the
 * whole walk is linear in the string. */
static size_t string_end(const char *b, size_t n, size_t i)
{
    for (i++;;) {
        const char *q = i < n ? memchr(b + i, '"', n - i) : NULL;
        if (!q)
            return NOPOS;
        size_t j = (size_t)(q - b), k = j;
        while (b[k - 1] == '\\')
            k--;
        if (((j - k) & 1) == 0)
            return j + 1;
        i = j + 1;
    }
}

/* b[i] starts a value: the index after it, or NOPOS. Brackets are only counted, not matched: the parser
 * rejects what does not nest. */
static size_t value_end(const char *b, size_t n, size_t i)
{
    if (b[i] == '"')
        return string_end(b, n, i);
    if (b[i] == '{' || b[i] == '[') {
        /* 1: quote, 2: opens, 3: closes, 0: anything else (skipped in a tight loop) */
        static const unsigned char cls[256] = {['"'] = 1, ['{'] = 2, ['['] = 2, ['}'] = 3, [']'] = 3};
        const unsigned char *u = (const unsigned char *)b;
        size_t depth = 0;
        while (i < n) {
            while (i < n && !cls[u[i]])
                i++;
            if (i == n)
                break;
            switch (cls[u[i]]) {
            case 1:
                i = string_end(b, n, i);
                if (i == NOPOS)
                    return NOPOS;
                continue;
            case 2:
                depth++;
                break;
            default:
                if (--depth == 0)
                    return i + 1;
            }
            i++;
        }
        return NOPOS;
    }
    size_t start = i;
    while (i < n && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' &&
           b[i] != '\r')
        i++;
    return i > start ? i : NOPOS;
}

long payload_scan_aggregates(const char *b, size_t n, payload_span *spans, size_t max)
{
    static const char name[] = "\"aggregated_errors\"";
    const size_t name_len = sizeof name - 1;
    size_t i = skip_ws(b, n, 0);
    if (i >= n || b[i] != '{')
        return -1;
    long found = -1;
    i = skip_ws(b, n, i + 1);
    if (i < n && b[i] == '}')
        return -1;
    while (i < n) {
        if (b[i] != '"')
            return -1;
        size_t kend = string_end(b, n, i);
        if (kend == NOPOS)
            return -1;
        bool ours = kend - i == name_len && memcmp(b + i, name, name_len) == 0;
        i = skip_ws(b, n, kend);
        if (i >= n || b[i] != ':')
            return -1;
        i = skip_ws(b, n, i + 1);
        if (i >= n)
            return -1;
        if (ours) {
            if (found >= 0 || b[i] != '[')
                return -1; /* repeated (the last one wins in the parser), or not an array */
            found = 0;
            i = skip_ws(b, n, i + 1);
            if (i < n && b[i] == ']') {
                i++;
            } else {
                for (;;) {
                    if (i >= n || b[i] != '{' || (size_t)found == max)
                        return -1;
                    size_t e = value_end(b, n, i);
                    if (e == NOPOS)
                        return -1;
                    spans[found].start = i;
                    spans[found].end = e;
                    found++;
                    i = skip_ws(b, n, e);
                    if (i < n && b[i] == ',') {
                        i = skip_ws(b, n, i + 1);
                        continue;
                    }
                    if (i < n && b[i] == ']') {
                        i++;
                        break;
                    }
                    return -1;
                }
            }
        } else {
            i = value_end(b, n, i);
            if (i == NOPOS)
                return -1;
        }
        i = skip_ws(b, n, i);
        if (i < n && b[i] == ',') {
            i = skip_ws(b, n, i + 1);
            continue;
        }
        if (i < n && b[i] == '}')
            return found;
        return -1;
    }
    return -1;
}
