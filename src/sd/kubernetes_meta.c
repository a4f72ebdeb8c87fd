/* kubernetes_meta: API paths, object pruning and the label helpers every Kubernetes role shares.
 *
 * Pruning is driven by a template in the object's own shape: `true` keeps a value whole, an object keeps
 * only the listed keys (recursively), a one-element array applies its element to every item, "map" keeps
 * a string map packed into one string (below). This is how
 * lookout keeps 10,000 pods in a few tens of MiB: managedFields, env, volumes, probes and the rest of the
 * spec are dropped the moment an object is decoded. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sd/kubernetes_internal.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

static const char *const kind_names[K8S_ROLE_COUNT] = {"pod", "service", "endpoints", "endpointslice", "node",
                                                      "ingress"};

const char *k8s_kind_name(k8s_kind kind)
{
    return (unsigned)kind < K8S_ROLE_COUNT ? kind_names[kind] : "unknown";
}

char *k8s_resource_path(k8s_kind kind, const char *ns)
{
    static const char *const prefix[K8S_ROLE_COUNT] = {"/api/v1", "/api/v1", "/api/v1",
                                                      "/apis/discovery.k8s.io/v1", "/api/v1",
                                                      "/apis/networking.k8s.io/v1"};
    static const char *const plural[K8S_ROLE_COUNT] = {"pods", "services", "endpoints", "endpointslices", "nodes",
                                                      "ingresses"};
    char buf[512];
    if (kind == K8S_ROLE_NODE || !ns || !*ns)
        snprintf(buf, sizeof buf, "%s/%s", prefix[kind], plural[kind]);
    else
        snprintf(buf, sizeof buf, "%s/namespaces/%s/%s", prefix[kind], ns, plural[kind]);
    return strdup(buf);
}

/* Templates of what each kind keeps (JSON, parsed once). */
#define CONTAINER "{\"name\":true,\"image\":true,\"ports\":[{\"name\":true,\"containerPort\":true,\"protocol\":true}]}"
#define META_NS "\"name\":true,\"namespace\":true,\"resourceVersion\":true"
static const char *const templates[K8S_ROLE_COUNT] = {
    /* pod */
    "{\"metadata\":{" META_NS ",\"uid\":true,\"labels\":\"map\",\"annotations\":\"map\","
    "\"ownerReferences\":[{\"kind\":true,\"name\":true,\"controller\":true}]},"
    "\"spec\":{\"nodeName\":true,\"containers\":[" CONTAINER "],\"initContainers\":[" CONTAINER "]},"
    "\"status\":{\"podIP\":true,\"hostIP\":true,\"phase\":true,\"conditions\":[{\"type\":true,\"status\":true}],"
    "\"containerStatuses\":[{\"name\":true,\"containerID\":true}],"
    "\"initContainerStatuses\":[{\"name\":true,\"containerID\":true}]}}",
    /* service */
    "{\"metadata\":{" META_NS ",\"labels\":\"map\",\"annotations\":\"map\"},"
    "\"spec\":{\"type\":true,\"clusterIP\":true,\"externalName\":true,\"loadBalancerIP\":true,"
    "\"ports\":[{\"name\":true,\"port\":true,\"protocol\":true}]}}",
    /* endpoints */
    "{\"metadata\":{" META_NS ",\"labels\":\"map\"},\"subsets\":[{"
    "\"addresses\":\"addrs\",\"notReadyAddresses\":\"addrs\","
    "\"ports\":[{\"name\":true,\"port\":true,\"protocol\":true}]}]}",
    /* endpointslice */
    "{\"metadata\":{" META_NS ",\"labels\":\"map\"},\"addressType\":true,\"endpoints\":[{\"addresses\":true,"
    "\"conditions\":true,\"hostname\":true,\"targetRef\":true,\"nodeName\":true,\"deprecatedTopology\":true}],"
    "\"ports\":[{\"name\":true,\"port\":true,\"protocol\":true,\"appProtocol\":true}]}",
    /* node */
    "{\"metadata\":{\"name\":true,\"resourceVersion\":true,\"labels\":\"map\",\"annotations\":\"map\"},"
    "\"spec\":{\"providerID\":true},"
    "\"status\":{\"addresses\":true,\"daemonEndpoints\":{\"kubeletEndpoint\":{\"Port\":true}}}}",
    /* ingress */
    "{\"metadata\":{" META_NS ",\"labels\":\"map\",\"annotations\":\"map\"},"
    "\"spec\":{\"ingressClassName\":true,\"tls\":[{\"hosts\":true}],"
    "\"rules\":[{\"host\":true,\"http\":{\"paths\":[{\"path\":true}]}}]}}",
};

