/* path: see path.h. */
#include "util/path.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

char *path_clean(const char *p)
{
    size_t n = strlen(p);
    if (n == 0)
        return xstrdup(".");
    /* The result is never longer than the input, except "" -> "." handled above. */
    char *out = xmalloc(n + 1);
    bool rooted = p[0] == '/';
    size_t w = 0;      /* bytes written to out */
    size_t floor = 0;  /* out[0..floor) cannot be removed by "..": the root or leading ".." elements */
    size_t r = 0;
    if (rooted) {
        out[w++] = '/';
        floor = 1;
        r = 1;
    }
    while (r < n) {
        if (p[r] == '/') {
            r++;
        } else if (p[r] == '.' && (r + 1 == n || p[r + 1] == '/')) {
            r++; /* "." element */
        } else if (p[r] == '.' && p[r + 1] == '.' && (r + 2 == n || p[r + 2] == '/')) {
            r += 2; /* ".." element */
            if (w > floor) {
                /* drop the last element and the slash before it */
                w--;
                while (w > floor && out[w] != '/')
                    w--;
            } else if (!rooted) {
                /* nothing left to remove: keep the "..", it leads the path */
                if (w > 0)
                    out[w++] = '/';
                out[w++] = '.';
                out[w++] = '.';
                floor = w;
            }
            /* rooted: ".." of the root is the root */
        } else {
            if ((rooted && w != 1) || (!rooted && w != 0))
                out[w++] = '/';
            while (r < n && p[r] != '/')
                out[w++] = p[r++];
        }
    }
    if (w == 0)
        out[w++] = '.';
    out[w] = '\0';
    return out;
}

char *path_join(const char *a, const char *b)
{
    a = a ? a : "";
    b = b ? b : "";
    if (!a[0] && !b[0])
        return xstrdup("");
    if (!a[0])
        return path_clean(b);
    if (!b[0])
        return path_clean(a);
    size_t la = strlen(a), lb = strlen(b);
    char *j = xmalloc(la + lb + 2);
    memcpy(j, a, la);
    j[la] = '/';
    memcpy(j + la + 1, b, lb + 1);
    char *c = path_clean(j);
    free(j);
    return c;
}
