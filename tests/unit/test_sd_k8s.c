/* Unit tests for Kubernetes SD: label generation per role from fixture objects (the cases of Prometheus'
 * pod_test.go, service_test.go, endpoints_test.go, endpointslice_test.go, node_test.go, ingress_test.go,
 * as data in tests/fixtures/kubernetes/cases), pruning (a pruned object builds the same group and has no
 * managedFields/env), configuration rules, kubeconfig and in-cluster connection resolution. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "scrape/target.h"
#include "scrape/targets.h"
#include "sd/cache.h"
#include "sd/kubernetes_internal.h"

#define CASES "tests/fixtures/kubernetes/cases"

static k8s_role role_of(const char *s)
{
    static const char *const names[] = {"pod", "service", "endpoints", "endpointslice", "node", "ingress"};
    for (int i = 0; i < K8S_ROLE_COUNT; i++)
        if (strcmp(s, names[i]) == 0)
            return (k8s_role)i;
    cr_assert_fail("unknown role %s", s);
    return K8S_ROLE_POD;
}

static json_t *store_of(const json_t *list, k8s_kind kind, bool slim)
{
    json_t *o = json_object();
    size_t i;
    json_t *x;
    json_array_foreach(list, i, x) {
        json_t *v = slim ? k8s_slim(kind, x) : json_incref(x);
        char *k = k8s_object_key(x);
        json_object_set_new(o, k, v);
        free(k);
    }
    return o;
}

/* A frozen group's labels read through its view (maps kept packed) are exactly the plain group's: the same
 * iteration, lookups (and none of a name it lacks), count, hash and expanded copy. */
static bool same_view_labels(const target_group *plain, const target_group *fz)
{
    label_view v = target_group_labels(fz), pv = label_view_of(&plain->labels);
    if (!label_view_equal(&pv, &v) || !label_view_equal(&v, &pv))
        return false;
    if (label_view_count(&v) != plain->labels.n || label_view_hash(&v) != labelset_hash(&plain->labels))
        return false;
    for (size_t i = 0; i < plain->labels.n; i++) {
        const char *x = label_view_get(&v, plain->labels.v[i].name);
        if (!x || strcmp(x, plain->labels.v[i].value) != 0)
            return false;
        char absent[300]; /* a name between two of the group's: nothing */
        snprintf(absent, sizeof absent, "%s_", plain->labels.v[i].name);
        if (!labelset_get(&plain->labels, absent) && label_view_get(&v, absent))
            return false;
    }
    labelset c;
    label_view_copy(&c, &v);
    bool eq = labelset_equal(&c, &plain->labels);
    labelset_free(&c);
    return eq;
}

static void assert_labels(const labelset *got, const json_t *want, const char *what)
{
    cr_assert_eq(got->n, json_object_size(want), "%s: %zu labels, want %zu", what, got->n, json_object_size(want));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)want, k, v) {
        const char *g = labelset_get(got, k);
        cr_assert(g && strcmp(g, json_string_value(v)) == 0, "%s: %s=%s, want %s", what, k, g ? g : "(absent)",
                  json_string_value(v));
    }
}

static void run_case(const char *file, bool slim)
{
    char path[512];
    snprintf(path, sizeof path, CASES "/%s", file);
    json_error_t je;
    json_t *c = json_load_file(path, 0, &je);
    cr_assert_not_null(c, "%s: %s", path, je.text);
    k8s_role role = role_of(json_string_value(json_object_get(c, "role")));
    json_t *pods = store_of(json_object_get(c, "pods"), K8S_ROLE_POD, slim);
    json_t *svcs = store_of(json_object_get(c, "services"), K8S_ROLE_SERVICE, slim);
    json_t *nodes = store_of(json_object_get(c, "nodes"), K8S_ROLE_NODE, slim);
    k8s_lookup lk = {pods, svcs, nodes, json_is_true(json_object_get(c, "attach_node"))};
    json_t *obj = json_object_get(c, "object");
    json_t *o = slim ? k8s_slim(role, obj) : json_incref(obj);
    cr_assert_not_null(o);
    char *key = k8s_object_key(o);
    target_group g, fz;
    k8s_build_group(role, key, o, &lk, &g);
    k8s_build_group_frozen(role, key, o, &lk, &fz); /* what the informer sends: the same group, frozen */
    cr_assert_neq(fz.gen, 0);
    json_t *want = json_object_get(c, "expected");
    for (int pass = 0; pass < 2; pass++) {
        const target_group *x = pass ? &fz : &g;
        cr_assert_str_eq(x->source, json_string_value(json_object_get(want, "source")), "%s", file);
        labelset xl; /* the frozen group's maps are kept packed: its labels read through their view */
        label_view xv = target_group_labels(x);
        label_view_copy(&xl, &xv);
        assert_labels(&xl, json_object_get(want, "labels"), file);
        labelset_free(&xl);
        json_t *wt = json_object_get(want, "targets");
        cr_assert_eq(x->n_targets, json_array_size(wt), "%s: %zu targets, want %zu", file, x->n_targets,
                     json_array_size(wt));
        for (size_t i = 0; i < x->n_targets; i++) {
            char what[600];
            snprintf(what, sizeof what, "%s%s target %zu (%s)", file, pass ? " frozen" : "", i,
                     labelset_get(&x->targets[i], "__address__"));
            assert_labels(&x->targets[i], json_array_get(wt, i), what);
        }
    }
    target_group_free(&g);
    target_group_free(&fz);
    free(key);
    json_decref(o);
    json_decref(pods);
    json_decref(svcs);
    json_decref(nodes);
    json_decref(c);
}