static json_t *parsed_templates[K8S_ROLE_COUNT];
static json_t *page_templates[K8S_ROLE_COUNT], *event_templates[K8S_ROLE_COUNT];
static pthread_once_t templates_once = PTHREAD_ONCE_INIT;

static void templates_init(void)
{
    for (int i = 0; i < K8S_ROLE_COUNT; i++) {
        parsed_templates[i] = json_loads(templates[i], 0, NULL);
        if (!parsed_templates[i])
            abort(); /* a typo in the table above: caught by every unit test */
        /* a list page: its items and what paging reads */
        page_templates[i] = json_pack("{s:[O],s:{s:b,s:b}}", "items", parsed_templates[i], "metadata", "continue",
                                      1, "resourceVersion", 1);
        /* a watch event: its type and object, plus what the informer reads of the object before pruning it
         * (the key's namespace, which nodes do not keep; an ERROR's code and message) */
        json_t *obj = json_deep_copy(parsed_templates[i]);
        json_object_set_new(json_object_get(obj, "metadata"), "namespace", json_true());
        json_object_set_new(obj, "code", json_true());
        json_object_set_new(obj, "message", json_true());
        event_templates[i] = json_pack("{s:b,s:o}", "type", 1, "object", obj);
        if (!page_templates[i] || !event_templates[i])
            abort();
    }
}

/* ---- packed maps ----
 * A string-to-string map (labels, annotations) is kept as one JSON string instead of a jansson object (a
 * hash table entry and a string value per key: ~6 times the text of a map of short keys). Its bytes are the
 * entries sorted by key (bytewise), one per key (the last occurrence, as jansson kept it), each
 *   KEY NUL TAG VALUE NUL     TAG 's': VALUE is the string value; TAG 'n': not a string (VALUE empty)
 * Neither keys nor values can hold a NUL (the parsers refuse \u0000). Canonical, so json_equal compares
 * two maps' contents. */

bool k8s_map_template(const json_t *t)
{
    const char *s = json_string_value(t);
    return s && strcmp(s, "map") == 0;
}

static int map_entry_cmp(const void *a, const void *b, void *base)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = strcmp((const char *)base + x, (const char *)base + y);
    return c ? c : x < y ? -1 : x > y; /* equal keys: in arrival order, the last one is kept */
}

json_t *k8s_map_pack(const char *buf, size_t *offs, size_t n)
{
    /* Kubernetes sends maps sorted (Go's encoding/json sorts map keys): then the text is the packed form */
    size_t i = 1;
    while (i < n && strcmp(buf + offs[i - 1], buf + offs[i]) < 0)
        i++;
    if (i >= n) {
        if (!n)
            return json_stringn_nocheck("", 0); /* buf may be NULL */
        const char *last = buf + offs[n - 1], *v = last + strlen(last) + 1;
        return json_stringn_nocheck(buf, (size_t)(v + strlen(v) + 1 - buf));
    }
    qsort_r(offs, n, sizeof *offs, map_entry_cmp, (void *)buf);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && strcmp(buf + offs[i], buf + offs[i + 1]) == 0)
            continue;
        const char *k = buf + offs[i], *v = k + strlen(k) + 1;
        len += (size_t)(v - k) + strlen(v) + 1;
    }
    char *out = xmalloc(len ? len : 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && strcmp(buf + offs[i], buf + offs[i + 1]) == 0)
            continue;
        const char *k = buf + offs[i], *v = k + strlen(k) + 1;
        size_t m = (size_t)(v - k) + strlen(v) + 1;
        memcpy(o, k, m);
        o += m;
    }
    json_t *r = json_stringn_nocheck(out, len);
    free(out);
    return r;
}

