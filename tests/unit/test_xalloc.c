/* util/xalloc.h and util/strv: the zero-size and NULL conventions the callers rely on. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "util/strv.h"
#include "util/xalloc.h"

Test(xalloc, zero_sizes_give_freeable_distinct_pointers)
{
    char *a = xmalloc(0), *b = xcalloc(0, sizeof(int)), *c = xcalloc(3, 0);
    cr_assert(a && b && c);
    cr_assert(a != b && b != c && a != c);
    int *z = xcalloc(4, sizeof(int));
    for (int i = 0; i < 4; i++)
        cr_assert_eq(z[i], 0);
    /* glibc realloc(p, 0) frees p and returns NULL; xrealloc must keep a live pointer instead. */
    z = xrealloc(z, 0);
    cr_assert_not_null(z);
    z = xrealloc(z, 8 * sizeof(int));
    z[7] = 7;
    cr_assert_eq(z[7], 7);
    free(a), free(b), free(c), free(z);
}

Test(xalloc, xrealloc_null_allocates)
{
    char *p = xrealloc(NULL, 5);
    memcpy(p, "abcd", 5);
    cr_assert_str_eq(p, "abcd");
    free(p);
}

Test(xalloc, xstrdup_null_conventions)
{
    cr_assert_null(xstrdup(NULL));
    char *e = xstrdup_or_empty(NULL);
    cr_assert_str_eq(e, "");
    const char *src = "job";
    char *d = xstrdup(src), *f = xstrdup_or_empty(src);
    cr_assert_str_eq(d, "job");
    cr_assert_str_eq(f, "job");
    cr_assert(d != src && f != src);
    free(e), free(d), free(f);
}

Test(strv, copy_is_deep_and_keeps_or_fills_null)
{
    char a[] = "a", b[] = "b";
    char *v[] = {a, NULL, b};
    char **c = strv_copy(v, 3), **e = strv_copy_or_empty(v, 3);
    cr_assert_str_eq(c[0], "a");
    cr_assert_null(c[1]);
    cr_assert_str_eq(c[2], "b");
    cr_assert_str_eq(e[1], "");
    cr_assert(c[0] != a && e[2] != b);
    a[0] = 'x';
    cr_assert_str_eq(c[0], "a");
    strv_free(c, 3);
    strv_free(e, 3);
}

Test(strv, empty_is_null_and_free_accepts_it)
{
    cr_assert_null(strv_copy(NULL, 0));
    cr_assert_null(strv_copy_or_empty(NULL, 0));
    strv_free(NULL, 0);
}

Test(strv, equal_compares_length_and_order)
{
    char *a[] = {"x", "y"}, *b[] = {"x", "y"}, *c[] = {"y", "x"};
    cr_assert(strv_equal(a, 2, b, 2));
    cr_assert(strv_equal(NULL, 0, NULL, 0));
    cr_assert_not(strv_equal(a, 2, c, 2));
    cr_assert_not(strv_equal(a, 2, b, 1));
}