static void run_all(bool slim)
{
    DIR *d = opendir(CASES);
    cr_assert_not_null(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".json"))
            continue;
        run_case(e->d_name, slim);
        n++;
    }
    closedir(d);
    cr_assert_geq(n, 11, "only %d cases ran", n);
}

Test(k8s_labels, fixture_cases_full_objects) { run_all(false); }
Test(k8s_labels, fixture_cases_pruned_objects) { run_all(true); }

Test(k8s_labels, deleted_object_is_empty_group)
{
    target_group g;
    k8s_build_group(K8S_ROLE_POD, "ns/p", NULL, NULL, &g);
    cr_assert_str_eq(g.source, "pod/ns/p");
    cr_assert_eq(g.n_targets, 0);
    cr_assert_eq(g.labels.n, 0);
    target_group_free(&g);
    k8s_build_group(K8S_ROLE_SERVICE, "ns/s", NULL, NULL, &g);
    cr_assert_str_eq(g.source, "svc/ns/s");
    target_group_free(&g);
}

Test(k8s_labels, pruning_drops_unneeded_fields)
{
    json_t *full = json_loads("{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"managedFields\":[{\"a\":1}],"
                              "\"labels\":{\"a.b/c\":\"x\"}},\"spec\":{\"volumes\":[{}],\"containers\":[{\"name\":\"c\","
                              "\"env\":[{\"name\":\"SECRET\",\"value\":\"s\"}],\"args\":[\"x\"],\"ports\":[{\"containerPort\":1}]}]},"
                              "\"status\":{\"podIP\":\"1.1.1.1\",\"qosClass\":\"Burstable\"}}",
                              0, NULL);
    json_t *s = k8s_slim(K8S_ROLE_POD, full);
    char *dump = json_dumps(s, JSON_COMPACT);
    cr_assert_null(strstr(dump, "managedFields"));
    cr_assert_null(strstr(dump, "SECRET"));
    cr_assert_null(strstr(dump, "volumes"));
    cr_assert_null(strstr(dump, "qosClass"));
    cr_assert_not_null(strstr(dump, "a.b/c"));
    free(dump);
    cr_assert_null(k8s_slim(K8S_ROLE_POD, json_object_get(full, "spec")), "an object without a name is refused");
    json_decref(s);
    json_decref(full);
}

Test(k8s_labels, sanitize_and_paths)
{
    char s[] = "app.kubernetes.io/name-x";
    k8s_sanitize(s);
    cr_assert_str_eq(s, "app_kubernetes_io_name_x");
    char *p = k8s_resource_path(K8S_ROLE_ENDPOINTSLICE, "ns1");
    cr_assert_str_eq(p, "/apis/discovery.k8s.io/v1/namespaces/ns1/endpointslices");
    free(p);
    p = k8s_resource_path(K8S_ROLE_NODE, "ignored");
    cr_assert_str_eq(p, "/api/v1/nodes");
    free(p);
    p = k8s_resource_path(K8S_ROLE_INGRESS, "");
    cr_assert_str_eq(p, "/apis/networking.k8s.io/v1/ingresses");
    free(p);
}

/* ---- configuration ---- */

static char err[2048];

static lookout_config *parse(const char *body)
{
    char y[4096];
    snprintf(y, sizeof y, "scrape_configs:\n- job_name: k\n  kubernetes_sd_configs:\n%s", body);
    err[0] = 0;
    return config_parse(y, strlen(y), "/etc/lookout/k.yml", err, sizeof err);
}