/* The packed form of a jansson object. */
static json_t *map_pack_object(const json_t *obj)
{
    size_t n = json_object_size(obj), len = 0, i = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) len += strlen(k) + 3 + (json_is_string(v) ? json_string_length(v) : 0);
    char *buf = xmalloc(len ? len : 1);
    size_t *offs = xmalloc((n ? n : 1) * sizeof *offs), used = 0;
    json_object_foreach((json_t *)obj, k, v) {
        offs[i++] = used;
        size_t kl = strlen(k);
        memcpy(buf + used, k, kl + 1);
        used += kl + 1;
        buf[used++] = json_is_string(v) ? 's' : 'n';
        if (json_is_string(v)) {
            memcpy(buf + used, json_string_value(v), json_string_length(v));
            used += json_string_length(v);
        }
        buf[used++] = 0;
    }
    json_t *r = k8s_map_pack(buf, offs, n);
    free(buf);
    free(offs);
    return r;
}

bool k8s_map_next(const json_t *map, size_t *pos, const char **key, const char **value)
{
    const char *s = json_string_value(map);
    size_t len = json_string_length(map);
    if (!s || *pos >= len)
        return false;
    const char *k = s + *pos, *t = k + strlen(k) + 1;
    if (t >= s + len) { /* no tag after the key: a plain string, not a packed map (a full object's) */
        *pos = len;
        return false;
    }
    *key = k;
    *value = *t == 's' ? t + 1 : NULL;
    *pos = (size_t)(t + 1 + strlen(t + 1) + 1 - s);
    return true;
}

const char *k8s_map_get(const json_t *map, const char *key)
{
    if (json_is_object(map))
        return json_string_value(json_object_get(map, key));
    size_t pos = 0;
    const char *k, *v;
    while (k8s_map_next(map, &pos, &k, &v))
        if (strcmp(k, key) == 0)
            return v;
    return NULL;
}

/* ---- packed address lists (kubernetes_internal.h) ---- */

bool k8s_addrs_template(const json_t *t)
{
    const char *s = json_string_value(t);
    return s && strcmp(s, "addrs") == 0;
}

const char *k8s_addr_field(const json_t *addr, int i)
{
    static const char *const names[K8S_ADDR_FIELDS] = {"ip", "hostname", "nodeName", "kind", "name", "namespace"};
    if (i >= 3)
        addr = json_object_get(addr, "targetRef");
    return (unsigned)i < K8S_ADDR_FIELDS ? json_string_value(json_object_get(addr, names[i])) : NULL;
}

json_t *k8s_addrs_pack(const json_t *list)
{
    strbuf sb;
    strbuf_init(&sb);
    size_t i;
    json_t *a;
    json_array_foreach((json_t *)list, i, a) {
        for (int f = 0; f < K8S_ADDR_FIELDS; f++) {
            const char *v = k8s_addr_field(a, f);
            strbuf_putc(&sb, v ? 's' : 'n');
            if (v)
                strbuf_puts(&sb, v);
            strbuf_append(&sb, "", 1);
        }
    }
    json_t *r = json_stringn_nocheck(sb.buf, sb.len);
    strbuf_free(&sb);
    return r;
}

