/* sql_load: the SQL store's start-up restore of the merge engine, on the writer's connection (before the
 * writer thread starts). The API reads live in sql_read.c. */
#include <stdlib.h>
#include <string.h>

#include "store/sql_store.h"
#include "util/xalloc.h"


/* The merge engine gets samples and label sets by identity only (merge_sample_id, label set hashes):
 * it needs them to deduplicate, order, evict and bound, while their content is served from these
 * tables. Decoding 1,000,000 samples with causes and headers and 3,000,000 label rows into the engine
 * was most of the start-up time. */
typedef struct load_ctx {
    merge_engine *e;
    int64_t *s_agg; /* sample identities, by (agg_id, hash) */
    merge_sample_id *s_id;
    size_t s_n, s_cap;
    int64_t *l_agg; /* label set identities, by agg_id then seq (the order first seen) */
    uint64_t *l_hash;
    int64_t *l_seq;
    size_t l_n, l_cap;
    size_t sw, lw; /* walk positions */
    size_t n;
    int64_t *agg_ids; /* every aggregate id, ascending, and its key: counts name keys by id */
    char **agg_keys;
    size_t cap_aggs;
} load_ctx;

static int sample_id_row(void *ctx, sqlrow *r)
{
    load_ctx *c = ctx;
    if (c->s_n == c->s_cap) {
        c->s_cap = c->s_cap ? c->s_cap * 2 : 1024;
        c->s_agg = xrealloc(c->s_agg, c->s_cap * sizeof(int64_t));
        c->s_id = xrealloc(c->s_id, c->s_cap * sizeof(merge_sample_id));
    }
    c->s_agg[c->s_n] = sqlrow_int(r, 0);
    c->s_id[c->s_n].dedup_hash = sql_hash_from_db(sqlrow_int(r, 1));
    c->s_id[c->s_n].timestamp_ms = sqlrow_int(r, 2);
    c->s_n++;
    return 0;
}

static int label_id_row(void *ctx, sqlrow *r)
{
    load_ctx *c = ctx;
    if (c->l_n == c->l_cap) {
        c->l_cap = c->l_cap ? c->l_cap * 2 : 1024;
        c->l_agg = xrealloc(c->l_agg, c->l_cap * sizeof(int64_t));
        c->l_hash = xrealloc(c->l_hash, c->l_cap * sizeof(uint64_t));
        c->l_seq = xrealloc(c->l_seq, c->l_cap * sizeof(int64_t));
    }
    c->l_agg[c->l_n] = sqlrow_int(r, 0);
    c->l_hash[c->l_n] = (uint64_t)sqlrow_int(r, 1);
    c->l_seq[c->l_n] = sqlrow_int(r, 2);
    c->l_n++;
    return 0;
}

static int load_agg_row(void *ctx, sqlrow *r)
{
    load_ctx *c = ctx;
    int64_t id = sqlrow_int(r, 9);
    while (c->sw < c->s_n && c->s_agg[c->sw] < id)
        c->sw++;
    size_t s0 = c->sw;
    while (c->sw < c->s_n && c->s_agg[c->sw] == id)
        c->sw++;
    while (c->lw < c->l_n && c->l_agg[c->lw] < id)
        c->lw++;
    size_t l0 = c->lw;
    while (c->lw < c->l_n && c->l_agg[c->lw] == id)
        c->lw++;
    int64_t t = sqlrow_int(r, 2);
    merge_aggregate_state as = {.job = sqlrow_text(r, 0), .key = sqlrow_text(r, 1),
                                .total_count = t < 0 ? 0 : (uint64_t)t,
                                .severity = (payload_severity)sqlrow_int(r, 3), .created_at_ms = sqlrow_int(r, 4),
                                .last_seen_ms = sqlrow_int(r, 5), .sample_ids = c->s_id + s0,
                                .n_sample_ids = c->sw - s0, .label_ids = c->l_hash + l0, .n_label_ids = c->lw - l0};
    merge_restore_aggregate(c->e, &as);
    if (c->n == c->cap_aggs) {
        c->cap_aggs = c->cap_aggs ? c->cap_aggs * 2 : 1024;
        c->agg_ids = xrealloc(c->agg_ids, c->cap_aggs * sizeof(int64_t));
        c->agg_keys = xrealloc(c->agg_keys, c->cap_aggs * sizeof(char *));
    }
    c->agg_ids[c->n] = id;
    c->agg_keys[c->n] = xstrdup_or_empty(as.key);
    c->n++;
    return 0;
}

