/* strbuf: see strbuf.h. Allocation failure aborts: there is no sensible recovery in a monitor. */
#include "util/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void grow(strbuf *sb, size_t need)
{
    if (sb->len + need + 1 <= sb->cap)
        return;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < sb->len + need + 1)
        cap *= 2;
    char *nb = realloc(sb->buf, cap);
    if (!nb)
        abort();
    sb->buf = nb;
    sb->cap = cap;
}

void strbuf_init(strbuf *sb)
{
    sb->buf = NULL;
    sb->len = sb->cap = 0;
    grow(sb, 0);
    sb->buf[0] = '\0';
}

void strbuf_free(strbuf *sb)
{
    free(sb->buf);
    sb->buf = NULL;
    sb->len = sb->cap = 0;
}

void strbuf_reset(strbuf *sb)
{
    sb->len = 0;
    if (sb->buf)
        sb->buf[0] = '\0';
}

char *strbuf_detach(strbuf *sb, size_t *len)
{
    char *b = sb->buf;
    if (len)
        *len = sb->len;
    /* Left unallocated (no leak if the caller never touches sb again); the next append allocates. */
    sb->buf = NULL;
    sb->len = sb->cap = 0;
    return b;
}

void strbuf_append(strbuf *sb, const char *data, size_t n)
{
    grow(sb, n);
    memcpy(sb->buf + sb->len, data, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

void strbuf_puts(strbuf *sb, const char *s) { strbuf_append(sb, s, strlen(s)); }

void strbuf_putc(strbuf *sb, char c) { strbuf_append(sb, &c, 1); }

void strbuf_vprintf(strbuf *sb, const char *fmt, va_list ap)
{
    if (!fmt) /* also tells GCC's sanitizer builds fmt is not NULL (-Wformat-truncation) */
        return;
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return;
    grow(sb, (size_t)n);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
}

void strbuf_printf(strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(sb, fmt, ap);
    va_end(ap);
}

void strbuf_json_string(strbuf *sb, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    strbuf_putc(sb, '"');
    const char *run = s;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *esc = NULL;
        char u[7];
        switch (*p) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '<': esc = "\\u003c"; break; /* as Go's encoder: safe inside <script> */
        case '>': esc = "\\u003e"; break;
        case '&': esc = "\\u0026"; break;
        default:
            if (*p < 0x20) {
                u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
                u[4] = hex[*p >> 4]; u[5] = hex[*p & 15]; u[6] = 0;
                esc = u;
            }
        }
        if (esc) {
            strbuf_append(sb, run, (size_t)((const char *)p - run));
            strbuf_puts(sb, esc);
            run = (const char *)p + 1;
        }
    }
    strbuf_puts(sb, run);
    strbuf_putc(sb, '"');
}

void strbuf_html(strbuf *sb, const char *s)
{
    const char *run = s;
    for (const char *p = s; *p; p++) {
        const char *esc = NULL;
        switch (*p) {
        case '&': esc = "&amp;"; break;
        case '<': esc = "&lt;"; break;
        case '>': esc = "&gt;"; break;
        case '"': esc = "&#34;"; break;
        case '\'': esc = "&#39;"; break;
        }
        if (esc) {
            strbuf_append(sb, run, (size_t)(p - run));
            strbuf_puts(sb, esc);
            run = p + 1;
        }
    }
    strbuf_puts(sb, run);
}

void strbuf_url_query_escape(strbuf *sb, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '_' || c == '.' || c == '~') {
            strbuf_putc(sb, (char)c);
        } else if (c == ' ') {
            strbuf_putc(sb, '+'); /* Go's url.QueryEscape */
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            strbuf_append(sb, e, 3);
        }
    }
}
