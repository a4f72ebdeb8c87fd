/* manager: the discovery manager (Prometheus discovery/manager.go). Keeps target groups per job, per
 * provider and per source; a manager thread hands the complete group set of each changed job to the sync
 * callback, at most once per min_interval per job, and at once for a job that was never synced.
 *
 * Locking: `mu` guards every structure below and is never held while a provider starts or stops (a
 * provider thread may be blocked in sd_provider_update waiting for it) nor while the callback runs.
 * `apply_mu` serialises sd_manager_apply_config and sd_manager_free. Groups are immutable once stored and
 * reference counted, so a sync hands out pointers without copying and a concurrent update can replace a
 * group while the callback still reads the old one.
 *
 * Persisted groups (manager_cache.c, file format in cache.h): a new provider is seeded with the groups it
 * had before the restart and serves them until its first sd_provider_mark_success; a provider that has
 * succeeded once has its groups written (debounced) by the cache writer thread whenever they change. The
 * state both halves share is in manager_internal.h. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sd/manager_internal.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

static metric_family *m_discovered, *m_last_success, *m_updates, *m_failed;

static void metrics_create(void)
{
    const char *jc[] = {"job", "config"}, *jp[] = {"job", "provider"}, *j[] = {"job"};
    m_discovered = metric_family_get("lookout_sd_discovered_targets", METRIC_GAUGE,
                                     "Current number of discovered targets.", 2, jc);
    m_last_success = metric_family_get("lookout_sd_last_success_timestamp_seconds", METRIC_GAUGE,
                                       "Unix time of the last successful refresh of a provider.", 2, jp);
    m_updates = metric_family_get("lookout_sd_updates_total", METRIC_COUNTER,
                                  "Total number of target group sets sent to the target layer.", 1, j);
    m_failed = metric_family_get("lookout_sd_failed_configs", METRIC_GAUGE,
                                 "Current number of service discovery configurations that failed to load.",
                                 0, NULL);
}

static void metrics_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, metrics_create);
}

void sd_mgr_set_discovered(const sd_provider *p, size_t n_targets)
{
    const char *lv[] = {p->job, p->name};
    metric_set(m_discovered, lv, (double)n_targets);
}

/* ---- groups ---- */

/* What the manager keeps of g: a frozen group (a parser's view, gen != 0) is kept by reference, a plain
 * one is frozen (copied into one allocation, frozen.c). */
static mgroup *stored(const target_group *g)
{
    return g->gen ? sd_mgroup_of_view(g) : sd_mgroup_new(g);
}

static bool group_equal(const target_group *a, const target_group *b)
{
    label_view la = target_group_labels(a), lb = target_group_labels(b);
    if (a->n_targets != b->n_targets || !label_view_equal(&la, &lb))
        return false;
    for (size_t i = 0; i < a->n_targets; i++)
        if (!labelset_equal(&a->targets[i], &b->targets[i]))
            return false;
    return true;
}

/* mp->index: source -> position in mp->groups + 1 (the key bytes live in the group). */
static size_t index_get(const mprov *mp, const char *source)
{
    return (size_t)(uintptr_t)keymap_get(&mp->index, source, strlen(source));
}

static void index_set(mprov *mp, size_t k)
{
    const char *source = mp->groups[k]->g.source;
    keymap_put(&mp->index, source, strlen(source), (void *)(uintptr_t)(k + 1));
}

/* Stores one group (copied, or referenced when frozen) for mp; returns true when the provider's groups changed. */
bool sd_mprov_store(mprov *mp, const target_group *g)
{
    if (!g->source)
        return false;
    size_t pos = index_get(mp, g->source);
    if (pos) {
        size_t k = pos - 1;
        mgroup *old = mp->groups[k];
        if (g->n_targets && group_equal(&old->g, g))
            return false;
        mp->n_targets -= old->g.n_targets;
        if (!g->n_targets) {
            /* an empty group removes its source: swap the last group into k */
            keymap_del(&mp->index, g->source, strlen(g->source));
            mp->n--;
            if (k != mp->n) {
                mp->groups[k] = mp->groups[mp->n];
                index_set(mp, k);
            }
            sd_mgroup_unref(old);
            return true;
        }
        mp->groups[k] = stored(g);
        index_set(mp, k); /* the key bytes now live in the new group */
        mp->n_targets += g->n_targets;
        sd_mgroup_unref(old);
        return true;
    }
    if (!g->n_targets)
        return false;
    if (mp->n == mp->cap) {
        mp->cap = mp->cap ? mp->cap * 2 : 8;
        mp->groups = realloc(mp->groups, mp->cap * sizeof(mgroup *));
        if (!mp->groups)
            abort();
    }
    mp->groups[mp->n++] = stored(g);
    index_set(mp, mp->n - 1);
    mp->n_targets += g->n_targets;
    return true;
}

