/* ingest: see ingest.h.
 *
 * Queue: a doubly linked list under one mutex, so that dropping a superseded body in the middle is O(1)
 * once found. The writer takes the whole list at once and works without the lock; producers (the loop
 * thread) never wait for parsing or storage.
 *
 * Target labels are shared, reference-counted label sets: the map holds one reference, every queued
 * body another, so a body that outlives its target (removed while queued) still carries its labels.
 *
 * Unchanged bodies never reach the queue: the target's entry also carries the body hash the merge engine
 * remembers for it (published by the writer after each body) and the number of its bodies still queued.
 * When nothing of the target is queued and the new body has that hash, the writer would only have found
 * it unchanged: ingest_submit reports the target up and counts the body at once, and leaves the writer a
 * 16-byte sighting (merge_body_unchanged keeps the instance from being pruned) in an array the writer
 * takes with its next batch, before the queued bodies (a sighting is only made when none of its target's
 * bodies is queued, so order per target is kept). No copy, no wake-up, no parse.
 *
 * Wake-ups: a producer signals the writer only when the queue goes from empty to non-empty (or is
 * getting full, or someone waits: sync, push); the writer then collects bodies for up to BATCH_MS before
 * taking the whole queue, so one wake-up serves a batch rather than one body. */
#include "ingest/ingest.h"
#include "ingest/agg_cache.h"
#include "ingest/error_relabel.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "periskop/scrub.h"
#include "util/keymap.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

#define DEFAULT_QUEUE_BYTES (256u * 1024 * 1024)
#define DEFAULT_FLUSH_MS 1000
#define DEFAULT_BATCH 2000
#define DEFAULT_SNAPSHOT_MS 60000
#define DEFAULT_MAX_BACKOFF_MS 60000
#define BATCH_MS 50          /* how long the writer lets a batch of bodies gather after the first one */
#define SEEN_WAKE 65536      /* pending sightings that wake the writer (bounds their memory) */

typedef struct tlabels {
    atomic_int refs;
    char *key; /* "job\0" + 8 hash bytes (the map's key) */
    size_t klen;
    labelset ls; /* public labels */
    bool honor_labels; /* the job's honor_labels: how federated bodies are merged */
    char *url;         /* the target's scrape URL (the merge engine's source) */
    _Atomic uint64_t merged_hash; /* merge_source_body_hash after the writer's last body of it; 0 none */
    _Atomic uint64_t merged_gen;  /* the error relabel generation that body was merged under */
    atomic_int pending;           /* its bodies queued or being processed */
    uint64_t sample_limit; /* the job's sample_limit (0 = none) */
} tlabels;

typedef struct sighting {
    tlabels *tl; /* reference */
    uint64_t hash;
} sighting;

typedef enum item_kind { ITEM_BODY, ITEM_FORGET, ITEM_PUSH } item_kind;

typedef struct item {
    item_kind kind;
    char *job, *url;
    uint64_t target_hash;
    tlabels *labels; /* reference or NULL */
    char *body;
    size_t len, cost;
    uint64_t body_hash, seq;
    int64_t start_ms;
    double duration_s;
    payload_doc *doc;     /* ITEM_PUSH: parsed by the pusher's thread */
    labelset push_labels; /* ITEM_PUSH: {job, instance} */
    struct item *prev, *next;
} item;

struct ingest {
    store *st;
    target_manager *tm;
    selfexc *sx;
    ingest_options o;
    merge_engine *eng; /* writer thread only (after start) */
    agg_cache *aggs;   /* writer thread only: each source's last merged aggregates, for payload_parse_reuse */
    merge_changeset cs;

    pthread_mutex_t mu;
    pthread_cond_t cond, done_cond;
    item *head, *tail;
    size_t n_items, bytes;
    uint64_t enq_seq, done_seq;
    uint64_t stored_seq; /* every item up to it is merged and written (not merely retrying) */
    bool stopping, force_flush, started;
    pthread_t thread;
    ingest_status status; /* guarded by mu */

