/* fuzz_payload: payload_parse on arbitrary bytes (a scraped body is fully untrusted), then every
 * serializer on what parsed, so the parsed structure is walked end to end. */
#include <stdint.h>
#include <stdlib.h>

#include "scrape/payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    payload_doc *p = payload_parse((const char *)data, size, "http://fuzz/errors", err, sizeof err);
    if (!p)
        return 0;
    strbuf sb;
    strbuf_init(&sb);
    for (size_t i = 0; i < p->n_aggregates; i++) {
        const payload_aggregate *a = &p->aggregates[i];
        for (size_t j = 0; j < a->n_occurrences; j++) {
            payload_occurrence_write_json(&sb, a->occurrences[j], PAYLOAD_SHAPE_SERVER);
            payload_occurrence_write_json(&sb, a->occurrences[j], PAYLOAD_SHAPE_CLIENT);
            strbuf_reset(&sb);
        }
    }
    strbuf_free(&sb);
    payload_free(p);
    return 0;
}
