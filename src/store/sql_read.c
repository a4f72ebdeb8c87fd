/* sql_read: the SQL store's API reads (list/get/jobs/buckets) on the readers' connection. Lists are
 * keyset-paged on the per-sort indexes (value DESC, job, akey) with the memory backend's cursor format and
 * order; full-text goes through the search table (FTS5 trigram on SQLite, pg_trgm on PostgreSQL). The
 * start-up restore of the merge engine is sql_load.c. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sql_store.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

/* ---- occurrences from rows ---- */

/* Sample columns, in this order, at the start of every sample query. */
#define SAMPLE_COLS "s.agg_id, s.hash, s.ts, s.uuid, s.severity, s.class, s.message, s.stack, s.has_http, " \
                    "s.method, s.url, s.body"

static void split_lines(const char *s, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!*s)
        return;
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == '\n';
    char **v = xrealloc(NULL, cap * sizeof(char *));
    const char *start = s;
    for (const char *p = s;; p++) {
        if (*p == '\n' || !*p) {
            v[*n] = xrealloc(NULL, (size_t)(p - start) + 1);
            memcpy(v[*n], start, (size_t)(p - start));
            v[*n][p - start] = 0;
            (*n)++;
            if (!*p)
                break;
            start = p + 1;
        }
    }
    *out = v;
}

static payload_occurrence *occ_from_row(sqlrow *r)
{
    payload_occurrence *o = calloc(1, sizeof(*o));
    if (!o)
        abort();
    o->refs = 1;
    o->dedup_hash = sql_hash_from_db(sqlrow_int(r, 1));
    o->timestamp_ms = sqlrow_int(r, 2);
    o->uuid = xstrdup_or_empty(sqlrow_text(r, 3));
    o->severity = (payload_severity)sqlrow_int(r, 4);
    o->error.class_name = xstrdup_or_empty(sqlrow_text(r, 5));
    o->error.message = xstrdup_or_empty(sqlrow_text(r, 6));
    split_lines(sqlrow_text(r, 7), &o->error.stacktrace, &o->error.n_stacktrace);
    if (sqlrow_int(r, 8)) {
        o->http = calloc(1, sizeof(payload_http));
        if (!o->http)
            abort();
        o->http->method = xstrdup_or_empty(sqlrow_text(r, 9));
        o->http->url = xstrdup_or_empty(sqlrow_text(r, 10));
        o->http->body = xstrdup_or_empty(sqlrow_text(r, 11));
    }
    return o;
}

/* cause row: agg_id, hash, depth, class, message, stack — appended at the end of the chain. */
static void add_cause(payload_occurrence *o, sqlrow *r)
{
    payload_error *e = &o->error;
    while (e->cause)
        e = e->cause;
    e->cause = calloc(1, sizeof(payload_error));
    if (!e->cause)
        abort();
    e->cause->class_name = xstrdup_or_empty(sqlrow_text(r, 3));
    e->cause->message = xstrdup_or_empty(sqlrow_text(r, 4));
    split_lines(sqlrow_text(r, 5), &e->cause->stacktrace, &e->cause->n_stacktrace);
}

/* header row: agg_id, hash, pos, name, value */
static void add_header(payload_occurrence *o, sqlrow *r)
{
    if (!o->http)
        return;
    payload_http *h = o->http;
    h->headers = xrealloc(h->headers, (h->n_headers + 1) * sizeof(payload_header));
    h->headers[h->n_headers].name = xstrdup_or_empty(sqlrow_text(r, 3));
    h->headers[h->n_headers].value = xstrdup_or_empty(sqlrow_text(r, 4));
    h->n_headers++;
}

typedef struct occ_vec {
    int64_t *agg, *hash;
    payload_occurrence **v;
    size_t n, cap;
} occ_vec;

static int occ_row(void *ctx, sqlrow *r)
{
    occ_vec *ov = ctx;
    if (ov->n == ov->cap) {
        ov->cap = ov->cap ? ov->cap * 2 : 16;
        ov->agg = xrealloc(ov->agg, ov->cap * sizeof(int64_t));
        ov->hash = xrealloc(ov->hash, ov->cap * sizeof(int64_t));
        ov->v = xrealloc(ov->v, ov->cap * sizeof(void *));
    }
    ov->agg[ov->n] = sqlrow_int(r, 0);
    ov->hash[ov->n] = sqlrow_int(r, 1);
    ov->v[ov->n] = occ_from_row(r);
    ov->n++;
    return 0;
}

/* Finds the sample of a child row by a linear search (a detail has at most samples_per_error samples). */
static payload_occurrence *occ_find(occ_vec *ov, int64_t agg, int64_t hash)
{
    for (size_t i = 0; i < ov->n; i++)
        if (ov->agg[i] == agg && ov->hash[i] == hash)
            return ov->v[i];
    return NULL;
}

typedef struct attach_ctx {
    occ_vec *ov;
    bool headers;
} attach_ctx;

static int attach_row(void *ctx, sqlrow *r)
{
    attach_ctx *a = ctx;
    payload_occurrence *o = occ_find(a->ov, sqlrow_int(r, 0), sqlrow_int(r, 1));
    if (o) {
        if (a->headers)
            add_header(o, r);
        else
            add_cause(o, r);
    }
    return 0;
}

