/* targets: see targets.h. A pool's active targets live in two arrays rebuilt on every sync: `active`
 * (display order: URL, then hash) and `index` (hash order, for the diff and for scrape results). */
#include "scrape/targets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/metrics.h"

typedef struct target_index {
    uint64_t hash;
    active_target *t;
} target_index;

struct target_manager {
    pthread_rwlock_t lock;
    target_pool **pools; /* sorted by job name */
    size_t n_pools;
    target_hook_fn hook;
    void *hook_ctx;
};

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        abort();
    return p;
}

static void *xrealloc(void *p, size_t size)
{
    p = realloc(p, size ? size : 1);
    if (!p)
        abort();
    return p;
}

const char *target_health_name(target_health h)
{
    switch (h) {
    case TARGET_HEALTH_UP:
        return "up";
    case TARGET_HEALTH_DOWN:
        return "down";
    default:
        return "unknown";
    }
}

/* ---- metrics ---- */

static metric_family *metric_pool_targets(void)
{
    static const char *names[] = {"job"};
    return metric_family_get("lookout_target_pool_targets", METRIC_GAUGE,
                             "Current number of active targets in this scrape pool.", 1, names);
}

static metric_family *metric_pool_dropped(void)
{
    static const char *names[] = {"job"};
    return metric_family_get("lookout_target_pool_dropped_targets", METRIC_GAUGE,
                             "Current number of targets dropped by relabeling in this scrape pool.", 1, names);
}

static metric_family *metric_pool_failed(void)
{
    static const char *names[] = {"job"};
    return metric_family_get("lookout_target_pool_failed_targets", METRIC_GAUGE,
                             "Current number of targets of this scrape pool that failed target building.", 1,
                             names);
}

static void pool_metrics(const target_pool *p)
{
    const char *v[] = {p->job};
    metric_set(metric_pool_targets(), v, (double)p->n_active);
    metric_set(metric_pool_dropped(), v, (double)p->dropped_count);
    metric_set(metric_pool_failed(), v, (double)p->failed_count);
}

static void pool_metrics_remove(const char *job)
{
    const char *v[] = {job};
    metric_remove(metric_pool_targets(), v);
    metric_remove(metric_pool_dropped(), v);
    metric_remove(metric_pool_failed(), v);
}

/* ---- pools ---- */

static void free_dropped(target_pool *p)
{
    for (size_t i = 0; i < p->n_dropped; i++)
        labelset_free(&p->dropped[i].discovered);
    free(p->dropped);
    p->dropped = NULL;
    p->n_dropped = p->dropped_count = 0;
}

static void free_failed(target_pool *p)
{
    for (size_t i = 0; i < p->n_failed; i++)
        labelset_free(&p->failed[i].discovered);
    free(p->failed);
    p->failed = NULL;
    p->n_failed = p->failed_count = 0;
}

static void free_groups(target_group *g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        target_group_free(&g[i]);
    free(g);
}

static void active_free(active_target *t)
{
    if (!t)
        return;
    built_target_free(&t->t);
    free(t);
}

static target_pool *pool_new(const char *job, const scrape_config *sc)
{
    target_pool *p = xcalloc(1, sizeof *p);
    p->job = strdup(job);
    if (!p->job)
        abort();
    p->sc = sc;
    pthread_mutex_init(&p->state_mu, NULL);
    return p;
}

static void pool_free(target_pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_active; i++)
        active_free(p->active[i]);
    free(p->active);
    free(p->index);
    free_dropped(p);
    free_failed(p);
    free_groups(p->groups, p->n_groups);
    pthread_mutex_destroy(&p->state_mu);
    free(p->job);
    free(p);
}

static int cmp_index(const void *a, const void *b)
{
    uint64_t x = ((const target_index *)a)->hash, y = ((const target_index *)b)->hash;
    return x < y ? -1 : x > y;
}