    pthread_mutex_t labels_mu;
    error_relabel_set *erl; /* error_relabel_configs of the running configuration; guarded by mu */
    bool erl_changed;       /* a reload replaced them: unchanged bodies must be merged again; guarded by mu */
    _Atomic uint64_t erl_gen; /* counts those replacements: the fast path skips only bodies merged under the
                               * current rules */
    keymap labels;
    pthread_mutex_t scrub_mu; /* scrub, rescrub: replaced by reloads, used by the writer */
    scrub_rules *scrub;
    bool rescrub; /* the store's samples are to be scrubbed with scrub once nothing is pending */

    sighting *seen; /* unchanged bodies decided by ingest_submit (guarded by mu) */
    size_t n_seen, cap_seen;
    int64_t first_enq_ms; /* when the queue last went from empty to non-empty (guarded by mu) */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- metrics ---- */

static const char *job_label[] = {"job"};

static metric_family *m_parse_failures(void)
{
    return metric_family_get("lookout_payload_parse_failures_total", METRIC_COUNTER,
                             "Scraped bodies that could not be parsed as a Periskop payload.", 1, job_label);
}
static metric_family *m_skipped(void)
{
    return metric_family_get("lookout_payload_skipped_records_total", METRIC_COUNTER,
                             "Malformed aggregates and occurrences skipped inside otherwise valid payloads.", 1,
                             job_label);
}
static metric_family *m_sample_limit(void)
{
    return metric_family_get("lookout_target_scrapes_exceeded_sample_limit_total", METRIC_COUNTER,
                             "Scrapes that hit the sample limit (more aggregated errors than sample_limit) and "
                             "were rejected.",
                             1, job_label);
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
                             1, job_label);
}
static metric_family *m_dropped(void)
{
    return metric_family_get("lookout_ingest_dropped_bodies_total", METRIC_COUNTER,
                             "Scraped bodies dropped because the ingest queue was full.", 1, job_label);
}
static metric_family *m_backlog(void)
{
    return metric_family_get("lookout_store_backlog_changes", METRIC_GAUGE,
                             "Merged aggregate changes not yet written to the store.", 0, NULL);
}
static metric_family *m_write_failures(void)
{
    return metric_family_get("lookout_store_write_failures_total", METRIC_COUNTER,
                             "Failed store writes (retried with backoff).", 0, NULL);
}
static metric_family *m_write_ok(void)
{
    return metric_family_get("lookout_store_last_write_success_timestamp_seconds", METRIC_GAUGE,
                             "Time of the last successful store write.", 0, NULL);
}
static metric_family *m_queue_bytes(void)
{
    return metric_family_get("lookout_ingest_queue_bytes", METRIC_GAUGE,
                             "Bytes of scraped bodies waiting for the store writer.", 0, NULL);
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

static metric_family *m_bodies(void)
{
    static const char *names[] = {"job", "result"};
    return metric_family_get("lookout_ingest_bodies_total", METRIC_COUNTER,
                             "Scraped bodies handled by ingest, by result (unchanged, merged, "
                             "invalid).",
                             2, names);
}

/* tm may be NULL (tests, benchmarks). */
static void report_health(ingest *in, const char *job, uint64_t hash, const char *error, int64_t start_ms,
                          double duration_s)
{
    if (in->tm)
        targets_report_scrape(in->tm, job, hash, error, start_ms, duration_s);
}

/* ---- labels map ---- */

static size_t labels_key(char *buf, size_t cap, const char *job, uint64_t hash)
{
    size_t j = strlen(job);
    if (j + 1 + 8 > cap)
        j = cap - 9;
    memcpy(buf, job, j);
    buf[j] = 0;
    memcpy(buf + j + 1, &hash, 8);
    return j + 9;
}

static void tlabels_unref(tlabels *t)
{
    if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    labelset_free(&t->ls);
    free(t->key);
    free(t->url);
    free(t);
}

static tlabels *labels_get(ingest *in, const char *job, uint64_t hash)
{
    char key[512];
    size_t kl = labels_key(key, sizeof key, job, hash);
    pthread_mutex_lock(&in->labels_mu);
    tlabels *t = keymap_get(&in->labels, key, kl);
    if (t)
        atomic_fetch_add(&t->refs, 1);
    pthread_mutex_unlock(&in->labels_mu);
    return t;
}

/* ---- queue ---- */

static void item_free(item *it)
{
    if (it->kind == ITEM_BODY && it->labels)
        atomic_fetch_sub(&it->labels->pending, 1);
    free(it->job);
    free(it->url);
    free(it->body);
    tlabels_unref(it->labels);
    payload_free(it->doc);
    labelset_free(&it->push_labels);
    free(it);
}

static void unlink_item(ingest *in, item *it)
{
    if (it->prev)
        it->prev->next = it->next;
    else
        in->head = it->next;
    if (it->next)
        it->next->prev = it->prev;
    else
        in->tail = it->prev;
    in->n_items--;
    in->bytes -= it->cost;
}

static void push_item(ingest *in, item *it)
{
    if (!in->head)
        in->first_enq_ms = now_ms();
    it->prev = in->tail;
    it->next = NULL;
    if (in->tail)
        in->tail->next = it;
    else
        in->head = it;
    in->tail = it;
    in->n_items++;
    in->bytes += it->cost;
}

static void drop_item(ingest *in, item *it)
{
    unlink_item(in, it);
    in->status.dropped_bodies++;
    const char *lv[] = {it->job};
    metric_add(m_dropped(), lv, 1);
    item_free(it);
}

/* Makes room for `cost` bytes: the same target's oldest pending body first, then the oldest bodies. */
static bool make_room(ingest *in, const char *job, uint64_t hash, size_t cost)
{
    if (cost > in->o.queue_bytes)
        return false;
    if (in->bytes + cost <= in->o.queue_bytes)
        return true;
    for (item *it = in->head; it; it = it->next) {
        if (it->kind == ITEM_BODY && it->target_hash == hash && strcmp(it->job, job) == 0) {
            drop_item(in, it);
            break;
        }
    }
    item *it = in->head;
    while (in->bytes + cost > in->o.queue_bytes && it) {
        item *next = it->next;
        if (it->kind == ITEM_BODY)
            drop_item(in, it);
        it = next;
    }
    return in->bytes + cost <= in->o.queue_bytes;
}

static void enqueue(ingest *in, item *it)
{
    pthread_mutex_lock(&in->mu);
    if (it->kind == ITEM_BODY && !make_room(in, it->job, it->target_hash, it->cost)) {
        in->status.dropped_bodies++;
        const char *lv[] = {it->job};
        metric_add(m_dropped(), lv, 1);
        pthread_mutex_unlock(&in->mu);
        item_free(it);
        return;
    }
    it->seq = ++in->enq_seq;
    push_item(in, it);
    metric_set(m_queue_bytes(), NULL, (double)in->bytes);
    if (in->n_items == 1 || in->bytes >= in->o.queue_bytes / 8) /* see "Wake-ups" at the top */
        pthread_cond_signal(&in->cond);
    pthread_mutex_unlock(&in->mu);
}

/* The fast path of an unchanged body (see the top): true when it was handled here. */
static bool submit_unchanged(ingest *in, const scrape_result *r, tlabels *tl, uint64_t body_hash)
{
    if (!tl || atomic_load(&tl->pending) != 0 || atomic_load(&tl->merged_hash) != body_hash ||
        atomic_load(&tl->merged_gen) != atomic_load(&in->erl_gen) ||
        strcmp(tl->url, r->url) != 0 || strcmp(tl->key, r->job) != 0) /* key: job cut at 503 bytes */
        return false;
    report_health(in, r->job, r->hash, NULL, r->start_ms, r->duration_s);
    const char *lv[] = {r->job, "unchanged"};
    metric_add(m_bodies(), lv, 1);
    pthread_mutex_lock(&in->mu);
    if (in->n_seen == in->cap_seen) {
        in->cap_seen = in->cap_seen ? in->cap_seen * 2 : 1024;
        in->seen = xrealloc(in->seen, in->cap_seen * sizeof *in->seen);
    }
    in->seen[in->n_seen++] = (sighting){.tl = tl, .hash = body_hash}; /* takes the reference */
    in->status.unchanged_bodies++;
    if (in->n_seen >= SEEN_WAKE)
        pthread_cond_signal(&in->cond);
    pthread_mutex_unlock(&in->mu);
    return true;
}

void ingest_submit(void *ctx, const scrape_result *r)
{
    ingest *in = ctx;
    if (r->error || !r->body) {
        const char *e = r->error ? r->error : "no body";
        report_health(in, r->job, r->hash, e, r->start_ms, r->duration_s);
        if (in->sx) {
            char msg[1024];
            snprintf(msg, sizeof msg, "scrape of job \"%s\" target %s failed: %s", r->job, r->url, e);
            selfexc_report(in->sx, "scrape-error", "ScrapeError", msg, PAYLOAD_ERROR, "GET", r->url);
        }
        return;
    }
    uint64_t body_hash = merge_body_hash(r->body, r->body_len);
    tlabels *tl = labels_get(in, r->job, r->hash);
    if (submit_unchanged(in, r, tl, body_hash))
        return;
    item *it = xcalloc(1, sizeof *it);
    it->kind = ITEM_BODY;
    it->job = xstrdup_or_empty(r->job);
    it->url = xstrdup_or_empty(r->url);
    it->target_hash = r->hash;
    it->labels = tl;
    if (tl)
        atomic_fetch_add(&tl->pending, 1); /* item_free takes it back */
    it->body_hash = body_hash;
    it->body = malloc(r->body_len + 1);
    if (!it->body)
        abort();
    memcpy(it->body, r->body, r->body_len);
    it->body[r->body_len] = 0;
    it->len = r->body_len;
    it->cost = r->body_len + strlen(r->job) + strlen(r->url) + sizeof(item);
    it->start_ms = r->start_ms;
    it->duration_s = r->duration_s;
    enqueue(in, it);
}

void ingest_target_event(ingest *in, target_event ev, const char *job, const built_target *t, bool honor_labels,
                         uint64_t sample_limit)
{
    char key[512];
    size_t kl = labels_key(key, sizeof key, job, t->hash);
    pthread_mutex_lock(&in->labels_mu);
    tlabels *old = keymap_del(&in->labels, key, kl);
    if (ev != TARGET_REMOVED) {
        tlabels *n = xcalloc(1, sizeof *n);
        atomic_init(&n->refs, 1);
        n->key = malloc(kl);
        if (!n->key)
            abort();
        memcpy(n->key, key, kl);
        n->klen = kl;
        n->honor_labels = honor_labels;
        n->url = xstrdup_or_empty(t->url);
        atomic_init(&n->merged_hash, 0);
        atomic_init(&n->merged_gen, 0);
        atomic_init(&n->pending, 0);
        n->sample_limit = sample_limit;
        target_public_labels(&t->labels, &n->ls);
        keymap_put(&in->labels, n->key, n->klen, n);
    }
    pthread_mutex_unlock(&in->labels_mu);
    tlabels_unref(old);
    if (ev == TARGET_REMOVED && t->url) {
        item *it = xcalloc(1, sizeof *it);
        it->kind = ITEM_FORGET;
        it->job = xstrdup_or_empty(job);
        it->url = xstrdup_or_empty(t->url);
        it->target_hash = t->hash;
        it->cost = sizeof(item);
        enqueue(in, it);
    }
}

/* ---- writer ---- */

static metric_family *m_scrubbed(void)
{
    return metric_family_get("lookout_scrubbed_values_total", METRIC_COUNTER,
                             "Fields of occurrences (URLs, bodies, header values) in which secrets were masked at ingestion.", 1,
                             job_label);
}

/* Masks secrets before the document is merged, stored, indexed or exported (periskop/scrub.h). */
static void scrub(ingest *in, const char *job, payload_doc *doc)
{
    pthread_mutex_lock(&in->scrub_mu);
    size_t n = scrub_doc(in->scrub, doc);
    pthread_mutex_unlock(&in->scrub_mu);
    if (n) {
        const char *lv[] = {job};
        metric_add(m_scrubbed(), lv, (double)n);
    }
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

/* error_relabel_configs of the job (pushed: the push section's) on a parsed document, before merging. */
static bool relabel_errors(ingest *in, const char *job, bool pushed, const labelset *labels, payload_doc *doc)
{
    pthread_mutex_lock(&in->mu);
    error_relabel_set *s = error_relabel_set_ref(in->erl);
    pthread_mutex_unlock(&in->mu);
    size_t n;
    const relabel_rule *rules = error_relabel_set_rules(s, job, pushed, &n);
    if (n) {
        error_relabel_result res;
        error_relabel_doc(rules, n, labels, doc, &res);
        error_relabel_account(job, &res);
    }
    error_relabel_set_unref(s);
    return n > 0;
}

/* Whether error_relabel_configs apply to scraped bodies of job. */
static bool job_has_rules(ingest *in, const char *job)
{
    pthread_mutex_lock(&in->mu);
    error_relabel_set *s = error_relabel_set_ref(in->erl);
    pthread_mutex_unlock(&in->mu);
    size_t n;
    error_relabel_set_rules(s, job, false, &n);
    error_relabel_set_unref(s);
    return n > 0;
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
        tlabels_unref(tl);
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
        report_health(in, it->job, it->target_hash, NULL, it->start_ms, it->duration_s);
        lv[1] = "unchanged";
        metric_add(m_bodies(), lv, 1);
        pthread_mutex_lock(&in->mu);
        in->status.unchanged_bodies++;
        pthread_mutex_unlock(&in->mu);
        return;
    }
    char err[512];
    /* Aggregates byte-identical to the source's last merged body are not parsed again, unless
     * error_relabel_configs apply (their result depends on the occurrences the reuse leaves out). */
    bool rules = job_has_rules(in, it->job);
    payload_doc *doc = agg_cache_parse(in->aggs, in->eng, it->job, it->url, it->body, it->len,
                                       in->o.merge.samples_per_error, !rules, err, sizeof err);
    if (!doc) {
        report_health(in, it->job, it->target_hash, err, it->start_ms, it->duration_s);
        metric_add(m_parse_failures(), lv, 1);
        lv[1] = "invalid";
        metric_add(m_bodies(), lv, 1);
        if (in->sx) {
            char msg[1200];
            snprintf(msg, sizeof msg, "invalid payload from job \"%s\" target %s: %s", it->job, it->url, err);
            selfexc_report(in->sx, "scrape-parse-error", "PayloadParseError", msg, PAYLOAD_ERROR, "GET", it->url);
        }
        pthread_mutex_lock(&in->mu);
        in->status.failed_bodies++;
        pthread_mutex_unlock(&in->mu);
        return;
    }
    if (it->labels && it->labels->sample_limit && doc->n_aggregates > it->labels->sample_limit) {
        /* Prometheus' errSampleLimit: the whole scrape fails and nothing of it is applied (the body hash
         * is not remembered either, so the same body fails again rather than passing as unchanged). */
        report_health(in, it->job, it->target_hash, "sample limit exceeded", it->start_ms, it->duration_s);
        metric_add(m_sample_limit(), lv, 1);
        char n[32], lim[32];
        snprintf(n, sizeof n, "%zu", doc->n_aggregates);
        snprintf(lim, sizeof lim, "%llu", (unsigned long long)it->labels->sample_limit);
        log_debug("ingest", "sample limit exceeded", "job", it->job, "url", it->url, "aggregates", n, "limit", lim);
        payload_free(doc);
        lv[1] = "invalid";
        metric_add(m_bodies(), lv, 1);
        pthread_mutex_lock(&in->mu);
        in->status.failed_bodies++;
        pthread_mutex_unlock(&in->mu);
        return;
    }
    report_health(in, it->job, it->target_hash, NULL, it->start_ms, it->duration_s);
    scrub(in, it->job, doc);
    size_t skipped = doc->skipped_aggregates + doc->skipped_occurrences;
    if (skipped) {
        metric_add(m_skipped(), lv, (double)skipped);
        log_debug("ingest", "skipped malformed records", "job", it->job, "url", it->url, "first_problem",
                  doc->first_problem);
    }
    labelset fallback = LABELSET_INIT;
    const labelset *labels = it->labels ? &it->labels->ls : NULL;
    if (!labels) { /* target already gone from the map: at least the job */
        labelset_set(&fallback, "job", it->job);
        labels = &fallback;
    }
    rules = relabel_errors(in, it->job, false, labels, doc);
    ingest_merge_doc(in->eng, it->job, it->url, NULL, labels, doc, it->labels && it->labels->honor_labels,
                     it->body_hash, now, &in->cs);
    if (rules) /* relabeled: parsed in full next time */
        agg_cache_forget(in->aggs, it->job, it->url);
    else
        agg_cache_remember(in->aggs, it->job, it->url, doc);
    labelset_free(&fallback);
    payload_free(doc);
    (*merged)++;
    lv[1] = "merged";
    metric_add(m_bodies(), lv, 1);
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
    scrub(in, it->job, it->doc);
    relabel_errors(in, it->job, true, &it->push_labels, it->doc);
    /* Origin jobs inside a pushed body stay labels (exported_job): the push names its job. */
    ingest_merge_doc(in->eng, it->job, it->url, "push", &it->push_labels, it->doc, false, 0, now, &in->cs);
    (*merged)++;
    const char *lv[] = {it->job, "pushed"};
    metric_add(m_bodies(), lv, 1);
    pthread_mutex_lock(&in->mu);
    in->status.merged_bodies++;
    pthread_mutex_unlock(&in->mu);
}

/* Writes the change set. Returns true on success (or nothing to write). */
static bool pending(const ingest *in)
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
    if (!pending(in))
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
        metric_set(m_backlog(), NULL, 0);
        return true;
    }
    metric_add(m_write_failures(), NULL, 1);
    metric_set(m_backlog(), NULL, (double)in->cs.n);
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

