/* parse_sd_kubernetes: kubernetes_sd_configs, with Prometheus' (discovery/kubernetes SDConfig.UnmarshalYAML)
 * rules and messages: role required and known, api_server/kubeconfig_file exclusive, custom HTTP client only
 * with api_server, own_namespace only in-cluster, one selector per role and only the roles a discovery role
 * watches, label and field selectors syntax-checked (the API server has the last word). Also the block's
 * free, equal, copy and canonical text. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "config/internal.h"
#include "util/strv.h"
#include "util/xalloc.h"

static const char *const role_names[K8S_ROLE_COUNT] = {"pod", "service", "endpoints", "endpointslice", "node",
                                                      "ingress"};

static int role_parse(const char *s, k8s_role *out)
{
    for (int i = 0; i < K8S_ROLE_COUNT; i++)
        if (strcmp(s, role_names[i]) == 0) {
            *out = (k8s_role)i;
            return 0;
        }
    return -1;
}

/* Selector roles each discovery role accepts (Prometheus allowedSelectors), in its message order. */
static const char *allowed_selectors(k8s_role r)
{
    switch (r) {
    case K8S_ROLE_ENDPOINTS: return "pod, service, endpoints";
    case K8S_ROLE_ENDPOINTSLICE: return "pod, service, endpointslice";
    default: return role_names[r];
    }
}

static bool selector_allowed(k8s_role role, k8s_role sel)
{
    if (role == sel)
        return true;
    return (role == K8S_ROLE_ENDPOINTS || role == K8S_ROLE_ENDPOINTSLICE) &&
           (sel == K8S_ROLE_POD || sel == K8S_ROLE_SERVICE);
}