static int cmp_display(const void *a, const void *b)
{
    const active_target *x = *(active_target *const *)a, *y = *(active_target *const *)b;
    int c = strcmp(x->t.url ? x->t.url : "", y->t.url ? y->t.url : "");
    if (c)
        return c;
    return x->t.hash < y->t.hash ? -1 : x->t.hash > y->t.hash;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* A freshly built target with its position in discovery order, so that dedup keeps the last duplicate's
 * discovered labels regardless of qsort's instability. */
typedef struct fresh {
    uint64_t hash;
    size_t seq;
    active_target *t;
} fresh;

static int cmp_fresh(const void *a, const void *b)
{
    const fresh *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void log_failed(const char *job, const failed_target *f)
{
    const char *addr = labelset_get(&f->discovered, "__address__");
    log_error("scrape", "Creating target failed", "job", job, "address", addr ? addr : "", "err", f->error);
}

/* Builds the pool's target set from p->groups with p->sc and diffs it against the current one.
 * config_changed: kept targets are reported as updated. old_sc: the config the current targets were built
 * with (for removal hooks). Called with the write lock held. */
static void pool_rebuild(target_manager *m, target_pool *p, const scrape_config *old_sc, bool config_changed)
{
    const scrape_config *sc = p->sc;
    fresh *fr = NULL;
    size_t n_fr = 0, cap_fr = 0;

    /* Hashes of the failures we already knew, so each failure is logged once, not on every sync. */
    uint64_t *known_failed = xcalloc(p->n_failed, sizeof *known_failed);
    for (size_t i = 0; i < p->n_failed; i++)
        known_failed[i] = labelset_hash(&p->failed[i].discovered);
    size_t n_known_failed = p->n_failed;
    qsort(known_failed, n_known_failed, sizeof *known_failed, cmp_u64);

    free_dropped(p);
    free_failed(p);
    uint64_t keep_dropped = sc ? sc->keep_dropped_targets : 0;

    size_t seq = 0;
    for (size_t g = 0; sc && g < p->n_groups; g++) {
        const target_group *grp = &p->groups[g];
        for (size_t i = 0; i < grp->n_targets; i++) {
            built_target bt;
            target_build(sc, &grp->labels, &grp->targets[i], &bt);
            switch (bt.status) {
            case TARGET_ACTIVE: {
                if (n_fr == cap_fr) {
                    cap_fr = cap_fr ? cap_fr * 2 : 64;
                    fr = xrealloc(fr, cap_fr * sizeof *fr);
                }
                active_target *t = xcalloc(1, sizeof *t);
                t->t = bt; /* moves ownership */
                fr[n_fr++] = (fresh){bt.hash, seq++, t};
                break;
            }
            case TARGET_DROPPED:
                p->dropped_count++;
                if (keep_dropped == 0 || p->n_dropped < keep_dropped) {
                    p->dropped = xrealloc(p->dropped, (p->n_dropped + 1) * sizeof *p->dropped);
                    dropped_target *d = &p->dropped[p->n_dropped++];
                    labelset_copy(&d->discovered, &bt.discovered);
                    d->rule_index = bt.dropped_by;
                    d->action = (bt.dropped_by >= 0 && (size_t)bt.dropped_by < sc->n_relabel_configs)
                                    ? sc->relabel_configs[bt.dropped_by].action
                                    : RELABEL_DROP;
                }
                built_target_free(&bt);
                break;
            case TARGET_FAILED:
            default:
                p->failed_count++;
                if (p->n_failed < TARGETS_MAX_FAILED) {
                    p->failed = xrealloc(p->failed, (p->n_failed + 1) * sizeof *p->failed);
                    failed_target *f = &p->failed[p->n_failed++];
                    labelset_copy(&f->discovered, &bt.discovered);
                    snprintf(f->error, sizeof f->error, "%s", bt.error);
                    uint64_t h = labelset_hash(&f->discovered);
                    if (!bsearch(&h, known_failed, n_known_failed, sizeof h, cmp_u64))
                        log_failed(p->job, f);
                }
                built_target_free(&bt);
                break;
            }
        }
    }
    free(known_failed);

    /* Dedup: identical hash = one target; the discovered labels shown are the last duplicate's. */
    if (n_fr)
        qsort(fr, n_fr, sizeof *fr, cmp_fresh);
    size_t n_uniq = 0;
    for (size_t i = 0; i < n_fr;) {
        size_t j = i + 1;
        while (j < n_fr && fr[j].hash == fr[i].hash)
            j++;
        active_target *keep = fr[i].t;
        if (j - i > 1) {
            labelset_free(&keep->t.discovered);
            keep->t.discovered = fr[j - 1].t->t.discovered;
            labelset_init(&fr[j - 1].t->t.discovered);
            for (size_t k = i + 1; k < j; k++)
                active_free(fr[k].t);
        }
        fr[n_uniq++] = (fresh){fr[i].hash, fr[i].seq, keep};
        i = j;
    }

    /* Diff against the current set (both sorted by hash). Removals are told first. */
    target_index *old = p->index;
    size_t n_old = p->n_active;
    target_index *idx = xcalloc(n_uniq, sizeof *idx);
    active_target **added = xcalloc(n_uniq, sizeof *added);
    active_target **updated = xcalloc(n_uniq, sizeof *updated);
    size_t n_added = 0, n_updated = 0;
    size_t a = 0, b = 0;
    while (a < n_old || b < n_uniq) {
        if (b == n_uniq || (a < n_old && old[a].hash < fr[b].hash)) {
            if (m->hook)
                m->hook(m->hook_ctx, TARGET_REMOVED, p->job, &old[a].t->t, old_sc);
            active_free(old[a].t);
            a++;
        } else if (a == n_old || fr[b].hash < old[a].hash) {
            idx[b] = (target_index){fr[b].hash, fr[b].t};
            added[n_added++] = fr[b].t;
            b++;
        } else {
            /* Kept: the old object (identity and state) with the latest discovered labels and build. */
            active_target *t = old[a].t;
            target_state st = t->st;
            built_target_free(&t->t);
            t->t = fr[b].t->t;
            t->st = st;
            free(fr[b].t);
            idx[b] = (target_index){fr[b].hash, t};
            if (config_changed)
                updated[n_updated++] = t;
            a++;
            b++;
        }
    }
    free(fr);
    free(old);
    free(p->active);
    p->index = idx;
    p->n_active = n_uniq;
    p->active = xcalloc(n_uniq, sizeof *p->active);
    for (size_t i = 0; i < n_uniq; i++)
        p->active[i] = idx[i].t;
    if (n_uniq)
        qsort(p->active, n_uniq, sizeof *p->active, cmp_display);

    if (m->hook) {
        for (size_t i = 0; i < n_updated; i++)
            m->hook(m->hook_ctx, TARGET_UPDATED, p->job, &updated[i]->t, sc);
        for (size_t i = 0; i < n_added; i++)
            m->hook(m->hook_ctx, TARGET_ADDED, p->job, &added[i]->t, sc);
    }
    free(added);
    free(updated);
    pool_metrics(p);
}

/* Removes every target of a pool (hooks told) and frees it. */
static void pool_remove(target_manager *m, target_pool *p)
{
    if (m->hook)
        for (size_t i = 0; i < p->n_active; i++)
            m->hook(m->hook_ctx, TARGET_REMOVED, p->job, &p->index[i].t->t, p->sc);
    pool_metrics_remove(p->job);
    pool_free(p);
}

/* ---- manager ---- */

target_manager *targets_new(void)
{
    target_manager *m = xcalloc(1, sizeof *m);
    /* Writer preference: a stream of HTTP readers must not starve discovery syncs. No thread takes the
     * read lock recursively, which this kind requires. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&m->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    return m;
}

void targets_free(target_manager *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_pools; i++) {
        pool_metrics_remove(m->pools[i]->job);
        pool_free(m->pools[i]);
    }
    free(m->pools);
    pthread_rwlock_destroy(&m->lock);
    free(m);
}

void targets_set_hook(target_manager *m, target_hook_fn fn, void *ctx)
{
    pthread_rwlock_wrlock(&m->lock);
    m->hook = fn;
    m->hook_ctx = ctx;
    pthread_rwlock_unlock(&m->lock);
}

static int cmp_pool(const void *a, const void *b)
{
    return strcmp((*(target_pool *const *)a)->job, (*(target_pool *const *)b)->job);
}

static target_pool *find_pool(const target_manager *m, const char *job)
{
    size_t lo = 0, hi = m->n_pools;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->pools[mid]->job, job);
        if (c == 0)
            return m->pools[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void targets_apply_config(target_manager *m, const lookout_config *cfg)
{
    pthread_rwlock_wrlock(&m->lock);
    size_t n_new = cfg ? cfg->n_scrape_configs : 0;
    target_pool **pools = xcalloc(n_new, sizeof *pools);
    size_t n = 0;
    for (size_t i = 0; i < n_new; i++) {
        const scrape_config *sc = &cfg->scrape_configs[i];
        target_pool *p = find_pool(m, sc->job_name);
        if (!p) {
            p = pool_new(sc->job_name, sc);
            pool_metrics(p);
        } else if (!p->sc || !scrape_config_equal(p->sc, sc)) {
            const scrape_config *old_sc = p->sc;
            p->sc = sc;
            pool_rebuild(m, p, old_sc, true);
        } else {
            p->sc = sc; /* the old config is about to be freed: point at the equal new one */
        }
        pools[n++] = p;
    }
    /* Pools whose job is gone. Job names are unique within a config (config validation). */
    for (size_t i = 0; i < m->n_pools; i++) {
        bool kept = false;
        for (size_t j = 0; j < n && !kept; j++)
            kept = pools[j] == m->pools[i];
        if (!kept)
            pool_remove(m, m->pools[i]);
    }
    if (n)
        qsort(pools, n, sizeof *pools, cmp_pool);
    free(m->pools);
    m->pools = pools;
    m->n_pools = n;
    pthread_rwlock_unlock(&m->lock);
}

