/* yaml_util: the small typed-access layer over libyaml's document API that every config parser uses.
 * Internal to src/config/. Every helper that fails writes "FILE:LINE:COLUMN: message" into the context's
 * error buffer and returns -1, so a parser only has to propagate -1. Positions are 1-based. */
#ifndef LOOKOUT_CONFIG_YAML_UTIL_H
#define LOOKOUT_CONFIG_YAML_UTIL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "config/config.h"

typedef struct cfg_ctx {
    yaml_document_t *doc;
    const char *file; /* name used in messages */
    char *dir;        /* directory of the file, for relative paths ("" = current directory) */
    char *err;
    size_t errlen;
    lookout_config *cfg; /* receives warnings */
    const char *job;     /* job being parsed, for warnings; NULL outside a job */
} cfg_ctx;

/* Errors and warnings at a node's position. */
int cfg_error(cfg_ctx *c, const yaml_node_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void cfg_warn(cfg_ctx *c, const yaml_node_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
config_pos cfg_pos(const yaml_node_t *n);

/* A plain scalar null (`~`, `null`, or nothing), which YAML decoders treat as "not set". */
bool cfg_is_null(const yaml_node_t *n);
const char *cfg_kind_name(const yaml_node_t *n); /* "a mapping", "a list", "a string" for messages */
const char *cfg_scalar(const yaml_node_t *n);    /* value of a scalar, NULL otherwise */

/* Checks that n is a mapping (null counts as an empty mapping and returns 1; 0 = mapping) whose keys are
 * all in `allowed` (NULL-terminated) and unique. Unknown key: "field K not found in type TYPE (expected one
 * of: ...)". Keys after an "" entry in `allowed` are accepted but not listed in that message. */
int cfg_check_map(cfg_ctx *c, const yaml_node_t *n, const char *type, const char *const *allowed);
/* Value of `key` in mapping n, or NULL when absent or null. */
yaml_node_t *cfg_get(cfg_ctx *c, const yaml_node_t *n, const char *key);
/* Like cfg_get but also returns a present null value (for "key present" checks). */
yaml_node_t *cfg_get_raw(cfg_ctx *c, const yaml_node_t *n, const char *key);
/* The key node of `key` in mapping n (for messages that point at the key), or NULL. */
yaml_node_t *cfg_key_node(cfg_ctx *c, const yaml_node_t *n, const char *key);
/* Sequence items of n (n must be a list; null = empty). Returns count or -1. */
int cfg_list(cfg_ctx *c, const yaml_node_t *n, const char *what, yaml_node_t ***items);

/* Typed readers: absent/null keys leave *out untouched and return 0. `what` names the field. */
int cfg_read_string(cfg_ctx *c, const yaml_node_t *map, const char *key, char **out);
int cfg_read_bool(cfg_ctx *c, const yaml_node_t *map, const char *key, bool *out);
int cfg_read_duration(cfg_ctx *c, const yaml_node_t *map, const char *key, int64_t *out_ms);
int cfg_read_uint(cfg_ctx *c, const yaml_node_t *map, const char *key, uint64_t *out);
int cfg_read_string_list(cfg_ctx *c, const yaml_node_t *map, const char *key, char ***out, size_t *n);
/* Mapping of label name -> value (names validated, values must be UTF-8). `type` names the field. */
int cfg_read_labels(cfg_ctx *c, const yaml_node_t *map, const char *key, labelset *out);

/* Joins a relative path to the config file's directory and cleans it (Prometheus config.JoinDir, i.e.
 * filepath.Join); an empty or absolute path is returned unchanged. Caller frees. */
char *cfg_join_dir(const cfg_ctx *c, const char *path);
bool cfg_utf8_valid(const char *s);

#endif
