/* store: wrappers and the pieces every backend shares (status rules, cursors, full-text matching). */
#include "store/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/strbuf.h"

const char *store_status_name(store_status s)
{
    switch (s) {
    case STORE_RESOLVED: return "resolved";
    case STORE_REGRESSED: return "regressed";
    default: return "open";
    }
}

int store_status_parse(const char *s, store_status *out)
{
    if (!s)
        return -1;
    if (strcmp(s, "open") == 0)
        *out = STORE_OPEN;
    else if (strcmp(s, "resolved") == 0)
        *out = STORE_RESOLVED;
    else if (strcmp(s, "regressed") == 0)
        *out = STORE_REGRESSED;
    else
        return -1;
    return 0;
}

const char *store_sort_name(store_sort s)
{
    switch (s) {
    case STORE_SORT_COUNT: return "count";
    case STORE_SORT_FIRST_SEEN: return "first_seen";
    default: return "last_seen";
    }
}

int store_sort_parse(const char *s, store_sort *out)
{
    if (!s)
        return -1;
    if (strcmp(s, "last_seen") == 0)
        *out = STORE_SORT_LAST_SEEN;
    else if (strcmp(s, "count") == 0)
        *out = STORE_SORT_COUNT;
    else if (strcmp(s, "first_seen") == 0)
        *out = STORE_SORT_FIRST_SEEN;
    else
        return -1;
    return 0;
}

int store_apply(store *s, const merge_changeset *cs, int64_t now_ms, char *err, size_t errlen)
{
    return s->ops->apply(s, cs, now_ms, err, errlen);
}
int store_list(store *s, const store_query *q, store_page *out, char *err, size_t errlen)
{
    return s->ops->list(s, q, out, err, errlen);
}
int store_get(store *s, const char *job, const char *key, store_detail *out, char *err, size_t errlen)
{
    return s->ops->get(s, job, key, out, err, errlen);
}
int store_resolve(store *s, const char *job, const char *key, int64_t now_ms, char *err, size_t errlen)
{
    return s->ops->set_status(s, job, key, true, now_ms, err, errlen);
}
int store_reopen(store *s, const char *job, const char *key, char *err, size_t errlen)
{
    return s->ops->set_status(s, job, key, false, 0, err, errlen);
}
int store_jobs(store *s, store_job **out, size_t *n, char *err, size_t errlen)
{
    return s->ops->jobs(s, out, n, err, errlen);
}
int store_save_state(store *s, const merge_state *st, char *err, size_t errlen)
{
    return s->ops->save_state(s, st, err, errlen);
}
int store_load(store *s, merge_engine *e, char *err, size_t errlen)
{
    return s->ops->load(s, e, err, errlen);
}
int store_maintain(store *s, int64_t now_ms, char *err, size_t errlen)
{
    return s->ops->maintain ? s->ops->maintain(s, now_ms, err, errlen) : 0;
}
int store_buckets(store *s, const char *job, const char *key, int64_t since_ms, int64_t step_ms, uint64_t *out,
                  size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        out[i] = 0;
    if (!s->ops->buckets || step_ms <= 0 || !n)
        return 0;
    return s->ops->buckets(s, job, key, since_ms, step_ms, out, n, err, errlen);
}

int store_rescrub(store *s, const struct scrub_rules *r, char *err, size_t errlen)
{
    return s->ops->rescrub ? s->ops->rescrub(s, r, err, errlen) : 0;
}

int store_keys(store *s, const char *job, int status, store_sort sort, char ***out, size_t *n, char *err,
               size_t errlen)
{
    *out = NULL;
    *n = 0;
    return s->ops->keys(s, job, status, sort, out, n, err, errlen);
}

void store_keys_free(char **keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

void store_close(store *s)
{
    if (s)
        s->ops->close(s);
}

void store_summary_free(store_summary *s)
{
    free(s->job);
    free(s->key);
    payload_occurrence_unref(s->latest);
    memset(s, 0, sizeof(*s));
}

void store_page_free(store_page *p)
{
    for (size_t i = 0; i < p->n; i++)
        store_summary_free(&p->v[i]);
    free(p->v);
    free(p->next_cursor);
    memset(p, 0, sizeof(*p));
}

void store_detail_free(store_detail *d)
{
    store_summary_free(&d->s);
    for (size_t i = 0; i < d->n_samples; i++)
        payload_occurrence_unref(d->samples[i]);
    free(d->samples);
    for (size_t i = 0; i < d->n_labels; i++)
        labelset_free(&d->labels[i]);
    free(d->labels);
    free(d->series);
    memset(d, 0, sizeof(*d));
}

void store_jobs_free(store_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(jobs[i].job);
    free(jobs);
}

store_status store_status_after(store_status st, uint64_t resolved_count, uint64_t new_count)
{
    if (st == STORE_RESOLVED && new_count > resolved_count)
        return STORE_REGRESSED;
    return st;
}

/* ---- cursors: "<sort>.<value>.<hex job>.<hex key>" ---- */

static void hex(strbuf *sb, const char *s)
{
    static const char d[] = "0123456789abcdef";
    for (; *s; s++) {
        strbuf_putc(sb, d[(unsigned char)*s >> 4]);
        strbuf_putc(sb, d[(unsigned char)*s & 15]);
    }
}

static int unhex(const char *s, size_t n, char **out)
{
    if (n % 2)
        return -1;
    char *r = malloc(n / 2 + 1);
    if (!r)
        abort();
    for (size_t i = 0; i < n; i += 2) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[i + k];
            int x = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (x < 0) {
                free(r);
                return -1;
            }
            v = v * 16 + x;
        }
        if (v == 0) { /* a NUL cannot be in a job or key */
            free(r);
            return -1;
        }
        r[i / 2] = (char)v;
    }
    r[n / 2] = 0;
    *out = r;
    return 0;
}