bool k8s_addr_next(const json_t *list, size_t *pos, k8s_addr *out)
{
    const char *f[K8S_ADDR_FIELDS];
    if (json_is_array(list)) {
        if (*pos >= json_array_size(list))
            return false;
        const json_t *a = json_array_get(list, (*pos)++);
        for (int i = 0; i < K8S_ADDR_FIELDS; i++)
            f[i] = k8s_addr_field(a, i);
    } else {
        const char *s = json_string_value(list);
        size_t len = json_string_length(list);
        if (!s || *pos >= len)
            return false;
        for (int i = 0; i < K8S_ADDR_FIELDS; i++) {
            const char *p = s + *pos;
            f[i] = *p == 's' ? p + 1 : NULL;
            *pos += strlen(p) + 1;
            if (*pos > len) /* not written by k8s_addrs_pack or the parser: stop at its end */
                *pos = len;
        }
    }
    *out = (k8s_addr){f[0], f[1], f[2], f[3], f[4], f[5]};
    return true;
}

json_t *k8s_prune(const json_t *v, const json_t *t)
{
    if (json_is_true(t))
        return json_deep_copy(v);
    if (k8s_map_template(t))
        return json_is_object(v) ? map_pack_object(v) : NULL;
    if (k8s_addrs_template(t))
        return json_is_array(v) ? k8s_addrs_pack(v) : NULL;
    if (json_is_object(t)) {
        if (!json_is_object(v))
            return NULL;
        json_t *o = json_object();
        const char *k;
        json_t *sub;
        json_object_foreach((json_t *)t, k, sub) {
            json_t *x = json_object_get(v, k);
            if (!x || json_is_null(x))
                continue;
            json_t *p = k8s_prune(x, sub);
            if (p)
                json_object_set_new(o, k, p);
        }
        return o;
    }
    if (json_is_array(t)) {
        if (!json_is_array(v))
            return NULL;
        json_t *a = json_array(), *elt = json_array_get(t, 0);
        size_t i;
        json_t *x;
        json_array_foreach((json_t *)v, i, x) {
            json_t *p = k8s_prune(x, elt);
            json_array_append_new(a, p ? p : json_null());
        }
        return a;
    }
    return NULL;
}

const json_t *k8s_template(k8s_kind kind, k8s_doc doc)
{
    if ((unsigned)kind >= K8S_ROLE_COUNT)
        return NULL;
    pthread_once(&templates_once, templates_init);
    return doc == K8S_DOC_PAGE ? page_templates[kind] : doc == K8S_DOC_EVENT ? event_templates[kind]
                                                                               : parsed_templates[kind];
}

json_t *k8s_doc_prune(k8s_kind kind, k8s_doc doc, const json_t *tree)
{
    const json_t *t = k8s_template(kind, doc);
    json_t *p = t ? k8s_prune(tree, t) : NULL;
    json_t *items = doc == K8S_DOC_PAGE ? json_object_get(p, "items") : NULL;
    for (size_t i = json_array_size(items); i-- > 0;)
        if (!k8s_str(json_array_get(items, i), "metadata.name"))
            json_array_remove(items, i);
    return p;
}

json_t *k8s_slim(k8s_kind kind, const json_t *full)
{
    if ((unsigned)kind >= K8S_ROLE_COUNT || !json_is_object(full) || !k8s_str(full, "metadata.name"))
        return NULL;
    pthread_once(&templates_once, templates_init);
    return k8s_prune(full, parsed_templates[kind]);
}

char *k8s_object_key(const json_t *obj)
{
    const char *name = k8s_str(obj, "metadata.name"), *ns = k8s_str(obj, "metadata.namespace");
    if (!name)
        return NULL;
    if (!ns || !*ns)
        return strdup(name);
    size_t n = strlen(ns) + strlen(name) + 2;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s/%s", ns, name);
    return k;
}

const json_t *k8s_get(const json_t *obj, const char *path)
{
    char part[128];
    while (obj && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof part)
            return NULL;
        memcpy(part, path, n);
        part[n] = 0;
        obj = json_object_get(obj, part);
        path += n + (dot ? 1 : 0);
    }
    return obj;
}

const char *k8s_str(const json_t *obj, const char *path)
{
    return json_string_value(k8s_get(obj, path));
}