static void expect_error(const char *body, const char *msg)
{
    lookout_config *c = parse(body);
    cr_assert_null(c, "should fail: %s", body);
    cr_assert(strstr(err, msg), "expected \"%s\" in \"%s\"", msg, err);
}

Test(k8s_config, full_block)
{
    lookout_config *c = parse("  - role: endpoints\n    api_server: https://k8s:6443/\n"
                              "    bearer_token: abc\n    tls_config: {ca_file: ca.pem}\n"
                              "    namespaces: {names: [a, b]}\n"
                              "    selectors:\n    - role: pod\n      label: app in (x, y),tier!=db\n"
                              "    - role: endpoints\n      field: metadata.name=foo\n"
                              "    attach_metadata: {node: true}\n");
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(c->scrape_configs[0].n_sd_configs, 1);
    const sd_config *sd = &c->scrape_configs[0].sd_configs[0];
    cr_assert_eq(sd->kind, SD_KUBERNETES);
    const kubernetes_sd_config *k = &sd->u.kubernetes;
    cr_assert_eq(k->role, K8S_ROLE_ENDPOINTS);
    cr_assert_str_eq(k->api_server, "https://k8s:6443/");
    cr_assert_str_eq(k->http.authorization_credentials, "abc");
    cr_assert_str_eq(k->http.tls.ca_file, "/etc/lookout/ca.pem");
    cr_assert_eq(k->n_namespaces, 2);
    cr_assert_eq(k->n_selectors, 2);
    cr_assert_eq(k->selectors[0].role, K8S_ROLE_POD);
    cr_assert_str_eq(k->selectors[0].label, "app in (x, y),tier!=db");
    cr_assert_str_eq(k->selectors[1].field, "metadata.name=foo");
    cr_assert(k->attach_node);
    lookout_config *c2 = parse("  - role: endpoints\n    api_server: https://k8s:6443/\n"
                               "    bearer_token: abc\n    tls_config: {ca_file: ca.pem}\n"
                               "    namespaces: {names: [a, b]}\n"
                               "    selectors:\n    - role: pod\n      label: app in (x, y),tier!=db\n"
                               "    - role: endpoints\n      field: metadata.name=foo\n"
                               "    attach_metadata: {node: true}\n");
    cr_assert(sd_config_equal(sd, &c2->scrape_configs[0].sd_configs[0]));
    c2->scrape_configs[0].sd_configs[0].u.kubernetes.attach_node = false;
    cr_assert_not(sd_config_equal(sd, &c2->scrape_configs[0].sd_configs[0]));
    config_free(c2);
    config_free(c);
}

Test(k8s_config, kubeconfig_joined)
{
    lookout_config *c = parse("  - role: pod\n    kubeconfig_file: kube/config\n");
    cr_assert_not_null(c, "%s", err);
    cr_assert_str_eq(c->scrape_configs[0].sd_configs[0].u.kubernetes.kubeconfig_file, "/etc/lookout/kube/config");
    config_free(c);
}

Test(k8s_config, prometheus_errors)
{
    expect_error("  - api_server: http://x\n", "role missing (one of: pod, service, endpoints, endpointslice, node, ingress)");
    expect_error("  - role: pods\n", "unknown Kubernetes SD role \"pods\"");
    expect_error("  - role: pod\n    api_server: http://x\n    kubeconfig_file: k\n",
                 "cannot use 'kubeconfig_file' and 'api_server' simultaneously");
    expect_error("  - role: pod\n    kubeconfig_file: k\n    bearer_token: t\n",
                 "cannot use a custom HTTP client configuration together with 'kubeconfig_file'");
    expect_error("  - role: pod\n    bearer_token: t\n",
                 "to use custom HTTP client configuration please provide the 'api_server' URL explicitly");
    expect_error("  - role: pod\n    api_server: http://x\n    namespaces: {own_namespace: true}\n",
                 "cannot use 'api_server' and 'namespaces.own_namespace' simultaneously");
    expect_error("  - role: pod\n    selectors: [{role: service, label: a=b}]\n", "pod role supports only pod selectors");
    expect_error("  - role: endpoints\n    selectors: [{role: node}]\n",
                 "endpoints role supports only pod, service, endpoints selectors");
    expect_error("  - role: pod\n    selectors: [{role: pod, label: a=b}, {role: pod, field: x=y}]\n",
                 "duplicated selector role: pod");
    expect_error("  - role: pod\n    selectors: [{role: pod, label: 'a in (b'}]\n", "invalid label selector");
    expect_error("  - role: pod\n    selectors: [{role: pod, field: 'spec.nodeName in (a)'}]\n", "invalid field selector");
    expect_error("  - role: pod\n    foo: 1\n", "field foo not found");
    expect_error("  - role: pod\n    api_server: x.example\n", "invalid api_server URL");
}

