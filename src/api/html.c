/* html: see html.h. */
#include "api/html.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char css[] =
    "body{font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,sans-serif;margin:0;color:#212529;"
    "background:#fff;font-size:14px}"
    "nav{background:#343a40;padding:8px 16px}nav a{color:#fff;margin-right:16px;text-decoration:none}"
    "nav .brand{font-weight:bold}main{padding:12px 16px}"
    "h1{font-size:22px;margin:8px 0 12px}h2{font-size:17px;margin:0;display:inline}"
    "details{border:1px solid #dee2e6;border-radius:4px;margin:10px 0}"
    "summary{padding:8px 10px;background:#f8f9fa;cursor:pointer}"
    "table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:6px 8px;"
    "border-top:1px solid #dee2e6;vertical-align:top}th{background:#fff}"
    ".badge{display:inline-block;background:#6c757d;color:#fff;border-radius:3px;padding:1px 5px;"
    "margin:1px 2px;font-size:12px;font-family:monospace;word-break:break-all}"
    ".up{background:#28a745}.down{background:#dc3545}.unknown{background:#adb5bd}"
    ".state{display:inline-block;color:#fff;border-radius:3px;padding:1px 6px;font-size:12px;"
    "text-transform:uppercase}"
    ".count{color:#6c757d;margin-left:8px}.err{color:#dc3545;font-family:monospace;word-break:break-all}"
    ".muted{color:#6c757d}form.filter{margin:6px 0 10px}form.filter>*{margin-right:8px}"
    ".pager{padding:6px 10px}code{font-family:monospace}";

void html_page_begin(strbuf *out, const char *title)
{
    strbuf_puts(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
    strbuf_html(out, title);
    strbuf_puts(out, " - lookout</title><style>");
    strbuf_puts(out, css);
    /* Relative links: the pages are one level below the route prefix (--web.route-prefix), so they work
     * with and without one. */
    strbuf_puts(out, "</style></head><body><nav><a class=\"brand\" href=\"./\">lookout</a>"
                     "<a href=\"targets\">Targets</a><a href=\"service-discovery\">Service discovery</a>"
                     "<a href=\"metrics\">Metrics</a></nav><main><h1>");
    strbuf_html(out, title);
    strbuf_puts(out, "</h1>\n");
}

void html_page_end(strbuf *out)
{
    strbuf_puts(out, "</main></body></html>\n");
}

void html_label_badge(strbuf *out, const char *name, const char *value)
{
    strbuf_puts(out, "<span class=\"badge\">");
    strbuf_html(out, name);
    strbuf_puts(out, "=&#34;");
    strbuf_html(out, value);
    strbuf_puts(out, "&#34;</span>");
}

void html_label_badges(strbuf *out, const labelset *ls, int public_only)
{
    for (size_t i = 0; i < ls->n; i++) {
        if (public_only && strncmp(ls->v[i].name, "__", 2) == 0)
            continue;
        html_label_badge(out, ls->v[i].name, ls->v[i].value);
    }
}

void html_relative_time(strbuf *out, int64_t now_ms, int64_t then_ms)
{
    if (then_ms <= 0) {
        strbuf_puts(out, "never");
        return;
    }
    int64_t d = now_ms - then_ms;
    if (d < 0)
        d = 0;
    if (d < 60000) {
        strbuf_printf(out, "%.3fs ago", (double)d / 1000.0);
        return;
    }
    int64_t s = d / 1000;
    if (s < 3600)
        strbuf_printf(out, "%lldm %llds ago", (long long)(s / 60), (long long)(s % 60));
    else if (s < 86400)
        strbuf_printf(out, "%lldh %lldm ago", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else
        strbuf_printf(out, "%lldd %lldh ago", (long long)(s / 86400), (long long)(s % 86400 / 3600));
}

void html_duration(strbuf *out, double seconds)
{
    if (seconds < 1.0)
        strbuf_printf(out, "%.3fms", seconds * 1000.0);
    else
        strbuf_printf(out, "%.3fs", seconds);
}

void html_query_param(strbuf *out, int *first, const char *key, const char *value)
{
    if (!value || !*value)
        return;
    strbuf_puts(out, *first ? "?" : "&amp;");
    *first = 0;
    strbuf_url_query_escape(out, key);
    strbuf_putc(out, '=');
    strbuf_url_query_escape(out, value);
}

int64_t html_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
