/* runtime: see runtime.h. The main thread owns the lifecycle: it blocks SIGHUP/SIGINT/SIGTERM before any
 * thread exists (so every thread inherits the mask), then waits on a signalfd and an eventfd (POST /-/quit).
 * Reloads run either on the main thread (SIGHUP) or on an HTTP thread (POST /-/reload), serialised by
 * reload_mu; the running configuration is only replaced after every stage accepted the new one.
 *
 * runtime_run = runtime_start (stages in order: store, ingest, scrape loop, target manager, HTTP server with
 * every API, discovery last so that a busy port fails before any provider starts) + runtime_wait (signals
 * and /-/quit) + runtime_stop (readers before what they read). */
#include "alert/notifier.h"
#include "runtime.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "config/config.h"
#include "http/server.h"
#include "http/websec.h"
#include "ingest/ingest.h"
#include "periskop/selfexc.h"
#include "scrape/scheduler.h"
#include "scrape/targets.h"
#include "sd/sd.h"
#include "store/store_open.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

typedef struct runtime {
    const runtime_options *opts;
    pthread_mutex_t reload_mu;
    lookout_config *cfg; /* the running configuration; replaced under reload_mu */
    target_manager *tm;
    scrape_loop *loop;
    selfexc *sx;   /* lookout's own exceptions (/-/exceptions) */
    store *st;
    ingest *ingest; /* scrape results -> merge engine -> store (writer thread) */
    notifier *alerts; /* new/regressed errors -> Alertmanager (its own threads, reads the store) */
    sd_manager *sd;
    http_server *http;
    websec *ws; /* --web.config.file and --web.cors.origin, applied to every request */
    api_set api; /* every API family's state */
    const char *listen;
    const char *storage_path;
    char *route_prefix; /* --web.route-prefix, normalised ("/lookout"); "" for none */
    sigset_t signals, old_mask; /* SIGHUP/SIGINT/SIGTERM, blocked in every thread */
    int signal_fd;
    int quit_fd; /* eventfd written by POST /-/quit */
} runtime;

static metric_family *m_reload_ok(void)
{
    return metric_family_get("lookout_config_last_reload_successful", METRIC_GAUGE,
                             "Whether the last configuration reload attempt was successful.", 0, NULL);
}

static metric_family *m_reload_ts(void)
{
    return metric_family_get("lookout_config_last_reload_success_timestamp_seconds", METRIC_GAUGE,
                             "Timestamp of the last successful configuration reload.", 0, NULL);
}

static void reload_metrics(bool ok)
{
    metric_set(m_reload_ok(), NULL, ok ? 1 : 0);
    if (ok) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        metric_set(m_reload_ts(), NULL, (double)ts.tv_sec);
    }
}

static void log_warnings(const lookout_config *cfg)
{
    for (size_t i = 0; i < cfg->n_warnings; i++)
        log_warn("config", cfg->warnings[i].message, "file", cfg->filename);
}

/* The address lookout scrapes itself at in the default configuration: the listen address with an
 * unspecified host replaced by localhost (":7777", "0.0.0.0:7777", "[::]:7777" -> "localhost:7777"). */
