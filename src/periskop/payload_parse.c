/* payload_parse: the streaming (SAX) parser of the Periskop client wire format, see payload.h.
 *
 * yajl reports tokens; this file turns them into payload_doc structures directly, without a document
 * tree: memory is what the kept records need (bounded by the body and max_occurrences), not a tree of
 * JSON values (which cost ~77 times the body for `[{},{},...]`). Values nobody reads (unknown members,
 * the rest of a record already known to be bad) are skipped by counting nesting depth only.
 *
 * The result is the one the former jansson DOM parser gave: the same records kept, skipped and counted,
 * the same problem texts, in the same order. Every JSON object is evaluated when it closes, in the fixed
 * member order the DOM version checked, so a document's member order never changes which problem is
 * reported; a repeated member replaces the earlier one (jansson's behaviour). Fatal errors keep jansson's
 * words where they exist (depth 2048, "\u0000 is not allowed", "too big integer", "real number
 * overflow") with yajl's lexical/parse texts otherwise.
 *
 * Threading: none; a parse is self-contained. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "periskop/payload.h"
#include "periskop/payload_priv.h"
#include "util/hash.h"
#include "util/json_error.h"
#include "util/xalloc.h"

/* Deeper cause chains are cut: no client produces them, and it bounds the builder stack. */
#define MAX_CAUSE_DEPTH 32
/* jansson's JSON_PARSER_MAX_DEPTH, kept so that a document refused before is refused now. */
#define PARSE_MAX_DEPTH 2048
#define PROBLEM_LEN 200
/* Marks an occurrence without its own severity until its aggregate (whose severity may come later in
 * the object) closes. */
#define SEV_UNSET ((payload_severity)99)

typedef enum vtype { VT_NULL, VT_BOOL, VT_NUMBER, VT_STRING, VT_OBJECT, VT_ARRAY } vtype;

static const char *vtype_name(vtype t)
{
    static const char *const n[] = {"null", "boolean", "number", "string", "object", "array"};
    return n[t];
}

/* A string member: absent (or null), a string, or a value of another type. */
typedef struct sslot {
    char *s;         /* owned; set when a string was given */
    const char *bad; /* type name of a non-string value */
} sslot;

static void sslot_reset(sslot *s)
{
    free(s->s);
    s->s = NULL;
    s->bad = NULL;
}

/* A composite member (error, stacktrace, cause, http_context, ...): absent, good, or bad with a text. */
typedef enum cstate { CS_ABSENT, CS_OK, CS_BAD } cstate;

typedef enum fkind { FK_ROOT, FK_AGG_LIST, FK_AGG, FK_OCC_LIST, FK_OCC, FK_ERROR, FK_STACK, FK_HTTP,
                     FK_HEADERS } fkind;

/* Member ids, per object kind. F_OTHER: skipped. */
enum {
    F_OTHER = 0,
    /* root */ F_TARGET_UUID, F_AGGREGATED_ERRORS, F_LOOKOUT_INSTANCE,
    /* aggregate */ F_KEY, F_TOTAL_COUNT, F_CREATED_AT, F_SEVERITY, F_LOOKOUT_JOB, F_LATEST_ERRORS,
    /* occurrence */ F_ERROR, F_UUID, F_TIMESTAMP, F_HTTP_CONTEXT, /* + F_SEVERITY */
    /* error */ F_CLASS, F_MESSAGE, F_STACKTRACE, F_CAUSE,
    /* http */ F_METHOD, F_URL, F_BODY, F_HEADERS,
    /* headers: every member */ F_HEADER,
};

typedef struct frame {
    fkind kind;
    int field;    /* member the next value belongs to (objects) */
    size_t index; /* elements seen (arrays) */
} frame;

typedef struct errb {
    payload_error e; /* built in place; moved out when the object closes */
    sslot cls, msg;
    cstate stack, cause;
    char stack_problem[PROBLEM_LEN], cause_problem[PROBLEM_LEN];
    /* stacktrace lines while the array is read: their bytes (NUL-separated) and where each starts */
    char *lines;
    size_t lines_len, lines_cap;
    uint32_t *starts;
    size_t n_lines, starts_cap;
} errb;

typedef struct httpb {
    sslot method, url, body;
    cstate headers;
    char headers_problem[PROBLEM_LEN];
    payload_header *hdr;
    size_t n_hdr, cap_hdr;
    char *cur_name; /* the member name whose value comes next */
} httpb;

typedef struct occb {
    cstate error;
    payload_error err; /* when error == CS_OK */
    char error_problem[PROBLEM_LEN];
    sslot uuid, ts, sev;
    cstate http;
    payload_http *h; /* when http == CS_OK */
    char http_problem[PROBLEM_LEN];
} occb;

typedef struct aggb {
    sslot key, created, sev, origin;
    int count_state; /* 0 absent, 1 ok, 2 bad */
    uint64_t count;
    char count_problem[PROBLEM_LEN];
    const char *list_bad; /* latest_errors of another type */
    payload_occurrence **occ;
    size_t n_occ, cap_occ;
    size_t skipped;        /* bad occurrences of the current latest_errors */
    /* reuse: fingerprints of its occurrences so far; oh_bad when one cannot be fingerprinted; known: left
     * out (a placeholder stood for them) */
    uint64_t *oh;
    size_t n_oh, known;
    bool oh_bad;
    size_t first_bad_index;
    char occ_problem[PROBLEM_LEN]; /* of the first bad occurrence; "" when none */
} aggb;

