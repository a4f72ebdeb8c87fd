/* ingest_writer: the ingest's writer thread (see ingest.c for the queue it drains): takes batches of bodies,
 * parses, scrubs and relabels them, merges them into change sets (ingest_merge_doc), writes those to the
 * store with backoff (isolating changes the store refuses), expires errors past retention and saves the
 * engine's state. */
#include "ingest/ingest_internal.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/xalloc.h"

/* ---- metrics ---- */

static metric_family *m_parse_failures(void)
{
    return metric_family_get("lookout_payload_parse_failures_total", METRIC_COUNTER,
                             "Scraped bodies that could not be parsed as a Periskop payload.", 1, ingest_job_label);
}
static metric_family *m_skipped(void)
{
    return metric_family_get("lookout_payload_skipped_records_total", METRIC_COUNTER,
                             "Malformed aggregates and occurrences skipped inside otherwise valid payloads.", 1,
                             ingest_job_label);
}
static metric_family *m_sample_limit(void)
{
    return metric_family_get("lookout_target_scrapes_exceeded_sample_limit_total", METRIC_COUNTER,
                             "Scrapes that hit the sample limit (more aggregated errors than sample_limit after "
                             "error_relabel_configs) and were rejected.",
                             1, ingest_job_label);
}
static metric_family *m_expired(void)
{
    return metric_family_get("lookout_errors_expired_total", METRIC_COUNTER,
                             "Errors deleted by retention (no new occurrence within storage.retention).", 0, NULL);
}
static metric_family *m_rejected(void)
{
    return metric_family_get("lookout_store_rejected_changes_total", METRIC_COUNTER,
                             "Changes the store refused (a constraint, a value out of range...), logged and "
                             "skipped instead of retried.",
                             1, ingest_job_label);
}
static metric_family *m_write_ok(void)
{
    return metric_family_get("lookout_store_last_write_success_timestamp_seconds", METRIC_GAUGE,
                             "Time of the last successful store write.", 0, NULL);
}
/* Latency: one store write (a batch of changes in one transaction), one body parsed and merged. */
static const double latency_buckets[] = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10};
static metric_family *m_write_duration(void)
{
    return metric_histogram_get("lookout_store_write_duration_seconds",
                                "Duration of store writes (one batch of changes each), failed ones included.", 0,
                                NULL, latency_buckets, sizeof latency_buckets / sizeof *latency_buckets);
}
static metric_family *m_body_duration(void)
{
    return metric_histogram_get("lookout_ingest_body_duration_seconds",
                                "Time the store writer spends on one scraped or pushed body (hash check, parse, "
                                "merge).",
                                0, NULL, latency_buckets, sizeof latency_buckets / sizeof *latency_buckets);
}
static double mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- writer ---- */

static metric_family *m_scrubbed(void)
{
    return metric_family_get("lookout_scrubbed_values_total", METRIC_COUNTER,
                             "Fields of occurrences (URLs, bodies, header values) in which secrets were masked at ingestion.", 1,
                             ingest_job_label);
}

/* Masks the secrets of doc before it is merged, stored, indexed or exported (periskop/scrub.h); returns
 * how many (scrub_account counts them once the document is taken). */
static size_t scrub_only(ingest *in, payload_doc *doc)
{
    pthread_mutex_lock(&in->scrub_mu);
    size_t n = scrub_doc(in->scrub, doc);
    pthread_mutex_unlock(&in->scrub_mu);
    return n;
}

static void scrub_account(const char *job, size_t n)
{
    if (n) {
        const char *lv[] = {job};
        metric_add(m_scrubbed(), lv, (double)n);
    }
}

void ingest_scrub(ingest *in, const char *job, payload_doc *doc)
{
    scrub_account(job, scrub_only(in, doc));
}

