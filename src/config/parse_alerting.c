/* parse_alerting: Prometheus' top-level `alerting:` section (config.AlertingConfig), plus lookout's
 * resolve_after and min_severity (docs: README "Alerts through Alertmanager").
 *
 *   alerting:
 *     resolve_after: 1h           # lookout: resolved this long after the error's last occurrence
 *     min_severity: warning       # lookout: errors below this severity never alert
 *     alert_relabel_configs: []   # applied to every alert's labels (after external labels) before sending
 *     alertmanagers:
 *       - scheme: http            # or https
 *         path_prefix: /
 *         timeout: 10s
 *         api_version: v2         # the only one Alertmanager still serves
 *         static_configs: [{targets: ['alertmanager:9093']}]   # or any *_sd_configs lookout has
 *         basic_auth / authorization / tls_config / proxy_url ...   # Prometheus' HTTP client settings
 *         relabel_configs: []     # applied to the discovered Alertmanagers (__address__, __scheme__,
 *                                 # __alerts_path__, __meta_*)
 *
 * The SD blocks are parsed and validated like a scrape_config's; alert/notifier.c discovers each
 * alertmanager config as its own set. A per-Alertmanager alert_relabel_configs came with Prometheus 2.51;
 * lookout follows 2.42 and rejects it as 2.42 does (field ... not found). */
#include <stdlib.h>
#include <string.h>

#include "config/internal.h"

void cfg_alerting_defaults(alerting_config *a)
{
    memset(a, 0, sizeof *a);
    a->resolve_after_ms = 3600 * 1000;
    a->min_severity = 1;
}

void cfg_alerting_free(alerting_config *a)
{
    for (size_t i = 0; i < a->n_alertmanagers; i++) {
        alertmanager_config *am = &a->alertmanagers[i];
        cfg_scrape_free(&am->sc);
        free(am->scheme);
        free(am->path_prefix);
    }
    free(a->alertmanagers);
    cfg_free_rules(a->alert_relabel_configs, a->n_alert_relabel_configs);
    memset(a, 0, sizeof *a);
}

static int parse_am(cfg_ctx *c, const yaml_node_t *node, alertmanager_config *am)
{
    const char *allowed[96];
    size_t na = 0;
    static const char *const own[] = {"scheme", "path_prefix", "timeout", "api_version", "relabel_configs",
                                      NULL};
    for (size_t i = 0; own[i]; i++)
        allowed[na++] = own[i];
    for (size_t i = 0; cfg_http_keys[i]; i++)
        allowed[na++] = cfg_http_keys[i];
    na += cfg_sd_keys(allowed + na, 48);
    allowed[na] = NULL;
    cfg_scrape_config_init(&am->sc, node);
    am->sc.job_name = strdup("alertmanager");
    am->timeout_ms = 10 * 1000;
    if (cfg_is_null(node))
        return cfg_error(c, node, "empty or null alertmanager config");
    if (cfg_check_map(c, node, "alertmanager config", allowed) < 0)
        return -1;
    char *api = NULL;
    if (cfg_read_string(c, node, "scheme", &am->scheme) < 0 || cfg_read_string(c, node, "path_prefix", &am->path_prefix) < 0 ||
        cfg_read_duration(c, node, "timeout", &am->timeout_ms) < 0 || cfg_read_string(c, node, "api_version", &api) < 0)
        return -1;
    if (api && *api && strcmp(api, "v2") != 0) {
        int rc = cfg_error(c, cfg_get(c, node, "api_version"),
                           "unsupported Alertmanager API version \"%s\" (expected v2; v1 is gone since Alertmanager 0.27)",
                           api);
        free(api);
        return rc;
    }
    free(api);
    if (!am->scheme || !*am->scheme) {
        free(am->scheme);
        am->scheme = strdup("http");
    } else if (strcmp(am->scheme, "http") && strcmp(am->scheme, "https")) {
        return cfg_error(c, cfg_get(c, node, "scheme"), "invalid scheme \"%s\" (expected http or https)", am->scheme);
    }
    if (am->timeout_ms <= 0)
        am->timeout_ms = 10 * 1000;
    if (!am->path_prefix)
        am->path_prefix = strdup("/");
    if (cfg_parse_http(c, node, &am->sc.http) < 0 ||
        cfg_parse_relabel_list(c, node, "relabel_configs", &am->sc.relabel_configs, &am->sc.n_relabel_configs) < 0 ||
        cfg_parse_sd_blocks(c, node, &am->sc) < 0)
        return -1;
    return 0;
}

int cfg_parse_alerting(cfg_ctx *c, const yaml_node_t *node, alerting_config *a)
{
    static const char *const keys[] = {"alertmanagers", "alert_relabel_configs", "resolve_after", "min_severity",
                                       NULL};
    int r = cfg_check_map(c, node, "alerting", keys);
    if (r)
        return r < 0 ? -1 : 0;
    if (cfg_read_duration(c, node, "resolve_after", &a->resolve_after_ms) < 0)
        return -1;
    if (a->resolve_after_ms <= 0)
        return cfg_error(c, cfg_get(c, node, "resolve_after"),
                         "resolve_after must be positive (expected a duration such as 1h)");
    char *sev = NULL;
    if (cfg_read_string(c, node, "min_severity", &sev) < 0)
        return -1;
    if (sev) {
        int v = !strcmp(sev, "info") ? 0 : !strcmp(sev, "warning") ? 1
                : !strcmp(sev, "error") ? 2 : -1;
        if (v < 0) {
            int rc = cfg_error(c, cfg_get(c, node, "min_severity"),
                               "invalid min_severity \"%s\" (expected info, warning or error)", sev);
            free(sev);
            return rc;
        }
        a->min_severity = v;
        free(sev);
    }
    if (cfg_parse_relabel_list(c, node, "alert_relabel_configs", &a->alert_relabel_configs,
                               &a->n_alert_relabel_configs) < 0)
        return -1;
    yaml_node_t **items;
    int n = cfg_list(c, cfg_get(c, node, "alertmanagers"), "alertmanagers", &items);
    if (n < 0)
        return -1;
    if (n > 0)
        a->alertmanagers = calloc((size_t)n, sizeof *a->alertmanagers);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        rc = parse_am(c, items[i], &a->alertmanagers[i]);
        a->n_alertmanagers = (size_t)i + 1;
    }
    free(items);
    c->job = NULL;
    return rc;
}
