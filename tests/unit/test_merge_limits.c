/* Merge engine under hostile and runaway input (issue 12): forged instance ids, saturating counts,
 * future timestamps, max_errors_per_job overflow, retention of errors, state written before instance ids
 * named their source, linear federation grouping. Literal expected values throughout. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"
#include "store/merge.h"
#include "util/metrics.h"

#define T0 1709377200000LL /* 2024-03-02T11:00:00Z, a minute boundary */
#define MIN 60000LL

static payload_doc *P(const char *url, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static payload_doc *P(const char *url, const char *fmt, ...)
{
    static char body[1 << 16];
    char err[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    payload_doc *d = payload_parse(body, strlen(body), url, err, sizeof(err));
    cr_assert_not_null(d, "%s: %s", err, body);
    return d;
}

static merge_engine *E;
static merge_changeset CS;

static void setup(void)
{
    merge_options o = {.max_errors_per_job = 3, .retention_ms = 10 * MIN, .samples_per_error = 3};
    E = merge_new(&o);
    merge_changeset_init(&CS);
}
static void teardown(void)
{
    merge_changeset_free(&CS);
    merge_free(E);
}

static size_t apply_src(const char *job, const char *url, const char *source, payload_doc *d, int64_t now)
{
    merge_input in = {.job = job, .url = url, .source = source, .doc = d, .now_ms = now};
    size_t n = merge_apply(E, &in, &CS);
    payload_free(d);
    return n;
}

static size_t apply(const char *job, const char *url, payload_doc *d, int64_t now)
{
    return apply_src(job, url, NULL, d, now);
}

static uint64_t count(const char *job, const char *key)
{
    merge_aggregate_info ai;
    cr_assert(merge_get(E, job, key, &ai), "no aggregate %s/%s", job, key);
    return ai.total_count;
}

static bool exists(const char *job, const char *key)
{
    merge_aggregate_info ai;
    return merge_get(E, job, key, &ai);
}

/* {"target_uuid": uuid, "aggregated_errors": [{key, count}...]} with no occurrences. */
static payload_doc *counts(const char *uuid, int n, ...)
{
    char aggs[4096] = "";
    size_t off = 0;
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const char *key = va_arg(ap, const char *);
        unsigned long long c = va_arg(ap, unsigned long long);
        off += (size_t)snprintf(aggs + off, sizeof(aggs) - off, "%s{\"aggregation_key\":\"%s\",\"total_count\":%llu}",
                                i ? "," : "", key, c);
    }
    va_end(ap);
    return P("http://fallback", "{\"target_uuid\":\"%s\",\"aggregated_errors\":[%s]}", uuid, aggs);
}

TestSuite(merge_limits, .init = setup, .fini = teardown);

/* A push (or another target) that copies a scraped target's target_uuid is an instance of its own: it
 * counts its claim once and never re-adds the scraped count. (Before: 1000 became 3000 in three pushes.) */
Test(merge_limits, forged_target_uuid_cannot_readd_a_scraped_count)
{
    apply("api", "http://a", counts("A", 1, "k", 1000ULL), T0);
    for (int i = 1; i <= 3; i++) {
        apply_src("api", "push:A", "push", counts("A", 1, "k", 1000ULL), T0 + i * MIN);
        apply("api", "http://a", counts("A", 1, "k", 1000ULL), T0 + i * MIN);
    }
    cr_assert_eq(count("api", "k"), 2000);
    /* another scrape target posing as A */
    apply("api", "http://evil", counts("A", 1, "k", 1000ULL), T0 + 5 * MIN);
    apply("api", "http://a", counts("A", 1, "k", 1000ULL), T0 + 5 * MIN);
    apply("api", "http://evil", counts("A", 1, "k", 1000ULL), T0 + 6 * MIN);
    cr_assert_eq(count("api", "k"), 3000);
    /* the real target still counts its own increases exactly */
    apply("api", "http://a", counts("A", 1, "k", 1005ULL), T0 + 7 * MIN);
    cr_assert_eq(count("api", "k"), 3005);
}

Test(merge_limits, restart_of_a_scraped_target_still_adds)
{
    apply("api", "http://a", counts("A1", 1, "k", 10ULL), T0);
    apply("api", "http://a", counts("A2", 1, "k", 3ULL), T0 + MIN);
    cr_assert_eq(count("api", "k"), 13);
    merge_state st;
    merge_snapshot(E, &st);
    cr_assert_eq(st.n_instances, 2);
    bool seen = false;
    for (size_t i = 0; i < st.n_instances; i++)
        seen |= strcmp(st.instances[i].instance_id, "http://a\x1f" "A2") == 0;
    cr_assert(seen);
    merge_state_free(&st);
}

/* Counts saturate at INT64_MAX (what BIGINT holds) instead of wrapping, per instance and in total, and so
 * do the per-minute increases handed to the store. */
Test(merge_limits, counts_saturate_at_int64_max)
{
    apply("api", "http://a", counts("A", 1, "k", 9223372036854775800ULL), T0);
    cr_assert_eq(count("api", "k"), 9223372036854775800ULL);
    apply("api", "http://b", counts("B", 1, "k", 1000ULL), T0);
    cr_assert_eq(count("api", "k"), 9223372036854775807ULL);
    apply("api", "http://c", counts("C", 1, "k", 9223372036854775807ULL), T0);
    cr_assert_eq(count("api", "k"), 9223372036854775807ULL);
    apply("api", "http://b", counts("B", 1, "k", 2000ULL), T0 + MIN);
    cr_assert_eq(count("api", "k"), 9223372036854775807ULL);
    /* the change set's per-minute increases never exceed the maximum either */
    cr_assert_eq(CS.n, 1);
    uint64_t sum = 0;
    for (size_t i = 0; i < CS.v[0].n_series; i++) {
        cr_assert_leq(CS.v[0].series[i].delta, 9223372036854775807ULL);
        sum = sum > 9223372036854775807ULL - CS.v[0].series[i].delta ? 9223372036854775807ULL
                                                                      : sum + CS.v[0].series[i].delta;
    }
    cr_assert_eq(CS.v[0].series[0].minute, T0 / MIN);
    cr_assert_eq(CS.v[0].series[0].delta, 9223372036854775807ULL);
    cr_assert_eq(CS.v[0].series[1].minute, T0 / MIN + 1);
    cr_assert_eq(CS.v[0].series[1].delta, 1000);
    cr_assert_eq(CS.v[0].total_count, 9223372036854775807ULL);
}

/* An occurrence dated 9999 is stored at receive time: it cannot hold the newest slot forever. */
Test(merge_limits, future_timestamps_are_stored_at_receive_time)
{
    merge_free(E);
    merge_options o = {.samples_per_error = 1};
    E = merge_new(&o);
    apply("api", "http://a",
          P("http://a", "{\"target_uuid\":\"A\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":1,"
                        "\"created_at\":\"9999-12-31T00:00:00Z\",\"latest_errors\":[{\"error\":{\"class\":\"E\","
                        "\"message\":\"future\"},\"uuid\":\"u1\",\"timestamp\":\"9999-12-31T23:59:59Z\"}]}]}"),
          T0);
    merge_aggregate_info ai;
    cr_assert(merge_get(E, "api", "k", &ai));
    cr_assert_eq(ai.n_samples, 1);
    cr_assert_eq(ai.samples[0]->timestamp_ms, T0);
    cr_assert_eq(ai.last_seen_ms, T0);
    cr_assert_eq(ai.created_at_ms, T0);
    /* within the skew (4 minutes ahead): kept as sent */
    apply("api", "http://a",
          P("http://a", "{\"target_uuid\":\"A\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":2,"
                        "\"latest_errors\":[{\"error\":{\"class\":\"E\",\"message\":\"soon\"},\"uuid\":\"u2\","
                        "\"timestamp\":\"2024-03-02T11:05:00Z\"}]}]}"),
          T0 + MIN);
    cr_assert(merge_get(E, "api", "k", &ai));
    cr_assert_str_eq(ai.samples[0]->uuid, "u2");
    cr_assert_eq(ai.samples[0]->timestamp_ms, T0 + 5 * MIN);
    /* and a later present occurrence replaces it in the only slot */
    apply("api", "http://a",
          P("http://a", "{\"target_uuid\":\"A\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":3,"
                        "\"latest_errors\":[{\"error\":{\"class\":\"E\",\"message\":\"now\"},\"uuid\":\"u3\","
                        "\"timestamp\":\"2024-03-02T11:06:00Z\"}]}]}"),
          T0 + 7 * MIN);
    cr_assert(merge_get(E, "api", "k", &ai));
    cr_assert_str_eq(ai.samples[0]->uuid, "u3");
    cr_assert_eq(count("api", "k"), 3);
}

/* A future-dated occurrence the error already holds, sent again in a body that changed for another key,
 * is no new sighting: the error's last occurrence stays where it was. */
Test(merge_limits, a_known_future_occurrence_is_no_new_sighting)
{
    const char *fmt = "{\"target_uuid\":\"A\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":1,"
                      "\"latest_errors\":[{\"error\":{\"class\":\"E\"},\"uuid\":\"u1\","
                      "\"timestamp\":\"9999-12-31T23:59:59Z\"}]},{\"aggregation_key\":\"other\",\"total_count\":%d}]}";
    apply("api", "http://a", P("http://a", fmt, 1), T0);
    apply("api", "http://a", P("http://a", fmt, 2), T0 + 5 * MIN);
    merge_aggregate_info ai;
    cr_assert(merge_get(E, "api", "k", &ai));
    cr_assert_eq(ai.samples[0]->timestamp_ms, T0);
    cr_assert_eq(ai.last_seen_ms, T0);
    cr_assert_eq(count("api", "other"), 2);
}

/* max_errors_per_job = 3: keys beyond are counted into lookout.overflow; the sum of counts is exact. */
Test(merge_limits, keys_beyond_the_cap_count_into_the_overflow)
{
    apply("api", "http://a", counts("A", 5, "k1", 1ULL, "k2", 2ULL, "k3", 3ULL, "k4", 4ULL, "k5", 5ULL), T0);
    cr_assert_eq(count("api", "k1"), 1);
    cr_assert_eq(count("api", "k3"), 3);
    cr_assert(!exists("api", "k4"));
    cr_assert(!exists("api", "k5"));
    cr_assert_eq(count("api", "lookout.overflow"), 9);
    merge_stats ms;
    merge_get_stats(E, &ms);
    cr_assert_eq(ms.aggregates, 4);
    /* k4 grows by 2, k6 is new (10): the overflow takes both */
    apply("api", "http://a",
          counts("A", 6, "k1", 1ULL, "k2", 2ULL, "k3", 3ULL, "k4", 6ULL, "k5", 5ULL, "k6", 10ULL), T0 + MIN);
    cr_assert_eq(count("api", "lookout.overflow"), 21);
    /* another instance: its overflowed keys add their own counts */
    apply("api", "http://b", counts("B", 2, "k1", 7ULL, "k9", 100ULL), T0 + MIN);
    cr_assert_eq(count("api", "k1"), 8);
    cr_assert_eq(count("api", "lookout.overflow"), 121);
    /* unchanged report: nothing added */
    apply("api", "http://b", counts("B", 2, "k1", 7ULL, "k9", 100ULL), T0 + 2 * MIN);
    cr_assert_eq(count("api", "lookout.overflow"), 121);
    /* sum over the job = sum of what the instances reported: 1+2+3+6+5+10 + 7+100 */
    cr_assert_eq(count("api", "k1") + count("api", "k2") + count("api", "k3") + count("api", "lookout.overflow"), 134);
    /* other jobs have their own cap */
    apply("web", "http://c", counts("C", 1, "k4", 1ULL), T0);
    cr_assert_eq(count("web", "k4"), 1);
    merge_get_stats(E, &ms);
    cr_assert_eq(ms.aggregates, 5);
}

/* The overflow keeps the newest samples of all overflowed keys; a payload key named lookout.overflow is
 * counted there too. */
Test(merge_limits, overflow_keeps_newest_samples)
{
    apply("api", "http://a", counts("A", 3, "k1", 1ULL, "k2", 1ULL, "k3", 1ULL), T0);
    apply("api", "http://a",
          P("http://a",
            "{\"target_uuid\":\"A\",\"aggregated_errors\":["
            "{\"aggregation_key\":\"x\",\"total_count\":2,\"latest_errors\":["
            "{\"error\":{\"class\":\"E\",\"message\":\"x1\"},\"uuid\":\"x1\",\"timestamp\":\"2024-03-02T10:00:01Z\"},"
            "{\"error\":{\"class\":\"E\",\"message\":\"x2\"},\"uuid\":\"x2\",\"timestamp\":\"2024-03-02T10:00:04Z\"}]},"
            "{\"aggregation_key\":\"y\",\"total_count\":1,\"latest_errors\":["
            "{\"error\":{\"class\":\"E\",\"message\":\"y1\"},\"uuid\":\"y1\",\"timestamp\":\"2024-03-02T10:00:03Z\"}]},"
            "{\"aggregation_key\":\"lookout.overflow\",\"total_count\":5,\"latest_errors\":["
            "{\"error\":{\"class\":\"E\",\"message\":\"o1\"},\"uuid\":\"o1\",\"timestamp\":\"2024-03-02T10:00:02Z\"}]}"
            "]}"),
          T0 + MIN);
    merge_aggregate_info ai;
    cr_assert(merge_get(E, "api", "lookout.overflow", &ai));
    cr_assert_eq(ai.total_count, 8);
    cr_assert_eq(ai.n_samples, 3); /* samples_per_error */
    cr_assert_str_eq(ai.samples[0]->uuid, "x2");
    cr_assert_str_eq(ai.samples[1]->uuid, "y1");
    cr_assert_str_eq(ai.samples[2]->uuid, "o1");
}

/* The overflow is sticky: while it exists, a new key goes there even after retention freed room, so no
 * key is ever counted both in the overflow and on its own. */
Test(merge_limits, overflow_is_sticky_until_it_expires)
{
    apply("api", "http://a", counts("A", 4, "k1", 1ULL, "k2", 1ULL, "k3", 1ULL, "k4", 4ULL), T0);
    cr_assert_eq(count("api", "lookout.overflow"), 4);
    /* k1..k3 go silent; k4 keeps growing (in the overflow) */
    apply("api", "http://a", counts("A", 4, "k1", 1ULL, "k2", 1ULL, "k3", 1ULL, "k4", 6ULL), T0 + 9 * MIN);
    cr_assert_eq(merge_expire(E, T0 + 11 * MIN, &CS), 3);
    cr_assert(!exists("api", "k1"));
    apply("api", "http://a", counts("A", 2, "k4", 7ULL, "k7", 2ULL), T0 + 12 * MIN);
    cr_assert(!exists("api", "k4"));
    cr_assert(!exists("api", "k7"));
    cr_assert_eq(count("api", "lookout.overflow"), 9);
    /* once the overflow itself expired, keys are admitted again */
    cr_assert_eq(merge_expire(E, T0 + 23 * MIN, &CS), 1);
    apply("api", "http://a", counts("A", 1, "k8", 5ULL), T0 + 24 * MIN);
    cr_assert_eq(count("api", "k8"), 5);
    cr_assert(!exists("api", "lookout.overflow"));
}

/* The overflow deleted by retention comes back like any error: holding only the increase over the
 * instance's last overflow count (4 then 10: 6), not its old total. */
Test(merge_limits, expired_overflow_comes_back_with_the_increase_only)
{
    apply("api", "http://a", counts("A", 4, "k1", 1ULL, "k2", 1ULL, "k3", 1ULL, "k4", 4ULL), T0);
    cr_assert_eq(count("api", "lookout.overflow"), 4);
    cr_assert_eq(merge_expire(E, T0 + 11 * MIN, &CS), 4);
    cr_assert(!exists("api", "lookout.overflow"));
    merge_changeset_clear(&CS);
    apply("api", "http://a", counts("A", 4, "k5", 1ULL, "k6", 1ULL, "k7", 1ULL, "k8", 10ULL), T0 + 12 * MIN);
    cr_assert_eq(count("api", "k5"), 1);
    cr_assert_eq(count("api", "lookout.overflow"), 6);
}

/* Counts of the overflow survive a snapshot/restore (the store's restart) without double counting. */
Test(merge_limits, overflow_counts_survive_restore)
{
    apply("api", "http://a", counts("A", 5, "k1", 1ULL, "k2", 2ULL, "k3", 3ULL, "k4", 4ULL, "k5", 5ULL), T0);
    merge_state st;
    merge_snapshot(E, &st);
    merge_options o = {.max_errors_per_job = 3, .retention_ms = 10 * MIN, .samples_per_error = 3};
    merge_engine *e2 = merge_new(&o);
    const char *keys[] = {"k1", "k2", "k3", "lookout.overflow"};
    for (size_t i = 0; i < 4; i++) {
        merge_aggregate_info ai;
        cr_assert(merge_get(E, "api", keys[i], &ai));
        merge_aggregate_state as = {.job = "api", .key = keys[i], .total_count = ai.total_count,
                                    .severity = ai.severity, .created_at_ms = ai.created_at_ms,
                                    .last_seen_ms = ai.last_seen_ms};
        merge_restore_aggregate(e2, &as);
    }
    merge_restore(e2, &st);
    merge_state_free(&st);
    merge_free(E);
    E = e2;
    merge_changeset_clear(&CS);
    cr_assert_eq(apply("api", "http://a", counts("A", 5, "k1", 1ULL, "k2", 2ULL, "k3", 3ULL, "k4", 4ULL, "k5", 5ULL),
                       T0 + MIN),
                 0);
    apply("api", "http://a", counts("A", 5, "k1", 1ULL, "k2", 2ULL, "k3", 3ULL, "k4", 4ULL, "k5", 8ULL), T0 + MIN);
    cr_assert_eq(count("api", "lookout.overflow"), 12);
}

/* Retention: an error without a new occurrence or count increase for the window is deleted, with its
 * per-instance counts and any pending change; the change set tells the store. */
Test(merge_limits, retention_deletes_silent_errors)
{
    merge_free(E);
    merge_options o = {.retention_ms = 10 * MIN};
    E = merge_new(&o);
    apply("api", "http://a", counts("A", 2, "old", 10ULL, "live", 1ULL), T0);
    apply("api", "http://a", counts("A", 2, "old", 10ULL, "live", 2ULL), T0 + 8 * MIN);
    merge_changeset_clear(&CS);
    cr_assert_eq(merge_expire(E, T0 + 10 * MIN, &CS), 0); /* exactly the window: kept */
    cr_assert_eq(merge_expire(E, T0 + 10 * MIN + 1, &CS), 1);
    cr_assert_eq(CS.n_deleted, 1);
    cr_assert_str_eq(CS.deleted[0].job, "api");
    cr_assert_str_eq(CS.deleted[0].key, "old");
    cr_assert(!exists("api", "old"));
    cr_assert_eq(count("api", "live"), 2);
    merge_stats ms;
    merge_get_stats(E, &ms);
    cr_assert_eq(ms.aggregates, 1);
    /* the instance still reports it with nothing new: it stays deleted */
    merge_changeset_clear(&CS);
    cr_assert_eq(apply("api", "http://a", counts("A", 2, "old", 10ULL, "live", 2ULL), T0 + 12 * MIN), 0);
    cr_assert(!exists("api", "old"));
    cr_assert_eq(CS.n, 0);
    /* an increase brings it back as a new error holding only what came after */
    apply("api", "http://a", counts("A", 2, "old", 12ULL, "live", 2ULL), T0 + 13 * MIN);
    cr_assert_eq(count("api", "old"), 2);
    cr_assert_eq(CS.n, 1);
    cr_assert(CS.v[0].is_new);
    cr_assert_eq(CS.v[0].total_count, 2);
    /* another instance reporting it is counted in full (it never was) */
    apply("api", "http://b", counts("B", 1, "old", 5ULL), T0 + 13 * MIN);
    cr_assert_eq(count("api", "old"), 7);
}

/* A key regrouped by error_relabel_configs (count_id: the client's original key) keeps its count in a
 * derived instance; after retention deleted the error, the same counts do not bring it back either. */
static payload_doc *regrouped(uint64_t c1, uint64_t c2)
{
    payload_doc *d = counts("A", 2, "E@1", (unsigned long long)c1, "E@2", (unsigned long long)c2);
    for (size_t i = 0; i < d->n_aggregates; i++) {
        d->aggregates[i].count_id = d->aggregates[i].key;
        d->aggregates[i].key = strdup("E");
    }
    return d;
}
Test(merge_limits, regrouped_keys_stay_deleted_after_retention)
{
    merge_free(E);
    merge_options o = {.retention_ms = 10 * MIN};
    E = merge_new(&o);
    apply("api", "http://a", regrouped(10, 5), T0);
    cr_assert_eq(count("api", "E"), 15);
    merge_changeset_clear(&CS);
    cr_assert_eq(merge_expire(E, T0 + 11 * MIN, &CS), 1);
    cr_assert(!exists("api", "E"));
    merge_changeset_clear(&CS);
    cr_assert_eq(apply("api", "http://a", regrouped(10, 5), T0 + 12 * MIN), 0);
    cr_assert(!exists("api", "E"), "the same counts brought the regrouped error back");
    cr_assert_eq(CS.n, 0);
    /* one original key grows by 3: back as a new error holding only that */
    apply("api", "http://a", regrouped(13, 5), T0 + 13 * MIN);
    cr_assert_eq(count("api", "E"), 3);
}

/* A derived instance (a regrouped key's own count) lives as long as its instance: a body-hash hit
 * refreshes only the instance, and pruning the derived one would count its key again. One-character
 * original keys: the separator is then the id's second-to-last byte. */
Test(merge_limits, derived_instances_live_with_their_instance)
{
    merge_free(E);
    merge_options o = {.retention_ms = 10 * MIN};
    E = merge_new(&o);
    for (int round = 0; round < 2; round++) {
        payload_doc *d = counts("A", 2, "a", 10ULL, "b", 5ULL);
        for (size_t i = 0; i < d->n_aggregates; i++) {
            d->aggregates[i].count_id = d->aggregates[i].key;
            d->aggregates[i].key = strdup("E");
        }
        /* round 0: the first scrape; round 1: a changed body with the same counts, after the prune */
        merge_input in = {.job = "api", .url = "http://a", .doc = d, .body_hash = 77 + round,
                          .now_ms = round ? T0 + 12 * MIN : T0};
        merge_apply(E, &in, &CS);
        payload_free(d);
        cr_assert_eq(count("api", "E"), 15, "round %d", round);
        if (!round) {
            cr_assert(merge_body_unchanged(E, "api", "http://a", 77, T0 + 8 * MIN));
            cr_assert_eq(merge_prune(E, T0 + 12 * MIN), 0, "a derived instance was pruned with its instance alive");
        }
    }
    /* the instance itself goes after retention, and its derived instances with it */
    cr_assert_eq(merge_prune(E, T0 + 40 * MIN), 3);
}

/* A tombstone lives while an instance refers to it, and its memory goes with the last one. */
Test(merge_limits, tombstones_are_freed_with_their_instances)
{
    apply("api", "http://a", counts("A", 2, "old", 10ULL, "live", 1ULL), T0);
    apply("api", "http://b", counts("B", 1, "live", 0ULL), T0 + 8 * MIN);
    cr_assert_eq(merge_expire(E, T0 + 11 * MIN, &CS), 2);
    merge_stats ms;
    merge_get_stats(E, &ms);
    cr_assert_eq(ms.aggregates, 0);
    cr_assert_eq(ms.tombstones, 2);
    apply("api", "http://b", counts("B", 1, "live", 0ULL), T0 + 20 * MIN);
    cr_assert_eq(merge_prune(E, T0 + 20 * MIN), 1); /* A, not seen for the window */
    cr_assert_eq(merge_expire(E, T0 + 20 * MIN, &CS), 0);
    merge_get_stats(E, &ms);
    cr_assert_eq(ms.tombstones, 1); /* "old" went with A; "live" is still reported by B */
    cr_assert_eq(ms.instance_keys, 1);
}

/* A resurrected error keeps only the occurrences newer than the last one it had. */
Test(merge_limits, resurrected_error_keeps_only_newer_occurrences)
{
    const char *fmt = "{\"target_uuid\":\"A\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":%d,"
                      "\"latest_errors\":[{\"error\":{\"class\":\"E\",\"message\":\"m\"},\"uuid\":\"u1\","
                      "\"timestamp\":\"2024-03-02T10:00:00Z\"}%s]}]}";
    apply("api", "http://a", P("http://a", fmt, 1, ""), T0);
    cr_assert_eq(merge_expire(E, T0 + 11 * MIN, &CS), 1);
    cr_assert_eq(apply("api", "http://a", P("http://a", fmt, 1, ""), T0 + 12 * MIN), 0);
    apply("api", "http://a",
          P("http://a", fmt, 2,
            ",{\"error\":{\"class\":\"E\",\"message\":\"m\"},\"uuid\":\"u2\",\"timestamp\":\"2024-03-02T11:12:00Z\"}"),
          T0 + 13 * MIN);
    merge_aggregate_info ai;
    cr_assert(merge_get(E, "api", "k", &ai));
    cr_assert_eq(ai.total_count, 1);
    cr_assert_eq(ai.n_samples, 1);
    cr_assert_str_eq(ai.samples[0]->uuid, "u2");
    cr_assert_eq(ai.last_seen_ms, T0 + 12 * MIN);
}

Test(merge_limits, retention_drops_pending_changes_keeps_counts)
{
    merge_free(E);
    merge_options o = {.retention_ms = 10 * MIN};
    E = merge_new(&o);
    apply("api", "http://a", counts("A", 2, "a", 1ULL, "b", 1ULL), T0);
    apply("api", "http://a", counts("A", 2, "a", 1ULL, "b", 2ULL), T0 + 9 * MIN);
    /* nothing written yet (a store outage): both changes and both counts are pending */
    cr_assert_eq(CS.n, 2);
    cr_assert_eq(merge_expire(E, T0 + 11 * MIN, &CS), 1);
    cr_assert_eq(CS.n, 1);
    cr_assert_str_eq(CS.v[0].key, "b");
    cr_assert_eq(CS.n_deleted, 1);
    cr_assert_str_eq(CS.deleted[0].key, "a");
    cr_assert_eq(CS.deleted[0].last_seen_ms, PAYLOAD_TS_NONE);
    /* the per-instance counts stay (a persistent store keeps them with the tombstone) */
    cr_assert_eq(CS.n_counts, 2);
    cr_assert_str_eq(CS.counts[0].key, "a");
    cr_assert_eq(CS.counts[0].count, 1);
    /* b keeps coalescing into its own (moved) entry; a stays deleted */
    apply("api", "http://a", counts("A", 2, "a", 1ULL, "b", 5ULL), T0 + 11 * MIN);
    cr_assert_eq(count("api", "b"), 5);
    cr_assert(!exists("api", "a"));
    cr_assert_eq(CS.n, 1);
}

/* State saved before instance ids named their source ("A", not "http://a\x1fA") is migrated through the
 * sources that reported it: the next identical scrape adds nothing. */
Test(merge_limits, restore_migrates_old_instance_ids)
{
    merge_key_count kc = {.key = "k", .count = 10};
    merge_instance_state is = {.job = "api", .instance_id = "A", .last_seen_ms = T0, .counts = &kc, .n_counts = 1};
    merge_source_state ss = {.job = "api", .url = "http://a", .body_hash = 0, .last_scrape_ms = T0,
                             .instance_id = "A"};
    merge_key_count pkc = {.key = "k", .count = 4};
    merge_instance_state pis = {.job = "api", .instance_id = "P", .last_seen_ms = T0, .counts = &pkc, .n_counts = 1};
    merge_source_state pss = {.job = "api", .url = "push:P", .last_scrape_ms = T0, .instance_id = "P"};
    merge_instance_state insts[] = {is, pis};
    merge_source_state srcs[] = {ss, pss};
    merge_state st = {.instances = insts, .n_instances = 2, .sources = srcs, .n_sources = 2};
    merge_aggregate_state as = {.job = "api", .key = "k", .total_count = 14, .created_at_ms = T0,
                                .last_seen_ms = PAYLOAD_TS_NONE};
    merge_restore_aggregate(E, &as);
    merge_restore(E, &st);
    cr_assert_eq(apply("api", "http://a", counts("A", 1, "k", 10ULL), T0 + MIN), 0);
    cr_assert_eq(apply_src("api", "push:P", "push", counts("P", 1, "k", 4ULL), T0 + MIN), 0);
    cr_assert_eq(count("api", "k"), 14);
    apply("api", "http://a", counts("A", 1, "k", 11ULL), T0 + 2 * MIN);
    cr_assert_eq(count("api", "k"), 15);
}

/* Federation: aggregates with interleaved __lookout_job__ are grouped per origin (linear grouping). */
Test(merge_limits, federated_groups_interleaved_origins)
{
    merge_free(E);
    E = merge_new(NULL);
    payload_doc *d = P("http://lower",
                       "{\"target_uuid\":\"L\",\"__lookout_instance__\":\"li\",\"aggregated_errors\":["
                       "{\"aggregation_key\":\"k\",\"total_count\":1,\"__lookout_job__\":\"a\"},"
                       "{\"aggregation_key\":\"k\",\"total_count\":2,\"__lookout_job__\":\"b\"},"
                       "{\"aggregation_key\":\"j\",\"total_count\":3,\"__lookout_job__\":\"a\"},"
                       "{\"aggregation_key\":\"k\",\"total_count\":4},"
                       "{\"aggregation_key\":\"j\",\"total_count\":5,\"__lookout_job__\":\"c\"},"
                       "{\"aggregation_key\":\"m\",\"total_count\":6,\"__lookout_job__\":\"b\"}]}");
    cr_assert_eq(ingest_merge_doc(E, "fed", "http://lower", NULL, NULL, d, true, 0, T0, &CS), 6);
    payload_free(d);
    cr_assert_eq(count("a", "k"), 1);
    cr_assert_eq(count("a", "j"), 3);
    cr_assert_eq(count("b", "k"), 2);
    cr_assert_eq(count("b", "m"), 6);
    cr_assert_eq(count("c", "j"), 5);
    cr_assert_eq(count("fed", "k"), 4);
    merge_stats ms;
    merge_get_stats(E, &ms);
    cr_assert_eq(ms.instances, 4);
}

/* A key whose error expired comes back while the job has no room: its increase and its new samples go
 * to the overflow (the tombstone's count is the base, samples newer than its last sighting only). */
Test(merge_limits, expired_key_back_without_room_brings_its_samples_to_the_overflow)
{
    apply("api", "http://a",
          P("http://a", "{\"target_uuid\":\"A\",\"aggregated_errors\":["
                        "{\"aggregation_key\":\"k1\",\"total_count\":1,\"latest_errors\":["
                        "{\"error\":{\"class\":\"E\",\"message\":\"m\"},\"uuid\":\"k1a\",\"timestamp\":\"2024-03-02T10:00:01Z\"}]},"
                        "{\"aggregation_key\":\"k2\",\"total_count\":1},{\"aggregation_key\":\"k3\",\"total_count\":1}]}"),
          T0);
    apply("api", "http://a", counts("A", 2, "k2", 2ULL, "k3", 2ULL), T0 + 9 * MIN); /* k2, k3 stay alive */
    cr_assert_eq(merge_expire(E, T0 + 11 * MIN, &CS), 1);
    cr_assert(!exists("api", "k1"));
    apply("api", "http://a", counts("A", 1, "k4", 1ULL), T0 + 12 * MIN); /* takes the freed place */
    cr_assert_eq(count("api", "k4"), 1);
    apply("api", "http://a",
          P("http://a", "{\"target_uuid\":\"A\",\"aggregated_errors\":["
                        "{\"aggregation_key\":\"k1\",\"total_count\":3,\"latest_errors\":["
                        "{\"error\":{\"class\":\"E\",\"message\":\"m\"},\"uuid\":\"k1a\",\"timestamp\":\"2024-03-02T10:00:01Z\"},"
                        "{\"error\":{\"class\":\"E\",\"message\":\"m\"},\"uuid\":\"k1b\",\"timestamp\":\"2024-03-02T11:12:00Z\"}]}]}"),
          T0 + 13 * MIN);
    cr_assert(!exists("api", "k1"));
    merge_aggregate_info ai;
    cr_assert(merge_get(E, "api", "lookout.overflow", &ai));
    cr_assert_eq(ai.total_count, 2);
    cr_assert_eq(ai.n_samples, 1);
    cr_assert_str_eq(ai.samples[0]->uuid, "k1b");
}

/* The migration of old instance ids builds "URL\x1fID": ids of every length from 1 to 64 bytes (an
 * allocation one byte off ends on a malloc chunk boundary at some length), each job's identical next
 * scrape adding nothing. */
Test(merge_limits, restore_migrates_old_instance_ids_of_every_length)
{
    enum { N = 64 };
    static char jobs[N][16], ids[N][N + 1];
    static merge_key_count kc[N];
    static merge_instance_state is[N];
    static merge_source_state ss[N];
    for (int i = 0; i < N; i++) {
        snprintf(jobs[i], sizeof jobs[i], "j%d", i);
        memset(ids[i], 'A', (size_t)i + 1);
        ids[i][i + 1] = '\0';
        kc[i] = (merge_key_count){.key = "k", .count = 10};
        is[i] = (merge_instance_state){.job = jobs[i], .instance_id = ids[i], .last_seen_ms = T0, .counts = &kc[i],
                                       .n_counts = 1};
        ss[i] = (merge_source_state){.job = jobs[i], .url = "http://a", .last_scrape_ms = T0, .instance_id = ids[i]};
        merge_aggregate_state as = {.job = jobs[i], .key = "k", .total_count = 10, .created_at_ms = T0,
                                    .last_seen_ms = PAYLOAD_TS_NONE};
        merge_restore_aggregate(E, &as);
    }
    merge_state st = {.instances = is, .n_instances = N, .sources = ss, .n_sources = N};
    merge_restore(E, &st);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(apply(jobs[i], "http://a", counts(ids[i], 1, "k", 10ULL), T0 + MIN), 0, "id of %d bytes", i + 1);
        cr_assert_eq(count(jobs[i], "k"), 10);
    }
}