static void occ_vec_free(occ_vec *ov)
{
    for (size_t i = 0; i < ov->n; i++)
        payload_occurrence_unref(ov->v[i]);
    free(ov->agg);
    free(ov->hash);
    free(ov->v);
    memset(ov, 0, sizeof(*ov));
}

/* Loads the samples selected by `where` (with params) plus their causes and headers. */
static int load_samples(sqldb *db, const char *where, const sqlv *p, size_t n, const char *order, occ_vec *ov,
                        char *err, size_t errlen)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT " SAMPLE_COLS " FROM samples s %s ORDER BY %s", where, order);
    if (sqldb_query(db, sql, p, n, occ_row, ov, err, errlen) < 0)
        return -1;
    if (!ov->n)
        return 0;
    attach_ctx a = {ov, false};
    snprintf(sql, sizeof(sql),
             "SELECT s.agg_id, s.hash, s.depth, s.class, s.message, s.stack FROM sample_causes s %s "
             "ORDER BY s.agg_id, s.hash, s.depth", where);
    if (sqldb_query(db, sql, p, n, attach_row, &a, err, errlen) < 0)
        return -1;
    a.headers = true;
    snprintf(sql, sizeof(sql),
             "SELECT s.agg_id, s.hash, s.pos, s.name, s.value FROM sample_headers s %s "
             "ORDER BY s.agg_id, s.hash, s.pos", where);
    return sqldb_query(db, sql, p, n, attach_row, &a, err, errlen) < 0 ? -1 : 0;
}

/* ---- summaries ---- */

static void summary_from_row(sqlrow *r, store_summary *s)
{
    s->job = xstrdup_or_empty(sqlrow_text(r, 0));
    s->key = xstrdup_or_empty(sqlrow_text(r, 1));
    int64_t t = sqlrow_int(r, 2);
    s->total_count = t < 0 ? 0 : (uint64_t)t;
    s->severity = (payload_severity)sqlrow_int(r, 3);
    s->created_at_ms = sqlrow_int(r, 4);
    s->last_seen_ms = sqlrow_int(r, 5);
    s->status = (store_status)sqlrow_int(r, 6);
    s->resolved_count = (uint64_t)sqlrow_int(r, 7);
    s->resolved_at_ms = sqlrow_int(r, 8);
}

typedef struct page_ctx {
    store_page *p;
    int64_t *ids;
    size_t cap;
} page_ctx;

static int page_row(void *ctx, sqlrow *r)
{
    page_ctx *c = ctx;
    if (c->p->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 32;
        c->p->v = xrealloc(c->p->v, c->cap * sizeof(store_summary));
        c->ids = xrealloc(c->ids, c->cap * sizeof(int64_t));
    }
    store_summary *s = &c->p->v[c->p->n];
    memset(s, 0, sizeof(*s));
    summary_from_row(r, s);
    c->ids[c->p->n] = sqlrow_int(r, 9);
    s->n_samples = (size_t)sqlrow_int(r, 10);
    s->n_labels = (size_t)sqlrow_int(r, 11);
    c->p->n++;
    return 0;
}

static int count_row(void *ctx, sqlrow *r)
{
    *(uint64_t *)ctx = (uint64_t)sqlrow_int(r, 0);
    return 0;
}

static const char *sort_col(store_sort s)
{
    return s == STORE_SORT_COUNT ? "a.total" : s == STORE_SORT_FIRST_SEEN ? "a.created_at" : "a.last_seen";
}

typedef struct params {
    sqlv *v;
    size_t n, cap;
    char **owned;
    size_t n_owned;
} params;

static void param(params *p, sqlv v)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->v = xrealloc(p->v, p->cap * sizeof(sqlv));
    }
    p->v[p->n++] = v;
}

static const char *own(params *p, char *s)
{
    p->owned = xrealloc(p->owned, (p->n_owned + 1) * sizeof(char *));
    p->owned[p->n_owned++] = s;
    return s;
}

static void params_free(params *p)
{
    for (size_t i = 0; i < p->n_owned; i++)
        free(p->owned[i]);
    free(p->owned);
    free(p->v);
}

/* LIKE pattern %q% with \ escapes, lower-cased (search rows are lower-cased). */
static char *like_pattern(const char *q)
{
    strbuf sb;
    strbuf_init(&sb);
    strbuf_putc(&sb, '%');
    for (; *q; q++) {
        if (*q == '%' || *q == '_' || *q == '\\')
            strbuf_putc(&sb, '\\');
        strbuf_putc(&sb, (char)tolower((unsigned char)*q));
    }
    strbuf_putc(&sb, '%');
    char *r = strbuf_detach(&sb, NULL);
    strbuf_free(&sb);
    return r;
}

/* FTS5 phrase: "..." with quotes doubled; the trigram tokenizer matches it as a substring. */
static char *fts_phrase(const char *q)
{
    strbuf sb;
    strbuf_init(&sb);
    strbuf_putc(&sb, '"');
    for (; *q; q++) {
        if (*q == '"')
            strbuf_putc(&sb, '"');
        strbuf_putc(&sb, (char)tolower((unsigned char)*q));
    }
    strbuf_putc(&sb, '"');
    char *r = strbuf_detach(&sb, NULL);
    strbuf_free(&sb);
    return r;
}

