/* scheduler: one event loop thread (curl multi driven by epoll + timers) scrapes every target at its
 * stable jittered phase. No thread per target. Targets are added/updated/removed from any thread through
 * a command queue; results are delivered on the loop thread through a callback, which must be quick
 * (hand the body to another stage; never block on storage).
 *
 * Phase (reference/prometheus.md, Scheduling): offset = (target hash XOR seed) mod interval, where the seed
 * is FNV-1a-64 over the host name and external labels; next start = the first time t with
 * t mod interval == offset. A target that is updated (same job + hash) keeps its phase and state. */
#ifndef LOOKOUT_SCRAPE_SCHEDULER_H
#define LOOKOUT_SCRAPE_SCHEDULER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

typedef struct scrape_loop scrape_loop;

/* What the loop needs to scrape one target. All strings are copied by the loop. */
typedef struct scrape_target_spec {
    const char *job;
    uint64_t hash;  /* target identity within the job (built_target.hash) */
    const char *url;
    int64_t interval_ms, timeout_ms;
    const http_client_config *http; /* the job's client settings (auth, TLS, proxy, redirects) */
    int64_t body_size_limit;        /* bytes; 0 = 10 MiB */
} scrape_target_spec;

typedef struct scrape_result {
    const char *job;
    uint64_t hash;
    const char *url;
    int64_t scheduled_ms;  /* when the scrape was due (Unix ms) */
    int64_t start_ms;      /* when it actually started */
    double duration_s;
    long http_status;      /* 0 when no response */
    const char *body;      /* NUL-terminated copy, valid only during the callback; NULL on failure */
    size_t body_len;
    const char *error;     /* NULL on success; "server returned HTTP status 500 Internal Server Error",
                              "Get \"URL\": context deadline exceeded", "body size limit exceeded" ... */
} scrape_result;

typedef void (*scrape_result_fn)(void *ctx, const scrape_result *r);

/* seed: scheduling seed (see above). */
scrape_loop *scrape_loop_new(uint64_t seed, scrape_result_fn fn, void *ctx);
int scrape_loop_start(scrape_loop *l, char *err, size_t errlen);
/* Stops the thread, aborting in-flight transfers, and frees everything. */
void scrape_loop_free(scrape_loop *l);
/* Adds a target, or updates an existing one (same job and hash): keeps its phase and any in-flight
 * scrape; interval/timeout/http changes apply from the next scrape. */
void scrape_loop_upsert(scrape_loop *l, const scrape_target_spec *spec);
void scrape_loop_remove(scrape_loop *l, const char *job, uint64_t hash);
/* Computes the seed from the host name and external labels. */
uint64_t scrape_seed(const labelset *external_labels);
/* Offset of a target within its interval (ms), for tests. */
int64_t scrape_phase_offset(uint64_t hash, uint64_t seed, int64_t interval_ms);

#endif