/* Increases are credited to the minute that holds the receive time, rounded down also before 1970:
 * -1 ms is minute -1, -60000 ms minute -1, -60001 ms minute -2, 0 minute 0. */
Test(merge_limits, minutes_round_down_before_1970)
{
    const int64_t at[] = {-1, -60000, -60001, 0, 59999};
    const int64_t want[] = {-1, -1, -2, 0, 0};
    merge_free(E);
    E = merge_new(NULL); /* no cap on errors: five keys */
    for (size_t i = 0; i < sizeof at / sizeof *at; i++) {
        merge_changeset_clear(&CS);
        char key[16];
        snprintf(key, sizeof key, "m%zu", i);
        apply("api", "http://a", counts("A", 1, key, (unsigned long long)(i + 1)), at[i]);
        cr_assert_eq(CS.n, 1);
        cr_assert_eq(CS.v[0].n_series, 1);
        cr_assert_eq(CS.v[0].series[0].minute, want[i], "at %lld ms: minute %lld", (long long)at[i],
                     (long long)CS.v[0].series[0].minute);
    }
}

/* A restored error counts its retention from its last sighting, not from its creation. */
Test(merge_limits, restored_error_is_retained_from_its_last_sighting)
{
    merge_aggregate_state as = {.job = "api", .key = "old", .total_count = 3, .created_at_ms = T0,
                                .last_seen_ms = T0 + 9 * MIN};
    merge_restore_aggregate(E, &as);
    cr_assert_eq(merge_expire(E, T0 + 11 * MIN, &CS), 0); /* 2 min after its last sighting */
    cr_assert(exists("api", "old"));
    cr_assert_eq(merge_expire(E, T0 + 20 * MIN, &CS), 1); /* 11 min after */
    cr_assert(!exists("api", "old"));
}