static void mprov_free(mprov *mp)
{
    sd_mcache_release(mp);
    for (size_t k = 0; k < mp->n; k++)
        sd_mgroup_unref(mp->groups[k]);
    free(mp->groups);
    keymap_free(&mp->index);
    free(mp);
}

/* ---- provider entry points ---- */

mprov *sd_mprov_find(sd_manager *m, const sd_provider *p)
{
    for (mprov *mp = m->provs; mp; mp = mp->next)
        if (mp->p == p)
            return mp;
    return NULL;
}

void sd_provider_update(sd_provider *p, const target_group *groups, size_t n)
{
    sd_manager *m = p->mgr;
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    mprov *mp = sd_mprov_find(m, p);
    if (mp) { /* NULL: the provider is being stopped; its groups are already dropped */
        bool changed = false;
        for (size_t i = 0; i < n; i++)
            changed |= sd_mprov_store(mp, &groups[i]);
        if (changed)
            sd_mcache_note_change(m, mp);
        if (changed && !mp->c.from_cache) { /* cached groups stay visible until the first success */
            const char *lv[] = {p->job, p->name};
            metric_set(m_discovered, lv, (double)mp->n_targets);
            mp->job->dirty = true;
            pthread_cond_signal(&m->cv);
        }
    }
    pthread_mutex_unlock(&m->mu);
}

void sd_provider_mark_success(sd_provider *p)
{
    metrics_init();
    const char *lv[] = {p->job, p->name};
    metric_set(m_last_success, lv, sd_now_unix());
    sd_mcache_mark_success(p);
}

/* ---- sync thread ---- */

static int cmp_order(const void *a, const void *b)
{
    const mprov *x = *(mprov *const *)a, *y = *(mprov *const *)b;
    return (x->order > y->order) - (x->order < y->order);
}

/* Collects the job's groups in config order, each with a reference. Called with mu held. */
static mgroup **snapshot(sd_manager *m, const mjob *j, size_t *n_out)
{
    size_t np = 0, ng = 0;
    for (mprov *mp = m->provs; mp; mp = mp->next)
        if (mp->job == j) {
            size_t vn;
            sd_mcache_visible(mp, &vn);
            np++;
            ng += vn;
        }
    mprov **ps = malloc((np ? np : 1) * sizeof *ps);
    mgroup **gs = malloc((ng ? ng : 1) * sizeof *gs);
    if (!ps || !gs)
        abort();
    np = 0;
    for (mprov *mp = m->provs; mp; mp = mp->next)
        if (mp->job == j)
            ps[np++] = mp;
    qsort(ps, np, sizeof *ps, cmp_order);
    ng = 0;
    for (size_t i = 0; i < np; i++) {
        size_t vn;
        mgroup **vg = sd_mcache_visible(ps[i], &vn);
        for (size_t k = 0; k < vn; k++) {
            atomic_fetch_add(&vg[k]->refs, 1);
            gs[ng++] = vg[k];
        }
    }
    free(ps);
    *n_out = ng;
    return gs;
}

static void unlink_job(sd_manager *m, mjob *j)
{
    for (mjob **pp = &m->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            return;
        }
}

