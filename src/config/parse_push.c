/* parse_push: lookout's top-level `push:` section (push ingestion, docs/push.md).
 *
 *   push:
 *     enabled: true               # or --web.enable-push
 *     default_job: pushed         # job of POST /errors (Periskop clients' push_to_gateway)
 *     body_size_limit: 10MiB      # larger bodies -> 413
 *     authorization:              # optional: "Authorization: <type> <credentials>" required
 *       type: Bearer              # default Bearer
 *       credentials: s3cret       # or credentials_file: /path (read at each push)
 *     basic_auth:                 # or this (not both)
 *       username: pusher
 *       password: s3cret          # or password_file: /path
 *     error_relabel_configs: []   # applied to every pushed job's errors, as in a scrape_config
 *
 * Messages follow the rest of the configuration: FILE:LINE:COLUMN: what (expected ...). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/internal.h"

void cfg_push_defaults(push_config *p)
{
    memset(p, 0, sizeof *p);
    p->body_size_limit = PUSH_DEFAULT_BODY_LIMIT;
}

void cfg_push_free(push_config *p)
{
    free(p->default_job);
    free(p->authorization_type);
    free(p->authorization_credentials);
    free(p->authorization_credentials_file);
    free(p->basic_auth_username);
    free(p->basic_auth_password);
    free(p->basic_auth_password_file);
    cfg_free_rules(p->error_relabel_configs, p->n_error_relabel_configs);
    memset(p, 0, sizeof *p);
}

static bool set(const char *s)
{
    return s && *s;
}

/* A job name becomes a label value and a path segment of the Periskop API: non-empty UTF-8 without '/'. */
static int check_job(cfg_ctx *c, const yaml_node_t *v, const char *job)
{
    if (!*job || strchr(job, '/') || !cfg_utf8_valid(job))
        return cfg_error(c, v, "invalid push default_job \"%s\" (expected a non-empty job name without '/')", job);
    return 0;
}

static int join(cfg_ctx *c, char **path)
{
    if (!set(*path))
        return 0;
    char *j = cfg_join_dir(c, *path);
    if (!j)
        return -1;
    free(*path);
    *path = j;
    return 0;
}

int cfg_parse_push(cfg_ctx *c, const yaml_node_t *node, push_config *p)
{
    static const char *const keys[] = {"enabled", "default_job", "body_size_limit", "authorization", "basic_auth",
                                       "error_relabel_configs", NULL};
    int r = cfg_check_map(c, node, "push", keys);
    if (r)
        return r < 0 ? -1 : 0;
    if (cfg_read_bool(c, node, "enabled", &p->enabled) < 0 ||
        cfg_read_string(c, node, "default_job", &p->default_job) < 0 ||
        cfg_parse_error_relabel_list(c, node, &p->error_relabel_configs, &p->n_error_relabel_configs) < 0)
        return -1;
    if (p->default_job && check_job(c, cfg_get(c, node, "default_job"), p->default_job) < 0)
        return -1;
    yaml_node_t *bsl = cfg_get(c, node, "body_size_limit");
    if (bsl) {
        const char *s = cfg_scalar(bsl);
        int64_t v = 0;
        if (!s || cfg_parse_base2_bytes(s, &v) < 0 || v <= 0)
            return cfg_error(c, bsl,
                             "invalid push body_size_limit \"%s\" (expected a positive size such as 10MiB or "
                             "512KiB; units B, KB/KiB, MB/MiB, GB/GiB, base 2)",
                             s ? s : "");
        if (v > (1LL << 30))
            return cfg_error(c, bsl, "push body_size_limit \"%s\" is above 1GiB (a push body is held in memory)",
                             s);
        p->body_size_limit = v;
    }
    yaml_node_t *az = cfg_get(c, node, "authorization");
    yaml_node_t *ba = cfg_get(c, node, "basic_auth");
    if (az && ba)
        return cfg_error(c, node, "at most one of push authorization & basic_auth must be configured");
    if (az) {
        static const char *const akeys[] = {"type", "credentials", "credentials_file", NULL};
        if (cfg_check_map(c, az, "authorization", akeys) < 0)
            return -1;
        if (cfg_read_string(c, az, "type", &p->authorization_type) < 0 ||
            cfg_read_string(c, az, "credentials", &p->authorization_credentials) < 0 ||
            cfg_read_string(c, az, "credentials_file", &p->authorization_credentials_file) < 0)
            return -1;
        if (set(p->authorization_credentials) == set(p->authorization_credentials_file))
            return cfg_error(c, az,
                             "push authorization needs exactly one of credentials & credentials_file (an "
                             "empty secret would let anyone push)");
        if (!set(p->authorization_type)) {
            free(p->authorization_type);
            p->authorization_type = strdup("Bearer");
        }
        if (strcasecmp(p->authorization_type, "basic") == 0)
            return cfg_error(c, az, "push authorization type cannot be \"basic\", use basic_auth instead");
        if (strpbrk(p->authorization_type, " \t"))
            return cfg_error(c, az, "invalid push authorization type \"%s\" (expected one word such as Bearer)",
                             p->authorization_type);
        p->has_authorization = true;
        if (join(c, &p->authorization_credentials_file) < 0)
            return -1;
    }
    if (ba) {
        static const char *const bkeys[] = {"username", "password", "password_file", NULL};
        if (cfg_check_map(c, ba, "basic_auth", bkeys) < 0)
            return -1;
        if (cfg_read_string(c, ba, "username", &p->basic_auth_username) < 0 ||
            cfg_read_string(c, ba, "password", &p->basic_auth_password) < 0 ||
            cfg_read_string(c, ba, "password_file", &p->basic_auth_password_file) < 0)
            return -1;
        if (!set(p->basic_auth_username))
            return cfg_error(c, ba, "push basic_auth requires username");
        if (strchr(p->basic_auth_username, ':'))
            return cfg_error(c, ba, "push basic_auth username must not contain ':'");
        if (set(p->basic_auth_password) == set(p->basic_auth_password_file))
            return cfg_error(c, ba, "push basic_auth needs exactly one of password & password_file");
        p->has_basic_auth = true;
        if (join(c, &p->basic_auth_password_file) < 0)
            return -1;
    }
    return 0;
}
