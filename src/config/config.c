/* config: loads a configuration file (Prometheus or Periskop format) into the typed tree of config.h.
 * The YAML is read whole with libyaml's document API so that every node keeps its position; the top level
 * decides the format (`services:` = Periskop) and hands sections to parse_*.c. */
#include "config/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/internal.h"
#include "util/xalloc.h"
#include "util/yaml_depth.h"

#define CONFIG_MAX_FILE_SIZE (16u << 20)

void cfg_storage_defaults(storage_config *st)
{
    memset(st, 0, sizeof *st);
    st->type = STORAGE_SQLITE;
    st->retention_ms = 14LL * 24 * 3600 * 1000;
    st->max_errors_per_job = 10000;
    st->samples_per_error = 100;
}

static lookout_config *config_new(const char *name)
{
    lookout_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    cfg->filename = strdup(name ? name : "");
    cfg->global.scrape_interval_ms = 60 * 1000;
    cfg->global.scrape_timeout_ms = 10 * 1000;
    labelset_init(&cfg->global.external_labels);
    cfg_storage_defaults(&cfg->storage);
    cfg_push_defaults(&cfg->push);
    cfg_scrubbing_defaults(&cfg->scrubbing);
    cfg_alerting_defaults(&cfg->alerting);
    cfg->global.evaluation_interval_ms = 60 * 1000;
    return cfg;
}

void config_free(lookout_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->filename);
    labelset_free(&cfg->global.external_labels);
    for (size_t i = 0; i < cfg->n_scrape_configs; i++)
        cfg_scrape_free(&cfg->scrape_configs[i]);
    free(cfg->scrape_configs);
    free(cfg->storage.path);
    free(cfg->storage.dsn);
    cfg_push_free(&cfg->push);
    cfg_scrubbing_free(&cfg->scrubbing);
    cfg_alerting_free(&cfg->alerting);
    for (size_t i = 0; i < cfg->n_warnings; i++)
        free(cfg->warnings[i].message);
    free(cfg->warnings);
    free(cfg);
}

/* ---- global ---- */

static int parse_global(cfg_ctx *c, const yaml_node_t *node, global_config *g)
{
    static const char *const keys[] = {"scrape_interval", "scrape_timeout", "evaluation_interval", "query_log_file",
                                       "external_labels",
                                       /* Newer Prometheus versions: accepted with a warning. */
                                       "body_size_limit", "sample_limit", "target_limit", "label_limit",
                                       "label_name_length_limit", "label_value_length_limit", "keep_dropped_targets",
                                       "rule_query_offset", "scrape_protocols", "scrape_failure_log_file",
                                       "metric_name_validation_scheme", "metric_name_escaping_scheme", NULL};
    int r = cfg_check_map(c, node, "global", keys);
    if (r)
        return r < 0 ? -1 : 0;
    int64_t interval = 0, timeout = 0, eval = 0;
    if (cfg_read_duration(c, node, "scrape_interval", &interval) < 0 ||
        cfg_read_duration(c, node, "scrape_timeout", &timeout) < 0 ||
        cfg_read_duration(c, node, "evaluation_interval", &eval) < 0 ||
        cfg_read_labels(c, node, "external_labels", &g->external_labels) < 0)
        return -1;
    for (size_t i = 3; keys[i]; i++) {
        if (i == 4)
            continue; /* external_labels is used (evaluation_interval, i = 2, too: the notifier) */
        yaml_node_t *v = cfg_key_node(c, node, keys[i]);
        if (v)
            cfg_warn(c, v, "global.%s is not used by lookout; ignored", keys[i]);
    }
    /* GlobalConfig.UnmarshalYAML: 0 means default; an explicit timeout above the interval is an error. */
    if (interval == 0)
        interval = 60 * 1000;
    if (timeout > interval)
        return cfg_error(c, cfg_get(c, node, "scrape_timeout"),
                         "global scrape timeout greater than scrape interval (expected scrape_timeout <= "
                         "scrape_interval)");
    if (timeout == 0)
        timeout = 10 * 1000 > interval ? interval : 10 * 1000;
    g->scrape_interval_ms = interval;
    g->scrape_timeout_ms = timeout;
    if (eval > 0)
        g->evaluation_interval_ms = eval;
    return 0;
}

/* ---- storage (lookout's own section) ---- */

