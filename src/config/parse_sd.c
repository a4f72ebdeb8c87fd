/* parse_sd: the service-discovery blocks of a scrape config (or of a Periskop service).
 *
 * One table lists every *_sd_configs key Prometheus knows. A kind lookout implements has its whole
 * lifecycle in its row: parse, free, equal, copy and canonical text (the SD cache ids and the shared
 * Kubernetes watches are keyed by the latter); a kind without a parser is accepted with a warning naming
 * the job and the key, so that an existing prometheus.yml loads and the job's other blocks still run. A new
 * provider adds its struct to sd_config's union and fills in its row here; nothing else in config/ changes. */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "config/internal.h"
#include "config/sd_remote.h"
#include "util/strv.h"

typedef int (*sd_parse_fn)(cfg_ctx *c, const yaml_node_t *node, sd_config *sd);
typedef void (*sd_free_fn)(sd_config *sd);
typedef bool (*sd_equal_fn)(const sd_config *a, const sd_config *b);
typedef void (*sd_copy_fn)(sd_config *dst, const sd_config *src); /* the union member only */
typedef void (*sd_canon_fn)(strbuf *sb, const sd_config *sd, bool with_secrets);

typedef struct sd_kind_entry {
    const char *key;
    sd_kind kind;
    sd_parse_fn parse; /* NULL: not implemented, warn */
    sd_free_fn free;
    sd_equal_fn equal;
    sd_copy_fn copy;
    sd_canon_fn canon;
} sd_kind_entry;

/* ---- static_configs ---- */

static int parse_static(cfg_ctx *c, const yaml_node_t *node, sd_config *sd)
{
    static const char *const keys[] = {"targets", "labels", NULL};
    static_sd_config *s = &sd->u.static_sd;
    labelset_init(&s->labels);
    if (cfg_check_map(c, node, "static_config", keys) < 0)
        return -1;
    if (cfg_read_string_list(c, node, "targets", &s->targets, &s->n_targets) < 0)
        return -1;
    return cfg_read_labels(c, node, "labels", &s->labels);
}

static void free_static(sd_config *sd)
{
    strv_free(sd->u.static_sd.targets, sd->u.static_sd.n_targets);
    labelset_free(&sd->u.static_sd.labels);
}

static bool equal_static(const sd_config *a, const sd_config *b)
{
    return strv_equal(a->u.static_sd.targets, a->u.static_sd.n_targets, b->u.static_sd.targets,
                         b->u.static_sd.n_targets) &&
           labelset_equal(&a->u.static_sd.labels, &b->u.static_sd.labels);
}

static void copy_static(sd_config *dst, const sd_config *src)
{
    dst->u.static_sd.targets = strv_copy_or_empty(src->u.static_sd.targets, src->u.static_sd.n_targets);
    dst->u.static_sd.n_targets = src->u.static_sd.n_targets;
    labelset_copy(&dst->u.static_sd.labels, &src->u.static_sd.labels);
}

static void canon_static(strbuf *sb, const sd_config *sd, bool with_secrets)
{
    (void)with_secrets;
    const static_sd_config *s = &sd->u.static_sd;
    cfg_canon_strv(sb, "targets", s->targets, s->n_targets);
    strbuf_printf(sb, "labels=[%zu;", s->labels.n);
    for (size_t i = 0; i < s->labels.n; i++) {
        cfg_canon_str(sb, "n", s->labels.v[i].name);
        cfg_canon_str(sb, "v", s->labels.v[i].value);
    }
    strbuf_puts(sb, "];");
}

/* ---- file_sd_configs ---- */