/* merge_forget_body_hashes makes every source's next body count as changed. */
Test(merge_limits, forgotten_body_hashes_count_as_changed)
{
    merge_input in = {.job = "api", .url = "http://a", .doc = counts("A", 1, "k", 1ULL), .body_hash = 77,
                      .now_ms = T0};
    merge_apply(E, &in, &CS);
    payload_free((payload_doc *)in.doc);
    cr_assert(merge_body_unchanged(E, "api", "http://a", 77, T0 + MIN));
    merge_forget_body_hashes(E);
    cr_assert(!merge_body_unchanged(E, "api", "http://a", 77, T0 + MIN));
    cr_assert_eq(merge_source_body_hash(E, "api", "http://a"), 0);
}

/* Lines of the log (stderr, caught in a file) that contain s. */
static int log_lines_with(FILE *f, const char *s)
{
    fflush(stderr);
    rewind(f);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, s))
            n++;
    return n;
}

/* The overflow warning is logged at most once a minute per job, again from exactly a minute on, with the
 * keys redirected since the last line. */
Test(merge_limits, overflow_warning_once_a_minute)
{
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    int saved = dup(2);
    cr_assert_eq(dup2(fileno(f), 2), 2);
    apply("api", "http://a", counts("A", 4, "k1", 1ULL, "k2", 1ULL, "k3", 1ULL, "k4", 1ULL), T0);
    int first = log_lines_with(f, "overflowed_keys=1");
    apply("api", "http://a", counts("A", 1, "k5", 1ULL), T0 + MIN - 1);
    int within = log_lines_with(f, "new keys are counted into lookout.overflow");
    apply("api", "http://a", counts("A", 1, "k6", 1ULL), T0 + MIN);
    int again = log_lines_with(f, "overflowed_keys=2");
    dup2(saved, 2);
    close(saved);
    fclose(f);
    cr_assert_eq(first, 1);
    cr_assert_eq(within, 1, "logged again within the minute");
    cr_assert_eq(again, 1, "not logged again a minute later");
}

