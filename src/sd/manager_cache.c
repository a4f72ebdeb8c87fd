/* manager_cache: the discovery manager's persisted last good groups (file format and identity in cache.h)
 * and the cache writer thread. Shares the manager's state and its mutex `mu` (manager_internal.h); the
 * writer waits on `pcv` under `mu` and writes with `mu` released, holding references to the groups. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sd/manager_internal.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

/* Rules, for every provider kind without help from the provider:
 * - seed: a new provider of a cacheable kind starts with the groups persisted under its id (job, provider
 *   name, canonical SD block). Until its first sd_provider_mark_success those groups are what the job sees;
 *   updates it sends meanwhile are kept (as usual) but not shown, so a provider that comes up half broken
 *   (one unreadable file, one failing list) cannot shrink the target set below the last good one.
 * - switch: at the first mark_success the provider's own groups replace the cached ones (one sync).
 * - persist: once a provider has succeeded, any change of its groups (and that first success) marks it
 *   dirty; the writer thread writes it at most once per cache_interval_ms, and at shutdown.
 * Providers report success only for good refreshes, so what is written is always a good set (possibly
 * still carrying the groups of a source that failed later: providers keep those on error, and so do we). */

static metric_family *m_from_cache;

static void cache_metrics_create(void)
{
    const char *jp[] = {"job", "provider"};
    m_from_cache = metric_family_get("lookout_sd_groups_from_cache", METRIC_GAUGE,
                                     "Target groups of a provider served from the persisted cache because "
                                     "it has not refreshed successfully since start (0 = fresh).",
                                     2, jp);
}

static void cache_metrics_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, cache_metrics_create);
}

mgroup **sd_mcache_visible(const mprov *mp, size_t *n)
{
    if (mp->c.from_cache) {
        *n = mp->c.n_cached;
        return mp->c.cached;
    }
    *n = mp->n;
    return mp->groups;
}

static void cache_drop_cached(mprov *mp)
{
    for (size_t i = 0; i < mp->c.n_cached; i++)
        sd_mgroup_unref(mp->c.cached[i]);
    free(mp->c.cached);
    mp->c.cached = NULL;
    mp->c.n_cached = mp->c.cached_targets = 0;
    mp->c.from_cache = false;
}

void sd_mcache_release(mprov *mp)
{
    cache_drop_cached(mp);
}

void sd_mcache_forget(const sd_provider *p)
{
    cache_metrics_init();
    const char *lv[] = {p->job, p->name};
    metric_remove(m_from_cache, lv);
}

void sd_mcache_seed(sd_manager *m, mprov *mp)
{
    sd_provider *p = mp->p;
    cache_metrics_init();
    if (!m->cache_dir || p->cfg->kind == SD_STATIC)
        return; /* static targets come from the config itself */
    if (sd_cache_id(p->job, p->name, p->cfg, mp->c.id, mp->c.cfg_hex) != 0) {
        log_debug("sd", "no persisted targets for this kind", "job", p->job, "provider", p->name);
        return;
    }
    mp->c.cacheable = true;
    const char *lv[] = {p->job, p->name};
    metric_set(m_from_cache, lv, 0);
    target_group *gs = NULL;
    size_t n = 0;
    double saved_at = 0;
    char err[512];
    int r = sd_cache_load(m->cache_dir, mp->c.id, p->job, p->name, mp->c.cfg_hex, &gs, &n, &saved_at, err,
                          sizeof err);
    if (r < 0) {
        log_warn("sd", "ignoring the persisted targets", "job", p->job, "provider", p->name, "err", err);
        return;
    }
    if (r == 0)
        return;
    /* Stored through sd_mprov_store into a scratch provider: the cached groups are built exactly like the
     * provider's own (same allocation and identity rules, duplicate sources collapsed, empty ones dropped). */
    mprov scratch;
    memset(&scratch, 0, sizeof scratch);
    for (size_t i = 0; i < n; i++)
        sd_mprov_store(&scratch, &gs[i]);
    sd_groups_free(gs, n);
    keymap_free(&scratch.index);
    mp->c.cached = scratch.groups;
    mp->c.n_cached = scratch.n;
    mp->c.cached_targets = scratch.n_targets;
    if (!mp->c.n_cached) {
        cache_drop_cached(mp);
        return;
    }
    mp->c.from_cache = true;
    metric_set(m_from_cache, lv, (double)mp->c.n_cached);
    sd_mgr_set_discovered(p, mp->c.cached_targets);
    char groups[32], targets[32], age[32];
    snprintf(groups, sizeof groups, "%zu", mp->c.n_cached);
    snprintf(targets, sizeof targets, "%zu", mp->c.cached_targets);
    snprintf(age, sizeof age, "%.0fs", saved_at > 0 ? sd_now_unix() - saved_at : 0.0);
    log_info("sd", "serving persisted (stale) targets until the first successful refresh", "job", p->job,
             "provider", p->name, "groups", groups, "targets", targets, "age", age);
}

/* mu held. */
void sd_mcache_note_change(sd_manager *m, mprov *mp)
{
    if (!mp->c.cacheable || !mp->c.fresh)
        return;
    mp->c.dirty = true;
    pthread_cond_signal(&m->pcv);
}

