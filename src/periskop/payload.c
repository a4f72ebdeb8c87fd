/* payload: see payload.h. */
#include "periskop/payload.h"

#include "labels/labels.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/hash.h"
#include "util/xalloc.h"

/* Deeper cause chains are cut: no client produces them, and it bounds recursion. */
#define MAX_CAUSE_DEPTH 32

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

static void error_clear(payload_error *e)
{
    free(e->class_name);
    free(e->message);
    for (size_t i = 0; i < e->n_stacktrace; i++)
        free(e->stacktrace[i]);
    free(e->stacktrace);
    if (e->cause) {
        error_clear(e->cause);
        free(e->cause);
    }
    memset(e, 0, sizeof(*e));
}

static void http_free(payload_http *h)
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
    error_clear(&o->error);
    free(o->uuid);
    http_free(o->http);
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

/* ---- parse ---- */

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER:
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    default: return "null";
    }
}

/* Problem description for the first skipped record. */
typedef struct pctx {
    char *buf;
    size_t n;
} pctx;

static int problem(pctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int problem(pctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->buf, c->n, fmt, ap);
    va_end(ap);
    return -1;
}

/* Optional string member: absent/null -> "", string -> copy, other -> error. */
static int get_str(pctx *c, const json_t *obj, const char *name, char **out)
{
    const json_t *v = json_object_get(obj, name);
    if (!v || json_is_null(v)) {
        *out = xstrdup_or_empty("");
        return 0;
    }
    if (!json_is_string(v)) {
        *out = NULL;
        return problem(c, "\"%s\" is a %s, expected a string", name, type_name(v));
    }
    *out = xstrdup_or_empty(json_string_value(v));
    return 0;
}

static int get_time(pctx *c, const json_t *obj, const char *name, int64_t *out)
{
    const json_t *v = json_object_get(obj, name);
    *out = PAYLOAD_TS_NONE;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return problem(c, "\"%s\" is a %s, expected an RFC 3339 string", name, type_name(v));
    if (json_string_length(v) == 0)
        return 0; /* "" behaves like absent */
    if (payload_parse_time(json_string_value(v), out) != 0)
        return problem(c, "\"%s\": invalid RFC 3339 timestamp \"%.40s\"", name, json_string_value(v));
    return 0;
}

static int parse_error(pctx *c, const json_t *v, payload_error *e, int depth)
{
    memset(e, 0, sizeof(*e));
    if (!json_is_object(v))
        return problem(c, "\"error\" is a %s, expected an object", type_name(v));
    if (get_str(c, v, "class", &e->class_name) || get_str(c, v, "message", &e->message))
        return -1;
    const json_t *st = json_object_get(v, "stacktrace");
    if (st && !json_is_null(st)) {
        if (!json_is_array(st))
            return problem(c, "\"stacktrace\" is a %s, expected an array of strings", type_name(st));
        size_t n = json_array_size(st);
        e->stacktrace = xcalloc(n, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
            const json_t *l = json_array_get(st, i);
            if (!json_is_string(l))
                return problem(c, "\"stacktrace\"[%zu] is a %s, expected a string", i, type_name(l));
            e->stacktrace[e->n_stacktrace++] = xstrdup_or_empty(json_string_value(l));
        }
    }
    const json_t *cause = json_object_get(v, "cause");
    if (cause && !json_is_null(cause) && depth < MAX_CAUSE_DEPTH) {
        e->cause = xcalloc(1, sizeof(payload_error));
        if (parse_error(c, cause, e->cause, depth + 1))
            return -1;
    }
    return 0;
}

static int parse_http(pctx *c, const json_t *v, payload_http **out)
{
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return problem(c, "\"http_context\" is a %s, expected an object", type_name(v));
    payload_http *h = xcalloc(1, sizeof(*h));
    *out = h;
    if (get_str(c, v, "request_method", &h->method) || get_str(c, v, "request_url", &h->url) ||
        get_str(c, v, "request_body", &h->body))
        return -1;
    const json_t *hd = json_object_get(v, "request_headers");
    if (hd && !json_is_null(hd)) {
        if (!json_is_object(hd))
            return problem(c, "\"request_headers\" is a %s, expected an object", type_name(hd));
        h->headers = xcalloc(json_object_size(hd), sizeof(payload_header));
        const char *name;
        json_t *val;
        /* jansson (>= 2.8) iterates objects in insertion order, which keeps the client's order. */
        json_object_foreach((json_t *)hd, name, val) {
            if (!json_is_string(val))
                return problem(c, "header \"%.40s\" is a %s, expected a string", name, type_name(val));
            h->headers[h->n_headers].name = xstrdup_or_empty(name);
            h->headers[h->n_headers].value = xstrdup_or_empty(json_string_value(val));
            h->n_headers++;
        }
    }
    return 0;
}

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

