/* ingest: see ingest.h. This file holds the queue (ingest_submit, target events, pushes) and the lifecycle;
 * the writer thread (parse, scrub, merge, store writes, snapshots) is in ingest_writer.c.
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
#include "ingest/error_relabel.h"
#include "ingest/ingest_internal.h"

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

int64_t ingest_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- metrics ---- */

const char *ingest_job_label[] = {"job"};

static metric_family *m_dropped(void)
{
    return metric_family_get("lookout_ingest_dropped_bodies_total", METRIC_COUNTER,
                             "Scraped bodies dropped because the ingest queue was full.", 1, ingest_job_label);
}
metric_family *ingest_m_backlog(void)
{
    return metric_family_get("lookout_store_backlog_changes", METRIC_GAUGE,
                             "Merged aggregate changes not yet written to the store.", 0, NULL);
}
metric_family *ingest_m_write_failures(void)
{
    return metric_family_get("lookout_store_write_failures_total", METRIC_COUNTER,
                             "Failed store writes (retried with backoff).", 0, NULL);
}
metric_family *ingest_m_queue_bytes(void)
{
    return metric_family_get("lookout_ingest_queue_bytes", METRIC_GAUGE,
                             "Bytes of scraped bodies waiting for the store writer.", 0, NULL);
}

metric_family *ingest_m_bodies(void)
{
    static const char *names[] = {"job", "result"};
    return metric_family_get("lookout_ingest_bodies_total", METRIC_COUNTER,
                             "Scraped bodies handled by ingest, by result (unchanged, merged, "
                             "invalid).",
                             2, names);
}

/* tm may be NULL (tests, benchmarks). */
void ingest_report_health(ingest *in, const char *job, uint64_t hash, const char *error, int64_t start_ms,
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

void ingest_tlabels_unref(tlabels *t)
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

void ingest_item_free(item *it)
{
    if (it->kind == ITEM_BODY && it->labels)
        atomic_fetch_sub(&it->labels->pending, 1);
    free(it->job);
    free(it->url);
    free(it->body);
    ingest_tlabels_unref(it->labels);
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
        in->first_enq_ms = ingest_now_ms();
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
    ingest_item_free(it);
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
        ingest_item_free(it);
        return;
    }
    it->seq = ++in->enq_seq;
    push_item(in, it);
    metric_set(ingest_m_queue_bytes(), NULL, (double)in->bytes);
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
    ingest_report_health(in, r->job, r->hash, NULL, r->start_ms, r->duration_s);
    if (!in->unchanged_job || strcmp(in->unchanged_job, r->job) != 0) {
        const char *lv[] = {r->job, "unchanged"};
        free(in->unchanged_job);
        in->unchanged_job = xstrdup(r->job);
        in->unchanged_series = metric_series_get(ingest_m_bodies(), lv);
    }
    metric_series *ms[] = {in->unchanged_series};
    static const double one[] = {1};
    metric_series_update(ms, one, 1);
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
        ingest_report_health(in, r->job, r->hash, e, r->start_ms, r->duration_s);
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
    ingest_tlabels_unref(old);
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
    metric_set(ingest_m_backlog(), NULL, 0);
    metric_add(ingest_m_write_failures(), NULL, 0);
    metric_set(ingest_m_queue_bytes(), NULL, 0);
    return in;
}

int ingest_start(ingest *in, char *err, size_t errlen)
{
    if (store_load(in->st, in->eng, err, errlen) != 0)
        return -1;
    int rc = pthread_create(&in->thread, NULL, ingest_writer_main, in);
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
        ingest_item_free(it);
        it = next;
    }
    for (size_t i = 0; i < in->n_seen; i++)
        ingest_tlabels_unref(in->seen[i].tl);
    free(in->seen);
    free(in->unchanged_job);
    for (size_t i = 0; i < in->labels.cap; i++)
        if (in->labels.slots[i].hash)
            ingest_tlabels_unref(in->labels.slots[i].value);
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
    int64_t deadline = ingest_now_ms() + timeout_ms;
    pthread_mutex_lock(&in->mu);
    uint64_t target = in->enq_seq;
    in->force_flush = true;
    pthread_cond_signal(&in->cond);
    int rc = 0;
    while (in->done_seq < target) {
        if (ingest_now_ms() >= deadline) {
            rc = -1;
            break;
        }
        struct timespec ts;
        ingest_abs_deadline(&ts, deadline);
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
        ingest_item_free(it);
        snprintf(err, errlen, "ingest queue full");
        return INGEST_PUSH_BUSY;
    }
    uint64_t seq = it->seq = ++in->enq_seq;
    push_item(in, it);
    in->force_flush = true; /* the pusher is waiting: write now rather than at the next flush interval */
    metric_set(ingest_m_queue_bytes(), NULL, (double)in->bytes);
    pthread_cond_signal(&in->cond);
    int64_t deadline = ingest_now_ms() + timeout_ms;
    ingest_push_result rc = INGEST_PUSH_STORED;
    while (in->stored_seq < seq) {
        if (ingest_now_ms() >= deadline) {
            rc = INGEST_PUSH_QUEUED;
            break;
        }
        struct timespec ts;
        ingest_abs_deadline(&ts, deadline);
        pthread_cond_timedwait(&in->done_cond, &in->mu, &ts);
    }
    pthread_mutex_unlock(&in->mu);
    return rc;
}