/* One substring condition on the search rows. */
static void text_filter(sql_store *m, const char *text, strbuf *sb, params *p)
{
    /* MySQL runs with NO_BACKSLASH_ESCAPES (sqldb_mysql.c), so '\\' is one backslash everywhere. */
    strbuf_printf(sb, " AND a.id IN (SELECT %s FROM search WHERE body LIKE ? ESCAPE '\\')",
                  m->dialect == SQLDB_SQLITE ? "rowid" : "id");
    param(p, sqlv_text(own(p, like_pattern(text))));
}

/* The positive text words of a query (q as one word unless q_all_words, plus the search language's
 * positive text terms), in buffers owned by p; *out is allocated (caller frees). */
static size_t text_words(const store_query *q, params *p, const char ***out)
{
    size_t n = 0, cap = (q->q ? strlen(q->q) / 2 + 2 : 1) + (q->search ? q->search->n : 0);
    const char **w = xrealloc(NULL, cap * sizeof(char *)); /* words are space-separated */
    *out = w;
    if (q->q && q->q[0]) {
        if (!q->q_all_words) {
            w[n++] = q->q;
        } else {
            char *words = strdup(q->q);
            if (!words)
                abort();
            own(p, words); /* freed with the parameters */
            char *save = NULL;
            for (char *t = strtok_r(words, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save))
                w[n++] = t;
        }
    }
    for (size_t i = 0; q->search && i < q->search->n; i++)
        if (q->search->v[i].kind == STORE_TERM_TEXT && !q->search->v[i].neg)
            w[n++] = q->search->v[i].value;
    return n;
}

/* A case-insensitive (ASCII) substring test of column col against the lower-cased needle, the same on
 * every dialect: PostgreSQL's lower() under COLLATE "C" and SQLite's lower() fold ASCII only; MySQL's
 * columns are binary, so they are converted first and compared under a binary collation. */
static void lower_like(sql_store *m, strbuf *sb, const char *col)
{
    if (m->dialect == SQLDB_MYSQL)
        strbuf_printf(sb, "LOWER(CONVERT(%s USING utf8mb4)) COLLATE utf8mb4_bin LIKE ? ESCAPE '\\'", col);
    else
        strbuf_printf(sb, "lower(%s) LIKE ? ESCAPE '\\'", col);
}

/* The search language's terms other than positive text (those join the full-text words). Each is one
 * condition; "-" negates it. Job, severity and status are the aggregates' own columns (job indexed);
 * label terms probe the labels index (name, value); class probes the error's samples (primary key). */
static bool search_filters(sql_store *m, const store_query *q, const char *pl, strbuf *sb, params *p)
{
    bool other = false;
    for (size_t i = 0; q->search && i < q->search->n; i++) {
        const store_term *t = &q->search->v[i];
        const char *no = t->neg ? "NOT " : "";
        switch (t->kind) {
        case STORE_TERM_TEXT:
            if (!t->neg)
                continue;
            if (m->dialect == SQLDB_SQLITE && strlen(t->value) >= 3) {
                strbuf_puts(sb, " AND a.id NOT IN (SELECT rowid FROM search WHERE search MATCH ?)");
                param(p, sqlv_text(own(p, fts_phrase(t->value))));
            } else {
                strbuf_printf(sb, " AND a.id NOT IN (SELECT %s FROM search WHERE body LIKE ? ESCAPE '\\')",
                              m->dialect == SQLDB_SQLITE ? "rowid" : "id");
                param(p, sqlv_text(own(p, like_pattern(t->value))));
            }
            break;
        case STORE_TERM_IS:
        case STORE_TERM_SEVERITY: /* folded into state_filter */
            continue;
        case STORE_TERM_JOB:
            strbuf_printf(sb, " AND %sa.job %sIN (", pl, no);
            for (size_t k = 0; k < t->n_values; k++) {
                strbuf_puts(sb, k ? ",?" : "?");
                param(p, sqlv_text(t->values[k]));
            }
            strbuf_putc(sb, ')');
            break;
        case STORE_TERM_KEY:
            strbuf_printf(sb, " AND %s(", no);
            lower_like(m, sb, "a.akey");
            strbuf_putc(sb, ')');
            param(p, sqlv_text(own(p, like_pattern(t->value))));
            break;
        case STORE_TERM_CLASS:
            strbuf_printf(sb, " AND %sEXISTS (SELECT 1 FROM samples s WHERE s.agg_id = a.id AND ", no);
            lower_like(m, sb, "s.class");
            strbuf_putc(sb, ')');
            param(p, sqlv_text(own(p, like_pattern(t->value))));
            break;
        case STORE_TERM_LABEL:
            strbuf_printf(sb, " AND a.id %sIN (SELECT l.agg_id FROM labels l WHERE l.name = ? AND l.value = ?)", no);
            param(p, sqlv_text(t->name));
            param(p, sqlv_text(t->value));
            break;
        }
        other = true;
    }
    return other;
}

#define STATE_ALL 7u /* the three statuses (store_status), the three severities (payload_severity) */

