/* config: YAML (Prometheus or Periskop format) -> typed configuration, validated, with file:line:column
 * errors. No I/O beyond reading the named config files (and checking that *_file references exist is NOT
 * done here: credentials files are read when used). Pure: no threads, no globals.
 *
 * Ownership: config_load() returns a tree owned by the caller, freed with config_free(). Every string in it
 * is owned by the tree. Durations are milliseconds (int64). */
#ifndef LOOKOUT_CONFIG_CONFIG_H
#define LOOKOUT_CONFIG_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels/labels.h"
#include "labels/relabel.h"
#include "util/duration.h"

/* Where a value came from, for messages and for the relabel_steps / targets pages. */
typedef struct config_pos {
    int line;   /* 1-based; 0 when unknown */
    int column; /* 1-based */
} config_pos;

typedef struct tls_config {
    char *ca_file, *cert_file, *key_file, *server_name;
    char *ca, *cert, *key; /* inline PEM (Prometheus 2.x `ca`, `cert`, `key`) */
    bool insecure_skip_verify;
    char *min_version; /* "TLS10".."TLS13" or NULL (max_version is validated, not kept) */
} tls_config;

/* Prometheus' HTTPClientConfig, shared by scrape configs and HTTP-based SD providers. */
typedef struct http_client_config {
    bool has_basic_auth;
    char *basic_auth_username, *basic_auth_password, *basic_auth_password_file;
    bool has_authorization;
    char *authorization_type; /* default "Bearer" when has_authorization */
    char *authorization_credentials, *authorization_credentials_file;
    /* Legacy bearer_token / bearer_token_file are folded into authorization at load time. */
    tls_config tls;
    char *proxy_url;
    bool follow_redirects; /* default true */
    bool enable_http2;     /* default true */
} http_client_config;

typedef enum sd_kind {
    SD_STATIC = 0,
    SD_FILE,
    SD_DNS,
    SD_CONSUL,
    SD_KUBERNETES,
    SD_HTTP,
    SD_KIND_COUNT
} sd_kind;

typedef struct static_sd_config {
    char **targets; /* addresses, as written */
    size_t n_targets;
    labelset labels;
} static_sd_config;

typedef struct file_sd_config {
    char **files; /* patterns; globs allowed in the last path element; relative paths are resolved
                     against the config file's directory at load time */
    size_t n_files;
    int64_t refresh_interval_ms; /* default 5m */
} file_sd_config;

/* kubernetes_sd_configs (Prometheus discovery/kubernetes SDConfig). Roles as Prometheus spells them. */
typedef enum k8s_role {
    K8S_ROLE_POD = 0,
    K8S_ROLE_SERVICE,
    K8S_ROLE_ENDPOINTS,
    K8S_ROLE_ENDPOINTSLICE,
    K8S_ROLE_NODE,
    K8S_ROLE_INGRESS,
    K8S_ROLE_COUNT
} k8s_role;

typedef struct kubernetes_selector {
    k8s_role role;
    char *label; /* label selector sent as labelSelector=, NULL when absent */
    char *field; /* field selector sent as fieldSelector=, NULL when absent */
} kubernetes_selector;

typedef struct kubernetes_sd_config {
    k8s_role role;
    char *api_server;      /* NULL: kubeconfig_file or in-cluster */
    char *kubeconfig_file; /* joined to the config file's directory */
    http_client_config http;
    bool own_namespace;
    char **namespaces; /* namespaces.names */
    size_t n_namespaces;
    kubernetes_selector *selectors;
    size_t n_selectors;
    bool attach_node; /* attach_metadata.node */
} kubernetes_sd_config;
/* dns_sd_configs (Prometheus discovery/dns). */
typedef enum dns_sd_type { DNS_SD_SRV = 0, DNS_SD_A, DNS_SD_AAAA, DNS_SD_MX } dns_sd_type;

typedef struct dns_sd_config {
    char **names;
    size_t n_names;
    dns_sd_type type;            /* default SRV; `type` is case-insensitive */
    int port;                    /* required for A, AAAA, MX; ignored for SRV */
    int64_t refresh_interval_ms; /* default 30s */
} dns_sd_config;

/* consul_sd_configs (Prometheus discovery/consul). `username`/`password` are folded into http.basic_auth
 * at load time, as Prometheus does. */
typedef struct consul_sd_config {
    char *server;       /* default "localhost:8500" */
    char *path_prefix;  /* NULL = none */
    char *token;        /* sent as X-Consul-Token; NULL = none */
    char *datacenter;   /* NULL = the agent's (GET /v1/agent/self) */
    char *ns;           /* `namespace` (Consul Enterprise); NULL = none */
    char *partition;    /* NULL = none */
    char *scheme;       /* default "http" */
    char *tag_separator;/* default "," */
    bool allow_stale;   /* default true */
    int64_t refresh_interval_ms; /* default 30s */
    char **services;    /* empty = every service */
    size_t n_services;
    char **tags;        /* a service must carry all of them */
    size_t n_tags;
    char **node_meta_keys, **node_meta_values; /* sorted by key */
    size_t n_node_meta;
    http_client_config http;
} consul_sd_config;