/* ---- issue 19, the merge engine after its split (mutation testing, seeds 1 and 2) ---------------- */

/* lookout_errors_overflowed_total has a job label: each job's series holds the increase its own overflow
 * took (api: 4 + 5, then k4 up by 2; web: 7). */
Test(merge_limits, overflow_metric_is_per_job)
{
    apply("api", "http://a", counts("A", 5, "k1", 1ULL, "k2", 1ULL, "k3", 1ULL, "k4", 4ULL, "k5", 5ULL), T0);
    apply("web", "http://c", counts("C", 4, "w1", 1ULL, "w2", 1ULL, "w3", 1ULL, "w4", 7ULL), T0);
    apply("api", "http://a", counts("A", 5, "k1", 1ULL, "k2", 1ULL, "k3", 1ULL, "k4", 6ULL, "k5", 5ULL), T0 + MIN);
    static const char *names[] = {"job"};
    metric_family *f = metric_family_get("lookout_errors_overflowed_total", METRIC_COUNTER, "", 1, names);
    const char *api[] = {"api"}, *web[] = {"web"}, *none[] = {"none"};
    cr_assert_eq(metric_value(f, api), 11.0, "%g", metric_value(f, api));
    cr_assert_eq(metric_value(f, web), 7.0, "%g", metric_value(f, web));
    cr_assert_eq(metric_value(f, none), 0.0);
}