/* The status and severity filters of q (status/severity parameters and is:/severity: terms, a negated
 * term as its complement), each as the set of values kept. false when q has none. */
static bool state_masks(const store_query *q, unsigned *status, unsigned *sev)
{
    *status = *sev = STATE_ALL;
    bool any = false;
    if (q->severity >= 0) {
        *sev &= q->severity < 3 ? 1u << q->severity : 0;
        any = true;
    }
    if (q->status >= 0) {
        *status &= q->status < 3 ? 1u << q->status : 0;
        any = true;
    } else if (q->status == STORE_QUERY_UNRESOLVED) {
        *status &= STATE_ALL & ~(1u << STORE_RESOLVED);
        any = true;
    }
    for (size_t i = 0; q->search && i < q->search->n; i++) {
        const store_term *t = &q->search->v[i];
        if (t->kind != STORE_TERM_IS && t->kind != STORE_TERM_SEVERITY)
            continue;
        unsigned m = (t->neg ? ~t->mask : t->mask) & STATE_ALL;
        *(t->kind == STORE_TERM_IS ? status : sev) &= m;
        any = true;
    }
    return any;
}

/* Status and severity filters as IN lists on both columns, always both (the one not filtered lists every
 * value): index agg_state (status, severity, job) then answers any combination, with or without job, as
 * a few index ranges, and a count from the index alone (schema v7). */
static bool state_filter(const store_query *q, const char *pl, strbuf *sb)
{
    unsigned st, sev;
    if (!state_masks(q, &st, &sev))
        return false;
    if (!st || !sev) {
        strbuf_puts(sb, " AND 1=0");
        return true;
    }
    for (int c = 0; c < 2; c++) {
        unsigned m = c ? sev : st;
        strbuf_printf(sb, " AND %s%s IN (", pl, c ? "a.severity" : "a.status");
        for (int b = 0, k = 0; b < 3; b++)
            if (m & (1u << b))
                strbuf_printf(sb, "%s%d", k++ ? "," : "", b);
        strbuf_putc(sb, ')');
    }
    return true;
}

/* SQLite: one FTS5 expression "w1" AND "w2" ... for every word of 3 or more characters (the trigram
 * tokenizer's minimum), so all of them are answered by one MATCH; NULL when there is no such word. */
static char *fts_expr(const char *const *w, size_t n)
{
    strbuf sb;
    strbuf_init(&sb);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strlen(w[i]) < 3)
            continue;
        char *ph = fts_phrase(w[i]);
        strbuf_printf(&sb, "%s%s", k++ ? " AND " : "", ph);
        free(ph);
    }
    char *r = k ? strbuf_detach(&sb, NULL) : NULL;
    strbuf_free(&sb);
    return r;
}

/* How a SQLite list query uses the FTS5 search table (filters() tells). */
typedef enum fts_use {
    FTS_NONE,      /* no full-text condition (or not SQLite) */
    FTS_WITH_MORE, /* an FTS5 MATCH among other conditions */
    FTS_ONLY,      /* the whole filter is one MATCH; its parameter is the last one added */
} fts_use;

/* Appends the filter conditions (" AND ..."). plus: prefix the columns of the aggregates' own indexes
 * with SQLite's unary "+" so the planner does not drive the query from them (the caller wants the
 * full-text match or a sort index to drive it). Sets *fts, when given. */
static void filters(sql_store *m, const store_query *q, bool plus, strbuf *sb, params *p, fts_use *fts)
{
    const char *pl = plus ? "+" : "";
    bool other = false;
    if (q->job) {
        strbuf_printf(sb, " AND %sa.job = ?", pl);
        param(p, sqlv_text(q->job));
        other = true;
    }
    if (state_filter(q, pl, sb)) /* status=open (Periskop's list) is status IN (0,2) */
        other = true;
    if (q->n_labels) {
        other = true;
        /* One label set (anchored on its sentinel row) must satisfy every matcher. A matcher with an
         * empty value matches a set without the label (Prometheus: empty = absent). */
        /* a sentinel row has value '' too: saying so lets labels_nv seek (name, value, agg_id) exactly
         * instead of reading every sentinel row */
        strbuf_puts(sb, " AND EXISTS (SELECT 1 FROM labels l0 WHERE l0.agg_id = a.id AND l0.name = '' AND l0.value = ''");
        for (size_t i = 0; i < q->n_labels; i++) {
            const char *v = q->labels[i].value ? q->labels[i].value : "";
            if (v[0]) {
                strbuf_puts(sb, " AND EXISTS (SELECT 1 FROM labels lk WHERE lk.agg_id = l0.agg_id AND "
                                "lk.lhash = l0.lhash AND lk.name = ? AND lk.value = ?)");
                param(p, sqlv_text(q->labels[i].name ? q->labels[i].name : ""));
                param(p, sqlv_text(v));
            } else {
                strbuf_puts(sb, " AND NOT EXISTS (SELECT 1 FROM labels lk WHERE lk.agg_id = l0.agg_id AND "
                                "lk.lhash = l0.lhash AND lk.name = ? AND lk.value <> '')");
                param(p, sqlv_text(q->labels[i].name ? q->labels[i].name : ""));
            }
        }
        strbuf_putc(sb, ')');
    }
    if (search_filters(m, q, pl, sb, p))
        other = true;
    if (fts)
        *fts = FTS_NONE;
    /* Every whitespace-separated word must match (q_all_words); each word is its own condition, so
     * different words may match different fields or samples (as in the memory backend). */
    const char **w;
    size_t n = text_words(q, p, &w);
    bool short_word = false;
    if (m->dialect == SQLDB_SQLITE) {
        char *e = fts_expr(w, n);
        if (e) {
            strbuf_puts(sb, " AND a.id IN (SELECT rowid FROM search WHERE search MATCH ?)");
            param(p, sqlv_text(own(p, e)));
        }
        for (size_t i = 0; i < n; i++)
            if (strlen(w[i]) < 3) {
                text_filter(m, w[i], sb, p);
                short_word = true;
            }
        if (fts && e)
            *fts = !other && !short_word ? FTS_ONLY : FTS_WITH_MORE;
    } else {
        for (size_t i = 0; i < n; i++)
            text_filter(m, w[i], sb, p);
    }
    free(w);
}

