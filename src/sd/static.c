/* static: static_configs. One group per block, source = the block's index ("0", "1", ... as Prometheus
 * numbers its static groups), labels from the block, each target -> {__address__}. Emits once, at start;
 * no thread. */
#include <stdio.h>

#include "sd/sd_internal.h"

static int static_start(sd_provider *p, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    const static_sd_config *sc = &p->cfg->u.static_sd;
    char source[32];
    snprintf(source, sizeof source, "%d", p->cfg->index);
    target_group g;
    target_group_init(&g, source);
    labelset_copy(&g.labels, &sc->labels);
    for (size_t i = 0; i < sc->n_targets; i++) {
        labelset t = LABELSET_INIT;
        labelset_set(&t, "__address__", sc->targets[i]);
        target_group_add_target(&g, &t);
        labelset_free(&t);
    }
    sd_provider_update(p, &g, 1);
    sd_provider_mark_success(p);
    target_group_free(&g);
    return 0;
}

static void static_stop(sd_provider *p)
{
    (void)p;
}

static void static_destroy(sd_provider *p)
{
    (void)p;
}

const sd_provider_ops sd_static_ops = {
    .kind = "static",
    .start = static_start,
    .stop = static_stop,
    .destroy = static_destroy,
};
