/* sql_scrub: scrubs what is stored: header values, URLs and bodies of samples (periskop/scrub.h; schema
 * migration 4 with the default rules, sql_schema_scrub with the configured ones whenever they or the
 * scrubber changed), and the texts derived from them (samples.stext, and the search rows, which sql_schema.c rebuilds).
 * A sample's stext is the lower-cased concatenation of its fields (sql_store.c: search_text), so each
 * changed field's lower-cased old text is replaced by its new one there. Sample identities (hash) stay. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "periskop/scrub.h"
#include "store/sql_store.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

typedef struct subst {
    char *from, *to; /* lower-cased */
} subst;

typedef struct sample_fix {
    int64_t agg, hash;
    char *url, *body, *stext; /* url/body: new values or NULL when unchanged */
    subst *subs;
    size_t n_subs;
} sample_fix;

typedef struct fix_set {
    sample_fix *v;
    size_t n, cap;
    const scrub_rules *r;
    /* header updates */
    struct hdr_fix {
        int64_t agg, hash, pos;
        char *value;
    } *h;
    size_t nh, caph;
} fix_set;

static char *lower(const char *s)
{
    char *o = xstrdup(s);
    for (char *p = o; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return o;
}

static void add_subst(sample_fix *f, const char *from, const char *to)
{
    f->subs = xrealloc(f->subs, (f->n_subs + 1) * sizeof *f->subs);
    f->subs[f->n_subs++] = (subst){lower(from), lower(to)};
}

static int sample_row(void *ctx, sqlrow *row)
{
    fix_set *fs = ctx;
    const char *url = sqlrow_text(row, 2), *body = sqlrow_text(row, 3);
    char *nu = scrub_url(fs->r, url), *nb = scrub_body(fs->r, body);
    if (fs->n == fs->cap) {
        fs->cap = fs->cap ? fs->cap * 2 : 64;
        fs->v = xrealloc(fs->v, fs->cap * sizeof *fs->v);
    }
    sample_fix *f = &fs->v[fs->n++];
    *f = (sample_fix){.agg = sqlrow_int(row, 0), .hash = sqlrow_int(row, 1), .url = nu, .body = nb,
                      .stext = xstrdup(sqlrow_text(row, 4))};
    if (nu)
        add_subst(f, url, nu);
    if (nb)
        add_subst(f, body, nb);
    return 0;
}

static int cmp_fix(const void *a, const void *b)
{
    const sample_fix *x = a, *y = b;
    if (x->agg != y->agg)
        return x->agg < y->agg ? -1 : 1;
    return x->hash < y->hash ? -1 : x->hash > y->hash;
}

static int header_row(void *ctx, sqlrow *row)
{
    fix_set *fs = ctx;
    const char *name = sqlrow_text(row, 3), *value = sqlrow_text(row, 4);
    char *nv = scrub_header(fs->r, name, value);
    if (!nv)
        return 0;
    sample_fix key = {.agg = sqlrow_int(row, 0), .hash = sqlrow_int(row, 1)};
    sample_fix *f = fs->n ? bsearch(&key, fs->v, fs->n, sizeof *fs->v, cmp_fix) : NULL;
    if (f)
        add_subst(f, value, nv);
    if (fs->nh == fs->caph) {
        fs->caph = fs->caph ? fs->caph * 2 : 64;
        fs->h = xrealloc(fs->h, fs->caph * sizeof *fs->h);
    }
    fs->h[fs->nh++] = (struct hdr_fix){key.agg, key.hash, sqlrow_int(row, 2), nv};
    return 0;
}

/* s with every occurrence of each from replaced by its to. */
static char *apply(const char *s, const subst *subs, size_t n)
{
    char *cur = xstrdup(s);
    for (size_t i = 0; i < n; i++) {
        if (!*subs[i].from)
            continue;
        strbuf sb;
        strbuf_init(&sb);
        const char *p = cur, *q;
        size_t fl = strlen(subs[i].from);
        while ((q = strstr(p, subs[i].from))) {
            strbuf_append(&sb, p, (size_t)(q - p));
            strbuf_puts(&sb, subs[i].to);
            p = q + fl;
        }
        strbuf_puts(&sb, p);
        free(cur);
        cur = strbuf_detach(&sb, NULL);
        strbuf_free(&sb);
        if (!cur)
            cur = xstrdup("");
    }
    return cur;
}

int sql_scrub_existing(sqldb *db, const scrub_rules *rules, bool *changed, char *err, size_t errlen)
{
    *changed = false;
    scrub_rules *r = rules ? NULL : scrub_rules_default();
    fix_set fs = {.r = rules ? rules : r};
    int rc = sqldb_query(db,
                         "SELECT agg_id, hash, url, body, stext FROM samples WHERE has_http <> 0 ORDER BY agg_id, hash",
                         NULL, 0, sample_row, &fs, err, errlen);
    if (rc == 0) {
        if (fs.n)
            qsort(fs.v, fs.n, sizeof *fs.v, cmp_fix); /* the database's order of signed ids may differ */
        rc = sqldb_query(db, "SELECT agg_id, hash, pos, name, value FROM sample_headers", NULL, 0, header_row, &fs,
                         err, errlen);
    }
    for (size_t i = 0; rc == 0 && i < fs.nh; i++) {
        sqlv p[] = {sqlv_text(fs.h[i].value), sqlv_int(fs.h[i].agg), sqlv_int(fs.h[i].hash), sqlv_int(fs.h[i].pos)};
        rc = sqldb_exec(db, "UPDATE sample_headers SET value = ? WHERE agg_id = ? AND hash = ? AND pos = ?", p, 4, err,
                        errlen);
        *changed = true;
    }
    for (size_t i = 0; rc == 0 && i < fs.n; i++) {
        sample_fix *f = &fs.v[i];
        if (!f->n_subs)
            continue;
        char *st = apply(f->stext, f->subs, f->n_subs);
        if (f->url) {
            sqlv p[] = {sqlv_text(f->url), sqlv_int(f->agg), sqlv_int(f->hash)};
            rc = sqldb_exec(db, "UPDATE samples SET url = ? WHERE agg_id = ? AND hash = ?", p, 3, err, errlen);
        }
        if (rc == 0 && f->body) {
            sqlv p[] = {sqlv_text(f->body), sqlv_int(f->agg), sqlv_int(f->hash)};
            rc = sqldb_exec(db, "UPDATE samples SET body = ? WHERE agg_id = ? AND hash = ?", p, 3, err, errlen);
        }
        if (rc == 0) {
            sqlv p[] = {sqlv_text(st), sqlv_int(f->agg), sqlv_int(f->hash)};
            rc = sqldb_exec(db, "UPDATE samples SET stext = ? WHERE agg_id = ? AND hash = ?", p, 3, err, errlen);
        }
        free(st);
        *changed = true;
    }
    for (size_t i = 0; i < fs.n; i++) {
        free(fs.v[i].url);
        free(fs.v[i].body);
        free(fs.v[i].stext);
        for (size_t k = 0; k < fs.v[i].n_subs; k++) {
            free(fs.v[i].subs[k].from);
            free(fs.v[i].subs[k].to);
        }
        free(fs.v[i].subs);
    }
    free(fs.v);
    for (size_t i = 0; i < fs.nh; i++)
        free(fs.h[i].value);
    free(fs.h);
    scrub_rules_free(r);
    return rc == 0 ? 0 : -1;
}
