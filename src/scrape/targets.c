/* targets: see targets.h. Per pool (struct target_pool_priv):
 *   - gtab: the cached groups (tgroup), by identity (the group's gen, or a content hash for plain groups;
 *     a key maps to a chain, since identical plain groups share one); each keeps a reference on its frozen group and one tres per target: what it built to;
 *   - order: the groups of the last sync in its order (discovery order, for dedup and the dropped list);
 *   - atab: hash -> active target; `active` (display order) is merged incrementally;
 *   - strs: interned strings of the final label sets.
 * An active target counts the discovered targets that built to it (n_src); it goes when that reaches 0. */
#include "scrape/targets.h"

#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/keymap.h"
#include "util/strtab.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/hash.h"
#include "util/xalloc.h"

struct target_manager {
    pthread_rwlock_t lock;
    target_pool **pools; /* sorted by job name */
    size_t n_pools;
    target_hook_fn hook;
    void *hook_ctx;
};

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

static metric_family *metric_builds(void)
{
    static const char *names[] = {"job"};
    return metric_family_get("lookout_target_builds_total", METRIC_COUNTER,
                             "Total number of discovered targets run through target building (relabeling); "
                             "only groups that changed are rebuilt.",
                             1, names);
}

/* Prometheus' prometheus_target_scrape_pool_exceeded_target_limit_total: no labels, one increment per
 * sync (discovery update, reload) of a pool that finds itself over its target_limit. */
static metric_family *metric_exceeded_target_limit(void)
{
    return metric_family_get("lookout_target_scrape_pool_exceeded_target_limit_total", METRIC_COUNTER,
                             "Total number of times scrape pools hit the target limit, during sync or config reload.",
                             0, NULL);
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
    metric_remove(metric_builds(), v);
}

/* ---- pool internals ---- */

#define TRES_NONE 255 /* not built (the job had no scrape_config) */

typedef struct tres {
    uint8_t status; /* target_build_status or TRES_NONE */
    int32_t rule;   /* DROPPED: rule index */
    union {
        active_target *a; /* ACTIVE */
        char *error;      /* FAILED */
    } u;
} tres;

typedef struct target_tgroup {
    const target_group *g; /* frozen; one reference held */
    uint64_t key;          /* g's gen, or a content hash of the group (by_content) */
    bool by_content;
    bool seen; /* claimed by the update in progress */
    uint32_t n_dropped, n_failed;
    tres *res; /* g->n_targets */
    struct target_tgroup *next;
} tgroup;

struct target_pool_priv {
    keymap64 gtab;  /* key -> chain of cached groups with that key (tgroup.next), newest first */
    size_t n_tgroups;
    tgroup **order; /* the last sync's groups, in its order */
    size_t n_order;
    keymap64 atab; /* hash -> active target */
    strtab strs;
    size_t n_dup; /* active targets with n_src > 1 */
    /* target_limit: the active count the pool's targets were last told about while over the limit (0 = not
     * over). Prometheus' forced error names that count, so every target hears again when it changes. */
    size_t limit_n;
};

static void gtab_insert(struct target_pool_priv *pv, tgroup *tg)
{
    tg->next = keymap64_put(&pv->gtab, tg->key, tg);
    pv->n_tgroups++;
}

static void gtab_remove(struct target_pool_priv *pv, tgroup *tg)
{
    tgroup *head = keymap64_get(&pv->gtab, tg->key);
    if (head == tg) {
        if (tg->next)
            keymap64_put(&pv->gtab, tg->key, tg->next);
        else
            keymap64_del(&pv->gtab, tg->key);
        pv->n_tgroups--;
        return;
    }
    for (tgroup **pp = head ? &head->next : NULL; pp && *pp; pp = &(*pp)->next)
        if (*pp == tg) {
            *pp = tg->next;
            pv->n_tgroups--;
            return;
        }
}

