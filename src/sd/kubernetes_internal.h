/* kubernetes_internal: what the Kubernetes SD files share with each other and with their unit tests.
 *
 * Objects are jansson values in the API's own JSON shape, pruned to the fields the meta labels need
 * (k8s_slim; labels and annotations maps packed into one string, see k8s_map_pack): builders therefore accept a
 * full object from a fixture or a pruned one from the store alike.
 * Builders are pure: (object, lookups) -> one target group with Prometheus' source, labels and targets. */
#ifndef LOOKOUT_SD_KUBERNETES_INTERNAL_H
#define LOOKOUT_SD_KUBERNETES_INTERNAL_H
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "sd/sd_internal.h"

extern const sd_provider_ops sd_kubernetes_ops;
/* Number of running shared watches (identical blocks share one; tests). kubernetes_share.c. */
size_t k8s_watch_count(void);

/* The resources watched use the role enum: K8S_ROLE_POD is the Pod resource, and so on. */
typedef k8s_role k8s_kind;

#define K8S_META "__meta_kubernetes_"

/* API path of a resource list: "/api/v1/pods", "/api/v1/namespaces/NS/pods",
 * "/apis/discovery.k8s.io/v1/namespaces/NS/endpointslices", ... (ns NULL or "": all namespaces; ignored for
 * nodes). Caller frees. */
char *k8s_resource_path(k8s_kind kind, const char *ns);
const char *k8s_kind_name(k8s_kind kind); /* "pod", "service", ... */

/* A new value holding only the fields of `full` that labels need (no managedFields, env, volumes, ...).
 * Returns NULL when full is not an object with metadata.name. */
json_t *k8s_slim(k8s_kind kind, const json_t *full);
/* Pruning (kubernetes_meta.c): a template in the object's own shape, `true` keeps a value whole, an object
 * keeps its listed keys (null values left out), a one-element array applies its element to every item
 * (items that do not fit become null). k8s_prune(v, t): the pruned copy, NULL when v does not fit t. */
json_t *k8s_prune(const json_t *v, const json_t *t);
typedef enum k8s_doc {
    K8S_DOC_OBJECT, /* one object of the kind: what k8s_slim keeps */
    K8S_DOC_PAGE,   /* a list page: items (pruned objects), metadata.continue, metadata.resourceVersion */
    K8S_DOC_EVENT,  /* a watch event: type, object (pruned, plus metadata.namespace, code and message) */
} k8s_doc;
/* Packed maps (kubernetes_meta.c): where a template holds the string "map" (labels, annotations), the kept
 * value is not the object but one JSON string: its entries sorted by key, one per key (the last occurrence),
 * each KEY NUL TAG VALUE NUL, TAG 's' (VALUE: the string value) or 'n' (a value that is not a string);
 * a value that is not an object is not kept. Readers take either form: a full object's map or a pruned one. */
bool k8s_map_template(const json_t *t);
/* buf holds n entries (KEY NUL TAG VALUE NUL) at offsets offs[] (sorted here), in arrival order: the packed
 * JSON string. */
json_t *k8s_map_pack(const char *buf, size_t *offs, size_t n);
/* Iterates a packed map from *pos (start at 0): false at the end; *value NULL for a non-string value. */
bool k8s_map_next(const json_t *map, size_t *pos, const char **key, const char **value);
/* The string value of key in a map of either form, NULL when absent or not a string. */
const char *k8s_map_get(const json_t *map, const char *key);
/* Packed address lists (kubernetes_meta.c): where a template holds the string "addrs" (an endpoints subset's
 * addresses and notReadyAddresses), the kept value is not the array of address objects (a jansson object per
 * address: ~9 times the text of 185,000 addresses) but one JSON string: per item, K8S_ADDR_FIELDS fields in
 * the order of k8s_addr, each 's' VALUE NUL for a string or 'n' NUL for anything else (absent, null, another
 * type; an item that is not an object has every field 'n'); a value that is not an array is not kept. What
 * the builders read of an address is exactly these fields. Readers take either form (k8s_addr_next). */