typedef struct pparse {
    payload_doc *doc;
    size_t max_occ;
    frame st[MAX_CAUSE_DEPTH + 16];
    int sp;          /* frames in st */
    size_t skip;     /* > 0: inside a value being skipped (its nesting depth) */
    size_t depth;    /* JSON nesting depth, for PARSE_MAX_DEPTH */
    bool started;    /* the top-level value began */
    bool root_array; /* the top-level value is an array */
    char fatal[160]; /* a fatal error raised by a callback */
    /* root */
    sslot target_uuid, lookout_instance;
    const char *list_bad; /* aggregated_errors of another type */
    size_t cap_aggs;
    uint32_t *idx; /* position + 1 of each kept aggregate, by (origin_job, key); 0 = empty */
    size_t idx_cap;
    /* builders of the records being read (at most one of each, errors one per cause level) */
    aggb agg;
    occb occ;
    /* Reuse (payload_parse_reuse): yajl's handle for its offsets; the plan (spans in the text being
     * parsed, fingerprints, placeholders); placeholders met; where the open aggregate and occurrence began. */
    yajl_handle h;
    const reuse_plan *plan; /* NULL: a plain parse */
    const reuse_elem *cur;  /* the plan of the aggregate being read, or NULL */
    size_t n_placeholders, agg_open, occ_open;
    /* an aggregate folded with another of its key while either had occurrences left out (reused or held
     * by the previous body): the newest max_occ of the folded lists cannot be chosen without them */
    bool fold_partial;
    httpb http;
    errb err[MAX_CAUSE_DEPTH + 1];
    int n_err; /* error builders in use */
} pparse;

static void problemf(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problemf(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, PROBLEM_LEN, fmt, ap);
    va_end(ap);
}

static int fatal(pparse *c, const char *msg)
{
    snprintf(c->fatal, sizeof c->fatal, "%s", msg);
    return 0; /* cancels the parse */
}

static char *dupn(const unsigned char *s, size_t n)
{
    char *d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* ---- builders ---- */

static void stack_reset(errb *b)
{
    free(b->lines);
    free(b->starts);
    b->lines = NULL;
    b->starts = NULL;
    b->lines_len = b->lines_cap = b->n_lines = b->starts_cap = 0;
}

static void stack_add(errb *b, const unsigned char *s, size_t len)
{
    if (b->lines_len + len + 1 > UINT32_MAX) { /* bodies are far smaller; keep the offsets exact anyway */
        b->stack = CS_BAD;
        problemf(b->stack_problem, "\"stacktrace\" is too long");
        return;
    }
    if (b->lines_len + len + 1 > b->lines_cap) {
        b->lines_cap = b->lines_cap * 2 > b->lines_len + len + 1 ? b->lines_cap * 2 : b->lines_len + len + 1 + 64;
        b->lines = xrealloc(b->lines, b->lines_cap);
    }
    if (b->n_lines == b->starts_cap) {
        b->starts_cap = b->starts_cap ? b->starts_cap * 2 : 16;
        b->starts = xrealloc(b->starts, b->starts_cap * sizeof *b->starts);
    }
    b->starts[b->n_lines++] = (uint32_t)b->lines_len;
    memcpy(b->lines + b->lines_len, s, len);
    b->lines[b->lines_len + len] = 0;
    b->lines_len += len + 1;
}

/* The stacktrace array closed without a problem: its lines become the error's, in one block. */
static void stack_commit(errb *b)
{
    if (!b->n_lines) {
        stack_reset(b);
        return;
    }
    b->e.stack_block = xrealloc(b->lines, b->lines_len); /* gives back the growth slack */
    b->lines = NULL;
    b->e.stacktrace = xmalloc(b->n_lines * sizeof(char *));
    for (size_t i = 0; i < b->n_lines; i++)
        b->e.stacktrace[i] = b->e.stack_block + b->starts[i];
    b->e.n_stacktrace = b->n_lines;
    stack_reset(b);
}

static void errb_clear(errb *b)
{
    stack_reset(b);
    payload_error_clear(&b->e);
    sslot_reset(&b->cls);
    sslot_reset(&b->msg);
    memset(b, 0, sizeof *b);
}

static void httpb_clear(httpb *b)
{
    sslot_reset(&b->method);
    sslot_reset(&b->url);
    sslot_reset(&b->body);
    for (size_t i = 0; i < b->n_hdr; i++) {
        free(b->hdr[i].name);
        free(b->hdr[i].value);
    }
    free(b->hdr);
    free(b->cur_name);
    memset(b, 0, sizeof *b);
}

static void occb_clear(occb *b)
{
    payload_error_clear(&b->err);
    sslot_reset(&b->uuid);
    sslot_reset(&b->ts);
    sslot_reset(&b->sev);
    payload_http_free(b->h);
    memset(b, 0, sizeof *b);
}

static void aggb_clear_list(aggb *b)
{
    for (size_t i = 0; i < b->n_occ; i++)
        payload_occurrence_unref(b->occ[i]);
    free(b->occ);
    b->occ = NULL;
    b->n_occ = b->cap_occ = 0;
    b->skipped = 0;
    b->occ_problem[0] = 0;
    b->list_bad = NULL;
    free(b->oh);
    b->oh = NULL;
    b->n_oh = b->known = 0;
}

static void aggb_clear(aggb *b)
{
    aggb_clear_list(b);
    sslot_reset(&b->key);
    sslot_reset(&b->created);
    sslot_reset(&b->sev);
    sslot_reset(&b->origin);
    memset(b, 0, sizeof *b);
}

/* Newest first, ties by hash: the merge engine's sample order (store/merge.c before()). */
static bool newer(const payload_occurrence *x, const payload_occurrence *y)
{
    if (x->timestamp_ms != y->timestamp_ms)
        return x->timestamp_ms > y->timestamp_ms;
    return x->dedup_hash > y->dedup_hash;
}

/* Adds o (one reference, handed over) to a list that keeps at most max occurrences: past that, the
 * oldest goes. The merge engine keeps only the newest samples_per_error samples of an error, so older
 * ones beyond that many could never be stored. */
static void keep_occurrence(payload_occurrence ***list, size_t *n, size_t *cap, size_t max,
                            payload_occurrence *o)
{
    if (*n < max) {
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 4;
            if (*cap > max)
                *cap = max;
            *list = xrealloc(*list, *cap * sizeof **list);
        }
        (*list)[(*n)++] = o;
        return;
    }
    size_t oldest = 0;
    for (size_t i = 1; i < *n; i++)
        if (newer((*list)[oldest], (*list)[i]))
            oldest = i;
    if (newer(o, (*list)[oldest])) {
        payload_occurrence_unref((*list)[oldest]);
        (*list)[oldest] = o;
    } else {
        payload_occurrence_unref(o);
    }
}

/* ---- evaluation of closed objects, in the DOM parser's member order ---- */

