/* payload: see payload.h. */
#include "periskop/payload.h"
#include "periskop/payload_priv.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "labels/labels.h"
#include "util/hash.h"
#include "util/xalloc.h"

const char *payload_severity_name(payload_severity s)
{
    switch (s) {
    case PAYLOAD_INFO: return "info";
    case PAYLOAD_WARNING: return "warning";
    default: return "error";
    }
}

payload_severity payload_severity_parse(const char *s)
{
    if (s && strcasecmp(s, "info") == 0)
        return PAYLOAD_INFO;
    if (s && strcasecmp(s, "warning") == 0)
        return PAYLOAD_WARNING;
    return PAYLOAD_ERROR;
}

/* ---- time ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int payload_parse_time(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec;
    const char *p = s;
    if (!s)
        return -1;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d))
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -1;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' || digits(&p, 2, &sec))
        return -1;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
        return -1;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return -1;
    int frac_ms = 0;
    if (*p == '.' || *p == ',') {
        p++;
        int nd = 0;
        while (isdigit((unsigned char)*p)) {
            if (nd < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            nd++;
            p++;
        }
        if (nd == 0)
            return -1;
        for (int i = nd; i < 3; i++)
            frac_ms *= 10;
    }
    int64_t off_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om = 0;
        p++;
        if (digits(&p, 2, &oh))
            return -1;
        if (*p == ':')
            p++;
        if (*p && digits(&p, 2, &om))
            return -1;
        if (oh > 23 || om > 59)
            return -1;
        off_s = sign * (oh * 3600 + om * 60);
    } else {
        return -1; /* RFC 3339 requires a zone */
    }
    if (*p)
        return -1;
    if (sec == 60)
        sec = 59; /* leap second: clamp like most parsers */
    int64_t t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec - off_s;
    *ms = t * 1000 + frac_ms;
    return 0;
}

void payload_format_time(int64_t ms, char *buf, size_t n)
{
    /* Floor division and modulo without negating or re-multiplying ms (both overflow near INT64_MIN). */
    int64_t secs = ms / 1000 - (ms % 1000 < 0);
    int frac = (int)(ms % 1000 + (ms % 1000 < 0 ? 1000 : 0));
    int64_t days = secs / 86400 - (secs % 86400 < 0);
    int64_t rem = secs % 86400 + (secs % 86400 < 0 ? 86400 : 0);
    /* civil_from_days */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    snprintf(buf, n, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m, d, (int)(rem / 3600),
             (int)(rem % 3600 / 60), (int)(rem % 60), frac);
}

/* ---- free ---- */

void payload_error_clear(payload_error *e)
{
    free(e->class_name);
    free(e->message);
    if (e->stack_block)
        free(e->stack_block);
    else
        for (size_t i = 0; i < e->n_stacktrace; i++)
            free(e->stacktrace[i]);
    free(e->stacktrace);
    if (e->cause) {
        payload_error_clear(e->cause);
        free(e->cause);
    }
    memset(e, 0, sizeof(*e));
}

void payload_http_free(payload_http *h)
{
    if (!h)
        return;
    free(h->method);
    free(h->url);
    for (size_t i = 0; i < h->n_headers; i++) {
        free(h->headers[i].name);
        free(h->headers[i].value);
    }
    free(h->headers);
    free(h->body);
    free(h);
}

void payload_occurrence_ref(payload_occurrence *o)
{
    __atomic_add_fetch(&o->refs, 1, __ATOMIC_RELAXED);
}

void payload_occurrence_unref(payload_occurrence *o)
{
    if (!o || __atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    payload_error_clear(&o->error);
    free(o->uuid);
    payload_http_free(o->http);
    free(o);
}

void payload_aggregate_clear(payload_aggregate *a)
{
    free(a->key);
    free(a->origin_job);
    free(a->count_id);
    if (a->labels) {
        labelset_free(a->labels);
        free(a->labels);
    }
    for (size_t i = 0; i < a->n_occurrences; i++)
        payload_occurrence_unref(a->occurrences[i]);
    free(a->occurrences);
    free(a->occ_hashes);
}

void payload_free(payload_doc *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_aggregates; i++)
        payload_aggregate_clear(&p->aggregates[i]);
    free(p->aggregates);
    free(p->target_uuid);
    free(p->instance_id);
    free(p->lookout_instance);
    free(p);
}

/* ---- identity ---- */

static uint64_t hash_str(uint64_t h, const char *s)
{
    return fnv1a64(h, s, strlen(s) + 1); /* include the NUL as a separator */
}

static uint64_t hash_error(uint64_t h, const payload_error *e)
{
    for (; e; e = e->cause) {
        h = hash_str(h, e->class_name);
        h = hash_str(h, e->message);
        for (size_t i = 0; i < e->n_stacktrace; i++)
            h = hash_str(h, e->stacktrace[i]);
        h = fnv1a64(h, "\xff", 1);
    }
    return h;
}

