/* ingest: see ingest.h.
 *
 * Queue: a doubly linked list under one mutex, so that dropping a superseded body in the middle is O(1)
 * once found. The writer takes the whole list at once and works without the lock; producers (the loop
 * thread) never wait for parsing or storage.
 *
 * Target labels are shared, reference-counted label sets: the map holds one reference, every queued
 * body another, so a body that outlives its target (removed while queued) still carries its labels. */
#include "ingest/ingest.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/keymap.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

#define DEFAULT_QUEUE_BYTES (256u * 1024 * 1024)
#define DEFAULT_FLUSH_MS 1000
#define DEFAULT_BATCH 2000
#define DEFAULT_SNAPSHOT_MS 60000
#define DEFAULT_MAX_BACKOFF_MS 60000

typedef struct tlabels {
    atomic_int refs;
    char *key; /* "job\0" + 8 hash bytes (the map's key) */
    size_t klen;
    labelset ls; /* public labels */
    bool honor_labels; /* the job's honor_labels: how federated bodies are merged */
} tlabels;

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
    keymap labels;
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
static metric_family *m_bodies(void)
{
    static const char *names[] = {"job", "result"};
    return metric_family_get("lookout_ingest_bodies_total", METRIC_COUNTER,
                             "Scraped bodies handled by the store writer, by result (unchanged, merged, "
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
    pthread_cond_signal(&in->cond);
    pthread_mutex_unlock(&in->mu);
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
    item *it = xcalloc(1, sizeof *it);
    it->kind = ITEM_BODY;
    it->job = xstrdup_or_empty(r->job);
    it->url = xstrdup_or_empty(r->url);
    it->target_hash = r->hash;
    it->labels = labels_get(in, r->job, r->hash);
    it->body_hash = merge_body_hash(r->body, r->body_len);
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

void ingest_target_event(ingest *in, target_event ev, const char *job, const built_target *t, bool honor_labels)
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

static void process_body(ingest *in, item *it, int64_t now, size_t *merged)
{
    const char *lv[] = {it->job, NULL};
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
    payload_doc *doc =
        payload_parse_limited(it->body, it->len, it->url, in->o.merge.samples_per_error, err, sizeof err);
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
    report_health(in, it->job, it->target_hash, NULL, it->start_ms, it->duration_s);
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
    ingest_merge_doc(in->eng, it->job, it->url, labels, doc, it->labels && it->labels->honor_labels, it->body_hash,
                     now, &in->cs);
    labelset_free(&fallback);
    payload_free(doc);
    (*merged)++;
    lv[1] = "merged";
    metric_add(m_bodies(), lv, 1);
    pthread_mutex_lock(&in->mu);
    in->status.merged_bodies++;
    pthread_mutex_unlock(&in->mu);
}

static bool origin_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

size_t ingest_merge_doc(merge_engine *e, const char *job, const char *url, const labelset *labels,
                        const payload_doc *doc, bool honor_labels, uint64_t body_hash, int64_t now_ms,
                        merge_changeset *cs)
{
    bool federated = false;
    for (size_t i = 0; i < doc->n_aggregates && !federated; i++)
        federated = doc->aggregates[i].origin_job != NULL;
    if (!federated) {
        merge_input mi = {.job = job, .url = url, .labels = labels, .doc = doc, .body_hash = body_hash,
                          .now_ms = now_ms};
        return merge_apply(e, &mi, cs);
    }
    /* A federated body is never skipped as unchanged (body_hash 0): every scrape is a sighting of each
     * origin instance, so none is pruned while its lower lookout still exports it. */
    size_t n = doc->n_aggregates, changed = 0;
    payload_aggregate *part = xcalloc(n, sizeof *part);
    bool *done = xcalloc(n, sizeof *done);
    const char *base = doc->lookout_instance ? doc->lookout_instance : doc->instance_id;
    for (size_t i = 0; i < n; i++) {
        if (done[i])
            continue;
        const char *origin = doc->aggregates[i].origin_job;
        size_t np = 0;
        for (size_t j = i; j < n; j++)
            if (!done[j] && origin_eq(doc->aggregates[j].origin_job, origin)) {
                part[np++] = doc->aggregates[j]; /* shallow: the doc keeps ownership */
                done[j] = true;
            }
        payload_doc sub = *doc;
        sub.aggregates = part;
        sub.n_aggregates = np;
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
        merge_input mi = {.job = mjob, .url = url, .labels = &ls, .doc = &sub, .body_hash = 0, .now_ms = now_ms};
        changed += merge_apply(e, &mi, cs);
        free(iid);
        labelset_free(&ls);
    }
    free(part);
    free(done);
    return changed;
}

static void process_push(ingest *in, item *it, int64_t now, size_t *merged)
{
    /* Origin jobs inside a pushed body stay labels (exported_job): the push names its job. */
    ingest_merge_doc(in->eng, it->job, it->url, &it->push_labels, it->doc, false, 0, now, &in->cs);
    (*merged)++;
    const char *lv[] = {it->job, "pushed"};
    metric_add(m_bodies(), lv, 1);
    pthread_mutex_lock(&in->mu);
    in->status.merged_bodies++;
    pthread_mutex_unlock(&in->mu);
}

/* Writes the change set. Returns true on success (or nothing to write). */
static bool flush(ingest *in, int64_t now)
{
    if (!in->cs.n)
        return true;
    char err[512] = "";
    int rc = store_apply(in->st, &in->cs, now, err, sizeof err);
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
    size_t since_flush = 0;
    uint64_t processed_seq = 0;
    for (;;) {
        pthread_mutex_lock(&in->mu);
        while (!in->head && !in->stopping && !in->force_flush) {
            int64_t now = now_ms();
            int64_t deadline = next_snapshot;
            if (in->cs.n) {
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
        bool stopping = in->stopping, force = in->force_flush;
        in->force_flush = false;
        pthread_mutex_unlock(&in->mu);
        metric_set(m_queue_bytes(), NULL, 0);

        int64_t now = now_ms();
        for (item *it = list; it;) {
            item *next = it->next;
            size_t before = in->cs.n;
            if (it->kind == ITEM_FORGET)
                merge_forget_source(in->eng, it->job, it->url);
            else if (it->kind == ITEM_PUSH)
                process_push(in, it, now, &since_flush);
            else
                process_body(in, it, now, &since_flush);
            if (!before && in->cs.n)
                first_pending = now;
            if (it->seq > processed_seq)
                processed_seq = it->seq;
            item_free(it);
            it = next;
        }

        now = now_ms();
        if (in->cs.n && now >= retry_at &&
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
        if (now >= next_snapshot || stopping) {
            /* Only with nothing pending: a saved body hash must never be ahead of the counts in the store,
             * or after a crash the unchanged body would be skipped and its unsaved delta lost. */
            if (!in->cs.n) {
                save_state(in, now);
                char err[512] = "";
                if (store_maintain(in->st, now, err, sizeof err) != 0) /* retention; rate-limited by the store */
                    log_error("ingest", "store retention failed", "err", err);
            }
            next_snapshot = now + in->o.snapshot_interval_ms;
        }
        pthread_mutex_lock(&in->mu);
        /* Settled: everything processed so far is in the store, or the store is failing (retrying). */
        if (!in->cs.n || retry_at > 0)
            in->done_seq = processed_seq;
        if (!in->cs.n)
            in->stored_seq = processed_seq;
        bool done = stopping && !in->head;
        pthread_cond_broadcast(&in->done_cond);
        pthread_mutex_unlock(&in->mu);
        if (done)
            break;
    }
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
    merge_changeset_init(&in->cs);
    pthread_mutex_init(&in->mu, NULL);
    pthread_cond_init(&in->cond, NULL);
    pthread_cond_init(&in->done_cond, NULL);
    pthread_mutex_init(&in->labels_mu, NULL);
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
    for (size_t i = 0; i < in->labels.cap; i++)
        if (in->labels.slots[i].hash)
            tlabels_unref(in->labels.slots[i].value);
    keymap_free(&in->labels);
    merge_changeset_free(&in->cs);
    merge_free(in->eng);
    pthread_mutex_destroy(&in->mu);
    pthread_cond_destroy(&in->cond);
    pthread_cond_destroy(&in->done_cond);
    pthread_mutex_destroy(&in->labels_mu);
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