static void *sync_thread(void *arg)
{
    sd_manager *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stopping) {
        int64_t now = sd_now_mono_ms(), next = INT64_MAX;
        mjob *due = NULL;
        if (!m->applying)
            for (mjob *j = m->jobs; j; j = j->next) {
                if (!j->dirty)
                    continue;
                int64_t at = j->synced ? j->last_sync_ms + m->min_interval_ms : now;
                if (at <= now) {
                    due = j;
                    break;
                }
                if (at < next)
                    next = at;
            }
        if (!due) {
            if (next == INT64_MAX) {
                pthread_cond_wait(&m->cv, &m->mu);
            } else {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                int64_t wait = next - now;
                ts.tv_sec += wait / 1000;
                ts.tv_nsec += (wait % 1000) * 1000000;
                if (ts.tv_nsec >= 1000000000) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000;
                }
                pthread_cond_timedwait(&m->cv, &m->mu, &ts);
            }
            continue;
        }
        size_t n = 0;
        mgroup **gs = snapshot(m, due, &n);
        char *name = xstrdup(due->name);
        due->dirty = false;
        due->synced = true;
        due->last_sync_ms = now;
        if (due->removed) {
            unlink_job(m, due);
            free(due->name);
            free(due);
        }
        pthread_mutex_unlock(&m->mu);

        metric_add(m_updates, (const char *[]){name}, 1);
        m->fn(m->ctx, name, (const target_group *const *)gs, n);
        for (size_t i = 0; i < n; i++)
            sd_mgroup_unref(gs[i]);
        free(gs);
        free(name);
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* ---- manager ---- */

sd_manager *sd_manager_new(sd_sync_fn fn, void *ctx, int64_t min_interval_ms)
{
    metrics_init();
    sd_manager *m = calloc(1, sizeof *m);
    if (!m)
        abort();
    m->fn = fn;
    m->ctx = ctx;
    m->min_interval_ms = min_interval_ms > 0 ? min_interval_ms : 0;
    m->cache_interval_ms = SD_CACHE_WRITE_INTERVAL_MS;
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->apply_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cv, &ca);
    pthread_cond_init(&m->pcv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&m->thread, NULL, sync_thread, m) != 0) {
        pthread_cond_destroy(&m->cv);
        pthread_cond_destroy(&m->pcv);
        pthread_mutex_destroy(&m->mu);
        pthread_mutex_destroy(&m->apply_mu);
        free(m);
        return NULL;
    }
    return m;
}

static mjob *find_job(sd_manager *m, const char *name)
{
    for (mjob *j = m->jobs; j; j = j->next)
        if (strcmp(j->name, name) == 0)
            return j;
    return NULL;
}

/* Stops and frees providers already unlinked from the manager (mu not held). */
static void stop_providers(mprov *list)
{
    while (list) {
        mprov *next = list->next;
        sd_provider *p = list->p;
        p->ops->stop(p);
        const char *lv[] = {p->job, p->name};
        metric_remove(m_discovered, lv);
        metric_remove(m_last_success, lv);
        sd_mcache_forget(p);
        sd_provider_free(p);
        mprov_free(list);
        list = next;
    }
}

