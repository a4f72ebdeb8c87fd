/* Shared by the sd unit tests: a sync callback that records every call (deep copies, with the time), and
 * hand-built configurations (the config parser is not needed to drive the discovery manager). */
#ifndef LOOKOUT_TESTS_SD_TEST_UTIL_H
#define LOOKOUT_TESTS_SD_TEST_UTIL_H
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sd/sd_internal.h"

typedef struct rec_call {
    char *job;
    target_group *groups;
    size_t n;
    int64_t at_ms; /* monotonic */
} rec_call;

typedef struct recorder {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rec_call *calls;
    size_t n;
} recorder;

static inline void rec_init(recorder *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
}

static inline void rec_free(recorder *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->calls[i].job);
        sd_groups_free(r->calls[i].groups, r->calls[i].n);
    }
    free(r->calls);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}

static inline void rec_sync(void *ctx, const char *job, const target_group *const *groups, size_t n)
{
    recorder *r = ctx;
    rec_call c = {.job = strdup(job), .groups = calloc(n ? n : 1, sizeof(target_group)), .n = n,
                  .at_ms = sd_now_mono_ms()};
    for (size_t i = 0; i < n; i++)
        target_group_copy(&c.groups[i], groups[i]);
    pthread_mutex_lock(&r->mu);
    r->calls = realloc(r->calls, (r->n + 1) * sizeof(rec_call));
    r->calls[r->n++] = c;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static inline size_t rec_count_locked(recorder *r, const char *job)
{
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->calls[i].job, job))
            k++;
    return k;
}

static inline size_t rec_count(recorder *r, const char *job)
{
    pthread_mutex_lock(&r->mu);
    size_t k = rec_count_locked(r, job);
    pthread_mutex_unlock(&r->mu);
    return k;
}

/* Waits until job has at least k calls; returns true on success. */
static inline bool rec_wait(recorder *r, const char *job, size_t k, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&r->mu);
    while (rec_count_locked(r, job) < k)
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) != 0)
            break;
    bool ok = rec_count_locked(r, job) >= k;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

/* The last call for job (valid until the next rec_free; calls are only appended). NULL if none. */
static inline const rec_call *rec_last(recorder *r, const char *job)
{
    const rec_call *c = NULL;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->calls[i].job, job))
            c = &r->calls[i];
    pthread_mutex_unlock(&r->mu);
    return c;
}

static inline size_t call_targets(const rec_call *c)
{
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++)
        k += c->groups[i].n_targets;
    return k;
}

static inline const target_group *call_group(const rec_call *c, const char *source)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->groups[i].source, source))
            return &c->groups[i];
    return NULL;
}

static inline bool call_has_address(const rec_call *c, const char *addr)
{
    for (size_t i = 0; i < c->n; i++)
        for (size_t k = 0; k < c->groups[i].n_targets; k++) {
            const char *a = labelset_get(&c->groups[i].targets[k], "__address__");
            if (a && !strcmp(a, addr))
                return true;
        }
    return false;
}

/* Waits until the last call for job satisfies pred (polling); returns it or NULL. */
static inline const rec_call *rec_wait_for(recorder *r, const char *job, bool (*pred)(const rec_call *, void *),
                                           void *arg, int timeout_ms)
{
    int64_t end = sd_now_mono_ms() + timeout_ms;
    for (;;) {
        const rec_call *c = rec_last(r, job);
        if (c && pred(c, arg))
            return c;
        if (sd_now_mono_ms() > end)
            return NULL;
        struct timespec d = {0, 5 * 1000000};
        nanosleep(&d, NULL);
    }
}

static inline bool pred_has(const rec_call *c, void *addr)
{
    return call_has_address(c, addr);
}

static inline bool pred_lacks(const rec_call *c, void *addr)
{
    return !call_has_address(c, addr);
}

/* ---- hand-built configurations (freed with tcfg_free, not config_free) ---- */

static inline lookout_config *tcfg_new(void)
{
    return calloc(1, sizeof(lookout_config));
}

static inline scrape_config *tcfg_job(lookout_config *cfg, const char *name)
{
    cfg->scrape_configs = realloc(cfg->scrape_configs, (cfg->n_scrape_configs + 1) * sizeof(scrape_config));
    scrape_config *sc = &cfg->scrape_configs[cfg->n_scrape_configs++];
    memset(sc, 0, sizeof *sc);
    sc->job_name = strdup(name);
    return sc;
}

static inline sd_config *tcfg_block(scrape_config *sc, sd_kind kind, int index)
{
    sc->sd_configs = realloc(sc->sd_configs, (sc->n_sd_configs + 1) * sizeof(sd_config));
    sd_config *b = &sc->sd_configs[sc->n_sd_configs++];
    memset(b, 0, sizeof *b);
    b->kind = kind;
    b->index = index;
    return b;
}

/* targets: NULL-terminated. labels: NULL-terminated name, value pairs (may be NULL). */
static inline void tcfg_static(scrape_config *sc, int index, const char *const *targets,
                               const char *const *labels)
{
    sd_config *b = tcfg_block(sc, SD_STATIC, index);
    size_t n = 0;
    while (targets[n])
        n++;
    b->u.static_sd.targets = calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        b->u.static_sd.targets[i] = strdup(targets[i]);
    b->u.static_sd.n_targets = n;
    for (size_t i = 0; labels && labels[i]; i += 2)
        labelset_set(&b->u.static_sd.labels, labels[i], labels[i + 1]);
}

static inline void tcfg_file(scrape_config *sc, int index, const char *const *files, int64_t refresh_ms)
{
    sd_config *b = tcfg_block(sc, SD_FILE, index);
    size_t n = 0;
    while (files[n])
        n++;
    b->u.file.files = calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        b->u.file.files[i] = strdup(files[i]);
    b->u.file.n_files = n;
    b->u.file.refresh_interval_ms = refresh_ms;
}

static inline void tcfg_free(lookout_config *cfg)
{
    for (size_t j = 0; j < cfg->n_scrape_configs; j++) {
        scrape_config *sc = &cfg->scrape_configs[j];
        for (size_t k = 0; k < sc->n_sd_configs; k++) {
            sd_config *b = &sc->sd_configs[k];
            if (b->kind == SD_STATIC) {
                for (size_t i = 0; i < b->u.static_sd.n_targets; i++)
                    free(b->u.static_sd.targets[i]);
                free(b->u.static_sd.targets);
                labelset_free(&b->u.static_sd.labels);
            } else if (b->kind == SD_FILE) {
                for (size_t i = 0; i < b->u.file.n_files; i++)
                    free(b->u.file.files[i]);
                free(b->u.file.files);
            }
        }
        free(sc->sd_configs);
        free(sc->job_name);
    }
    free(cfg->scrape_configs);
    free(cfg);
}

static inline void sleep_ms(int ms)
{
    struct timespec d = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&d, NULL);
}

#endif
