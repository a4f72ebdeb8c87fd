/* kubernetes_conn: how to reach the API server. Three ways, as in Prometheus (client-go):
 *  - api_server: the URL plus the block's own HTTP client fields;
 *  - kubeconfig_file: its current context's cluster (server, certificate-authority[-data],
 *    insecure-skip-tls-verify, tls-server-name) and user (token, tokenFile, client-certificate[-data],
 *    client-key[-data], username/password); relative paths are relative to the kubeconfig's directory;
 *  - in-cluster: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT with the service account's
 *    token (a file re-read at every request, so a rotated token is picked up by the next request), ca.crt
 *    and namespace (own_namespace). LOOKOUT_K8S_SA_DIR replaces the service account directory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include <openssl/evp.h>

#include "http/client.h"
#include "sd/kubernetes_internal.h"
#include "util/yaml_depth.h"
#include "util/xalloc.h"

#define KUBECONFIG_MAX (4u << 20)

void k8s_conn_free(k8s_conn *c)
{
    free(c->server);
    http_client_config_release(&c->http);
    free(c->own_namespace);
    memset(c, 0, sizeof *c);
}

static void strip_slash(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        s[--n] = 0;
}

static void http_defaults(http_client_config *h)
{
    memset(h, 0, sizeof *h);
    h->follow_redirects = true;
    h->enable_http2 = true;
}

static int in_cluster(k8s_conn *out, char *err, size_t errlen)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host || !port || !*port) {
        snprintf(err, errlen, "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and "
                              "KUBERNETES_SERVICE_PORT must be defined");
        return -1;
    }
    const char *dir = getenv("LOOKOUT_K8S_SA_DIR");
    if (!dir || !*dir)
        dir = K8S_SA_DIR;
    char path[4096];
    snprintf(path, sizeof path, "%s/token", dir);
    char *tok = http_client_read_secret(path, err, errlen);
    if (!tok)
        return -1; /* client-go: "open .../token: no such file or directory" */
    free(tok);
    char url[1024];
    if (strchr(host, ':'))
        snprintf(url, sizeof url, "https://[%s]:%s", host, port);
    else
        snprintf(url, sizeof url, "https://%s:%s", host, port);
    out->server = xstrdup(url);
    http_defaults(&out->http);
    out->http.has_authorization = true;
    out->http.authorization_type = xstrdup("Bearer");
    out->http.authorization_credentials_file = xstrdup(path);
    snprintf(path, sizeof path, "%s/ca.crt", dir);
    out->http.tls.ca_file = xstrdup(path);
    snprintf(path, sizeof path, "%s/namespace", dir);
    char e2[256];
    out->own_namespace = http_client_read_secret(path, e2, sizeof e2);
    return 0;
}

