/* label views (labels.h): a label set plus maps kept packed, read name by name. For random maps (fixed
 * seed) with empty values and own labels whose names sort between and around the maps' prefixes, the view
 * gives exactly the labels of the same maps expanded into a label set: iteration order, lookups (and none
 * for names it lacks), count, hash, copy and equality. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "labels/labels.h"

static uint64_t st = 0x2545f4914f6cdd1dull;
static unsigned rnd(unsigned n)
{
    st ^= st << 13;
    st ^= st >> 7;
    st ^= st << 17;
    return (unsigned)(st % n);
}

typedef struct built {
    label_pmap m[2];
    char *text[2];
    uint32_t *off[2];
} built;

/* n random keys of [a-e]{1,3} (unique, sorted), every 4th value empty */
static void make_map(built *b, int k, const char *prefix, const char *present, labelset *expanded)
{
    labelset keys = LABELSET_INIT;
    unsigned n = rnd(40);
    for (unsigned i = 0; i < n; i++) {
        char key[4] = {0}, val[8];
        for (unsigned c = 0, len = 1 + rnd(3); c < len; c++)
            key[c] = (char)('a' + rnd(5));
        snprintf(val, sizeof val, "v%u", rnd(100));
        labelset_set(&keys, key, rnd(4) ? val : "x"); /* "x" stands for an empty value */
    }
    size_t bytes = 1;
    for (size_t i = 0; i < keys.n; i++)
        bytes += strlen(keys.v[i].name) + strlen(keys.v[i].value) + 2;
    char *t = malloc(bytes), *w = t;
    uint32_t *off = malloc((keys.n + 1) * sizeof *off);
    for (size_t i = 0; i < keys.n; i++) {
        off[i] = (uint32_t)(w - t);
        const char *v = strcmp(keys.v[i].value, "x") ? keys.v[i].value : "";
        w += sprintf(w, "%s", keys.v[i].name) + 1;
        w += sprintf(w, "%s", v) + 1;
        char name[64];
        snprintf(name, sizeof name, "%s%s", prefix, keys.v[i].name);
        labelset_set(expanded, name, v);
        snprintf(name, sizeof name, "%s%s", present, keys.v[i].name);
        labelset_set(expanded, name, "true");
    }
    b->text[k] = t;
    b->off[k] = off;
    b->m[k] = (label_pmap){prefix, present, t, off, keys.n};
    labelset_free(&keys);
}

Test(label_view, same_as_expanded_random_maps)
{
    static const char *own_names[] = {"__x", "a_label", "a_labelp", "a_labelq_z", "a_m", "b", "a_ann",
                                      "a_annotationq", "a_label_zz", "a_labelpresent_zz", "c_", "a"};
    for (int round = 0; round < 300; round++) {
        labelset own = LABELSET_INIT, expanded = LABELSET_INIT;
        for (unsigned k = rnd(6); k; k--) {
            const char *n = own_names[rnd(sizeof own_names / sizeof *own_names)];
            labelset_set(&own, n, "o");
        }
        built b;
        size_t nm = rnd(3);
        if (nm > 0)
            make_map(&b, 0, "a_label_", "a_labelpresent_", &expanded);
        if (nm > 1)
            make_map(&b, 1, "a_annotation_", "a_annotationpresent_", &expanded);
        labelset_merge(&expanded, &own);
        label_view v = {round % 5 ? &own : NULL, b.m, nm};
        if (!v.ls) { /* no own labels: the expanded set without them */
            labelset_free(&expanded);
            labelset_init(&expanded);
            for (size_t i = 0; i < nm; i++)
                for (size_t e = 0; e < b.m[i].n; e++) {
                    const char *key = b.m[i].text + b.m[i].off[e], *val = key + strlen(key) + 1;
                    char name[64];
                    snprintf(name, sizeof name, "%s%s", b.m[i].prefix, key);
                    labelset_set(&expanded, name, val);
                    snprintf(name, sizeof name, "%s%s", b.m[i].present_prefix, key);
                    labelset_set(&expanded, name, "true");
                }
        }
        /* iteration: the expanded set's order */
        label_view_iter it;
        const char *name, *value;
        size_t i = 0;
        label_view_iter_init(&it, &v);
        while (label_view_next(&it, &name, &value)) {
            cr_assert_lt(i, expanded.n, "round %d: more labels than %zu", round, expanded.n);
            cr_assert_str_eq(name, expanded.v[i].name, "round %d label %zu", round, i);
            cr_assert_str_eq(value, expanded.v[i].value, "round %d label %zu", round, i);
            i++;
        }
        label_view_iter_free(&it);
        cr_assert_eq(i, expanded.n, "round %d: %zu labels, want %zu", round, i, expanded.n);
        cr_assert_eq(label_view_count(&v), expanded.n);
        cr_assert_eq(label_view_hash(&v), labelset_hash(&expanded));
        label_view ev = label_view_of(&expanded);
        cr_assert(label_view_equal(&v, &ev));
        cr_assert(label_view_equal(&ev, &v));
        labelset c;
        label_view_copy(&c, &v);
        cr_assert(labelset_equal(&c, &expanded));
        labelset_free(&c);
        /* lookups: every label, and names around them */
        for (size_t k = 0; k < expanded.n; k++) {
            const char *g = label_view_get(&v, expanded.v[k].name);
            cr_assert(g && strcmp(g, expanded.v[k].value) == 0, "round %d: %s", round, expanded.v[k].name);
            char near[80];
            snprintf(near, sizeof near, "%sa", expanded.v[k].name);
            cr_assert_eq(label_view_get(&v, near) != NULL, labelset_get(&expanded, near) != NULL, "%s", near);
            snprintf(near, sizeof near, "%.*s", (int)strlen(expanded.v[k].name) - 1, expanded.v[k].name);
            cr_assert_eq(label_view_get(&v, near) != NULL, labelset_get(&expanded, near) != NULL, "%s", near);
        }
        /* a changed value is a different view */
        if (expanded.n) {
            labelset d;
            labelset_copy(&d, &expanded);
            labelset_set(&d, d.v[rnd((unsigned)d.n)].name, "changed");
            label_view dv = label_view_of(&d);
            cr_assert_not(label_view_equal(&v, &dv));
            cr_assert_neq(label_view_hash(&v), label_view_hash(&dv));
            labelset_del(&d, d.v[0].name);
            dv = label_view_of(&d);
            cr_assert_not(label_view_equal(&dv, &v));
            labelset_free(&d);
        }
        for (size_t k = 0; k < nm; k++) {
            free(b.text[k]);
            free(b.off[k]);
        }
        labelset_free(&own);
        labelset_free(&expanded);
    }
}
