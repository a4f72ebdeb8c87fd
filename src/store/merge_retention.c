/* store/merge_retention: what the merge engine forgets: pruning instances and sources past retention
 * (merge_prune), deleting aggregates into tombstones and freeing unreferenced ones (merge_expire), and the
 * per-job overflow metric and log line (storage.max_errors_per_job). See merge.h. */
#include "store/merge_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

#define OVERFLOW_LOG_EVERY_MS 60000

void merge_overflow_note(merge_engine *e, const char *job, size_t keys, uint64_t delta, int64_t now_ms)
{
    mjob *j = merge_job_get(e, job);
    j->overflowed_keys += keys;
    static const char *names[] = {"job"};
    metric_family *f = metric_family_get("lookout_errors_overflowed_total", METRIC_COUNTER,
                                         "Count increase of errors beyond storage.max_errors_per_job, counted "
                                         "into the job's lookout.overflow error.",
                                         1, names);
    const char *lv[] = {job};
    metric_add(f, lv, (double)delta);
    if (j->last_log_ms && now_ms - j->last_log_ms < OVERFLOW_LOG_EVERY_MS)
        return;
    char n[32], max[32];
    snprintf(n, sizeof n, "%llu", (unsigned long long)(j->overflowed_keys - j->logged_keys));
    snprintf(max, sizeof max, "%u", e->o.max_errors_per_job);
    log_warn("merge", "job holds storage.max_errors_per_job errors; new keys are counted into " MERGE_OVERFLOW_KEY,
             "job", job, "max_errors_per_job", max, "overflowed_keys", n);
    j->last_log_ms = now_ms;
    j->logged_keys = j->overflowed_keys;
}

size_t merge_prune(merge_engine *e, int64_t now_ms)
{
    int64_t cutoff = now_ms - e->o.retention_ms;
    size_t n = 0, cap = 0;
    void **dead = NULL;
    for (size_t i = 0; i < e->srcs.cap; i++) {
        if (!e->srcs.slots[i].hash)
            continue;
        msrc *s = e->srcs.slots[i].value;
        if (s->inst && s->inst->last_seen < cutoff)
            s->inst = NULL;
        if (s->last_scrape < cutoff) {
            dead = merge_grow(dead, &cap, n, sizeof(void *));
            dead[n++] = s;
        }
    }
    for (size_t i = 0; i < n; i++) {
        msrc *s = dead[i];
        keymap_del(&e->srcs, s->id, s->idlen);
        free(s->id);
        free(s);
    }
    n = 0;
    for (size_t i = 0; i < e->insts.cap; i++) {
        if (!e->insts.slots[i].hash)
            continue;
        minst *m = e->insts.slots[i].value;
        if (m->last_seen < cutoff) {
            /* A derived instance (regrouped key, see merge_one) lives as long as its instance: an
             * unchanged body refreshes only the instance, and forgetting the original key's count would
             * add it again. */
            const char *sep = memchr(m->id + m->joblen + 1, MERGE_DERIVED_SEP, m->idlen - m->joblen - 1);
            if (sep) {
                const minst *base = keymap_get(&e->insts, m->id, (size_t)(sep - m->id));
                if (base && base->last_seen >= cutoff) {
                    m->last_seen = base->last_seen;
                    continue;
                }
            }
            dead = merge_grow(dead, &cap, n, sizeof(void *));
            dead[n++] = m;
        }
    }
    for (size_t i = 0; i < n; i++) {
        minst *m = dead[i];
        keymap_del(&e->insts, m->id, m->idlen);
        merge_minst_free(m);
    }
    free(dead);
    return n;
}

/* Turns a into a tombstone: everything but its id, last_seen and the instances' counts is freed. */
void merge_magg_bury(magg *a)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->samples[i])
            payload_occurrence_unref(a->samples[i]);
    free(a->samples);
    free(a->hashes);
    free(a->ts);
    a->samples = NULL;
    a->hashes = NULL;
    a->ts = NULL;
    a->n = a->cap = 0;
    for (size_t i = 0; i < a->n_labels - a->n_label_ids; i++)
        labelset_free(&a->labels[i]);
    free(a->labels);
    free(a->label_hashes);
    a->labels = NULL;
    a->label_hashes = NULL;
    a->n_labels = a->n_label_ids = 0;
    a->total = 0;
    a->created = PAYLOAD_TS_NONE;
    a->sev = PAYLOAD_ERROR;
    a->expired = true;
}

size_t merge_expire(merge_engine *e, int64_t now_ms, merge_changeset *cs)
{
    int64_t cutoff = now_ms - e->o.retention_ms;
    size_t n = 0;
    for (size_t i = 0; i < e->aggs.cap; i++) {
        if (!e->aggs.slots[i].hash)
            continue;
        magg *a = e->aggs.slots[i].value;
        if (a->expired)
            continue;
        if (a->touched == INT64_MAX) /* restored without any time: the window starts now */
            a->touched = now_ms;
        if (a->touched >= cutoff)
            continue;
        /* A pending change of the aggregate leaves the change set (swap with the last entry). */
        if (a->cs_gen == cs->gen && a->cs_idx < cs->n) {
            size_t idx = a->cs_idx;
            merge_change_free(&cs->v[idx]);
            if (idx != cs->n - 1) {
                cs->v[idx] = cs->v[cs->n - 1];
                magg *moved = merge_lookup(&e->aggs, cs->v[idx].job, cs->v[idx].key);
                if (moved)
                    moved->cs_idx = idx;
            }
            cs->n--;
        }
        a->cs_gen = 0;
        cs->deleted = merge_grow(cs->deleted, &cs->cap_deleted, cs->n_deleted, sizeof(merge_deleted));
        cs->deleted[cs->n_deleted].job = xstrdup(a->id);
        cs->deleted[cs->n_deleted].key = xstrdup(a->id + a->joblen + 1);
        cs->deleted[cs->n_deleted].last_seen_ms = a->last_seen;
        cs->n_deleted++;
        mjob *j = merge_job_get(e, a->id);
        if (j->n_aggs)
            j->n_aggs--;
        merge_magg_bury(a);
        n++;
    }
    /* Pending per-instance counts of the deleted aggregates stay in the change set: a persistent store
     * keeps them with the tombstone. */
    /* Tombstones no instance refers to any more (instances pruned) are freed. */
    size_t tomb = 0;
    for (size_t i = 0; i < e->aggs.cap; i++)
        if (e->aggs.slots[i].hash) {
            magg *a = e->aggs.slots[i].value;
            a->referenced = false;
            tomb += a->expired;
        }
    if (tomb) {
        for (size_t i = 0; i < e->insts.cap; i++) {
            if (!e->insts.slots[i].hash)
                continue;
            minst *m = e->insts.slots[i].value;
            for (size_t k = 0; k < m->cap; k++)
                if (m->slots[k].a)
                    m->slots[k].a->referenced = true;
        }
        size_t nf = 0, cap = 0;
        magg **gone = NULL;
        for (size_t i = 0; i < e->aggs.cap; i++)
            if (e->aggs.slots[i].hash) {
                magg *a = e->aggs.slots[i].value;
                if (a->expired && !a->referenced) {
                    gone = merge_grow(gone, &cap, nf, sizeof(void *));
                    gone[nf++] = a;
                }
            }
        for (size_t k = 0; k < nf; k++) {
            keymap_del(&e->aggs, gone[k]->id, gone[k]->idlen);
            merge_magg_free(gone[k]);
        }
        free(gone);
    }
    return n;
}