/* fuzz_file_sd: sd_file_parse on arbitrary bytes. The first byte picks the format (even: JSON, odd: YAML),
 * the rest is the file's content. Checks what the providers rely on: only groups with targets come out, in
 * strictly ascending positions (sd_groups_gone merges on that), and they stay growable. */
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
            target_group_add_target(&g[i], &t); /* the capacity invariant of target_group_add_target */
            labelset_free(&t);
        }
        sd_groups_free(g, n);
    }
    return 0;
}
