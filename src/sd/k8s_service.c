/* k8s_service: the service role (Prometheus service.go buildService). One target per service port, address
 * NAME.NAMESPACE.svc:PORT; cluster IP, or external name for ExternalName services; load balancer IP for
 * LoadBalancer services. */
#include <stdio.h>
#include <string.h>

#include "sd/kubernetes_internal.h"

void k8s_service_build(const json_t *svc, target_group *g)
{
    k8s_service_labels(&g->labels, svc);
    const char *name = k8s_str(svc, "metadata.name"), *ns = k8s_str(svc, "metadata.namespace");
    const char *type = k8s_str(svc, "spec.type");
    size_t i;
    json_t *p;
    json_array_foreach(k8s_get(svc, "spec.ports"), i, p) {
        long long port = json_integer_value(json_object_get(p, "port"));
        char host[600], addr[700];
        snprintf(host, sizeof host, "%s.%s.svc", name ? name : "", ns ? ns : "");
        k8s_join_host_port(addr, sizeof addr, host, port);
        labelset t = LABELSET_INIT;
        labelset_set(&t, "__address__", addr);
        labelset_set(&t, K8S_META "service_port_name", k8s_str(p, "name"));
        k8s_set_int(&t, K8S_META "service_port_number", port);
        labelset_set(&t, K8S_META "service_port_protocol", k8s_str(p, "protocol"));
        labelset_set(&t, K8S_META "service_type", type);
        if (type && strcmp(type, "ExternalName") == 0)
            labelset_set(&t, K8S_META "service_external_name", k8s_str(svc, "spec.externalName"));
        else
            labelset_set(&t, K8S_META "service_cluster_ip", k8s_str(svc, "spec.clusterIP"));
        if (type && strcmp(type, "LoadBalancer") == 0)
            labelset_set(&t, K8S_META "service_loadbalancer_ip", k8s_str(svc, "spec.loadBalancerIP"));
        k8s_add_target(g, &t);
        labelset_free(&t);
    }
}