/* http_sd_configs (Prometheus discovery/http). */
typedef struct http_sd_config {
    char *url;                   /* required, http or https */
    int64_t refresh_interval_ms; /* default 60s */
    http_client_config http;
} http_sd_config;

/* One SD block, e.g. one element of file_sd_configs. Later issues add their own struct to the union. */
typedef struct sd_config {
    sd_kind kind;
    int index; /* position within its list (static_configs[i]), used for source names */
    config_pos pos;
    union {
        static_sd_config static_sd;
        file_sd_config file;
        kubernetes_sd_config kubernetes;
        dns_sd_config dns;
        consul_sd_config consul;
        http_sd_config http;
    } u;
} sd_config;

typedef struct param {
    char *name;
    char **values;
    size_t n_values;
} param;

typedef struct scrape_config {
    char *job_name;
    config_pos pos;
    int64_t scrape_interval_ms; /* default: global */
    int64_t scrape_timeout_ms;  /* default: global, capped at interval when inherited */
    char *metrics_path;         /* default "/-/exceptions"; kept as written (the URL adds a leading slash) */
    char *scheme;               /* "http" (default) | "https" */
    param *params;              /* sorted by name */
    size_t n_params;
    bool honor_labels, honor_timestamps; /* honor_timestamps default true */
    http_client_config http;
    int64_t body_size_limit; /* bytes; 0 = lookout default (10 MiB) */
    uint64_t target_limit;   /* 0 = no limit */
    uint64_t sample_limit;   /* aggregated errors per payload; 0 = no limit */
    uint64_t keep_dropped_targets; /* 0 = keep all (Prometheus 2.47 field) */
    relabel_rule *relabel_configs;
    size_t n_relabel_configs;
    relabel_rule *metric_relabel_configs; /* parsed and validated, not applied */
    size_t n_metric_relabel_configs;
    /* Applied to each aggregated error of a payload before it is merged (ingest/error_relabel.h). */
    relabel_rule *error_relabel_configs;
    size_t n_error_relabel_configs;
    sd_config *sd_configs; /* every SD block of every implemented kind, in config order per kind */
    size_t n_sd_configs;
} scrape_config;

typedef enum storage_type { STORAGE_SQLITE = 0, STORAGE_MEMORY, STORAGE_POSTGRES, STORAGE_MYSQL } storage_type;

typedef struct storage_config {
    storage_type type;      /* default sqlite */
    char *path;             /* directory (sqlite); NULL = --storage.path. Kept as written (relative to the
                               working directory, like the flag); a Periskop repository.path is a file name */
    char *dsn;              /* postgres / mysql */
    int64_t retention_ms;   /* default 14d */
    uint32_t samples_per_error; /* default 100 */
    uint32_t max_errors_per_job; /* default 10,000; beyond it new keys count into "lookout.overflow" */
} storage_config;

/* `push:` (lookout's own section): push ingestion, POST /errors and POST /api/v1/push/{job}. Credentials
 * files are read when a push arrives (so a rotated secret needs no reload). */
typedef struct push_config {
    bool enabled;            /* default false; --web.enable-push also enables */
    char *default_job;       /* job of POST /errors; default "pushed" */
    int64_t body_size_limit; /* bytes; default 10 MiB */
    bool has_authorization;
    char *authorization_type; /* default "Bearer" */
    char *authorization_credentials, *authorization_credentials_file;
    bool has_basic_auth;
    char *basic_auth_username, *basic_auth_password, *basic_auth_password_file;
    relabel_rule *error_relabel_configs; /* for every pushed job */
    size_t n_error_relabel_configs;
} push_config;

/* `scrubbing:` (lookout's own section): secrets masked at ingestion (periskop/scrub.h lists the defaults).
 *   scrubbing:
 *     enabled: true            # default
 *     headers: [X-Internal]    # extra header names whose values are masked
 *     fields: [ssn, card]      # extra name patterns for query/fragment parameters, JSON and form fields
 *                              # and header names */
typedef struct scrubbing_config {
    bool enabled;
    char **headers;
    size_t n_headers;
    char **fields;
    size_t n_fields;
} scrubbing_config;

/* Defaults of the command line that more than one stage needs. */
#define LOOKOUT_DEFAULT_LISTEN_ADDRESS ":7777"
#define LOOKOUT_DEFAULT_STORAGE_PATH "data"
#define PUSH_DEFAULT_JOB "pushed"
#define PUSH_DEFAULT_BODY_LIMIT (10LL << 20)

