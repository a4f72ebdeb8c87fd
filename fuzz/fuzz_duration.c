/* fuzz_duration: duration_parse on arbitrary text; whatever parses must format and re-parse to the same
 * value (Prometheus' model.Duration round trip). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/duration.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256)
        return 0;
    char s[257];
    memcpy(s, data, size);
    s[size] = '\0';
    int64_t ms;
    if (duration_parse(s, &ms) != 0)
        return 0;
    if (ms < 0)
        abort(); /* durations are never negative */
    char buf[64];
    duration_format(ms, buf, sizeof buf);
    int64_t again;
    if (duration_parse(buf, &again) != 0 || again != ms)
        abort();
    return 0;
}
