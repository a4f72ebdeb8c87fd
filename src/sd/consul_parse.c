/* consul_parse: the Consul HTTP API responses the Consul provider reads, turned into what Prometheus'
 * discovery/consul/consul.go makes of them (labels, health aggregation, addresses). Pure: no I/O. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sd/sd_remote.h"
#include "util/json_budget.h"
#include "util/xalloc.h"

void sd_sanitize_label_name(const char *in, char *out, size_t outlen)
{
    /* Go replaces per rune: one '_' for a whole UTF-8 sequence, one per invalid byte */
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)in;
    while (*p && o + 1 < outlen) {
        unsigned char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
        out[o++] = ok ? (char)ch : '_';
        size_t len = ch >= 0xF0 && ch <= 0xF4 ? 4 : ch >= 0xE0 ? 3 : ch >= 0xC2 && ch < 0xE0 ? 2 : 1;
        if (ch >= 0xF5)
            len = 1;
        for (size_t k = 1; k < len; k++)
            if ((p[k] & 0xC0) != 0x80) {
                len = 1;
                break;
            }
        p += len;
    }
    out[o] = '\0';
}

static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return -1;
}

void consul_catalog_free(consul_catalog_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        for (size_t k = 0; k < v[i].n_tags; k++)
            free(v[i].tags[k]);
        free(v[i].tags);
    }
    free(v);
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const consul_catalog_entry *)a)->name, ((const consul_catalog_entry *)b)->name);
}

int consul_parse_catalog(const char *body, size_t len, consul_catalog_entry **out, size_t *n, char *err,
                         size_t errlen)
{
    json_error_t je;
    json_t *root = json_budget_loadb(body, len, 0, &je);
    if (!root) {
        snprintf(err, errlen, "invalid JSON in catalog services: line %d column %d: %s", je.line, je.column, je.text);
        return -1;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return fail(err, errlen, "catalog services: expected an object of service names to tags");
    }
    size_t cnt = json_object_size(root), i = 0;
    consul_catalog_entry *v = calloc(cnt ? cnt : 1, sizeof *v);
    if (!v)
        abort();
    const char *name;
    json_t *tags;
    json_object_foreach(root, name, tags) {
        if (!json_is_array(tags) && !json_is_null(tags)) {
            consul_catalog_free(v, i);
            json_decref(root);
            return fail(err, errlen, "catalog services: expected a list of tags");
        }
        v[i].name = xstrdup_or_empty(name);
        size_t nt = json_is_array(tags) ? json_array_size(tags) : 0;
        v[i].tags = calloc(nt ? nt : 1, sizeof(char *));
        if (!v[i].tags)
            abort();
        for (size_t k = 0; k < nt; k++) {
            json_t *t = json_array_get(tags, k);
            if (!json_is_string(t)) {
                v[i].n_tags = k;
                consul_catalog_free(v, i + 1);
                json_decref(root);
                return fail(err, errlen, "catalog services: expected tags to be strings");
            }
            v[i].tags[k] = xstrdup_or_empty(json_string_value(t));
        }
        v[i].n_tags = nt;
        i++;
    }
    json_decref(root);
    qsort(v, i, sizeof *v, cmp_entry);
    *out = v;
    *n = i;
    return 0;
}

