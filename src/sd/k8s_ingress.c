/* k8s_ingress: the ingress role (networking.k8s.io/v1; Prometheus ingress.go buildIngress). One target per
 * rule host and path, address = the bare host; scheme https when a TLS entry's host (or wildcard pattern)
 * covers the rule's host; a rule without http paths counts as path "/", and an empty path is "/". */
#include <stdbool.h>
#include <string.h>

#include "sd/kubernetes_internal.h"

/* matchesHostnamePattern: equal, or "*.rest" with the same number of labels and equal labels after the
 * first. */
static bool host_matches(const char *pattern, const char *host)
{
    if (strcmp(pattern, host) == 0)
        return true;
    if (strncmp(pattern, "*", 1) != 0 || (pattern[1] != '.' && pattern[1] != 0))
        return false;
    const char *pd = strchr(pattern, '.'), *hd = strchr(host, '.');
    if (!pd && !hd)
        return true; /* "*" against a host without dots: both one element */
    if (!pd || !hd)
        return false;
    return strcmp(pd, hd) == 0;
}

void k8s_ingress_build(const json_t *ing, target_group *g)
{
    labelset *ls = &g->labels;
    labelset_set(ls, K8S_META "ingress_name", k8s_str(ing, "metadata.name"));
    labelset_set(ls, K8S_META "namespace", k8s_str(ing, "metadata.namespace"));
    labelset_set(ls, K8S_META "ingress_class_name", k8s_str(ing, "spec.ingressClassName"));
    k8s_add_map(ls, k8s_get(ing, "metadata.labels"), K8S_META "ingress_label_", K8S_META "ingress_labelpresent_");
    k8s_add_map(ls, k8s_get(ing, "metadata.annotations"), K8S_META "ingress_annotation_",
                K8S_META "ingress_annotationpresent_");
    size_t i;
    json_t *rule;
    json_array_foreach(k8s_get(ing, "spec.rules"), i, rule) {
        const char *host = k8s_str(rule, "host");
        if (!host)
            host = "";
        const char *scheme = "http";
        size_t j, k;
        json_t *tls, *h;
        json_array_foreach(k8s_get(ing, "spec.tls"), j, tls) {
            json_array_foreach(json_object_get(tls, "hosts"), k, h) {
                if (json_string_value(h) && host_matches(json_string_value(h), host)) {
                    scheme = "https";
                    goto matched;
                }
            }
        }
    matched:;
        const json_t *paths = k8s_get(rule, "http.paths");
        size_t np = json_is_array(paths) ? json_array_size(paths) : 0;
        for (size_t p = 0; p < (paths ? np : 1); p++) {
            const char *path = paths ? k8s_str(json_array_get(paths, p), "path") : NULL;
            if (!path || !*path)
                path = "/";
            labelset t = LABELSET_INIT;
            labelset_set(&t, "__address__", host);
            labelset_set(&t, K8S_META "ingress_scheme", scheme);
            labelset_set(&t, K8S_META "ingress_host", host);
            labelset_set(&t, K8S_META "ingress_path", path);
            k8s_add_target(g, &t);
            labelset_free(&t);
        }
    }
}
