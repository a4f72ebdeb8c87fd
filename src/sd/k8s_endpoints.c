/* k8s_endpoints: the endpoints role (Prometheus endpoints.go buildEndpoints) and the pod-join both endpoint
 * roles share. Per subset and port: ready addresses (_endpoint_ready="true"), then not-ready ones ("false").
 * An address whose targetRef is a known pod gets the pod's labels and, when a container port has the
 * endpoint port's number, that container's labels; afterwards every container port of such a pod that no
 * endpoint port covered becomes one more target (pod and container labels only). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sd/kubernetes_internal.h"
#include "sd/kubernetes_join.h"

/* The pod a targetRef (its kind, name and namespace) names, NULL when it is not a known pod. */
static const json_t *resolve_pod(const k8s_lookup *lk, const char *kind, const char *name, const char *ns)
{
    if (!lk || !kind || strcmp(kind, "Pod") != 0 || !name)
        return NULL;
    char key[600];
    snprintf(key, sizeof key, "%s/%s", ns ? ns : "", name);
    return json_object_get(lk->pods, key);
}

const json_t *k8s_resolve_pod(const k8s_lookup *lk, const json_t *ref)
{
    return resolve_pod(lk, k8s_str(ref, "kind"), k8s_str(ref, "name"), k8s_str(ref, "namespace"));
}

void k8s_seen_pod_port(k8s_seen_pods *s, const json_t *pod, const json_t *port)
{
    size_t i;
    for (i = 0; i < s->n; i++)
        if (s->v[i].pod == pod)
            break;
    if (i == s->n) {
        s->v = realloc(s->v, (s->n + 1) * sizeof *s->v);
        if (!s->v)
            abort();
        memset(&s->v[i], 0, sizeof s->v[i]);
        s->v[i].pod = pod;
        s->n++;
    }
    k8s_seen_pod *sp = &s->v[i];
    sp->ports = realloc(sp->ports, (sp->n_ports + 1) * sizeof *sp->ports);
    if (!sp->ports)
        abort();
    sp->ports[sp->n_ports++] = port ? json_integer_value(port) : -1;
}

/* Container labels of the container port matching `port` (first match per container). */
void k8s_match_container_port(labelset *t, const json_t *pod, long long port, const char *protocol_override)
{
    size_t i, j;
    json_t *c, *cp;
    json_array_foreach(k8s_get(pod, "spec.containers"), i, c) {
        json_array_foreach(json_object_get(c, "ports"), j, cp) {
            if (json_integer_value(json_object_get(cp, "containerPort")) == port) {
                labelset_set(t, K8S_META "pod_container_name", k8s_str(c, "name"));
                labelset_set(t, K8S_META "pod_container_image", k8s_str(c, "image"));
                labelset_set(t, K8S_META "pod_container_port_name", k8s_str(cp, "name"));
                k8s_set_int(t, K8S_META "pod_container_port_number", port);
                labelset_set(t, K8S_META "pod_container_port_protocol",
                             protocol_override ? protocol_override : k8s_str(cp, "protocol"));
                break;
            }
        }
    }
}

void k8s_seen_pods_finish(k8s_seen_pods *s, target_group *g)
{
    for (size_t k = 0; k < s->n; k++) {
        const json_t *pod = s->v[k].pod;
        const char *ip = k8s_str(pod, "status.podIP");
        size_t i, j;
        json_t *c, *cp;
        json_array_foreach(k8s_get(pod, "spec.containers"), i, c) {
            json_array_foreach(json_object_get(c, "ports"), j, cp) {
                long long port = json_integer_value(json_object_get(cp, "containerPort"));
                bool seen = false;
                for (size_t x = 0; x < s->v[k].n_ports && !seen; x++)
                    seen = s->v[k].ports[x] == port;
                if (seen)
                    continue;
                char addr[300];
                k8s_join_host_port(addr, sizeof addr, ip ? ip : "", port);
                labelset t = LABELSET_INIT;
                labelset_set(&t, "__address__", addr);
                labelset_set(&t, K8S_META "pod_container_name", k8s_str(c, "name"));
                labelset_set(&t, K8S_META "pod_container_image", k8s_str(c, "image"));
                labelset_set(&t, K8S_META "pod_container_port_name", k8s_str(cp, "name"));
                k8s_set_int(&t, K8S_META "pod_container_port_number", port);
                labelset_set(&t, K8S_META "pod_container_port_protocol", k8s_str(cp, "protocol"));
                k8s_pod_labels(&t, pod);
                k8s_add_target(g, &t);
                labelset_free(&t);
            }
        }
        free(s->v[k].ports);
    }
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

static void add_address(target_group *g, const k8s_addr *addr, const json_t *port, const char *ready,
                        const k8s_lookup *lk, k8s_seen_pods *seen)
{
    char a[300];
    long long pn = json_integer_value(json_object_get(port, "port"));
    k8s_join_host_port(a, sizeof a, addr->ip ? addr->ip : "", pn);
    labelset t = LABELSET_INIT;
    labelset_set(&t, "__address__", a);
    labelset_set(&t, K8S_META "endpoint_port_name", k8s_str(port, "name"));
    labelset_set(&t, K8S_META "endpoint_port_protocol", k8s_str(port, "protocol"));
    labelset_set(&t, K8S_META "endpoint_ready", ready);
    labelset_set(&t, K8S_META "endpoint_address_target_kind", addr->ref_kind);
    labelset_set(&t, K8S_META "endpoint_address_target_name", addr->ref_name);
    labelset_set(&t, K8S_META "endpoint_node_name", addr->node_name);
    labelset_set(&t, K8S_META "endpoint_hostname", addr->hostname);
    k8s_add_node_labels(&t, lk, addr->node_name);
    const json_t *pod = resolve_pod(lk, addr->ref_kind, addr->ref_name, addr->ref_ns);
    if (pod) {
        k8s_seen_pod_port(seen, pod, json_object_get(port, "port"));
        k8s_pod_labels(&t, pod);
        k8s_match_container_port(&t, pod, pn, k8s_str(port, "protocol"));
    }
    k8s_add_target(g, &t);
    labelset_free(&t);
}

void k8s_endpoints_build(const json_t *eps, const k8s_lookup *lk, target_group *g)
{
    const char *ns = k8s_str(eps, "metadata.namespace"), *name = k8s_str(eps, "metadata.name");
    labelset_set(&g->labels, K8S_META "namespace", ns);
    labelset_set(&g->labels, K8S_META "endpoints_name", name);
    if (lk && ns && name) {
        char key[600];
        snprintf(key, sizeof key, "%s/%s", ns, name);
        const json_t *svc = json_object_get(lk->services, key);
        if (svc)
            k8s_service_labels(&g->labels, svc);
    }
    k8s_add_map(&g->labels, k8s_get(eps, "metadata.labels"), K8S_META "endpoints_label_",
                K8S_META "endpoints_labelpresent_");
    k8s_seen_pods seen = {0};
    size_t i, j, pos;
    json_t *ss, *port;
    k8s_addr addr;
    json_array_foreach(json_object_get(eps, "subsets"), i, ss) {
        json_array_foreach(json_object_get(ss, "ports"), j, port) {
            for (pos = 0; k8s_addr_next(json_object_get(ss, "addresses"), &pos, &addr);)
                add_address(g, &addr, port, "true", lk, &seen);
            for (pos = 0; k8s_addr_next(json_object_get(ss, "notReadyAddresses"), &pos, &addr);)
                add_address(g, &addr, port, "false", lk, &seen);
        }
    }
    k8s_seen_pods_finish(&seen, g);
}