static void self_address(const char *listen, char *out, size_t n)
{
    char host[256], port[32], err[128];
    if (http_split_host_port(listen, host, sizeof host, port, sizeof port, err, sizeof err) != 0) {
        snprintf(out, n, "localhost:7777");
        return;
    }
    if (!*host || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
        snprintf(out, n, "localhost:%s", port);
    else if (strchr(host, ':'))
        snprintf(out, n, "[%s]:%s", host, port);
    else
        snprintf(out, n, "%s:%s", host, port);
}

static lookout_config *load_config(runtime *rt, char *err, size_t errlen)
{
    if (rt->opts->config_file)
        return config_load(rt->opts->config_file, err, errlen);
    char self[300];
    self_address(rt->listen, self, sizeof self);
    lookout_config *cfg = config_default(self);
    if (!cfg) {
        snprintf(err, errlen, "cannot build the default configuration");
        return NULL;
    }
    if (*rt->route_prefix) { /* lookout's own exceptions are under the route prefix too */
        size_t n = strlen(rt->route_prefix) + strlen("/-/exceptions") + 1;
        char *mp = xmalloc(n);
        snprintf(mp, n, "%s/-/exceptions", rt->route_prefix);
        free(cfg->scrape_configs[0].metrics_path);
        cfg->scrape_configs[0].metrics_path = mp;
    }
    return cfg;
}

/* exporter-toolkit serves HTTP/2 over TLS unless http_server_config.http2 is false; libmicrohttpd speaks
 * HTTP/1.1 only. Prometheus' default (true) is left unsaid in most files, so only a file that asks for
 * HTTP/2 explicitly is told, once per process. */
static void warn_http2(const web_config *wc)
{
    static bool warned;
    if (!wc || !wc->http2_explicit || warned)
        return;
    warned = true;
    log_warn("web", "http_server_config.http2 is ignored: lookout serves HTTP/1.1 only (libmicrohttpd has no HTTP/2)",
             "file", wc->filename);
}

/* Loads the configuration file again and applies it; on error the running configuration stays. */
static int runtime_reload(void *ctx, char *err, size_t errlen)
{
    runtime *rt = ctx;
    pthread_mutex_lock(&rt->reload_mu);
    log_info("config", "Loading configuration file", "filename",
             rt->opts->config_file ? rt->opts->config_file : "<default>");
    /* The web configuration is read again too (Prometheus reads it per request); a broken one fails the
     * reload and the running one stays. */
    web_config *wc = NULL;
    if (rt->opts->web_config_file && !(wc = web_config_load(rt->opts->web_config_file, err, errlen))) {
        log_error("web", "Error reloading web config file", "err", err);
        reload_metrics(false);
        pthread_mutex_unlock(&rt->reload_mu);
        return -1;
    }
    lookout_config *cfg = load_config(rt, err, errlen);
    if (!cfg || (rt->opts->web_config_file && websec_reload(rt->ws, wc, err, errlen) != 0)) {
        if (!cfg)
            web_config_free(wc);
        log_error("config", "Error reloading config", "err", err);
        config_free(cfg);
        reload_metrics(false);
        pthread_mutex_unlock(&rt->reload_mu);
        return -1;
    }
    warn_http2(wc); /* applied: websec owns it now, and reload_mu keeps it alive */
    log_warnings(cfg);
    /* Target manager first: pools of new jobs must exist before their first sync arrives. */
    targets_apply_config(rt->tm, cfg);
    ingest_set_error_relabel(rt->ingest, error_relabel_set_new(cfg));
    notifier_apply_config(rt->alerts, cfg);
    sd_manager_apply_config(rt->sd, cfg);
    ingest_set_scrubbing(rt->ingest, &cfg->scrubbing);
    api_reconfigure(&rt->api, cfg);
    lookout_config *old = rt->cfg;
    rt->cfg = cfg;
    config_free(old);
    reload_metrics(true);
    log_info("config", "Completed loading of configuration file", "filename",
             rt->opts->config_file ? rt->opts->config_file : "<default>");
    pthread_mutex_unlock(&rt->reload_mu);
    return 0;
}

/* Target manager hook: keeps the scrape loop's target set equal to the active targets. Runs under the
 * manager's write lock; scrape_loop_upsert/remove only enqueue. */
static void on_target_event(void *ctx, target_event ev, const char *job, const built_target *t,
                            const scrape_config *sc)
{
    runtime *rt = ctx;
    ingest_target_event(rt->ingest, ev, job, t, sc && sc->honor_labels, sc ? sc->sample_limit : 0);
    if (ev == TARGET_REMOVED) {
        scrape_loop_remove(rt->loop, job, t->hash);
        return;
    }
    /* A target may override its job's interval and timeout through relabeling. target_build already
     * validated these labels. */
    int64_t interval = sc->scrape_interval_ms, timeout = sc->scrape_timeout_ms;
    const char *v = labelset_get(&t->labels, "__scrape_interval__");
    if (v)
        duration_parse(v, &interval);
    v = labelset_get(&t->labels, "__scrape_timeout__");
    if (v)
        duration_parse(v, &timeout);
    scrape_target_spec spec = {.job = job,
                               .hash = t->hash,
                               .url = t->url,
                               .interval_ms = interval,
                               .timeout_ms = timeout,
                               .http = &sc->http,
                               .body_size_limit = sc->body_size_limit,
                               .forced_error = t->error};
    scrape_loop_upsert(rt->loop, &spec);
}

/* /-/ready note: a store that does not accept writes keeps lookout serving (and scraping), but the
 * operator should see it where load balancers and humans look first. */
static void ready_note(void *ctx, strbuf *out)
{
    runtime *rt = ctx;
    ingest_status st;
    ingest_get_status(rt->ingest, &st);
    if (st.backlog_changes || st.last_error[0])
        strbuf_printf(out, "store backlog: %zu changes not yet written (last store error: %s)\n", st.backlog_changes,
                      st.last_error[0] ? st.last_error : "none");
}

static void runtime_quit(void *ctx)
{
    runtime *rt = ctx;
    uint64_t one = 1;
    ssize_t w = write(rt->quit_fd, &one, sizeof one);
    (void)w;
}

static void build_info(void)
{
    static const char *names[] = {"version"};
    const char *values[] = {LOOKOUT_VERSION};
    metric_set(metric_family_get("lookout_build_info", METRIC_GAUGE,
                                 "A metric with a constant '1' value labeled by the version lookout was built "
                                 "from.",
                                 1, names),
               values, 1);
}

/* Blocks the lifecycle signals in this thread (every thread started later inherits the mask), loads the
 * configuration and starts the stages in order. Returns 0, or -1 after logging why (runtime_stop
 * releases whatever did start). */
static int runtime_start(runtime *rt)
{
    sigemptyset(&rt->signals);
    sigaddset(&rt->signals, SIGHUP);
    sigaddset(&rt->signals, SIGINT);
    sigaddset(&rt->signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &rt->signals, &rt->old_mask);
    signal(SIGPIPE, SIG_IGN);

    log_info("main", "Starting lookout", "version", LOOKOUT_VERSION, "listen_address", rt->listen, "route_prefix",
             *rt->route_prefix ? rt->route_prefix : "/");

    char err[2048];
    rt->cfg = load_config(rt, err, sizeof err);
    if (!rt->cfg) {
        log_error("config", "Error loading config", "err", err);
        return -1;
    }
    log_warnings(rt->cfg);
    build_info();
    reload_metrics(true);
    status_process_metrics_register();

    rt->signal_fd = signalfd(-1, &rt->signals, SFD_CLOEXEC);
    rt->quit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (rt->signal_fd < 0 || rt->quit_fd < 0) {
        log_error("main", "cannot create signal or event descriptors", "err", strerror(errno));
        return -1;
    }

    rt->tm = targets_new();
    rt->sx = selfexc_new();
    rt->st = store_open(&rt->cfg->storage, &rt->cfg->scrubbing, rt->storage_path, err, sizeof err);
    if (!rt->st) {
        log_error("store", "cannot open the store", "err", err);
        return -1;
    }
    log_info("store", "Store opened", "backend", rt->st->ops->name);
    ingest_options iopts = {.merge = {.samples_per_error = rt->cfg->storage.samples_per_error,
                                      .retention_ms = rt->cfg->storage.retention_ms,
                                      .max_errors_per_job = rt->cfg->storage.max_errors_per_job}};
    rt->ingest = ingest_new(rt->st, rt->tm, rt->sx, &iopts);
    ingest_set_scrubbing(rt->ingest, &rt->cfg->scrubbing);
    ingest_set_error_relabel(rt->ingest, error_relabel_set_new(rt->cfg));
    char self[300], ext[400];
    self_address(rt->listen, self, sizeof self);
    snprintf(ext, sizeof ext, "http://%s%s", self, rt->route_prefix);
    notifier_options nopts = {.external_url = rt->opts->external_url && *rt->opts->external_url
                                                  ? rt->opts->external_url : ext,
                              .resend_delay_ms = rt->opts->alert_resend_delay_ms,
                              .queue_capacity = rt->opts->notification_queue_capacity};
    rt->alerts = notifier_new(rt->st, &nopts);
    notifier_apply_config(rt->alerts, rt->cfg);
    if (notifier_start(rt->alerts) != 0) {
        log_error("alert", "cannot start the notifier");
        return -1;
    }
    if (ingest_start(rt->ingest, err, sizeof err) != 0) {
        log_error("store", "cannot load the store", "err", err);
        return -1;
    }
    rt->loop = scrape_loop_new(scrape_seed(&rt->cfg->global.external_labels), ingest_submit, rt->ingest);
    if (rt->loop)
        scrape_loop_set_fast_http(rt->loop, !rt->opts->scrape_curl_only);
    if (!rt->loop || scrape_loop_start(rt->loop, err, sizeof err) != 0) {
        log_error("scrape", "cannot start the scrape loop", "err", rt->loop ? err : strerror(errno));
        return -1;
    }
    targets_set_hook(rt->tm, on_target_event, rt);
    targets_apply_config(rt->tm, rt->cfg);

    /* The HTTP server before discovery, so that a busy port fails before any provider starts. */
    http_server_options hopts = {.listen_address = rt->listen,
                                 .max_connections = rt->opts->max_connections,
                                 .max_connections_per_ip = rt->opts->max_connections_per_client,
                                 .header_timeout_s = rt->opts->read_header_timeout_s,
                                 .timeout_s = rt->opts->read_timeout_s,
                                 .slow_threads = rt->opts->slow_handler_threads,
                                 .slow_queue = rt->opts->slow_handler_queue};
    web_config *wc = NULL;
    pcre2_code *cors = NULL;
    if (rt->opts->web_config_file && !(wc = web_config_load(rt->opts->web_config_file, err, sizeof err))) {
        log_error("web", "Error loading web config file", "err", err);
        return -1;
    }
    if (rt->opts->cors_origin && *rt->opts->cors_origin &&
        !(cors = origin_compile(rt->opts->cors_origin, err, sizeof err))) {
        web_config_free(wc);
        log_error("web", "Error parsing --web.cors.origin", "err", err);
        return -1;
    }
    if (wc && (wc->tls || wc->n_users) && !rt->opts->config_file)
        log_warn("web", "the embedded configuration scrapes lookout over plain HTTP without credentials, so its own "
                        "target is down with this web config; give a --config.file whose job has scheme, tls_config "
                        "and basic_auth", "file", rt->opts->web_config_file);
    warn_http2(wc);
    rt->ws = websec_new(wc, cors);
    websec_set_external_url(rt->ws, rt->opts->external_url);
    if (websec_server_options(rt->ws, &hopts, err, sizeof err) != 0) {
        log_error("web", "Error loading the TLS certificate", "err", err);
        return -1;
    }
    rt->http = http_server_new(&hopts);
    http_server_set_route_prefix(rt->http, rt->route_prefix);
    websec_attach(rt->ws, rt->http);
    api_deps deps = {.tm = rt->tm,
                     .st = rt->st,
                     .sx = rt->sx,
                     .ingest = rt->ingest,
                     .listen_address = rt->listen,
                     .storage_path = rt->storage_path,
                     .enable_lifecycle = rt->opts->enable_lifecycle,
                     .enable_push = rt->opts->enable_push,
                     .push_max_bytes_in_flight = rt->opts->push_max_bytes_in_flight,
                     .cfg = rt->cfg,
                     .reload = runtime_reload,
                     .quit = runtime_quit,
                     .ready_note = ready_note,
                     .ctx = rt};
    api_register_all(&rt->api, rt->http, &deps);
    if (http_server_start(rt->http, err, sizeof err) != 0) {
        log_error("web", "Error starting web server", "err", err);
        return -1;
    }
    log_info("web", "Start listening for connections", "address", rt->listen);
    log_info("web", websec_tls(rt->ws) ? "TLS is enabled." : "TLS is disabled.", "http2", "false", "address",
             rt->listen);

    rt->sd = sd_manager_new(targets_sd_sync, rt->tm, 1000);
    if (!rt->sd) {
        log_error("sd", "cannot start the discovery manager");
        return -1;
    }
    sd_manager_set_storage_path(rt->sd, rt->storage_path); /* persisted SD targets: <storage>/sd */
    sd_manager_apply_config(rt->sd, rt->cfg);
    api_set_ready(&rt->api, true);
    log_info("main", "Server is ready to receive web requests.");
    return 0;
}

/* Serves SIGHUP (reload) until SIGINT, SIGTERM or POST /-/quit. Returns 0, or -1 when waiting failed. */
static int runtime_wait(runtime *rt)
{
    for (;;) {
        struct pollfd pfd[2] = {{rt->signal_fd, POLLIN, 0}, {rt->quit_fd, POLLIN, 0}};
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("main", "poll failed", "err", strerror(errno));
            return -1;
        }
        if (pfd[1].revents & POLLIN) {
            log_warn("main", "Received termination request via web service, exiting gracefully...");
            return 0;
        }
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(rt->signal_fd, &si, sizeof si) != (ssize_t)sizeof si)
                continue;
            if (si.ssi_signo == SIGHUP) {
                char rerr[2048];
                runtime_reload(rt, rerr, sizeof rerr);
            } else {
                log_warn("main", "Received signal, exiting gracefully...", "signal",
                         si.ssi_signo == SIGINT ? "interrupt" : "terminated");
                return 0;
            }
        }
    }
}