/* Writer thread, nothing pending (every document scrubbed with older rules is in the store). */
static void rescrub_store(ingest *in)
{
    pthread_mutex_lock(&in->scrub_mu);
    bool want = in->rescrub;
    in->rescrub = false;
    char err[512] = "";
    /* Under scrub_mu: the rules stay alive; a reload waits for the pass (rare, and it is the reload's). */
    if (want && store_rescrub(in->st, in->scrub, err, sizeof err) != 0) {
        log_error("ingest", "scrubbing the stored samples with the new rules failed", "err", err);
        in->rescrub = true; /* again after the next flush */
    }
    pthread_mutex_unlock(&in->scrub_mu);
}

void ingest_set_scrubbing(ingest *in, const scrubbing_config *sc)
{
    scrub_rules *r = sc ? scrub_rules_new(sc->enabled, sc->headers, sc->n_headers, sc->fields, sc->n_fields)
                        : scrub_rules_default();
    pthread_mutex_lock(&in->scrub_mu);
    scrub_rules *old = in->scrub;
    in->scrub = r;
    in->rescrub = true;
    pthread_mutex_unlock(&in->scrub_mu);
    scrub_rules_free(old);
    /* The writer flushes what it scrubbed with the old rules, then brings the stored samples up to the
     * new ones (store_rescrub; a no-op when they already are). */
    pthread_mutex_lock(&in->mu);
    in->force_flush = true;
    pthread_cond_signal(&in->cond);
    pthread_mutex_unlock(&in->mu);
}

/* The running error_relabel_configs (a reference: one body is parsed and relabeled under the same rules,
 * even when a reload replaces them meanwhile). */
static error_relabel_set *relabel_rules(ingest *in)
{
    pthread_mutex_lock(&in->mu);
    error_relabel_set *s = error_relabel_set_ref(in->erl);
    pthread_mutex_unlock(&in->mu);
    return s;
}

/* error_relabel_configs s of the job (pushed: the push section's) on a parsed document, before merging;
 * false when the job has none. What it did is in *res (error_relabel_account counts it). */
static bool relabel_only(error_relabel_set *s, const char *job, bool pushed, const labelset *labels,
                         payload_doc *doc, error_relabel_result *res)
{
    size_t n;
    const relabel_rule *rules = error_relabel_set_rules(s, job, pushed, &n);
    if (!n)
        return false;
    error_relabel_doc(rules, n, labels, doc, res);
    return true;
}

static void relabel_errors(error_relabel_set *s, const char *job, bool pushed, const labelset *labels,
                           payload_doc *doc)
{
    error_relabel_result res;
    if (relabel_only(s, job, pushed, labels, doc, &res))
        error_relabel_account(job, &res);
}

void ingest_set_error_relabel(ingest *in, error_relabel_set *s)
{
    pthread_mutex_lock(&in->mu);
    error_relabel_set *old = in->erl;
    in->erl = s;
    in->erl_changed = old || s; /* from none to none changes nothing */
    if (in->erl_changed)
        atomic_fetch_add(&in->erl_gen, 1);
    pthread_mutex_unlock(&in->mu);
    error_relabel_set_unref(old);
}

error_relabel_set *ingest_error_relabel(ingest *in)
{
    pthread_mutex_lock(&in->mu);
    error_relabel_set *s = error_relabel_set_ref(in->erl);
    pthread_mutex_unlock(&in->mu);
    return s;
}

static void process_body_inner(ingest *in, item *it, int64_t now, size_t *merged);

/* Processes a body, then publishes the hash the engine now remembers for its target (submit_unchanged). */
static void process_body(ingest *in, item *it, int64_t now, size_t *merged)
{
    uint64_t gen = atomic_load(&in->erl_gen); /* before: rules replaced meanwhile leave the body unpublished */
    process_body_inner(in, it, now, merged);
    if (it->labels) {
        atomic_store(&it->labels->merged_hash, merge_source_body_hash(in->eng, it->job, it->url));
        atomic_store(&it->labels->merged_gen, gen);
    }
}