static void abs_deadline(struct timespec *ts, int64_t ms)
{
    ts->tv_sec = ms / 1000;
    ts->tv_nsec = (long)(ms % 1000) * 1000000;
}

static void *writer_main(void *arg)
{
    ingest *in = arg;
    int64_t first_pending = 0, retry_at = 0, backoff = 1000;
    int64_t next_snapshot = now_ms() + in->o.snapshot_interval_ms;
    /* Retention of errors: at least every minute, and every half window when the window is shorter. */
    int64_t expire_every = in->o.merge.retention_ms > 0 && in->o.merge.retention_ms / 2 < 60000
                               ? (in->o.merge.retention_ms / 2 > 0 ? in->o.merge.retention_ms / 2 : 1)
                               : 60000;
    int64_t next_expire = now_ms() + expire_every;
    size_t since_flush = 0;
    uint64_t processed_seq = 0;
    sighting *seen = NULL;
    size_t cap_seen = 0;
    for (;;) {
        pthread_mutex_lock(&in->mu);
        while (!in->stopping && !in->force_flush && in->n_seen < SEEN_WAKE) {
            int64_t now = now_ms();
            int64_t deadline = next_snapshot < next_expire ? next_snapshot : next_expire;
            if (in->head) { /* a batch is gathering (see "Wake-ups" at the top) */
                int64_t d = in->first_enq_ms + BATCH_MS;
                if (now >= d || in->bytes >= in->o.queue_bytes / 8)
                    break;
                if (d < deadline)
                    deadline = d;
            }
            if (pending(in)) {
                int64_t f = first_pending + in->o.flush_interval_ms;
                if (retry_at > f)
                    f = retry_at;
                if (f < deadline)
                    deadline = f;
            }
            if (now >= deadline)
                break;
            struct timespec ts;
            abs_deadline(&ts, deadline);
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
        metric_set(m_queue_bytes(), NULL, 0);

        int64_t now = now_ms();
        if (now >= next_expire) {
            bool was = pending(in);
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
            bool before = pending(in);
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
            if (!before && pending(in))
                first_pending = now;
            if (it->seq > processed_seq)
                processed_seq = it->seq;
            item_free(it);
            it = next;
        }

        now = now_ms();
        if (pending(in) && now >= retry_at &&
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
        if (!pending(in))
            rescrub_store(in);
        if (now >= next_snapshot || stopping) {
            /* Only with nothing pending: a saved body hash must never be ahead of the counts in the store,
             * or after a crash the unchanged body would be skipped and its unsaved delta lost. */
            if (!pending(in)) {
                save_state(in, now);
                char err[512] = "";
                if (store_maintain(in->st, now, err, sizeof err) != 0) /* retention; rate-limited by the store */
                    log_error("ingest", "store retention failed", "err", err);
            }
            next_snapshot = now + in->o.snapshot_interval_ms;
        }
        pthread_mutex_lock(&in->mu);
        /* Settled: everything processed so far is in the store, or the store is failing (retrying). */
        if (!pending(in) || retry_at > 0)
            in->done_seq = processed_seq;
        if (!pending(in))
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

/* ---- lifecycle ---- */

ingest *ingest_new(store *st, target_manager *tm, selfexc *sx, const ingest_options *opts)
{
    ingest *in = xcalloc(1, sizeof *in);
    in->st = st;
    in->tm = tm;
    in->sx = sx;
    if (opts)
        in->o = *opts;
    if (!in->o.queue_bytes)
        in->o.queue_bytes = DEFAULT_QUEUE_BYTES;
    if (in->o.flush_interval_ms <= 0)
        in->o.flush_interval_ms = DEFAULT_FLUSH_MS;
    if (!in->o.batch_bodies)
        in->o.batch_bodies = DEFAULT_BATCH;
    if (in->o.snapshot_interval_ms <= 0)
        in->o.snapshot_interval_ms = DEFAULT_SNAPSHOT_MS;
    if (in->o.max_backoff_ms <= 0)
        in->o.max_backoff_ms = DEFAULT_MAX_BACKOFF_MS;
    in->eng = merge_new(&in->o.merge);
    in->aggs = agg_cache_new();
    merge_changeset_init(&in->cs);
    pthread_mutex_init(&in->mu, NULL);
    pthread_cond_init(&in->cond, NULL);
    pthread_cond_init(&in->done_cond, NULL);
    pthread_mutex_init(&in->labels_mu, NULL);
    pthread_mutex_init(&in->scrub_mu, NULL);
    in->scrub = scrub_rules_default(); /* on by default; ingest_set_scrubbing applies the configuration */
    /* Families exist from the start, so dashboards see 0 rather than nothing. */
    metric_set(m_backlog(), NULL, 0);
    metric_add(m_write_failures(), NULL, 0);
    metric_set(m_queue_bytes(), NULL, 0);
    return in;
}

int ingest_start(ingest *in, char *err, size_t errlen)
{
    if (store_load(in->st, in->eng, err, errlen) != 0)
        return -1;
    int rc = pthread_create(&in->thread, NULL, writer_main, in);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the store writer: %s", strerror(rc));
        return -1;
    }
    in->started = true;
    return 0;
}

void ingest_free(ingest *in)
{
    if (!in)
        return;
    if (in->started) {
        pthread_mutex_lock(&in->mu);
        in->stopping = true;
        pthread_cond_signal(&in->cond);
        pthread_mutex_unlock(&in->mu);
        pthread_join(in->thread, NULL);
        if (in->cs.n) {
            char n[32];
            snprintf(n, sizeof n, "%zu", in->cs.n);
            log_warn("ingest", "store unavailable at shutdown; unwritten changes are lost", "changes", n);
        }
    }
    for (item *it = in->head; it;) {
        item *next = it->next;
        item_free(it);
        it = next;
    }
    for (size_t i = 0; i < in->n_seen; i++)
        tlabels_unref(in->seen[i].tl);
    free(in->seen);
    for (size_t i = 0; i < in->labels.cap; i++)
        if (in->labels.slots[i].hash)
            tlabels_unref(in->labels.slots[i].value);
    keymap_free(&in->labels);
    merge_changeset_free(&in->cs);
    merge_free(in->eng);
    agg_cache_free(in->aggs);
    error_relabel_set_unref(in->erl);
    pthread_mutex_destroy(&in->mu);
    pthread_cond_destroy(&in->cond);
    pthread_cond_destroy(&in->done_cond);
    pthread_mutex_destroy(&in->labels_mu);
    pthread_mutex_destroy(&in->scrub_mu);
    scrub_rules_free(in->scrub);
    free(in);
}

int ingest_sync(ingest *in, int64_t timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    pthread_mutex_lock(&in->mu);
    uint64_t target = in->enq_seq;
    in->force_flush = true;
    pthread_cond_signal(&in->cond);
    int rc = 0;
    while (in->done_seq < target) {
        if (now_ms() >= deadline) {
            rc = -1;
            break;
        }
        struct timespec ts;
        abs_deadline(&ts, deadline);
        pthread_cond_timedwait(&in->done_cond, &in->mu, &ts);
    }
    pthread_mutex_unlock(&in->mu);
    return rc;
}

void ingest_get_status(ingest *in, ingest_status *out)
{
    pthread_mutex_lock(&in->mu);
    *out = in->status;
    out->queued_bodies = in->n_items;
    out->queued_bytes = in->bytes;
    pthread_mutex_unlock(&in->mu);
}

/* ---- push ---- */

ingest_push_result ingest_push(ingest *in, const char *job, const char *instance, const char *body, size_t len,
                               int64_t timeout_ms, ingest_push_info *info, char *err, size_t errlen)
{
    char fallback[320];
    snprintf(fallback, sizeof fallback, "push:%.300s", instance ? instance : "");
    payload_doc *doc = payload_parse_limited(body, len, fallback, in->o.merge.samples_per_error, err, errlen);
    if (!doc)
        return INGEST_PUSH_INVALID;
    if (doc->skipped_aggregates || doc->skipped_occurrences) {
        /* Scrapes keep the good records of a partly broken body; a push is refused whole, so the
         * client learns about the problem and nothing is half-applied. */
        snprintf(err, errlen, "%s", doc->first_problem);
        payload_free(doc);
        return INGEST_PUSH_INVALID;
    }
    if (info) {
        info->aggregates = doc->n_aggregates;
        snprintf(info->instance_id, sizeof info->instance_id, "%s", doc->instance_id);
    }
    item *it = xcalloc(1, sizeof *it);
    it->kind = ITEM_PUSH;
    it->job = xstrdup_or_empty(job);
    size_t ul = strlen(doc->instance_id) + 6;
    it->url = xcalloc(1, ul);
    snprintf(it->url, ul, "push:%s", doc->instance_id);
    it->doc = doc;
    labelset_init(&it->push_labels);
    labelset_set(&it->push_labels, "job", job);
    labelset_set(&it->push_labels, "instance", instance && *instance ? instance : doc->instance_id);
    it->cost = len + strlen(job) + ul + sizeof(item);

    pthread_mutex_lock(&in->mu);
    if (!make_room(in, "", 0, it->cost)) {
        pthread_mutex_unlock(&in->mu);
        item_free(it);
        snprintf(err, errlen, "ingest queue full");
        return INGEST_PUSH_BUSY;
    }
    uint64_t seq = it->seq = ++in->enq_seq;
    push_item(in, it);
    in->force_flush = true; /* the pusher is waiting: write now rather than at the next flush interval */
    metric_set(m_queue_bytes(), NULL, (double)in->bytes);
    pthread_cond_signal(&in->cond);
    int64_t deadline = now_ms() + timeout_ms;
    ingest_push_result rc = INGEST_PUSH_STORED;
    while (in->stored_seq < seq) {
        if (now_ms() >= deadline) {
            rc = INGEST_PUSH_QUEUED;
            break;
        }
        struct timespec ts;
        abs_deadline(&ts, deadline);
        pthread_cond_timedwait(&in->done_cond, &in->mu, &ts);
    }
    pthread_mutex_unlock(&in->mu);
    return rc;
}
