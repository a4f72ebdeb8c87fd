/* group: target_group helpers (sd.h). Plain groups are values: every string and label set is owned.
 * Frozen groups and their views: frozen.c. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sd/sd_internal.h"

void target_group_init(target_group *g, const char *source)
{
    g->source = strdup(source ? source : "");
    if (!g->source)
        abort();
    labelset_init(&g->labels);
    g->targets = NULL;
    g->n_targets = 0;
    g->gen = 0;
}

void target_group_free(target_group *g)
{
    if (!g)
        return;
    if (g->gen) { /* a view of a frozen group: its reference */
        if (g->source)
            target_group_unref(g);
        *g = (target_group){0};
        return;
    }
    free(g->source);
    g->source = NULL;
    labelset_free(&g->labels);
    for (size_t i = 0; i < g->n_targets; i++)
        labelset_free(&g->targets[i]);
    free(g->targets);
    g->targets = NULL;
    g->n_targets = 0;
}

void target_group_copy(target_group *dst, const target_group *src)
{
    target_group_init(dst, src->source);
    label_view lv = target_group_labels(src);
    label_view_copy(&dst->labels, &lv);
    if (src->n_targets) {
        /* capacity rounded up to a power of two: the invariant target_group_add_target relies on */
        size_t cap = 1;
        while (cap < src->n_targets)
            cap *= 2;
        dst->targets = malloc(cap * sizeof(labelset));
        if (!dst->targets)
            abort();
        for (size_t i = 0; i < src->n_targets; i++)
            labelset_copy(&dst->targets[i], &src->targets[i]);
        dst->n_targets = src->n_targets;
    }
}

void target_group_add_target(target_group *g, const labelset *target)
{
    /* grow by doubling: n_targets is the only size we keep, so capacity is the next power of two */
    size_t n = g->n_targets;
    if ((n & (n - 1)) == 0) {
        size_t cap = n ? n * 2 : 1;
        labelset *nt = realloc(g->targets, cap * sizeof(labelset));
        if (!nt)
            abort();
        g->targets = nt;
    }
    labelset_copy(&g->targets[n], target);
    g->n_targets = n + 1;
}

void sd_groups_free(target_group *g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        target_group_free(&g[i]);
    free(g);
}

int64_t sd_now_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double sd_now_unix(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

size_t sd_group_index(const target_group *g)
{
    const char *c = g->source ? strrchr(g->source, ':') : NULL;
    return c ? (size_t)strtoull(c + 1, NULL, 10) : 0;
}

size_t sd_groups_gone(const size_t *old, size_t n_old, const target_group *now, size_t n_now, size_t *gone)
{
    size_t k = 0, j = 0;
    for (size_t i = 0; i < n_old; i++) {
        while (j < n_now && sd_group_index(&now[j]) < old[i])
            j++;
        if (!(j < n_now && sd_group_index(&now[j]) == old[i]))
            gone[k++] = old[i];
    }
    return k;
}