static int str_problem(char *buf, const sslot *s, const char *name)
{
    if (!s->bad)
        return 0;
    problemf(buf, "\"%s\" is a %s, expected a string", name, s->bad);
    return -1;
}

static char *take(sslot *s)
{
    char *v = s->s ? s->s : xstrdup("");
    s->s = NULL;
    return v;
}

static int time_value(char *buf, const sslot *s, const char *name, int64_t *out)
{
    *out = PAYLOAD_TS_NONE;
    if (s->bad) {
        problemf(buf, "\"%s\" is a %s, expected an RFC 3339 string", name, s->bad);
        return -1;
    }
    if (!s->s || !s->s[0])
        return 0; /* "" behaves like absent */
    if (payload_parse_time(s->s, out) != 0) {
        problemf(buf, "\"%s\": invalid RFC 3339 timestamp \"%.40s\"", name, s->s);
        return -1;
    }
    return 0;
}

/* The error object at level lvl closed: its result goes to its parent (the occurrence or the error one
 * level up). */
static void error_closed(pparse *c, int lvl)
{
    errb *b = &c->err[lvl];
    char problem[PROBLEM_LEN] = "";
    if (!str_problem(problem, &b->cls, "class") && !str_problem(problem, &b->msg, "message")) {
        if (b->stack == CS_BAD)
            memcpy(problem, b->stack_problem, PROBLEM_LEN);
        else if (b->cause == CS_BAD)
            memcpy(problem, b->cause_problem, PROBLEM_LEN);
    }
    cstate *st;
    char *pbuf;
    if (lvl == 0) {
        st = &c->occ.error;
        pbuf = c->occ.error_problem;
        payload_error_clear(&c->occ.err); /* a repeated "error" member replaces the first */
    } else {
        errb *up = &c->err[lvl - 1];
        st = &up->cause;
        pbuf = up->cause_problem;
        if (up->e.cause) {
            payload_error_clear(up->e.cause);
            free(up->e.cause);
            up->e.cause = NULL;
        }
    }
    if (problem[0]) {
        *st = CS_BAD;
        memcpy(pbuf, problem, PROBLEM_LEN);
    } else {
        *st = CS_OK;
        b->e.class_name = take(&b->cls);
        b->e.message = take(&b->msg);
        if (lvl == 0) {
            c->occ.err = b->e;
        } else {
            c->err[lvl - 1].e.cause = xmalloc(sizeof(payload_error));
            *c->err[lvl - 1].e.cause = b->e;
        }
        memset(&b->e, 0, sizeof b->e);
    }
    errb_clear(b);
    c->n_err = lvl;
}

static void http_closed(pparse *c)
{
    httpb *b = &c->http;
    occb *o = &c->occ;
    payload_http_free(o->h);
    o->h = NULL;
    char *p = o->http_problem;
    if (str_problem(p, &b->method, "request_method") || str_problem(p, &b->url, "request_url") ||
        str_problem(p, &b->body, "request_body")) {
        o->http = CS_BAD;
    } else if (b->headers == CS_BAD) {
        memcpy(p, b->headers_problem, PROBLEM_LEN);
        o->http = CS_BAD;
    } else {
        payload_http *h = xcalloc(1, sizeof *h);
        h->method = take(&b->method);
        h->url = take(&b->url);
        h->body = take(&b->body);
        if (b->headers == CS_OK) {
            /* with no headers, an array a repeated request_headers member left is freed by httpb_clear */
            if (b->n_hdr) {
                h->headers = b->hdr;
                b->hdr = NULL;
            } else {
                h->headers = xcalloc(1, sizeof(payload_header));
            }
            h->n_headers = b->n_hdr;
            b->n_hdr = 0;
        }
        o->h = h;
        o->http = CS_OK;
    }
    httpb_clear(b);
}

static void occ_fingerprint(aggb *a, uint64_t h)
{
    if (a->n_oh == PAYLOAD_REUSE_MAX_OCC) {
        a->oh_bad = true;
        return;
    }
    if ((a->n_oh & (a->n_oh - 1)) == 0) /* 0, 1, 2, 4, ...: grow to the next power of two */
        a->oh = xrealloc(a->oh, (a->n_oh ? a->n_oh * 2 : 1) * sizeof *a->oh);
    a->oh[a->n_oh++] = h;
}

static void occurrence_closed(pparse *c)
{
    occb *b = &c->occ;
    aggb *a = &c->agg;
    size_t index = c->st[c->sp - 1].index - 1; /* the occurrence list frame is below */
    char problem[PROBLEM_LEN] = "";
    int64_t ts = PAYLOAD_TS_NONE;
    if (b->error == CS_BAD)
        memcpy(problem, b->error_problem, PROBLEM_LEN);
    else if (!str_problem(problem, &b->uuid, "uuid") && !time_value(problem, &b->ts, "timestamp", &ts) &&
             !str_problem(problem, &b->sev, "severity") && b->http == CS_BAD)
        memcpy(problem, b->http_problem, PROBLEM_LEN);
    if (problem[0]) {
        if (!a->occ_problem[0]) {
            memcpy(a->occ_problem, problem, PROBLEM_LEN);
            a->first_bad_index = index;
        }
        a->skipped++;
        a->oh_bad = true;
        occb_clear(b);
        return;
    }
    payload_occurrence *o = payload_occurrence_alloc();
    if (b->error == CS_OK) {
        o->error = b->err;
        memset(&b->err, 0, sizeof b->err);
    } else {
        o->error.class_name = xstrdup("");
        o->error.message = xstrdup("");
    }
    o->uuid = take(&b->uuid);
    o->timestamp_ms = ts;
    o->severity = b->sev.s && b->sev.s[0] ? payload_severity_parse(b->sev.s) : SEV_UNSET;
    if (b->http == CS_OK) {
        o->http = b->h;
        b->h = NULL;
    }
    o->dedup_hash = payload_occurrence_hash(o);
    occb_clear(b);
    keep_occurrence(&a->occ, &a->n_occ, &a->cap_occ, c->max_occ, o);
    /* Fingerprinted only when yajl's own offsets say it is exactly the planned element. */
    const reuse_elem *e = c->cur;
    if (e && e->occ && index < e->n_occ && c->occ_open == e->occ[index].span.start + 1 &&
        yajl_get_bytes_consumed(c->h) == e->occ[index].span.end)
        occ_fingerprint(a, e->occ[index].hash);
    else
        a->oh_bad = true;
}

