/* k8s_yaml2json: prints each YAML document of a file as one JSON line (libyaml + jansson), so tests can
 * validate Kubernetes manifests without PyYAML. Scalars stay strings except plain true/false/null and
 * integers. Exit 1 with "FILE:LINE:COL: problem" on invalid YAML. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <yaml.h>

static json_t *conv(yaml_document_t *d, yaml_node_t *n, int depth)
{
    if (!n || depth > 64)
        return json_null();
    if (n->type == YAML_SCALAR_NODE) {
        const char *s = (const char *)n->data.scalar.value;
        if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
            if (!strcmp(s, "true"))
                return json_true();
            if (!strcmp(s, "false"))
                return json_false();
            if (!strcmp(s, "null") || !strcmp(s, "~") || !*s)
                return json_null();
            char *end;
            long long v = strtoll(s, &end, 10);
            if (*end == 0)
                return json_integer(v);
        }
        return json_string(s);
    }
    if (n->type == YAML_SEQUENCE_NODE) {
        json_t *a = json_array();
        for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++)
            json_array_append_new(a, conv(d, yaml_document_get_node(d, *i), depth + 1));
        return a;
    }
    json_t *o = json_object();
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);
        if (k && k->type == YAML_SCALAR_NODE)
            json_object_set_new(o, (const char *)k->data.scalar.value, conv(d, yaml_document_get_node(d, p->value), depth + 1));
    }
    return o;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: k8s_yaml2json FILE\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    int rc = 0;
    for (;;) {
        yaml_document_t doc;
        if (!yaml_parser_load(&p, &doc)) {
            fprintf(stderr, "%s:%zu:%zu: %s\n", argv[1], p.problem_mark.line + 1, p.problem_mark.column + 1,
                    p.problem ? p.problem : "invalid YAML");
            rc = 1;
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root) {
            yaml_document_delete(&doc);
            break;
        }
        json_t *j = conv(&doc, root, 0);
        char *s = json_dumps(j, JSON_COMPACT);
        puts(s);
        free(s);
        json_decref(j);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&p);
    fclose(f);
    return rc;
}
