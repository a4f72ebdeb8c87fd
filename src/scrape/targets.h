/* targets: the target manager. One scrape pool per job: the job's scrape_config, the last target groups
 * the discovery manager sent for it, and the resulting target set:
 *   - active targets (built by target_build, deduplicated by hash, kept sorted by scrape URL then hash),
 *     each with its scrape state (health, last error, last scrape time and duration);
 *   - dropped targets (discovered labels + the index and action of the rule that dropped them), capped by
 *     keep_dropped_targets while every drop is counted;
 *   - failed targets (target building errors) with their reason, for lookout's own pages.
 *
 * Identity: a target is its hash (labels + URL). A sync or a reload diffs the new set against the current
 * one by hash: a kept target keeps its object and state, a new one starts "unknown", a removed one goes.
 *
 * Incremental: a pool caches, per group, the frozen group (shared with the discovery manager when it
 * comes from there) and what each of its targets built to. A sync rebuilds (relabels) only the groups it
 * has not seen (a group from the discovery manager is identified by its gen; a plain group by content),
 * so one changed pod out of 10,000 costs one group's relabeling, plus linear pointer work to keep the
 * display order. lookout_target_builds_total{job} counts the targets run through target building.
 * Memory: final label strings are interned per pool; discovered labels are not stored but rebuilt from
 * the cached group on demand (targets_active_discovered / targets_dropped_discovered).
 *
 * Threading: every function is thread-safe. Writers (sync, apply_config) take the manager's write lock;
 * HTTP readers bracket each piece they render with targets_read_begin/end (read lock): the targets API
 * and the /targets and /service-discovery pages write a bounded piece per lock hold and resume after it,
 * so each piece is one consistent view and a slow client never holds the lock. Scrape results
 * (targets_report_scrape) take the read lock plus a per-pool state mutex, so the scheduler's loop thread
 * never waits behind a rendering reader for long, and readers copy a target's state with
 * targets_state_get.
 *
 * target_limit (Prometheus' semantics and text): while a pool has more active targets than its job's
 * target_limit, hooks see every active target with t->error = "target_limit exceeded (number of targets:
 * N, limit: L)"; the scheduler then fails each of its scrapes with that error instead of sending a request,
 * so every target of the pool is down with it. A change of N or of the state re-announces every target
 * (TARGET_UPDATED).
 *
 * Hooks: the scrape stage registers a callback that is told when a target is added, updated (its job's
 * scrape_config changed) or removed. Hooks run while the write lock is held, removals before additions,
 * so they see changes in order; they must be quick (enqueue) and must not call back into the manager. */
#ifndef LOOKOUT_SCRAPE_TARGETS_H
#define LOOKOUT_SCRAPE_TARGETS_H
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "labels/labels.h"
#include "labels/relabel.h"
#include "scrape/target.h"
#include "sd/sd.h"

typedef enum target_health { TARGET_HEALTH_UNKNOWN = 0, TARGET_HEALTH_UP, TARGET_HEALTH_DOWN } target_health;

/* "unknown", "up", "down" as in Prometheus' API. */
const char *target_health_name(target_health h);

typedef struct target_state {
    target_health health;
    char last_error[512];   /* "" when the last scrape succeeded or none happened */
    int64_t last_scrape_ms; /* start of the last scrape, Unix ms; 0 = never */
    double last_duration_s;
} target_state;

struct target_tgroup;

/* The identity and final labels of an active target. Strings are shared within the pool (read-only). */
typedef struct target_core {
    uint64_t hash;   /* FNV-1a 64 over labels and url: identity and scheduling hash */
    const char *url; /* scheme://address/path?params */
    labelset labels; /* after relabeling, __meta_* removed, instance set; internal __ labels included */
} target_core;

typedef struct active_target {
    target_core t;
    /* private */
    const struct target_tgroup *origin; /* the last duplicate's group and index: discovered labels */
    uint32_t origin_idx;
    uint32_t n_src;  /* discovered targets that built to this one (duplicates) */
    bool fresh;      /* added by the update in progress */
    /* scrape state (guarded by the pool's state mutex; read with targets_state_get) */
    uint8_t health;
    int64_t last_scrape_ms;
    double last_duration_s;
    char *last_error; /* NULL when none */
} active_target;

typedef struct dropped_target {
    const struct target_tgroup *grp; /* private: discovered labels come from targets_dropped_discovered */
    uint32_t idx;
    int rule_index;        /* index in relabel_configs, -1 when unknown */
    relabel_action action; /* action of that rule */
} dropped_target;

typedef struct failed_target {
    const struct target_tgroup *grp; /* private: discovered labels come from targets_failed_discovered (a
                                        copy each would be the group's labels up to TARGETS_MAX_FAILED times) */
    uint32_t idx;
    char error[256];
} failed_target;