/* Stops whatever runtime_start started, readers before what they read: HTTP (no more requests or
 * reloads) -> discovery (no more syncs) -> scrape loop (no more results) -> ingest (drains its queue,
 * last write) -> target manager -> store. Safe after a partial start. */
static void runtime_stop(runtime *rt)
{
    api_set_ready(&rt->api, false);
    http_server_free(rt->http);
    websec_free(rt->ws);
    api_free_all(&rt->api);
    sd_manager_free(rt->sd);
    scrape_loop_free(rt->loop);
    notifier_free(rt->alerts);
    ingest_free(rt->ingest);
    targets_free(rt->tm);
    store_close(rt->st);
    selfexc_free(rt->sx);
    config_free(rt->cfg);
    status_process_metrics_unregister();
    if (rt->signal_fd >= 0)
        close(rt->signal_fd);
    if (rt->quit_fd >= 0)
        close(rt->quit_fd);
    pthread_sigmask(SIG_SETMASK, &rt->old_mask, NULL);
}

int runtime_run(const runtime_options *opts)
{
    runtime rt = {.opts = opts,
                  .listen = opts->listen_address ? opts->listen_address : LOOKOUT_DEFAULT_LISTEN_ADDRESS,
                  .storage_path = opts->storage_path ? opts->storage_path : LOOKOUT_DEFAULT_STORAGE_PATH,
                  .route_prefix = http_route_prefix(opts->route_prefix, opts->external_url),
                  .signal_fd = -1,
                  .quit_fd = -1};
    pthread_mutex_init(&rt.reload_mu, NULL);
    int rc = runtime_start(&rt) == 0 && runtime_wait(&rt) == 0 ? 0 : 1;
    runtime_stop(&rt);
    pthread_mutex_destroy(&rt.reload_mu);
    free(rt.route_prefix);
    if (rc == 0)
        log_info("main", "See you next time!");
    return rc;
}
