/* strbuf: a growable, always NUL-terminated byte string. Used for building HTTP bodies, logs, JSON. */
#ifndef LOOKOUT_UTIL_STRBUF_H
#define LOOKOUT_UTIL_STRBUF_H
#include <stdarg.h>
#include <stddef.h>

typedef struct strbuf {
    char *buf; /* owned; never NULL after strbuf_init (NULL after strbuf_detach until the next append) */
    size_t len;
    size_t cap;
} strbuf;

void strbuf_init(strbuf *sb);
void strbuf_free(strbuf *sb);
void strbuf_reset(strbuf *sb);
/* Returns the buffer (caller owns it, free()); sb is left empty and needs no strbuf_free. */
char *strbuf_detach(strbuf *sb, size_t *len);
void strbuf_append(strbuf *sb, const char *data, size_t n);
void strbuf_puts(strbuf *sb, const char *s);
void strbuf_putc(strbuf *sb, char c);
void strbuf_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_vprintf(strbuf *sb, const char *fmt, va_list ap);
/* Appends s as a JSON string literal including the quotes (escapes control chars, ", \). */
void strbuf_json_string(strbuf *sb, const char *s);
/* Appends s with & < > " ' escaped for HTML text and attribute values. */
void strbuf_html(strbuf *sb, const char *s);
/* Appends s percent-encoded for a URL query component (RFC 3986 unreserved kept). */
void strbuf_url_query_escape(strbuf *sb, const char *s);

#endif