void k8s_sanitize(char *s)
{
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            *s = '_';
    }
}

static void add_pair(label *pairs, size_t *n, const char *k, const char *val, const char *prefix,
                     const char *present_prefix)
{
    size_t len = strlen(k), pl = strlen(prefix), ql = strlen(present_prefix);
    char *name = xmalloc(pl + len + 1), *present = xmalloc(ql + len + 1);
    memcpy(name, prefix, pl);
    memcpy(name + pl, k, len + 1);
    k8s_sanitize(name + pl);
    memcpy(present, present_prefix, ql);
    memcpy(present + ql, k, len + 1);
    k8s_sanitize(present + ql);
    pairs[(*n)++] = (label){name, val ? xstrdup(val) : NULL};
    pairs[(*n)++] = (label){present, xstrdup("true")};
}

/* While k8s_build_group_frozen builds a group (this thread): maps added to its labels are recorded here,
 * and its targets are packed into tb. */
static _Thread_local struct {
    const labelset *ls;
    k8s_dmap *v;
    size_t n, cap;
    const target_group *g;
    sd_group_builder *tb;
} deferred;

void k8s_add_target(target_group *g, const labelset *t)
{
    if (deferred.g == g)
        sd_gb_add_target(deferred.tb, t);
    else
        target_group_add_target(g, t);
}

/* The entries of a map of either form (0 for anything else). */
static size_t map_entries(const json_t *map)
{
    if (json_is_object(map))
        return json_object_size(map);
    size_t pos = 0, n = 0;
    const char *k, *val;
    while (k8s_map_next(map, &pos, &k, &val))
        n++;
    return n;
}

void k8s_add_map(labelset *ls, const json_t *map, const char *prefix, const char *present_prefix)
{
    const char *k, *val;
    if (!json_is_object(map) && !json_is_string(map))
        return;
    if (deferred.ls == ls) {
        if (deferred.n == deferred.cap) {
            deferred.cap = deferred.cap ? 2 * deferred.cap : 8;
            deferred.v = xrealloc(deferred.v, deferred.cap * sizeof *deferred.v);
        }
        deferred.v[deferred.n++] = (k8s_dmap){map, prefix, present_prefix};
        return;
    }
    size_t entries = map_entries(map);
    /* All at once: one at a time, each name between the label_ and labelpresent_ blocks moves the whole
     * second block (a million labels took minutes). */
    size_t n = 0;
    label *pairs = xmalloc((entries ? 2 * entries : 1) * sizeof *pairs);
    if (json_is_object(map)) {
        json_t *v;
        json_object_foreach((json_t *)map, k, v) add_pair(pairs, &n, k, json_string_value(v), prefix, present_prefix);
    } else {
        size_t pos = 0;
        while (k8s_map_next(map, &pos, &k, &val))
            add_pair(pairs, &n, k, val, prefix, present_prefix);
    }
    labelset_set_many(ls, pairs, n);
    free(pairs);
}

/* Calls fn(ctx, key, value) for each entry of a map of either form (value NULL when not a string). */
static void map_each(const json_t *map, void (*fn)(void *, const char *, const char *), void *ctx)
{
    const char *k, *val;
    if (json_is_object(map)) {
        json_t *v;
        json_object_foreach((json_t *)map, k, v) fn(ctx, k, json_string_value(v));
    } else {
        size_t pos = 0;
        while (k8s_map_next(map, &pos, &k, &val))
            fn(ctx, k, val);
    }
}

typedef struct arena_fill {
    const k8s_dmap *d;
    size_t bytes;  /* sizing pass: what the arena needs */
    char *arena, *w; /* filling pass */
    label *pairs;
    size_t n;
} arena_fill;

static void size_entry(void *ctx, const char *k, const char *val)
{
    arena_fill *f = ctx;
    size_t kl = strlen(k);
    f->bytes += strlen(f->d->prefix) + strlen(f->d->present_prefix) + 2 * kl + 2 + (val && *val ? strlen(val) + 1 : 0);
}