void targets_sync(target_manager *m, const char *job, const target_group *const *groups, size_t n)
{
    /* Copy outside the lock: readers are not held up by the copying. */
    target_group *copy = xcalloc(n, sizeof *copy);
    for (size_t i = 0; i < n; i++)
        target_group_copy(&copy[i], groups[i]);

    pthread_rwlock_wrlock(&m->lock);
    target_pool *p = find_pool(m, job);
    if (!p) {
        pthread_rwlock_unlock(&m->lock);
        log_debug("scrape", "sync for a job that is not configured; ignored", "job", job);
        free_groups(copy, n);
        return;
    }
    target_group *old = p->groups;
    size_t n_old = p->n_groups;
    p->groups = copy;
    p->n_groups = n;
    pool_rebuild(m, p, p->sc, false);
    pthread_rwlock_unlock(&m->lock);
    free_groups(old, n_old);
}

void targets_sd_sync(void *ctx, const char *job, const target_group *const *groups, size_t n)
{
    targets_sync(ctx, job, groups, n);
}

void targets_report_scrape(target_manager *m, const char *job, uint64_t hash, const char *error,
                           int64_t start_ms, double duration_s)
{
    pthread_rwlock_rdlock(&m->lock);
    target_pool *p = find_pool(m, job);
    active_target *t = p ? (active_target *)targets_pool_get(p, hash) : NULL;
    if (t) {
        pthread_mutex_lock(&p->state_mu);
        bool failed = error && *error;
        t->st.health = failed ? TARGET_HEALTH_DOWN : TARGET_HEALTH_UP;
        snprintf(t->st.last_error, sizeof t->st.last_error, "%s", failed ? error : "");
        t->st.last_scrape_ms = start_ms;
        t->st.last_duration_s = duration_s;
        pthread_mutex_unlock(&p->state_mu);
    }
    pthread_rwlock_unlock(&m->lock);
}

void targets_read_begin(target_manager *m)
{
    pthread_rwlock_rdlock(&m->lock);
}

void targets_read_end(target_manager *m)
{
    pthread_rwlock_unlock(&m->lock);
}

size_t targets_n_pools(const target_manager *m)
{
    return m->n_pools;
}

const target_pool *targets_pool_at(const target_manager *m, size_t i)
{
    return i < m->n_pools ? m->pools[i] : NULL;
}

const target_pool *targets_pool_find(const target_manager *m, const char *job)
{
    return find_pool(m, job);
}

void targets_state_get(const target_pool *p, const active_target *t, target_state *out)
{
    target_pool *mp = (target_pool *)p; /* the mutex guards state only; the pool itself is not changed */
    pthread_mutex_lock(&mp->state_mu);
    *out = t->st;
    pthread_mutex_unlock(&mp->state_mu);
}

const active_target *targets_pool_get(const target_pool *p, uint64_t hash)
{
    if (!p->n_active)
        return NULL;
    target_index key = {hash, NULL};
    const target_index *r = bsearch(&key, p->index, p->n_active, sizeof key, cmp_index);
    return r ? r->t : NULL;
}