/* Sightings of unchanged bodies, in the order they were made. */
static void process_seen(ingest *in, sighting *v, size_t n, int64_t now)
{
    for (size_t i = 0; i < n; i++) {
        tlabels *tl = v[i].tl;
        /* Fails only when the engine forgot the source or pruned its instance meanwhile: the next body of
         * the target then goes the whole way (merged afresh, as the writer would have done). */
        if (!merge_body_unchanged(in->eng, tl->key, tl->url, v[i].hash, now))
            atomic_store(&tl->merged_hash, 0);
        ingest_tlabels_unref(tl);
    }
}

static void process_body_inner(ingest *in, item *it, int64_t now, size_t *merged)
{
    const char *lv[] = {it->job, NULL};
    pthread_mutex_lock(&in->mu);
    bool rules_changed = in->erl_changed;
    in->erl_changed = false;
    pthread_mutex_unlock(&in->mu);
    if (rules_changed) { /* new error_relabel_configs: the next body of every target is merged under them */
        merge_forget_body_hashes(in->eng);
        agg_cache_clear(in->aggs);
    }
    if (merge_body_unchanged(in->eng, it->job, it->url, it->body_hash, now)) {
        ingest_report_health(in, it->job, it->target_hash, NULL, it->start_ms, it->duration_s);
        lv[1] = "unchanged";
        metric_add(ingest_m_bodies(), lv, 1);
        pthread_mutex_lock(&in->mu);
        in->status.unchanged_bodies++;
        pthread_mutex_unlock(&in->mu);
        return;
    }
    char err[512];
    /* Aggregates byte-identical to the source's last merged body are not parsed again, unless
     * error_relabel_configs apply (their result depends on the occurrences the reuse leaves out). */
    error_relabel_set *erl = relabel_rules(in);
    size_t n_rules;
    error_relabel_set_rules(erl, it->job, false, &n_rules);
    payload_doc *doc = agg_cache_parse(in->aggs, in->eng, it->job, it->url, it->body, it->len,
                                       in->o.merge.samples_per_error, n_rules == 0, err, sizeof err);
    if (!doc) {
        ingest_report_health(in, it->job, it->target_hash, err, it->start_ms, it->duration_s);
        metric_add(m_parse_failures(), lv, 1);
        lv[1] = "invalid";
        metric_add(ingest_m_bodies(), lv, 1);
        if (in->sx) {
            char msg[1200];
            snprintf(msg, sizeof msg, "invalid payload from job \"%s\" target %s: %s", it->job, it->url, err);
            selfexc_report(in->sx, "scrape-parse-error", "PayloadParseError", msg, PAYLOAD_ERROR, "GET", it->url);
        }
        pthread_mutex_lock(&in->mu);
        in->status.failed_bodies++;
        pthread_mutex_unlock(&in->mu);
        error_relabel_set_unref(erl);
        return;
    }
    labelset fallback = LABELSET_INIT;
    const labelset *labels = it->labels ? &it->labels->ls : NULL;
    if (!labels) { /* target already gone from the map: at least the job */
        labelset_set(&fallback, "job", it->job);
        labels = &fallback;
    }
    /* Secrets are masked before error relabeling reads the occurrences; sample_limit then counts what
     * error_relabel_configs left, as Prometheus counts samples after metric_relabel_configs. */
    size_t scrubbed = scrub_only(in, doc);
    error_relabel_result rr;
    bool relabeled = relabel_only(erl, it->job, false, labels, doc, &rr);
    error_relabel_set_unref(erl);
    if (it->labels && it->labels->sample_limit && doc->n_aggregates > it->labels->sample_limit) {
        /* Prometheus' errSampleLimit: the whole scrape fails and nothing of it is applied or counted (the
         * body hash is not remembered either, so the same body fails again rather than passing as
         * unchanged). */
        ingest_report_health(in, it->job, it->target_hash, "sample limit exceeded", it->start_ms, it->duration_s);
        metric_add(m_sample_limit(), lv, 1);
        char n[32], lim[32];
        snprintf(n, sizeof n, "%zu", doc->n_aggregates);
        snprintf(lim, sizeof lim, "%llu", (unsigned long long)it->labels->sample_limit);
        log_debug("ingest", "sample limit exceeded", "job", it->job, "url", it->url, "aggregates", n, "limit", lim);
        labelset_free(&fallback);
        payload_free(doc);
        lv[1] = "invalid";
        metric_add(ingest_m_bodies(), lv, 1);
        pthread_mutex_lock(&in->mu);
        in->status.failed_bodies++;
        pthread_mutex_unlock(&in->mu);
        return;
    }
    ingest_report_health(in, it->job, it->target_hash, NULL, it->start_ms, it->duration_s);
    scrub_account(it->job, scrubbed);
    if (relabeled)
        error_relabel_account(it->job, &rr);
    size_t skipped = doc->skipped_aggregates + doc->skipped_occurrences;
    if (skipped) {
        metric_add(m_skipped(), lv, (double)skipped);
        log_debug("ingest", "skipped malformed records", "job", it->job, "url", it->url, "first_problem",
                  doc->first_problem);
    }
    ingest_merge_doc(in->eng, it->job, it->url, NULL, labels, doc, it->labels && it->labels->honor_labels,
                     it->body_hash, now, &in->cs);
    if (n_rules) /* relabeled: parsed in full next time */
        agg_cache_forget(in->aggs, it->job, it->url);
    else
        agg_cache_remember(in->aggs, it->job, it->url, doc);
    labelset_free(&fallback);
    payload_free(doc);
    (*merged)++;
    lv[1] = "merged";
    metric_add(ingest_m_bodies(), lv, 1);
    pthread_mutex_lock(&in->mu);
    in->status.merged_bodies++;
    pthread_mutex_unlock(&in->mu);
}

