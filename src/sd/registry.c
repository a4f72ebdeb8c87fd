/* registry: from an SD block to a provider (sd_provider_create switches on the kind), plus the provider's
 * own copy of its block (the per-kind copy, free and equal live in config/, beside the parsers). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sd/kubernetes_internal.h"
#include "sd/sd_internal.h"
#include "util/xalloc.h"

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
    sd_config *c = xcalloc(1, sizeof *c);
    sd_config_copy(c, src);
    return c;
}

void sd_block_free(sd_config *c)
{
    if (!c)
        return;
    sd_config_release(c);
    free(c);
}

bool sd_block_equal(const sd_config *a, const sd_config *b)
{
    /* index is part of a block's identity here (sources are named after it); sd_config_equal ignores it. */
    return a->index == b->index && sd_config_equal(a, b);
}

sd_provider *sd_provider_create(const sd_config *cfg, const char *job, char *err, size_t errlen)
{
    const sd_provider_ops *ops;
    switch (cfg->kind) {
    case SD_STATIC: ops = &sd_static_ops; break;
    case SD_FILE: ops = &sd_file_ops; break;
    case SD_KUBERNETES: ops = &sd_kubernetes_ops; break;
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
    p->job = xstrdup_or_empty(job);
    char name[64];
    snprintf(name, sizeof name, "%s/%d", sd_kind_list_name(cfg->kind), cfg->index);
    p->name = xstrdup_or_empty(name);
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