static bool group_equal(const target_group *a, const target_group *b)
{
    if (a->n_targets != b->n_targets || strcmp(a->source ? a->source : "", b->source ? b->source : "") != 0 ||
        !labelset_equal(&a->labels, &b->labels))
        return false;
    for (size_t i = 0; i < a->n_targets; i++)
        if (!labelset_equal(&a->targets[i], &b->targets[i]))
            return false;
    return true;
}

static uint64_t group_content_hash(const target_group *g)
{
    uint64_t h = fnv1a64(FNV64_OFFSET, g->source ? g->source : "", g->source ? strlen(g->source) : 0);
    label_view gl = target_group_labels(g);
    h ^= label_view_hash(&gl);
    h *= 1099511628211ULL;
    for (size_t i = 0; i < g->n_targets; i++) {
        h ^= labelset_hash(&g->targets[i]);
        h *= 1099511628211ULL;
    }
    return h;
}

/* An unclaimed cached group with g's identity, or NULL. */
static tgroup *gtab_find(struct target_pool_priv *pv, const target_group *g)
{
    if (!pv->n_tgroups)
        return NULL;
    bool by_content = g->gen == 0;
    uint64_t key = by_content ? group_content_hash(g) : g->gen;
    for (tgroup *e = keymap64_get(&pv->gtab, key); e; e = e->next)
        if (!e->seen && e->by_content == by_content && (!by_content || group_equal(e->g, g)))
            return e;
    return NULL;
}

static active_target *atab_find(const struct target_pool_priv *pv, uint64_t hash)
{
    return keymap64_get(&pv->atab, hash);
}

static void atab_insert(struct target_pool_priv *pv, active_target *a)
{
    keymap64_put(&pv->atab, a->t.hash, a);
}

static void atab_remove(struct target_pool_priv *pv, active_target *a)
{
    keymap64_del(&pv->atab, a->t.hash);
}

/* One allocation: the target, its label array, its URL. Label strings are interned. */
static active_target *active_new(struct target_pool_priv *pv, const built_target *bt)
{
    size_t n = bt->labels.n, ulen = strlen(bt->url ? bt->url : "") + 1;
    active_target *a = malloc(sizeof *a + n * sizeof(label) + ulen);
    if (!a)
        abort();
    memset(a, 0, sizeof *a);
    label *v = (label *)(a + 1);
    char *url = (char *)(v + n);
    memcpy(url, bt->url ? bt->url : "", ulen);
    for (size_t i = 0; i < n; i++) {
        v[i].name = (char *)strtab_get(&pv->strs, bt->labels.v[i].name);
        v[i].value = (char *)strtab_get(&pv->strs, bt->labels.v[i].value);
    }
    a->t.hash = bt->hash;
    a->t.url = url;
    a->t.labels = (labelset){n ? v : NULL, n, n};
    a->n_src = 1;
    return a;
}

static void active_free(struct target_pool_priv *pv, active_target *a)
{
    for (size_t i = 0; i < a->t.labels.n; i++) {
        strtab_put(&pv->strs, a->t.labels.v[i].name);
        strtab_put(&pv->strs, a->t.labels.v[i].value);
    }
    free(a->last_error);
    free(a);
}

/* The hook's view of an active target: shallow, valid while the target lives. error: the pool's forced
 * scrape error (target_limit), "" when none. */
static built_target hook_view(const active_target *a, const char *error)
{
    built_target bt;
    memset(&bt, 0, sizeof bt);
    bt.status = TARGET_ACTIVE;
    snprintf(bt.error, sizeof bt.error, "%s", error);
    labelset_init(&bt.discovered);
    bt.labels = a->t.labels;
    bt.url = (char *)a->t.url;
    bt.dropped_by = -1;
    bt.hash = a->t.hash;
    return bt;
}

static void tgroup_free(struct target_pool_priv *pv, tgroup *tg)
{
    (void)pv;
    for (size_t i = 0; tg->res && i < tg->g->n_targets; i++)
        if (tg->res[i].status == TARGET_FAILED)
            free(tg->res[i].u.error);
    free(tg->res);
    target_group_unref(tg->g);
    free(tg);
}

static void free_dropped(target_pool *p)
{
    free(p->dropped);
    p->dropped = NULL;
    p->n_dropped = 0;
}