static char *arena_name(arena_fill *f, const char *prefix, const char *k)
{
    size_t pl = strlen(prefix), kl = strlen(k);
    char *name = f->w;
    memcpy(name, prefix, pl);
    memcpy(name + pl, k, kl + 1);
    k8s_sanitize(name + pl);
    f->w += pl + kl + 1;
    return name;
}

/* add_pair's two labels, in the arena (an empty or non-string value: NULL, which deletes, as there) */
static void fill_entry(void *ctx, const char *k, const char *val)
{
    arena_fill *f = ctx;
    char *name = arena_name(f, f->d->prefix, k), *value = NULL;
    if (val && *val) {
        size_t vl = strlen(val) + 1;
        value = memcpy(f->w, val, vl);
        f->w += vl;
    }
    f->pairs[f->n++] = (label){name, value};
    f->pairs[f->n++] = (label){arena_name(f, f->d->present_prefix, k), f->arena}; /* "true", first in the arena */
}

/* By name; the same name: in the order labelset_set_many applied them. */
static int pair_cmp(const void *a, const void *b, void *ctx)
{
    const label *p = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int c = strcmp(p[x].name, p[y].name);
    return c ? c : x < y ? -1 : x > y;
}

/* Sorts the n pairs with pair_cmp through 32-bit indexes (a map's text is at least 6 bytes an entry, and
 * bodies are at most 256 MiB), then puts the pairs in that order in place: qsort on the pairs themselves
 * would take a scratch copy of them (glibc's merge sort), 16 bytes a label against 4 here. */
static void sort_pairs(label *pairs, size_t n)
{
    uint32_t *idx = xmalloc((n ? n : 1) * sizeof *idx);
    for (size_t i = 0; i < n; i++)
        idx[i] = (uint32_t)i;
    qsort_r(idx, n, sizeof *idx, pair_cmp, pairs);
    for (size_t s = 0; s < n; s++) { /* pairs[k] = old pairs[idx[k]], cycle by cycle; idx[k] = k when done */
        if (idx[s] == s)
            continue;
        label first = pairs[s];
        size_t k = s;
        while (idx[k] != s) {
            size_t j = idx[k];
            pairs[k] = pairs[j];
            idx[k] = (uint32_t)k;
            k = j;
        }
        pairs[k] = first;
        idx[k] = (uint32_t)k;
    }
    free(idx);
}

typedef struct pmap_fill {
    size_t bytes, n; /* sizing pass */
    char *text, *w;  /* filling pass */
    uint32_t *off;
    size_t i;
} pmap_fill;

static void pmap_size(void *ctx, const char *k, const char *val)
{
    pmap_fill *f = ctx;
    f->bytes += strlen(k) + 1 + (val ? strlen(val) : 0) + 1;
    f->n++;
}

static void pmap_put(void *ctx, const char *k, const char *val)
{
    pmap_fill *f = ctx;
    size_t kl = strlen(k) + 1, vl = (val ? strlen(val) : 0) + 1;
    f->off[f->i++] = (uint32_t)(f->w - f->text);
    memcpy(f->w, k, kl);
    k8s_sanitize(f->w);
    f->w += kl;
    memcpy(f->w, val ? val : "", vl); /* a non-string value: "", as add_pair's NULL (the label deleted) */
    f->w += vl;
}

/* By key; the same key: in map order (offsets grow with it). */
static int off_cmp(const void *a, const void *b, void *ctx)
{
    const char *text = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int c = strcmp(text + x, text + y);
    return c ? c : x < y ? -1 : x > y;
}

/* One map packed: its entries' sanitised keys and values in map order, their offsets sorted by key with the
 * last entry of a key kept (as labelset_set_many applies add_pair's labels: the later wins). */
