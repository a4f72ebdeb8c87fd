/* runtime: wires the stages together for `lookout run` (docs/architecture.md): configuration -> store ->
 * ingest writer -> scrape loop -> target manager -> HTTP server with every API (api/api.h) -> discovery
 * manager. Owns reload (SIGHUP, POST /-/reload) and shutdown. main.c parses flags and calls runtime_run(). */
#ifndef LOOKOUT_RUNTIME_H
#define LOOKOUT_RUNTIME_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct runtime_options {
    const char *config_file;    /* NULL: embedded default configuration (scrape lookout itself) */
    const char *listen_address; /* "HOST:PORT"; NULL: LOOKOUT_DEFAULT_LISTEN_ADDRESS (config/config.h) */
    const char *storage_path;   /* directory; NULL: LOOKOUT_DEFAULT_STORAGE_PATH */
    bool enable_lifecycle;      /* POST /-/reload, /-/quit */
    bool enable_push;           /* POST /errors, /api/v1/push/{job} (also push.enabled in the config) */
    bool scrape_curl_only;      /* --scrape.curl-only: no fast path (scrape/scheduler.h) */
    const char *web_config_file; /* --web.config.file: TLS, basic auth, headers (config/web_config.h); NULL: none */
    const char *cors_origin;     /* --web.cors.origin: regex of origins allowed to make cross-site writes */
    const char *external_url;   /* --web.external-url: links in alerts; NULL: http://<listen address> + route prefix */
    const char *route_prefix;   /* --web.route-prefix; NULL: the path of external_url */
    int64_t alert_resend_delay_ms;       /* --rules.alert.resend-delay; 0: 1m */
    size_t notification_queue_capacity;  /* --alertmanager.notification-queue-capacity; 0: 10000 */
    /* HTTP server bounds (http/server.h; 0: its defaults) */
    unsigned max_connections;            /* --web.max-connections */
    unsigned max_connections_per_client; /* --web.max-connections-per-client */
    unsigned read_header_timeout_s;      /* --web.read-header-timeout */
    unsigned read_timeout_s;             /* --web.read-timeout */
    unsigned slow_handler_threads;       /* --web.slow-handler-threads */
    size_t slow_handler_queue;           /* --web.slow-handler-queue */
    size_t push_max_bytes_in_flight;     /* --web.push.max-bytes-in-flight; 0: PUSH_MAX_IN_FLIGHT_BYTES */
} runtime_options;

/* Runs until SIGINT/SIGTERM. Returns the process exit code. */
int runtime_run(const runtime_options *opts);

#endif