#define OCC(uuid, sec)                                                                                          \
    "{\"error\":{\"class\":\"E\",\"message\":\"m\"},\"uuid\":\"" uuid "\",\"timestamp\":\"2024-03-02T10:00:" sec \
    "Z\"}"

/* The overflow deleted by retention comes back for a newer occurrence alone, the count unchanged (as any
 * error does, see resurrected_error_keeps_only_newer_occurrences): holding only that occurrence. */
Test(merge_limits, expired_overflow_comes_back_with_a_newer_occurrence_alone)
{
    apply("api", "http://a",
          P("http://a", "{\"target_uuid\":\"A\",\"aggregated_errors\":[{\"aggregation_key\":\"k1\",\"total_count\":1},"
                        "{\"aggregation_key\":\"k2\",\"total_count\":1},{\"aggregation_key\":\"k3\",\"total_count\":1},"
                        "{\"aggregation_key\":\"k4\",\"total_count\":4,\"latest_errors\":[" OCC("o1", "01") "]}]}"),
          T0);
    cr_assert_eq(count("api", "lookout.overflow"), 4);
    cr_assert_eq(merge_expire(E, T0 + 11 * MIN, &CS), 4);
    merge_changeset_clear(&CS);
    /* the job fills up again (k5..k7); k4, still at 4, goes to the overflow with a newer occurrence o2 */
    apply("api", "http://a",
          P("http://a", "{\"target_uuid\":\"A\",\"aggregated_errors\":[{\"aggregation_key\":\"k5\",\"total_count\":1},"
                        "{\"aggregation_key\":\"k6\",\"total_count\":1},{\"aggregation_key\":\"k7\",\"total_count\":1},"
                        "{\"aggregation_key\":\"k4\",\"total_count\":4,\"latest_errors\":[" OCC("o2", "02") "," OCC(
                            "o1", "01") "]}]}"),
          T0 + 12 * MIN);
    merge_aggregate_info ai;
    cr_assert(merge_get(E, "api", "lookout.overflow", &ai));
    cr_assert_eq(ai.total_count, 0);
    cr_assert_eq(ai.n_samples, 1);
    cr_assert_str_eq(ai.samples[0]->uuid, "o2");
    cr_assert_eq(count("api", "k5"), 1);
    /* without anything newer it stays deleted */
    cr_assert_eq(merge_expire(E, T0 + 30 * MIN, &CS), 4);
    merge_changeset_clear(&CS);
    apply("api", "http://a",
          P("http://a", "{\"target_uuid\":\"B\",\"aggregated_errors\":[{\"aggregation_key\":\"k8\",\"total_count\":1},"
                        "{\"aggregation_key\":\"k9\",\"total_count\":1},{\"aggregation_key\":\"k10\",\"total_count\":1}]}"),
          T0 + 31 * MIN);
    apply("api", "http://a",
          P("http://a", "{\"target_uuid\":\"A\",\"aggregated_errors\":["
                        "{\"aggregation_key\":\"k4\",\"total_count\":4,\"latest_errors\":[" OCC("o2", "02") "]}]}"),
          T0 + 32 * MIN);
    cr_assert(!exists("api", "lookout.overflow"));
}