static int parse_storage_type(cfg_ctx *c, const yaml_node_t *v, const char *s, storage_type *out)
{
    if (strcmp(s, "sqlite") == 0)
        *out = STORAGE_SQLITE;
    else if (strcmp(s, "memory") == 0)
        *out = STORAGE_MEMORY;
    else if (strcmp(s, "postgres") == 0)
        *out = STORAGE_POSTGRES;
    else if (strcmp(s, "mysql") == 0)
        *out = STORAGE_MYSQL;
    else
        return cfg_error(c, v, "invalid storage type \"%s\" (expected sqlite, memory, postgres or mysql)", s);
    return 0;
}

static int parse_storage(cfg_ctx *c, const yaml_node_t *node, storage_config *st)
{
    static const char *const keys[] = {"type", "path", "dsn", "retention", "samples_per_error", "max_errors_per_job",
                                       "tsdb", "exemplars", NULL};
    int r = cfg_check_map(c, node, "storage", keys);
    if (r)
        return r < 0 ? -1 : 0;
    /* Prometheus' own storage section (tsdb, exemplars) has another shape; a prometheus.yml must load. */
    for (size_t i = 6; keys[i]; i++) {
        yaml_node_t *v = cfg_key_node(c, node, keys[i]);
        if (v)
            cfg_warn(c, v, "storage.%s is Prometheus' TSDB setting and is not used by lookout; ignored", keys[i]);
    }
    char *type = NULL;
    uint64_t spe = st->samples_per_error, mepj = st->max_errors_per_job;
    if (cfg_read_string(c, node, "type", &type) < 0)
        return -1;
    if (type && *type && parse_storage_type(c, cfg_get(c, node, "type"), type, &st->type) < 0)
        return free(type), -1;
    free(type);
    if (cfg_read_string(c, node, "path", &st->path) < 0 || cfg_read_string(c, node, "dsn", &st->dsn) < 0 ||
        cfg_read_duration(c, node, "retention", &st->retention_ms) < 0 ||
        cfg_read_uint(c, node, "samples_per_error", &spe) < 0 ||
        cfg_read_uint(c, node, "max_errors_per_job", &mepj) < 0)
        return -1;
    yaml_node_t *rv = cfg_get(c, node, "retention");
    if (rv && st->retention_ms <= 0)
        return cfg_error(c, rv, "retention must be positive (expected a duration such as 14d or 4w)");
    if (spe == 0 || spe > 1000000)
        return cfg_error(c, cfg_get(c, node, "samples_per_error"),
                         "invalid samples_per_error %llu (expected an integer from 1 to 1000000)",
                         (unsigned long long)spe);
    st->samples_per_error = (uint32_t)spe;
    if (mepj == 0 || mepj > 10000000)
        return cfg_error(c, cfg_get(c, node, "max_errors_per_job"),
                         "invalid max_errors_per_job %llu (expected an integer from 1 to 10000000)",
                         (unsigned long long)mepj);
    st->max_errors_per_job = (uint32_t)mepj;
    if ((st->type == STORAGE_POSTGRES || st->type == STORAGE_MYSQL) && (!st->dsn || !*st->dsn))
        return cfg_error(c, node, "storage type %s requires dsn (expected dsn: \"%s\")",
                         st->type == STORAGE_POSTGRES ? "postgres" : "mysql",
                         st->type == STORAGE_POSTGRES ? "host=... user=... dbname=..." : "user:pass@tcp(host:3306)/db");
    return 0;
}

/* ---- Prometheus format ---- */

static int parse_prometheus(cfg_ctx *c, const yaml_node_t *root, lookout_config *cfg)
{
    static const char *const keys[] = {"global", "scrape_configs", "storage", "push", "scrubbing", "alerting",
                                       /* Not used by lookout; accepted so that a prometheus.yml loads. */
                                       "rule_files", "remote_write", "remote_read", "tracing",
                                       "scrape_config_files", "otlp", "runtime", NULL};
    if (cfg_check_map(c, root, "config", keys) < 0)
        return -1;
    for (size_t i = 6; keys[i]; i++) {
        yaml_node_t *k = cfg_key_node(c, root, keys[i]);
        if (k)
            cfg_warn(c, k, "%s is not used by lookout; ignored", keys[i]);
    }
    yaml_node_t *g = cfg_get(c, root, "global");
    if (g && parse_global(c, g, &cfg->global) < 0)
        return -1;
    yaml_node_t *st = cfg_get(c, root, "storage");
    if (st && parse_storage(c, st, &cfg->storage) < 0)
        return -1;
    yaml_node_t *pu = cfg_get(c, root, "push");
    if (pu && cfg_parse_push(c, pu, &cfg->push) < 0)
        return -1;
    yaml_node_t *sc = cfg_get(c, root, "scrubbing");
    if (sc && cfg_parse_scrubbing(c, sc, &cfg->scrubbing) < 0)
        return -1;
    yaml_node_t *al = cfg_get(c, root, "alerting");
    if (al && cfg_parse_alerting(c, al, &cfg->alerting) < 0)
        return -1;

    return cfg_parse_jobs(c, root, "scrape_configs", cfg_parse_scrape_config,
                          "scrape configs with job name", "; expected unique job names", cfg);
}