static bool same_identity(const payload_aggregate *a, const payload_aggregate *b)
{
    if (strcmp(a->key, b->key) != 0)
        return false;
    if (!a->origin_job || !b->origin_job)
        return a->origin_job == b->origin_job;
    return strcmp(a->origin_job, b->origin_job) == 0;
}

static size_t identity_hash(const payload_aggregate *a)
{
    uint64_t kh = fnv1a64(FNV64_OFFSET, a->key, strlen(a->key));
    if (a->origin_job)
        kh = fnv1a64(kh ^ 0x9e3779b97f4a7c15ULL, a->origin_job, strlen(a->origin_job));
    return (size_t)kh;
}

static void index_insert(pparse *c, size_t pos)
{
    size_t h = identity_hash(&c->doc->aggregates[pos]) & (c->idx_cap - 1);
    while (c->idx[h])
        h = (h + 1) & (c->idx_cap - 1);
    c->idx[h] = (uint32_t)(pos + 1);
}

/* Folds aggregate b (same identity) into a: the larger count (they describe the same process), the
 * earlier created_at, b's severity, both sample lists (the newest max_occ of them). */
static void fold(pparse *c, payload_aggregate *a, payload_aggregate *b)
{
    /* Two elements in one: neither's text describes the result. A reused aggregate or one with known
     * occurrences lacks occurrences the capped folded list may need: payload_parse_reuse parses again. */
    if (a->reused || b->reused || a->known_occurrences || b->known_occurrences)
        c->fold_partial = true;
    a->raw_hash = 0;
    a->reused = false;
    a->known_occurrences += b->known_occurrences;
    free(a->occ_hashes);
    a->occ_hashes = NULL;
    a->n_occ_hashes = 0;
    if (b->total_count > a->total_count)
        a->total_count = b->total_count;
    if (b->created_at_ms != PAYLOAD_TS_NONE &&
        (a->created_at_ms == PAYLOAD_TS_NONE || b->created_at_ms < a->created_at_ms))
        a->created_at_ms = b->created_at_ms;
    a->severity = b->severity;
    size_t cap = a->n_occurrences; /* the list is exactly as long as its contents */
    for (size_t i = 0; i < b->n_occurrences; i++)
        keep_occurrence(&a->occurrences, &a->n_occurrences, &cap, c->max_occ, b->occurrences[i]);
    b->n_occurrences = 0;
    payload_aggregate_clear(b);
}

static void aggregate_add(pparse *c, payload_aggregate *ap);

static void aggregate_closed(pparse *c)
{
    aggb *b = &c->agg;
    payload_doc *p = c->doc;
    size_t index = c->st[c->sp - 1].index - 1;
    char problem[PROBLEM_LEN] = "";
    int64_t created = PAYLOAD_TS_NONE;
    if (str_problem(problem, &b->key, "aggregation_key")) {
    } else if (!b->key.s || !b->key.s[0]) {
        problemf(problem, "aggregate without \"aggregation_key\"");
    } else if (b->count_state == 2) {
        memcpy(problem, b->count_problem, PROBLEM_LEN);
    } else if (time_value(problem, &b->created, "created_at", &created) ||
               str_problem(problem, &b->sev, "severity")) {
    } else if (b->list_bad) {
        problemf(problem, "\"latest_errors\" is a %s, expected an array", b->list_bad);
    }
    if (problem[0]) {
        if (!p->first_problem[0])
            snprintf(p->first_problem, sizeof(p->first_problem), "aggregate %zu: %.160s", index, problem);
        p->skipped_aggregates++;
        aggb_clear(b);
        return;
    }
    payload_aggregate a = {0};
    a.key = take(&b->key);
    a.total_count = b->count_state == 1 ? b->count : 0;
    a.created_at_ms = created;
    a.severity = payload_severity_parse(b->sev.s);
    if (b->origin.s && b->origin.s[0])
        a.origin_job = take(&b->origin);
    for (size_t i = 0; i < b->n_occ; i++)
        if (b->occ[i]->severity == SEV_UNSET)
            b->occ[i]->severity = a.severity; /* inherits the aggregate's */
    a.occurrences = b->occ;
    a.n_occurrences = b->n_occ;
    b->occ = NULL;
    b->n_occ = 0;
    if (b->occ_problem[0] && !p->first_problem[0])
        snprintf(p->first_problem, sizeof(p->first_problem), "aggregate \"%.40s\" occurrence %zu: %.90s", a.key,
                 b->first_bad_index, b->occ_problem);
    p->skipped_occurrences += b->skipped;
    /* Remembered only when yajl's own offsets say this aggregate is exactly the scanned element, and its
     * occurrences only when every one of them is fingerprinted. */
    const reuse_elem *e = c->cur;
    if (e && !b->skipped && c->agg_open == e->span.start + 1 && yajl_get_bytes_consumed(c->h) == e->span.end) {
        a.raw_hash = e->hash;
        if (e->occ && !b->oh_bad && b->n_oh == e->n_occ) {
            a.occ_hashes = b->oh;
            a.n_occ_hashes = b->n_oh;
            b->oh = NULL;
        }
    }
    a.known_occurrences = b->known;
    c->cur = NULL;
    aggb_clear(b);
    aggregate_add(c, &a);
}

