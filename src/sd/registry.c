/* registry: from an SD block to a provider (sd_provider_create switches on the kind), plus the copies
 * and comparisons of SD blocks the manager needs to keep unchanged providers across reloads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sd/sd_internal.h"

static char *xstrdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        abort();
    return d;
}

static char **strv_copy(char *const *v, size_t n)
{
    if (!n)
        return NULL;
    char **d = calloc(n, sizeof(char *));
    if (!d)
        abort();
    for (size_t i = 0; i < n; i++)
        d[i] = xstrdup(v[i]);
    return d;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static bool strv_equal(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

const char *sd_kind_list_name(sd_kind kind)
{
    switch (kind) {
    case SD_STATIC: return "static_configs";
    case SD_FILE: return "file_sd_configs";
    case SD_DNS: return "dns_sd_configs";
    case SD_CONSUL: return "consul_sd_configs";
    case SD_KUBERNETES: return "kubernetes_sd_configs";
    case SD_HTTP: return "http_sd_configs";
    default: return "unknown_sd_configs";
    }
}

sd_config *sd_block_copy(const sd_config *src)
{
    sd_config *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->kind = src->kind;
    c->index = src->index;
    c->pos = src->pos;
    switch (src->kind) {
    case SD_STATIC:
        c->u.static_sd.targets = strv_copy(src->u.static_sd.targets, src->u.static_sd.n_targets);
        c->u.static_sd.n_targets = src->u.static_sd.n_targets;
        labelset_copy(&c->u.static_sd.labels, &src->u.static_sd.labels);
        break;
    case SD_FILE:
        c->u.file.files = strv_copy(src->u.file.files, src->u.file.n_files);
        c->u.file.n_files = src->u.file.n_files;
        c->u.file.refresh_interval_ms = src->u.file.refresh_interval_ms;
        break;
    case SD_DNS:
    case SD_CONSUL:
    case SD_HTTP:
        sd_remote_config_copy(c, src);
        break;
    default:
        break; /* kinds without a provider here carry nothing we need */
    }
    return c;
}

void sd_block_free(sd_config *c)
{
    if (!c)
        return;
    switch (c->kind) {
    case SD_STATIC:
        strv_free(c->u.static_sd.targets, c->u.static_sd.n_targets);
        labelset_free(&c->u.static_sd.labels);
        break;
    case SD_FILE:
        strv_free(c->u.file.files, c->u.file.n_files);
        break;
    case SD_DNS:
    case SD_CONSUL:
    case SD_HTTP:
        sd_remote_config_release(c);
        break;
    default:
        break;
    }
    free(c);
}

bool sd_block_equal(const sd_config *a, const sd_config *b)
{
    if (a->kind != b->kind || a->index != b->index)
        return false;
    switch (a->kind) {
    case SD_STATIC:
        return strv_equal(a->u.static_sd.targets, a->u.static_sd.n_targets, b->u.static_sd.targets,
                          b->u.static_sd.n_targets) &&
               labelset_equal(&a->u.static_sd.labels, &b->u.static_sd.labels);
    case SD_FILE:
        return a->u.file.refresh_interval_ms == b->u.file.refresh_interval_ms &&
               strv_equal(a->u.file.files, a->u.file.n_files, b->u.file.files, b->u.file.n_files);
    case SD_DNS:
    case SD_CONSUL:
    case SD_HTTP:
        return sd_config_equal(a, b);
    default:
        return false;
    }
}

sd_provider *sd_provider_create(const sd_config *cfg, const char *job, char *err, size_t errlen)
{
    const sd_provider_ops *ops;
    switch (cfg->kind) {
    case SD_STATIC: ops = &sd_static_ops; break;
    case SD_FILE: ops = &sd_file_ops; break;
    case SD_DNS: ops = &sd_dns_ops; break;
    case SD_CONSUL: ops = &sd_consul_ops; break;
    case SD_HTTP: ops = &sd_http_ops; break;
    default:
        snprintf(err, errlen, "%s: service discovery not implemented", sd_kind_list_name(cfg->kind));
        return NULL;
    }
    sd_provider *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    p->ops = ops;
    p->cfg = sd_block_copy(cfg);
    p->job = xstrdup(job);
    char name[64];
    snprintf(name, sizeof name, "%s/%d", sd_kind_list_name(cfg->kind), cfg->index);
    p->name = xstrdup(name);
    p->id = -1;
    return p;
}

void sd_provider_free(sd_provider *p)
{
    if (!p)
        return;
    if (p->ops && p->ops->destroy)
        p->ops->destroy(p);
    sd_block_free(p->cfg);
    free(p->job);
    free(p->name);
    free(p);
}
