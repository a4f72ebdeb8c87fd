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
 * Persisted groups (the "cache" section at the end, file format in cache.h): a new provider is seeded with
 * the groups it had before the restart and serves them until its first sd_provider_mark_success; a provider
 * that has succeeded once has its groups written (debounced) whenever they change. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sd/cache.h"
#include "sd/sd_internal.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

typedef struct mgroup {
    target_group g; /* first: a mgroup * is a target_group * */
    atomic_int refs;
} mgroup;

typedef struct mjob {
    char *name;
    bool dirty;   /* changed since its last sync */
    bool synced;  /* synced at least once: later syncs wait for min_interval */
    bool removed; /* gone from the config: one final empty sync, then freed by the sync thread */
    int64_t last_sync_ms;
    struct mjob *next;
} mjob;

/* Per-provider state of the persisted groups (cache section). */
typedef struct mcache {
    bool cacheable;    /* a storage path is set and the kind has a canonical form (not static) */
    char id[SD_CACHE_ID_LEN + 1], cfg_hex[SD_CACHE_ID_LEN + 1];
    bool from_cache;   /* serving `cached` (loaded at start) instead of the provider's own groups */
    mgroup **cached;
    size_t n_cached, cached_targets;
    bool fresh;        /* succeeded at least once: its groups are good enough to persist */
    bool dirty;        /* changed since the last write */
    bool written;
    int64_t written_ms;
} mcache;

typedef struct mprov {
    sd_provider *p;
    mjob *job;
    int order; /* position among its job's SD blocks: groups are synced in config order */
    mgroup **groups;
    size_t n, cap;
    uint32_t *slots; /* open addressing source -> index+1 (0 = empty); slot_cap is a power of two */
    size_t slot_cap;
    size_t n_targets;
    mcache c;
    struct mprov *next;
} mprov;

struct sd_manager {
    pthread_mutex_t mu, apply_mu;
    pthread_cond_t cv;
    sd_sync_fn fn;
    void *ctx;
    int64_t min_interval_ms;
    mjob *jobs;
    mprov *provs;
    int next_id;
    bool applying; /* holds syncs back until the providers of a new config have started */
    bool stopping;
    pthread_t thread;
    /* cache section: the writer thread waits on pcv (mu) */
    char *cache_dir; /* <storage.path>/sd, NULL = no persistence */
    pthread_cond_t pcv;
    pthread_t writer;
    bool writer_running, writer_stop;
    int64_t cache_interval_ms; /* at most one write per provider per interval (5 s) */
};

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

/* cache section (end of file) */
static void cache_seed(sd_manager *m, mprov *mp);
static void cache_note_change(sd_manager *m, mprov *mp);
static void cache_mark_success(sd_provider *p);
static mgroup **cache_visible(const mprov *mp, size_t *n);
static void cache_release(mprov *mp);
static void cache_forget(const sd_provider *p);
static void cache_gc(sd_manager *m);
static void cache_writer_stop(sd_manager *m);

static void metrics_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, metrics_create);
}

/* ---- groups ---- */

/* A stored group is one allocation: the mgroup, its targets' label sets, every label, then the strings.
 * Within a group, a target's label name equal to the previous target's at the same position shares its
 * bytes (targets of one group mostly have the same label names). Immutable once built. */
static atomic_uint_fast64_t next_gen;

static size_t blob_str(char **dst, const char *s)
{
    size_t n = strlen(s) + 1;
    memcpy(*dst, s, n);
    *dst += n;
    return n;
}