size_t ingest_merge_doc(merge_engine *e, const char *job, const char *url, const char *source,
                        const labelset *labels, const payload_doc *doc, bool honor_labels, uint64_t body_hash,
                        int64_t now_ms, merge_changeset *cs)
{
    bool federated = false;
    for (size_t i = 0; i < doc->n_aggregates && !federated; i++)
        federated = doc->aggregates[i].origin_job != NULL;
    if (!federated) {
        merge_input mi = {.job = job, .url = url, .source = source, .labels = labels, .doc = doc,
                          .body_hash = body_hash, .now_ms = now_ms};
        return merge_apply(e, &mi, cs);
    }
    /* A federated body is never skipped as unchanged (body_hash 0): every scrape is a sighting of each
     * origin instance, so none is pruned while its lower lookout still exports it.
     * Grouping by origin job is linear: a hash map from origin to its group (first-seen order), then one
     * pass placing each aggregate into its group's slice of `part`. */
    size_t n = doc->n_aggregates, changed = 0;
    keymap groups = {0}; /* origin job -> group index + 1 ("" for no origin: origin jobs are never empty) */
    size_t *group_of = xcalloc(n, sizeof *group_of);
    size_t *start = xcalloc(n + 1, sizeof *start); /* per group: count, then start offset */
    const char **origin_of_group = xcalloc(n, sizeof *origin_of_group);
    size_t n_groups = 0;
    for (size_t i = 0; i < n; i++) {
        const char *o = doc->aggregates[i].origin_job ? doc->aggregates[i].origin_job : "";
        size_t len = strlen(o);
        uintptr_t g = (uintptr_t)keymap_get(&groups, o, len);
        if (!g) {
            origin_of_group[n_groups] = doc->aggregates[i].origin_job;
            g = ++n_groups;
            keymap_put(&groups, o, len, (void *)g);
        }
        group_of[i] = g - 1;
        start[g - 1]++;
    }
    keymap_free(&groups);
    size_t off = 0;
    for (size_t g = 0; g < n_groups; g++) {
        size_t c = start[g];
        start[g] = off;
        off += c;
    }
    start[n_groups] = off;
    payload_aggregate *part = xcalloc(n ? n : 1, sizeof *part);
    size_t *fill = xcalloc(n_groups ? n_groups : 1, sizeof *fill);
    for (size_t i = 0; i < n; i++) /* shallow copies: the doc keeps ownership */
        part[start[group_of[i]] + fill[group_of[i]]++] = doc->aggregates[i];
    free(fill);
    free(group_of);
    const char *base = doc->lookout_instance ? doc->lookout_instance : doc->instance_id;
    for (size_t g = 0; g < n_groups; g++) {
        const char *origin = origin_of_group[g];
        payload_doc sub = *doc;
        sub.aggregates = part + start[g];
        sub.n_aggregates = start[g + 1] - start[g];
        labelset ls = LABELSET_INIT;
        if (labels)
            labelset_copy(&ls, labels);
        const char *mjob = job;
        char *iid = NULL;
        if (!origin) {
            iid = xstrdup_or_empty(doc->instance_id);
        } else if (honor_labels) {
            mjob = origin;
            iid = xstrdup_or_empty(base);
            labelset_set(&ls, "job", origin);
        } else {
            size_t l = strlen(base) + strlen(origin) + 2;
            iid = xcalloc(1, l);
            snprintf(iid, l, "%s/%s", base, origin);
            labelset_set(&ls, "exported_job", origin);
        }
        sub.instance_id = iid;
        merge_input mi = {.job = mjob, .url = url, .source = source, .labels = &ls, .doc = &sub, .body_hash = 0,
                          .now_ms = now_ms};
        changed += merge_apply(e, &mi, cs);
        free(iid);
        labelset_free(&ls);
    }
    free(part);
    free(start);
    free(origin_of_group);
    return changed;
}

