/* parse_scrape: one element of scrape_configs (Prometheus config.ScrapeConfig) and relabel rule lists
 * (model/relabel.Config; the rule itself is validated and compiled by relabel_rule_prepare). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/internal.h"
#include "labels/relabel.h"
#include "util/strv.h"

/* ---- relabel rules ---- */

static int parse_rule(cfg_ctx *c, const yaml_node_t *node, const char *key, int index, relabel_rule *r)
{
    static const char *const keys[] = {"source_labels", "separator", "regex", "modulus", "target_label",
                                       "replacement", "action", NULL};
    memset(r, 0, sizeof *r);
    r->line = cfg_pos(node).line;
    r->column = cfg_pos(node).column;
    if (cfg_check_map(c, node, "relabel_config", keys) < 0)
        return -1;
    if (cfg_read_string_list(c, node, "source_labels", &r->source_labels, &r->n_source_labels) < 0)
        return -1;
    yaml_node_t *sl = cfg_get(c, node, "source_labels");
    for (size_t i = 0; i < r->n_source_labels; i++)
        if (!label_name_valid(r->source_labels[i]))
            return cfg_error(c, yaml_document_get_node(c->doc, sl->data.sequence.items.start[i]),
                             "\"%s\" is not a valid label name (expected [a-zA-Z_][a-zA-Z0-9_]*)", r->source_labels[i]);
    if (cfg_read_string(c, node, "separator", &r->separator) < 0 || cfg_read_string(c, node, "regex", &r->regex) < 0 ||
        cfg_read_uint(c, node, "modulus", &r->modulus) < 0 ||
        cfg_read_string(c, node, "target_label", &r->target_label) < 0 ||
        cfg_read_string(c, node, "replacement", &r->replacement) < 0)
        return -1;
    if (r->target_label && !*r->target_label) {
        free(r->target_label);
        r->target_label = NULL;
    }
    yaml_node_t *act = cfg_get(c, node, "action");
    r->action = RELABEL_REPLACE;
    if (act) {
        const char *s = cfg_scalar(act);
        if (!s)
            return cfg_error(c, act, "expected a string for action, got %s", cfg_kind_name(act));
        if (!*s)
            return cfg_error(c, act, "relabel action cannot be empty");
        int a = relabel_action_parse(s, &r->action);
        if (a < 0)
            return cfg_error(c, act,
                             "unknown relabel action \"%s\" (expected replace, keep, drop, keepequal, dropequal, "
                             "hashmod, labelmap, labeldrop, labelkeep, lowercase or uppercase)",
                             s);
    }
    char msg[512] = "";
    if (relabel_rule_prepare(r, msg, sizeof msg) < 0)
        return cfg_error(c, node, "%s[%d]: %s", key, index, msg);
    return 0;
}

int cfg_parse_relabel_list(cfg_ctx *c, const yaml_node_t *map, const char *key, relabel_rule **out, size_t *n)
{
    yaml_node_t *v = cfg_get(c, map, key);
    if (!v)
        return 0;
    yaml_node_t **items;
    int cnt = cfg_list(c, v, key, &items);
    if (cnt <= 0)
        return cnt;
    relabel_rule *rules = calloc((size_t)cnt, sizeof *rules);
    int rc = 0;
    for (int i = 0; i < cnt; i++) {
        if (cfg_is_null(items[i])) {
            rc = cfg_error(c, items[i], "empty or null %s rule in scrape config",
                           strcmp(key, "relabel_configs") == 0         ? "target relabeling"
                           : strcmp(key, "error_relabel_configs") == 0 ? "error relabeling"
                                                                       : "metric relabeling");
            break;
        }
        if (parse_rule(c, items[i], key, i, &rules[i]) < 0) {
            relabel_rule_free(&rules[i]);
            rc = -1;
            break;
        }
        *n = (size_t)i + 1;
    }
    *out = rules;
    free(items);
    return rc;
}

int cfg_parse_error_relabel_list(cfg_ctx *c, const yaml_node_t *map, relabel_rule **out, size_t *n)
{
    if (cfg_parse_relabel_list(c, map, "error_relabel_configs", out, n) < 0)
        return -1;
    yaml_node_t *list = cfg_get(c, map, "error_relabel_configs");
    for (size_t i = 0; i < *n; i++) {
        const relabel_rule *r = &(*out)[i];
        /* A replacement without a reference ($1, ${name}) written to __severity__ is known now: it must be
         * a severity. One with references is checked when applied (a logged no-op when invalid). */
        if (r->action != RELABEL_REPLACE || !r->target_label || strcmp(r->target_label, "__severity__") != 0 ||
            strchr(r->replacement, '$'))
            continue;
        if (strcmp(r->replacement, "info") && strcmp(r->replacement, "warning") && strcmp(r->replacement, "error"))
            return cfg_error(c, yaml_document_get_node(c->doc, list->data.sequence.items.start[i]),
                             "error_relabel_configs[%zu]: invalid __severity__ replacement \"%s\" (expected info, "
                             "warning or error)",
                             i, r->replacement);
    }
    return 0;
}

