/* Self-monitoring collector: client-format export that our own parser (and Periskop) accepts. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "periskop/selfexc.h"

#define T0 1709377200000LL

static payload_doc *export_parse(selfexc *c)
{
    size_t len;
    char *body = selfexc_export(c, &len);
    char err[256];
    payload_doc *d = payload_parse(body, len, "fallback", err, sizeof(err));
    cr_assert_not_null(d, "%s: %s", err, body);
    cr_assert_eq(d->skipped_aggregates + d->skipped_occurrences, 0, "%s", d->first_problem);
    free(body);
    return d;
}

Test(selfexc, export_roundtrip)
{
    selfexc *c = selfexc_new();
    const char *u = selfexc_target_uuid(c);
    cr_assert_eq(strlen(u), 36);
    cr_assert_eq(u[14], '4');
    selfexc_report_at(c, T0, "scrape-error", "curl", "Get \"http://x\": timeout", PAYLOAD_WARNING, "GET", "http://x");
    selfexc_report_at(c, T0 + 1000, "scrape-error", "curl", "second", PAYLOAD_ERROR, "GET", "http://y");
    selfexc_report_at(c, T0 + 2000, "store", NULL, "disk full", PAYLOAD_ERROR, NULL, NULL);
    payload_doc *d = export_parse(c);
    cr_assert_str_eq(d->target_uuid, u);
    cr_assert_eq(d->n_aggregates, 2);
    payload_aggregate *a = &d->aggregates[0];
    cr_assert_str_eq(a->key, "scrape-error");
    cr_assert_eq(a->total_count, 2);
    cr_assert_eq(a->severity, PAYLOAD_ERROR);
    cr_assert_eq(a->created_at_ms, T0);
    cr_assert_eq(a->n_occurrences, 2);
    cr_assert_str_eq(a->occurrences[0]->error.message, "Get \"http://x\": timeout"); /* oldest first */
    cr_assert_eq(a->occurrences[0]->timestamp_ms, T0);
    cr_assert_str_eq(a->occurrences[0]->http->url, "http://x");
    cr_assert_neq(strcmp(a->occurrences[0]->uuid, a->occurrences[1]->uuid), 0);
    cr_assert_null(d->aggregates[1].occurrences[0]->http);
    cr_assert_str_eq(d->aggregates[1].occurrences[0]->error.class_name, "");
    payload_free(d);
    selfexc_free(c);
}

Test(selfexc, keeps_last_ten)
{
    selfexc *c = selfexc_new();
    for (int i = 0; i < 25; i++) {
        char m[16];
        snprintf(m, sizeof(m), "m%d", i);
        selfexc_report_at(c, T0 + i, "k", "E", m, PAYLOAD_ERROR, NULL, NULL);
    }
    payload_doc *d = export_parse(c);
    cr_assert_eq(d->aggregates[0].total_count, 25);
    cr_assert_eq(d->aggregates[0].n_occurrences, 10);
    cr_assert_str_eq(d->aggregates[0].occurrences[0]->error.message, "m15");
    cr_assert_str_eq(d->aggregates[0].occurrences[9]->error.message, "m24");
    payload_free(d);
    selfexc_free(c);
}

Test(selfexc, key_bound)
{
    selfexc *c = selfexc_new();
    for (int i = 0; i < SELFEXC_MAX_KEYS + 5; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%d", i);
        selfexc_report_at(c, T0, k, "E", "m", PAYLOAD_ERROR, NULL, NULL);
    }
    cr_assert_eq(selfexc_dropped(c), 5);
    payload_doc *d = export_parse(c);
    cr_assert_eq(d->n_aggregates, SELFEXC_MAX_KEYS);
    payload_free(d);
    selfexc_free(c);
}

static void *hammer(void *arg)
{
    for (int i = 0; i < 500; i++)
        selfexc_report(arg, i % 2 ? "a" : "b", "E", "m", PAYLOAD_ERROR, "GET", "/x");
    return NULL;
}

Test(selfexc, thread_safe)
{
    selfexc *c = selfexc_new();
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, c);
    for (int i = 0; i < 20; i++)
        free(selfexc_export(c, NULL));
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    payload_doc *d = export_parse(c);
    cr_assert_eq(d->aggregates[0].total_count + d->aggregates[1].total_count, 2000);
    payload_free(d);
    selfexc_free(c);
}