/* ---- connection ---- */

static void write_file(const char *path, const char *s)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(s, f);
    fclose(f);
}

Test(k8s_conn, in_cluster)
{
    char dir[] = "/tmp/k8s_sa_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char p[256];
    snprintf(p, sizeof p, "%s/token", dir);
    write_file(p, "tok\n");
    snprintf(p, sizeof p, "%s/namespace", dir);
    write_file(p, "monitoring");
    setenv("LOOKOUT_K8S_SA_DIR", dir, 1);
    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    kubernetes_sd_config cfg = {0};
    k8s_conn c;
    cr_assert_eq(k8s_conn_resolve(&cfg, &c, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(c.server, "https://[fd00::1]:443");
    cr_assert_str_eq(c.own_namespace, "monitoring");
    cr_assert(c.http.has_authorization);
    snprintf(p, sizeof p, "%s/token", dir);
    cr_assert_str_eq(c.http.authorization_credentials_file, p, "token is a file, re-read per request");
    snprintf(p, sizeof p, "%s/ca.crt", dir);
    cr_assert_str_eq(c.http.tls.ca_file, p);
    k8s_conn_free(&c);
    unsetenv("KUBERNETES_SERVICE_HOST");
    cr_assert_eq(k8s_conn_resolve(&cfg, &c, err, sizeof err), -1);
    cr_assert(strstr(err, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined"), "%s", err);
    unsetenv("LOOKOUT_K8S_SA_DIR");
}

Test(k8s_conn, kubeconfig_current_context)
{
    char dir[] = "/tmp/k8s_kc_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char p[256];
    snprintf(p, sizeof p, "%s/config", dir);
    /* "LS0tCg==" is base64 of "---\n". */
    write_file(p, "apiVersion: v1\nkind: Config\ncurrent-context: b\n"
                  "clusters:\n- name: ca\n  cluster: {server: 'https://a:1'}\n"
                  "- name: cb\n  cluster:\n    server: https://b:6443/\n    certificate-authority-data: LS0tCg==\n"
                  "    tls-server-name: kube.local\n"
                  "users:\n- name: ub\n  user:\n    token: secret\n    client-certificate: certs/c.pem\n"
                  "    client-key-data: LS0tCg==\n"
                  "contexts:\n- name: a\n  context: {cluster: ca, user: ub}\n- name: b\n  context: {cluster: cb, user: ub}\n");
    kubernetes_sd_config cfg = {0};
    cfg.kubeconfig_file = p;
    k8s_conn c;
    cr_assert_eq(k8s_conn_resolve(&cfg, &c, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(c.server, "https://b:6443");
    cr_assert_str_eq(c.http.tls.ca, "---\n");
    cr_assert_str_eq(c.http.tls.key, "---\n");
    cr_assert_str_eq(c.http.tls.server_name, "kube.local");
    char want[300];
    snprintf(want, sizeof want, "%s/certs/c.pem", dir);
    cr_assert_str_eq(c.http.tls.cert_file, want);
    cr_assert_str_eq(c.http.authorization_credentials, "secret");
    k8s_conn_free(&c);
    write_file(p, "current-context: nope\ncontexts: []\n");
    cr_assert_eq(k8s_conn_resolve(&cfg, &c, err, sizeof err), -1);
    cr_assert(strstr(err, "current-context \"nope\" not found"), "%s", err);
}

/* The frozen build writes the maps' labels once (k8s_freeze_with_maps): the same labels as labelset_set_many
 * in call order (a sanitized name repeated: the last entry wins, and an empty or non-string value deletes
 * the label it names but keeps its "present" label), merged with the group's other labels; a map label named
 * like one of those is refused (the group is then built the plain way). */
Test(k8s_labels, frozen_maps_same_as_plain)
{
    json_t *pod = json_loads(
        "{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"uid\":\"u\",\"labels\":{\"a.b\":\"1\",\"a_b\":\"2\","
        "\"a-c\":\"3\",\"a/c\":\"\",\"z\":\"9\",\"\":\"e\"},\"annotations\":{\"x.y\":5,\"q\":\"w\"}},"
        "\"spec\":{\"nodeName\":\"nd\",\"containers\":[{\"name\":\"c\",\"ports\":[{\"containerPort\":80}]}]},"
        "\"status\":{\"podIP\":\"10.0.0.1\"}}",
        0, NULL);
    json_t *nodes = json_object();
    json_object_set_new(nodes, "nd", json_loads("{\"metadata\":{\"name\":\"nd\",\"labels\":{\"zone\":\"z1\"}}}", 0, NULL));
    k8s_lookup lk = {NULL, NULL, nodes, true};
    for (int slim = 0; slim < 2; slim++) {
        json_t *o = slim ? k8s_slim(K8S_ROLE_POD, pod) : json_incref(pod);
        target_group g, fz;
        k8s_build_group(K8S_ROLE_POD, "n/p", o, &lk, &g);
        k8s_build_group_frozen(K8S_ROLE_POD, "n/p", o, &lk, &fz);
        cr_assert(same_view_labels(&g, &fz));
        cr_assert_eq(fz.n_targets, 1);
        cr_assert(labelset_equal(&g.targets[0], &fz.targets[0]));
        cr_assert_str_eq(fz.source, "pod/n/p");
        labelset expanded;
        label_view fv = target_group_labels(&fz);
        label_view_copy(&expanded, &fv);
        const labelset *l = &expanded;
        cr_assert_str_eq(labelset_get(l, "__meta_kubernetes_pod_label_a_b"), "2");
        cr_assert_null(labelset_get(l, "__meta_kubernetes_pod_label_a_c"), "a-c then a/c: the empty value deletes");
        cr_assert_str_eq(labelset_get(l, "__meta_kubernetes_pod_labelpresent_a_c"), "true");
        cr_assert_str_eq(labelset_get(l, "__meta_kubernetes_pod_label_"), "e");
        cr_assert_null(labelset_get(l, "__meta_kubernetes_pod_annotation_x_y"));
        cr_assert_str_eq(labelset_get(l, "__meta_kubernetes_pod_annotationpresent_x_y"), "true");
        cr_assert_str_eq(labelset_get(l, "__meta_kubernetes_node_label_zone"), "z1");
        cr_assert_str_eq(labelset_get(l, "__meta_kubernetes_namespace"), "n");
        cr_assert_eq(l->n, 19, "%zu labels", l->n);
        cr_assert_eq(fz.labels.n, 7, "kept packed: the maps' labels are not in the set (%zu)", fz.labels.n);
        labelset_free(&expanded);
        target_group_free(&g);
        target_group_free(&fz);
        json_decref(o);
    }
    /* a map label named like one of the group's own: refused, nothing built */
    target_group g;
    target_group_init(&g, "s");
    labelset_set(&g.labels, "p_x", "own");
    labelset_set(&g.labels, "q", "1");
    json_t *m = json_loads("{\"x\":\"map\"}", 0, NULL), *m2 = json_loads("{\"y\":\"2\"}", 0, NULL);
    k8s_dmap maps[] = {{m2, "r_", "s_"}, {m, "p_", "t_"}};
    target_group out = {0};
    sd_group_builder tb = {0};
    cr_assert_not(k8s_freeze_with_maps(&g, &tb, maps, 2, &out));
    cr_assert_null(out.source);
    maps[1].prefix = "u_";
    cr_assert(k8s_freeze_with_maps(&g, &tb, maps, 2, &out));
    cr_assert_eq(out.labels.n, 6);
    cr_assert_str_eq(labelset_get(&out.labels, "p_x"), "own");
    cr_assert_str_eq(labelset_get(&out.labels, "r_y"), "2");
    cr_assert_str_eq(labelset_get(&out.labels, "t_x"), "true");
    cr_assert_str_eq(labelset_get(&out.labels, "u_x"), "map");
    target_group_free(&out);
    target_group_free(&g);
    json_decref(m);
    json_decref(m2);
    json_decref(nodes);
    json_decref(pod);
}

/* Many map entries whose names collide after sanitising (keys of 1-3 characters from "a.-/_b"), some with
 * empty or non-string values, in a labels and an annotations map of a pod with two ports: the frozen build
 * (pairs sorted through indexes and put in order in place, own labels merged from the end, targets packed)
 * gives exactly the plain build's labels and targets. */
Test(k8s_labels, frozen_many_colliding_entries_same_as_plain)
{
    static const char alpha[] = "a.-/_b";
    unsigned seed = 7;
    for (int round = 0; round < 20; round++) {
        json_t *labels = json_object(), *ann = json_object();
        int n = 1 + round * 15;
        for (int i = 0; i < n; i++) {
            char k[4] = {0};
            int len = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 3;
            for (int c = 0; c < len; c++)
                k[c] = alpha[((seed = seed * 1103515245u + 12345u) >> 16) % 6];
            unsigned r = (seed = seed * 1103515245u + 12345u) >> 16;
            json_t *v = r % 7 == 0 ? json_string("") : r % 11 == 0 ? json_integer(r) : json_sprintf("v%u", r % 100);
            json_object_set_new(i % 3 ? labels : ann, k, v);
        }
        json_t *pod = json_pack("{s:{s:s,s:s,s:o,s:o},s:{s:[{s:s,s:[{s:i},{s:i}]}]},s:{s:s}}", "metadata", "name",
                                "p", "namespace", "n", "labels", labels, "annotations", ann, "spec", "containers",
                                "name", "c", "ports", "containerPort", 80, "containerPort", 81, "status", "podIP",
                                "10.0.0.1");
        cr_assert_not_null(pod);
        for (int slim = 0; slim < 2; slim++) {
            json_t *o = slim ? k8s_slim(K8S_ROLE_POD, pod) : json_incref(pod);
            target_group g, fz;
            k8s_build_group(K8S_ROLE_POD, "n/p", o, NULL, &g);
            k8s_build_group_frozen(K8S_ROLE_POD, "n/p", o, NULL, &fz);
            cr_assert(same_view_labels(&g, &fz), "round %d: %zu labels", round, g.labels.n);
            cr_assert_eq(fz.n_targets, 2);
            cr_assert_eq(g.n_targets, 2);
            for (size_t t = 0; t < 2; t++)
                cr_assert(labelset_equal(&g.targets[t], &fz.targets[t]), "round %d target %zu", round, t);
            target_group_free(&g);
            target_group_free(&fz);
            json_decref(o);
        }
        json_decref(pod);
    }
}

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static char *slurp_without_saved_at(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    char *b = calloc(1, 1 << 20);
    size_t n = fread(b, 1, (1 << 20) - 1, f);
    fclose(f);
    b[n] = 0;
    char *at = strstr(b, "\"saved_at\":"); /* the time of the write: blanked */
    cr_assert_not_null(at);
    for (at += 11; *at && *at != ','; at++)
        *at = '0';
    return b;
}

static void put_label(void *ctx, const char *name, const char *value)
{
    fprintf(ctx, "%s=%s;", name, value);
}

/* A pod whose labels and annotations maps (names colliding after sanitising, empty and non-string values)
 * the frozen group keeps packed: its SD cache file has the plain group's bytes, and target building, the
 * discovered labels the API writes and their hash are the plain group's (issue 12). */
Test(k8s_labels, packed_maps_same_cache_bytes_targets_and_api_labels)
{
    json_t *pod = json_loads(
        "{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"uid\":\"u\",\"labels\":{\"a.b\":\"1\",\"a_b\":\"2\","
        "\"a-c\":\"3\",\"a/c\":\"\",\"z\":\"9\",\"app\":\"web\"},\"annotations\":{\"x.y\":5,\"q\":\"w\"}},"
        "\"spec\":{\"nodeName\":\"nd\",\"containers\":[{\"name\":\"c\",\"ports\":[{\"containerPort\":80}]}]},"
        "\"status\":{\"podIP\":\"10.0.0.1\",\"phase\":\"Running\"}}",
        0, NULL);
    cr_assert_not_null(pod);
    target_group g, fz;
    k8s_build_group(K8S_ROLE_POD, "n/p", pod, NULL, &g);
    k8s_build_group_frozen(K8S_ROLE_POD, "n/p", pod, NULL, &fz);
    label_view fv = target_group_labels(&fz);
    cr_assert_gt(fv.n_maps, 0, "the maps are kept packed");
    char dir[] = "/tmp/lookout-k8s-cache-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char err[256], path[600];
    const target_group *one[1] = {&g};
    cr_assert_eq(sd_cache_write(dir, ID_A, "j", "kubernetes_sd_configs/0", NULL, one, 1, err, sizeof err), 0, "%s", err);
    one[0] = &fz;
    cr_assert_eq(sd_cache_write(dir, ID_B, "j", "kubernetes_sd_configs/0", NULL, one, 1, err, sizeof err), 0, "%s", err);
    snprintf(path, sizeof path, "%s/%s.json", dir, ID_A);
    char *a = slurp_without_saved_at(path);
    remove(path);
    snprintf(path, sizeof path, "%s/%s.json", dir, ID_B);
    char *b = slurp_without_saved_at(path);
    remove(path);
    rmdir(dir);
    cr_assert_str_eq(b, a);
    cr_assert(strstr(a, "\"__meta_kubernetes_pod_labelpresent_a_c\":\"true\""), "%s", a);
    free(a);
    free(b);

    scrape_config sc;
    memset(&sc, 0, sizeof sc);
    sc.job_name = "j";
    sc.scrape_interval_ms = sc.scrape_timeout_ms = 1000;
    relabel_rule r[2];
    memset(r, 0, sizeof r);
    r[0].action = RELABEL_LABELMAP;
    r[0].regex = strdup("__meta_kubernetes_pod_label_(.+)");
    r[1].action = RELABEL_KEEP;
    r[1].source_labels = calloc(1, sizeof(char *));
    r[1].source_labels[r[1].n_source_labels++] = strdup("__meta_kubernetes_pod_annotationpresent_x_y");
    r[1].regex = strdup("true");
    for (int i = 0; i < 2; i++)
        cr_assert_eq(relabel_rule_prepare(&r[i], err, sizeof err), 0, "%s", err);
    sc.relabel_configs = r;
    for (size_t nr = 0; nr <= 2; nr++) {
        sc.n_relabel_configs = nr;
        built_target x, y;
        target_build_final(&sc, &g.labels, &g.targets[0], &x);
        target_build_final_view(&sc, &fv, &fz.targets[0], &y);
        cr_assert_eq(y.status, TARGET_ACTIVE);
        cr_assert_eq(x.status, y.status);
        cr_assert(labelset_equal(&x.labels, &y.labels), "%zu rules", nr);
        cr_assert_eq(x.hash, y.hash);
        if (nr == 2)
            cr_assert_str_eq(labelset_get(&y.labels, "a_b"), "2");
        built_target_free(&x);
        built_target_free(&y);
    }
    char *pa = NULL, *pb = NULL;
    size_t la = 0, lb = 0;
    FILE *fa = open_memstream(&pa, &la), *fb = open_memstream(&pb, &lb);
    target_discovered_each(&sc, &g.labels, &g.targets[0], put_label, fa);
    target_discovered_each_view(&sc, &fv, &fz.targets[0], put_label, fb);
    fclose(fa);
    fclose(fb);
    cr_assert_str_eq(pb, pa);
    cr_assert(strstr(pa, "__meta_kubernetes_pod_label_a_b=2;"), "%s", pa);
    labelset d;
    target_discovered_labels_view(&sc, &fv, &fz.targets[0], &d);
    cr_assert_eq(target_discovered_hash_view(&sc, &fv, &fz.targets[0], NULL), labelset_hash(&d));
    cr_assert_eq(target_discovered_hash(&sc, &g.labels, &g.targets[0], NULL), labelset_hash(&d));
    labelset_free(&d);
    free(pa);
    free(pb);
    for (int i = 0; i < 2; i++)
        relabel_rule_free(&r[i]);
    target_group_free(&g);
    target_group_free(&fz);
    json_decref(pod);
}

/* A target of a packed group that fails target building (an address with a slash) is kept as a failed
 * target; the discovered labels the /service-discovery page streams for it (targets_failed_discovered_each)
 * include the packed maps' labels, as the label set the API builds (targets_failed_discovered) does. */
Test(k8s_labels, packed_maps_failed_target_discovered_labels_streamed)
{
    json_t *pod = json_loads(
        "{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"uid\":\"u\",\"labels\":{\"app\":\"web\"},"
        "\"annotations\":{\"q\":\"w\"}},\"spec\":{\"nodeName\":\"nd\",\"containers\":[{\"name\":\"c\","
        "\"ports\":[{\"containerPort\":80}]}]},\"status\":{\"podIP\":\"10.0.0.1\",\"phase\":\"Running\"}}",
        0, NULL);
    cr_assert_not_null(pod);
    target_group fz;
    k8s_build_group_frozen(K8S_ROLE_POD, "n/p", pod, NULL, &fz);
    label_view fv = target_group_labels(&fz);
    cr_assert_gt(fv.n_maps, 0, "the maps are kept packed");
    const char *yaml = "scrape_configs:\n  - job_name: a\n    relabel_configs:\n"
                       "      - {target_label: __address__, replacement: 'bad/addr:80'}\n";
    char err[512] = "";
    lookout_config *cfg = config_parse(yaml, strlen(yaml), "test.yml", err, sizeof err);
    cr_assert_not_null(cfg, "config: %s", err);
    target_manager *m = targets_new();
    targets_apply_config(m, cfg);
    const target_group *gs[] = {&fz};
    targets_sync(m, "a", gs, 1);
    target_group_free(&fz);
    targets_read_begin(m);
    const target_pool *p = targets_pool_find(m, "a");
    cr_assert_eq(p->n_active, 0);
    cr_assert_eq(p->n_failed, 1);
    labelset want;
    targets_failed_discovered(p, &p->failed[0], &want);
    cr_assert_str_eq(labelset_get(&want, "__meta_kubernetes_pod_label_app"), "web");
    cr_assert_str_eq(labelset_get(&want, "__meta_kubernetes_pod_annotation_q"), "w");
    char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    FILE *fa = open_memstream(&a, &la), *fb = open_memstream(&b, &lb);
    for (size_t i = 0; i < want.n; i++)
        put_label(fa, want.v[i].name, want.v[i].value);
    targets_failed_discovered_each(p, &p->failed[0], put_label, fb);
    fclose(fa);
    fclose(fb);
    cr_assert_str_eq(b, a);
    cr_assert(strstr(b, "__meta_kubernetes_pod_labelpresent_app=true;"), "%s", b);
    free(a);
    free(b);
    labelset_free(&want);
    targets_read_end(m);
    targets_free(m);
    config_free(cfg);
    json_decref(pod);
}

/* k8s_freeze_lazy refuses (nothing built) when a label name could come from two places: a map prefix that
 * starts another's (either way round, present prefixes too) or a map label named like one of the group's
 * own; otherwise the group keeps the maps packed and reads them through its view. */
Test(k8s_labels, freeze_lazy_refuses_names_from_two_places)
{
    target_group g;
    target_group_init(&g, "s");
    labelset_set(&g.labels, "own", "1");
    json_t *m = json_loads("{\"x\":\"map\",\"e\":\"\"}", 0, NULL), *m2 = json_loads("{\"y\":\"2\"}", 0, NULL);
    struct {
        const char *p0, *q0, *p1, *q1;
        bool ok;
    } cases[] = {
        {"a_", "b_", "c_", "d_", true},
        {"a_x", "b_", "a_", "d_", false}, /* map 1's prefix starts map 0's */
        {"a_", "b_", "a_x", "d_", false}, /* map 0's starts map 1's */
        {"a_", "b_", "c_", "b_y", false}, /* a present prefix starts another prefix */
        {"a_", "a_", "c_", "d_", false},  /* one map's two prefixes */
        {"ow", "b_", "c_", "d_", true},   /* "own" is "ow" + "n": no such key */
        {"o", "b_", "c_", "d_", true},
        {"b_", "c_", "ow", "z_", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        k8s_dmap maps[] = {{m, cases[i].p0, cases[i].q0}, {m2, cases[i].p1, cases[i].q1}};
        target_group out = {0};
        sd_group_builder tb = {0};
        cr_assert_eq(k8s_freeze_lazy(&g, &tb, maps, 2, &out), cases[i].ok, "case %zu", i);
        if (!cases[i].ok) {
            cr_assert_null(out.source);
            continue;
        }
        label_view v = target_group_labels(&out);
        cr_assert_eq(v.n_maps, 2);
        cr_assert_eq(out.labels.n, 1);
        char name[32];
        snprintf(name, sizeof name, "%sx", cases[i].p0);
        cr_assert_str_eq(label_view_get(&v, name), "map");
        snprintf(name, sizeof name, "%se", cases[i].p0);
        cr_assert_null(label_view_get(&v, name), "an empty value: no label");
        snprintf(name, sizeof name, "%se", cases[i].q0);
        cr_assert_str_eq(label_view_get(&v, name), "true");
        cr_assert_str_eq(label_view_get(&v, "own"), "1");
        cr_assert_eq(label_view_count(&v), 1 + 3 + 2);
        target_group_free(&out);
        sd_gb_free(&tb);
    }
    /* a map label named like the group's own: refused */
    k8s_dmap clash[] = {{m, "ow", "q_"}};
    labelset_set(&g.labels, "owx", "own");
    target_group out = {0};
    sd_group_builder tb = {0};
    cr_assert_not(k8s_freeze_lazy(&g, &tb, clash, 1, &out));
    clash[0].prefix = "p_";
    clash[0].present_prefix = "ow";
    cr_assert_not(k8s_freeze_lazy(&g, &tb, clash, 1, &out), "owx is the present label of x");
    cr_assert_null(out.source);
    sd_gb_free(&tb);
    target_group_free(&g);
    json_decref(m);
    json_decref(m2);
}
