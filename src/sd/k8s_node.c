/* k8s_node: the node role (Prometheus node.go buildNode). One target per node: the first address by type
 * priority (InternalIP, InternalDNS, ExternalIP, ExternalDNS, LegacyHostIP, Hostname, whatever the list
 * order) with the kubelet port; instance = node name; one _node_address_<type> label per type (its first
 * address). A node without any address has no target. */
#include <stdio.h>
#include <string.h>

#include "sd/kubernetes_internal.h"

static void node_labels(labelset *ls, const json_t *node)
{
    labelset_set(ls, K8S_META "node_name", k8s_str(node, "metadata.name"));
    labelset_set(ls, K8S_META "node_provider_id", k8s_str(node, "spec.providerID"));
    k8s_add_map(ls, k8s_get(node, "metadata.labels"), K8S_META "node_label_", K8S_META "node_labelpresent_");
    k8s_add_map(ls, k8s_get(node, "metadata.annotations"), K8S_META "node_annotation_",
                K8S_META "node_annotationpresent_");
}

static const char *first_of_type(const json_t *addrs, const char *type)
{
    size_t i;
    json_t *a;
    json_array_foreach(addrs, i, a) {
        const char *t = k8s_str(a, "type");
        if (t && strcmp(t, type) == 0)
            return k8s_str(a, "address");
    }
    return NULL;
}

void k8s_node_build(const json_t *node, target_group *g)
{
    static const char *const priority[] = {"InternalIP", "InternalDNS", "ExternalIP", "ExternalDNS",
                                           "LegacyHostIP", "Hostname"};
    node_labels(&g->labels, node);
    const json_t *addrs = k8s_get(node, "status.addresses");
    const char *host = NULL;
    for (size_t i = 0; i < sizeof priority / sizeof *priority && !host; i++)
        host = first_of_type(addrs, priority[i]);
    if (!host)
        return; /* Prometheus logs "No node address found" and sends nothing */
    char addr[600];
    k8s_join_host_port(addr, sizeof addr, host,
                       json_integer_value(k8s_get(node, "status.daemonEndpoints.kubeletEndpoint.Port")));
    labelset t = LABELSET_INIT;
    labelset_set(&t, "__address__", addr);
    labelset_set(&t, "instance", k8s_str(node, "metadata.name"));
    size_t i;
    json_t *a;
    json_array_foreach(addrs, i, a) {
        const char *type = k8s_str(a, "type");
        if (!type)
            continue;
        char name[300];
        snprintf(name, sizeof name, K8S_META "node_address_%s", type);
        k8s_sanitize(name);
        if (!labelset_get(&t, name))
            labelset_set(&t, name, k8s_str(a, "address"));
    }
    k8s_add_target(g, &t);
    labelset_free(&t);
}