/* The newest sample of one listed error, as far as the rows seen so far tell. */
typedef struct newest_sample {
    int64_t ts, hash;
    bool found;
} newest_sample;

typedef struct latest_ctx {
    store_page *p;
    int64_t *ids;
    newest_sample *best; /* per page row */
} latest_ctx;

static int latest_row(void *ctx, sqlrow *r)
{
    latest_ctx *c = ctx;
    int64_t id = sqlrow_int(r, 0);
    for (size_t i = 0; i < c->p->n; i++) {
        if (c->ids[i] == id && !c->p->v[i].latest && c->best[i].found && c->best[i].hash == sqlrow_int(r, 1)) {
            c->p->v[i].latest = occ_from_row(r);
            break;
        }
    }
    return 0;
}

typedef struct newest_ctx {
    newest_sample *best; /* per page row */
    size_t n;
    const int64_t *ids;
} newest_ctx;

static int newest_row(void *ctx, sqlrow *r)
{
    newest_ctx *c = ctx;
    int64_t id = sqlrow_int(r, 0), ts = sqlrow_int(r, 1), h = sqlrow_int(r, 2);
    for (size_t i = 0; i < c->n; i++) {
        if (c->ids[i] != id)
            continue;
        newest_sample *b = &c->best[i];
        if (!b->found || ts > b->ts || (ts == b->ts && h > b->hash))
            *b = (newest_sample){.ts = ts, .hash = h, .found = true};
        break;
    }
    return 0;
}

