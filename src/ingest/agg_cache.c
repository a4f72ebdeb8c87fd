/* agg_cache: see agg_cache.h. A keymap from "job\0url" to a source's entries, sorted by fingerprint. */
#include "ingest/agg_cache.h"

#include <stdlib.h>
#include <string.h>

#include "util/keymap.h"
#include "util/xalloc.h"

typedef struct entry {
    uint64_t hash;
    char *key;
    uint64_t total_count;
    payload_severity severity;
    int64_t created_at_ms;
    uint64_t *occ; /* its occurrences' fingerprints, sorted; NULL when not all were fingerprinted */
    size_t n_occ;
} entry;

typedef struct source {
    char *id; /* "job\0url", not NUL-terminated */
    size_t idlen;
    entry *e;
    size_t n;
} source;

struct agg_cache {
    keymap sources;
    size_t entries; /* over every source */
};

/* Frees a source and takes its entries off c's count; NULL is a no-op. */
static void source_free(agg_cache *c, source *s)
{
    if (!s)
        return;
    c->entries -= s->n;
    for (size_t i = 0; i < s->n; i++) {
        free(s->e[i].key);
        free(s->e[i].occ);
    }
    free(s->e);
    free(s->id);
    free(s);
}

agg_cache *agg_cache_new(void)
{
    return xcalloc(1, sizeof(agg_cache));
}

void agg_cache_clear(agg_cache *c)
{
    for (size_t i = 0; i < c->sources.cap; i++)
        if (c->sources.slots[i].hash)
            source_free(c, c->sources.slots[i].value);
    keymap_free(&c->sources); /* and empty again, ready for use */
}

void agg_cache_free(agg_cache *c)
{
    if (!c)
        return;
    agg_cache_clear(c);
    free(c);
}

/* "job\0url" into a fresh buffer of exactly *len bytes (a key, not a C string). */
static char *source_id(const char *job, const char *url, size_t *len)
{
    size_t jl = strlen(job), ul = strlen(url);
    char *id = xmalloc(jl + 1 + ul);
    memcpy(id, job, jl + 1);
    memcpy(id + jl + 1, url, ul);
    *len = jl + 1 + ul;
    return id;
}

static source *source_get(agg_cache *c, const char *job, const char *url)
{
    size_t len;
    char *id = source_id(job, url, &len);
    source *s = keymap_get(&c->sources, id, len);
    free(id);
    return s;
}

static bool lookup(void *ctx, uint64_t hash, payload_aggregate *out)
{
    const source *s = ctx;
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->e[mid].hash < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == s->n || s->e[lo].hash != hash)
        return false;
    const entry *e = &s->e[lo];
    *out = (payload_aggregate){.key = e->key, .total_count = e->total_count, .severity = e->severity,
                               .created_at_ms = e->created_at_ms, .raw_hash = hash, .occ_hashes = e->occ,
                               .n_occ_hashes = e->n_occ};
    return true;
}

static const uint64_t *occurrences(void *ctx, const char *key, size_t len, size_t *n)
{
    const source *s = ctx;
    for (size_t i = 0; i < s->n; i++)
        if (strlen(s->e[i].key) == len && memcmp(s->e[i].key, key, len) == 0) {
            *n = s->e[i].n_occ;
            return s->e[i].occ;
        }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

bool agg_cache_reuse(agg_cache *c, const char *job, const char *url, payload_reuse *out)
{
    source *s = source_get(c, job, url);
    out->lookup = s && s->n ? lookup : NULL;
    out->occurrences = s && s->n ? occurrences : NULL;
    out->ctx = s;
    return out->lookup != NULL;
}

static int by_hash(const void *a, const void *b)
{
    uint64_t x = ((const entry *)a)->hash, y = ((const entry *)b)->hash;
    return x < y ? -1 : x > y;
}

payload_doc *agg_cache_parse(agg_cache *c, const merge_engine *e, const char *job, const char *url, const char *body,
                             size_t len, size_t max_occurrences, bool reuse, char *err, size_t errlen)
{
    if (!reuse)
        return payload_parse_limited(body, len, url, max_occurrences, err, errlen);
    payload_reuse r;
    bool reusing = agg_cache_reuse(c, job, url, &r);
    payload_doc *doc = payload_parse_reuse(body, len, url, max_occurrences, &r, err, errlen);
    if (doc && reusing) {
        merge_input mi = {.job = job, .url = url, .doc = doc};
        if (!merge_reuse_ok(e, &mi)) { /* the engine no longer holds what a reused aggregate stands for */
            payload_free(doc);
            doc = payload_parse_reuse(body, len, url, max_occurrences, &(payload_reuse){0}, err, errlen);
        }
    }
    return doc;
}

void agg_cache_remember(agg_cache *c, const char *job, const char *url, const payload_doc *doc)
{
    size_t len;
    char *id = source_id(job, url, &len);
    source_free(c, keymap_del(&c->sources, id, len));
    bool federated = doc->lookout_instance != NULL;
    for (size_t i = 0; i < doc->n_aggregates; i++)
        federated = federated || doc->aggregates[i].origin_job;
    source *s = xcalloc(1, sizeof *s);
    s->id = id;
    s->idlen = len;
    s->e = xmalloc((doc->n_aggregates ? doc->n_aggregates : 1) * sizeof *s->e);
    for (size_t i = 0; i < doc->n_aggregates && !federated; i++) {
        const payload_aggregate *a = &doc->aggregates[i];
        if (!a->raw_hash)
            continue;
        entry *en = &s->e[s->n++];
        *en = (entry){.hash = a->raw_hash, .key = xstrdup(a->key), .total_count = a->total_count,
                      .severity = a->severity, .created_at_ms = a->created_at_ms};
        if (a->n_occ_hashes) {
            en->occ = xmalloc(a->n_occ_hashes * sizeof *en->occ);
            memcpy(en->occ, a->occ_hashes, a->n_occ_hashes * sizeof *en->occ);
            en->n_occ = a->n_occ_hashes;
            qsort(en->occ, en->n_occ, sizeof *en->occ, cmp_u64);
        }
    }
    if (!s->n) {
        source_free(c, s);
        return;
    }
    qsort(s->e, s->n, sizeof *s->e, by_hash);
    keymap_put(&c->sources, s->id, s->idlen, s);
    c->entries += s->n;
}

size_t agg_cache_entries(const agg_cache *c)
{
    return c->entries;
}

void agg_cache_forget(agg_cache *c, const char *job, const char *url)
{
    size_t len;
    char *id = source_id(job, url, &len);
    source_free(c, keymap_del(&c->sources, id, len));
    free(id);
}