/* A restored error without any time starts its retention window at the first expiry; one whose creation
 * is after its last sighting (clients are not consistent) counts from its creation. */
Test(merge_limits, restored_errors_without_times_or_created_late)
{
    merge_aggregate_state none = {.job = "api", .key = "timeless", .total_count = 1,
                                  .created_at_ms = PAYLOAD_TS_NONE, .last_seen_ms = PAYLOAD_TS_NONE};
    merge_aggregate_state late = {.job = "api", .key = "late", .total_count = 1, .created_at_ms = T0 + 5 * MIN,
                                  .last_seen_ms = T0};
    merge_restore_aggregate(E, &none);
    merge_restore_aggregate(E, &late);
    cr_assert_eq(merge_expire(E, T0 + 11 * MIN, &CS), 0);
    cr_assert(exists("api", "timeless"));
    cr_assert(exists("api", "late"));
    cr_assert_eq(merge_expire(E, T0 + 16 * MIN, &CS), 1); /* 11 min after its creation */
    cr_assert(!exists("api", "late"));
    cr_assert(exists("api", "timeless"));
    cr_assert_eq(merge_expire(E, T0 + 22 * MIN, &CS), 1); /* 11 min after the first expiry */
    cr_assert(!exists("api", "timeless"));
}

/* A source restored without an instance (instance_id "" as the stores write it, or NULL) points at none:
 * its next body counts as changed; the instances of the same state are restored as they are. */
