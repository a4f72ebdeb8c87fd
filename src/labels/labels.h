/* labels: a label set is a small array of (name, value) pairs kept sorted by name, with unique names.
 * A label with an empty value does not exist (Prometheus semantics): setting "" deletes.
 * Pure data structure, no threads. Strings are owned by the set (copied in, freed by labelset_free). */
#ifndef LOOKOUT_LABELS_LABELS_H
#define LOOKOUT_LABELS_LABELS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/hash.h"

typedef struct strbuf strbuf;

typedef struct label {
    char *name;
    char *value;
} label;

typedef struct labelset {
    label *v;
    size_t n;
    size_t cap;
} labelset;

#define LABELSET_INIT {NULL, 0, 0}

void labelset_init(labelset *ls);
void labelset_free(labelset *ls);
void labelset_clear(labelset *ls);
/* Deep copy: dst is initialised (its previous content is not freed). */
void labelset_copy(labelset *dst, const labelset *src);
/* Returns the value or NULL when absent. */
const char *labelset_get(const labelset *ls, const char *name);
/* Sets name=value (copies both). An empty or NULL value deletes the label. */
void labelset_set(labelset *ls, const char *name, const char *value);
/* labelset_set of every pair in order (a later pair of a name wins; an empty or NULL value deletes), in
 * O((n + m) log n) rather than a move of the array per new name: for maps of unbounded size from outside
 * (Kubernetes labels and annotations, Consul metadata). Takes ownership of each pair's strings (kept or
 * freed; value may be NULL), not of the array. */
void labelset_set_many(labelset *ls, label *pairs, size_t n);
/* Sets only when the label is absent (used for populateLabels defaults). */
void labelset_set_default(labelset *ls, const char *name, const char *value);
void labelset_del(labelset *ls, const char *name);
/* Overlays src onto dst: every label of src replaces dst's. */
void labelset_merge(labelset *dst, const labelset *src);
bool labelset_equal(const labelset *a, const labelset *b);
/* FNV-1a 64 over name\xff value\xff ... (stable across runs). */
uint64_t labelset_hash(const labelset *ls);
/* Valid Prometheus label name: [a-zA-Z_][a-zA-Z0-9_]*. */
bool label_name_valid(const char *name);

/* Appends ls as a JSON object {"name":"value",...}, in its (sorted) order. */
void labelset_write_json(strbuf *out, const labelset *ls);

/* ---- label views: labels of their own plus maps kept packed, expanded name by name when read ---- */

/* A map kept packed (a Kubernetes object's labels or annotations map, src/sd): n entries, each
 * "key\0value\0" at text + off[i], sorted by key (strcmp), keys unique; read as the labels
 * prefix+key=value (when value is not empty) and present_prefix+key="true". */
typedef struct label_pmap {
    const char *prefix, *present_prefix;
    const char *text;
    const uint32_t *off;
    size_t n;
} label_pmap;

/* A label set (sorted) and maps whose names never equal each other's nor the set's (the builder checks:
 * no prefix starts another, no name of ls is one of a map's). */
typedef struct label_view {
    const labelset *ls; /* may be NULL */
    const label_pmap *maps;
    size_t n_maps;
} label_view;

/* A view of a plain label set (ls may be NULL). */
label_view label_view_of(const labelset *ls);
const char *label_view_get(const label_view *v, const char *name);
/* The labels in name order: label_view_next gives each (strings valid until the next call). */
typedef struct lv_stream {
    size_t i;
    char *buf; /* a map's name being read */
    size_t cap;
    const char *name, *value; /* current; name NULL at the end */
} lv_stream;
typedef struct label_view_iter {
    const label_view *v;
    lv_stream *s; /* 1 + 2 per map */
    size_t ns;
    size_t pending; /* the stream read last (its name is loaded at the next call), ns when none */
    lv_stream one;
} label_view_iter;
void label_view_iter_init(label_view_iter *it, const label_view *v);
bool label_view_next(label_view_iter *it, const char **name, const char **value);
void label_view_iter_free(label_view_iter *it);
size_t label_view_count(const label_view *v);
/* labelset_hash / labelset_equal / labelset_copy of the expanded labels */
uint64_t label_view_hash(const label_view *v);
bool label_view_equal(const label_view *a, const label_view *b);
void label_view_copy(labelset *dst, const label_view *v);

#endif