static uint64_t occurrence_hash(const payload_occurrence *o)
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

static payload_occurrence *occ_alloc(void)
{
    payload_occurrence *o = xcalloc(1, sizeof(*o));
    o->refs = 1;
    return o;
}

static payload_occurrence *parse_occurrence(pctx *c, const json_t *v, payload_severity agg_sev)
{
    if (!json_is_object(v)) {
        problem(c, "occurrence is a %s, expected an object", type_name(v));
        return NULL;
    }
    payload_occurrence *o = occ_alloc();
    const json_t *e = json_object_get(v, "error");
    int bad = 0;
    if (e && !json_is_null(e))
        bad = parse_error(c, e, &o->error, 0);
    if (!bad && !o->error.class_name) {
        o->error.class_name = xstrdup_or_empty("");
        o->error.message = xstrdup_or_empty("");
    }
    char *sev = NULL;
    if (!bad)
        bad = get_str(c, v, "uuid", &o->uuid) || get_time(c, v, "timestamp", &o->timestamp_ms) ||
              get_str(c, v, "severity", &sev) || parse_http(c, json_object_get(v, "http_context"), &o->http);
    if (bad) {
        free(sev); /* the partly built occurrence is freed whole: every free tolerates NULL */
        payload_occurrence_unref(o);
        return NULL;
    }
    /* An occurrence without its own severity inherits the aggregate's. */
    o->severity = sev[0] ? payload_severity_parse(sev) : agg_sev;
    free(sev);
    o->dedup_hash = occurrence_hash(o);
    return o;
}

static int parse_count(pctx *c, const json_t *v, uint64_t *out)
{
    *out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return problem(c, "\"total_count\" is negative");
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d >= 0 && d < 9.2e18 && d == (double)(uint64_t)d) {
            *out = (uint64_t)d;
            return 0;
        }
        return problem(c, "\"total_count\" is not a non-negative integer");
    }
    return problem(c, "\"total_count\" is a %s, expected an integer", type_name(v));
}

static int parse_aggregate(pctx *c, payload_doc *p, const json_t *v, payload_aggregate *a)
{
    memset(a, 0, sizeof(*a));
    if (!json_is_object(v))
        return problem(c, "aggregate is a %s, expected an object", type_name(v));
    char *sev = NULL;
    if (get_str(c, v, "aggregation_key", &a->key))
        return -1;
    if (!a->key[0])
        return problem(c, "aggregate without \"aggregation_key\"");
    if (parse_count(c, json_object_get(v, "total_count"), &a->total_count) ||
        get_time(c, v, "created_at", &a->created_at_ms) || get_str(c, v, "severity", &sev))
        return -1;
    a->severity = payload_severity_parse(sev);
    free(sev);
    const json_t *oj = json_object_get(v, "__lookout_job__");
    if (json_is_string(oj) && json_string_length(oj) > 0)
        a->origin_job = xstrdup_or_empty(json_string_value(oj));
    const json_t *le = json_object_get(v, "latest_errors");
    if (le && !json_is_null(le)) {
        if (!json_is_array(le))
            return problem(c, "\"latest_errors\" is a %s, expected an array", type_name(le));
        size_t n = json_array_size(le);
        a->occurrences = xcalloc(n, sizeof(payload_occurrence *));
        for (size_t i = 0; i < n; i++) {
            char tmp[sizeof(p->first_problem)];
            pctx oc = {tmp, sizeof(tmp)};
            payload_occurrence *o = parse_occurrence(&oc, json_array_get(le, i), a->severity);
            if (!o) {
                if (!p->first_problem[0])
                    snprintf(p->first_problem, sizeof(p->first_problem), "aggregate \"%.40s\" occurrence %zu: %.90s",
                             a->key, i, tmp);
                p->skipped_occurrences++;
                continue;
            }
            a->occurrences[a->n_occurrences++] = o;
        }
    }
    return 0;
}

/* Same (origin_job, key): the aggregates describe the same error of the same process. */
static bool same_identity(const payload_aggregate *a, const payload_aggregate *b)
{
    if (strcmp(a->key, b->key) != 0)
        return false;
    if (!a->origin_job || !b->origin_job)
        return a->origin_job == b->origin_job;
    return strcmp(a->origin_job, b->origin_job) == 0;
}