int sd_manager_apply_config(sd_manager *m, const lookout_config *cfg)
{
    pthread_mutex_lock(&m->apply_mu);
    size_t n_jobs = cfg ? cfg->n_scrape_configs : 0;
    /* claimed[j][k]: block k of job j is served by a kept provider */
    bool **claimed = calloc(n_jobs ? n_jobs : 1, sizeof(bool *));
    if (!claimed)
        abort();
    for (size_t j = 0; j < n_jobs; j++) {
        size_t nb = cfg->scrape_configs[j].n_sd_configs;
        claimed[j] = calloc(nb ? nb : 1, sizeof(bool));
        if (!claimed[j])
            abort();
    }

    pthread_mutex_lock(&m->mu);
    m->applying = true;
    /* Keep providers whose job and block are unchanged; unlink the others (their groups go with them). */
    mprov *removed = NULL, **pp = &m->provs;
    while (*pp) {
        mprov *mp = *pp;
        bool keep = false;
        for (size_t j = 0; j < n_jobs && !keep; j++) {
            const scrape_config *sc = &cfg->scrape_configs[j];
            if (strcmp(sc->job_name, mp->p->job) != 0)
                continue;
            for (size_t k = 0; k < sc->n_sd_configs; k++)
                if (!claimed[j][k] && sd_block_equal(&sc->sd_configs[k], mp->p->cfg)) {
                    claimed[j][k] = true;
                    mp->order = (int)k;
                    keep = true;
                    break;
                }
        }
        if (keep) {
            pp = &mp->next;
        } else {
            *pp = mp->next;
            mp->next = removed;
            removed = mp;
            mp->job->dirty = true;
        }
    }
    /* Every job of the new config is synced once with its full state (downstream rebuilds its targets
     * on reload, as Prometheus' scrape manager expects); jobs that vanished get a final empty sync. */
    for (mjob *j = m->jobs; j; j = j->next) {
        j->removed = true;
        j->dirty = true;
    }
    for (size_t j = 0; j < n_jobs; j++) {
        const char *name = cfg->scrape_configs[j].job_name;
        mjob *mj = find_job(m, name);
        if (!mj) {
            mj = calloc(1, sizeof *mj);
            if (!mj)
                abort();
            mj->name = xstrdup(name);
            mj->next = m->jobs;
            m->jobs = mj;
        }
        mj->removed = false;
        mj->dirty = true;
    }
    pthread_mutex_unlock(&m->mu);

    stop_providers(removed);

    int failed = 0;
    char err[512];
    for (size_t j = 0; j < n_jobs; j++) {
        const scrape_config *sc = &cfg->scrape_configs[j];
        for (size_t k = 0; k < sc->n_sd_configs; k++) {
            if (claimed[j][k])
                continue;
            err[0] = 0;
            sd_provider *p = sd_provider_create(&sc->sd_configs[k], sc->job_name, err, sizeof err);
            if (!p) {
                log_error("sd", "cannot create service discovery", "job", sc->job_name, "err", err);
                failed++;
                continue;
            }
            mprov *mp = calloc(1, sizeof *mp);
            if (!mp)
                abort();
            mp->p = p;
            mp->order = (int)k;
            p->mgr = m;
            sd_mcache_seed(m, mp); /* before start: not yet visible to anyone, no lock needed */
            pthread_mutex_lock(&m->mu);
            p->id = m->next_id++;
            mp->job = find_job(m, sc->job_name);
            mp->next = m->provs;
            m->provs = mp;
            pthread_mutex_unlock(&m->mu);
            if (p->ops->start(p, err, sizeof err) != 0) {
                log_error("sd", "cannot start service discovery", "job", sc->job_name, "provider", p->name,
                          "err", err);
                failed++;
                pthread_mutex_lock(&m->mu);
                for (mprov **q = &m->provs; *q; q = &(*q)->next)
                    if (*q == mp) {
                        *q = mp->next;
                        break;
                    }
                mp->job->dirty = true;
                pthread_mutex_unlock(&m->mu);
                mp->next = NULL;
                stop_providers(mp);
            }
        }
    }
    /* Several managers (scrape, notifier) share the gauge: each adds its own change. */
    metric_add(m_failed, NULL, failed - m->failed);
    m->failed = failed;
    sd_mcache_gc(m);
    for (size_t j = 0; j < n_jobs; j++)
        free(claimed[j]);
    free(claimed);

    pthread_mutex_lock(&m->mu);
    m->applying = false;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_mutex_unlock(&m->apply_mu);
    return 0;
}

void sd_manager_free(sd_manager *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->apply_mu);
    pthread_mutex_lock(&m->mu);
    m->stopping = true;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL); /* from here on no callback runs */
    sd_mcache_writer_stop(m);          /* writes what is still pending */

    pthread_mutex_lock(&m->mu);
    mprov *list = m->provs;
    m->provs = NULL;
    pthread_mutex_unlock(&m->mu);
    stop_providers(list);

    while (m->jobs) {
        mjob *j = m->jobs;
        m->jobs = j->next;
        free(j->name);
        free(j);
    }
    pthread_mutex_unlock(&m->apply_mu);
    pthread_cond_destroy(&m->cv);
    pthread_cond_destroy(&m->pcv);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->apply_mu);
    if (m->failed)
        metric_add(m_failed, NULL, -m->failed);
    free(m->cache_dir);
    free(m);
}
