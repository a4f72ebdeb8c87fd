/* periskop: the Periskop server's configuration format (periskop-dev/periskop config/config.go), mapped
 * onto lookout's tree so that an existing periskop.yaml runs unchanged:
 *   repository {type, path, dsn}            -> storage (unknown or empty type: memory, as Periskop does)
 *   services[] {name, <SD blocks>, relabel_configs, scraper {endpoint, refresh_interval}}
 *                                           -> one scrape job each
 * scraper.refresh_interval is a Go time.Duration string ("10s", "1.5m", "500ms"). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config/internal.h"
#include "util/xalloc.h"

/* Go's time.ParseDuration, returning milliseconds (truncated, as Duration.Milliseconds()). */
static int go_duration_ms(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1},         {"us", 1e3},         {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3},
                 {"ms", 1e6},       {"s", 1e9},          {"m", 60e9},        {"h", 3600e9}};
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
        double v = 0;
        bool digits = false;
        while (*p >= '0' && *p <= '9')
            v = v * 10 + (*p++ - '0'), digits = true;
        if (*p == '.') {
            p++;
            double scale = 1;
            while (*p >= '0' && *p <= '9')
                scale /= 10, v += (*p++ - '0') * scale, digits = true;
        }
        if (!digits)
            return -1;
        const char *u = p;
        while (*p && *p != '.' && !(*p >= '0' && *p <= '9'))
            p++;
        size_t ul = (size_t)(p - u);
        double mul = -1;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (strlen(units[i].unit) == ul && strncmp(units[i].unit, u, ul) == 0)
                mul = units[i].ns;
        if (mul < 0)
            return -1;
        total += v * mul;
    }
    if (total > 9.2e18)
        return -1;
    *out = (int64_t)trunc(total / 1e6) * (neg ? -1 : 1);
    return 0;
}

static int parse_repository(cfg_ctx *c, const yaml_node_t *node, storage_config *st)
{
    static const char *const keys[] = {"type", "path", "dsn", NULL};
    int r = cfg_check_map(c, node, "repository", keys);
    if (r < 0)
        return -1;
    char *type = NULL;
    if (cfg_read_string(c, node, "type", &type) < 0 || cfg_read_string(c, node, "path", &st->path) < 0 ||
        cfg_read_string(c, node, "dsn", &st->dsn) < 0)
        return free(type), -1;
    if (type && strcmp(type, "sqlite") == 0)
        st->type = STORAGE_SQLITE;
    else if (type && strcmp(type, "mysql") == 0)
        st->type = STORAGE_MYSQL;
    else if (type && strcmp(type, "postgres") == 0)
        st->type = STORAGE_POSTGRES;
    else {
        st->type = STORAGE_MEMORY;
        if (!type || strcmp(type, "memory") != 0)
            cfg_warn(c, node, "repository type \"%s\" is not memory, sqlite, mysql or postgres; using memory as Periskop "
                              "does (errors are lost on restart)",
                     type ? type : "");
    }
    free(type);
    if ((st->type == STORAGE_POSTGRES || st->type == STORAGE_MYSQL) && (!st->dsn || !*st->dsn))
        return cfg_error(c, node, "repository type %s requires dsn",
                         st->type == STORAGE_POSTGRES ? "postgres" : "mysql");
    return 0;
}

