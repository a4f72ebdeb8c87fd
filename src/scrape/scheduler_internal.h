/* scrape/scheduler_internal: the scrape loop's structures and the functions scheduler.c (the loop,
 * commands, curl transfers) and scheduler_fast.c (the built-in HTTP/1.1 client's glue) share. Private to
 * src/scrape/scheduler*.c; loop thread only unless a comment says otherwise. */
#ifndef LOOKOUT_SCRAPE_SCHEDULER_INTERNAL_H
#define LOOKOUT_SCRAPE_SCHEDULER_INTERNAL_H

#include "scrape/scheduler.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

#include "http/client.h"
#include "http/h1client.h"
#include "scrape/scrape_pool.h"
#include "util/keymap.h"
#include "util/metrics.h"
#include "util/minheap.h"

typedef struct target {
    char *job, *url;
    uint64_t hash;
    int64_t interval_ms, timeout_ms, body_limit;
    http_client_config http;
    bool has_http;
    int64_t next_ms; /* monotonic ms of the next start */
    size_t heap_idx;
    char *key; /* table key: hash (8 bytes, host order) then job */
    size_t klen;
    /* in-flight scrape */
    CURL *easy;
    http_request *req;
    char *body;
    size_t body_off, body_len, body_cap; /* the body is body[body_off, body_off + body_len) */
    bool over_limit;
    char *forced_error; /* NULL or the error every scrape fails with (target_limit) */
    int64_t sched_ms, start_ms; /* monotonic */
    /* curl scrapes only (the fast path has its own): allocated at the target's first curl scrape, so that
     * the 10,000 targets of a fast-path fleet do not carry 384 unused bytes each (bench/fleet_memory.sh) */
    struct scrape_curl_text {
        char reason[128]; /* HTTP reason phrase of the last status line */
        char errbuf[CURL_ERROR_SIZE];
    } *ct;
    /* fast path (http/h1client.c): the client keeps the target's connection between scrapes */
    h1_client *fast;
    bool fast_busy, fast_stale, fell_back; /* fell_back: this scrape went to curl after the fast path */
    int fast_fd;                           /* the fd registered in fast_by_fd, -1 none */
    size_t fast_deadline_idx;
    int64_t start_us;
    char tmo_hdr[96]; /* "X-Prometheus-Scrape-Timeout-Seconds: ..." for tmo_hdr_ms */
    int64_t tmo_hdr_ms;
    /* this target's job's series of lookout_scrapes_total and _duration_seconds, taken at its first
     * delivered scrape (count_scrape; those families never remove a series, so the handles stay valid) */
    metric_series *mc_scrapes, *mc_duration;
} target;

typedef enum cmd_kind { CMD_UPSERT, CMD_REMOVE, CMD_STOP } cmd_kind;

typedef struct cmd {
    cmd_kind kind;
    char *job, *url, *forced_error;
    uint64_t hash;
    int64_t interval_ms, timeout_ms, body_limit;
    http_client_config http;
    bool has_http;
    struct cmd *next;
} cmd;

struct scrape_loop {
    uint64_t seed;
    scrape_result_fn fn;
    void *ctx;
    int64_t wall_minus_mono;
    CURLM *multi;
    int epfd, evfd;
    int64_t curl_deadline; /* monotonic ms; -1 none */
    pthread_t thread;
    bool started, stopping;
    pthread_mutex_t mu;
    cmd *q_head, *q_tail;
    /* targets */
    keymap targets; /* (hash, job) -> target */
    minheap heap; /* every target, keyed on next_ms */
    metric_family *m_duration, *m_scrapes, *m_failures, *m_delay;
    metric_family *m_fast; /* fast-path requests by outcome: "done", or "curl" (handed to curl) */
    /* Series handles for the per-scrape counts (scrape_deliver: one lock, no lookup): the delay histogram's
     * and m_fast{outcome="done"} (each target keeps its job's), taken at first use, as the series would be
     * created then. fast_done_pending: scrape_deliver also counts a fast-path "done" (set by the fast path
     * right before it delivers). */
    metric_series *mc_delay, *mc_fast_done;
    bool fast_done_pending;
    scrape_pool pool; /* idle easy handles and receive buffers */
    bool fast_enabled;
    target **fast_by_fd; /* fd -> target whose fast client owns it */
    size_t fast_n;
    minheap fast_deadlines; /* in-flight fast requests, keyed on their deadline */
    h1_idle_budget fast_idle; /* kept-alive fast connections: half the descriptor limit */
};

/* scheduler.c */
int64_t scrape_mono_ms(void);
size_t scrape_write_cb(char *p, size_t sz, size_t n, void *userp);
void scrape_deliver(scrape_loop *l, target *t, long status, const char *e, double dur);
double scrape_elapsed_s(const target *t);
void scrape_headers(target *t, const char *hdrs[4]);
void scrape_setup_failed(scrape_loop *l, target *t, const char *err);
void scrape_start_curl(scrape_loop *l, target *t, int64_t timeout_ms);
int64_t scrape_timeout(const target *t);

/* scheduler_fast.c */
void scrape_fast_sync(scrape_loop *l, target *t);
void scrape_fast_end(scrape_loop *l, target *t);
bool scrape_fast_start(scrape_loop *l, target *t);
void scrape_fast_event(scrape_loop *l, target *t, uint32_t events);
void scrape_fast_expire(scrape_loop *l, int64_t now);

#endif
