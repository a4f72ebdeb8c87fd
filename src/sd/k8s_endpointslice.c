/* k8s_endpointslice: the endpointslice role (discovery.k8s.io/v1; Prometheus endpointslice.go
 * buildEndpointSlice). Per endpoint, per port, per address; conditions, hostname, targetRef and
 * deprecatedTopology labels only when set; the owning service comes from the kubernetes.io/service-name
 * label. Container port labels use the container port's own protocol. */
#include <stdio.h>
#include <string.h>

#include "sd/kubernetes_internal.h"
#include "sd/kubernetes_join.h"

static void set_bool(labelset *t, const char *name, const json_t *v)
{
    if (json_is_boolean(v))
        labelset_set(t, name, json_is_true(v) ? "true" : "false");
}

void k8s_endpointslice_build(const json_t *eps, const k8s_lookup *lk, target_group *g)
{
    const char *ns = k8s_str(eps, "metadata.namespace");
    labelset_set(&g->labels, K8S_META "namespace", ns);
    labelset_set(&g->labels, K8S_META "endpointslice_name", k8s_str(eps, "metadata.name"));
    labelset_set(&g->labels, K8S_META "endpointslice_address_type", k8s_str(eps, "addressType"));
    const json_t *labels = k8s_get(eps, "metadata.labels");
    const char *svc_name = k8s_map_get(labels, "kubernetes.io/service-name");
    if (lk && svc_name) {
        char key[600];
        snprintf(key, sizeof key, "%s/%s", ns ? ns : "", svc_name);
        const json_t *svc = json_object_get(lk->services, key);
        if (svc)
            k8s_service_labels(&g->labels, svc);
    }
    k8s_seen_pods seen = {0};
    size_t i, j, k;
    json_t *ep, *port, *addr;
    json_array_foreach(json_object_get(eps, "endpoints"), i, ep) {
        json_array_foreach(json_object_get(eps, "ports"), j, port) {
            json_array_foreach(json_object_get(ep, "addresses"), k, addr) {
                const char *ip = json_string_value(addr);
                const json_t *pnum = json_object_get(port, "port");
                char a[300];
                if (json_is_integer(pnum))
                    k8s_join_host_port(a, sizeof a, ip ? ip : "", json_integer_value(pnum));
                else
                    snprintf(a, sizeof a, "%s", ip ? ip : "");
                labelset t = LABELSET_INIT;
                labelset_set(&t, "__address__", a);
                labelset_set(&t, K8S_META "endpointslice_port_name", k8s_str(port, "name"));
                labelset_set(&t, K8S_META "endpointslice_port_protocol", k8s_str(port, "protocol"));
                if (json_is_integer(pnum))
                    k8s_set_int(&t, K8S_META "endpointslice_port", json_integer_value(pnum));
                labelset_set(&t, K8S_META "endpointslice_port_app_protocol", k8s_str(port, "appProtocol"));
                set_bool(&t, K8S_META "endpointslice_endpoint_conditions_ready", k8s_get(ep, "conditions.ready"));
                set_bool(&t, K8S_META "endpointslice_endpoint_conditions_serving",
                         k8s_get(ep, "conditions.serving"));
                set_bool(&t, K8S_META "endpointslice_endpoint_conditions_terminating",
                         k8s_get(ep, "conditions.terminating"));
                labelset_set(&t, K8S_META "endpointslice_endpoint_hostname", k8s_str(ep, "hostname"));
                const json_t *ref = json_object_get(ep, "targetRef");
                if (ref) {
                    labelset_set(&t, K8S_META "endpointslice_address_target_kind", k8s_str(ref, "kind"));
                    labelset_set(&t, K8S_META "endpointslice_address_target_name", k8s_str(ref, "name"));
                }
                k8s_add_map(&t, json_object_get(ep, "deprecatedTopology"), K8S_META "endpointslice_endpoint_topology_",
                            K8S_META "endpointslice_endpoint_topology_present_");
                k8s_add_node_labels(&t, lk, k8s_str(ep, "nodeName"));
                const json_t *pod = k8s_resolve_pod(lk, ref);
                if (pod) {
                    k8s_seen_pod_port(&seen, pod, json_is_integer(pnum) ? pnum : NULL);
                    k8s_pod_labels(&t, pod);
                    if (json_is_integer(pnum))
                        k8s_match_container_port(&t, pod, json_integer_value(pnum), NULL);
                }
                k8s_add_target(g, &t);
                labelset_free(&t);
            }
        }
    }
    k8s_seen_pods_finish(&seen, g);
}