/* Tombstones (schema v6): restored before the per-instance counts, which name them by id. */
static int tombstone_row(void *ctx, sqlrow *r)
{
    load_ctx *c = ctx;
    merge_restore_tombstone(c->e, sqlrow_text(r, 1), sqlrow_text(r, 2), sqlrow_int(r, 3));
    if (c->n == c->cap_aggs) {
        c->cap_aggs = c->cap_aggs ? c->cap_aggs * 2 : 1024;
        c->agg_ids = xrealloc(c->agg_ids, c->cap_aggs * sizeof(int64_t));
        c->agg_keys = xrealloc(c->agg_keys, c->cap_aggs * sizeof(char *));
    }
    c->agg_ids[c->n] = sqlrow_int(r, 0);
    c->agg_keys[c->n] = xstrdup_or_empty(sqlrow_text(r, 2));
    c->n++;
    return 0;
}

typedef struct id_key {
    int64_t id;
    char *key;
} id_key;

static int cmp_id_key(const void *a, const void *b)
{
    const id_key *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* agg_ids/agg_keys back in ascending id order after the tombstones were appended. */
static void sort_ids(load_ctx *c)
{
    id_key *v = xcalloc(c->n + 1, sizeof *v);
    for (size_t i = 0; i < c->n; i++)
        v[i] = (id_key){c->agg_ids[i], c->agg_keys[i]};
    qsort(v, c->n, sizeof *v, cmp_id_key);
    for (size_t i = 0; i < c->n; i++) {
        c->agg_ids[i] = v[i].id;
        c->agg_keys[i] = v[i].key;
    }
    free(v);
}

typedef struct seq_idx {
    int64_t seq;
    uint64_t hash;
} seq_idx;

static int cmp_seq(const void *a, const void *b)
{
    const seq_idx *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq ? 1 : (x->hash > y->hash) - (x->hash < y->hash);
}

/* Label set rows come in primary-key order (no sort of the whole table); within each aggregate the
 * sets are put back in the order they were seen (seq, then hash: what the detail view shows), so a
 * lowered labels_per_error keeps the same ones as before. */
static void order_label_ids(load_ctx *c)
{
    seq_idx *tmp = NULL;
    size_t cap = 0;
    for (size_t a = 0; a < c->l_n;) {
        size_t b = a + 1;
        while (b < c->l_n && c->l_agg[b] == c->l_agg[a])
            b++;
        size_t n = b - a;
        if (n > 1) {
            if (n > cap) {
                cap = n;
                tmp = xrealloc(tmp, cap * sizeof(*tmp));
            }
            for (size_t i = 0; i < n; i++)
                tmp[i] = (seq_idx){c->l_seq[a + i], c->l_hash[a + i]};
            qsort(tmp, n, sizeof(*tmp), cmp_seq);
            for (size_t i = 0; i < n; i++)
                c->l_hash[a + i] = tmp[i].hash;
        }
        a = b;
    }
    free(tmp);
}

typedef struct state_ctx {
    merge_state *st;
    int64_t *inst_ids;
    size_t walk;
    const load_ctx *agg; /* aggregate id -> key */
} state_ctx;

static int inst_row(void *ctx, sqlrow *r)
{
    state_ctx *c = ctx;
    merge_state *st = c->st;
    st->instances = xrealloc(st->instances, (st->n_instances + 1) * sizeof(merge_instance_state));
    c->inst_ids = xrealloc(c->inst_ids, (st->n_instances + 1) * sizeof(int64_t));
    merge_instance_state *is = &st->instances[st->n_instances];
    memset(is, 0, sizeof(*is));
    c->inst_ids[st->n_instances] = sqlrow_int(r, 0);
    is->job = xstrdup_or_empty(sqlrow_text(r, 1));
    is->instance_id = xstrdup_or_empty(sqlrow_text(r, 2));
    is->last_seen_ms = sqlrow_int(r, 3);
    st->n_instances++;
    return 0;
}

static int count_state_row(void *ctx, sqlrow *r)
{
    state_ctx *c = ctx;
    int64_t inst = sqlrow_int(r, 0);
    while (c->walk < c->st->n_instances && c->inst_ids[c->walk] < inst)
        c->walk++;
    if (c->walk == c->st->n_instances || c->inst_ids[c->walk] != inst)
        return 0;
    int64_t agg = sqlrow_int(r, 1);
    size_t lo = 0, hi = c->agg->n; /* binary search of the aggregate's key */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->agg->agg_ids[mid] < agg)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == c->agg->n || c->agg->agg_ids[lo] != agg)
        return 0; /* the aggregate is gone */
    merge_instance_state *is = &c->st->instances[c->walk];
    if ((is->n_counts & (is->n_counts - 1)) == 0) /* grow at powers of two */
        is->counts = xrealloc(is->counts, (is->n_counts ? is->n_counts * 2 : 1) * sizeof(merge_key_count));
    /* borrowed from the aggregate list (1,000,000 counts: no copy each); cleared before
     * merge_state_free in sql_load */
    is->counts[is->n_counts].key = c->agg->agg_keys[lo];
    is->counts[is->n_counts].count = (uint64_t)sqlrow_int(r, 2);
    is->n_counts++;
    return 0;
}