static int parse_service(cfg_ctx *c, const yaml_node_t *node, const global_config *g, scrape_config *sc)
{
    const char *allowed[64];
    size_t na = 0;
    allowed[na++] = "name";
    allowed[na++] = "scraper";
    allowed[na++] = "relabel_configs";
    allowed[na++] = "error_relabel_configs"; /* lookout's addition, as in a scrape_config */
    na += cfg_sd_keys(allowed + na, sizeof allowed / sizeof allowed[0] - na - 1);
    allowed[na] = NULL;

    cfg_scrape_config_init(sc, node);
    if (cfg_is_null(node))
        return cfg_error(c, node, "empty or null service");
    if (cfg_check_map(c, node, "service", allowed) < 0)
        return -1;
    if (cfg_read_string(c, node, "name", &sc->job_name) < 0)
        return -1;
    if (!sc->job_name || !*sc->job_name)
        return cfg_error(c, node, "service name is empty (expected name: NAME)");
    c->job = sc->job_name;
    sc->scheme = strdup("http"); /* Periskop always builds http:// URLs */

    yaml_node_t *scraper = cfg_get(c, node, "scraper");
    static const char *const scraper_keys[] = {"endpoint", "refresh_interval", NULL};
    if (cfg_check_map(c, scraper, "scraper", scraper_keys) < 0)
        return -1;
    if (cfg_read_string(c, scraper, "endpoint", &sc->metrics_path) < 0)
        return -1;
    if (!sc->metrics_path || !*sc->metrics_path) {
        cfg_warn(c, scraper ? scraper : node, "service %s: scraper.endpoint is not set; using %s", sc->job_name,
                 CFG_DEFAULT_METRICS_PATH);
        free(sc->metrics_path);
        sc->metrics_path = strdup(CFG_DEFAULT_METRICS_PATH);
    } else if (sc->metrics_path[0] != '/') {
        size_t n = strlen(sc->metrics_path);
        char *p = xmalloc(n + 2);
        p[0] = '/';
        memcpy(p + 1, sc->metrics_path, n + 1);
        free(sc->metrics_path);
        sc->metrics_path = p;
    }

    int64_t interval = 0;
    yaml_node_t *ri = cfg_get(c, scraper, "refresh_interval");
    if (ri) {
        const char *s = cfg_scalar(ri);
        if (!s)
            return cfg_error(c, ri, "expected a duration for refresh_interval, got %s", cfg_kind_name(ri));
        if ((duration_parse(s, &interval) < 0 && go_duration_ms(s, &interval) < 0) || interval < 0)
            return cfg_error(c, ri,
                             "invalid duration \"%s\" for refresh_interval (expected a duration such as 10s, 1m30s "
                             "or 1.5m)",
                             s);
    }
    if (interval <= 0) {
        /* Periskop would scrape in a tight loop; lookout uses the Prometheus default instead. */
        cfg_warn(c, ri ? ri : (scraper ? scraper : node),
                 "service %s: scraper.refresh_interval is not set or zero; using %lld s", sc->job_name,
                 (long long)(g->scrape_interval_ms / 1000));
        interval = g->scrape_interval_ms;
    }
    sc->scrape_interval_ms = interval;
    sc->scrape_timeout_ms = interval < 10000 ? interval : 10000;

    if (cfg_parse_relabel_list(c, node, "relabel_configs", &sc->relabel_configs, &sc->n_relabel_configs) < 0 ||
        cfg_parse_error_relabel_list(c, node, &sc->error_relabel_configs, &sc->n_error_relabel_configs) < 0)
        return -1;
    if (cfg_parse_sd_blocks(c, node, sc) < 0)
        return -1;
    c->job = NULL;
    return 0;
}

int cfg_parse_periskop(cfg_ctx *c, const yaml_node_t *root, lookout_config *cfg)
{
    static const char *const keys[] = {"repository", "services", NULL};
    if (cfg_check_map(c, root, "periskop config", keys) < 0)
        return -1;
    cfg->periskop_format = true;
    cfg->storage.type = STORAGE_MEMORY; /* Periskop's default when repository is absent */
    yaml_node_t *repo = cfg_get(c, root, "repository");
    if (repo) {
        if (parse_repository(c, repo, &cfg->storage) < 0)
            return -1;
    } else {
        cfg_warn(c, root, "no repository section: errors are kept in memory as Periskop does (add repository: "
                          "{type: sqlite} to keep them across restarts)");
    }
    return cfg_parse_jobs(c, root, "services", parse_service, "services with name", "", cfg);
}
