/* Small file helpers shared by unit tests (header-only, like heap_use.h).
 * test_slurp: a whole file read into a NUL-terminated heap buffer (free it); *len gets its length.
 * test_open_fds: how many descriptors this process has open (/proc/self/fd), for tests showing that an
 * operation closes everything it opened. */
#ifndef LOOKOUT_TESTS_TEST_FILES_H
#define LOOKOUT_TESTS_TEST_FILES_H
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

static inline char *test_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (tests run from the repository root)", path);
    size_t cap = 1 << 16, n = 0, r;
    char *b = malloc(cap + 1);
    cr_assert_not_null(b);
    while ((r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            b = realloc(b, cap + 1);
            cr_assert_not_null(b);
        }
    }
    cr_assert(!ferror(f), "read error on %s", path);
    fclose(f);
    b[n] = '\0';
    if (len)
        *len = n;
    return b;
}

static inline int test_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}
#endif