uint64_t payload_occurrence_hash(const payload_occurrence *o)
{
    uint64_t h;
    if (o->uuid[0]) {
        h = hash_str(FNV64_OFFSET, "u");
        h = hash_str(h, o->uuid);
    } else {
        h = hash_str(FNV64_OFFSET, "c");
        h = hash_error(h, &o->error);
        h = fnv1a64(h, &o->timestamp_ms, sizeof(o->timestamp_ms));
        if (o->http) {
            h = hash_str(h, o->http->method);
            h = hash_str(h, o->http->url);
            h = hash_str(h, o->http->body);
        }
    }
    return h ? h : 1;
}

payload_occurrence *payload_occurrence_alloc(void)
{
    payload_occurrence *o = xcalloc(1, sizeof(*o));
    o->refs = 1;
    return o;
}

/* ---- build ---- */

payload_occurrence *payload_occurrence_new(const char *class_name, const char *message, const char *uuid,
                                           int64_t timestamp_ms, payload_severity sev,
                                           const char *http_method, const char *http_url)
{
    payload_occurrence *o = payload_occurrence_alloc();
    o->error.class_name = xstrdup_or_empty(class_name);
    o->error.message = xstrdup_or_empty(message);
    o->uuid = xstrdup_or_empty(uuid);
    o->timestamp_ms = timestamp_ms;
    o->severity = sev;
    if (http_method) {
        o->http = xcalloc(1, sizeof(payload_http));
        o->http->method = xstrdup_or_empty(http_method);
        o->http->url = xstrdup_or_empty(http_url);
        o->http->body = xstrdup_or_empty("");
    }
    o->dedup_hash = payload_occurrence_hash(o);
    return o;
}

void payload_occurrence_rehash(payload_occurrence *o)
{
    o->dedup_hash = payload_occurrence_hash(o);
}

/* ---- serialize ---- */

void payload_error_write_json(strbuf *sb, const payload_error *e)
{
    strbuf_puts(sb, "{\"class\":");
    strbuf_json_string(sb, e->class_name ? e->class_name : "");
    strbuf_puts(sb, ",\"message\":");
    strbuf_json_string(sb, e->message ? e->message : "");
    strbuf_puts(sb, ",\"stacktrace\":");
    if (!e->n_stacktrace) {
        strbuf_puts(sb, "null");
    } else {
        strbuf_putc(sb, '[');
        for (size_t i = 0; i < e->n_stacktrace; i++) {
            if (i)
                strbuf_putc(sb, ',');
            strbuf_json_string(sb, e->stacktrace[i]);
        }
        strbuf_putc(sb, ']');
    }
    strbuf_puts(sb, ",\"cause\":");
    if (e->cause)
        payload_error_write_json(sb, e->cause);
    else
        strbuf_puts(sb, "null");
    strbuf_putc(sb, '}');
}

static int64_t unix_seconds(int64_t ms)
{
    if (ms == PAYLOAD_TS_NONE)
        return 0;
    return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
}

void payload_occurrence_write_json(strbuf *sb, const payload_occurrence *o, payload_shape shape)
{
    strbuf_puts(sb, "{\"error\":");
    payload_error_write_json(sb, &o->error);
    strbuf_puts(sb, ",\"uuid\":");
    strbuf_json_string(sb, o->uuid);
    strbuf_puts(sb, ",\"timestamp\":");
    if (shape == PAYLOAD_SHAPE_SERVER) {
        strbuf_printf(sb, "%lld", (long long)unix_seconds(o->timestamp_ms));
    } else if (o->timestamp_ms == PAYLOAD_TS_NONE) {
        strbuf_puts(sb, "\"0001-01-01T00:00:00Z\""); /* Go's zero time, what a Go client would send */
    } else {
        char t[40];
        payload_format_time(o->timestamp_ms, t, sizeof(t));
        strbuf_json_string(sb, t);
    }
    strbuf_puts(sb, ",\"severity\":");
    strbuf_json_string(sb, payload_severity_name(o->severity));
    strbuf_puts(sb, ",\"http_context\":");
    if (!o->http) {
        strbuf_puts(sb, "null");
    } else {
        strbuf_puts(sb, "{\"request_method\":");
        strbuf_json_string(sb, o->http->method);
        strbuf_puts(sb, ",\"request_url\":");
        strbuf_json_string(sb, o->http->url);
        strbuf_puts(sb, ",\"request_headers\":{");
        for (size_t i = 0; i < o->http->n_headers; i++) {
            if (i)
                strbuf_putc(sb, ',');
            strbuf_json_string(sb, o->http->headers[i].name);
            strbuf_putc(sb, ':');
            strbuf_json_string(sb, o->http->headers[i].value);
        }
        strbuf_puts(sb, "},\"request_body\":");
        strbuf_json_string(sb, o->http->body);
        strbuf_putc(sb, '}');
    }
    strbuf_putc(sb, '}');
}