/* Label names of selectors: [prefix/]name, name alphanumeric with -_. inside. */
static bool sel_key_valid(const char *b, const char *e)
{
    if (b >= e)
        return false;
    for (const char *p = b; p < e; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.' && *p != '/')
            return false;
    return true;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Kubernetes labels.Parse grammar, enough to reject what the API server would: requirements separated by
 * ',', each `key`, `!key`, `key=v`, `key==v`, `key!=v`, `key in (v,...)`, `key notin (v,...)`, `key>N`,
 * `key<N`. */
static bool label_selector_valid(const char *s, bool field)
{
    const char *p = skip_ws(s);
    if (!*p)
        return true;
    for (;;) {
        p = skip_ws(p);
        bool neg = false;
        if (*p == '!') {
            if (field)
                return false;
            neg = true;
            p = skip_ws(p + 1);
        }
        const char *kb = p;
        while (*p && (isalnum((unsigned char)*p) || strchr("-_./", *p)))
            p++;
        if (!sel_key_valid(kb, p))
            return false;
        p = skip_ws(p);
        if (neg) {
            if (*p && *p != ',')
                return false;
        } else if (*p == '=' || *p == '!' || *p == '>' || *p == '<') {
            if (*p == '!' && p[1] != '=')
                return false;
            if ((*p == '>' || *p == '<') && field)
                return false;
            p += (*p == '!' || (p[0] == '=' && p[1] == '=')) ? 2 : 1;
            p = skip_ws(p);
            while (*p && *p != ',' && *p != ' ') {
                if (!field && !isalnum((unsigned char)*p) && !strchr("-_.", *p))
                    return false;
                p++;
            }
            p = skip_ws(p);
        } else if (!field && (strncmp(p, "in", 2) == 0 || strncmp(p, "notin", 5) == 0)) {
            p += p[0] == 'i' ? 2 : 5;
            p = skip_ws(p);
            if (*p != '(')
                return false;
            p++;
            while (*p && *p != ')') {
                if (!isalnum((unsigned char)*p) && !strchr("-_., ", *p))
                    return false;
                p++;
            }
            if (*p != ')')
                return false;
            p = skip_ws(p + 1);
        } else if (field) {
            return false;
        }
        if (!*p)
            return true;
        if (*p != ',')
            return false;
        p++;
    }
}

int cfg_parse_sd_kubernetes(cfg_ctx *c, const yaml_node_t *node, sd_config *sd)
{
    kubernetes_sd_config *k = &sd->u.kubernetes;
    memset(k, 0, sizeof *k);
    http_client_config_init(&k->http);
    const char *allowed[32];
    size_t na = 0;
    static const char *const own[] = {"api_server", "role", "kubeconfig_file", "namespaces", "selectors",
                                      "attach_metadata"};
    for (size_t i = 0; i < sizeof own / sizeof *own; i++)
        allowed[na++] = own[i];
    for (size_t i = 0; cfg_http_keys[i] && na < 31; i++)
        allowed[na++] = cfg_http_keys[i];
    allowed[na] = NULL;
    if (cfg_check_map(c, node, "kubernetes_sd_config", allowed) < 0)
        return -1;

    char *role = NULL;
    if (cfg_read_string(c, node, "role", &role) < 0)
        return -1;
    if (!role || !*role) {
        free(role);
        return cfg_error(c, node, "role missing (one of: pod, service, endpoints, endpointslice, node, ingress)");
    }
    if (role_parse(role, &k->role) < 0) {
        cfg_error(c, cfg_get(c, node, "role"), "unknown Kubernetes SD role \"%s\" (expected one of: pod, service, "
                                               "endpoints, endpointslice, node, ingress)", role);
        free(role);
        return -1;
    }
    free(role);

    if (cfg_read_string(c, node, "api_server", &k->api_server) < 0 ||
        cfg_read_string(c, node, "kubeconfig_file", &k->kubeconfig_file) < 0)
        return -1;
    if (k->api_server && !*k->api_server)
        free(k->api_server), k->api_server = NULL;
    if (k->kubeconfig_file && !*k->kubeconfig_file)
        free(k->kubeconfig_file), k->kubeconfig_file = NULL;
    if (k->api_server && strncmp(k->api_server, "http://", 7) != 0 && strncmp(k->api_server, "https://", 8) != 0)
        return cfg_error(c, cfg_get(c, node, "api_server"),
                         "invalid api_server URL \"%s\" (expected http://HOST[:PORT] or https://HOST[:PORT])",
                         k->api_server);
    if (cfg_parse_http(c, node, &k->http) < 0)
        return -1;

    yaml_node_t *ns = cfg_get(c, node, "namespaces");
    if (ns) {
        static const char *const keys[] = {"own_namespace", "names", NULL};
        if (cfg_check_map(c, ns, "namespace_discovery", keys) < 0 ||
            cfg_read_bool(c, ns, "own_namespace", &k->own_namespace) < 0 ||
            cfg_read_string_list(c, ns, "names", &k->namespaces, &k->n_namespaces) < 0)
            return -1;
    }
    yaml_node_t *am = cfg_get(c, node, "attach_metadata");
    if (am) {
        static const char *const keys[] = {"node", NULL};
        if (cfg_check_map(c, am, "attach_metadata", keys) < 0 || cfg_read_bool(c, am, "node", &k->attach_node) < 0)
            return -1;
    }

    http_client_config def;
    http_client_config_init(&def);
    bool custom_http = !http_client_config_equal(&k->http, &def);
    if (k->api_server && k->kubeconfig_file)
        return cfg_error(c, node, "cannot use 'kubeconfig_file' and 'api_server' simultaneously");
    if (k->kubeconfig_file && custom_http)
        return cfg_error(c, node, "cannot use a custom HTTP client configuration together with 'kubeconfig_file'");
    if (!k->api_server && custom_http)
        return cfg_error(c, node,
                         "to use custom HTTP client configuration please provide the 'api_server' URL explicitly");
    if (k->api_server && k->own_namespace)
        return cfg_error(c, node, "cannot use 'api_server' and 'namespaces.own_namespace' simultaneously");
    if (k->kubeconfig_file && k->own_namespace)
        return cfg_error(c, node, "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously");
    if (k->kubeconfig_file) {
        char *j = cfg_join_dir(c, k->kubeconfig_file);
        free(k->kubeconfig_file);
        k->kubeconfig_file = j;
    }

    yaml_node_t *sel = cfg_get(c, node, "selectors");
    if (sel) {
        yaml_node_t **items;
        int n = cfg_list(c, sel, "selectors", &items);
        if (n < 0)
            return -1;
        k->selectors = n ? calloc((size_t)n, sizeof *k->selectors) : NULL;
        unsigned seen = 0;
        for (int i = 0; i < n; i++) {
            static const char *const keys[] = {"role", "label", "field", NULL};
            kubernetes_selector *s = &k->selectors[i];
            k->n_selectors++;
            char *r = NULL;
            if (cfg_check_map(c, items[i], "selector_config", keys) < 0 || cfg_read_string(c, items[i], "role", &r) < 0 ||
                cfg_read_string(c, items[i], "label", &s->label) < 0 ||
                cfg_read_string(c, items[i], "field", &s->field) < 0) {
                free(r);
                free(items);
                return -1;
            }
            int bad = 0;
            if (!r || role_parse(r, &s->role) < 0)
                bad = cfg_error(c, items[i], "unknown Kubernetes SD role \"%s\" (expected one of: pod, service, "
                                             "endpoints, endpointslice, node, ingress)", r ? r : "");
            else if (seen & (1u << s->role))
                bad = cfg_error(c, items[i], "duplicated selector role: %s", r);
            else if (!selector_allowed(k->role, s->role))
                bad = cfg_error(c, items[i], "%s role supports only %s selectors", role_names[k->role],
                                allowed_selectors(k->role));
            else if (s->field && !label_selector_valid(s->field, true))
                bad = cfg_error(c, items[i], "invalid field selector \"%s\"", s->field);
            else if (s->label && !label_selector_valid(s->label, false))
                bad = cfg_error(c, items[i], "invalid label selector \"%s\"", s->label);
            free(r);
            if (bad) {
                free(items);
                return -1;
            }
            seen |= 1u << s->role;
            if (s->label && !*s->label)
                free(s->label), s->label = NULL;
            if (s->field && !*s->field)
                free(s->field), s->field = NULL;
        }
        free(items);
    }
    return 0;
}

void cfg_free_sd_kubernetes(sd_config *sd)
{
    kubernetes_sd_config *k = &sd->u.kubernetes;
    free(k->api_server);
    free(k->kubeconfig_file);
    http_client_config_release(&k->http);
    strv_free(k->namespaces, k->n_namespaces);
    for (size_t i = 0; i < k->n_selectors; i++) {
        free(k->selectors[i].label);
        free(k->selectors[i].field);
    }
    free(k->selectors);
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool cfg_equal_sd_kubernetes(const sd_config *a, const sd_config *b)
{
    const kubernetes_sd_config *x = &a->u.kubernetes, *y = &b->u.kubernetes;
    if (x->role != y->role || !str_eq(x->api_server, y->api_server) ||
        !str_eq(x->kubeconfig_file, y->kubeconfig_file) || !http_client_config_equal(&x->http, &y->http) ||
        x->own_namespace != y->own_namespace || x->n_namespaces != y->n_namespaces ||
        x->n_selectors != y->n_selectors || x->attach_node != y->attach_node)
        return false;
    for (size_t i = 0; i < x->n_namespaces; i++)
        if (strcmp(x->namespaces[i], y->namespaces[i]) != 0)
            return false;
    for (size_t i = 0; i < x->n_selectors; i++)
        if (x->selectors[i].role != y->selectors[i].role || !str_eq(x->selectors[i].label, y->selectors[i].label) ||
            !str_eq(x->selectors[i].field, y->selectors[i].field))
            return false;
    return true;
}

void cfg_copy_sd_kubernetes(sd_config *dst, const sd_config *src)
{
    const kubernetes_sd_config *s = &src->u.kubernetes;
    kubernetes_sd_config *d = &dst->u.kubernetes;
    *d = *s;
    d->api_server = s->api_server ? xstrdup_or_empty(s->api_server) : NULL;
    d->kubeconfig_file = s->kubeconfig_file ? xstrdup_or_empty(s->kubeconfig_file) : NULL;
    http_client_config_copy(&d->http, &s->http);
    d->namespaces = strv_copy_or_empty(s->namespaces, s->n_namespaces);
    d->selectors = s->n_selectors ? xcalloc(s->n_selectors, sizeof *d->selectors) : NULL;
    for (size_t i = 0; i < s->n_selectors; i++) {
        d->selectors[i].role = s->selectors[i].role;
        d->selectors[i].label = s->selectors[i].label ? xstrdup_or_empty(s->selectors[i].label) : NULL;
        d->selectors[i].field = s->selectors[i].field ? xstrdup_or_empty(s->selectors[i].field) : NULL;
    }
}

void cfg_canon_sd_kubernetes(strbuf *sb, const sd_config *sd, bool with_secrets)
{
    const kubernetes_sd_config *k = &sd->u.kubernetes;
    cfg_canon_int(sb, "role", k->role);
    cfg_canon_str(sb, "api_server", k->api_server);
    cfg_canon_str(sb, "kubeconfig", k->kubeconfig_file);
    cfg_canon_http(sb, &k->http, with_secrets);
    cfg_canon_int(sb, "own_ns", k->own_namespace);
    cfg_canon_strv(sb, "namespaces", k->namespaces, k->n_namespaces);
    strbuf_printf(sb, "selectors=[%zu;", k->n_selectors);
    for (size_t i = 0; i < k->n_selectors; i++) {
        cfg_canon_int(sb, "role", k->selectors[i].role);
        cfg_canon_str(sb, "label", k->selectors[i].label);
        cfg_canon_str(sb, "field", k->selectors[i].field);
    }
    strbuf_puts(sb, "];");
    cfg_canon_int(sb, "attach_node", k->attach_node);
}
