/* fuzz_file_sd: sd_file_parse on arbitrary bytes. The first byte picks the format (even: JSON, odd: YAML),
 * the rest is the file's content. */
#include <stdint.h>
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
    if (sd_file_parse(path, (const char *)data + 1, size - 1, &g, &n, err, sizeof err) == 0)
        sd_groups_free(g, n);
    return 0;
}