/* Adds a built aggregate to the document, folding it into an earlier one of the same identity. */
static void aggregate_add(pparse *c, payload_aggregate *ap)
{
    payload_doc *p = c->doc;
    payload_aggregate a = *ap;
    size_t h = identity_hash(&a) & (c->idx_cap - 1);
    while (c->idx[h] && !same_identity(&p->aggregates[c->idx[h] - 1], &a))
        h = (h + 1) & (c->idx_cap - 1);
    if (c->idx[h]) {
        fold(c, &p->aggregates[c->idx[h] - 1], &a);
        return;
    }
    if (p->n_aggregates == c->cap_aggs) {
        c->cap_aggs = c->cap_aggs ? c->cap_aggs + c->cap_aggs / 2 : 16;
        p->aggregates = xrealloc(p->aggregates, c->cap_aggs * sizeof *p->aggregates);
    }
    p->aggregates[p->n_aggregates] = a;
    c->idx[h] = (uint32_t)++p->n_aggregates;
    if (p->n_aggregates * 2 > c->idx_cap) {
        free(c->idx);
        c->idx_cap *= 2;
        c->idx = xcalloc(c->idx_cap, sizeof *c->idx);
        for (size_t i = 0; i < p->n_aggregates; i++)
            index_insert(c, i);
    }
}

/* A new aggregated_errors array: the last one given wins, as with a repeated member in jansson. */
static void reset_aggregates(pparse *c)
{
    payload_doc *p = c->doc;
    for (size_t i = 0; i < p->n_aggregates; i++)
        payload_aggregate_clear(&p->aggregates[i]);
    p->n_aggregates = 0;
    p->skipped_aggregates = p->skipped_occurrences = 0;
    p->first_problem[0] = 0;
    memset(c->idx, 0, c->idx_cap * sizeof *c->idx);
}

/* ---- values ---- */

static frame *top(pparse *c)
{
    return &c->st[c->sp - 1];
}

static int push(pparse *c, fkind k)
{
    c->st[c->sp++] = (frame){k, F_OTHER, 0};
    return 1;
}

/* Starts skipping the value that begins with a container (t = VT_OBJECT or VT_ARRAY). */
static int skip_container(pparse *c)
{
    c->skip = 1;
    return 1;
}

/* Sets a string slot from a value of any type. Returns 1 (continue). s/len only for VT_STRING. */
static int set_slot(pparse *c, sslot *slot, vtype t, const unsigned char *s, size_t len)
{
    sslot_reset(slot);
    if (t == VT_STRING)
        slot->s = dupn(s, len);
    else if (t != VT_NULL)
        slot->bad = vtype_name(t);
    return t == VT_OBJECT || t == VT_ARRAY ? skip_container(c) : 1;
}

/* total_count: an integer, or a real that is a whole non-negative number; other types are problems. */
static void set_count(pparse *c, vtype t, const char *num, size_t len)
{
    aggb *b = &c->agg;
    b->count_state = 0;
    b->count = 0;
    if (t == VT_NULL)
        return;
    b->count_state = 2;
    if (t != VT_NUMBER) {
        problemf(b->count_problem, "\"total_count\" is a %s, expected an integer", vtype_name(t));
        return;
    }
    char tmp[64];
    bool real = memchr(num, '.', len) || memchr(num, 'e', len) || memchr(num, 'E', len);
    if (!real) { /* fits: the number callback refused larger integers */
        snprintf(tmp, sizeof tmp, "%.*s", (int)len, num);
        long long v = strtoll(tmp, NULL, 10);
        if (v < 0) {
            problemf(b->count_problem, "\"total_count\" is negative");
            return;
        }
        b->count = (uint64_t)v;
        b->count_state = 1;
        return;
    }
    char *z = dupn((const unsigned char *)num, len);
    double d = strtod(z, NULL);
    free(z);
    if (d >= 0 && d < 9.2e18 && d == (double)(uint64_t)d) {
        b->count = (uint64_t)d;
        b->count_state = 1;
        return;
    }
    problemf(b->count_problem, "\"total_count\" is not a non-negative integer");
}