void cfg_free_rules(relabel_rule *rules, size_t n)
{
    for (size_t i = 0; i < n; i++)
        relabel_rule_free(&rules[i]);
    free(rules);
}

/* ---- units.Base2Bytes ---- */

int config_parse_bytes(const char *s, int64_t *out)
{
    return cfg_parse_base2_bytes(s, out);
}

int cfg_parse_base2_bytes(const char *s, int64_t *out)
{
    /* alecthomas/units ParseUnit with base-2 multipliers for both KiB and KB spellings. */
    static const struct {
        const char *unit;
        double mul;
    } units[] = {{"B", 1},
                 {"KiB", 1024.0},
                 {"KB", 1024.0},
                 {"MiB", 1048576.0},
                 {"MB", 1048576.0},
                 {"GiB", 1073741824.0},
                 {"GB", 1073741824.0},
                 {"TiB", 1099511627776.0},
                 {"TB", 1099511627776.0},
                 {"PiB", 1125899906842624.0},
                 {"PB", 1125899906842624.0},
                 {"EiB", 1152921504606846976.0},
                 {"EB", 1152921504606846976.0}};
    const char *p = s;
    bool neg = false;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (strcmp(p, "0") == 0)
        return *out = 0, 0;
    if (!*p)
        return -1;
    double total = 0;
    while (*p) {
        if (!(*p == '.' || (*p >= '0' && *p <= '9')))
            return -1;
        double g = 0;
        bool pre = false, post = false;
        while (*p >= '0' && *p <= '9')
            g = g * 10 + (*p++ - '0'), pre = true;
        if (*p == '.') {
            p++;
            double scale = 1;
            while (*p >= '0' && *p <= '9')
                scale /= 10, g += (*p++ - '0') * scale, post = true;
        }
        if (!pre && !post)
            return -1;
        const char *u = p;
        while (*p && *p != '.' && !(*p >= '0' && *p <= '9'))
            p++;
        size_t ul = (size_t)(p - u);
        double mul = -1;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (strlen(units[i].unit) == ul && strncmp(units[i].unit, u, ul) == 0)
                mul = units[i].mul;
        if (mul < 0)
            return -1;
        total += g * mul;
    }
    if (neg)
        total = -total;
    if (total < -9.2e18 || total > 9.2e18)
        return -1;
    *out = (int64_t)total;
    return 0;
}

/* ---- scrape_config ---- */

static const char *const scrape_keys[] = {
    "job_name", "honor_labels", "honor_timestamps", "track_timestamps_staleness", "params", "scrape_interval",
    "scrape_timeout", "metrics_path", "scheme", "body_size_limit", "sample_limit", "target_limit", "label_limit",
    "label_name_length_limit", "label_value_length_limit", "keep_dropped_targets", "relabel_configs",
    "metric_relabel_configs", "error_relabel_configs", NULL};
/* Sample-level settings of newer Prometheus versions: meaningless for exceptions, accepted silently. */
static const char *const scrape_keys_quiet[] = {"scrape_protocols", "scrape_classic_histograms", "native_histogram_bucket_limit",
    "native_histogram_min_bucket_factor", "enable_compression", "always_scrape_classic_histograms",
    "convert_classic_histograms_to_nhcb", "scrape_failure_log_file", "metric_name_validation_scheme",
    "metric_name_escaping_scheme", "fallback_scrape_protocol", "scrape_native_histograms", NULL};

