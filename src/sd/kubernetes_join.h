/* kubernetes_join: the pod join shared by the endpoints and endpointslice roles (k8s_endpoints.c). */
#ifndef LOOKOUT_SD_KUBERNETES_JOIN_H
#define LOOKOUT_SD_KUBERNETES_JOIN_H
#include "sd/kubernetes_internal.h"

/* Pods met while building one group, in first-seen order, with the endpoint port numbers they served. */
typedef struct k8s_seen_pod {
    const json_t *pod;
    long long *ports; /* -1 for an endpoint port without a number */
    size_t n_ports;
} k8s_seen_pod;

typedef struct k8s_seen_pods {
    k8s_seen_pod *v;
    size_t n;
} k8s_seen_pods;

/* The pod a targetRef names (kind Pod, namespace/name), from lk->pods; NULL otherwise. */
const json_t *k8s_resolve_pod(const k8s_lookup *lk, const json_t *ref);
void k8s_seen_pod_port(k8s_seen_pods *s, const json_t *pod, const json_t *port);
/* protocol_override: the endpoints role labels the container port with the endpoint port's protocol. */
void k8s_match_container_port(labelset *t, const json_t *pod, long long port, const char *protocol_override);
/* Appends a target for every container port of a seen pod that no endpoint port covered; frees s. */
void k8s_seen_pods_finish(k8s_seen_pods *s, target_group *g);

#endif
