/* fuzz_payload: payload_parse on arbitrary bytes (a scraped body is fully untrusted), then every
 * serializer on what parsed, so the parsed structure is walked end to end; parsed timestamps (years 0000..9999)
 * must survive a format/parse round trip. The first 8 bytes, read as an int64, also go through payload_format_time (any
 * value must format without UB). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "periskop/payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    if (size >= 8) {
        int64_t ms;
        memcpy(&ms, data, 8);
        char t[64];
        payload_format_time(ms, t, sizeof t);
    }
    payload_doc *p = payload_parse((const char *)data, size, "http://fuzz/errors", err, sizeof err);
    if (!p)
        return 0;
    strbuf sb;
    strbuf_init(&sb);
    for (size_t i = 0; i < p->n_aggregates; i++) {
        const payload_aggregate *a = &p->aggregates[i];
        for (size_t j = 0; j < a->n_occurrences; j++) {
            int64_t ts = a->occurrences[j]->timestamp_ms, back;
            /* Years 0000..9999 (an offset can push 0000-01-01 into year -1, which RFC 3339 cannot write). */
            if (ts >= -62167219200000LL && ts <= 253402300799999LL) {
                char t[64];
                payload_format_time(ts, t, sizeof t);
                if (payload_parse_time(t, &back) != 0 || back != ts)
                    abort();
            }
            payload_occurrence_write_json(&sb, a->occurrences[j], PAYLOAD_SHAPE_SERVER);
            payload_occurrence_write_json(&sb, a->occurrences[j], PAYLOAD_SHAPE_CLIENT);
            strbuf_reset(&sb);
        }
    }
    strbuf_free(&sb);
    payload_free(p);
    return 0;
}
