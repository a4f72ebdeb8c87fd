/* sd: service discovery. Providers produce target groups; the discovery manager (manager.c) keeps the
 * groups per job, per provider and per source, and hands the full, coalesced set of a job to a sync
 * callback at most once per second.
 *
 * Threading: a provider that blocks (file watch, DNS, watches, long polls) runs its own thread, started by
 * ops->start and joined by ops->stop. Providers report through sd_provider_update(), which is thread-safe.
 * The sync callback runs on the manager's thread. */
#ifndef LOOKOUT_SD_SD_H
#define LOOKOUT_SD_SD_H
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "labels/labels.h"

typedef struct target_group {
    char *source;     /* unique within its provider, e.g. "/etc/sd/a.json:0" */
    labelset labels;  /* group labels, including __meta_* of the provider */
    labelset *targets;/* each with at least __address__ */
    size_t n_targets;
    uint64_t gen;     /* 0 for a plain group. Nonzero: an immutable group stored by the discovery manager
                         (or made by target_group_freeze); every such group has its own gen, so equal gens
                         mean the very same content, and target_group_ref keeps it alive. */
} target_group;

void target_group_init(target_group *g, const char *source);
/* Frees a plain group; for a view of a frozen group (a struct copy with gen != 0, as the streaming parsers
 * return, see sd_internal.h) releases the reference it holds. */
void target_group_free(target_group *g);
/* Copies src's labels expanded (a frozen group's packed maps become labels of the plain copy). */
void target_group_copy(target_group *dst, const target_group *src);
/* A group's labels: its label set, and the maps a frozen group keeps packed (expanded name by name when
 * read). Every reader of a group's labels goes through this (g->labels alone lacks the maps' labels). */
label_view target_group_labels(const target_group *g);
/* Appends a target (copied) to a plain group (gen 0; a frozen group or a view of one is never changed). */
void target_group_add_target(target_group *g, const labelset *target);
/* An immutable, compact copy of g (one allocation, fresh gen, one reference). Never target_group_free it:
 * release it with target_group_unref. */
const target_group *target_group_freeze(const target_group *g);
/* For a group with gen != 0 only (frozen, e.g. handed to the sync callback): another reference, which
 * keeps it valid after the callback returns; unref releases it. */
const target_group *target_group_ref(const target_group *g);
void target_group_unref(const target_group *g);

typedef struct sd_provider sd_provider;
typedef struct sd_manager sd_manager;

typedef struct sd_provider_ops {
    const char *kind; /* "static", "file", "dns", "consul", "kubernetes", "http" */
    /* Starts discovery; may spawn a thread. Returns 0, or -1 with err filled. */
    int (*start)(sd_provider *p, char *err, size_t errlen);
    /* Stops and joins any thread; after it returns the provider makes no more updates. */
    void (*stop)(sd_provider *p);
    /* Frees impl. */
    void (*destroy)(sd_provider *p);
} sd_provider_ops;

struct sd_provider {
    const sd_provider_ops *ops;
    sd_config *cfg;  /* owned copy of the config block */
    char *job;       /* owned */
    char *name;      /* "file_sd_configs/0", for logs and metrics */
    void *impl;      /* provider state */
    sd_manager *mgr; /* where updates go */
    int id;          /* manager-assigned */
};

/* Called by a provider (any thread) with groups it discovered; groups are copied (frozen ones referenced),
 * caller keeps ownership.
 * A group with the same source replaces the previous one; a group with no targets removes it. */
void sd_provider_update(sd_provider *p, const target_group *groups, size_t n);
/* Records that a refresh succeeded now (for lookout_sd_last_success_timestamp_seconds). */
void sd_provider_mark_success(sd_provider *p);

/* Creates a provider for one SD block (not started). Returns NULL + err for kinds not implemented. */
sd_provider *sd_provider_create(const sd_config *cfg, const char *job, char *err, size_t errlen);

/* The sync callback: the complete group set of one job. groups are valid only during the call. */
typedef void (*sd_sync_fn)(void *ctx, const char *job, const target_group *const *groups, size_t n);

/* min_interval_ms: coalescing period (1000 in production; tests may pass less). */
sd_manager *sd_manager_new(sd_sync_fn fn, void *ctx, int64_t min_interval_ms);
/* Persists the last good groups of every provider under <storage_path>/sd/ and seeds providers from there
 * at start (see sd/cache.h). Call once, before the first sd_manager_apply_config; without it nothing is
 * persisted. */
void sd_manager_set_storage_path(sd_manager *m, const char *storage_path);
/* Applies a configuration: providers whose job and SD block are unchanged keep running (and keep their
 * groups); others are stopped/started. Jobs that disappear get a final empty sync. Returns 0. */
int sd_manager_apply_config(sd_manager *m, const lookout_config *cfg);
void sd_manager_free(sd_manager *m); /* stops every provider */

#endif