Test(merge_limits, restored_sources_without_an_instance)
{
    merge_key_count kc = {.key = "k", .count = 5};
    merge_instance_state is = {.job = "api", .instance_id = "http://c\x1f" "C", .last_seen_ms = T0, .counts = &kc,
                               .n_counts = 1};
    merge_source_state src[3] = {{.job = "api", .url = "http://a", .body_hash = 5, .last_scrape_ms = T0},
                                 {.job = "api", .url = "http://b", .body_hash = 6, .last_scrape_ms = T0, .instance_id = ""},
                                 {.job = "api", .url = "http://c", .body_hash = 7, .last_scrape_ms = T0,
                                  .instance_id = "http://c\x1f" "C"}};
    merge_aggregate_state as = {.job = "api", .key = "k", .total_count = 5, .created_at_ms = T0, .last_seen_ms = T0};
    merge_restore_aggregate(E, &as);
    merge_state st = {.instances = &is, .n_instances = 1, .sources = src, .n_sources = 3};
    merge_restore(E, &st);
    cr_assert_eq(merge_source_body_hash(E, "api", "http://a"), 0);
    cr_assert_eq(merge_source_body_hash(E, "api", "http://b"), 0);
    cr_assert_eq(merge_source_body_hash(E, "api", "http://c"), 7);
    cr_assert(!merge_body_unchanged(E, "api", "http://a", 5, T0 + MIN));
    cr_assert(merge_body_unchanged(E, "api", "http://c", 7, T0 + MIN));
    merge_stats ms;
    merge_get_stats(E, &ms);
    cr_assert_eq(ms.sources, 3);
    cr_assert_eq(ms.instances, 1);
    cr_assert_eq(ms.instance_keys, 1);
    apply("api", "http://c", counts("C", 1, "k", 6ULL), T0 + MIN);
    cr_assert_eq(count("api", "k"), 6);
}

/* Forgetting on an engine that holds nothing does nothing. */
Test(merge_limits, forgetting_on_an_empty_engine)
{
    merge_forget_body_hashes(E);
    merge_forget_source(E, "api", "http://a");
    cr_assert_eq(merge_prune(E, T0), 0);
    cr_assert_eq(merge_expire(E, T0, &CS), 0);
    merge_stats ms;
    merge_get_stats(E, &ms);
    cr_assert_eq(ms.sources + ms.instances + ms.aggregates + ms.tombstones, 0);
}

/* Every stale instance and source is pruned wherever the tables keep it: 1 to 64 of them. */
Test(merge_limits, prune_reaches_every_instance)
{
    for (int n = 1; n <= 64; n++) {
        merge_changeset_free(&CS);
        merge_free(E);
        setup();
        for (int i = 0; i < n; i++) {
            char url[32], uuid[32];
            snprintf(url, sizeof url, "http://10.0.%d.%d", n, i);
            snprintf(uuid, sizeof uuid, "I%d", i);
            apply("api", url, counts(uuid, 1, "k", 1ULL), T0);
        }
        /* counted and snapshot wherever they are kept, too */
        merge_stats ms;
        merge_get_stats(E, &ms);
        cr_assert_eq(ms.instances, (size_t)n);
        cr_assert_eq(ms.instance_keys, (size_t)n, "%d instances: %zu keys", n, ms.instance_keys);
        merge_state st;
        merge_snapshot(E, &st);
        cr_assert_eq(st.n_instances, (size_t)n, "%d instances: %zu in the snapshot", n, st.n_instances);
        cr_assert_eq(st.n_sources, (size_t)n);
        merge_state_free(&st);
        cr_assert(st.n_instances == 0 && !st.instances && st.n_sources == 0 && !st.sources);
        merge_state_free(&st); /* empty: freeing it again does nothing */
        cr_assert_eq(merge_prune(E, T0 + 11 * MIN), (size_t)n);
        merge_get_stats(E, &ms);
        cr_assert_eq(ms.instances, 0, "%d instances: %zu left", n, ms.instances);
        cr_assert_eq(ms.sources, 0, "%d sources: %zu left", n, ms.sources);
    }
}