static void free_failed(target_pool *p)
{
    free(p->failed);
    p->failed = NULL;
    p->n_failed = 0;
}

static target_pool *pool_new(const char *job, const scrape_config *sc)
{
    target_pool *p = xcalloc(1, sizeof *p);
    p->job = strdup(job);
    if (!p->job)
        abort();
    p->sc = sc;
    p->priv = xcalloc(1, sizeof *p->priv);
    pthread_mutex_init(&p->state_mu, NULL);
    return p;
}

static void pool_free(target_pool *p)
{
    if (!p)
        return;
    struct target_pool_priv *pv = p->priv;
    for (size_t i = 0; i < p->n_active; i++)
        active_free(pv, p->active[i]);
    free(p->active);
    free_dropped(p);
    free_failed(p);
    for (size_t i = 0; i < pv->gtab.cap; i++)
        for (tgroup *e = pv->gtab.slots[i].value, *next; e; e = next) {
            next = e->next;
            tgroup_free(pv, e);
        }
    keymap64_free(&pv->gtab);
    free(pv->order);
    keymap64_free(&pv->atab);
    strtab_free(&pv->strs);
    free(pv);
    pthread_mutex_destroy(&p->state_mu);
    free(p->job);
    free(p);
}

static int cmp_display(const void *a, const void *b)
{
    const active_target *x = *(active_target *const *)a, *y = *(active_target *const *)b;
    int c = strcmp(x->t.url, y->t.url);
    if (c)
        return c;
    return x->t.hash < y->t.hash ? -1 : x->t.hash > y->t.hash;
}

static int cmp_hash(const void *a, const void *b)
{
    uint64_t x = (*(active_target *const *)a)->t.hash, y = (*(active_target *const *)b)->t.hash;
    return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct tlist {
    active_target **v;
    size_t n, cap;
} tlist;

static void tlist_push(tlist *l, active_target *a)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = a;
}

/* State of one update (sync or rebuild). */
typedef struct update {
    target_manager *m;
    target_pool *p;
    tlist added, removed;
    uint64_t *known_failed; /* discovered-label hashes of the failures listed before: logged once */
    size_t n_known_failed;
    size_t n_built;
} update;

/* Runs every target of a new cached group through target building and records the results. */
static void build_group(update *u, tgroup *tg)
{
    target_pool *p = u->p;
    struct target_pool_priv *pv = p->priv;
    const scrape_config *sc = p->sc;
    const target_group *grp = tg->g;
    const label_view gl = target_group_labels(grp);
    tg->res = grp->n_targets ? xcalloc(grp->n_targets, sizeof *tg->res) : NULL;
    for (size_t i = 0; i < grp->n_targets; i++) {
        tres *r = &tg->res[i];
        if (!sc) {
            r->status = TRES_NONE;
            continue;
        }
        built_target bt; /* without its discovered labels: a failure, rare, computes them */
        target_build_final_view(sc, &gl, &grp->targets[i], &bt);
        u->n_built++;
        r->status = (uint8_t)bt.status;
        switch (bt.status) {
        case TARGET_ACTIVE: {
            active_target *a = atab_find(pv, bt.hash);
            if (a) {
                /* A duplicate (or the same target from a changed group): the newest contribution is
                 * the origin until the dedup pass says otherwise. */
                if (++a->n_src == 2)
                    pv->n_dup++;
            } else {
                a = active_new(pv, &bt);
                a->fresh = true;
                atab_insert(pv, a);
                tlist_push(&u->added, a);
            }
            a->origin = tg;
            a->origin_idx = (uint32_t)i;
            r->u.a = a;
            break;
        }
        case TARGET_DROPPED:
            r->rule = bt.dropped_by;
            tg->n_dropped++;
            p->dropped_count++;
            break;
        case TARGET_FAILED:
        default: {
            r->status = TARGET_FAILED;
            r->u.error = strdup(bt.error);
            if (!r->u.error)
                abort();
            tg->n_failed++;
            p->failed_count++;
            const char *addr;
            uint64_t h = target_discovered_hash_view(sc, &gl, &grp->targets[i], &addr);
            if (!bsearch(&h, u->known_failed, u->n_known_failed, sizeof h, cmp_u64))
                log_error("scrape", "Creating target failed", "job", p->job, "address", addr ? addr : "", "err",
                          bt.error);
            break;
        }
        }
        built_target_free(&bt);
    }
}

