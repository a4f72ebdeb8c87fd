/* k8s_pod: the pod role (Prometheus discovery/kubernetes/pod.go, buildPod and podLabels). One group per pod,
 * source pod/NAMESPACE/NAME; a pod without an IP has no targets (the empty group removes it). Targets: one
 * per declared container port (address podIP:port) or one per container without ports (address podIP),
 * regular containers first, then init containers. */
#include <stdio.h>
#include <string.h>

#include "sd/kubernetes_internal.h"

/* podReady: the Ready condition's status lower-cased, "unknown" without one. */
static void pod_ready(const json_t *pod, char *out, size_t len)
{
    size_t i;
    json_t *c;
    snprintf(out, len, "unknown");
    json_array_foreach(k8s_get(pod, "status.conditions"), i, c) {
        const char *t = k8s_str(c, "type"), *s = k8s_str(c, "status");
        if (t && strcmp(t, "Ready") == 0) {
            snprintf(out, len, "%s", s ? s : "");
            for (char *p = out; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
            return;
        }
    }
}

void k8s_pod_labels(labelset *ls, const json_t *pod)
{
    char ready[32];
    pod_ready(pod, ready, sizeof ready);
    labelset_set(ls, K8S_META "pod_name", k8s_str(pod, "metadata.name"));
    labelset_set(ls, K8S_META "pod_ip", k8s_str(pod, "status.podIP"));
    labelset_set(ls, K8S_META "pod_ready", ready);
    labelset_set(ls, K8S_META "pod_phase", k8s_str(pod, "status.phase"));
    labelset_set(ls, K8S_META "pod_node_name", k8s_str(pod, "spec.nodeName"));
    labelset_set(ls, K8S_META "pod_host_ip", k8s_str(pod, "status.hostIP"));
    labelset_set(ls, K8S_META "pod_uid", k8s_str(pod, "metadata.uid"));
    size_t i;
    json_t *ref;
    json_array_foreach(k8s_get(pod, "metadata.ownerReferences"), i, ref) {
        if (json_is_true(json_object_get(ref, "controller"))) {
            labelset_set(ls, K8S_META "pod_controller_kind", k8s_str(ref, "kind"));
            labelset_set(ls, K8S_META "pod_controller_name", k8s_str(ref, "name"));
            break;
        }
    }
    k8s_add_map(ls, k8s_get(pod, "metadata.labels"), K8S_META "pod_label_", K8S_META "pod_labelpresent_");
    k8s_add_map(ls, k8s_get(pod, "metadata.annotations"), K8S_META "pod_annotation_",
                K8S_META "pod_annotationpresent_");
}

static const char *container_id(const json_t *statuses, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(statuses, i, s) {
        const char *n = k8s_str(s, "name");
        if (n && name && strcmp(n, name) == 0)
            return k8s_str(s, "containerID");
    }
    return NULL;
}

static void add_containers(target_group *g, const json_t *containers, const json_t *statuses, const char *ip,
                           bool init)
{
    size_t i;
    json_t *c;
    json_array_foreach(containers, i, c) {
        const char *name = k8s_str(c, "name");
        const json_t *ports = json_object_get(c, "ports");
        labelset t = LABELSET_INIT;
        labelset_set(&t, K8S_META "pod_container_name", name);
        labelset_set(&t, K8S_META "pod_container_id", container_id(statuses, name));
        labelset_set(&t, K8S_META "pod_container_image", k8s_str(c, "image"));
        labelset_set(&t, K8S_META "pod_container_init", init ? "true" : "false");
        if (json_array_size(ports) == 0) {
            labelset_set(&t, "__address__", ip);
            k8s_add_target(g, &t);
            labelset_free(&t);
            continue;
        }
        size_t j;
        json_t *p;
        json_array_foreach(ports, j, p) {
            long long port = json_integer_value(json_object_get(p, "containerPort"));
            char addr[300];
            k8s_join_host_port(addr, sizeof addr, ip, port);
            labelset pt;
            labelset_copy(&pt, &t);
            labelset_set(&pt, "__address__", addr);
            k8s_set_int(&pt, K8S_META "pod_container_port_number", port);
            labelset_set(&pt, K8S_META "pod_container_port_name", k8s_str(p, "name"));
            labelset_set(&pt, K8S_META "pod_container_port_protocol", k8s_str(p, "protocol"));
            k8s_add_target(g, &pt);
            labelset_free(&pt);
        }
        labelset_free(&t);
    }
}

void k8s_pod_build(const json_t *pod, const k8s_lookup *lk, target_group *g)
{
    const char *ip = k8s_str(pod, "status.podIP");
    if (!ip || !*ip)
        return; /* starting or evicted: no targets, the group is removed */
    k8s_pod_labels(&g->labels, pod);
    labelset_set(&g->labels, K8S_META "namespace", k8s_str(pod, "metadata.namespace"));
    k8s_add_node_labels(&g->labels, lk, k8s_str(pod, "spec.nodeName"));
    add_containers(g, k8s_get(pod, "spec.containers"), k8s_get(pod, "status.containerStatuses"), ip, false);
    add_containers(g, k8s_get(pod, "spec.initContainers"), k8s_get(pod, "status.initContainerStatuses"), ip, true);
}