static void process_push(ingest *in, item *it, int64_t now, size_t *merged)
{
    /* Secrets are masked before anything (error relabeling included) reads the occurrences. */
    ingest_scrub(in, it->job, it->doc);
    error_relabel_set *erl = relabel_rules(in);
    relabel_errors(erl, it->job, true, &it->push_labels, it->doc);
    error_relabel_set_unref(erl);
    /* Origin jobs inside a pushed body stay labels (exported_job): the push names its job. */
    ingest_merge_doc(in->eng, it->job, it->url, "push", &it->push_labels, it->doc, false, 0, now, &in->cs);
    (*merged)++;
    const char *lv[] = {it->job, "pushed"};
    metric_add(ingest_m_bodies(), lv, 1);
    pthread_mutex_lock(&in->mu);
    in->status.merged_bodies++;
    pthread_mutex_unlock(&in->mu);
}

/* Writes the change set. Returns true on success (or nothing to write). */
bool ingest_pending(const ingest *in)
{
    return in->cs.n || in->cs.n_deleted;
}

static void rejected_change(ingest *in, const char *job, const char *key, const char *err)
{
    const char *lv[] = {job};
    metric_add(m_rejected(), lv, 1);
    log_error("ingest", "the store refused a change; skipped (it would fail the same way again)", "job", job, "key",
              key, "err", err);
    if (in->sx) {
        char msg[1024];
        snprintf(msg, sizeof msg, "store refused the change of error \"%.200s\" in job \"%.200s\": %s", key, job, err);
        selfexc_report(in->sx, "store-rejected-change", "StoreError", msg, PAYLOAD_ERROR, NULL, NULL);
    }
}

/* The store refused the change set as a whole (STORE_REJECTED): apply it piece by piece (the retention
 * deletions, then each aggregate's change with its per-instance counts, then counts without a change) and
 * skip only what is refused, logged and metered. A transient failure in the middle ends the pass; what was
 * not applied yet is dropped too (counted as rejected), because re-applying the pieces that did pass would
 * count their increases twice. Returns the number of pieces skipped. */