/* Every value (scalar or the start of a container) outside a skipped value. */
static int on_value(pparse *c, vtype t, const unsigned char *s, size_t len)
{
    bool container = t == VT_OBJECT || t == VT_ARRAY;
    if (!c->started) {
        c->started = true;
        if (t == VT_OBJECT)
            return push(c, FK_ROOT);
        if (t == VT_ARRAY) {
            c->root_array = true;
            return skip_container(c);
        }
        return fatal(c, "'[' or '{' expected");
    }
    frame *f = top(c);
    switch (f->kind) {
    case FK_ROOT:
        switch (f->field) {
        case F_TARGET_UUID:
            return set_slot(c, &c->target_uuid, t, s, len);
        case F_LOOKOUT_INSTANCE:
            return set_slot(c, &c->lookout_instance, t, s, len);
        case F_AGGREGATED_ERRORS:
            reset_aggregates(c);
            c->list_bad = NULL;
            if (t == VT_ARRAY)
                return push(c, FK_AGG_LIST);
            if (t != VT_NULL)
                c->list_bad = vtype_name(t);
            return container ? skip_container(c) : 1;
        default:
            return container ? skip_container(c) : 1;
        }
    case FK_AGG_LIST:
        f->index++;
        if (t == VT_OBJECT) {
            c->agg_open = yajl_get_bytes_consumed(c->h);
            c->cur = c->plan && f->index - 1 < c->plan->n ? &c->plan->el[f->index - 1] : NULL;
            return push(c, FK_AGG);
        }
        if (t == VT_NUMBER && c->plan && f->index - 1 < c->plan->n && c->plan->el[f->index - 1].found.key &&
            len == 1 && s[0] == '0') { /* the placeholder of a reused aggregate */
            const reuse_elem *e = &c->plan->el[f->index - 1];
            const payload_aggregate *r = &e->found;
            payload_aggregate a = {.key = xstrdup(r->key), .total_count = r->total_count, .severity = r->severity,
                                   .created_at_ms = r->created_at_ms, .raw_hash = e->hash, .reused = true};
            if (r->n_occ_hashes) {
                a.occ_hashes = xmalloc(r->n_occ_hashes * sizeof *a.occ_hashes);
                memcpy(a.occ_hashes, r->occ_hashes, r->n_occ_hashes * sizeof *a.occ_hashes);
                a.n_occ_hashes = r->n_occ_hashes;
            }
            c->n_placeholders++;
            aggregate_add(c, &a);
            return 1;
        }
        if (!c->doc->first_problem[0])
            snprintf(c->doc->first_problem, sizeof c->doc->first_problem,
                     "aggregate %zu: aggregate is a %s, expected an object", f->index - 1, vtype_name(t));
        c->doc->skipped_aggregates++;
        return container ? skip_container(c) : 1;
    case FK_AGG:
        switch (f->field) {
        case F_KEY:
            return set_slot(c, &c->agg.key, t, s, len);
        case F_CREATED_AT:
            return set_slot(c, &c->agg.created, t, s, len);
        case F_SEVERITY:
            return set_slot(c, &c->agg.sev, t, s, len);
        case F_LOOKOUT_JOB:
            if (t == VT_STRING)
                return set_slot(c, &c->agg.origin, t, s, len);
            sslot_reset(&c->agg.origin); /* non-strings: ignored, as before */
            return container ? skip_container(c) : 1;
        case F_TOTAL_COUNT:
            set_count(c, t, (const char *)s, len);
            return container ? skip_container(c) : 1;
        case F_LATEST_ERRORS:
            aggb_clear_list(&c->agg);
            if (t == VT_ARRAY)
                return push(c, FK_OCC_LIST);
            if (t != VT_NULL)
                c->agg.list_bad = vtype_name(t);
            return container ? skip_container(c) : 1;
        default:
            return container ? skip_container(c) : 1;
        }
    case FK_OCC_LIST:
        f->index++;
        if (t == VT_OBJECT) {
            c->occ_open = yajl_get_bytes_consumed(c->h);
            return push(c, FK_OCC);
        }
        if (t == VT_NUMBER && c->cur && c->cur->occ && f->index - 1 < c->cur->n_occ &&
            c->cur->occ[f->index - 1].known && len == 1 && s[0] == '0') {
            /* the placeholder of an occurrence the previous body held: merged then, left out now */
            occ_fingerprint(&c->agg, c->cur->occ[f->index - 1].hash);
            c->agg.known++;
            c->n_placeholders++;
            return 1;
        }
        if (!c->agg.occ_problem[0]) {
            problemf(c->agg.occ_problem, "occurrence is a %s, expected an object", vtype_name(t));
            c->agg.first_bad_index = f->index - 1;
        }
        c->agg.skipped++;
        return container ? skip_container(c) : 1;
    case FK_OCC:
        switch (f->field) {
        case F_ERROR:
            if (t == VT_OBJECT) {
                c->n_err = 1;
                return push(c, FK_ERROR);
            }
            payload_error_clear(&c->occ.err);
            c->occ.error = CS_ABSENT;
            if (t != VT_NULL) {
                c->occ.error = CS_BAD;
                problemf(c->occ.error_problem, "\"error\" is a %s, expected an object", vtype_name(t));
            }
            return container ? skip_container(c) : 1;
        case F_UUID:
            return set_slot(c, &c->occ.uuid, t, s, len);
        case F_TIMESTAMP:
            return set_slot(c, &c->occ.ts, t, s, len);
        case F_SEVERITY:
            return set_slot(c, &c->occ.sev, t, s, len);
        case F_HTTP_CONTEXT:
            if (t == VT_OBJECT)
                return push(c, FK_HTTP);
            payload_http_free(c->occ.h);
            c->occ.h = NULL;
            c->occ.http = CS_ABSENT;
            if (t != VT_NULL) {
                c->occ.http = CS_BAD;
                problemf(c->occ.http_problem, "\"http_context\" is a %s, expected an object", vtype_name(t));
            }
            return container ? skip_container(c) : 1;
        default:
            return container ? skip_container(c) : 1;
        }
    case FK_ERROR: {
        errb *b = &c->err[c->n_err - 1];
        switch (f->field) {
        case F_CLASS:
            return set_slot(c, &b->cls, t, s, len);
        case F_MESSAGE:
            return set_slot(c, &b->msg, t, s, len);
        case F_STACKTRACE: {
            payload_error keep = b->e; /* a repeated member replaces the lines of the first */
            keep.class_name = keep.message = NULL;
            keep.cause = NULL;
            payload_error_clear(&keep);
            b->e.stacktrace = NULL;
            b->e.stack_block = NULL;
            b->e.n_stacktrace = 0;
            stack_reset(b);
            b->stack = CS_ABSENT;
            if (t == VT_ARRAY) {
                b->stack = CS_OK;
                return push(c, FK_STACK);
            }
            if (t != VT_NULL) {
                b->stack = CS_BAD;
                problemf(b->stack_problem, "\"stacktrace\" is a %s, expected an array of strings", vtype_name(t));
            }
            return container ? skip_container(c) : 1;
        }
        case F_CAUSE:
            if (c->n_err > MAX_CAUSE_DEPTH) /* deeper causes are cut, unchecked */
                return container ? skip_container(c) : 1;
            if (t == VT_OBJECT) {
                c->n_err++;
                return push(c, FK_ERROR);
            }
            if (b->e.cause) {
                payload_error_clear(b->e.cause);
                free(b->e.cause);
                b->e.cause = NULL;
            }
            b->cause = CS_ABSENT;
            if (t != VT_NULL) {
                b->cause = CS_BAD;
                problemf(b->cause_problem, "\"error\" is a %s, expected an object", vtype_name(t));
            }
            return container ? skip_container(c) : 1;
        default:
            return container ? skip_container(c) : 1;
        }
    }
    case FK_STACK: {
        errb *b = &c->err[c->n_err - 1];
        f->index++;
        if (b->stack == CS_OK && t == VT_STRING) {
            stack_add(b, s, len);
        } else if (b->stack == CS_OK) {
            b->stack = CS_BAD;
            problemf(b->stack_problem, "\"stacktrace\"[%zu] is a %s, expected a string", f->index - 1,
                     vtype_name(t));
        }
        return container ? skip_container(c) : 1;
    }
    case FK_HTTP:
        switch (f->field) {
        case F_METHOD:
            return set_slot(c, &c->http.method, t, s, len);
        case F_URL:
            return set_slot(c, &c->http.url, t, s, len);
        case F_BODY:
            return set_slot(c, &c->http.body, t, s, len);
        case F_HEADERS: {
            httpb *b = &c->http;
            for (size_t i = 0; i < b->n_hdr; i++) {
                free(b->hdr[i].name);
                free(b->hdr[i].value);
            }
            b->n_hdr = 0;
            b->headers = CS_ABSENT;
            if (t == VT_OBJECT) {
                b->headers = CS_OK;
                return push(c, FK_HEADERS);
            }
            if (t != VT_NULL) {
                b->headers = CS_BAD;
                problemf(b->headers_problem, "\"request_headers\" is a %s, expected an object", vtype_name(t));
            }
            return container ? skip_container(c) : 1;
        }
        default:
            return container ? skip_container(c) : 1;
        }
    case FK_HEADERS: {
        httpb *b = &c->http;
        if (b->headers == CS_OK && t == VT_STRING) {
            if (b->n_hdr == b->cap_hdr) {
                b->cap_hdr = b->cap_hdr ? b->cap_hdr * 2 : 8;
                b->hdr = xrealloc(b->hdr, b->cap_hdr * sizeof *b->hdr);
            }
            b->hdr[b->n_hdr].name = b->cur_name ? b->cur_name : xstrdup("");
            b->hdr[b->n_hdr].value = dupn(s, len);
            b->n_hdr++;
            b->cur_name = NULL;
        } else if (b->headers == CS_OK) {
            b->headers = CS_BAD;
            problemf(b->headers_problem, "header \"%.40s\" is a %s, expected a string",
                     b->cur_name ? b->cur_name : "", vtype_name(t));
        }
        return container ? skip_container(c) : 1;
    }
    }
    return 1;
}