#define K8S_ADDR_FIELDS 6
typedef struct k8s_addr {
    const char *ip, *hostname, *node_name;    /* ip, hostname, nodeName */
    const char *ref_kind, *ref_name, *ref_ns; /* targetRef.kind, .name, .namespace */
} k8s_addr;
bool k8s_addrs_template(const json_t *t);
/* Address field i (0 .. K8S_ADDR_FIELDS-1) of an address object of the full form: its string or NULL. */
const char *k8s_addr_field(const json_t *addr, int i);
/* The packed form of a JSON array of addresses. */
json_t *k8s_addrs_pack(const json_t *list);
/* Iterates an address list of either form (an array of address objects, or the packed string) from *pos
 * (start at 0): false at the end. The strings stay list's. */
bool k8s_addr_next(const json_t *list, size_t *pos, k8s_addr *out);
/* The template of doc for kind (static; NULL for an unknown kind). */
const json_t *k8s_template(k8s_kind kind, k8s_doc doc);
/* What the streaming parser keeps of a document jansson parsed: k8s_prune(tree, k8s_template(kind, doc)),
 * and for a page only the items that are objects with a string metadata.name (the informer skips the
 * others). NULL when the root does not fit. For tests and the fuzz harness. */
json_t *k8s_doc_prune(k8s_kind kind, k8s_doc doc, const json_t *tree);
/* Parses data (len bytes) as a stream (k8s_json.c) into what k8s_doc_prune(kind, doc, json_loadb(data, len,
 * 0)) would return, without building the document: 0 with *out (NULL when the root does not fit), or -1
 * with "line L column C: TEXT" in err when jansson would have refused the text, or when the values kept
 * take more than max_kept bytes ("JSON document too large to hold: ..."). */
int k8s_json_parse(k8s_kind kind, k8s_doc doc, const char *data, size_t len, size_t max_kept, json_t **out,
                   char *err, size_t errlen);
/* Store key: "NAMESPACE/NAME", or "NAME" for nodes. Caller frees; NULL when the object has no name. */
char *k8s_object_key(const json_t *obj);

/* Objects other roles' builders read: stores keyed by k8s_object_key (any may be NULL). */
typedef struct k8s_lookup {
    const json_t *pods, *services, *nodes;
    bool attach_node;
} k8s_lookup;

/* Builds the group of one primary object of `role` into g (initialised here). obj NULL: the object is gone;
 * `key` then names it and g is the empty group that removes it. */
void k8s_build_group(k8s_role role, const char *key, const json_t *obj, const k8s_lookup *lk, target_group *g);
/* k8s_build_group's group, frozen (*out: a view holding the one reference; sd_groups_free releases it): the
 * labels and annotations maps of the group's own labels are not expanded into a labelset and then copied,
 * but kept packed in the frozen group (sd_gb_freeze_lazy; read through target_group_labels), or, when a
 * label name could come from two places, written once into an arena the group takes (sd_gb_freeze_adopt):
 * a pod with a 20 MB labels map costs about 1.5 times the map's text instead of 8; the targets are packed as they are built
 * (sd_group_builder; an endpoints object's 185,000: ~100 bytes each instead of ~900 as label sets). Same
 * source, labels and targets as k8s_build_group. */
void k8s_build_group_frozen(k8s_role role, const char *key, const json_t *obj, const k8s_lookup *lk,
                            target_group *out);
/* One map k8s_add_map deferred (k8s_build_group_frozen), applied in this order after the other labels. */
typedef struct k8s_dmap {
    const json_t *map;
    const char *prefix, *present_prefix;
} k8s_dmap;
/* Freezes g (plain labels; its targets are those packed in tb, which is emptied) with the labels of the n
 * maps added to its own: false (nothing done, tb kept) when a map's label has the name of one of g's labels,
 * whose order against the map's then decides (k8s_build_group_frozen builds such a group the plain way). */
bool k8s_freeze_with_maps(const target_group *g, sd_group_builder *tb, const k8s_dmap *maps, size_t n,
                          target_group *out);
/* k8s_freeze_with_maps with the maps kept packed in the group (sd_gb_freeze_lazy), read through
 * target_group_labels: false (nothing done, tb kept) also when one map prefix starts another (a name could
 * then come from two maps; no role's prefixes do). */
bool k8s_freeze_lazy(const target_group *g, sd_group_builder *tb, const k8s_dmap *maps, size_t n,
                     target_group *out);