static size_t flush_isolated(ingest *in, int64_t now)
{
    merge_changeset *cs = &in->cs;
    size_t skipped = 0;
    bool broken = false;
    char err[512];
    if (cs->n_deleted) {
        merge_changeset sub = {.deleted = cs->deleted, .n_deleted = cs->n_deleted};
        if (store_apply(in->st, &sub, now, err, sizeof err) != 0) {
            rejected_change(in, cs->deleted[0].job, "(retention deletions)", err);
            skipped++;
        }
    }
    /* counts grouped by their aggregate's change: order[] lists count indexes change by change */
    keymap idx = {0};
    char **ids = xcalloc(cs->n + 1, sizeof *ids);
    for (size_t i = 0; i < cs->n; i++) {
        size_t jl = strlen(cs->v[i].job), kl = strlen(cs->v[i].key);
        ids[i] = xcalloc(1, jl + kl + 2);
        memcpy(ids[i], cs->v[i].job, jl);
        memcpy(ids[i] + jl + 1, cs->v[i].key, kl);
        keymap_put(&idx, ids[i], jl + 1 + kl, (void *)(uintptr_t)(i + 1));
    }
    size_t *group = xcalloc(cs->n_counts + 1, sizeof *group); /* change index, or cs->n: none */
    size_t *start = xcalloc(cs->n + 2, sizeof *start);
    for (size_t i = 0; i < cs->n_counts; i++) {
        group[i] = cs->n;
        if (cs->counts[i].key) {
            size_t jl = strlen(cs->counts[i].job), kl = strlen(cs->counts[i].key);
            char *id = xcalloc(1, jl + kl + 2);
            memcpy(id, cs->counts[i].job, jl);
            memcpy(id + jl + 1, cs->counts[i].key, kl);
            uintptr_t g = (uintptr_t)keymap_get(&idx, id, jl + 1 + kl);
            free(id);
            if (g)
                group[i] = g - 1;
        }
        start[group[i] + 1]++;
    }
    for (size_t g = 0; g <= cs->n; g++)
        start[g + 1] += start[g];
    merge_count_change *sorted = xcalloc(cs->n_counts + 1, sizeof *sorted);
    size_t *fill = xcalloc(cs->n + 1, sizeof *fill);
    for (size_t i = 0; i < cs->n_counts; i++) /* shallow copies: cs keeps ownership */
        sorted[start[group[i]] + fill[group[i]]++] = cs->counts[i];
    for (size_t g = 0; g <= cs->n; g++) {
        merge_changeset sub = {.v = g < cs->n ? &cs->v[g] : NULL, .n = g < cs->n ? 1 : 0,
                               .counts = sorted + start[g], .n_counts = start[g + 1] - start[g]};
        if (!sub.n && !sub.n_counts)
            continue;
        const char *job = g < cs->n ? cs->v[g].job : sub.counts[0].job;
        const char *key = g < cs->n ? cs->v[g].key : "(instance counts)";
        if (broken) {
            rejected_change(in, job, key, "not applied: the store failed while isolating a refused change");
            skipped++;
            continue;
        }
        int rc = store_apply(in->st, &sub, now, err, sizeof err);
        if (rc == STORE_REJECTED) {
            rejected_change(in, job, key, err);
            skipped++;
        } else if (rc != 0) {
            broken = true;
            rejected_change(in, job, key, err);
            skipped++;
        }
    }
    keymap_free(&idx);
    for (size_t i = 0; i < cs->n; i++)
        free(ids[i]);
    free(ids);
    free(group);
    free(start);
    free(sorted);
    free(fill);
    return skipped;
}

static bool flush(ingest *in, int64_t now)
{
    if (!ingest_pending(in))
        return true;
    char err[512] = "";
    double t0 = mono_seconds();
    int rc = store_apply(in->st, &in->cs, now, err, sizeof err);
    metric_observe(m_write_duration(), NULL, mono_seconds() - t0);
    if (rc == STORE_REJECTED) {
        /* Never retried as a whole: that would wedge the writer for good. */
        size_t skipped = flush_isolated(in, now);
        char n[32];
        snprintf(n, sizeof n, "%zu", skipped);
        log_warn("ingest", "store refused part of a write; the rest was written", "skipped", n, "err", err);
        rc = 0;
    }
    pthread_mutex_lock(&in->mu);
    if (rc == 0) {
        in->status.last_write_ok_ms = now;
        in->status.last_error[0] = 0;
        in->status.backlog_changes = 0;
    } else {
        in->status.write_failures++;
        snprintf(in->status.last_error, sizeof in->status.last_error, "%.250s", err);
        in->status.backlog_changes = in->cs.n;
    }
    pthread_mutex_unlock(&in->mu);
    if (rc == 0) {
        merge_changeset_clear(&in->cs);
        metric_set(m_write_ok(), NULL, (double)now / 1000.0);
        metric_set(ingest_m_backlog(), NULL, 0);
        return true;
    }
    metric_add(ingest_m_write_failures(), NULL, 1);
    metric_set(ingest_m_backlog(), NULL, (double)in->cs.n);
    char n[32];
    snprintf(n, sizeof n, "%zu", in->cs.n);
    log_error("ingest", "store write failed; keeping the changes and retrying", "backend", in->st->ops->name,
              "backlog", n, "err", err);
    if (in->sx)
        selfexc_report(in->sx, "store-write-error", "StoreError", err, PAYLOAD_ERROR, NULL, NULL);
    return false;
}