/* A container of ours closed (not a skipped one). */
static void on_close(pparse *c)
{
    fkind k = top(c)->kind;
    c->sp--;
    switch (k) {
    case FK_AGG:
        aggregate_closed(c);
        break;
    case FK_OCC:
        occurrence_closed(c);
        break;
    case FK_ERROR:
        error_closed(c, c->n_err - 1);
        break;
    case FK_HTTP:
        http_closed(c);
        break;
    case FK_STACK: {
        errb *b = &c->err[c->n_err - 1];
        if (b->stack == CS_OK)
            stack_commit(b);
        else
            stack_reset(b); /* nothing of a bad stacktrace is kept */
        break;
    }
    default:
        break;
    }
}

static int field_of(fkind k, const char *key, size_t len)
{
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(key, lit, len) == 0)
    switch (k) {
    case FK_ROOT:
        return IS("target_uuid") ? F_TARGET_UUID
               : IS("aggregated_errors") ? F_AGGREGATED_ERRORS
               : IS("__lookout_instance__") ? F_LOOKOUT_INSTANCE
                                            : F_OTHER;
    case FK_AGG:
        return IS("aggregation_key") ? F_KEY
               : IS("total_count") ? F_TOTAL_COUNT
               : IS("created_at") ? F_CREATED_AT
               : IS("severity") ? F_SEVERITY
               : IS("__lookout_job__") ? F_LOOKOUT_JOB
               : IS("latest_errors") ? F_LATEST_ERRORS
                                     : F_OTHER;
    case FK_OCC:
        return IS("error") ? F_ERROR
               : IS("uuid") ? F_UUID
               : IS("timestamp") ? F_TIMESTAMP
               : IS("severity") ? F_SEVERITY
               : IS("http_context") ? F_HTTP_CONTEXT
                                    : F_OTHER;
    case FK_ERROR:
        return IS("class") ? F_CLASS
               : IS("message") ? F_MESSAGE
               : IS("stacktrace") ? F_STACKTRACE
               : IS("cause") ? F_CAUSE
                             : F_OTHER;
    case FK_HTTP:
        return IS("request_method") ? F_METHOD
               : IS("request_url") ? F_URL
               : IS("request_body") ? F_BODY
               : IS("request_headers") ? F_HEADERS
                                       : F_OTHER;
    case FK_HEADERS:
        return F_HEADER;
    default:
        return F_OTHER;
    }
#undef IS
}

/* ---- yajl callbacks ---- */

static int cb_null(void *ctx)
{
    pparse *c = ctx;
    return c->skip ? 1 : on_value(c, VT_NULL, NULL, 0);
}

static int cb_boolean(void *ctx, int v)
{
    (void)v;
    pparse *c = ctx;
    return c->skip ? 1 : on_value(c, VT_BOOL, NULL, 0);
}

static int cb_number(void *ctx, const char *s, size_t len)
{
    pparse *c = ctx;
    /* jansson refused integers beyond int64 and reals beyond double anywhere in the document. */
    bool real = memchr(s, '.', len) || memchr(s, 'e', len) || memchr(s, 'E', len);
    char *z = dupn((const unsigned char *)s, len);
    errno = 0;
    if (!real) {
        long long v = strtoll(z, NULL, 10);
        free(z);
        if (errno == ERANGE)
            return fatal(c, v < 0 ? "too big negative integer" : "too big integer");
    } else {
        double d = strtod(z, NULL);
        free(z);
        if (errno == ERANGE && isinf(d))
            return fatal(c, "real number overflow");
    }
    return c->skip ? 1 : on_value(c, VT_NUMBER, (const unsigned char *)s, len);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    pparse *c = ctx;
    if (memchr(s, 0, len))
        return fatal(c, "\\u0000 is not allowed without JSON_ALLOW_NUL");
    return c->skip ? 1 : on_value(c, VT_STRING, s, len);
}

static int open_container(pparse *c, vtype t)
{
    if (++c->depth > PARSE_MAX_DEPTH)
        return fatal(c, "maximum parsing depth reached");
    if (c->skip) {
        c->skip++;
        return 1;
    }
    return on_value(c, t, NULL, 0);
}

static int close_container(pparse *c)
{
    c->depth--;
    if (c->skip) {
        c->skip--;
        return 1;
    }
    on_close(c);
    return 1;
}

static int cb_start_map(void *ctx)
{
    return open_container(ctx, VT_OBJECT);
}

static int cb_map_key(void *ctx, const unsigned char *key, size_t len)
{
    pparse *c = ctx;
    if (memchr(key, 0, len))
        return fatal(c, "NUL byte in object key not supported");
    if (c->skip)
        return 1;
    frame *f = top(c);
    f->field = field_of(f->kind, (const char *)key, len);
    if (f->kind == FK_HEADERS) {
        free(c->http.cur_name);
        c->http.cur_name = dupn(key, len);
    }
    return 1;
}