char *store_cursor_encode(const store_cursor *c)
{
    strbuf sb;
    strbuf_init(&sb);
    strbuf_printf(&sb, "%d.%" PRId64 ".", (int)c->sort, c->value);
    hex(&sb, c->job);
    strbuf_putc(&sb, '.');
    hex(&sb, c->key);
    char *r = strbuf_detach(&sb, NULL);
    strbuf_free(&sb); /* detach re-initialises sb with a fresh buffer */
    return r;
}

int store_cursor_decode(const char *s, store_cursor *c)
{
    memset(c, 0, sizeof(*c));
    if (!s)
        return -1;
    char *end;
    long sort = strtol(s, &end, 10);
    if (end == s || *end != '.' || sort < 0 || sort > STORE_SORT_FIRST_SEEN)
        return -1;
    const char *p = end + 1;
    long long v = strtoll(p, &end, 10);
    if (end == p || *end != '.')
        return -1;
    p = end + 1;
    const char *dot = strchr(p, '.');
    if (!dot || strchr(dot + 1, '.'))
        return -1;
    if (unhex(p, (size_t)(dot - p), &c->job) != 0)
        return -1;
    if (unhex(dot + 1, strlen(dot + 1), &c->key) != 0) {
        free(c->job);
        c->job = NULL;
        return -1;
    }
    c->sort = (store_sort)sort;
    c->value = v;
    return 0;
}

void store_cursor_clear(store_cursor *c)
{
    free(c->job);
    free(c->key);
    c->job = c->key = NULL;
}

int64_t store_sort_value(store_sort sort, const store_summary *s)
{
    switch (sort) {
    case STORE_SORT_COUNT: return s->total_count > INT64_MAX ? INT64_MAX : (int64_t)s->total_count;
    case STORE_SORT_FIRST_SEEN: return s->created_at_ms;
    default: return s->last_seen_ms;
    }
}

int store_row_cmp(store_sort sort, int64_t va, const char *joba, const char *keya, int64_t vb, const char *jobb,
                  const char *keyb)
{
    (void)sort;
    if (va != vb)
        return va > vb ? -1 : 1;
    int c = strcmp(joba, jobb);
    if (c)
        return c;
    return strcmp(keya, keyb);
}

/* ---- full-text ---- */

static bool has(const char *s, const char *q)
{
    return s && strcasestr(s, q) != NULL;
}

bool store_occurrence_matches(const payload_occurrence *o, const char *q)
{
    if (!q || !q[0])
        return true;
    for (const payload_error *e = &o->error; e; e = e->cause) {
        if (has(e->class_name, q) || has(e->message, q))
            return true;
        for (size_t i = 0; i < e->n_stacktrace; i++)
            if (has(e->stacktrace[i], q))
                return true;
    }
    if (o->http) {
        if (has(o->http->method, q) || has(o->http->url, q) || has(o->http->body, q))
            return true;
        for (size_t i = 0; i < o->http->n_headers; i++)
            if (has(o->http->headers[i].name, q) || has(o->http->headers[i].value, q))
                return true;
    }
    return has(o->uuid, q);
}

size_t store_list_begin(const store_query *q, store_cursor *cur, char *err, size_t errlen)
{
    memset(cur, 0, sizeof(*cur));
    if (q->cursor && q->cursor[0] && (store_cursor_decode(q->cursor, cur) != 0 || cur->sort != q->sort)) {
        store_cursor_clear(cur);
        snprintf(err, errlen, "invalid cursor (it must come from a previous page with the same sort)");
        return 0;
    }
    size_t limit = q->limit ? q->limit : STORE_DEFAULT_LIMIT;
    return limit > STORE_MAX_LIMIT ? STORE_MAX_LIMIT : limit;
}