/* Folds aggregate b (same key) into a: the larger count (they describe the same process), the earlier
 * created_at, b's severity, both sample lists. */
static void fold(payload_aggregate *a, payload_aggregate *b)
{
    if (b->total_count > a->total_count)
        a->total_count = b->total_count;
    if (b->created_at_ms != PAYLOAD_TS_NONE &&
        (a->created_at_ms == PAYLOAD_TS_NONE || b->created_at_ms < a->created_at_ms))
        a->created_at_ms = b->created_at_ms;
    a->severity = b->severity;
    a->occurrences = realloc(a->occurrences, (a->n_occurrences + b->n_occurrences + 1) * sizeof(void *));
    if (!a->occurrences)
        abort();
    if (b->n_occurrences) /* b->occurrences is NULL when b kept none: memcpy(NULL, 0) is UB */
        memcpy(a->occurrences + a->n_occurrences, b->occurrences, b->n_occurrences * sizeof(void *));
    a->n_occurrences += b->n_occurrences;
    b->n_occurrences = 0;
    payload_aggregate_clear(b);
}

payload_doc *payload_parse(const char *body, size_t len, const char *fallback_id, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(body ? body : "", len, 0, &jerr);
    if (!root) {
        snprintf(err, errlen, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "payload is not a JSON object (got %s)", type_name(root));
        json_decref(root);
        return NULL;
    }
    const json_t *list = json_object_get(root, "aggregated_errors");
    if (list && !json_is_null(list) && !json_is_array(list)) {
        snprintf(err, errlen, "\"aggregated_errors\" is not an array (got %s)", type_name(list));
        json_decref(root);
        return NULL;
    }
    payload_doc *p = xcalloc(1, sizeof(*p));
    const json_t *tu = json_object_get(root, "target_uuid");
    p->target_uuid = xstrdup_or_empty(json_is_string(tu) ? json_string_value(tu) : "");
    p->instance_id = xstrdup_or_empty(p->target_uuid[0] ? p->target_uuid : (fallback_id ? fallback_id : ""));
    const json_t *li = json_object_get(root, "__lookout_instance__");
    if (json_is_string(li) && json_string_length(li) > 0)
        p->lookout_instance = xstrdup_or_empty(json_string_value(li));

    size_t n = json_array_size(list); /* 0 for NULL */
    p->aggregates = xcalloc(n, sizeof(payload_aggregate));
    /* Small index from key to position, to fold repeated keys. */
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    size_t *idx = xcalloc(cap, sizeof(size_t)); /* position + 1; 0 = empty */
    for (size_t i = 0; i < n; i++) {
        char tmp[sizeof(p->first_problem)];
        pctx c = {tmp, sizeof(tmp)};
        payload_aggregate a;
        if (parse_aggregate(&c, p, json_array_get(list, i), &a) != 0) {
            if (!p->first_problem[0])
                snprintf(p->first_problem, sizeof(p->first_problem), "aggregate %zu: %.160s", i, tmp);
            p->skipped_aggregates++;
            payload_aggregate_clear(&a);
            continue;
        }
        uint64_t kh = fnv1a64(FNV64_OFFSET, a.key, strlen(a.key));
        if (a.origin_job)
            kh = fnv1a64(kh ^ 0x9e3779b97f4a7c15ULL, a.origin_job, strlen(a.origin_job));
        size_t h = (size_t)kh & (cap - 1);
        while (idx[h] && !same_identity(&p->aggregates[idx[h] - 1], &a))
            h = (h + 1) & (cap - 1);
        if (idx[h]) {
            fold(&p->aggregates[idx[h] - 1], &a);
        } else {
            p->aggregates[p->n_aggregates] = a;
            idx[h] = ++p->n_aggregates;
        }
    }
    free(idx);
    json_decref(root);
    return p;
}

/* ---- build ---- */

payload_occurrence *payload_occurrence_new(const char *class_name, const char *message, const char *uuid,
                                           int64_t timestamp_ms, payload_severity sev,
                                           const char *http_method, const char *http_url)
{
    payload_occurrence *o = occ_alloc();
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
    o->dedup_hash = occurrence_hash(o);
    return o;
}

void payload_occurrence_rehash(payload_occurrence *o)
{
    o->dedup_hash = occurrence_hash(o);
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