static int parse_params(cfg_ctx *c, const yaml_node_t *map, scrape_config *sc)
{
    yaml_node_t *v = cfg_get(c, map, "params");
    if (!v)
        return 0;
    if (v->type != YAML_MAPPING_NODE)
        return cfg_error(c, v, "expected a mapping of parameter names to lists of values for params, got %s",
                         cfg_kind_name(v));
    size_t cnt = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    sc->params = cnt ? calloc(cnt, sizeof *sc->params) : NULL;
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *val = yaml_document_get_node(c->doc, p->value);
        const char *name = cfg_scalar(k);
        if (!name)
            return cfg_error(c, k, "expected a string parameter name in params, got %s", cfg_kind_name(k));
        for (size_t i = 0; i < sc->n_params; i++)
            if (strcmp(sc->params[i].name, name) == 0)
                return cfg_error(c, k, "parameter %s already set in params", name);
        if (!cfg_is_null(val) && val->type != YAML_SEQUENCE_NODE)
            return cfg_error(c, val, "expected a list of values for params.%s, got %s (write %s: [value])", name,
                             cfg_kind_name(val), name);
        param *pr = &sc->params[sc->n_params++];
        pr->name = strdup(name);
        /* Read the list through a one-pair lookup on the params mapping. */
        if (cfg_read_string_list(c, v, name, &pr->values, &pr->n_values) < 0)
            return -1;
    }
    /* Sorted by name, as url.Values.Encode writes them. */
    for (size_t i = 1; i < sc->n_params; i++)
        for (size_t j = i; j > 0 && strcmp(sc->params[j - 1].name, sc->params[j].name) > 0; j--) {
            param t = sc->params[j];
            sc->params[j] = sc->params[j - 1];
            sc->params[j - 1] = t;
        }
    return 0;
}

static int read_ignored_uints(cfg_ctx *c, const yaml_node_t *node)
{
    static const char *const keys[] = {"label_limit", "label_name_length_limit",
                                       "label_value_length_limit", NULL};
    uint64_t ignored;
    for (size_t i = 0; keys[i]; i++)
        if (cfg_read_uint(c, node, keys[i], &ignored) < 0)
            return -1;
    bool b;
    return cfg_read_bool(c, node, "track_timestamps_staleness", &b);
}

void cfg_scrape_config_init(scrape_config *sc, const yaml_node_t *node)
{
    memset(sc, 0, sizeof *sc);
    sc->pos = cfg_pos(node);
    sc->honor_timestamps = true;
    http_client_config_init(&sc->http);
}

