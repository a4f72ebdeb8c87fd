/* fuzz_config: config_parse on arbitrary bytes (YAML, Prometheus or Periskop shape). The name carries no
 * directory, so relative file_sd paths resolve against "." and nothing is read from disk. */
#include <stdint.h>
#include <stdlib.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256 * 1024)
        return 0;
    char err[1024];
    lookout_config *c = config_parse((const char *)data, size, "fuzz.yml", err, sizeof err);
    config_free(c);
    return 0;
}