/* Withdraws a cached group's contributions and frees it. */
static void release_group(update *u, tgroup *tg)
{
    target_pool *p = u->p;
    struct target_pool_priv *pv = p->priv;
    for (size_t i = 0; i < tg->g->n_targets; i++) {
        tres *r = &tg->res[i];
        if (r->status == TARGET_ACTIVE) {
            active_target *a = r->u.a;
            if (--a->n_src == 1)
                pv->n_dup--;
            else if (a->n_src == 0)
                tlist_push(&u->removed, a);
        }
    }
    p->dropped_count -= tg->n_dropped;
    p->failed_count -= tg->n_failed;
    gtab_remove(pv, tg);
    tgroup_free(pv, tg);
}

static tgroup *tgroup_new(const target_group *g)
{
    tgroup *tg = xcalloc(1, sizeof *tg);
    if (g->gen) {
        tg->g = target_group_ref(g);
        tg->key = g->gen;
    } else {
        tg->key = group_content_hash(g);
        tg->by_content = true;
        tg->g = target_group_freeze(g);
    }
    return tg;
}

/* The dropped and failed lists, in discovery order, from the cached results. */
static void rebuild_lists(target_pool *p)
{
    struct target_pool_priv *pv = p->priv;
    const scrape_config *sc = p->sc;
    uint64_t keep = sc ? sc->keep_dropped_targets : 0;
    free_dropped(p);
    free_failed(p);
    /* Unique across pools and managers: a pool removed and created again under the same job never
     * repeats a generation a reader kept. */
    static uint64_t gen_counter;
    p->dropped_gen = __atomic_add_fetch(&gen_counter, 1, __ATOMIC_RELAXED);
    if (!sc)
        return; /* nothing was built */
    size_t cap_d = 0;
    for (size_t k = 0; k < pv->n_order; k++) {
        const tgroup *tg = pv->order[k];
        if (!tg->n_dropped && !tg->n_failed)
            continue;
        for (size_t i = 0; i < tg->g->n_targets; i++) {
            const tres *r = &tg->res[i];
            if (r->status == TARGET_DROPPED && (keep == 0 || p->n_dropped < keep)) {
                if (p->n_dropped == cap_d) {
                    cap_d = cap_d ? cap_d * 2 : 16;
                    p->dropped = xrealloc(p->dropped, cap_d * sizeof *p->dropped);
                }
                dropped_target *d = &p->dropped[p->n_dropped++];
                d->grp = tg;
                d->idx = (uint32_t)i;
                d->rule_index = r->rule;
                d->action = (r->rule >= 0 && sc && (size_t)r->rule < sc->n_relabel_configs)
                                ? sc->relabel_configs[r->rule].action
                                : RELABEL_DROP;
            } else if (r->status == TARGET_FAILED && p->n_failed < TARGETS_MAX_FAILED) {
                p->failed = xrealloc(p->failed, (p->n_failed + 1) * sizeof *p->failed);
                failed_target *f = &p->failed[p->n_failed++];
                f->grp = tg;
                f->idx = (uint32_t)i;
                snprintf(f->error, sizeof f->error, "%s", r->u.error);
            }
        }
    }
}

/* Brings the pool to the group set `groups` (n). force: rebuild every group (the scrape_config changed;
 * kept targets are reported as updated). old_sc: the config the current targets were built with (for
 * removal hooks). Called with the write lock held. Returns true after a big change (worth a malloc_trim
 * once the lock is released). */