static void pmap_build(const k8s_dmap *d, label_pmap *m)
{
    pmap_fill f = {0};
    map_each(d->map, pmap_size, &f);
    f.text = f.w = xmalloc(f.bytes ? f.bytes : 1);
    f.off = xmalloc((f.n ? f.n : 1) * sizeof *f.off);
    map_each(d->map, pmap_put, &f);
    qsort_r(f.off, f.i, sizeof *f.off, off_cmp, f.text);
    size_t w = 0;
    for (size_t j = 0; j < f.i; j++) {
        if (j + 1 < f.i && strcmp(f.text + f.off[j], f.text + f.off[j + 1]) == 0)
            continue; /* a later entry of the key follows */
        f.off[w++] = f.off[j];
    }
    *m = (label_pmap){d->prefix, d->present_prefix, f.text, xrealloc(f.off, (w ? w : 1) * sizeof *f.off), w};
}

/* k8s_freeze_with_maps with the maps kept packed in the group (sd_gb_freeze_lazy): about one copy of the
 * maps' text instead of two labels of ~40 bytes of name per entry. False (nothing done) when a label name
 * could be two of them: a prefix that starts another (never, for the roles' prefixes) or a map's label
 * named like one of g's own; the caller then builds the group with the maps' labels expanded. */
bool k8s_freeze_lazy(const target_group *g, sd_group_builder *tb, const k8s_dmap *maps, size_t n,
                     target_group *out)
{
    for (size_t i = 0; i < 2 * n; i++)
        for (size_t j = 0; j < 2 * n; j++) {
            const char *a = i % 2 ? maps[i / 2].present_prefix : maps[i / 2].prefix;
            const char *b = j % 2 ? maps[j / 2].present_prefix : maps[j / 2].prefix;
            if (i != j && strncmp(b, a, strlen(a)) == 0)
                return false;
        }
    sd_lazy *z = xmalloc(sizeof *z + n * sizeof(label_pmap));
    z->n = 0;
    for (size_t i = 0; i < n; i++)
        pmap_build(&maps[i], &z->m[z->n++]);
    label_view mv = {NULL, z->m, z->n};
    for (size_t i = 0; i < g->labels.n; i++)
        if (label_view_get(&mv, g->labels.v[i].name)) {
            sd_lazy_free(z);
            return false;
        }
    sd_gb_freeze_lazy(tb, g->source, &g->labels, z, out);
    return true;
}

bool k8s_freeze_with_maps(const target_group *g, sd_group_builder *tb, const k8s_dmap *maps, size_t n,
                          target_group *out)
{
    arena_fill f = {.bytes = 5};
    size_t entries = 0;
    for (size_t i = 0; i < n; i++) {
        f.d = &maps[i];
        map_each(maps[i].map, size_entry, &f);
        entries += map_entries(maps[i].map);
    }
    f.arena = f.w = xmalloc(f.bytes);
    memcpy(f.w, "true", 5);
    f.w += 5;
    f.pairs = xmalloc((entries ? 2 * entries : 1) * sizeof *f.pairs);
    for (size_t i = 0; i < n; i++) {
        f.d = &maps[i];
        map_each(maps[i].map, fill_entry, &f);
    }
    sort_pairs(f.pairs, f.n);
    /* in place: the last of each name, unless it deletes */
    size_t m = 0;
    for (size_t j = 0; j < f.n;) {
        size_t r = j + 1;
        while (r < f.n && strcmp(f.pairs[r].name, f.pairs[j].name) == 0)
            r++;
        if (f.pairs[r - 1].value)
            f.pairs[m++] = f.pairs[r - 1];
        j = r;
    }
    /* then the group's own labels merged in, from the end, in the same array (the group takes it) */
    const labelset *own = &g->labels;
    size_t nv = m + own->n;
    label *v = xrealloc(f.pairs, (nv ? nv : 1) * sizeof *v);
    size_t i = own->n, j = m, k = nv;
    while (i > 0) {
        int c = j > 0 ? strcmp(own->v[i - 1].name, v[j - 1].name) : 1;
        if (c == 0) { /* a map's label named like one of the group's */
            free(v);
            free(f.arena);
            return false;
        }
        v[--k] = c > 0 ? own->v[--i] : v[--j];
    }
    labelset lv = {v, nv, nv};
    sd_gb_freeze_adopt(tb, g->source, &lv, f.arena, f.bytes, out);
    return true;
}

