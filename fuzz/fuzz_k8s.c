/* fuzz_k8s: the Kubernetes watch stream as the provider consumes it. Input: the first byte picks the role,
 * the rest is newline-separated watch events ({"type":...,"object":{...}}). Each event is decoded, keyed
 * and pruned (k8s_object_key, k8s_slim) into a per-kind store like kubernetes.c's store_apply (the object's
 * "kind" picks the store; default: the role's own), then every primary object's group is built with the
 * other stores as lookups (k8s_build_group), and deleted objects build their empty group. */
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

static void build(k8s_role role, const char *key, const json_t *obj, const k8s_lookup *lk)
{
    target_group g;
    k8s_build_group(role, key, obj, lk, &g);
    target_group_free(&g);
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
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        json_error_t jerr;
        json_t *ev = n ? json_loadb(p, n, 0, &jerr) : NULL;
        p += n + 1;
        if (!ev)
            continue;
        const char *type = k8s_str(ev, "type");
        json_t *obj = json_object_get(ev, "object");
        if (type && json_is_object(obj)) {
            k8s_kind kind = kind_of(obj, role);
            char *key = k8s_object_key(obj);
            if (key) {
                if (strcmp(type, "DELETED") == 0) {
                    json_object_del(store[kind], key);
                    if (kind == role)
                        build(role, key, NULL, &lk);
                } else {
                    json_t *slim = k8s_slim(kind, obj);
                    if (slim)
                        json_object_set_new(store[kind], key, slim);
                    /* Builders accept full objects as well as pruned ones. */
                    if (kind == role)
                        build(role, key, obj, &lk);
                }
                free(key);
            }
        }
        json_decref(ev);
    }
    const char *k;
    json_t *o;
    json_object_foreach(store[role], k, o) build(role, k, o, &lk);
    for (int i = 0; i < K8S_ROLE_COUNT; i++)
        json_decref(store[i]);
    return 0;
}