static bool pool_update(target_manager *m, target_pool *p, const target_group *const *groups, size_t n,
                        bool force, const scrape_config *old_sc)
{
    struct target_pool_priv *pv = p->priv;
    update u = {.m = m, .p = p};
    size_t n_dup_before = pv->n_dup;

    u.known_failed = xcalloc(p->n_failed, sizeof *u.known_failed);
    for (size_t i = 0; p->sc && i < p->n_failed; i++) {
        const target_group *g = p->failed[i].grp->g;
        label_view gl = target_group_labels(g);
        u.known_failed[u.n_known_failed++] =
            target_discovered_hash_view(p->sc, &gl, &g->targets[p->failed[i].idx], NULL);
    }
    qsort(u.known_failed, u.n_known_failed, sizeof *u.known_failed, cmp_u64);

    for (size_t k = 0; k < pv->n_order; k++)
        pv->order[k]->seen = false;
    bool changed = force || n != pv->n_order;
    tgroup **order = xcalloc(n, sizeof *order);
    for (size_t i = 0; i < n; i++) {
        tgroup *tg = force ? NULL : gtab_find(pv, groups[i]);
        if (!tg) {
            tg = tgroup_new(groups[i]);
            if (force && i < pv->n_order) { /* same group, same identity as before */
                tg->key = pv->order[i]->key;
                tg->by_content = pv->order[i]->by_content;
            }
            gtab_insert(pv, tg);
            build_group(&u, tg);
            changed = true;
        } else if (i >= pv->n_order || pv->order[i] != tg) {
            changed = true;
        }
        tg->seen = true;
        order[i] = tg;
    }
    for (size_t k = 0; k < pv->n_order; k++)
        if (!pv->order[k]->seen)
            release_group(&u, pv->order[k]);
    free(pv->order);
    pv->order = order;
    pv->n_order = n;
    free(u.known_failed);

    if (u.n_built) {
        const char *v[] = {p->job};
        metric_add(metric_builds(), v, (double)u.n_built);
    }

    /* Dedup: with duplicates around, the discovered labels shown are the last duplicate's in discovery
     * order. Without any, each target's only contribution set its origin. */
    if (n_dup_before || pv->n_dup)
        for (size_t k = 0; k < n; k++)
            for (size_t i = 0; i < order[k]->g->n_targets; i++)
                if (order[k]->res[i].status == TARGET_ACTIVE) {
                    order[k]->res[i].u.a->origin = order[k];
                    order[k]->res[i].u.a->origin_idx = (uint32_t)i;
                }
    if (changed && (p->dropped_count || p->n_dropped || p->failed_count || p->n_failed))
        rebuild_lists(p);

    /* Display order: the survivors (already sorted) merged with the sorted additions. */
    if (u.added.n || u.removed.n) {
        if (u.added.n)
            qsort(u.added.v, u.added.n, sizeof *u.added.v, cmp_display);
        size_t n_new = p->n_active + u.added.n - u.removed.n;
        active_target **act = xcalloc(n_new, sizeof *act);
        size_t a = 0, b = 0, o = 0;
        while (a < p->n_active || b < u.added.n) {
            if (a < p->n_active && p->active[a]->n_src == 0) {
                a++;
                continue;
            }
            if (b == u.added.n || (a < p->n_active && cmp_display(&p->active[a], &u.added.v[b]) < 0))
                act[o++] = p->active[a++];
            else
                act[o++] = u.added.v[b++];
        }
        free(p->active);
        p->active = act;
        p->n_active = o;
    }

    /* target_limit, as Prometheus' scrapePool.refreshTargetLimitErr: more active targets than the limit
     * makes every target of the pool fail each scrape with this error (no request is sent) until the pool
     * is back within the limit. */
    char limit_err[128] = "";
    size_t limit_n = 0;
    if (p->sc && p->sc->target_limit && p->n_active > p->sc->target_limit) {
        limit_n = p->n_active;
        metric_add(metric_exceeded_target_limit(), NULL, 1);
        snprintf(limit_err, sizeof limit_err, "target_limit exceeded (number of targets: %zu, limit: %llu)",
                 p->n_active, (unsigned long long)p->sc->target_limit);
    }
    bool limit_changed = limit_n != pv->limit_n;
    pv->limit_n = limit_n;

    /* Hooks: removals first, then updates, then additions (hash order within each). */
    if (u.removed.n)
        qsort(u.removed.v, u.removed.n, sizeof *u.removed.v, cmp_hash);
    for (size_t i = 0; i < u.removed.n; i++) {
        active_target *a = u.removed.v[i];
        if (m->hook) {
            built_target bt = hook_view(a, "");
            m->hook(m->hook_ctx, TARGET_REMOVED, p->job, &bt, old_sc);
        }
        atab_remove(pv, a);
        active_free(pv, a);
    }
    if ((force || limit_changed) && m->hook) {
        tlist upd = {0};
        for (size_t i = 0; i < p->n_active; i++)
            if (!p->active[i]->fresh)
                tlist_push(&upd, p->active[i]);
        if (upd.n)
            qsort(upd.v, upd.n, sizeof *upd.v, cmp_hash);
        for (size_t i = 0; i < upd.n; i++) {
            built_target bt = hook_view(upd.v[i], limit_err);
            m->hook(m->hook_ctx, TARGET_UPDATED, p->job, &bt, p->sc);
        }
        free(upd.v);
    }
    if (u.added.n)
        qsort(u.added.v, u.added.n, sizeof *u.added.v, cmp_hash);
    for (size_t i = 0; i < u.added.n; i++) {
        u.added.v[i]->fresh = false;
        if (m->hook) {
            built_target bt = hook_view(u.added.v[i], limit_err);
            m->hook(m->hook_ctx, TARGET_ADDED, p->job, &bt, p->sc);
        }
    }
    bool big = u.removed.n > 10000 || u.n_built > 10000;
    free(u.added.v);
    free(u.removed.v);
    pool_metrics(p);
    return big;
}