void k8s_build_group_frozen(k8s_role role, const char *key, const json_t *obj, const k8s_lookup *lk,
                            target_group *out)
{
    target_group g;
    sd_group_builder tb = {0};
    deferred.ls = &g.labels;
    deferred.n = 0;
    deferred.g = &g;
    deferred.tb = &tb;
    k8s_build_group(role, key, obj, lk, &g);
    deferred.ls = NULL;
    bool done = deferred.n && (k8s_freeze_lazy(&g, &tb, deferred.v, deferred.n, out) ||
                               k8s_freeze_with_maps(&g, &tb, deferred.v, deferred.n, out));
    free(deferred.v); /* not kept: a thread's last one would outlive it */
    deferred.v = NULL;
    deferred.cap = 0;
    if (!done && deferred.n) { /* a map's label named like another label: built the plain way (targets packed) */
        target_group_free(&g);
        sd_gb_clear(&tb);
        k8s_build_group(role, key, obj, lk, &g);
    }
    deferred.g = NULL;
    deferred.tb = NULL;
    if (!done)
        sd_gb_freeze(&tb, g.source, &g.labels, out);
    sd_gb_free(&tb);
    target_group_free(&g);
}

void k8s_join_host_port(char *out, size_t len, const char *host, long long port)
{
    if (strchr(host, ':'))
        snprintf(out, len, "[%s]:%lld", host, port);
    else
        snprintf(out, len, "%s:%lld", host, port);
}

void k8s_set_int(labelset *ls, const char *name, long long v)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", v);
    labelset_set(ls, name, b);
}

void k8s_service_labels(labelset *ls, const json_t *svc)
{
    labelset_set(ls, K8S_META "service_name", k8s_str(svc, "metadata.name"));
    labelset_set(ls, K8S_META "namespace", k8s_str(svc, "metadata.namespace"));
    k8s_add_map(ls, k8s_get(svc, "metadata.labels"), K8S_META "service_label_", K8S_META "service_labelpresent_");
    k8s_add_map(ls, k8s_get(svc, "metadata.annotations"), K8S_META "service_annotation_",
                K8S_META "service_annotationpresent_");
}

void k8s_add_node_labels(labelset *ls, const k8s_lookup *lk, const char *node_name)
{
    if (!lk || !lk->attach_node || !node_name)
        return;
    const json_t *node = json_object_get(lk->nodes, node_name);
    if (!node)
        return;
    labelset_set(ls, K8S_META "node_name", node_name);
    k8s_add_map(ls, k8s_get(node, "metadata.labels"), K8S_META "node_label_", K8S_META "node_labelpresent_");
}

void k8s_build_group(k8s_role role, const char *key, const json_t *obj, const k8s_lookup *lk, target_group *g)
{
    static const char *const src_prefix[K8S_ROLE_COUNT] = {"pod", "svc", "endpoints", "endpointslice", "node",
                                                          "ingress"};
    char source[600];
    snprintf(source, sizeof source, "%s/%s", src_prefix[role], key);
    target_group_init(g, source);
    if (!obj)
        return;
    switch (role) {
    case K8S_ROLE_POD: k8s_pod_build(obj, lk, g); break;
    case K8S_ROLE_SERVICE: k8s_service_build(obj, g); break;
    case K8S_ROLE_ENDPOINTS: k8s_endpoints_build(obj, lk, g); break;
    case K8S_ROLE_ENDPOINTSLICE: k8s_endpointslice_build(obj, lk, g); break;
    case K8S_ROLE_NODE: k8s_node_build(obj, g); break;
    case K8S_ROLE_INGRESS: k8s_ingress_build(obj, g); break;
    default: break;
    }
}