int sql_list(store *s, const store_query *q, store_page *out, char *err, size_t errlen)
{
    sql_store *m = (sql_store *)s;
    memset(out, 0, sizeof(*out));
    store_cursor cur;
    size_t limit = store_list_begin(q, &cur, err, errlen);
    if (!limit)
        return -1;
    const char *col = sort_col(q->sort);

    /* SQLite with a full-text condition: the MATCH drives the count (the filters on the aggregates'
     * own columns get a "+" so the planner does not walk a whole job's index probing the match list),
     * and a text-only filter is counted in the FTS index alone. The page is selected by walking the
     * sort index and probing the match list when the matches are many (the first page is found after
     * about limit * rows / matches index rows), else by sorting the matches. */
    fts_use fts = FTS_NONE;
    strbuf where;
    strbuf_init(&where);
    params p = {0};
    strbuf_puts(&where, " WHERE 1=1");
    filters(m, q, m->dialect == SQLDB_SQLITE, &where, &p, &fts);
    if (m->dialect == SQLDB_SQLITE && fts == FTS_NONE) {
        /* no full text: the count is driven by the aggregates' own indexes (agg_state, agg_job) */
        strbuf_reset(&where);
        params_free(&p);
        memset(&p, 0, sizeof(p));
        strbuf_puts(&where, " WHERE 1=1");
        filters(m, q, false, &where, &p, NULL);
    }
    size_t n_filter = p.n;

    strbuf sql;
    strbuf_init(&sql);
    if (fts == FTS_ONLY)
        strbuf_puts(&sql, "SELECT count(*) FROM search WHERE search MATCH ?");
    else
        strbuf_printf(&sql, "SELECT count(*) FROM aggregates a%s", where.buf);

    pthread_mutex_lock(&m->rmu);
    /* A user's query is bounded in time (and, for tests, in SQLite VM steps): over budget it is
     * interrupted and answered STORE_TIMEOUT, never left to hold the readers' connection. */
    sqldb_set_budget(m->r, m->o.query_budget_ms > 0 ? m->o.query_budget_ms : STORE_QUERY_BUDGET_MS,
                     m->o.query_budget_steps);
    int rc = sqldb_query(m->r, sql.buf, fts == FTS_ONLY ? p.v + n_filter - 1 : p.v, fts == FTS_ONLY ? 1 : n_filter, count_row,
                         &out->total, err, errlen);

    const char *indexed = "";
    unsigned st_mask, sev_mask;
    bool state = state_masks(q, &st_mask, &sev_mask) && st_mask && sev_mask;
    if (rc == 0 && m->dialect == SQLDB_SQLITE && (fts == FTS_NONE || out->total >= 20 * (limit + 1))) {
        /* no full-text condition, or many matches: the plain filters (indexes usable), and with many
         * matches the sort index forced (agg_job is in last-seen order within a job). Status/severity
         * filters without full text: few matches (the count tells; the same bound as for full text) are
         * read from agg_state and sorted, many by walking the sort index, which finds a page after about
         * limit * rows / matches entries (SQLite without statistics cannot weigh the two itself). */
        strbuf_reset(&where);
        params_free(&p);
        memset(&p, 0, sizeof(p));
        strbuf_puts(&where, " WHERE 1=1");
        filters(m, q, false, &where, &p, NULL);
        bool walk = fts != FTS_NONE || (state && out->total >= 20 * (limit + 1));
        if (walk)
            indexed = q->job && q->sort == STORE_SORT_LAST_SEEN ? " INDEXED BY agg_job"
                      : q->sort == STORE_SORT_COUNT ? " INDEXED BY agg_total"
                      : q->sort == STORE_SORT_FIRST_SEEN ? " INDEXED BY agg_created" : " INDEXED BY agg_last_seen";
        else if (state)
            indexed = " INDEXED BY agg_state";
        if (walk && !(q->job && q->sort == STORE_SORT_LAST_SEEN) && q->job) {
            /* the sort index does not lead with job: keep the job condition off any index */
            strbuf_reset(&where);
            params_free(&p);
            memset(&p, 0, sizeof(p));
            strbuf_puts(&where, " WHERE 1=1");
            filters(m, q, true, &where, &p, NULL);
        }
    }

    strbuf_reset(&sql);
    /* The page is selected first (inner query) and only its rows get the per-row sample and label-set
     * counts: computed in the outer query over all matches they would cost two index probes per match
     * before the sort. The outer LIMIT keeps SQLite from flattening the two queries back into one. */
    strbuf_printf(&sql,
                  "SELECT " SQL_AGG_COLS ", (SELECT count(*) FROM samples s WHERE s.agg_id = a.id),"
                  " (SELECT count(*) FROM labels l WHERE l.agg_id = a.id AND l.name = '' AND l.value = '')"
                  " FROM (SELECT a.* FROM aggregates a%s%s",
                  indexed, where.buf);
    if (cur.job) {
        /* Keyset: after (value, job, key) in "value DESC, job, akey" order. The extra "col <= ?" is what
         * lets the database seek the index instead of filtering from its start. */
        strbuf_printf(&sql, " AND %s <= ? AND (%s < ? OR (%s = ? AND (a.job > ? OR (a.job = ? AND a.akey > ?))))",
                      col, col, col);
        param(&p, sqlv_int(cur.value));
        param(&p, sqlv_int(cur.value));
        param(&p, sqlv_int(cur.value));
        param(&p, sqlv_text(cur.job));
        param(&p, sqlv_text(cur.job));
        param(&p, sqlv_text(cur.key));
    }
    strbuf_printf(&sql, " ORDER BY %s DESC, a.job, a.akey LIMIT %zu) a ORDER BY %s DESC, a.job, a.akey LIMIT %zu", col,
                  limit + 1, col, limit + 1);
    page_ctx pc = {out, NULL, 0};
    if (rc == 0)
        rc = sqldb_query(m->r, sql.buf, p.v, p.n, page_row, &pc, err, errlen);
    if (rc == 0 && out->n > limit) {
        store_summary_free(&out->v[limit]);
        out->n = limit;
        const store_summary *last = &out->v[limit - 1];
        store_cursor c = {.sort = q->sort, .value = store_sort_value(q->sort, last), .job = last->job,
                          .key = last->key};
        out->next_cursor = store_cursor_encode(&c);
    }
    if (rc == 0 && out->n) {
        /* The newest sample of each listed error in two linear steps: the (ts, hash) of every sample
         * of the page (small columns, primary-key ranges), the newest picked here, then those rows.
         * (A correlated "hash = (newest of this error)" per row was quadratic in samples per error.) */
        newest_ctx nc = {xcalloc(out->n, sizeof(newest_sample)), out->n, pc.ids};
        strbuf_reset(&sql);
        strbuf_puts(&sql, "SELECT agg_id, ts, hash FROM samples WHERE agg_id IN (");
        for (size_t i = 0; i < out->n; i++)
            strbuf_printf(&sql, "%s%" PRId64, i ? "," : "", pc.ids[i]);
        strbuf_puts(&sql, ")");
        rc = sqldb_query(m->r, sql.buf, NULL, 0, newest_row, &nc, err, errlen);
        strbuf_reset(&sql);
        /* two IN lists (not a row-value IN, which SQLite 3.40 answers with a scan); latest_row keeps
         * only the exact (id, hash) pairs */
        strbuf_puts(&sql, "SELECT " SAMPLE_COLS " FROM samples s WHERE s.agg_id IN (");
        size_t k = 0;
        for (size_t i = 0; i < out->n; i++)
            if (nc.best[i].found)
                strbuf_printf(&sql, "%s%" PRId64, k++ ? "," : "", pc.ids[i]);
        strbuf_puts(&sql, ") AND s.hash IN (");
        k = 0;
        for (size_t i = 0; i < out->n; i++)
            if (nc.best[i].found)
                strbuf_printf(&sql, "%s%" PRId64, k++ ? "," : "", nc.best[i].hash);
        strbuf_puts(&sql, ")");
        latest_ctx lc = {out, pc.ids, nc.best};
        if (rc == 0 && k)
            rc = sqldb_query(m->r, sql.buf, NULL, 0, latest_row, &lc, err, errlen);
        free(nc.best);
    }
    sqldb_set_budget(m->r, 0, 0);
    pthread_mutex_unlock(&m->rmu);
    free(pc.ids);
    strbuf_free(&sql);
    strbuf_free(&where);
    params_free(&p);
    store_cursor_clear(&cur);
    if (rc != 0) {
        store_page_free(out);
        return rc == SQLDB_TIMEOUT ? STORE_TIMEOUT : -1;
    }
    if (!out->v)
        out->v = calloc(1, sizeof(store_summary));
    return 0;
}