/* Rebuilds every group of the pool with its (new) scrape_config. */
static void pool_rebuild(target_manager *m, target_pool *p, const scrape_config *old_sc)
{
    struct target_pool_priv *pv = p->priv;
    size_t n = pv->n_order;
    const target_group **gs = xcalloc(n, sizeof *gs);
    for (size_t i = 0; i < n; i++)
        gs[i] = target_group_ref(pv->order[i]->g); /* kept alive while their tgroups go */
    (void)pool_update(m, p, gs, n, true, old_sc);
    for (size_t i = 0; i < n; i++)
        target_group_unref(gs[i]);
    free(gs);
}

/* Removes every target of a pool (hooks told) and frees it. */
static void pool_remove(target_manager *m, target_pool *p)
{
    if (m->hook) {
        active_target **v = xcalloc(p->n_active, sizeof *v);
        memcpy(v, p->active, p->n_active * sizeof *v);
        if (p->n_active)
            qsort(v, p->n_active, sizeof *v, cmp_hash);
        for (size_t i = 0; i < p->n_active; i++) {
            built_target bt = hook_view(v[i], "");
            m->hook(m->hook_ctx, TARGET_REMOVED, p->job, &bt, p->sc);
        }
        free(v);
    }
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
    metric_add(metric_exceeded_target_limit(), NULL, 0); /* exported from the start, as Prometheus does */
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
            pool_rebuild(m, p, old_sc);
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
    pthread_rwlock_wrlock(&m->lock);
    target_pool *p = find_pool(m, job);
    if (!p) {
        pthread_rwlock_unlock(&m->lock);
        log_debug("scrape", "sync for a job that is not configured; ignored", "job", job);
        return;
    }
    bool big = pool_update(m, p, groups, n, false, p->sc);
    pthread_rwlock_unlock(&m->lock);
    /* A big change leaves freed temporaries (built targets, discovered labels) in this thread's malloc
     * arena: give them back to the system, outside the lock. */
    if (big)
        malloc_trim(0);
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
    active_target *t = p ? atab_find(p->priv, hash) : NULL;
    if (t) {
        bool failed = error && *error;
        char *e = NULL;
        if (failed) {
            e = strndup(error, sizeof ((target_state *)0)->last_error - 1);
            if (!e)
                abort();
        }
        pthread_mutex_lock(&p->state_mu);
        t->health = failed ? TARGET_HEALTH_DOWN : TARGET_HEALTH_UP;
        char *old = t->last_error;
        t->last_error = e;
        t->last_scrape_ms = start_ms;
        t->last_duration_s = duration_s;
        pthread_mutex_unlock(&p->state_mu);
        free(old);
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

size_t targets_pool_lower_bound(const target_manager *m, const char *job)
{
    size_t lo = 0, hi = m->n_pools;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(m->pools[mid]->job, job) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

size_t targets_active_after(const target_pool *p, const char *url, uint64_t hash)
{
    size_t lo = 0, hi = p->n_active;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const active_target *t = p->active[mid];
        int c = strcmp(t->t.url, url);
        if (c < 0 || (c == 0 && t->t.hash <= hash))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const target_pool *targets_pool_find(const target_manager *m, const char *job)
{
    return find_pool(m, job);
}

void targets_state_get(const target_pool *p, const active_target *t, target_state *out)
{
    target_pool *mp = (target_pool *)p; /* the mutex guards state only; the pool itself is not changed */
    pthread_mutex_lock(&mp->state_mu);
    out->health = (target_health)t->health;
    snprintf(out->last_error, sizeof out->last_error, "%s", t->last_error ? t->last_error : "");
    out->last_scrape_ms = t->last_scrape_ms;
    out->last_duration_s = t->last_duration_s;
    pthread_mutex_unlock(&mp->state_mu);
}

const active_target *targets_pool_get(const target_pool *p, uint64_t hash)
{
    return atab_find(p->priv, hash);
}

void targets_active_discovered(const target_pool *p, const active_target *t, labelset *out)
{
    if (!t->origin || !p->sc) {
        labelset_init(out);
        return;
    }
    const target_group *g = t->origin->g;
    label_view gl = target_group_labels(g);
    target_discovered_labels_view(p->sc, &gl, &g->targets[t->origin_idx], out);
}

void targets_active_discovered_each(const target_pool *p, const active_target *t, target_label_fn fn, void *ctx)
{
    if (t->origin && p->sc) {
        label_view gl = target_group_labels(t->origin->g);
        target_discovered_each_view(p->sc, &gl, &t->origin->g->targets[t->origin_idx], fn, ctx);
    }
}

void targets_dropped_discovered_each(const target_pool *p, const dropped_target *d, target_label_fn fn, void *ctx)
{
    if (d->grp && p->sc) {
        label_view gl = target_group_labels(d->grp->g);
        target_discovered_each_view(p->sc, &gl, &d->grp->g->targets[d->idx], fn, ctx);
    }
}

void targets_failed_discovered_each(const target_pool *p, const failed_target *f, target_label_fn fn, void *ctx)
{
    if (f->grp && p->sc) {
        label_view gl = target_group_labels(f->grp->g);
        target_discovered_each_view(p->sc, &gl, &f->grp->g->targets[f->idx], fn, ctx);
    }
}

void targets_failed_discovered(const target_pool *p, const failed_target *f, labelset *out)
{
    if (!f->grp || !p->sc) {
        labelset_init(out);
        return;
    }
    const target_group *g = f->grp->g;
    label_view gl = target_group_labels(g);
    target_discovered_labels_view(p->sc, &gl, &g->targets[f->idx], out);
}

uint64_t targets_dropped_discovered_hash(const target_pool *p, const dropped_target *d)
{
    if (!d->grp || !p->sc)
        return FNV64_OFFSET; /* labelset_hash of no labels */
    label_view gl = target_group_labels(d->grp->g);
    return target_discovered_hash_view(p->sc, &gl, &d->grp->g->targets[d->idx], NULL);
}

void targets_dropped_discovered(const target_pool *p, const dropped_target *d, labelset *out)
{
    if (!d->grp || !p->sc) {
        labelset_init(out);
        return;
    }
    const target_group *g = d->grp->g;
    label_view gl = target_group_labels(g);
    target_discovered_labels_view(p->sc, &gl, &g->targets[d->idx], out);
}
