/* registry: from an SD block to a provider (sd_provider_create switches on the kind), plus the copies
 * and comparisons of SD blocks the manager needs to keep unchanged providers across reloads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/client.h"
#include "sd/kubernetes_internal.h"
#include "sd/sd_internal.h"
#include "util/strv.h"
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
    sd_config *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->kind = src->kind;
    c->index = src->index;
    c->pos = src->pos;
    switch (src->kind) {
    case SD_STATIC:
        c->u.static_sd.targets = strv_copy_or_empty(src->u.static_sd.targets, src->u.static_sd.n_targets);
        c->u.static_sd.n_targets = src->u.static_sd.n_targets;
        labelset_copy(&c->u.static_sd.labels, &src->u.static_sd.labels);
        break;
    case SD_FILE:
        c->u.file.files = strv_copy_or_empty(src->u.file.files, src->u.file.n_files);
        c->u.file.n_files = src->u.file.n_files;
        c->u.file.refresh_interval_ms = src->u.file.refresh_interval_ms;
        break;
    case SD_KUBERNETES: {
        const kubernetes_sd_config *s = &src->u.kubernetes;
        kubernetes_sd_config *d = &c->u.kubernetes;
        *d = *s;
        d->api_server = s->api_server ? xstrdup_or_empty(s->api_server) : NULL;
        d->kubeconfig_file = s->kubeconfig_file ? xstrdup_or_empty(s->kubeconfig_file) : NULL;
        http_client_config_copy(&d->http, &s->http);
        d->namespaces = strv_copy_or_empty(s->namespaces, s->n_namespaces);
        d->selectors = s->n_selectors ? calloc(s->n_selectors, sizeof *d->selectors) : NULL;
        for (size_t i = 0; i < s->n_selectors; i++) {
            d->selectors[i].role = s->selectors[i].role;
            d->selectors[i].label = s->selectors[i].label ? xstrdup_or_empty(s->selectors[i].label) : NULL;
            d->selectors[i].field = s->selectors[i].field ? xstrdup_or_empty(s->selectors[i].field) : NULL;
        }
        break;
    }
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
    case SD_KUBERNETES: {
        kubernetes_sd_config *k = &c->u.kubernetes;
        free(k->api_server);
        free(k->kubeconfig_file);
        http_client_config_release(&k->http);
        strv_free(k->namespaces, k->n_namespaces);
        for (size_t i = 0; i < k->n_selectors; i++) {
            free(k->selectors[i].label);
            free(k->selectors[i].field);
        }
        free(k->selectors);
        break;
    }
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