int cfg_parse_jobs(cfg_ctx *c, const yaml_node_t *root, const char *key, cfg_job_parser parse,
                   const char *dup_noun, const char *dup_hint, lookout_config *cfg)
{
    yaml_node_t **items;
    int n = cfg_list(c, cfg_get(c, root, key), key, &items);
    if (n < 0)
        return -1;
    if (n > 0)
        cfg->scrape_configs = xcalloc((size_t)n, sizeof *cfg->scrape_configs);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        scrape_config *sc = &cfg->scrape_configs[cfg->n_scrape_configs++];
        rc = parse(c, items[i], &cfg->global, sc);
        c->job = NULL;
        for (size_t j = 0; rc == 0 && j + 1 < cfg->n_scrape_configs; j++)
            if (strcmp(cfg->scrape_configs[j].job_name, sc->job_name) == 0)
                rc = cfg_error(c, items[i], "found multiple %s \"%s\" (first at line %d%s)", dup_noun,
                               sc->job_name, cfg->scrape_configs[j].pos.line, dup_hint);
    }
    free(items);
    return rc;
}

/* ---- entry points ---- */

static char *dir_of(const char *name)
{
    const char *slash = name ? strrchr(name, '/') : NULL;
    if (!slash)
        return strdup("");
    if (slash == name)
        return strdup("/");
    return strndup(name, (size_t)(slash - name));
}

lookout_config *config_parse(const char *yaml, size_t len, const char *name, char *err, size_t errlen)
{
    if (!name)
        name = "<config>";
    if (errlen)
        err[0] = '\0';
    lookout_config *cfg = config_new(name);
    if (!cfg) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    size_t dl, dc;
    const char *why;
    if (yaml_depth_check(yaml, len, &dl, &dc, &why) != 0) {
        snprintf(err, errlen, "%s:%zu:%zu: invalid YAML: %s", name, dl + 1, dc + 1, why);
        config_free(cfg);
        return NULL;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "%s: cannot initialise the YAML parser", name);
        config_free(cfg);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        size_t line = parser.problem_mark.line, col = parser.problem_mark.column;
        if (parser.error == YAML_READER_ERROR) {
            /* Encoding errors carry a byte offset only; count lines and characters up to it. */
            line = col = 0;
            for (size_t i = 0; i < parser.problem_offset && i < len; i++) {
                if (yaml[i] == '\n')
                    line++, col = 0;
                else if (((unsigned char)yaml[i] & 0xC0) != 0x80)
                    col++;
            }
        }
        snprintf(err, errlen, "%s:%zu:%zu: invalid YAML: %s%s%s", name, line + 1, col + 1,
                 parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
                 parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        config_free(cfg);
        return NULL;
    }
    yaml_parser_delete(&parser);

    cfg_ctx c = {.doc = &doc, .file = name, .dir = dir_of(name), .err = err, .errlen = errlen, .cfg = cfg};
    int rc = 0;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && !cfg_is_null(root)) {
        if (root->type != YAML_MAPPING_NODE)
            rc = cfg_error(&c, root, "expected a mapping at the top level (global, scrape_configs, ... or services), "
                                     "got %s",
                           cfg_kind_name(root));
        else if (cfg_get_raw(&c, root, "services") || cfg_get_raw(&c, root, "repository"))
            rc = cfg_parse_periskop(&c, root, cfg);
        else
            rc = parse_prometheus(&c, root, cfg);
    }
    free(c.dir);
    yaml_document_delete(&doc);
    if (rc < 0) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