/* ---- kubeconfig ---- */

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *m, const char *key)
{
    if (!m || m->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

static const char *scalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Entry `name` of a kubeconfig list (clusters, users, contexts): its `inner` mapping. */
static yaml_node_t *named(yaml_document_t *d, yaml_node_t *root, const char *list, const char *name,
                          const char *inner)
{
    yaml_node_t *l = map_get(d, root, list);
    if (!l || l->type != YAML_SEQUENCE_NODE || !name)
        return NULL;
    for (yaml_node_item_t *i = l->data.sequence.items.start; i < l->data.sequence.items.top; i++) {
        yaml_node_t *e = yaml_document_get_node(d, *i);
        const char *n = scalar(map_get(d, e, "name"));
        if (n && strcmp(n, name) == 0)
            return map_get(d, e, inner);
    }
    return NULL;
}

static char *b64decode(const char *s)
{
    size_t n = strlen(s);
    unsigned char *out = malloc(n + 4);
    if (!out)
        abort();
    int len = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (len < 0) {
        free(out);
        return NULL;
    }
    while (n > 0 && s[n - 1] == '=') { /* DecodeBlock counts padding as zero bytes */
        n--;
        len--;
    }
    out[len < 0 ? 0 : len] = 0;
    return (char *)out;
}

static char *rel_path(const char *dir, const char *p)
{
    if (!p)
        return NULL;
    if (p[0] == '/' || !*dir)
        return xstrdup(p);
    size_t n = strlen(dir) + strlen(p) + 2;
    char *r = malloc(n);
    if (!r)
        abort();
    snprintf(r, n, "%s/%s", dir, p);
    return r;
}

static int data_or_file(yaml_document_t *d, yaml_node_t *m, const char *data_key, const char *file_key,
                        const char *dir, char **pem, char **file, char *err, size_t errlen)
{
    const char *data = scalar(map_get(d, m, data_key)), *f = scalar(map_get(d, m, file_key));
    if (data && *data) {
        *pem = b64decode(data);
        if (!*pem) {
            snprintf(err, errlen, "kubeconfig: %s is not valid base64", data_key);
            return -1;
        }
    } else if (f && *f) {
        *file = rel_path(dir, f);
    }
    return 0;
}

static int from_kubeconfig(const char *path, k8s_conn *out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "open %s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(KUBECONFIG_MAX + 1);
    if (!buf)
        abort();
    size_t n = fread(buf, 1, KUBECONFIG_MAX + 1, f);
    fclose(f);
    if (n > KUBECONFIG_MAX) {
        free(buf);
        snprintf(err, errlen, "%s: kubeconfig larger than %u bytes", path, KUBECONFIG_MAX);
        return -1;
    }
    size_t dl, dc;
    const char *why;
    if (yaml_depth_check(buf, n, &dl, &dc, &why) != 0) { /* bounds libyaml's quadratic scanner */
        snprintf(err, errlen, "%s:%zu:%zu: %s", path, dl + 1, dc + 1, why);
        free(buf);
        return -1;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (unsigned char *)buf, n);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "%s:%zu:%zu: %s", path, parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                 parser.problem ? parser.problem : "invalid YAML");
        yaml_parser_delete(&parser);
        free(buf);
        return -1;
    }
    yaml_parser_delete(&parser);
    free(buf);

    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        dir[0] = 0;

    int rc = -1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    const char *cur = scalar(map_get(&doc, root, "current-context"));
    yaml_node_t *ctx = named(&doc, root, "contexts", cur, "context");
    if (!ctx) {
        snprintf(err, errlen, "%s: invalid configuration: current-context \"%s\" not found among contexts", path,
                 cur ? cur : "");
        goto out;
    }
    yaml_node_t *cluster = named(&doc, root, "clusters", scalar(map_get(&doc, ctx, "cluster")), "cluster");
    yaml_node_t *user = named(&doc, root, "users", scalar(map_get(&doc, ctx, "user")), "user");
    const char *server = scalar(map_get(&doc, cluster, "server"));
    if (!server || !*server) {
        snprintf(err, errlen, "%s: invalid configuration: no server found for cluster \"%s\"", path,
                 scalar(map_get(&doc, ctx, "cluster")) ? scalar(map_get(&doc, ctx, "cluster")) : "");
        goto out;
    }
    out->server = xstrdup(server);
    http_defaults(&out->http);
    tls_config *t = &out->http.tls;
    if (data_or_file(&doc, cluster, "certificate-authority-data", "certificate-authority", dir, &t->ca, &t->ca_file,
                     err, errlen) < 0)
        goto out;
    const char *insecure = scalar(map_get(&doc, cluster, "insecure-skip-tls-verify"));
    t->insecure_skip_verify = insecure && strcmp(insecure, "true") == 0;
    t->server_name = xstrdup(scalar(map_get(&doc, cluster, "tls-server-name")));
    if (data_or_file(&doc, user, "client-certificate-data", "client-certificate", dir, &t->cert, &t->cert_file, err,
                     errlen) < 0 ||
        data_or_file(&doc, user, "client-key-data", "client-key", dir, &t->key, &t->key_file, err, errlen) < 0)
        goto out;
    const char *token = scalar(map_get(&doc, user, "token")), *token_file = scalar(map_get(&doc, user, "tokenFile"));
    const char *username = scalar(map_get(&doc, user, "username"));
    if ((token && *token) || (token_file && *token_file)) {
        out->http.has_authorization = true;
        out->http.authorization_type = xstrdup("Bearer");
        if (token && *token)
            out->http.authorization_credentials = xstrdup(token);
        else
            out->http.authorization_credentials_file = rel_path(dir, token_file);
    } else if (username && *username) {
        out->http.has_basic_auth = true;
        out->http.basic_auth_username = xstrdup(username);
        out->http.basic_auth_password = xstrdup(scalar(map_get(&doc, user, "password")));
    }
    rc = 0;
out:
    yaml_document_delete(&doc);
    return rc;
}

int k8s_conn_resolve(const kubernetes_sd_config *cfg, k8s_conn *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int rc;
    if (cfg->api_server) {
        out->server = xstrdup(cfg->api_server);
        http_client_config_copy(&out->http, &cfg->http);
        rc = 0;
    } else if (cfg->kubeconfig_file) {
        rc = from_kubeconfig(cfg->kubeconfig_file, out, err, errlen);
    } else {
        rc = in_cluster(out, err, errlen);
    }
    if (rc < 0) {
        k8s_conn_free(out);
        return -1;
    }
    strip_slash(out->server);
    return 0;
}