static void save_state(ingest *in, int64_t now)
{
    merge_prune(in->eng, now);
    merge_state st;
    merge_snapshot(in->eng, &st);
    char err[512] = "";
    if (store_save_state(in->st, &st, err, sizeof err) != 0) {
        log_error("ingest", "saving the per-target state failed", "err", err);
        if (in->sx)
            selfexc_report(in->sx, "store-state-error", "StoreError", err, PAYLOAD_ERROR, NULL, NULL);
    }
    merge_state_free(&st);
}

/* Giving freed memory back (malloc_trim). A burst of bodies (the first interval, when every body is new; a
 * fleet that changes at once; a writer that fell behind) and the state snapshot leave many freed chunks in
 * the writer's and the scrape loop's malloc arenas: glibc keeps them (it only trims the top of an arena),
 * so that RSS stayed at the burst's level for good (measured with bench/fleet_memory.sh at 10,000
 * targets: 7-30 MiB held). The writer trims every arena once TRIM_BYTES of bodies went through it since
 * the last trim, at most every TRIM_EVERY_MS, and after each snapshot: at 10 % churn of ~25 KB bodies,
 * every ~20 s, a few ms each. */
#define TRIM_BYTES (32u << 20)
#define TRIM_EVERY_MS 10000

void ingest_abs_deadline(struct timespec *ts, int64_t ms)
{
    ts->tv_sec = ms / 1000;
    ts->tv_nsec = (long)(ms % 1000) * 1000000;
}