/* An error restored with label set identities and full sets is deleted by retention and comes back
 * with the labels of its new report only (what burying frees is exactly the full sets). */
Test(merge_limits, retention_of_an_error_with_label_identities)
{
    labelset full;
    labelset_init(&full);
    labelset_set(&full, "instance", "old:80");
    const uint64_t ids[] = {0x11, 0x22};
    merge_aggregate_state as = {.job = "api", .key = "k", .total_count = 1, .created_at_ms = T0, .last_seen_ms = T0,
                                .labels = &full, .n_labels = 1, .label_ids = ids, .n_label_ids = 2};
    merge_restore_aggregate(E, &as);
    merge_aggregate_info ai;
    cr_assert(merge_get(E, "api", "k", &ai));
    cr_assert_eq(ai.n_labels, 1);
    cr_assert_eq(merge_expire(E, T0 + 11 * MIN, &CS), 1);
    labelset now;
    labelset_init(&now);
    labelset_set(&now, "instance", "new:80");
    merge_input in = {.job = "api", .url = "http://a", .labels = &now, .doc = counts("A", 1, "k", 2ULL),
                      .now_ms = T0 + 12 * MIN};
    merge_apply(E, &in, &CS);
    payload_free((payload_doc *)in.doc);
    cr_assert(merge_get(E, "api", "k", &ai));
    cr_assert_eq(ai.total_count, 2);
    cr_assert_eq(ai.n_labels, 1);
    cr_assert_str_eq(labelset_get(&ai.labels[0], "instance"), "new:80");
    labelset_free(&full);
    labelset_free(&now);
}

/* Pruning at its edges: a source or instance last seen exactly at the cutoff stays (and a source keeps
 * its instance, so an unchanged body is still recognised); a source restored newer than its instance
 * loses the instance when that is pruned. */
Test(merge_limits, prune_at_the_cutoff)
{
    merge_input in = {.job = "api", .url = "http://a", .doc = counts("A", 1, "k", 1ULL), .body_hash = 77,
                      .now_ms = T0 + 5 * MIN};
    merge_apply(E, &in, &CS);
    payload_free((payload_doc *)in.doc);
    merge_source_state src = {.job = "api", .url = "http://b", .body_hash = 5, .last_scrape_ms = T0 + 9 * MIN,
                              .instance_id = "http://b\x1f" "B"};
    merge_instance_state is = {.job = "api", .instance_id = "http://b\x1f" "B", .last_seen_ms = T0};
    merge_state st = {.instances = &is, .n_instances = 1, .sources = &src, .n_sources = 1};
    merge_restore(E, &st);
    cr_assert_eq(merge_source_body_hash(E, "api", "http://b"), 5);
    cr_assert_eq(merge_prune(E, T0 + 15 * MIN), 1); /* cutoff T0+5: only B's instance (T0) goes */
    cr_assert(merge_body_unchanged(E, "api", "http://a", 77, T0 + 15 * MIN));
    cr_assert_eq(merge_source_body_hash(E, "api", "http://b"), 0);
    merge_stats ms;
    merge_get_stats(E, &ms);
    cr_assert_eq(ms.sources, 2);
    cr_assert_eq(ms.instances, 1);
    cr_assert_eq(merge_prune(E, T0 + 25 * MIN + 1), 1); /* a ms past: A's instance and both sources go */
    merge_get_stats(E, &ms);
    cr_assert_eq(ms.sources, 0);
    cr_assert_eq(ms.instances, 0);
}

/* A derived instance stays while its instance was seen exactly at the cutoff. */
Test(merge_limits, derived_instance_kept_by_an_instance_at_the_cutoff)
{
    payload_doc *d = counts("A", 2, "a", 10ULL, "b", 5ULL);
    for (size_t i = 0; i < d->n_aggregates; i++) {
        d->aggregates[i].count_id = d->aggregates[i].key;
        d->aggregates[i].key = strdup("E");
    }
    merge_input in = {.job = "api", .url = "http://a", .doc = d, .body_hash = 77, .now_ms = T0};
    merge_apply(E, &in, &CS);
    payload_free(d);
    cr_assert(merge_body_unchanged(E, "api", "http://a", 77, T0 + 8 * MIN)); /* the instance only */
    cr_assert_eq(merge_prune(E, T0 + 18 * MIN), 0);                         /* cutoff T0+8 */
    cr_assert_eq(merge_prune(E, T0 + 18 * MIN + 1), 3);
}

/* An error deleted by retention while its change was pending, and back before the change set is written,
 * gets a change of its own again, not the entry of the error that took its place. (The test's change set
 * is the process's first, generation 1.) */
Test(merge_limits, error_back_within_the_same_change_set_gets_its_own_change)
{
    apply("api", "http://a", counts("A", 1, "k1", 1ULL), T0);
    apply("api", "http://a", counts("A", 2, "k1", 1ULL, "k2", 1ULL), T0 + 9 * MIN);
    cr_assert_eq(CS.n, 2);
    cr_assert_eq(merge_expire(E, T0 + 11 * MIN, &CS), 1); /* k1; k2 moves to its slot */
    cr_assert_eq(CS.n, 1);
    cr_assert_str_eq(CS.v[0].key, "k2");
    apply("api", "http://a", counts("A", 2, "k1", 3ULL, "k2", 1ULL), T0 + 12 * MIN);
    cr_assert_eq(CS.n, 2);
    const merge_change *c1 = strcmp(CS.v[0].key, "k1") == 0 ? &CS.v[0] : &CS.v[1];
    const merge_change *c2 = c1 == &CS.v[0] ? &CS.v[1] : &CS.v[0];
    cr_assert_str_eq(c1->key, "k1");
    cr_assert_str_eq(c2->key, "k2");
    cr_assert(c1->is_new);
    cr_assert_eq(c1->total_count, 2);
    cr_assert_eq(c2->total_count, 1);
}

/* The overflow warning names the job's limit. */
Test(merge_limits, overflow_warning_names_the_limit)
{
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    int saved = dup(2);
    cr_assert_eq(dup2(fileno(f), 2), 2);
    apply("api", "http://a", counts("A", 4, "k1", 1ULL, "k2", 1ULL, "k3", 1ULL, "k4", 1ULL), T0);
    int n = log_lines_with(f, "job=api max_errors_per_job=3 overflowed_keys=1");
    dup2(saved, 2);
    close(saved);
    fclose(f);
    cr_assert_eq(n, 1);
}
