/* labelset_set_many against labelset_set one pair at a time: the same set for random sequences with
 * repeated names, empty and NULL values (deletions), on random starting sets. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "labels/labels.h"
#include "util/xalloc.h"

static unsigned next(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

static char *pick_name(unsigned *s)
{
    char b[32];
    snprintf(b, sizeof b, "%s%u", next(s) % 2 ? "a_label_" : "a_labelpresent_", next(s) % 40);
    return xstrdup(b);
}

static char *pick_value(unsigned *s)
{
    unsigned r = next(s) % 10;
    if (r == 0)
        return NULL;
    if (r == 1)
        return xstrdup("");
    char b[16];
    snprintf(b, sizeof b, "v%u", next(s) % 5);
    return xstrdup(b);
}

Test(labels, set_many_is_set_in_order)
{
    unsigned s = 7;
    for (int round = 0; round < 2000; round++) {
        labelset one = LABELSET_INIT, many = LABELSET_INIT;
        size_t start = next(&s) % 30;
        for (size_t i = 0; i < start; i++) {
            char *n = pick_name(&s), *v = pick_value(&s);
            labelset_set(&one, n, v);
            labelset_set(&many, n, v);
            free(n);
            free(v);
        }
        size_t n = next(&s) % 60;
        label *pairs = malloc((n ? n : 1) * sizeof *pairs);
        for (size_t i = 0; i < n; i++) {
            pairs[i].name = pick_name(&s);
            pairs[i].value = pick_value(&s);
            labelset_set(&one, pairs[i].name, pairs[i].value);
        }
        labelset_set_many(&many, pairs, n);
        free(pairs);
        cr_assert(labelset_equal(&one, &many), "round %d", round);
        cr_assert_eq(one.n, many.n, "round %d", round);
        for (size_t i = 0; i < many.n; i++) {
            cr_assert(many.v[i].value[0], "round %d: an empty value kept", round);
            if (i)
                cr_assert_lt(strcmp(many.v[i - 1].name, many.v[i].name), 0, "round %d: not sorted", round);
        }
        labelset_set(&many, "zz", "after"); /* the set still grows as a set */
        cr_assert_str_eq(labelset_get(&many, "zz"), "after");
        labelset_free(&one);
        labelset_free(&many);
    }
}

/* A map of 200,000 names, each with its label_ and labelpresent_ pair, in descending order (every new
 * name lands in the middle one at a time): all there, sorted. */
Test(labels, set_many_large_map)
{
    size_t n = 200000;
    label *pairs = malloc(2 * n * sizeof *pairs);
    for (size_t i = 0; i < n; i++) {
        char b[64];
        snprintf(b, sizeof b, "m_label_%07zu", n - i);
        pairs[2 * i].name = xstrdup(b);
        pairs[2 * i].value = xstrdup("x");
        snprintf(b, sizeof b, "m_labelpresent_%07zu", n - i);
        pairs[2 * i + 1].name = xstrdup(b);
        pairs[2 * i + 1].value = xstrdup("true");
    }
    labelset ls = LABELSET_INIT;
    labelset_set(&ls, "a", "first");
    labelset_set_many(&ls, pairs, 2 * n);
    free(pairs);
    cr_assert_eq(ls.n, 2 * n + 1);
    cr_assert_str_eq(ls.v[0].name, "a");
    cr_assert_str_eq(ls.v[1].name, "m_label_0000001");
    cr_assert_str_eq(ls.v[n + 1].name, "m_labelpresent_0000001");
    cr_assert_str_eq(labelset_get(&ls, "m_labelpresent_0123456"), "true");
    labelset_free(&ls);
}
