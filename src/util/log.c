/* log: see log.h. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util/strbuf.h"

static _Atomic int current_level = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level lvl) { current_level = (int)lvl; }
enum log_level log_get_level(void) { return (enum log_level)current_level; }

int log_parse_level(const char *s, enum log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

static void put_value(strbuf *sb, const char *v)
{
    if (!v)
        v = "";
    int quote = (*v == '\0');
    for (const char *p = v; *p && !quote; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x20)
            quote = 1;
    if (!quote) {
        strbuf_puts(sb, v);
        return;
    }
    strbuf_putc(sb, '"');
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\') {
            strbuf_putc(sb, '\\');
            strbuf_putc(sb, *p);
        } else if (*p == '\n') {
            strbuf_puts(sb, "\\n");
        } else if ((unsigned char)*p < 0x20) {
            strbuf_printf(sb, "\\u%04x", (unsigned char)*p);
        } else {
            strbuf_putc(sb, *p);
        }
    }
    strbuf_putc(sb, '"');
}

void log_kv(enum log_level lvl, const char *component, const char *msg, ...)
{
    if ((int)lvl < current_level)
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", (long)(tv.tv_usec / 1000));

    strbuf sb;
    strbuf_init(&sb);
    strbuf_printf(&sb, "ts=%s level=%s", ts, level_names[lvl]);
    if (component) {
        strbuf_puts(&sb, " component=");
        put_value(&sb, component);
    }
    strbuf_puts(&sb, " msg=");
    put_value(&sb, msg);
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        strbuf_putc(&sb, ' ');
        strbuf_puts(&sb, k);
        strbuf_putc(&sb, '=');
        put_value(&sb, v);
    }
    va_end(ap);
    strbuf_putc(&sb, '\n');
    ssize_t w = write(STDERR_FILENO, sb.buf, sb.len);
    (void)w;
    strbuf_free(&sb);
}
