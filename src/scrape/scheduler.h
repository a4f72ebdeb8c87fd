/* scheduler: one event loop thread (curl multi driven by epoll + timers) scrapes every target at its
 * stable jittered phase. No thread per target. Targets are added/updated/removed from any thread through
 * a command queue; results are delivered on the loop thread through a callback, which must be quick
 * (hand the body to another stage; never block on storage).
 *
 * Phase (as Prometheus' scrape/target.go offset()): offset = (target hash XOR seed) mod interval, where the seed
 * is FNV-1a-64 over the host name and external labels; next start = the first time t with
 * t mod interval == offset (Prometheus waits for the offset within the current interval; the wait is in
 * (0, interval]). A target that is updated (same job + hash) keeps its phase and state; a changed interval
 * re-phases it. A start that finds the previous scrape of the target still running is skipped. Starts
 * due within 20 ms of each other are made in one wake-up of the loop: a start is never early and at most
 * that much late (plus the loop's lag); the phase grid does not move.
 *
 * Each scrape: GET url with "Accept: application/json", "User-Agent: lookout/VERSION",
 * "X-Prometheus-Scrape-Timeout-Seconds", any Accept-Encoding curl supports (gzip...), the job's
 * http_client_config (http/client.h), timeout_ms as the whole-transfer timeout, and body_size_limit
 * enforced while receiving (the transfer is aborted as soon as it is exceeded). At a fast-path request's
 * deadline an answer that has already arrived in the socket is read and counts (a loop that is behind may
 * reach the deadline before the event); only an incomplete one times out. Connections are kept alive
 * in the loop's shared connection cache (at most 64 per host:port) and reused across scrapes.
 *
 * Metrics (util/metrics.h): lookout_scrape_duration_seconds{job} (histogram), lookout_scrapes_total{job},
 * lookout_scrape_failures_total{job}, lookout_scrape_delay_seconds (histogram, actual - scheduled start).
 *
 * Clocks: the loop runs on CLOCK_MONOTONIC; phases are aligned to the wall clock when a target is
 * (re)phased; reported times are Unix ms. */
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
    /* Non-empty: each scrape fails at its start with this error and sends no request (target_limit). */
    const char *forced_error;
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
    const char *error;     /* NULL on success, else e.g.
                              "server returned HTTP status 500 Internal Server Error" (body NULL),
                              "Get \"URL\": context deadline exceeded",
                              "Get \"URL\": dial tcp 127.0.0.1:9: connect: connection refused",
                              "body size limit exceeded (10485760 bytes)" (the limit),
                              "unable to read authorization credentials file F: open F: ..." */
} scrape_result;

typedef void (*scrape_result_fn)(void *ctx, const scrape_result *r);

/* seed: scheduling seed (see above). fn is called on the loop thread for every finished scrape; it may
 * call scrape_loop_upsert/remove (they only enqueue). Returns NULL, with errno saying why, when the epoll
 * instance, the eventfd or the curl multi handle cannot be created (nothing is left open). */
scrape_loop *scrape_loop_new(uint64_t seed, scrape_result_fn fn, void *ctx);
/* Plain-http scrapes of numeric addresses go through http/h1client.c instead of curl (on by default);
 * off sends every scrape through curl. Call before scrape_loop_start. */
void scrape_loop_set_fast_http(scrape_loop *l, bool on);
/* Starts the loop's thread. -1 with err ("cannot start the scrape loop thread: ...") when it cannot be
 * created: the loop stays as it was (commands queued, not started), so it can be started again or freed. */
int scrape_loop_start(scrape_loop *l, char *err, size_t errlen);
/* Stops the thread, aborting in-flight transfers, and frees everything. */
void scrape_loop_free(scrape_loop *l);
/* Adds a target, or updates an existing one (same job and hash): keeps its phase and any in-flight
 * scrape; interval/timeout/http changes apply from the next scrape. */
void scrape_loop_upsert(scrape_loop *l, const scrape_target_spec *spec);
/* Stops scraping a target. An in-flight scrape of it is aborted and reported to nobody (no callback).
 * Unknown targets are ignored. */
void scrape_loop_remove(scrape_loop *l, const char *job, uint64_t hash);
/* Computes the seed like Prometheus: FNV-1a 64 over hostname + external_labels.String() ({a="b", c="d"});
 * gethostname() instead of Prometheus' FQDN lookup (no DNS at start-up). NULL = no labels. */
uint64_t scrape_seed(const labelset *external_labels);
/* Offset of a target within its interval (ms), for tests. */
int64_t scrape_phase_offset(uint64_t hash, uint64_t seed, int64_t interval_ms);
/* Milliseconds from wall time now_wall_ms until the next t with t mod interval == offset, in
 * (0, interval] (Prometheus' Target.offset); exported for tests. */
int64_t scrape_phase_wait(int64_t now_wall_ms, int64_t interval_ms, int64_t offset_ms);

#endif