static mgroup *mgroup_new(const target_group *src)
{
    size_t n_labels = src->labels.n, bytes = strlen(src->source ? src->source : "") + 1;
    for (size_t i = 0; i < src->labels.n; i++)
        bytes += strlen(src->labels.v[i].name) + strlen(src->labels.v[i].value) + 2;
    for (size_t t = 0; t < src->n_targets; t++) {
        const labelset *ls = &src->targets[t], *prev = t ? &src->targets[t - 1] : NULL;
        n_labels += ls->n;
        for (size_t i = 0; i < ls->n; i++) {
            if (!(prev && i < prev->n && strcmp(prev->v[i].name, ls->v[i].name) == 0))
                bytes += strlen(ls->v[i].name) + 1;
            bytes += strlen(ls->v[i].value) + 1;
        }
    }
    size_t size = sizeof(mgroup) + src->n_targets * sizeof(labelset) + n_labels * sizeof(label) + bytes;
    mgroup *g = malloc(size);
    if (!g)
        abort();
    labelset *sets = (labelset *)(g + 1);
    label *lab = (label *)(sets + src->n_targets);
    char *str = (char *)(lab + n_labels);
    g->g.source = str;
    blob_str(&str, src->source ? src->source : "");
    g->g.labels = (labelset){src->labels.n ? lab : NULL, src->labels.n, src->labels.n};
    for (size_t i = 0; i < src->labels.n; i++, lab++) {
        lab->name = str;
        blob_str(&str, src->labels.v[i].name);
        lab->value = str;
        blob_str(&str, src->labels.v[i].value);
    }
    g->g.targets = src->n_targets ? sets : NULL;
    g->g.n_targets = src->n_targets;
    for (size_t t = 0; t < src->n_targets; t++) {
        const labelset *ls = &src->targets[t], *prev = t ? &src->targets[t - 1] : NULL;
        sets[t] = (labelset){ls->n ? lab : NULL, ls->n, ls->n};
        for (size_t i = 0; i < ls->n; i++, lab++) {
            if (prev && i < prev->n && strcmp(prev->v[i].name, ls->v[i].name) == 0) {
                lab->name = sets[t - 1].v[i].name;
            } else {
                lab->name = str;
                blob_str(&str, ls->v[i].name);
            }
            lab->value = str;
            blob_str(&str, ls->v[i].value);
        }
    }
    g->g.gen = atomic_fetch_add(&next_gen, 1) + 1;
    atomic_init(&g->refs, 1);
    return g;
}

static void mgroup_unref(mgroup *g)
{
    if (g && atomic_fetch_sub(&g->refs, 1) == 1)
        free(g); /* one allocation (mgroup_new) */
}

const target_group *target_group_freeze(const target_group *g)
{
    return &mgroup_new(g)->g;
}

const target_group *target_group_ref(const target_group *g)
{
    atomic_fetch_add(&((mgroup *)g)->refs, 1);
    return g;
}

void target_group_unref(const target_group *g)
{
    mgroup_unref((mgroup *)g);
}

static bool group_equal(const target_group *a, const target_group *b)
{
    if (a->n_targets != b->n_targets || !labelset_equal(&a->labels, &b->labels))
        return false;
    for (size_t i = 0; i < a->n_targets; i++)
        if (!labelset_equal(&a->targets[i], &b->targets[i]))
            return false;
    return true;
}

static size_t slot_home(const mprov *mp, const char *source)
{
    return (size_t)fnv1a64(FNV64_OFFSET, source, strlen(source)) & (mp->slot_cap - 1);
}

/* The slot holding source, or the empty slot where it would go. */
static size_t slot_find(const mprov *mp, const char *source)
{
    size_t i = slot_home(mp, source);
    while (mp->slots[i] && strcmp(mp->groups[mp->slots[i] - 1]->g.source, source) != 0)
        i = (i + 1) & (mp->slot_cap - 1);
    return i;
}

static void slots_rebuild(mprov *mp, size_t cap)
{
    free(mp->slots);
    mp->slot_cap = cap;
    mp->slots = calloc(cap, sizeof(uint32_t));
    if (!mp->slots)
        abort();
    for (size_t k = 0; k < mp->n; k++)
        mp->slots[slot_find(mp, mp->groups[k]->g.source)] = (uint32_t)(k + 1);
}

/* Empties slot i and shifts the rest of its cluster back so lookups never stop early. */
static void slot_delete(mprov *mp, size_t i)
{
    size_t mask = mp->slot_cap - 1, j = i;
    mp->slots[i] = 0;
    for (;;) {
        j = (j + 1) & mask;
        if (!mp->slots[j])
            return;
        size_t h = slot_home(mp, mp->groups[mp->slots[j] - 1]->g.source);
        /* move j into the hole i unless its home lies cyclically in (i, j] */
        bool stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (!stays) {
            mp->slots[i] = mp->slots[j];
            mp->slots[j] = 0;
            i = j;
        }
    }
}