void sd_mcache_mark_success(sd_provider *p)
{
    sd_manager *m = p->mgr;
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    mprov *mp = sd_mprov_find(m, p);
    if (mp && mp->c.cacheable && !mp->c.fresh) {
        mp->c.fresh = true;
        mp->c.dirty = true; /* even an empty fresh set must replace the file */
        pthread_cond_signal(&m->pcv);
    }
    if (mp && mp->c.from_cache) {
        cache_drop_cached(mp);
        const char *lv[] = {p->job, p->name};
        metric_set(m_from_cache, lv, 0);
        sd_mgr_set_discovered(p, mp->n_targets);
        mp->job->dirty = true;
        pthread_cond_signal(&m->cv);
        char targets[32];
        snprintf(targets, sizeof targets, "%zu", mp->n_targets);
        log_info("sd", "fresh targets replace the persisted ones", "job", p->job, "provider", p->name, "targets",
                 targets);
    }
    pthread_mutex_unlock(&m->mu);
}

/* Writes one due provider with mu released; returns false when none is due (*next: when one will be). */
static bool cache_write_one(sd_manager *m, bool all, int64_t *next)
{
    int64_t now = sd_now_mono_ms();
    mprov *due = NULL;
    for (mprov *mp = m->provs; mp && !due; mp = mp->next) {
        if (!mp->c.dirty || mp->c.from_cache)
            continue;
        int64_t at = mp->c.written && !all ? mp->c.written_ms + m->cache_interval_ms : now;
        if (at <= now)
            due = mp;
        else if (at < *next)
            *next = at;
    }
    if (!due)
        return false;
    due->c.dirty = false;
    due->c.written = true;
    due->c.written_ms = now;
    mgroup **gs = malloc((due->n ? due->n : 1) * sizeof *gs);
    if (!gs)
        abort();
    size_t n = due->n;
    for (size_t k = 0; k < n; k++) {
        gs[k] = due->groups[k];
        atomic_fetch_add(&gs[k]->refs, 1);
    }
    char id[SD_CACHE_ID_LEN + 1], hex[SD_CACHE_ID_LEN + 1];
    memcpy(id, due->c.id, sizeof id);
    memcpy(hex, due->c.cfg_hex, sizeof hex);
    char *job = xstrdup(due->p->job), *name = xstrdup(due->p->name);
    pthread_mutex_unlock(&m->mu);

    char err[512];
    if (sd_cache_write(m->cache_dir, id, job, name, hex, (const target_group *const *)gs, n, err, sizeof err) != 0)
        log_warn("sd", "cannot persist discovered targets", "job", job, "provider", name, "err", err);
    for (size_t k = 0; k < n; k++)
        sd_mgroup_unref(gs[k]);
    free(gs);
    free(job);
    free(name);
    pthread_mutex_lock(&m->mu);
    return true;
}

static void *cache_writer(void *arg)
{
    sd_manager *m = arg;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        bool final = m->writer_stop;
        int64_t next = INT64_MAX;
        if (cache_write_one(m, final, &next))
            continue;
        if (final)
            break;
        if (next == INT64_MAX) {
            pthread_cond_wait(&m->pcv, &m->mu);
        } else {
            int64_t wait = next - sd_now_mono_ms();
            if (wait < 1)
                wait = 1;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (wait % 1000) * 1000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&m->pcv, &m->mu, &ts);
        }
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

void sd_manager_set_storage_path(sd_manager *m, const char *storage_path)
{
    if (!m || !storage_path || !*storage_path || m->cache_dir)
        return;
    size_t len = strlen(storage_path) + 4;
    char *dir = malloc(len);
    if (!dir)
        abort();
    snprintf(dir, len, "%s/sd", storage_path);
    /* both levels: the storage directory may not exist yet when discovery starts */
    if (mkdir(storage_path, 0755) != 0 && errno != EEXIST)
        log_warn("sd", "cannot create the storage directory", "path", storage_path, "err", strerror(errno));
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        log_warn("sd", "cannot create the discovery cache directory", "path", dir, "err", strerror(errno));
    pthread_mutex_lock(&m->mu);
    m->cache_dir = dir;
    m->writer_stop = false;
    m->writer_running = pthread_create(&m->writer, NULL, cache_writer, m) == 0;
    pthread_mutex_unlock(&m->mu);
    if (!m->writer_running)
        log_error("sd", "cannot start the discovery cache writer; targets are not persisted");
}

void sd_manager_set_cache_interval_ms(sd_manager *m, int64_t ms)
{
    pthread_mutex_lock(&m->mu);
    m->cache_interval_ms = ms > 0 ? ms : 0;
    pthread_mutex_unlock(&m->mu);
}

void sd_mcache_writer_stop(sd_manager *m)
{
    if (!m->writer_running)
        return;
    pthread_mutex_lock(&m->mu);
    m->writer_stop = true;
    pthread_cond_signal(&m->pcv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->writer, NULL);
    m->writer_running = false;
}

/* Removes the files of providers no longer configured (changed blocks get a new id). */
void sd_mcache_gc(sd_manager *m)
{
    if (!m->cache_dir)
        return;
    pthread_mutex_lock(&m->mu);
    size_t n = 0;
    for (mprov *mp = m->provs; mp; mp = mp->next)
        n++;
    char (*ids)[SD_CACHE_ID_LEN + 1] = malloc((n ? n : 1) * sizeof *ids);
    const char **keep = malloc((n ? n : 1) * sizeof *keep);
    if (!ids || !keep)
        abort();
    n = 0;
    for (mprov *mp = m->provs; mp; mp = mp->next)
        if (mp->c.cacheable) {
            memcpy(ids[n], mp->c.id, sizeof ids[n]);
            keep[n] = ids[n];
            n++;
        }
    pthread_mutex_unlock(&m->mu);
    size_t removed = sd_cache_gc(m->cache_dir, keep, n);
    if (removed) {
        char c[32];
        snprintf(c, sizeof c, "%zu", removed);
        log_debug("sd", "removed persisted targets of providers no longer configured", "files", c);
    }
    free(keep);
    free(ids);
}
