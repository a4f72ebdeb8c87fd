/* apiutil: see apiutil.h. */
#include "api/apiutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void api_json_float(strbuf *out, double v)
{
    if (!isfinite(v) || v == 0) {
        strbuf_putc(out, '0');
        return;
    }
    /* Shortest %.*e that round-trips, then laid out as Go does ('f' unless tiny or huge). */
    char e[40];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, v);
        if (strtod(e, NULL) == v)
            break;
    }
    /* e = [-]D[.DDD]e[+-]XX */
    const char *p = e;
    bool neg = *p == '-';
    if (neg)
        p++;
    char digits[32];
    size_t nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[nd++] = *p;
    digits[nd] = '\0';
    int exp10 = atoi(p + 1); /* value = 0.D1D2... * 10^(exp10+1) */
    double a = fabs(v);
    if (neg)
        strbuf_putc(out, '-');
    if (a < 1e-6 || a >= 1e21) {
        strbuf_putc(out, digits[0]);
        if (nd > 1) {
            strbuf_putc(out, '.');
            strbuf_puts(out, digits + 1);
        }
        strbuf_printf(out, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
        /* encoding/json cleans strconv's "e-07" up to "e-7". */
        size_t l = out->len;
        if (l >= 2 && out->buf[l - 2] == '0') {
            out->buf[l - 2] = out->buf[l - 1];
            out->buf[--out->len] = '\0';
        }
        return;
    }
    int point = exp10 + 1; /* digits before the decimal point */
    if (point <= 0) {
        strbuf_puts(out, "0.");
        for (int i = 0; i < -point; i++)
            strbuf_putc(out, '0');
        strbuf_puts(out, digits);
    } else if ((size_t)point >= nd) {
        strbuf_puts(out, digits);
        for (size_t i = nd; i < (size_t)point; i++)
            strbuf_putc(out, '0');
    } else {
        strbuf_append(out, digits, (size_t)point);
        strbuf_putc(out, '.');
        strbuf_puts(out, digits + point);
    }
}

void api_json_time(strbuf *out, int64_t unix_ms)
{
    if (unix_ms == 0) {
        strbuf_puts(out, "\"0001-01-01T00:00:00Z\"");
        return;
    }
    time_t secs = (time_t)(unix_ms / 1000);
    int64_t ms = unix_ms % 1000;
    if (ms < 0) {
        ms += 1000;
        secs--;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    char buf[64];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    strbuf_putc(out, '"');
    strbuf_puts(out, buf);
    if (ms) {
        char frac[8];
        snprintf(frac, sizeof frac, "%03d", (int)ms);
        size_t n = 3;
        while (n && frac[n - 1] == '0')
            frac[--n] = '\0';
        strbuf_putc(out, '.');
        strbuf_puts(out, frac);
    }
    strbuf_puts(out, "Z\"");
}

void api_json_error(api_response *resp, const char *type, const char *msg)
{
    int status = 400;
    if (strcmp(type, "execution") == 0)
        status = 422;
    else if (strcmp(type, "internal") == 0)
        status = 500;
    else if (strcmp(type, "not_found") == 0)
        status = 404;
    else if (strcmp(type, "timeout") == 0) /* Prometheus: a query over its time budget */
        status = 503;
    resp->status = status;
    resp->content_type = "application/json";
    strbuf_reset(&resp->body);
    strbuf_puts(&resp->body, "{\"status\":\"error\",\"errorType\":");
    strbuf_json_string(&resp->body, type);
    strbuf_puts(&resp->body, ",\"error\":");
    strbuf_json_string(&resp->body, msg);
    strbuf_putc(&resp->body, '}');
}

void api_json_ok(api_response *resp)
{
    resp->status = 200;
    resp->content_type = "application/json";
}

void api_json_label(void *ctx, const char *name, const char *value)
{
    api_json_labels *w = ctx;
    if (w->any)
        strbuf_putc(w->out, ',');
    w->any = true;
    strbuf_json_string(w->out, name);
    strbuf_putc(w->out, ':');
    strbuf_json_string(w->out, value);
}