static int parse_file(cfg_ctx *c, const yaml_node_t *node, sd_config *sd)
{
    static const char *const keys[] = {"files", "refresh_interval", NULL};
    file_sd_config *f = &sd->u.file;
    f->refresh_interval_ms = 5 * 60 * 1000;
    if (cfg_check_map(c, node, "file_sd_config", keys) < 0)
        return -1;
    if (cfg_read_string_list(c, node, "files", &f->files, &f->n_files) < 0 ||
        cfg_read_duration(c, node, "refresh_interval", &f->refresh_interval_ms) < 0)
        return -1;
    if (f->n_files == 0)
        return cfg_error(c, node,
                         "file service discovery config must contain at least one path name (expected files: "
                         "[PATTERN.json|.yml|.yaml, ...])");
    /* Prometheus' patFileSDName: at most one '*' and only in the last path element, known extension. */
    regex_t re;
    if (regcomp(&re, "^[^*]*(\\*[^/]*)?\\.(json|yml|yaml|JSON|YML|YAML)$", REG_EXTENDED | REG_NOSUB) != 0)
        return cfg_error(c, node, "internal error compiling the file name pattern");
    yaml_node_t *files = cfg_get(c, node, "files");
    for (size_t i = 0; i < f->n_files; i++) {
        if (regexec(&re, f->files[i], 0, NULL, 0) != 0) {
            regfree(&re);
            yaml_node_t *item = yaml_document_get_node(c->doc, files->data.sequence.items.start[i]);
            return cfg_error(c, item,
                             "path name \"%s\" is not valid for file discovery (expected a path ending in .json, "
                             ".yml or .yaml, with '*' only in the last path element)",
                             f->files[i]);
        }
    }
    regfree(&re);
    for (size_t i = 0; i < f->n_files; i++) {
        char *j = cfg_join_dir(c, f->files[i]);
        free(f->files[i]);
        f->files[i] = j;
    }
    return 0;
}

static void free_file(sd_config *sd)
{
    strv_free(sd->u.file.files, sd->u.file.n_files);
}

static bool equal_file(const sd_config *a, const sd_config *b)
{
    return a->u.file.refresh_interval_ms == b->u.file.refresh_interval_ms &&
           strv_equal(a->u.file.files, a->u.file.n_files, b->u.file.files, b->u.file.n_files);
}

static void copy_file(sd_config *dst, const sd_config *src)
{
    dst->u.file.files = strv_copy_or_empty(src->u.file.files, src->u.file.n_files);
    dst->u.file.n_files = src->u.file.n_files;
    dst->u.file.refresh_interval_ms = src->u.file.refresh_interval_ms;
}

static void canon_file(strbuf *sb, const sd_config *sd, bool with_secrets)
{
    (void)with_secrets;
    cfg_canon_strv(sb, "files", sd->u.file.files, sd->u.file.n_files);
    cfg_canon_int(sb, "refresh_ms", sd->u.file.refresh_interval_ms);
}

/* ---- the table ---- */

static const sd_kind_entry sd_table[] = {
    {"static_configs", SD_STATIC, parse_static, free_static, equal_static, copy_static, canon_static},
    {"file_sd_configs", SD_FILE, parse_file, free_file, equal_file, copy_file, canon_file},
    {"dns_sd_configs", SD_DNS, cfg_parse_dns_sd, cfg_free_dns_sd, cfg_equal_dns_sd, cfg_copy_dns_sd,
     cfg_canon_dns_sd},
    {"consul_sd_configs", SD_CONSUL, cfg_parse_consul_sd, cfg_free_consul_sd, cfg_equal_consul_sd,
     cfg_copy_consul_sd, cfg_canon_consul_sd},
    {"kubernetes_sd_configs", SD_KUBERNETES, cfg_parse_sd_kubernetes, cfg_free_sd_kubernetes,
     cfg_equal_sd_kubernetes, cfg_copy_sd_kubernetes, cfg_canon_sd_kubernetes},
    {"http_sd_configs", SD_HTTP, cfg_parse_http_sd, cfg_free_http_sd, cfg_equal_http_sd, cfg_copy_http_sd,
     cfg_canon_http_sd},
    /* Prometheus kinds lookout does not implement; kind is unused while parse is NULL. */
    {"azure_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"digitalocean_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"docker_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"dockerswarm_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"ec2_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"eureka_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"gce_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"hetzner_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"ionos_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"kuma_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"lightsail_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"linode_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"marathon_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"nerve_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"nomad_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"openstack_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"ovhcloud_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"puppetdb_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"scaleway_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"serverset_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"stackit_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"triton_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"uyuni_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
    {"vultr_sd_configs", SD_KIND_COUNT, NULL, NULL, NULL, NULL, NULL},
};
#define SD_TABLE_LEN (sizeof sd_table / sizeof sd_table[0])

static const sd_kind_entry *entry_for_kind(sd_kind k)
{
    for (size_t i = 0; i < SD_TABLE_LEN; i++)
        if (sd_table[i].kind == k && sd_table[i].parse)
            return &sd_table[i];
    return NULL;
}

size_t cfg_sd_keys(const char **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < SD_TABLE_LEN && n < max; i++)
        out[n++] = sd_table[i].key;
    return n;
}

