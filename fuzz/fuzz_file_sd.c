/* fuzz_file_sd: sd_file_parse on arbitrary bytes. The first byte picks the format (even: JSON, odd: YAML),
 * the rest is the file's content. Checks what the providers rely on: only groups with targets come out, in
 * strictly ascending positions (sd_groups_gone merges on that), YAML groups stay growable, JSON groups (frozen
 * views) copy to equal plain groups that are. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sd/sd_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 256 * 1024)
        return 0;
    const char *path = (data[0] & 1) ? "/sd/targets.yml" : "/sd/targets.json";
    target_group *g = NULL;
    size_t n = 0;
    char err[512];
    if (sd_file_parse(path, (const char *)data + 1, size - 1, &g, &n, err, sizeof err) == 0) {
        for (size_t i = 0; i < n; i++) {
            if (!g[i].n_targets || (i && sd_group_index(&g[i]) <= sd_group_index(&g[i - 1]))) {
                fprintf(stderr, "group %zu (%s): %zu targets, out of order or empty\n", i, g[i].source,
                        g[i].n_targets);
                abort();
            }
            labelset t = LABELSET_INIT;
            labelset_set(&t, "__address__", "x:1");
            if (g[i].gen) {
                /* JSON groups come frozen (read-only views): a deep copy holds the same content and is a
                 * plain group again, growable */
                target_group c;
                target_group_copy(&c, &g[i]);
                bool same = c.gen == 0 && c.n_targets == g[i].n_targets && labelset_equal(&c.labels, &g[i].labels);
                for (size_t k = 0; same && k < c.n_targets; k++)
                    same = labelset_equal(&c.targets[k], &g[i].targets[k]);
                if (!same) {
                    fprintf(stderr, "group %zu (%s): its copy differs\n", i, g[i].source);
                    abort();
                }
                target_group_add_target(&c, &t);
                target_group_free(&c);
            } else {
                target_group_add_target(&g[i], &t); /* the capacity invariant of target_group_add_target */
            }
            labelset_free(&t);
        }
        sd_groups_free(g, n);
    }
    return 0;
}