char *consul_parse_agent_datacenter(const char *body, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_budget_loadb(body, len, 0, &je);
    if (!root) {
        snprintf(err, errlen, "invalid JSON in agent self: line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    json_t *dc = json_object_get(json_object_get(root, "Config"), "Datacenter");
    if (!json_is_string(dc)) {
        char *d = dc ? json_dumps(dc, JSON_ENCODE_ANY) : NULL;
        snprintf(err, errlen, "invalid value '%s' for Config.Datacenter", d ? d : "<nil>");
        free(d);
        json_decref(root);
        return NULL;
    }
    char *out = xstrdup_or_empty(json_string_value(dc));
    json_decref(root);
    return out;
}

static const char *jstr(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : "";
}

/* consul/api HealthChecks.AggregatedStatus */
static const char *aggregated_status(const json_t *checks)
{
    bool passing = false, warning = false, critical = false, maint = false;
    size_t i;
    json_t *c;
    json_array_foreach(checks, i, c) {
        const char *id = jstr(c, "CheckID"), *st = jstr(c, "Status");
        if (!strcmp(id, "_node_maintenance") || !strncmp(id, "_service_maintenance:", 21)) {
            maint = true;
            continue;
        }
        if (!strcmp(st, "passing"))
            passing = true;
        else if (!strcmp(st, "warning"))
            warning = true;
        else if (!strcmp(st, "critical"))
            critical = true;
        else
            return ""; /* unknown status: Go returns "", so no label */
    }
    if (maint)
        return "maintenance";
    if (critical)
        return "critical";
    if (warning)
        return "warning";
    (void)passing;
    return "passing";
}

static int add_map_labels(labelset *t, const json_t *map, const char *prefix, char *err, size_t errlen)
{
    if (!map || json_is_null(map))
        return 0;
    if (!json_is_object(map))
        return fail(err, errlen, "health service: expected an object of strings");
    const char *k;
    json_t *v;
    char name[512], clean[400];
    json_object_foreach((json_t *)map, k, v) {
        if (!json_is_string(v))
            return fail(err, errlen, "health service: expected string values in a map");
        sd_sanitize_label_name(k, clean, sizeof clean);
        snprintf(name, sizeof name, "%s%s", prefix, clean);
        labelset_set(t, name, json_string_value(v));
    }
    return 0;
}

int consul_parse_health(const char *body, size_t len, const char *service, const char *datacenter,
                        const char *tag_separator, target_group *g, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_budget_loadb(body, len, 0, &je);
    if (!root) {
        snprintf(err, errlen, "invalid JSON in health service %s: line %d column %d: %s", service, je.line, je.column,
                 je.text);
        return -1;
    }
    int rc = 0;
    if (!json_is_array(root) && !json_is_null(root)) {
        rc = fail(err, errlen, "health service: expected a list of service entries");
        goto out;
    }
    labelset_set(&g->labels, "__meta_consul_service", service);
    labelset_set(&g->labels, "__meta_consul_dc", datacenter);
    size_t i;
    json_t *e;
    json_array_foreach(root, i, e) {
        const json_t *node = json_object_get(e, "Node"), *svc = json_object_get(e, "Service");
        const json_t *checks = json_object_get(e, "Checks");
        if (!json_is_object(e) || (node && !json_is_object(node) && !json_is_null(node)) ||
            (svc && !json_is_object(svc) && !json_is_null(svc)) ||
            (checks && !json_is_array(checks) && !json_is_null(checks))) {
            rc = fail(err, errlen, "health service: malformed service entry");
            goto out;
        }
        const json_t *port_j = json_object_get(svc, "Port"), *tags = json_object_get(svc, "Tags");
        if ((port_j && !json_is_integer(port_j)) || (tags && !json_is_array(tags) && !json_is_null(tags))) {
            rc = fail(err, errlen, "health service: malformed Service.Port or Service.Tags");
            goto out;
        }
        long long port = port_j ? json_integer_value(port_j) : 0;
        /* tags joined with the separator, and the separator at both ends */
        size_t tl = strlen(tag_separator) * 2 + 1, k;
        json_t *tg;
        json_array_foreach(tags, k, tg) {
            if (!json_is_string(tg)) {
                rc = fail(err, errlen, "health service: expected tags to be strings");
                goto out;
            }
            tl += strlen(json_string_value(tg)) + strlen(tag_separator);
        }
        char *tagstr = malloc(tl);
        if (!tagstr)
            abort();
        size_t o = (size_t)snprintf(tagstr, tl, "%s", tag_separator);
        json_array_foreach(tags, k, tg) o += (size_t)snprintf(tagstr + o, tl - o, "%s%s", k ? tag_separator : "",
                                                              json_string_value(tg));
        snprintf(tagstr + o, tl - o, "%s", tag_separator);

        const char *saddr = jstr(svc, "Address"), *naddr = jstr(node, "Address");
        char portbuf[32], addr[1200];
        snprintf(portbuf, sizeof portbuf, "%lld", port);
        sd_join_host_port(*saddr ? saddr : naddr, (int)port, addr, sizeof addr);
        labelset t = LABELSET_INIT;
        labelset_set(&t, "__address__", addr);
        labelset_set(&t, "__meta_consul_address", naddr);
        labelset_set(&t, "__meta_consul_node", jstr(node, "Node"));
        labelset_set(&t, "__meta_consul_namespace", jstr(svc, "Namespace"));
        labelset_set(&t, "__meta_consul_partition", jstr(svc, "Partition"));
        labelset_set(&t, "__meta_consul_tags", tagstr);
        labelset_set(&t, "__meta_consul_service_address", saddr);
        labelset_set(&t, "__meta_consul_service_port", portbuf);
        labelset_set(&t, "__meta_consul_service_id", jstr(svc, "ID"));
        labelset_set(&t, "__meta_consul_health", aggregated_status(checks));
        free(tagstr);
        if (add_map_labels(&t, json_object_get(node, "Meta"), "__meta_consul_metadata_", err, errlen) < 0 ||
            add_map_labels(&t, json_object_get(svc, "Meta"), "__meta_consul_service_metadata_", err, errlen) < 0 ||
            add_map_labels(&t, json_object_get(node, "TaggedAddresses"), "__meta_consul_tagged_address_", err,
                           errlen) < 0) {
            labelset_free(&t);
            rc = -1;
            goto out;
        }
        target_group_add_target(g, &t);
        labelset_free(&t);
    }
out:
    json_decref(root);
    return rc;
}
