/* remote_config: deep copy and free of the dns, consul and http SD blocks, for the provider's own copy of
 * its configuration (registry.c's sd_block_copy / sd_block_free). Comparison uses config's
 * sd_config_equal. */
#include <stdlib.h>
#include <string.h>

#include "http/client.h"
#include "sd/sd_internal.h"
#include "util/strv.h"
#include "util/xalloc.h"

void sd_remote_config_copy(sd_config *dst, const sd_config *src)
{
    switch (src->kind) {
    case SD_DNS: {
        const dns_sd_config *s = &src->u.dns;
        dns_sd_config *d = &dst->u.dns;
        *d = *s;
        d->names = strv_copy(s->names, s->n_names);
        break;
    }
    case SD_CONSUL: {
        const consul_sd_config *s = &src->u.consul;
        consul_sd_config *d = &dst->u.consul;
        *d = *s;
        d->server = xstrdup(s->server);
        d->path_prefix = xstrdup(s->path_prefix);
        d->token = xstrdup(s->token);
        d->datacenter = xstrdup(s->datacenter);
        d->ns = xstrdup(s->ns);
        d->partition = xstrdup(s->partition);
        d->scheme = xstrdup(s->scheme);
        d->tag_separator = xstrdup(s->tag_separator);
        d->services = strv_copy(s->services, s->n_services);
        d->tags = strv_copy(s->tags, s->n_tags);
        d->node_meta_keys = strv_copy(s->node_meta_keys, s->n_node_meta);
        d->node_meta_values = strv_copy(s->node_meta_values, s->n_node_meta);
        http_client_config_copy(&d->http, &s->http);
        break;
    }
    case SD_HTTP:
        dst->u.http = src->u.http;
        dst->u.http.url = xstrdup(src->u.http.url);
        http_client_config_copy(&dst->u.http.http, &src->u.http.http);
        break;
    default:
        break;
    }
}

void sd_remote_config_release(sd_config *c)
{
    switch (c->kind) {
    case SD_DNS:
        strv_free(c->u.dns.names, c->u.dns.n_names);
        break;
    case SD_CONSUL: {
        consul_sd_config *cc = &c->u.consul;
        free(cc->server);
        free(cc->path_prefix);
        if (cc->token)
            explicit_bzero(cc->token, strlen(cc->token));
        free(cc->token);
        free(cc->datacenter);
        free(cc->ns);
        free(cc->partition);
        free(cc->scheme);
        free(cc->tag_separator);
        strv_free(cc->services, cc->n_services);
        strv_free(cc->tags, cc->n_tags);
        strv_free(cc->node_meta_keys, cc->n_node_meta);
        strv_free(cc->node_meta_values, cc->n_node_meta);
        http_client_config_release(&cc->http);
        break;
    }
    case SD_HTTP:
        free(c->u.http.url);
        http_client_config_release(&c->u.http.http);
        break;
    default:
        break;
    }
}