static int source_row(void *ctx, sqlrow *r)
{
    merge_state *st = ctx;
    st->sources = xrealloc(st->sources, (st->n_sources + 1) * sizeof(merge_source_state));
    merge_source_state *ss = &st->sources[st->n_sources++];
    ss->job = xstrdup_or_empty(sqlrow_text(r, 0));
    ss->url = xstrdup_or_empty(sqlrow_text(r, 1));
    ss->body_hash = (uint64_t)sqlrow_int(r, 2);
    ss->last_scrape_ms = sqlrow_int(r, 3);
    ss->instance_id = xstrdup_or_empty(sqlrow_text(r, 4));
    return 0;
}

int sql_load(store *s, merge_engine *e, char *err, size_t errlen)
{
    sql_store *m = (sql_store *)s;
    load_ctx c = {.e = e};
    merge_state st = {0};
    state_ctx sc = {&st, NULL, 0, &c};
    pthread_mutex_lock(&m->wmu);
    sqldb *db = m->w;
    /* One read transaction: a consistent snapshot even if another shard writes meanwhile. */
    int rc = sqldb_exec(db, m->dialect == SQLDB_SQLITE ? "BEGIN" : m->dialect == SQLDB_MYSQL
                                ? "START TRANSACTION WITH CONSISTENT SNAPSHOT" : "BEGIN ISOLATION LEVEL REPEATABLE READ",
                        NULL, 0, err, errlen);
    if (rc == 0)
        rc = sqldb_query(db, "SELECT agg_id, hash, ts FROM samples ORDER BY agg_id, hash", NULL, 0, sample_id_row, &c,
                         err, errlen);
    if (rc == 0) /* one sentinel row (name '') per label set */
        rc = sqldb_query(db, "SELECT agg_id, lhash, seq FROM labels WHERE name = '' ORDER BY agg_id, lhash", NULL, 0,
                         label_id_row, &c, err, errlen);
    if (rc == 0)
        order_label_ids(&c);
    if (rc == 0)
        rc = sqldb_query(db, "SELECT " SQL_AGG_COLS " FROM aggregates a ORDER BY a.id", NULL, 0, load_agg_row, &c, err,
                         errlen);
    size_t n_live = c.n;
    if (rc == 0)
        rc = sqldb_query(db, "SELECT agg_id, job, akey, last_seen FROM tombstones ORDER BY agg_id", NULL, 0,
                         tombstone_row, &c, err, errlen);
    if (rc == 0 && c.n > n_live)
        sort_ids(&c);
    if (rc == 0)
        rc = sqldb_query(db, "SELECT id, job, instance_id, last_seen FROM instances ORDER BY id", NULL, 0, inst_row,
                         &sc, err, errlen);
    if (rc == 0)
        rc = sqldb_query(db, "SELECT inst_id, agg_id, count FROM counts ORDER BY inst_id, agg_id", NULL, 0,
                         count_state_row, &sc, err, errlen);
    if (rc == 0)
        rc = sqldb_query(db, "SELECT job, url, body_hash, last_scrape, instance_id FROM sources", NULL, 0, source_row,
                         &st, err, errlen);
    char e2[128];
    /* a read transaction: a failed COMMIT loses nothing, but left open it would fail the next BEGIN */
    if (sqldb_exec(db, "COMMIT", NULL, 0, e2, sizeof(e2)) != 0)
        sqldb_exec(db, "ROLLBACK", NULL, 0, e2, sizeof(e2));
    pthread_mutex_unlock(&m->wmu);
    if (rc == 0)
        merge_restore(e, &st);
    for (size_t i = 0; i < st.n_instances; i++) /* the count keys are borrowed (count_state_row) */
        for (size_t k = 0; k < st.instances[i].n_counts; k++)
            st.instances[i].counts[k].key = NULL;
    merge_state_free(&st);
    free(sc.inst_ids);
    free(c.s_agg);
    free(c.s_id);
    free(c.l_agg);
    free(c.l_hash);
    free(c.l_seq);
    for (size_t i = 0; i < c.n; i++)
        free(c.agg_keys[i]);
    free(c.agg_keys);
    free(c.agg_ids);
    return rc == 0 ? 0 : -1;
}

/* ---- buckets ---- */

