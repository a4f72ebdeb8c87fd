/* store/merge_persist: the merge engine's persistence: restoring aggregates, tombstones, instances and
 * sources from a store (merge_restore_*), taking a snapshot of them (merge_snapshot), and migrating
 * instance ids written before ids named their source. See merge.h. */
#include "store/merge_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

void merge_restore_aggregate(merge_engine *e, const merge_aggregate_state *st)
{
    bool created;
    magg *a = merge_magg_get(e, st->job, st->key, &created);
    a->total = count_clamp(st->total_count);
    a->sev = st->severity;
    a->created = st->created_at_ms;
    a->last_seen = st->last_seen_ms;
    /* Retention counts from the newest time known (occurrence times are clamped to receive time). */
    a->touched = st->last_seen_ms != PAYLOAD_TS_NONE ? st->last_seen_ms : st->created_at_ms;
    if (a->touched == PAYLOAD_TS_NONE || (st->created_at_ms != PAYLOAD_TS_NONE && st->created_at_ms > a->touched))
        a->touched = st->created_at_ms != PAYLOAD_TS_NONE ? st->created_at_ms : INT64_MAX;
    merge_change *none = NULL;
    for (size_t i = 0; i < st->n_samples; i++)
        merge_sample_insert(e, a, st->samples[i]->timestamp_ms, st->samples[i]->dedup_hash, st->samples[i], NULL, false,
                      &none);
    for (size_t i = 0; i < st->n_sample_ids; i++)
        merge_sample_insert(e, a, st->sample_ids[i].timestamp_ms, st->sample_ids[i].dedup_hash, NULL, NULL, false, &none);
    /* Identities go first (see the invariant at the top); only onto an aggregate without full sets. */
    if (a->n_labels == a->n_label_ids && st->n_label_ids) {
        a->label_hashes = xrealloc(a->label_hashes, (a->n_labels + st->n_label_ids) * sizeof(uint64_t));
        for (size_t i = 0; i < st->n_label_ids && a->n_labels < e->o.labels_per_error; i++) {
            uint64_t h = st->label_ids[i] & LABEL_ID_MASK;
            bool dup = false;
            for (size_t k = 0; k < a->n_labels && !dup; k++)
                dup = a->label_hashes[k] == h;
            if (!dup) {
                a->label_hashes[a->n_labels++] = h;
                a->n_label_ids++;
            }
        }
    }
    for (size_t i = 0; i < st->n_labels; i++)
        merge_labels_add(e, a, &st->labels[i], labelset_hash(&st->labels[i]), NULL);
}

void merge_restore_tombstone(merge_engine *e, const char *job, const char *key, int64_t last_seen_ms)
{
    bool created;
    magg *a = merge_magg_get(e, job, key, &created);
    if (!created)
        return;
    merge_magg_bury(a);
    a->last_seen = last_seen_ms;
    mjob *j = merge_job_get(e, job);
    if (j->n_aggs)
        j->n_aggs--;
}

void merge_snapshot(const merge_engine *e, merge_state *out)
{
    memset(out, 0, sizeof(*out));
    out->instances = xmalloc(e->insts.n * sizeof(merge_instance_state));
    for (size_t i = 0; i < e->insts.cap; i++) {
        if (!e->insts.slots[i].hash)
            continue;
        const minst *m = e->insts.slots[i].value;
        merge_instance_state *is = &out->instances[out->n_instances++];
        is->job = xstrdup(m->id);
        is->instance_id = xstrdup(m->id + m->joblen + 1);
        is->last_seen_ms = m->last_seen;
        is->counts = xmalloc(m->n * sizeof(merge_key_count));
        is->n_counts = 0;
        for (size_t k = 0; k < m->cap; k++) {
            if (!m->slots[k].a || m->slots[k].a->expired) /* a tombstone's counts die with it */
                continue;
            const magg *a = m->slots[k].a;
            is->counts[is->n_counts].key = xstrdup(a->id + a->joblen + 1);
            is->counts[is->n_counts++].count = m->slots[k].count;
        }
    }
    out->sources = xmalloc(e->srcs.n * sizeof(merge_source_state));
    for (size_t i = 0; i < e->srcs.cap; i++) {
        if (!e->srcs.slots[i].hash)
            continue;
        const msrc *s = e->srcs.slots[i].value;
        merge_source_state *ss = &out->sources[out->n_sources++];
        ss->job = xstrdup(s->id);
        ss->url = xstrdup(s->id + s->joblen + 1);
        ss->body_hash = s->body_hash;
        ss->last_scrape_ms = s->last_scrape;
        ss->instance_id = xstrdup(s->inst ? s->inst->id + s->inst->joblen + 1 : "");
    }
}