lookout_config *config_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open configuration file: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (len == cap) {
            if (cap >= CONFIG_MAX_FILE_SIZE) {
                snprintf(err, errlen, "%s: configuration file larger than %u MiB", path, CONFIG_MAX_FILE_SIZE >> 20);
                free(buf);
                fclose(f);
                return NULL;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (!buf || ferror(f)) {
        snprintf(err, errlen, "%s: cannot read configuration file: %s", path, buf ? strerror(errno) : "out of memory");
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    lookout_config *cfg = config_parse(buf, len, path, err, errlen);
    free(buf);
    return cfg;
}

lookout_config *config_default(const char *self_address)
{
    lookout_config *cfg = config_new("<default>");
    if (!cfg)
        return NULL;
    scrape_config *sc = xcalloc(1, sizeof *sc);
    cfg_scrape_config_init(sc, NULL);
    cfg->scrape_configs = sc;
    cfg->n_scrape_configs = 1;
    sc->job_name = strdup("lookout");
    sc->scrape_interval_ms = 15 * 1000;
    sc->scrape_timeout_ms = 10 * 1000;
    sc->metrics_path = strdup(CFG_DEFAULT_METRICS_PATH);
    sc->scheme = strdup("http");
    sc->sd_configs = calloc(1, sizeof *sc->sd_configs);
    sc->n_sd_configs = 1;
    sd_config *sd = &sc->sd_configs[0];
    sd->kind = SD_STATIC;
    labelset_init(&sd->u.static_sd.labels);
    sd->u.static_sd.targets = calloc(1, sizeof(char *));
    sd->u.static_sd.targets[0] = strdup(self_address ? self_address : "localhost:7777");
    sd->u.static_sd.n_targets = 1;
    return cfg;
}

const scrape_config *config_find_job(const lookout_config *cfg, const char *job)
{
    if (!cfg || !job)
        return NULL;
    for (size_t i = 0; i < cfg->n_scrape_configs; i++)
        if (strcmp(cfg->scrape_configs[i].job_name, job) == 0)
            return &cfg->scrape_configs[i];
    return NULL;
}

/* ---- equality (reload keeps what did not change; positions are deliberately ignored) ---- */

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool rule_equal(const relabel_rule *a, const relabel_rule *b)
{
    if (a->n_source_labels != b->n_source_labels || a->action != b->action || a->modulus != b->modulus ||
        !str_eq(a->separator, b->separator) || !str_eq(a->target_label, b->target_label) ||
        !str_eq(a->regex, b->regex) || !str_eq(a->replacement, b->replacement))
        return false;
    for (size_t i = 0; i < a->n_source_labels; i++)
        if (strcmp(a->source_labels[i], b->source_labels[i]) != 0)
            return false;
    return true;
}

static bool rules_equal(const relabel_rule *a, size_t na, const relabel_rule *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!rule_equal(&a[i], &b[i]))
            return false;
    return true;
}

bool scrape_config_equal(const scrape_config *a, const scrape_config *b)
{
    if (a == b)
        return true;
    if (!a || !b)
        return false;
    if (!str_eq(a->job_name, b->job_name) || a->scrape_interval_ms != b->scrape_interval_ms ||
        a->scrape_timeout_ms != b->scrape_timeout_ms || !str_eq(a->metrics_path, b->metrics_path) ||
        !str_eq(a->scheme, b->scheme) || a->honor_labels != b->honor_labels ||
        a->honor_timestamps != b->honor_timestamps || a->body_size_limit != b->body_size_limit ||
        a->target_limit != b->target_limit || a->sample_limit != b->sample_limit ||
        a->keep_dropped_targets != b->keep_dropped_targets ||
        a->n_params != b->n_params || a->n_sd_configs != b->n_sd_configs || !http_client_config_equal(&a->http, &b->http) ||
        !rules_equal(a->relabel_configs, a->n_relabel_configs, b->relabel_configs, b->n_relabel_configs) ||
        !rules_equal(a->metric_relabel_configs, a->n_metric_relabel_configs, b->metric_relabel_configs,
                     b->n_metric_relabel_configs))
        return false;
    for (size_t i = 0; i < a->n_params; i++) {
        const param *p = &a->params[i], *q = &b->params[i];
        if (strcmp(p->name, q->name) != 0 || p->n_values != q->n_values)
            return false;
        for (size_t j = 0; j < p->n_values; j++)
            if (strcmp(p->values[j], q->values[j]) != 0)
                return false;
    }
    for (size_t i = 0; i < a->n_sd_configs; i++)
        if (a->sd_configs[i].index != b->sd_configs[i].index || !sd_config_equal(&a->sd_configs[i], &b->sd_configs[i]))
            return false;
    return true;
}
