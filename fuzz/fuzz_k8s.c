/* fuzz_k8s: the Kubernetes watch stream as the provider consumes it. Input: the first byte picks the role,
 * the rest is newline-separated watch events ({"type":...,"object":{...}}). Each event is decoded by the
 * streaming parser (k8s_json_parse, K8S_DOC_EVENT), keyed and pruned (k8s_object_key, k8s_slim)
 * into a per-kind store like kubernetes.c's store_apply (the object's "kind" picks the store; default: the
 * role's own), then every primary object's group is built with the other stores as lookups
 * (k8s_build_group), and deleted objects build their empty group; each group is also built frozen
 * (k8s_build_group_frozen, its maps written once into an arena) and must equal the plain one.
 * Differential: every line, and a one-line input as a list page too, is also parsed by jansson (once) and
 * pruned (k8s_doc_prune): the streaming parser must accept exactly what jansson accepts and keep the same
 * values (abort() otherwise, so libFuzzer reports the input). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sd/kubernetes_internal.h"

static k8s_kind kind_of(const json_t *obj, k8s_role role)
{
    static const char *const names[K8S_ROLE_COUNT] = {
        [K8S_ROLE_POD] = "Pod",           [K8S_ROLE_SERVICE] = "Service",
        [K8S_ROLE_ENDPOINTS] = "Endpoints", [K8S_ROLE_ENDPOINTSLICE] = "EndpointSlice",
        [K8S_ROLE_NODE] = "Node",         [K8S_ROLE_INGRESS] = "Ingress",
    };
    const char *k = json_string_value(json_object_get(obj, "kind"));
    for (int i = 0; k && i < K8S_ROLE_COUNT; i++)
        if (strcmp(k, names[i]) == 0)
            return (k8s_kind)i;
    return role;
}

/* jansson + k8s_prune vs the streaming parser on one document: tree is json_loadb(p, n, 0) (NULL when
 * jansson refused it; parsed once by the caller, which reads it too), the streaming result is returned. */
static json_t *parse_both(k8s_kind kind, k8s_doc doc, const char *p, size_t n, const json_t *tree)
{
    json_t *want = tree ? k8s_doc_prune(kind, doc, tree) : NULL;
    json_t *got = NULL;
    char err[256];
    int rc = k8s_json_parse(kind, doc, p, n, (size_t)-1, &got, err, sizeof err);
    if ((tree != NULL) != (rc == 0) || (want != NULL) != (got != NULL) || (want && !json_equal(want, got)))
        abort();
    json_decref(want);
    return got;
}

/* Builds the group both ways: plain, and frozen with its maps kept packed (what the informer sends); any
 * difference aborts. */
static void build(k8s_role role, const char *key, const json_t *obj, const k8s_lookup *lk)
{
    target_group g, fz;
    k8s_build_group(role, key, obj, lk, &g);
    k8s_build_group_frozen(role, key, obj, lk, &fz);
    /* the frozen group keeps its maps packed: its labels read through their view, every way they are read */
    label_view pv = label_view_of(&g.labels), fv = target_group_labels(&fz);
    if (strcmp(g.source, fz.source) != 0 || !label_view_equal(&pv, &fv) || g.n_targets != fz.n_targets ||
        label_view_hash(&fv) != labelset_hash(&g.labels) || label_view_count(&fv) != g.labels.n)
        abort();
    for (size_t i = 0; i < g.labels.n; i++) {
        const char *v = label_view_get(&fv, g.labels.v[i].name);
        if (!v || strcmp(v, g.labels.v[i].value) != 0)
            abort();
    }
    for (size_t i = 0; i < g.n_targets; i++)
        if (!labelset_equal(&g.targets[i], &fz.targets[i]))
            abort();
    target_group_free(&g);
    target_group_free(&fz);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 256 * 1024)
        return 0;
    k8s_role role = (k8s_role)(data[0] % K8S_ROLE_COUNT);
    bool attach_node = data[0] & 0x80;
    json_t *store[K8S_ROLE_COUNT];
    for (int i = 0; i < K8S_ROLE_COUNT; i++)
        store[i] = json_object();
    k8s_lookup lk = {store[K8S_ROLE_POD], store[K8S_ROLE_SERVICE], store[K8S_ROLE_NODE], attach_node};

    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    /* One line: also a list page. Several lines would fail as a page after the first (trailing garbage),
     * having parsed the first line twice more for a check the one-line inputs make. */
    if (!memchr(p, '\n', size - 1)) {
        json_t *tree = json_loadb(p, size - 1, 0, NULL);
        json_decref(parse_both(role, K8S_DOC_PAGE, p, size - 1, tree));
        json_decref(tree);
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        json_t *full = n ? json_loadb(p, n, 0, NULL) : NULL;
        k8s_kind kind = kind_of(json_object_get(full, "object"), role);
        json_t *ev = n ? parse_both(kind, K8S_DOC_EVENT, p, n, full) : NULL;
        p += n + 1;
        const char *type = k8s_str(ev, "type");
        json_t *obj = json_object_get(ev, "object");
        if (type && json_is_object(obj)) {
            char *key = k8s_object_key(obj);
            if (key) {
                if (strcmp(type, "DELETED") == 0) {
                    json_object_del(store[kind], key);
                    if (kind == role)
                        build(role, key, NULL, &lk);
                } else {
                    /* as kubernetes.c's handle_event: the event's object without what the event template
                     * adds is the slim object */
                    json_t *slim = k8s_slim(kind, json_object_get(full, "object"));
                    json_object_del(obj, "code");
                    json_object_del(obj, "message");
                    if (kind == K8S_ROLE_NODE)
                        json_object_del(json_object_get(obj, "metadata"), "namespace");
                    if (!slim || !json_equal(slim, obj))
                        abort();
                    json_decref(slim);
                    json_object_set(store[kind], key, obj);
                    /* Builders accept full objects as well as pruned ones. */
                    if (kind == role)
                        build(role, key, json_object_get(full, "object"), &lk);
                }
                free(key);
            }
        }
        json_decref(full);
        json_decref(ev);
    }
    const char *k;
    json_t *o;
    json_object_foreach(store[role], k, o) build(role, k, o, &lk);
    for (int i = 0; i < K8S_ROLE_COUNT; i++)
        json_decref(store[i]);
    return 0;
}