void sd_config_release(sd_config *sd)
{
    const sd_kind_entry *e = entry_for_kind(sd->kind);
    if (e && e->free)
        e->free(sd);
    memset(&sd->u, 0, sizeof sd->u);
}

bool sd_config_equal(const sd_config *a, const sd_config *b)
{
    if (a == b)
        return true;
    if (!a || !b || a->kind != b->kind)
        return false;
    const sd_kind_entry *e = entry_for_kind(a->kind);
    return e && e->equal && e->equal(a, b);
}

void sd_config_copy(sd_config *dst, const sd_config *src)
{
    memset(dst, 0, sizeof *dst);
    dst->kind = src->kind;
    dst->index = src->index;
    dst->pos = src->pos;
    const sd_kind_entry *e = entry_for_kind(src->kind);
    if (e && e->copy)
        e->copy(dst, src);
}

char *sd_config_canonical(const sd_config *cfg, bool with_secrets)
{
    const sd_kind_entry *e = entry_for_kind(cfg->kind);
    if (!e || !e->canon)
        return NULL;
    strbuf sb;
    strbuf_init(&sb);
    cfg_canon_str(&sb, "kind", e->key);
    e->canon(&sb, cfg, with_secrets);
    return strbuf_detach(&sb, NULL);
}

int cfg_parse_sd_blocks(cfg_ctx *c, const yaml_node_t *map, scrape_config *sc)
{
    for (size_t t = 0; t < SD_TABLE_LEN; t++) {
        const sd_kind_entry *e = &sd_table[t];
        yaml_node_t *v = cfg_get_raw(c, map, e->key);
        if (!v)
            continue;
        yaml_node_t **items;
        int n = cfg_list(c, v, e->key, &items);
        if (n < 0)
            return -1;
        if (!e->parse) {
            if (n > 0)
                cfg_warn(c, cfg_key_node(c, map, e->key), "%s%s%s%s is not supported by lookout yet; its targets are ignored", c->job ? "job " : "",
                         c->job ? c->job : "", c->job ? ": " : "", e->key);
            free(items);
            continue;
        }
        if (n > 0) {
            sd_config *grown = realloc(sc->sd_configs, (sc->n_sd_configs + (size_t)n) * sizeof *grown);
            if (!grown) {
                free(items);
                return cfg_error(c, v, "out of memory");
            }
            sc->sd_configs = grown;
        }
        for (int i = 0; i < n; i++) {
            if (cfg_is_null(items[i])) {
                free(items);
                return cfg_error(c, v, "empty or null section in %s", e->key);
            }
            sd_config *sd = &sc->sd_configs[sc->n_sd_configs];
            memset(sd, 0, sizeof *sd);
            sd->kind = e->kind;
            sd->index = i;
            sd->pos = cfg_pos(items[i]);
            sc->n_sd_configs++; /* counted before parsing so that a failure frees what was allocated */
            if (e->parse(c, items[i], sd) < 0) {
                free(items);
                return -1;
            }
        }
        free(items);
    }
    return 0;
}