static int cb_end_map(void *ctx)
{
    return close_container(ctx);
}

static int cb_start_array(void *ctx)
{
    return open_container(ctx, VT_ARRAY);
}

static int cb_end_array(void *ctx)
{
    return close_container(ctx);
}

static const yajl_callbacks callbacks = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_boolean,
    .yajl_number = cb_number,
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_map_key,
    .yajl_end_map = cb_end_map,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = cb_end_array,
};

/* ---- entry ---- */

static void parse_state_free(pparse *c)
{
    for (int i = 0; i < MAX_CAUSE_DEPTH + 1; i++)
        errb_clear(&c->err[i]);
    httpb_clear(&c->http);
    occb_clear(&c->occ);
    aggb_clear(&c->agg);
    sslot_reset(&c->target_uuid);
    sslot_reset(&c->lookout_instance);
    free(c->idx);
}

/* "invalid JSON at line L column C: text", from the byte offset where parsing stopped (C from 0). */
static void position_error(const char *body, size_t len, size_t off, const char *text, char *err, size_t errlen)
{
    int line;
    size_t col0;
    json_error_position(body, len, off, &line, &col0);
    snprintf(err, errlen, "invalid JSON at line %d column %zu: %s", line, col0, text);
}

/* The streaming parse of text. plan (may be NULL): the scanned elements, to fingerprint aggregates and
 * occurrences and to know the placeholders in the text. *placeholders: how many placeholders it met. */
static payload_doc *parse_text(const char *body, size_t len, const char *fallback_id, size_t max_occurrences,
                               const reuse_plan *plan, size_t *placeholders, bool *partial, char *err,
                               size_t errlen)
{
    pparse *c = xcalloc(1, sizeof *c);
    c->max_occ = max_occurrences ? max_occurrences : PAYLOAD_DEFAULT_MAX_OCCURRENCES;
    c->doc = xcalloc(1, sizeof *c->doc);
    c->idx_cap = 64;
    c->idx = xcalloc(c->idx_cap, sizeof *c->idx);
    c->plan = plan;
    yajl_handle h = yajl_alloc(&callbacks, NULL, c);
    if (!h)
        abort();
    c->h = h;
    yajl_status s = yajl_parse(h, (const unsigned char *)(body ? body : ""), len);
    if (s == yajl_status_ok) {
        c->plan = NULL; /* yajl_complete_parse restarts its offsets */
        c->cur = NULL;
        s = yajl_complete_parse(h);
    }
    payload_doc *p = c->doc;
    if (placeholders)
        *placeholders = c->n_placeholders;
    if (partial)
        *partial = c->fold_partial;
    if (s != yajl_status_ok) {
        size_t off = yajl_get_bytes_consumed(h);
        if (c->fatal[0]) {
            position_error(body, len, off, c->fatal, err, errlen);
        } else {
            char text[160];
            json_yajl_error_text(h, text, sizeof text);
            position_error(body, len, off, text, err, errlen);
        }
        p = NULL;
    } else if (c->root_array) {
        snprintf(err, errlen, "payload is not a JSON object (got array)");
        p = NULL;
    } else if (c->list_bad) {
        snprintf(err, errlen, "\"aggregated_errors\" is not an array (got %s)", c->list_bad);
        p = NULL;
    }
    yajl_free(h);
    if (!p) {
        payload_free(c->doc);
        parse_state_free(c);
        free(c);
        return NULL;
    }
    p->target_uuid = xstrdup(c->target_uuid.s ? c->target_uuid.s : "");
    p->instance_id = xstrdup(p->target_uuid[0] ? p->target_uuid : (fallback_id ? fallback_id : ""));
    if (c->lookout_instance.s && c->lookout_instance.s[0])
        p->lookout_instance = take(&c->lookout_instance);
    if (!p->aggregates)
        p->aggregates = xcalloc(1, sizeof *p->aggregates);
    else if (p->n_aggregates < c->cap_aggs) /* give back the growth slack */
        p->aggregates = xrealloc(p->aggregates, (p->n_aggregates ? p->n_aggregates : 1) * sizeof *p->aggregates);
    parse_state_free(c);
    free(c);
    return p;
}

payload_doc *payload_parse_limited(const char *body, size_t len, const char *fallback_id, size_t max_occurrences,
                                   char *err, size_t errlen)
{
    return parse_text(body, len, fallback_id, max_occurrences, NULL, NULL, NULL, err, errlen);
}

payload_doc *payload_parse_reuse(const char *body, size_t len, const char *fallback_id, size_t max_occurrences,
                                 const payload_reuse *reuse, char *err, size_t errlen)
{
    reuse_plan plan;
    if (!reuse || !body || !payload_reuse_plan(body, len, reuse, max_occurrences, &plan))
        return payload_parse_limited(body, len, fallback_id, max_occurrences, err, errlen);
    size_t met = 0;
    bool partial = false;
    payload_doc *doc =
        parse_text(plan.text, plan.len, fallback_id, max_occurrences, &plan, &met, &partial, err, errlen);
    if ((plan.placeholders && (!doc || met != plan.placeholders)) || (doc && partial)) {
        /* A placeholder where the parser saw no element, or the text failed: the full parse gives the exact
         * error and positions, and fingerprints. A key repeated in the body with occurrences left out on
         * either side: its folded list is the newest max_occ of all of them, known ones included (found by
         * fuzz_payload_reuse). */
        payload_free(doc);
        payload_reuse_plan_free(&plan);
        if (!payload_reuse_plan(body, len, &(payload_reuse){0}, max_occurrences, &plan))
            return payload_parse_limited(body, len, fallback_id, max_occurrences, err, errlen);
        doc = parse_text(plan.text, plan.len, fallback_id, max_occurrences, &plan, NULL, NULL, err, errlen);
    }
    payload_reuse_plan_free(&plan);
    return doc;
}

payload_doc *payload_parse(const char *body, size_t len, const char *fallback_id, char *err, size_t errlen)
{
    return payload_parse_limited(body, len, fallback_id, 0, err, errlen);
}