/* ---- keys (full dumps) ---- */

typedef struct keys_ctx {
    char **v;
    size_t n, cap;
} keys_ctx;

static int key_row(void *ctx, sqlrow *r)
{
    keys_ctx *c = ctx;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->v = xrealloc(c->v, c->cap * sizeof(char *));
    }
    c->v[c->n++] = xstrdup_or_empty(sqlrow_text(r, 0));
    return 0;
}

/* One statement, so one consistent read in every database (SQLite's read transaction, PostgreSQL's and
 * MariaDB's statement snapshot); the same order as sql_list. */
int sql_keys(store *s, const char *job, int status, store_sort sort, char ***out, size_t *n, char *err,
             size_t errlen)
{
    sql_store *m = (sql_store *)s;
    store_query q = {.job = job, .severity = -1, .status = status};
    strbuf sql;
    strbuf_init(&sql);
    params p = {0};
    strbuf_puts(&sql, "SELECT a.akey FROM aggregates a WHERE 1=1");
    filters(m, &q, false, &sql, &p, NULL);
    strbuf_printf(&sql, " ORDER BY %s DESC, a.job, a.akey", sort_col(sort));
    keys_ctx kc = {0};
    pthread_mutex_lock(&m->rmu);
    int rc = sqldb_query(m->r, sql.buf, p.v, p.n, key_row, &kc, err, errlen);
    pthread_mutex_unlock(&m->rmu);
    strbuf_free(&sql);
    params_free(&p);
    if (rc != 0) {
        store_keys_free(kc.v, kc.n);
        return -1;
    }
    *out = kc.v ? kc.v : xrealloc(NULL, sizeof(char *));
    *n = kc.n;
    return 0;
}

/* ---- detail ---- */

typedef struct one_ctx {
    store_summary *s;
    int found;
} one_ctx;

static int one_row(void *ctx, sqlrow *r)
{
    one_ctx *c = ctx;
    summary_from_row(r, c->s);
    c->found = 1;
    return 0;
}

typedef struct labels_ctx {
    labelset *v;
    size_t n;
    int64_t cur_agg, cur_lhash;
    bool open;
} labels_ctx;

/* label rows: agg_id, lhash, name, value; a sentinel (name '') starts each set. */
static int label_row(void *ctx, sqlrow *r)
{
    labels_ctx *c = ctx;
    int64_t agg = sqlrow_int(r, 0), lh = sqlrow_int(r, 1);
    const char *name = sqlrow_text(r, 2);
    if (!c->open || agg != c->cur_agg || lh != c->cur_lhash) {
        c->v = xrealloc(c->v, (c->n + 1) * sizeof(labelset));
        labelset_init(&c->v[c->n++]);
        c->cur_agg = agg;
        c->cur_lhash = lh;
        c->open = true;
    }
    if (name[0])
        labelset_set(&c->v[c->n - 1], name, sqlrow_text(r, 3));
    return 0;
}

static int series_row(void *ctx, sqlrow *r)
{
    store_detail *d = ctx;
    d->series = xrealloc(d->series, (d->n_series + 1) * sizeof(merge_series_point));
    d->series[d->n_series].minute = sqlrow_int(r, 0);
    d->series[d->n_series].delta = (uint64_t)sqlrow_int(r, 1);
    d->n_series++;
    return 0;
}