/* What the role builders add a target with: packed into the builder of k8s_build_group_frozen while it builds
 * g on this thread, else target_group_add_target (g's own targets stay empty then). */
void k8s_add_target(target_group *g, const labelset *t);

/* Per-role builders (k8s_*.c), same contract; obj non-NULL. */
void k8s_pod_build(const json_t *pod, const k8s_lookup *lk, target_group *g);
void k8s_service_build(const json_t *svc, target_group *g);
void k8s_endpoints_build(const json_t *eps, const k8s_lookup *lk, target_group *g);
void k8s_endpointslice_build(const json_t *eps, const k8s_lookup *lk, target_group *g);
void k8s_node_build(const json_t *node, target_group *g);
void k8s_ingress_build(const json_t *ing, target_group *g);

/* Shared label helpers (kubernetes_meta.c). */
const char *k8s_str(const json_t *obj, const char *path); /* "metadata.name" -> string or NULL */
const json_t *k8s_get(const json_t *obj, const char *path);
/* Adds PREFIX<sanitized key>=value and PRESENT_PREFIX<sanitized key>="true" for each entry of a map. */
void k8s_add_map(labelset *ls, const json_t *map, const char *prefix, const char *present_prefix);
/* Prometheus strutil.SanitizeLabelName: every byte outside [a-zA-Z0-9_] becomes '_'. */
void k8s_sanitize(char *s);
/* net.JoinHostPort: brackets around hosts containing ':'. */
void k8s_join_host_port(char *out, size_t len, const char *host, long long port);
/* Pod labels shared by the pod, endpoints and endpointslice roles (podLabels in Prometheus). */
void k8s_pod_labels(labelset *ls, const json_t *pod);
/* Service labels (serviceLabels). */
void k8s_service_labels(labelset *ls, const json_t *svc);
/* Node metadata for attach_metadata.node (addNodeLabels): no-op when node_name is NULL or unknown. */
void k8s_add_node_labels(labelset *ls, const k8s_lookup *lk, const char *node_name);
void k8s_set_int(labelset *ls, const char *name, long long v);


/* Where and how to reach the API server (kubernetes_conn.c). */
typedef struct k8s_conn {
    char *server;            /* "https://10.0.0.1:443", no trailing slash */
    http_client_config http; /* auth and TLS applied to every request */
    char *own_namespace;     /* in-cluster: the service account's namespace file; else NULL */
} k8s_conn;

/* Default directory of the in-cluster service account files; LOOKOUT_K8S_SA_DIR overrides it (tests). */
#define K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* api_server (with the block's HTTP client fields), else kubeconfig_file (current context), else
 * in-cluster (KUBERNETES_SERVICE_HOST/PORT, token re-read at every request so rotation is followed).
 * Returns 0, or -1 with err. */
int k8s_conn_resolve(const kubernetes_sd_config *cfg, k8s_conn *out, char *err, size_t errlen);
void k8s_conn_free(k8s_conn *c);

/* A watch (kubernetes.c): the informers of one kubernetes_sd_config block, their store and the thread that
 * runs them, sending groups to its subscribers. The registry (kubernetes_share.c) shares one per block. */
typedef struct k8s_watch k8s_watch;
/* Creates and starts a watch for block (copied); key is its canonical text (kept; secrets: never logged).
 * NULL + err on failure. */
k8s_watch *k8s_watch_new(const char *key, const sd_config *block, const char *job, char *err, size_t errlen);
/* Stops the thread and frees the watch (no subscriber left). NULL is a no-op. */
void k8s_watch_free(k8s_watch *w);
const char *k8s_watch_key(const k8s_watch *w);
/* The job of the first subscriber (logs). */
const char *k8s_watch_job(const k8s_watch *w);
/* Adds p; it receives the complete current state on the next loop pass. Returns the subscriber count. */
size_t k8s_watch_subscribe(k8s_watch *w, sd_provider *p);
/* Wakes the watch thread (a new subscriber waits for its first groups). */
void k8s_watch_wakeup(k8s_watch *w);
/* Removes p; waits for a flush in progress, so p gets no update afterwards. Returns true when it was the
 * last subscriber (the caller then frees the watch). */
bool k8s_watch_unsubscribe(k8s_watch *w, const sd_provider *p);

#endif
