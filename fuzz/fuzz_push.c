/* fuzz_push: the push body path end to end: ingest_push (the streaming parse with the push instance
 * fallback, the whole-body refusal of partly malformed payloads, the ingest queue) and the writer thread
 * merging into a memory store, as POST /errors and /api/v1/push/{job} do after the headers were
 * admitted. Byte 0 picks the job (so federated "__lookout_job__" bodies meet existing errors) and whether
 * the same body is pushed twice (the same bytes must be judged the same way); the rest is the body.
 * The store is rebuilt every 4096 inputs so that its growth stays bounded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"
#include "periskop/selfexc.h"
#include "store/store.h"

static store *st;
static selfexc *sx;
static ingest *in;
static unsigned runs;

static void setup(void)
{
    if (in && ++runs % 4096)
        return;
    if (in) {
        ingest_free(in);
        selfexc_free(sx);
        store_close(st);
    }
    st = store_memory_new(NULL);
    sx = selfexc_new();
    in = ingest_new(st, NULL, sx, NULL);
    char err[256];
    if (ingest_start(in, err, sizeof err) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    setup();
    static const char *const jobs[] = {"pushed", "api", "billing", "x"};
    const char *job = jobs[data[0] & 3];
    bool twice = data[0] & 4;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char err[512];
    ingest_push_info info;
    ingest_push_result r = ingest_push(in, job, "fuzz", body, len, 5000, &info, err, sizeof err);
    if (r == INGEST_PUSH_BUSY)
        abort(); /* one push at a time never fills a 256 MiB queue */
    if (r == INGEST_PUSH_INVALID && !err[0])
        abort(); /* a refusal always says why */
    if (twice && r != INGEST_PUSH_INVALID) {
        ingest_push_result r2 = ingest_push(in, job, "fuzz", body, len, 5000, &info, err, sizeof err);
        if (r2 == INGEST_PUSH_INVALID)
            abort(); /* the same bytes cannot parse differently */
    }
    return 0;
}