int cfg_parse_scrape_config(cfg_ctx *c, const yaml_node_t *node, const global_config *g, scrape_config *sc)
{
    const char *allowed[128];
    size_t na = 0;
    for (size_t i = 0; scrape_keys[i]; i++)
        allowed[na++] = scrape_keys[i];
    for (size_t i = 0; cfg_http_keys[i]; i++)
        allowed[na++] = cfg_http_keys[i];
    na += cfg_sd_keys(allowed + na, 64);
    allowed[na++] = ""; /* the rest is accepted but not suggested */
    for (size_t i = 0; scrape_keys_quiet[i]; i++)
        allowed[na++] = scrape_keys_quiet[i];
    allowed[na] = NULL;

    cfg_scrape_config_init(sc, node);
    if (cfg_is_null(node))
        return cfg_error(c, node, "empty or null scrape config section");
    if (cfg_check_map(c, node, "scrape_config", allowed) < 0)
        return -1;
    if (cfg_read_string(c, node, "job_name", &sc->job_name) < 0)
        return -1;
    if (!sc->job_name || !*sc->job_name)
        return cfg_error(c, node, "job_name is empty (expected job_name: NAME)");
    c->job = sc->job_name;

    int64_t interval = 0, timeout = 0;
    if (cfg_read_duration(c, node, "scrape_interval", &interval) < 0 ||
        cfg_read_duration(c, node, "scrape_timeout", &timeout) < 0 ||
        cfg_read_string(c, node, "metrics_path", &sc->metrics_path) < 0 ||
        cfg_read_string(c, node, "scheme", &sc->scheme) < 0 ||
        cfg_read_bool(c, node, "honor_labels", &sc->honor_labels) < 0 ||
        cfg_read_bool(c, node, "honor_timestamps", &sc->honor_timestamps) < 0 ||
        cfg_read_uint(c, node, "target_limit", &sc->target_limit) < 0 ||
        cfg_read_uint(c, node, "sample_limit", &sc->sample_limit) < 0 ||
        cfg_read_uint(c, node, "keep_dropped_targets", &sc->keep_dropped_targets) < 0 || read_ignored_uints(c, node) < 0)
        return -1;

    /* Interval and timeout exactly as Config.UnmarshalYAML: 0 means inherit; an inherited timeout above
     * the job's interval is capped, an explicit one is an error. */
    if (interval == 0)
        interval = g->scrape_interval_ms;
    if (timeout > interval) {
        char ib[32], tb[32];
        return cfg_error(c, cfg_get(c, node, "scrape_timeout"),
                         "scrape timeout greater than scrape interval for scrape config with job name \"%s\" "
                         "(scrape_timeout %s > scrape_interval %s; expected scrape_timeout <= scrape_interval)",
                         sc->job_name, duration_format(timeout, tb, sizeof tb), duration_format(interval, ib, sizeof ib));
    }
    if (timeout == 0)
        timeout = g->scrape_timeout_ms > interval ? interval : g->scrape_timeout_ms;
    sc->scrape_interval_ms = interval;
    sc->scrape_timeout_ms = timeout;

    if (!sc->metrics_path)
        sc->metrics_path = strdup(CFG_DEFAULT_METRICS_PATH);
    /* Kept as written, like Prometheus: __metrics_path__ shows "metrics"; the URL gets the slash
     * (target_url, as Go's url.URL.String does). */
    /* Prometheus 2.42 takes any scheme string (an explicit '' included) and fails at scrape time, so a
     * prometheus.yml with one loads here too: warned about; each target of the job is down with Go's
     * "unsupported protocol scheme" error (http/client.c), or, without a port, fails to be created
     * ("invalid scheme", scrape/target.c). */
    if (!sc->scheme)
        sc->scheme = strdup("http");
    if (strcasecmp(sc->scheme, "http") != 0 && strcasecmp(sc->scheme, "https") != 0) {
        char q[160];
        relabel_go_quote(q, sizeof q, sc->scheme);
        cfg_warn(c, cfg_get(c, node, "scheme"),
                 "job %s: scheme %s is not http or https; its targets will be down (unsupported protocol "
                 "scheme), as in Prometheus",
                 sc->job_name, q);
    }

    yaml_node_t *bsl = cfg_get(c, node, "body_size_limit");
    if (bsl) {
        const char *s = cfg_scalar(bsl);
        if (!s || cfg_parse_base2_bytes(s, &sc->body_size_limit) < 0 || sc->body_size_limit < 0)
            return cfg_error(c, bsl,
                             "invalid body_size_limit \"%s\" (expected a size such as 10MB, 512KiB or 0; units B, "
                             "KB/KiB, MB/MiB, GB/GiB, TB/TiB, PB/PiB, EB/EiB, base 2)",
                             s ? s : "");
    }

    if (parse_params(c, node, sc) < 0)
        return -1;
    if (cfg_parse_http(c, node, &sc->http) < 0)
        return -1;
    if (cfg_parse_relabel_list(c, node, "relabel_configs", &sc->relabel_configs, &sc->n_relabel_configs) < 0 ||
        cfg_parse_relabel_list(c, node, "metric_relabel_configs", &sc->metric_relabel_configs,
                               &sc->n_metric_relabel_configs) < 0 ||
        cfg_parse_error_relabel_list(c, node, &sc->error_relabel_configs, &sc->n_error_relabel_configs) < 0)
        return -1;
    if (cfg_parse_sd_blocks(c, node, sc) < 0)
        return -1;

    /* checkStaticTargets: a URL in a static target is a mistake, unless relabeling may fix it. */
    if (sc->n_relabel_configs == 0) {
        for (size_t i = 0; i < sc->n_sd_configs; i++) {
            const sd_config *sd = &sc->sd_configs[i];
            if (sd->kind != SD_STATIC)
                continue;
            for (size_t t = 0; t < sd->u.static_sd.n_targets; t++) {
                if (strchr(sd->u.static_sd.targets[t], '/')) {
                    snprintf(c->err, c->errlen,
                             "%s:%d:%d: \"%s\" is not a valid hostname (expected host:port; set scheme and "
                             "metrics_path for the rest of the URL)",
                             c->file, sd->pos.line, sd->pos.column, sd->u.static_sd.targets[t]);
                    return -1;
                }
            }
        }
    }
    c->job = NULL;
    return 0;
}

void cfg_scrape_free(scrape_config *sc)
{
    free(sc->job_name);
    free(sc->metrics_path);
    free(sc->scheme);
    for (size_t i = 0; i < sc->n_params; i++) {
        free(sc->params[i].name);
        strv_free(sc->params[i].values, sc->params[i].n_values);
    }
    free(sc->params);
    http_client_config_release(&sc->http);
    for (size_t i = 0; i < sc->n_relabel_configs; i++)
        relabel_rule_free(&sc->relabel_configs[i]);
    free(sc->relabel_configs);
    for (size_t i = 0; i < sc->n_metric_relabel_configs; i++)
        relabel_rule_free(&sc->metric_relabel_configs[i]);
    free(sc->metric_relabel_configs);
    cfg_free_rules(sc->error_relabel_configs, sc->n_error_relabel_configs);
    for (size_t i = 0; i < sc->n_sd_configs; i++)
        sd_config_release(&sc->sd_configs[i]);
    free(sc->sd_configs);
    memset(sc, 0, sizeof *sc);
}
