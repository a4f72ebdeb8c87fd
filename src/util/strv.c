/* strv: see strv.h. */
#include "util/strv.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

static char **copy(char *const *v, size_t n, char *(*dup)(const char *))
{
    if (!n)
        return NULL;
    char **d = xcalloc(n, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        d[i] = dup(v[i]);
    return d;
}

char **strv_copy(char *const *v, size_t n)
{
    return copy(v, n, xstrdup);
}

char **strv_copy_or_empty(char *const *v, size_t n)
{
    return copy(v, n, xstrdup_or_empty);
}

void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

bool strv_equal(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}