int sql_get(store *s, const char *job, const char *key, store_detail *out, char *err, size_t errlen)
{
    sql_store *m = (sql_store *)s;
    memset(out, 0, sizeof(*out));
    int64_t id = sql_id2(job, key);
    sqlv p[] = {sqlv_int(id), sqlv_text(job), sqlv_text(key)};
    one_ctx oc = {&out->s, 0};
    occ_vec ov = {0};
    labels_ctx lc = {0};
    pthread_mutex_lock(&m->rmu);
    int rc = sqldb_query(m->r, "SELECT " SQL_AGG_COLS " FROM aggregates a WHERE a.id = ? AND a.job = ? AND a.akey = ?", p,
                         3, one_row, &oc, err, errlen);
    if (rc == 0 && !oc.found) {
        pthread_mutex_unlock(&m->rmu);
        snprintf(err, errlen, "error \"%.100s\" not found in job \"%.100s\"", key, job);
        return STORE_NOT_FOUND;
    }
    if (rc == 0)
        rc = load_samples(m->r, "WHERE s.agg_id = ?", p, 1, "s.ts DESC, s.hash DESC", &ov, err, errlen);
    if (rc == 0)
        rc = sqldb_query(m->r, "SELECT agg_id, lhash, name, value FROM labels WHERE agg_id = ? ORDER BY seq, lhash, name",
                         p, 1, label_row, &lc, err, errlen);
    if (rc == 0) /* points past retention are deleted by store_maintain */
        rc = sqldb_query(m->r, "SELECT minute, delta FROM series WHERE agg_id = ? ORDER BY minute", p, 1, series_row,
                         out, err, errlen);
    pthread_mutex_unlock(&m->rmu);
    if (rc != 0) {
        occ_vec_free(&ov);
        for (size_t i = 0; i < lc.n; i++)
            labelset_free(&lc.v[i]);
        free(lc.v);
        store_detail_free(out);
        return -1;
    }
    out->samples = ov.v ? ov.v : xrealloc(NULL, sizeof(void *));
    out->n_samples = ov.n;
    free(ov.agg);
    free(ov.hash);
    out->labels = lc.v ? lc.v : xrealloc(NULL, sizeof(labelset));
    out->n_labels = lc.n;
    if (!out->series)
        out->series = xrealloc(NULL, sizeof(merge_series_point));
    out->s.n_samples = ov.n;
    out->s.n_labels = lc.n;
    if (ov.n) {
        out->s.latest = ov.v[0];
        payload_occurrence_ref(out->s.latest);
    }
    return 0;
}

/* ---- jobs ---- */

typedef struct jobs_ctx {
    store_job *v;
    size_t n;
} jobs_ctx;

static int job_row(void *ctx, sqlrow *r)
{
    jobs_ctx *c = ctx;
    c->v = xrealloc(c->v, (c->n + 1) * sizeof(store_job));
    store_job *j = &c->v[c->n++];
    j->job = xstrdup_or_empty(sqlrow_text(r, 0));
    j->aggregates = (uint64_t)sqlrow_int(r, 1);
    j->open = (uint64_t)sqlrow_int(r, 2);
    j->total_count = (uint64_t)sqlrow_int(r, 3);
    return 0;
}

int sql_jobs(store *s, store_job **out, size_t *n, char *err, size_t errlen)
{
    sql_store *m = (sql_store *)s;
    jobs_ctx c = {0};
    pthread_mutex_lock(&m->rmu);
    int rc = sqldb_query(m->r,
                         /* SQLite's sum() fails on integer overflow; total() is a double that the column
                          * read saturates, as strtoll saturates PostgreSQL's and MariaDB's decimal sums. */
                         m->dialect == SQLDB_SQLITE
                             ? "SELECT job, count(*), sum(CASE WHEN status <> 1 THEN 1 ELSE 0 END), total(total)"
                               " FROM aggregates GROUP BY job ORDER BY job"
                             : "SELECT job, count(*), sum(CASE WHEN status <> 1 THEN 1 ELSE 0 END), sum(total)"
                               " FROM aggregates GROUP BY job ORDER BY job",
                         NULL, 0, job_row, &c, err, errlen);
    pthread_mutex_unlock(&m->rmu);
    if (rc != 0) {
        store_jobs_free(c.v, c.n);
        return -1;
    }
    *out = c.v;
    *n = c.n;
    return 0;
}

typedef struct buckets_ctx {
    int64_t since_ms, step_ms;
    uint64_t *out;
    size_t n;
} buckets_ctx;

static int bucket_row(void *ctx, sqlrow *r)
{
    buckets_ctx *c = ctx;
    int64_t ms = sqlrow_int(r, 0) * 60000;
    if (ms < c->since_ms)
        return 0;
    size_t i = (size_t)((ms - c->since_ms) / c->step_ms);
    if (i < c->n)
        c->out[i] += (uint64_t)sqlrow_int(r, 1);
    return 0;
}

int sql_buckets(store *s, const char *job, const char *key, int64_t since_ms, int64_t step_ms, uint64_t *out,
                size_t n, char *err, size_t errlen)
{
    sql_store *m = (sql_store *)s;
    buckets_ctx c = {since_ms, step_ms, out, n};
    int64_t from = since_ms >= 0 ? since_ms / 60000 : (since_ms - 59999) / 60000;
    int64_t to = (since_ms + step_ms * (int64_t)n) / 60000 + 1;
    pthread_mutex_lock(&m->rmu);
    int rc;
    if (key) {
        sqlv p[] = {sqlv_int(sql_id2(job, key)), sqlv_int(from), sqlv_int(to)};
        rc = sqldb_query(m->r, "SELECT minute, delta FROM series WHERE agg_id = ? AND minute >= ? AND minute < ?", p, 3,
                         bucket_row, &c, err, errlen);
    } else {
        sqlv p[] = {sqlv_text(job), sqlv_int(from), sqlv_int(to)};
        rc = sqldb_query(m->r, "SELECT s.minute, s.delta FROM series s JOIN aggregates a ON a.id = s.agg_id"
                               " WHERE a.job = ? AND s.minute >= ? AND s.minute < ?", p, 3, bucket_row, &c, err, errlen);
    }
    pthread_mutex_unlock(&m->rmu);
    return rc < 0 ? -1 : 0;
}
