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

#endif
