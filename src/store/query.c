/* store/query: see query.h. */
#include "store/query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "periskop/payload.h"
#include "store/store.h"
#include "util/xalloc.h"

static inline char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

char *store_search_lower(const char *s, size_t n)
{
    char *r = xrealloc(NULL, n + 1);
    for (size_t i = 0; i < n; i++)
        r[i] = lower(s[i]);
    r[n] = 0;
    return r;
}

bool store_search_contains(const char *hay, const char *needle)
{
    if (!needle[0])
        return true;
    if (!hay)
        return false;
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++) {
        size_t i = 0;
        while (i < n && p[i] && lower(p[i]) == needle[i])
            i++;
        if (i == n)
            return true;
    }
    return false;
}

static void term_clear(store_term *t)
{
    free(t->value);
    free(t->name);
    for (size_t i = 0; i < t->n_values; i++)
        free(t->values[i]);
    free(t->values);
    memset(t, 0, sizeof(*t));
}

void store_search_free(store_search *s)
{
    for (size_t i = 0; i < s->n; i++)
        term_clear(&s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* A Prometheus label name: [a-zA-Z_][a-zA-Z0-9_]* */
static bool label_name(const char *s, size_t n)
{
    if (!n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

/* Reads a value at *p: a quoted string (escapes \" and \\) or up to the next whitespace. The value is
 * returned unescaped (allocated) in *out. -1 with err for an unclosed quote or an over-long value. */
static int read_value(const char **p, const char *start, char **out, bool *quoted, char *err, size_t errlen)
{
    const char *s = *p;
    *quoted = *s == '"';
    size_t cap = STORE_SEARCH_MAX_TERM_LEN + 1, n = 0;
    char buf[STORE_SEARCH_MAX_TERM_LEN + 1];
    if (*quoted) {
        const char *open = s++;
        for (;; s++) {
            if (!*s) {
                snprintf(err, errlen, "unclosed quote in search query (the quote at position %zu)",
                         (size_t)(open - start) + 1);
                return -1;
            }
            if (*s == '"')
                break;
            if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
                s++;
            if (n + 1 >= cap) {
                snprintf(err, errlen, "search term too long (at most %d bytes)", STORE_SEARCH_MAX_TERM_LEN);
                return -1;
            }
            buf[n++] = *s;
        }
        s++; /* the closing quote */
        if (*s && !is_space(*s)) {
            snprintf(err, errlen, "unexpected character after the quote closed at position %zu (expected a space)",
                     (size_t)(s - start));
            return -1;
        }
    } else {
        for (; *s && !is_space(*s); s++) {
            if (n + 1 >= cap) {
                snprintf(err, errlen, "search term too long (at most %d bytes)", STORE_SEARCH_MAX_TERM_LEN);
                return -1;
            }
            buf[n++] = *s;
        }
    }
    buf[n] = 0;
    *out = xstrdup_or_empty(buf);
    *p = s;
    return 0;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Splits a comma list into the values of t (at most STORE_SEARCH_MAX_VALUES; empty items skipped). */
static int split_list(const char *field, const char *v, char ***out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    for (const char *p = v; *p;) {
        size_t len = strcspn(p, ",");
        if (len) {
            if (*n == STORE_SEARCH_MAX_VALUES) {
                snprintf(err, errlen, "too many values for %s: (at most %d)", field, STORE_SEARCH_MAX_VALUES);
                free_list(*out, *n);
                *out = NULL;
                *n = 0;
                return -1;
            }
            *out = xrealloc(*out, (*n + 1) * sizeof(char *));
            (*out)[(*n)++] = strndup(p, len);
            if (!(*out)[*n - 1])
                abort();
        }
        p += len;
        if (*p == ',')
            p++;
    }
    if (!*n) {
        snprintf(err, errlen, "empty value for %s: (write %s:VALUE)", field, field);
        return -1;
    }
    return 0;
}

/* Fills t from field:value; -1 with err for an unknown is:/severity: value or an empty value. */
static int field_term(const char *name, size_t nlen, char *value, store_term *t, char *err, size_t errlen)
{
    char field[64];
    snprintf(field, sizeof field, "%.*s", (int)(nlen < 60 ? nlen : 60), name);
    if (!strcmp(field, "is") || !strcmp(field, "severity")) {
        bool is = field[0] == 'i';
        char **v;
        size_t n;
        if (split_list(field, value, &v, &n, err, errlen) != 0)
            return -1;
        t->kind = is ? STORE_TERM_IS : STORE_TERM_SEVERITY;
        for (size_t i = 0; i < n; i++) {
            const char *x = v[i];
            unsigned bit = 0;
            if (is)
                bit = !strcmp(x, "open")       ? (1u << STORE_OPEN) | (1u << STORE_REGRESSED)
                      : !strcmp(x, "resolved") ? 1u << STORE_RESOLVED
                      : !strcmp(x, "regressed") ? 1u << STORE_REGRESSED
                                                : 0;
            else
                bit = !strcmp(x, "info")      ? 1u << PAYLOAD_INFO
                      : !strcmp(x, "warning") ? 1u << PAYLOAD_WARNING
                      : !strcmp(x, "error")   ? 1u << PAYLOAD_ERROR
                                              : 0;
            if (!bit) {
                snprintf(err, errlen, "unknown %s: value \"%.64s\" (expected %s)", field, x,
                         is ? "open, resolved or regressed" : "info, warning or error");
                free_list(v, n);
                return -1;
            }
            t->mask |= bit;
        }
        free_list(v, n);
        free(value);
        return 0;
    }
    if (!value[0]) {
        snprintf(err, errlen, "empty value for %s: (write %s:VALUE)", field, field);
        return -1;
    }
    if (!strcmp(field, "job")) {
        t->kind = STORE_TERM_JOB;
        if (split_list(field, value, &t->values, &t->n_values, err, errlen) != 0)
            return -1;
        free(value);
        return 0;
    }
    if (!strcmp(field, "class") || !strcmp(field, "key")) {
        t->kind = field[0] == 'c' ? STORE_TERM_CLASS : STORE_TERM_KEY;
        t->value = store_search_lower(value, strlen(value));
        free(value);
        return 0;
    }
    t->kind = STORE_TERM_LABEL;
    t->name = strndup(name, nlen);
    if (!t->name)
        abort();
    t->value = value;
    return 0;
}

int store_search_parse(const char *q, store_search *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!q)
        return 0;
    size_t qlen = strlen(q);
    if (qlen > STORE_SEARCH_MAX_LEN) {
        snprintf(err, errlen, "search query too long (%zu bytes, at most %d)", qlen, STORE_SEARCH_MAX_LEN);
        return -1;
    }
    const char *p = q;
    for (;;) {
        while (is_space(*p))
            p++;
        if (!*p)
            break;
        if (out->n == STORE_SEARCH_MAX_TERMS) {
            /* count the rest for the message (bounded by the query length) */
            size_t n = out->n;
            for (const char *s = p; *s;) {
                n++;
                while (*s && !is_space(*s))
                    s++;
                while (is_space(*s))
                    s++;
            }
            snprintf(err, errlen, "too many search terms (about %zu, at most %d)", n, STORE_SEARCH_MAX_TERMS);
            store_search_free(out);
            return -1;
        }
        store_term t = {0};
        if (*p == '-' && p[1] && !is_space(p[1])) {
            t.neg = true;
            p++;
        }
        /* field:value when the text before the first ':' is a label name */
        size_t nlen = 0;
        if (*p != '"') {
            const char *c = p;
            while (*c && !is_space(*c) && *c != ':')
                c++;
            if (*c == ':' && label_name(p, (size_t)(c - p)))
                nlen = (size_t)(c - p);
        }
        const char *name = p;
        if (nlen)
            p += nlen + 1;
        char *value;
        bool quoted;
        if (read_value(&p, q, &value, &quoted, err, errlen) != 0) {
            store_search_free(out);
            return -1;
        }
        if (nlen) {
            if (field_term(name, nlen, value, &t, err, errlen) != 0) {
                free(value);
                term_clear(&t);
                store_search_free(out);
                return -1;
            }
        } else {
            t.kind = STORE_TERM_TEXT;
            t.value = store_search_lower(value, strlen(value));
            free(value);
            if (!t.value[0]) { /* "" matches everything: no term */
                term_clear(&t);
                continue;
            }
        }
        out->v = xrealloc(out->v, (out->n + 1) * sizeof(store_term));
        out->v[out->n++] = t;
    }
    return 0;
}
