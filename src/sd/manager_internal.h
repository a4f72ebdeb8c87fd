/* manager_internal: the discovery manager's state, shared by its two halves: manager.c (groups per
 * provider, the sync thread, apply_config) and manager_cache.c (the persisted last good groups and their
 * writer thread), and frozen.c (the stored groups' layout). Nothing outside those files includes it.
 * Locking rules: manager.c's header. */
#ifndef LOOKOUT_SD_MANAGER_INTERNAL_H
#define LOOKOUT_SD_MANAGER_INTERNAL_H
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sd/cache.h"
#include "util/keymap.h"
#include "sd/sd_internal.h"

typedef struct mgroup {
    target_group g; /* first: a mgroup * is a target_group * */
    atomic_int refs;
    uint32_t lazy; /* 1: arena is an sd_lazy (maps kept packed, sd_gb_freeze_lazy); in the padding after refs */
    sd_pool *pool; /* strings shared with the other groups of its response (a reference), or NULL */
    char *arena;   /* strings of its labels built elsewhere and taken (sd_gb_freeze_adopt), or NULL */
    label *labels; /* g.labels.v when taken with the arena (sd_gb_freeze_adopt), else NULL */
} mgroup;

typedef struct mjob {
    char *name;
    bool dirty;   /* changed since its last sync */
    bool synced;  /* synced at least once: later syncs wait for min_interval */
    bool removed; /* gone from the config: one final empty sync, then freed by the sync thread */
    int64_t last_sync_ms;
    struct mjob *next;
} mjob;

/* Per-provider state of the persisted groups (manager_cache.c). */
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
    keymap index; /* source -> position in groups + 1 */
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
    int failed; /* this manager's share of lookout_sd_failed_configs (apply_mu) */
    bool applying; /* holds syncs back until the providers of a new config have started */
    bool stopping;
    pthread_t thread;
    /* manager_cache.c: the writer thread waits on pcv (mu) */
    char *cache_dir; /* <storage.path>/sd, NULL = no persistence */
    pthread_cond_t pcv;
    pthread_t writer;
    bool writer_running, writer_stop;
    int64_t cache_interval_ms; /* at most one write per provider per interval (5 s) */
};
/* ---- frozen.c ---- */

/* A frozen copy of a plain group (one reference). */
mgroup *sd_mgroup_new(const target_group *src);
/* The mgroup of a frozen group or of a view of one (a struct copy, gen != 0), with one more reference. */
mgroup *sd_mgroup_of_view(const target_group *g);
/* Drops one reference; the last frees the group. */
void sd_mgroup_unref(mgroup *g);

/* ---- manager.c, for the cache half ---- */
/* Stores one group (copied, or referenced when frozen: gen != 0) for mp; returns true when the provider's groups changed. mu held (or mp not
 * yet visible to anyone). */
bool sd_mprov_store(mprov *mp, const target_group *g);
/* The entry of provider p, or NULL when it is being stopped. mu held. */
mprov *sd_mprov_find(sd_manager *m, const sd_provider *p);
/* Sets lookout_sd_discovered_targets of p. */
void sd_mgr_set_discovered(const sd_provider *p, size_t n_targets);

/* ---- manager_cache.c, called by manager.c ---- */

/* Seeds a new provider (not yet linked, no lock) with its persisted groups. */
void sd_mcache_seed(sd_manager *m, mprov *mp);
/* mp's groups changed: schedule a write if it has succeeded once. mu held. */
void sd_mcache_note_change(sd_manager *m, mprov *mp);
/* First (or later) success of p: switch from cached to own groups, schedule a write. Takes mu. */
void sd_mcache_mark_success(sd_provider *p);
/* The groups the job sees from mp: the cached ones until the first success, then its own. mu held. */
mgroup **sd_mcache_visible(const mprov *mp, size_t *n);
/* Releases mp's cached groups (mprov being freed). */
void sd_mcache_release(mprov *mp);
/* Removes p's lookout_sd_groups_from_cache series (provider stopped). */
void sd_mcache_forget(const sd_provider *p);
/* Deletes the files of providers no longer configured. Takes mu. */
void sd_mcache_gc(sd_manager *m);
/* Stops the writer thread after a final write of everything pending (mu not held). */
void sd_mcache_writer_stop(sd_manager *m);

#endif
