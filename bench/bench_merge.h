/* Shared by the store benchmarks (store_bench.c, upsert_cost.c): one synthetic target's body parsed and
 * merged into a change set, labelled job=JOB, instance=URL, as the ingest writer would. */
#ifndef LOOKOUT_BENCH_MERGE_H
#define LOOKOUT_BENCH_MERGE_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "labels/labels.h"
#include "periskop/payload.h"
#include "store/merge.h"

static inline void bench_merge_body(merge_engine *e, const char *body, const char *job, const char *url,
                                    int64_t now, merge_changeset *cs)
{
    char err[256];
    payload_doc *d = payload_parse(body, strlen(body), url, err, sizeof err);
    if (!d) {
        fprintf(stderr, "parse: %s\n", err);
        exit(1);
    }
    labelset ls;
    labelset_init(&ls);
    labelset_set(&ls, "job", job);
    labelset_set(&ls, "instance", url);
    merge_input in = {.job = job, .url = url, .labels = &ls, .doc = d, .now_ms = now};
    merge_apply(e, &in, cs);
    labelset_free(&ls);
    payload_free(d);
}
#endif
