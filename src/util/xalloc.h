/* xalloc: allocation helpers that abort on failure.
 * lookout's policy is that a monitor cannot recover from running out of memory (a half-built target
 * list or exception group is worse than a restart), so these never return NULL for a real allocation.
 * Zero sizes are rounded up to one so that every successful call returns a distinct, freeable pointer
 * (glibc's realloc(p, 0) frees p and returns NULL, which callers would otherwise mistake for OOM). */
#ifndef LOOKOUT_UTIL_XALLOC_H
#define LOOKOUT_UTIL_XALLOC_H
#include <stdlib.h>
#include <string.h>

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        abort();
    return p;
}

static inline void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        abort();
    return p;
}

static inline void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        abort();
    return p;
}

/* NULL in, NULL out: for optional strings. */
static inline char *xstrdup(const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

/* The first n bytes of s (fewer at a NUL), NUL-terminated. */
static inline char *xstrndup(const char *s, size_t n)
{
    char *d = strndup(s, n);
    if (!d)
        abort();
    return d;
}

/* NULL in, "" out: for strings that must always be set. */
static inline char *xstrdup_or_empty(const char *s)
{
    return xstrdup(s ? s : "");
}

#endif