typedef struct global_config {
    int64_t scrape_interval_ms; /* default 1m */
    int64_t scrape_timeout_ms;  /* default 10s */
    int64_t evaluation_interval_ms; /* default 1m: how often the notifier looks for alerts */
    labelset external_labels;
} global_config;

/* One element of alerting.alertmanagers (Prometheus AlertmanagerConfig). The HTTP client settings, the
 * SD blocks and relabel_configs (applied to the discovered Alertmanagers) live in `sc` (job_name
 * "alertmanager"; the notifier discovers each element as "config-N", as Prometheus does). */
typedef struct alertmanager_config {
    scrape_config sc;   /* http, sd_configs, relabel_configs, pos */
    char *scheme;       /* http (default) | https */
    char *path_prefix;  /* default "/" */
    int64_t timeout_ms; /* default 10s */
} alertmanager_config;

/* `alerting:` (Prometheus' section, plus lookout's resolve_after and min_severity). */
typedef struct alerting_config {
    alertmanager_config *alertmanagers;
    size_t n_alertmanagers;
    int64_t resolve_after_ms; /* default 1h: an alert resolves this long after the error's last occurrence */
    int min_severity; /* 0 info, 1 warning (default), 2 error: payload_severity's values */
    relabel_rule *alert_relabel_configs; /* applied to each alert's labels; drop: not sent */
    size_t n_alert_relabel_configs;
} alerting_config;

/* check-config prints "FILE: warning: MESSAGE"; the message therefore starts with the position but not the
 * file name: "line 3, column 1: rule_files is not used by lookout; ignored". */
typedef struct config_warning {
    char *message;
    config_pos pos;
} config_warning;

typedef struct lookout_config {
    char *filename; /* as given */
    global_config global;
    scrape_config *scrape_configs;
    size_t n_scrape_configs;
    storage_config storage;
    push_config push;
    scrubbing_config scrubbing;
    alerting_config alerting;
    bool periskop_format; /* loaded from a Periskop `services:` file */
    config_warning *warnings;
    size_t n_warnings;
} lookout_config;

/* Loads and validates a configuration file. On error returns NULL and writes
 * "FILE:LINE:COLUMN: what is wrong (expected ...)" into err (1-based; invalid YAML gives
 * "FILE:LINE:COLUMN: invalid YAML: <libyaml problem> <context>"; an unreadable file "FILE: cannot open ..."). */
lookout_config *config_load(const char *path, char *err, size_t errlen);
/* Same, from memory; `name` is used in messages and to resolve relative file_sd paths (its directory). */
lookout_config *config_parse(const char *yaml, size_t len, const char *name, char *err, size_t errlen);
/* The configuration used when no --config.file is given: scrape lookout itself at `self_address`. */
lookout_config *config_default(const char *self_address);
void config_free(lookout_config *cfg);

const scrape_config *config_find_job(const lookout_config *cfg, const char *job);
/* True when two scrape configs are identical in every field (used to keep unchanged jobs on reload). */
bool scrape_config_equal(const scrape_config *a, const scrape_config *b);
/* Every config type's lifecycle lives in config/, beside its parser: init (defaults), copy (deep), equal,
 * release (frees what it owns, secrets wiped first; the struct itself is left zeroed) and, for SD blocks,
 * a canonical text. Adding a field to a type means touching its parse_*.c file only. */

/* HTTP client settings (parse_http.c). */
void http_client_config_init(http_client_config *h); /* Prometheus' defaults: follow_redirects, enable_http2 */
void http_client_config_copy(http_client_config *dst, const http_client_config *src);
bool http_client_config_equal(const http_client_config *a, const http_client_config *b);
/* The one destructor: passwords, credentials and the inline TLS key are wiped (explicit_bzero) first. */
void http_client_config_release(http_client_config *h);

/* SD blocks (parse_sd.c dispatches to the kind's file). */
/* True when two SD blocks are identical (used by the discovery manager to keep providers on reload). */
bool sd_config_equal(const sd_config *a, const sd_config *b);
/* Deep copy of kind, index, pos and the kind's settings into dst. */
void sd_config_copy(sd_config *dst, const sd_config *src);
void sd_config_release(sd_config *sd); /* the kind's settings; kind, index and pos stay */
/* A canonical, unambiguous text of everything in an SD block that changes what its provider discovers
 * (every field length-prefixed, lists in order); the index is not part of it. with_secrets: passwords and
 * tokens verbatim (for in-memory keys only), otherwise they appear as "set". NULL for kinds without a
 * parser. Persisted SD cache ids are digests of it (sd/cache.h): keep it stable. Caller frees. */
char *sd_config_canonical(const sd_config *cfg, bool with_secrets);

/* A size with Prometheus' base-2 units ("32MiB", "512KiB", "1GB" = 2^30, plain bytes): 0, or -1 when
 * malformed. For command-line flags; the configuration parser uses the same rules. */
int config_parse_bytes(const char *s, int64_t *out);

#endif