/* Read-only view of one job; valid between targets_read_begin and targets_read_end. */
typedef struct target_pool {
    char *job;
    const scrape_config *sc; /* borrowed from the config passed to targets_apply_config; NULL when the job
                                is not configured (only transiently) */
    active_target **active;  /* sorted by URL, then hash */
    size_t n_active;
    dropped_target *dropped; /* in discovery order, at most keep_dropped_targets (0 = all) */
    size_t n_dropped;
    size_t dropped_count; /* every dropped target, including those not kept */
    uint64_t dropped_gen; /* changes whenever `dropped` is rebuilt, never repeated (a reader paging through
                             it across read sections notices that its indexes no longer hold) */
    failed_target *failed;   /* at most TARGETS_MAX_FAILED */
    size_t n_failed;
    size_t failed_count;
    /* private: see targets.c */
    struct target_pool_priv *priv;
    pthread_mutex_t state_mu;
} target_pool;

#define TARGETS_MAX_FAILED 1000

typedef enum target_event { TARGET_ADDED = 0, TARGET_UPDATED, TARGET_REMOVED } target_event;

/* t: the built target (for REMOVED, the one going away); only status, labels, url and hash are set
 * (discovered is empty); sc: its job's scrape_config (for REMOVED, the
 * config it was built with; it stays valid until the hook returns). */
typedef void (*target_hook_fn)(void *ctx, target_event ev, const char *job, const built_target *t,
                               const scrape_config *sc);

typedef struct target_manager target_manager;

target_manager *targets_new(void);
/* Frees every pool; calls no hooks. */
void targets_free(target_manager *m);
/* At most one hook; set it before the first apply/sync (it is called for the targets that follow). */
void targets_set_hook(target_manager *m, target_hook_fn fn, void *ctx);

/* Applies a configuration: pools for new jobs are created (empty until their first sync), pools of jobs
 * that are gone are removed (hooks told), pools whose scrape_config changed (scrape_config_equal) are
 * rebuilt from their last groups keeping the state of targets whose hash is unchanged, and unchanged
 * pools are untouched. cfg is borrowed: it must stay alive until the next targets_apply_config or
 * targets_free. */
void targets_apply_config(target_manager *m, const lookout_config *cfg);

/* The full group set of one job (an sd_sync_fn can forward to it). Groups are copied. A job that is not
 * configured is ignored. */
void targets_sync(target_manager *m, const char *job, const target_group *const *groups, size_t n);
/* sd_sync_fn-compatible adapter: ctx is the target_manager. */
void targets_sd_sync(void *ctx, const char *job, const target_group *const *groups, size_t n);

/* Records a scrape result for the target (job, hash); ignored when the target is gone. error NULL or ""
 * means success (health up), otherwise down with that error. */
void targets_report_scrape(target_manager *m, const char *job, uint64_t hash, const char *error,
                           int64_t start_ms, double duration_s);

/* Readers. Between begin and end the pools and targets do not change (state may; copy it with
 * targets_state_get). Pools are sorted by job name. */
void targets_read_begin(target_manager *m);
void targets_read_end(target_manager *m);
size_t targets_n_pools(const target_manager *m);
const target_pool *targets_pool_at(const target_manager *m, size_t i);
const target_pool *targets_pool_find(const target_manager *m, const char *job);
void targets_state_get(const target_pool *p, const active_target *t, target_state *out);
/* Paging, for readers that release the lock between pages and keep their place by key: the index of the
 * first pool whose job is >= job (targets_n_pools when none); the index of the first active target of p
 * after (url, hash) in display order (p->n_active when none). */
size_t targets_pool_lower_bound(const target_manager *m, const char *job);
size_t targets_active_after(const target_pool *p, const char *url, uint64_t hash);
/* Lookup by hash, NULL when absent. */
const active_target *targets_pool_get(const target_pool *p, uint64_t hash);
/* Discovered labels (before relabeling) of an active target (its last duplicate's) or of a dropped one,
 * rebuilt from the pool's cached group: out is initialised by the call, free it with labelset_free. */
void targets_active_discovered(const target_pool *p, const active_target *t, labelset *out);
void targets_dropped_discovered(const target_pool *p, const dropped_target *d, labelset *out);
void targets_failed_discovered(const target_pool *p, const failed_target *f, labelset *out);
/* The same labels one by one, without a copy of the set (target_discovered_each): fn is not called when
 * there are none. */
void targets_active_discovered_each(const target_pool *p, const active_target *t, target_label_fn fn, void *ctx);
void targets_dropped_discovered_each(const target_pool *p, const dropped_target *d, target_label_fn fn, void *ctx);
void targets_failed_discovered_each(const target_pool *p, const failed_target *f, target_label_fn fn, void *ctx);
/* labelset_hash of a dropped target's discovered labels, without the set (target_discovered_hash). */
uint64_t targets_dropped_discovered_hash(const target_pool *p, const dropped_target *d);

#endif