/* State written before instance ids named their source: "SOURCE\x1fID" from the source (scrape URL, or
 * "push" for push:... sources) that last reported the old id; an id no source names stays as it was
 * (it is pruned in time). Returns the id to use (malloc'd). */
static char *migrate_instance_id(const keymap *old_ids, const char *job, const char *id)
{
    if (strchr(id, MERGE_SOURCE_SEP))
        return xstrdup(id);
    const char *url = merge_lookup(old_ids, job, id);
    if (!url)
        return xstrdup(id);
    const char *src = strncmp(url, "push:", 5) == 0 ? "push" : url;
    size_t sl = strlen(src), il = strlen(id);
    char *out = xmalloc(sl + 1 + il + 1);
    memcpy(out, src, sl);
    out[sl] = MERGE_SOURCE_SEP;
    memcpy(out + sl + 1, id, il + 1);
    return out;
}

void merge_restore(merge_engine *e, const merge_state *st)
{
    keymap old_ids = {0}; /* "job\0old instance id" -> url (borrowed from st) */
    char **old_keys = xcalloc(st->n_sources + 1, sizeof(char *));
    for (size_t i = 0; i < st->n_sources; i++) {
        const merge_source_state *ss = &st->sources[i];
        if (!ss->instance_id || !ss->instance_id[0] || strchr(ss->instance_id, MERGE_SOURCE_SEP))
            continue;
        size_t len;
        old_keys[i] = merge_mkid(ss->job, ss->instance_id, &len, NULL);
        if (!keymap_get(&old_ids, old_keys[i], len))
            keymap_put(&old_ids, old_keys[i], len, ss->url);
    }
    for (size_t i = 0; i < st->n_instances; i++) {
        const merge_instance_state *is = &st->instances[i];
        char *id = migrate_instance_id(&old_ids, is->job, is->instance_id);
        minst *m = merge_minst_get(e, is->job, id);
        free(id);
        m->last_seen = is->last_seen_ms;
        for (size_t k = 0; k < is->n_counts; k++) {
            magg *a = merge_lookup(&e->aggs, is->job, is->counts[k].key);
            if (!a)
                continue;
            icount *ic = merge_icount_find(m, a, true);
            ic->a = a;
            ic->count = count_clamp(is->counts[k].count);
        }
    }
    for (size_t i = 0; i < st->n_sources; i++) {
        const merge_source_state *ss = &st->sources[i];
        msrc *s = merge_lookup(&e->srcs, ss->job, ss->url);
        if (!s) {
            s = xmalloc(sizeof(*s));
            memset(s, 0, sizeof(*s));
            s->id = merge_mkid(ss->job, ss->url, &s->idlen, &s->joblen);
            keymap_put(&e->srcs, s->id, s->idlen, s);
        }
        s->body_hash = ss->body_hash;
        s->last_scrape = ss->last_scrape_ms;
        s->inst = NULL;
        if (ss->instance_id && ss->instance_id[0]) {
            char *id = migrate_instance_id(&old_ids, ss->job, ss->instance_id);
            s->inst = merge_lookup(&e->insts, ss->job, id);
            free(id);
        }
    }
    keymap_free(&old_ids);
    for (size_t i = 0; i < st->n_sources; i++)
        free(old_keys[i]);
    free(old_keys);
}

void merge_state_free(merge_state *st)
{
    for (size_t i = 0; i < st->n_instances; i++) {
        merge_instance_state *is = &st->instances[i];
        free(is->job);
        free(is->instance_id);
        for (size_t k = 0; k < is->n_counts; k++)
            free(is->counts[k].key);
        free(is->counts);
    }
    free(st->instances);
    for (size_t i = 0; i < st->n_sources; i++) {
        free(st->sources[i].job);
        free(st->sources[i].url);
        free(st->sources[i].instance_id);
    }
    free(st->sources);
    memset(st, 0, sizeof(*st));
}
