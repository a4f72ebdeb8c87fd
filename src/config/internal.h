/* internal: functions shared by the files of src/config/ (not part of the module's public interface). */
#ifndef LOOKOUT_CONFIG_INTERNAL_H
#define LOOKOUT_CONFIG_INTERNAL_H
#include "config/config.h"
#include "config/yaml_util.h"
#include "util/strbuf.h"

#define CFG_DEFAULT_METRICS_PATH "/-/exceptions"

/* HTTP client (parse_http.c). The keys are inlined in a scrape config or an SD block. */
extern const char *const cfg_http_keys[];
int cfg_parse_http(cfg_ctx *c, const yaml_node_t *map, http_client_config *h);
void cfg_canon_http(strbuf *sb, const http_client_config *h, bool with_secrets);

/* Canonical text writers (canonical.c): name=<len>:value; and friends. */
void cfg_canon_str(strbuf *sb, const char *name, const char *v);
void cfg_canon_secret(strbuf *sb, const char *name, const char *v, bool with_secrets); /* "set" unless asked */
void cfg_canon_int(strbuf *sb, const char *name, long long v);
void cfg_canon_strv(strbuf *sb, const char *name, char *const *v, size_t n);

/* Service discovery blocks (parse_sd.c). */
size_t cfg_sd_keys(const char **out, size_t max); /* appends every *_sd_configs key; returns the count */
int cfg_parse_sd_blocks(cfg_ctx *c, const yaml_node_t *map, scrape_config *sc);
/* kubernetes_sd_configs (parse_sd_kubernetes.c). */
int cfg_parse_sd_kubernetes(cfg_ctx *c, const yaml_node_t *node, sd_config *sd);
void cfg_free_sd_kubernetes(sd_config *sd);
bool cfg_equal_sd_kubernetes(const sd_config *a, const sd_config *b);
void cfg_copy_sd_kubernetes(sd_config *dst, const sd_config *src);
void cfg_canon_sd_kubernetes(strbuf *sb, const sd_config *sd, bool with_secrets);

/* Relabel rules and scrape configs (parse_scrape.c). */
int cfg_parse_relabel_list(cfg_ctx *c, const yaml_node_t *map, const char *key, relabel_rule **out, size_t *n);
/* error_relabel_configs: a relabel list plus the checks of its special labels (a static __severity__
 * must be info, warning or error). */
int cfg_parse_error_relabel_list(cfg_ctx *c, const yaml_node_t *map, relabel_rule **out, size_t *n);
void cfg_free_rules(relabel_rule *rules, size_t n);
/* A scrape config with Prometheus' defaults that are not zero (honor_timestamps, follow_redirects, ...). */
void cfg_scrape_config_init(scrape_config *sc, const yaml_node_t *node);
int cfg_parse_scrape_config(cfg_ctx *c, const yaml_node_t *node, const global_config *g, scrape_config *sc);
/* Parses the list under root[key] into cfg->scrape_configs with parse, rejecting duplicate job names with
 * "found multiple <dup_noun> \"NAME\" (first at line N<dup_hint>)". Shared by the Prometheus
 * (scrape_configs) and Periskop (services) formats. */
typedef int (*cfg_job_parser)(cfg_ctx *c, const yaml_node_t *node, const global_config *g, scrape_config *sc);
int cfg_parse_jobs(cfg_ctx *c, const yaml_node_t *root, const char *key, cfg_job_parser parse,
                   const char *dup_noun, const char *dup_hint, lookout_config *cfg);
void cfg_scrape_free(scrape_config *sc);
/* Prometheus units.Base2Bytes ("10MB", "1.5GiB", "0"); returns 0 or -1. */
int cfg_parse_base2_bytes(const char *s, int64_t *out);

/* Storage section (config.c) and Periskop format (periskop.c). */
void cfg_storage_defaults(storage_config *st);
int cfg_parse_periskop(cfg_ctx *c, const yaml_node_t *root, lookout_config *cfg);

/* Alerting section (parse_alerting.c). */
void cfg_alerting_defaults(alerting_config *a);
void cfg_alerting_free(alerting_config *a);
int cfg_parse_alerting(cfg_ctx *c, const yaml_node_t *node, alerting_config *a);

/* Push section (parse_push.c). */
void cfg_push_defaults(push_config *p);
void cfg_push_free(push_config *p);
int cfg_parse_push(cfg_ctx *c, const yaml_node_t *node, push_config *p);

/* Scrubbing section (parse_scrubbing.c). */
void cfg_scrubbing_defaults(scrubbing_config *s);
void cfg_scrubbing_free(scrubbing_config *s);
int cfg_parse_scrubbing(cfg_ctx *c, const yaml_node_t *node, scrubbing_config *s);

#endif
