/* duration: see duration.h. Mirrors prometheus/common model.ParseDuration and Duration.String. */
#include "util/duration.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *unit;
    int64_t mult;
    int exact; /* String(): y and w only when they divide evenly ("90d" reads better than "12w6d") */
} units[] = {
    {"y", 365LL * 24 * 3600 * 1000, 1}, {"w", 7LL * 24 * 3600 * 1000, 1}, {"d", 24LL * 3600 * 1000, 0},
    {"h", 3600LL * 1000, 0},            {"m", 60LL * 1000, 0},            {"s", 1000, 0},
    {"ms", 1, 0},
};
#define N_UNITS (sizeof units / sizeof *units)

int duration_parse(const char *s, int64_t *ms)
{
    if (!s || !*s)
        return -1;
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    const char *p = s;
    size_t next_unit = 0; /* units must appear in order y w d h m s ms, each at most once */
    int64_t total = 0;
    while (*p) {
        if (*p < '0' || *p > '9')
            return -1;
        int64_t v = 0;
        while (*p >= '0' && *p <= '9') {
            if (v > (INT64_MAX - 9) / 10)
                return -1;
            v = v * 10 + (*p - '0');
            p++;
        }
        size_t u;
        for (u = next_unit; u < N_UNITS; u++) {
            size_t ul = strlen(units[u].unit);
            /* "m" must not swallow the "m" of "ms" */
            if (strncmp(p, units[u].unit, ul) == 0 && !(u == 4 && p[1] == 's'))
                break;
        }
        if (u == N_UNITS)
            return -1;
        if (v > INT64_MAX / units[u].mult || total > INT64_MAX - v * units[u].mult)
            return -1;
        total += v * units[u].mult;
        p += strlen(units[u].unit);
        next_unit = u + 1;
    }
    *ms = total;
    return 0;
}

const char *duration_format(int64_t ms, char *buf, size_t n)
{
    if (n == 0)
        return buf;
    buf[0] = '\0';
    if (ms == 0) {
        snprintf(buf, n, "0s");
        return buf;
    }
    size_t len = 0;
    for (size_t u = 0; u < N_UNITS; u++) {
        if (units[u].exact && ms % units[u].mult != 0)
            continue;
        int64_t v = ms / units[u].mult;
        if (v > 0) {
            int w = snprintf(buf + len, len < n ? n - len : 0, "%lld%s", (long long)v, units[u].unit);
            if (w > 0)
                len += (size_t)w;
            ms -= v * units[u].mult;
        }
    }
    return buf;
}