/* Stores one group (copied) for mp; returns true when the provider's groups changed. */
static bool mprov_store(mprov *mp, const target_group *g)
{
    if (!g->source)
        return false;
    if (!mp->slots)
        slots_rebuild(mp, 16);
    size_t s = slot_find(mp, g->source);
    if (mp->slots[s]) {
        size_t k = mp->slots[s] - 1;
        mgroup *old = mp->groups[k];
        if (g->n_targets && group_equal(&old->g, g))
            return false;
        mp->n_targets -= old->g.n_targets;
        if (!g->n_targets) {
            /* an empty group removes its source: swap the last group into k */
            slot_delete(mp, s);
            mp->n--;
            if (k != mp->n) {
                mp->groups[k] = mp->groups[mp->n];
                mp->slots[slot_find(mp, mp->groups[k]->g.source)] = (uint32_t)(k + 1);
            }
            mgroup_unref(old);
            return true;
        }
        mp->groups[k] = mgroup_new(g);
        mp->n_targets += g->n_targets;
        mgroup_unref(old);
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
    mp->groups[mp->n++] = mgroup_new(g);
    mp->n_targets += g->n_targets;
    if (mp->n * 2 > mp->slot_cap)
        slots_rebuild(mp, mp->slot_cap * 2);
    else
        mp->slots[s] = (uint32_t)mp->n;
    return true;
}

static void mprov_free(mprov *mp)
{
    cache_release(mp);
    for (size_t k = 0; k < mp->n; k++)
        mgroup_unref(mp->groups[k]);
    free(mp->groups);
    free(mp->slots);
    free(mp);
}

/* ---- provider entry points ---- */

static mprov *find_mprov(sd_manager *m, const sd_provider *p)
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
    mprov *mp = find_mprov(m, p);
    if (mp) { /* NULL: the provider is being stopped; its groups are already dropped */
        bool changed = false;
        for (size_t i = 0; i < n; i++)
            changed |= mprov_store(mp, &groups[i]);
        if (changed)
            cache_note_change(m, mp);
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
    cache_mark_success(p);
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
            cache_visible(mp, &vn);
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
        mgroup **vg = cache_visible(ps[i], &vn);
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
            mgroup_unref(gs[i]);
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
        cache_forget(p);
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
            cache_seed(m, mp); /* before start: not yet visible to anyone, no lock needed */
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
    metric_set(m_failed, NULL, failed);
    cache_gc(m);
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
    cache_writer_stop(m);          /* writes what is still pending */

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
    free(m->cache_dir);
    free(m);
}

/* ---- cache: persisted last good groups (cache.h) ----
 *
 * Rules, for every provider kind without help from the provider:
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

static mgroup **cache_visible(const mprov *mp, size_t *n)
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
        mgroup_unref(mp->c.cached[i]);
    free(mp->c.cached);
    mp->c.cached = NULL;
    mp->c.n_cached = mp->c.cached_targets = 0;
    mp->c.from_cache = false;
}

static void cache_release(mprov *mp)
{
    cache_drop_cached(mp);
}

static void cache_forget(const sd_provider *p)
{
    cache_metrics_init();
    const char *lv[] = {p->job, p->name};
    metric_remove(m_from_cache, lv);
}

static void cache_seed(sd_manager *m, mprov *mp)
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
    /* Stored through mprov_store into a scratch provider: the cached groups are built exactly like the
     * provider's own (same allocation and identity rules, duplicate sources collapsed, empty ones dropped). */
    mprov scratch;
    memset(&scratch, 0, sizeof scratch);
    for (size_t i = 0; i < n; i++)
        mprov_store(&scratch, &gs[i]);
    sd_groups_free(gs, n);
    free(scratch.slots);
    mp->c.cached = scratch.groups;
    mp->c.n_cached = scratch.n;
    mp->c.cached_targets = scratch.n_targets;
    if (!mp->c.n_cached) {
        cache_drop_cached(mp);
        return;
    }
    mp->c.from_cache = true;
    metric_set(m_from_cache, lv, (double)mp->c.n_cached);
    metric_set(m_discovered, lv, (double)mp->c.cached_targets);
    char groups[32], targets[32], age[32];
    snprintf(groups, sizeof groups, "%zu", mp->c.n_cached);
    snprintf(targets, sizeof targets, "%zu", mp->c.cached_targets);
    snprintf(age, sizeof age, "%.0fs", saved_at > 0 ? sd_now_unix() - saved_at : 0.0);
    log_info("sd", "serving persisted (stale) targets until the first successful refresh", "job", p->job,
             "provider", p->name, "groups", groups, "targets", targets, "age", age);
}

/* mu held. */
static void cache_note_change(sd_manager *m, mprov *mp)
{
    if (!mp->c.cacheable || !mp->c.fresh)
        return;
    mp->c.dirty = true;
    pthread_cond_signal(&m->pcv);
}

static void cache_mark_success(sd_provider *p)
{
    sd_manager *m = p->mgr;
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    mprov *mp = find_mprov(m, p);
    if (mp && mp->c.cacheable && !mp->c.fresh) {
        mp->c.fresh = true;
        mp->c.dirty = true; /* even an empty fresh set must replace the file */
        pthread_cond_signal(&m->pcv);
    }
    if (mp && mp->c.from_cache) {
        cache_drop_cached(mp);
        const char *lv[] = {p->job, p->name};
        metric_set(m_from_cache, lv, 0);
        metric_set(m_discovered, lv, (double)mp->n_targets);
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
        mgroup_unref(gs[k]);
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

static void cache_writer_stop(sd_manager *m)
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
static void cache_gc(sd_manager *m)
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