void *ingest_writer_main(void *arg)
{
    ingest *in = arg;
    int64_t first_pending = 0, retry_at = 0, backoff = 1000;
    int64_t next_snapshot = ingest_now_ms() + in->o.snapshot_interval_ms;
    /* Retention of errors: at least every minute, and every half window when the window is shorter. */
    int64_t expire_every = in->o.merge.retention_ms > 0 && in->o.merge.retention_ms / 2 < 60000
                               ? (in->o.merge.retention_ms / 2 > 0 ? in->o.merge.retention_ms / 2 : 1)
                               : 60000;
    int64_t next_expire = ingest_now_ms() + expire_every;
    size_t since_flush = 0;
    uint64_t processed_seq = 0;
    sighting *seen = NULL;
    size_t cap_seen = 0;
    size_t since_trim = 0; /* body bytes processed since the last malloc_trim */
    int64_t last_trim = 0;
    for (;;) {
        pthread_mutex_lock(&in->mu);
        while (!in->stopping && !in->force_flush && in->n_seen < SEEN_WAKE) {
            int64_t now = ingest_now_ms();
            int64_t deadline = next_snapshot < next_expire ? next_snapshot : next_expire;
            if (in->head) { /* a batch is gathering (see "Wake-ups" at the top) */
                int64_t d = in->first_enq_ms + BATCH_MS;
                if (now >= d || in->bytes >= in->o.queue_bytes / 8)
                    break;
                if (d < deadline)
                    deadline = d;
            }
            if (ingest_pending(in)) {
                int64_t f = first_pending + in->o.flush_interval_ms;
                if (retry_at > f)
                    f = retry_at;
                if (f < deadline)
                    deadline = f;
            }
            if (now >= deadline)
                break;
            struct timespec ts;
            ingest_abs_deadline(&ts, deadline);
            pthread_cond_timedwait(&in->cond, &in->mu, &ts);
        }
        item *list = in->head;
        in->head = in->tail = NULL;
        in->n_items = 0;
        in->bytes = 0;
        sighting *sv = in->seen; /* swap with the writer's spare array */
        size_t n_seen = in->n_seen, sv_cap = in->cap_seen;
        in->seen = seen;
        in->cap_seen = cap_seen;
        in->n_seen = 0;
        seen = sv;
        cap_seen = sv_cap;
        bool stopping = in->stopping, force = in->force_flush;
        in->force_flush = false;
        pthread_mutex_unlock(&in->mu);
        metric_set(ingest_m_queue_bytes(), NULL, 0);

        int64_t now = ingest_now_ms();
        if (now >= next_expire) {
            bool was = ingest_pending(in);
            size_t gone = merge_expire(in->eng, now, &in->cs);
            if (gone) {
                char n[32];
                snprintf(n, sizeof n, "%zu", gone);
                log_info("ingest", "retention deleted errors with no new occurrence", "errors", n);
                metric_add(m_expired(), NULL, (double)gone);
                if (!was)
                    first_pending = now;
            }
            next_expire = now + expire_every;
        }
        process_seen(in, seen, n_seen, now);
        for (item *it = list; it;) {
            item *next = it->next;
            bool before = ingest_pending(in);
            double t0 = mono_seconds();
            if (it->kind == ITEM_FORGET) {
                merge_forget_source(in->eng, it->job, it->url);
                agg_cache_forget(in->aggs, it->job, it->url);
            }
            else if (it->kind == ITEM_PUSH)
                process_push(in, it, now, &since_flush);
            else
                process_body(in, it, now, &since_flush);
            if (it->kind != ITEM_FORGET)
                metric_observe(m_body_duration(), NULL, mono_seconds() - t0);
            if (!before && ingest_pending(in))
                first_pending = now;
            if (it->seq > processed_seq)
                processed_seq = it->seq;
            since_trim += it->len;
            ingest_item_free(it);
            it = next;
        }

        now = ingest_now_ms();
        if (ingest_pending(in) && now >= retry_at &&
            (force || stopping || since_flush >= in->o.batch_bodies || now - first_pending >= in->o.flush_interval_ms)) {
            since_flush = 0;
            if (flush(in, now)) {
                backoff = 1000;
                retry_at = 0;
            } else {
                retry_at = now + backoff;
                backoff = backoff * 2 > in->o.max_backoff_ms ? in->o.max_backoff_ms : backoff * 2;
            }
        }
        if (!ingest_pending(in))
            rescrub_store(in);
        if (now >= next_snapshot || stopping) {
            /* Only with nothing pending: a saved body hash must never be ahead of the counts in the store,
             * or after a crash the unchanged body would be skipped and its unsaved delta lost. */
            if (!ingest_pending(in)) {
                save_state(in, now);
                char err[512] = "";
                if (store_maintain(in->st, now, err, sizeof err) != 0) /* retention; rate-limited by the store */
                    log_error("ingest", "store retention failed", "err", err);
            }
            next_snapshot = now + in->o.snapshot_interval_ms;
            since_trim = TRIM_BYTES; /* the snapshot's copy of the state is freed: trim now */
            last_trim = 0;
        }
        if (since_trim >= TRIM_BYTES && now - last_trim >= TRIM_EVERY_MS && !stopping) {
            malloc_trim(0);
            since_trim = 0;
            last_trim = now;
        }
        pthread_mutex_lock(&in->mu);
        /* Settled: everything processed so far is in the store, or the store is failing (retrying). */
        if (!ingest_pending(in) || retry_at > 0)
            in->done_seq = processed_seq;
        if (!ingest_pending(in))
            in->stored_seq = processed_seq;
        bool done = stopping && !in->head;
        pthread_cond_broadcast(&in->done_cond);
        pthread_mutex_unlock(&in->mu);
        if (done)
            break;
    }
    free(seen);
    return NULL;
}
