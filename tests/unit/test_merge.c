/* Merge engine: every rule of merge.h. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/merge.h"

#define T0 1709377200000LL /* 2024-03-02T11:00:00Z, a minute boundary */
#define MIN 60000LL

static payload_doc *P(const char *url, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static payload_doc *P(const char *url, const char *fmt, ...)
{
    char body[8192], err[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    payload_doc *d = payload_parse(body, strlen(body), url, err, sizeof(err));
    cr_assert_not_null(d, "%s: %s", err, body);
    return d;
}

/* One aggregate with n occurrences uuid "<prefix>0..n-1" at 2024-03-02T10:00:0i. */
static payload_doc *agg(const char *uuid, const char *key, unsigned long count, const char *sev, const char *prefix,
                        int n)
{
    char occ[6000] = "";
    size_t off = 0;
    for (int i = 0; i < n; i++)
        off += (size_t)snprintf(occ + off, sizeof(occ) - off,
                                "%s{\"error\":{\"class\":\"E\",\"message\":\"m%d\"},\"uuid\":\"%s%d\","
                                "\"timestamp\":\"2024-03-02T10:%02d:%02dZ\"}",
                                i ? "," : "", i, prefix, i, i / 60, i % 60);
    char tu[128] = "";
    if (uuid)
        snprintf(tu, sizeof(tu), "\"target_uuid\":\"%s\",", uuid);
    return P("http://10.0.0.1:80/-/exceptions",
             "{%s\"aggregated_errors\":[{\"aggregation_key\":\"%s\",\"total_count\":%lu,\"severity\":\"%s\","
             "\"created_at\":\"2024-03-02T09:00:00Z\",\"latest_errors\":[%s]}]}",
             tu, key, count, sev, occ);
}

static merge_engine *E;
static merge_changeset CS;

static void setup(void)
{
    E = merge_new(NULL);
    merge_changeset_init(&CS);
}
static void teardown(void)
{
    merge_changeset_free(&CS);
    merge_free(E);
}

static size_t apply(const char *job, const char *url, payload_doc *d, int64_t now, const labelset *ls)
{
    merge_input in = {.job = job, .url = url, .labels = ls, .doc = d, .body_hash = 0, .now_ms = now};
    size_t n = merge_apply(E, &in, &CS);
    payload_free(d);
    return n;
}

static uint64_t count(const char *job, const char *key)
{
    merge_aggregate_info ai;
    cr_assert(merge_get(E, job, key, &ai), "no aggregate %s/%s", job, key);
    return ai.total_count;
}

TestSuite(merge, .init = setup, .fini = teardown);

Test(merge, deltas_across_two_instances)
{
    apply("api", "http://a", agg("A", "k", 10, "error", "a", 1), T0, NULL);
    apply("api", "http://b", agg("B", "k", 5, "error", "b", 1), T0, NULL);
    cr_assert_eq(count("api", "k"), 15);
    apply("api", "http://a", agg("A", "k", 12, "error", "a", 1), T0 + MIN, NULL);
    apply("api", "http://b", agg("B", "k", 5, "error", "b", 1), T0 + MIN, NULL);
    cr_assert_eq(count("api", "k"), 17);
    /* the same key in another job is another aggregate */
    apply("web", "http://c", agg("C", "k", 1, "error", "c", 1), T0, NULL);
    cr_assert_eq(count("web", "k"), 1);
    cr_assert_eq(count("api", "k"), 17);
}

Test(merge, restart_with_new_uuid_adds)
{
    apply("api", "http://a", agg("A1", "k", 10, "error", "a", 1), T0, NULL);
    apply("api", "http://a", agg("A2", "k", 3, "error", "x", 1), T0 + MIN, NULL); /* same URL, new process */
    cr_assert_eq(count("api", "k"), 13);
    apply("api", "http://a", agg("A2", "k", 4, "error", "x", 1), T0 + 2 * MIN, NULL);
    cr_assert_eq(count("api", "k"), 14);
}

Test(merge, same_uuid_count_down_is_reset)
{
    apply("api", "http://a", agg("A", "k", 10, "error", "a", 1), T0, NULL);
    apply("api", "http://a", agg("A", "k", 4, "error", "a", 1), T0 + MIN, NULL);
    cr_assert_eq(count("api", "k"), 14); /* Periskop froze at 10 */
    apply("api", "http://a", agg("A", "k", 6, "error", "a", 1), T0 + 2 * MIN, NULL);
    cr_assert_eq(count("api", "k"), 16);
}

Test(merge, missing_target_uuid_uses_url)
{
    apply("api", "http://10.0.0.1:80/-/exceptions", agg(NULL, "k", 10, "error", "a", 1), T0, NULL);
    apply("api", "http://10.0.0.1:80/-/exceptions", agg(NULL, "k", 12, "error", "a", 1), T0 + MIN, NULL);
    cr_assert_eq(count("api", "k"), 12);
    merge_state st;
    merge_snapshot(E, &st);
    cr_assert_eq(st.n_instances, 1);
    cr_assert_str_eq(st.instances[0].instance_id, "http://10.0.0.1:80/-/exceptions\x1fhttp://10.0.0.1:80/-/exceptions");
    merge_state_free(&st);
}

Test(merge, unchanged_scrape_produces_no_change)
{
    cr_assert_eq(apply("api", "http://a", agg("A", "k", 10, "error", "a", 3), T0, NULL), 1);
    merge_changeset_clear(&CS);
    cr_assert_eq(apply("api", "http://a", agg("A", "k", 10, "error", "a", 3), T0 + MIN, NULL), 0);
    cr_assert_eq(CS.n, 0);
}

Test(merge, duplicate_samples_deduped)
{
    apply("api", "http://a", agg("A", "k", 3, "error", "s", 3), T0, NULL);
    /* B reports the same occurrence uuids (e.g. a pushgateway re-exposing them) */
    apply("api", "http://b", agg("B", "k", 3, "error", "s", 3), T0, NULL);
    merge_aggregate_info ai;
    merge_get(E, "api", "k", &ai);
    cr_assert_eq(ai.n_samples, 3);
    cr_assert_str_eq(ai.samples[0]->uuid, "s2"); /* newest first */
    cr_assert_str_eq(ai.samples[2]->uuid, "s0");
    /* without uuid: dedup by content + timestamp */
    const char *noid = "{\"target_uuid\":\"C\",\"aggregated_errors\":[{\"aggregation_key\":\"n\",\"total_count\":2,"
                       "\"latest_errors\":[{\"error\":{\"message\":\"x\"},\"timestamp\":\"2024-03-02T10:00:00Z\"},"
                       "{\"error\":{\"message\":\"x\"},\"timestamp\":\"2024-03-02T10:00:00Z\"},"
                       "{\"error\":{\"message\":\"x\"},\"timestamp\":\"2024-03-02T10:00:01Z\"}]}]}";
    apply("api", "http://c", P("http://c", "%s", noid), T0, NULL);
    merge_get(E, "api", "n", &ai);
    cr_assert_eq(ai.n_samples, 2);
}

Test(merge, samples_capped_newest_kept)
{
    merge_changeset_free(&CS);
    merge_free(E);
    merge_options o = {.samples_per_error = 5};
    E = merge_new(&o);
    merge_changeset_init(&CS);
    apply("api", "http://a", agg("A", "k", 8, "error", "a", 8), T0, NULL);
    merge_aggregate_info ai;
    merge_get(E, "api", "k", &ai);
    cr_assert_eq(ai.n_samples, 5);
    cr_assert_str_eq(ai.samples[0]->uuid, "a7");
    cr_assert_str_eq(ai.samples[4]->uuid, "a3");
    /* within one change set, a sample added then evicted is in neither list */
    cr_assert_eq(CS.n, 1);
    cr_assert_eq(CS.v[0].n_added, 5);
    cr_assert_eq(CS.v[0].n_evicted, 0);
    merge_changeset_clear(&CS);
    /* older samples from another instance do not displace newer ones */
    apply("api", "http://b", agg("B", "k", 1, "error", "old", 2), T0, NULL);
    merge_get(E, "api", "k", &ai);
    cr_assert_str_eq(ai.samples[4]->uuid, "a3");
    /* a newer one evicts the oldest, reported in the change */
    payload_doc *d = P("http://a", "{\"target_uuid\":\"A\",\"aggregated_errors\":[{\"aggregation_key\":\"k\","
                                   "\"total_count\":9,\"latest_errors\":[{\"uuid\":\"new\",\"timestamp\":"
                                   "\"2024-03-02T10:30:00Z\"}]}]}");
    merge_changeset_clear(&CS);
    apply("api", "http://a", d, T0 + MIN, NULL);
    merge_get(E, "api", "k", &ai);
    cr_assert_str_eq(ai.samples[0]->uuid, "new");
    cr_assert_str_eq(ai.samples[4]->uuid, "a4");
    cr_assert_eq(CS.v[0].n_added, 1);
    cr_assert_eq(CS.v[0].n_evicted, 1);
}

Test(merge, created_at_is_min_severity_latest_last_seen_newest)
{
    apply("api", "http://a",
          P("http://a", "{\"target_uuid\":\"A\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":1,"
                        "\"severity\":\"warning\",\"created_at\":\"2024-03-02T09:00:00Z\",\"latest_errors\":[{\"uuid\":"
                        "\"1\",\"timestamp\":\"2024-03-02T10:00:00Z\"}]}]}"),
          T0, NULL);
    apply("api", "http://b",
          P("http://b", "{\"target_uuid\":\"B\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":1,"
                        "\"severity\":\"info\",\"created_at\":\"2024-03-02T08:00:00+01:00\",\"latest_errors\":[{"
                        "\"uuid\":\"2\",\"timestamp\":\"2024-03-02T09:30:00Z\"}]}]}"),
          T0, NULL);
    merge_aggregate_info ai;
    merge_get(E, "api", "k", &ai);
    int64_t t;
    payload_parse_time("2024-03-02T07:00:00Z", &t);
    cr_assert_eq(ai.created_at_ms, t);
    cr_assert_eq(ai.severity, PAYLOAD_INFO);
    payload_parse_time("2024-03-02T10:00:00Z", &t);
    cr_assert_eq(ai.last_seen_ms, t); /* B's occurrence is older */
    /* A reports again without change: severity does not flip back */
    apply("api", "http://a",
          P("http://a", "{\"target_uuid\":\"A\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":1,"
                        "\"severity\":\"warning\",\"created_at\":\"2024-03-02T09:00:00Z\",\"latest_errors\":[{\"uuid\":"
                        "\"1\",\"timestamp\":\"2024-03-02T10:00:00Z\"}]}]}"),
          T0 + MIN, NULL);
    merge_get(E, "api", "k", &ai);
    cr_assert_eq(ai.severity, PAYLOAD_INFO);
    /* A reports a new occurrence with error: latest report wins */
    apply("api", "http://a",
          P("http://a", "{\"target_uuid\":\"A\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":2,"
                        "\"severity\":\"error\",\"latest_errors\":[{\"uuid\":\"3\",\"timestamp\":"
                        "\"2024-03-02T10:05:00Z\"}]}]}"),
          T0 + 2 * MIN, NULL);
    merge_get(E, "api", "k", &ai);
    cr_assert_eq(ai.severity, PAYLOAD_ERROR);
    payload_parse_time("2024-03-02T10:05:00Z", &t);
    cr_assert_eq(ai.last_seen_ms, t);
    payload_parse_time("2024-03-02T07:00:00Z", &t);
    cr_assert_eq(ai.created_at_ms, t);
    cr_assert_eq(ai.total_count, 3);
}

Test(merge, created_at_falls_back_to_oldest_occurrence)
{
    apply("api", "http://a",
          P("http://a", "{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":2,\"latest_errors\":["
                        "{\"uuid\":\"1\",\"timestamp\":\"2024-03-02T10:00:00Z\"},{\"uuid\":\"2\",\"timestamp\":"
                        "\"2024-03-02T09:00:00Z\"}]}]}"),
          T0, NULL);
    merge_aggregate_info ai;
    merge_get(E, "api", "k", &ai);
    int64_t t;
    payload_parse_time("2024-03-02T09:00:00Z", &t);
    cr_assert_eq(ai.created_at_ms, t);
}

static void mklabels(labelset *ls, const char *instance)
{
    labelset_init(ls);
    labelset_set(ls, "job", "api");
    labelset_set(ls, "instance", instance);
}

Test(merge, labels_seen_bounded)
{
    merge_changeset_free(&CS);
    merge_free(E);
    merge_options o = {.labels_per_error = 3};
    E = merge_new(&o);
    merge_changeset_init(&CS);
    for (int i = 0; i < 5; i++) {
        char inst[32], uuid[32];
        snprintf(inst, sizeof(inst), "10.0.0.%d:80", i);
        snprintf(uuid, sizeof(uuid), "U%d", i);
        labelset ls;
        mklabels(&ls, inst);
        apply("api", inst, agg(uuid, "k", 1, "error", uuid, 1), T0, &ls);
        apply("api", inst, agg(uuid, "k", 1, "error", uuid, 1), T0, &ls); /* same set again */
        labelset_free(&ls);
    }
    merge_aggregate_info ai;
    merge_get(E, "api", "k", &ai);
    cr_assert_eq(ai.n_labels, 3);
    cr_assert_str_eq(labelset_get(&ai.labels[0], "instance"), "10.0.0.0:80");
    cr_assert_str_eq(labelset_get(&ai.labels[2], "instance"), "10.0.0.2:80");
    cr_assert_eq(CS.n, 1);
    cr_assert_eq(CS.v[0].n_labels_added, 3);
}

Test(merge, series_per_minute)
{
    apply("api", "http://a", agg("A", "k", 10, "error", "a", 1), T0 + 1000, NULL);
    apply("api", "http://a", agg("A", "k", 12, "error", "a", 1), T0 + 30000, NULL); /* same minute */
    apply("api", "http://a", agg("A", "k", 12, "error", "a", 1), T0 + MIN, NULL);   /* no increase */
    apply("api", "http://a", agg("A", "k", 15, "error", "a", 1), T0 + 2 * MIN + 5, NULL);
    cr_assert_eq(CS.n, 1);
    merge_change *c = &CS.v[0];
    cr_assert_eq(c->n_series, 2);
    cr_assert_eq(c->series[0].minute, T0 / MIN);
    cr_assert_eq(c->series[0].delta, 12);
    cr_assert_eq(c->series[1].minute, T0 / MIN + 2);
    cr_assert_eq(c->series[1].delta, 3);
    cr_assert_eq(c->total_count, 15);
    cr_assert(c->is_new);
    cr_assert_str_eq(c->job, "api");
    cr_assert_str_eq(c->key, "k");
}

Test(merge, changes_only_for_changed_keys)
{
    const char *two = "{\"target_uuid\":\"A\",\"aggregated_errors\":[{\"aggregation_key\":\"k1\",\"total_count\":%d},"
                      "{\"aggregation_key\":\"k2\",\"total_count\":%d}]}";
    cr_assert_eq(apply("api", "http://a", P("http://a", two, 1, 1), T0, NULL), 2);
    merge_changeset_clear(&CS);
    cr_assert_eq(apply("api", "http://a", P("http://a", two, 1, 2), T0 + MIN, NULL), 1);
    cr_assert_eq(CS.n, 1);
    cr_assert_str_eq(CS.v[0].key, "k2");
    cr_assert(!CS.v[0].is_new);
    cr_assert_eq(CS.v[0].total_count, 2);
}

Test(merge, body_hash_skip)
{
    const char *body = "{\"target_uuid\":\"A\",\"aggregated_errors\":[]}";
    uint64_t h = merge_body_hash(body, strlen(body));
    cr_assert(!merge_body_unchanged(E, "api", "http://a", h, T0));
    merge_input in = {.job = "api", .url = "http://a", .doc = P("http://a", "%s", body), .body_hash = h, .now_ms = T0};
    merge_apply(E, &in, &CS);
    payload_free((payload_doc *)in.doc);
    cr_assert(merge_body_unchanged(E, "api", "http://a", h, T0 + MIN));
    cr_assert(!merge_body_unchanged(E, "api", "http://a", h + 1, T0 + MIN));
    cr_assert(!merge_body_unchanged(E, "web", "http://a", h, T0 + MIN));
    merge_forget_source(E, "api", "http://a");
    cr_assert(!merge_body_unchanged(E, "api", "http://a", h, T0 + MIN));
}

/* Body hashes are stored (sources.body_hash) and compared with the first scrape after a restart, so the
 * function must not change by accident: these values pin it, for inputs that reach the empty body, a tail
 * only, a JSON body within one stripe, 32 bytes, a stripe and a 3-byte tail, and 100 bytes (test_hash
 * pins lengths up to 25 KB). Changing the hash on purpose (session 6: hash_fast64 -> hash_body64; session 8:
 * 64-byte stripes, SSE2) means one more parse of every target after the upgrade, which merges nothing twice
 * (test_ingest a_stored_hash_of_an_older_function_costs_one_parse): update them and say so in README.md. */
Test(merge, body_hash_values_are_stable)
{
    /* The values were computed independently of the C code, from hash_body64's description (util/hash.h),
     * with the Python in tests/unit/test_hash.c. */
    const char *in[] = {"", "a", "{\"target_uuid\":\"A\",\"aggregated_errors\":[]}", "0123456789abcdef0123456789abcdef",
                        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefXYZ"};
    const uint64_t want[] = {0xfaeec0dc331e9e62ULL, 0xb61fc4b476f42086ULL, 0xc7758b070478e4f4ULL, 0xa1f211a5457860ffULL,
                             0x8b3abc993f1c614cULL};
    for (size_t i = 0; i < 5; i++)
        cr_expect_eq(merge_body_hash(in[i], strlen(in[i])), want[i], "input %zu: 0x%016llx", i,
                     (unsigned long long)merge_body_hash(in[i], strlen(in[i])));
    char bytes[100]; /* bytes 0..99: a stripe and a 36-byte tail */
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (char)i;
    cr_expect_eq(merge_body_hash(bytes, sizeof bytes), 0x450cd927ef979f56ULL, "0x%016llx",
                 (unsigned long long)merge_body_hash(bytes, sizeof bytes));
}

Test(merge, prune_stale_instances)
{
    int64_t day = 24 * 3600 * 1000LL;
    apply("api", "http://a", agg("OLD", "k", 10, "error", "a", 1), T0, NULL);
    apply("api", "http://b", agg("NEW", "k", 1, "error", "b", 1), T0 + 10 * day, NULL);
    cr_assert_eq(merge_prune(E, T0 + 13 * day), 0);
    cr_assert_eq(merge_prune(E, T0 + 15 * day), 1);
    merge_stats st;
    merge_get_stats(E, &st);
    cr_assert_eq(st.instances, 1);
    cr_assert_eq(st.sources, 1);
    cr_assert_eq(count("api", "k"), 11); /* pruning never lowers totals */
    /* a body-hash hit keeps an instance alive */
    const char *body = "{\"target_uuid\":\"NEW\",\"aggregated_errors\":[]}";
    uint64_t h = merge_body_hash(body, strlen(body));
    merge_input in = {.job = "api", .url = "http://b", .doc = P("http://b", "%s", body), .body_hash = h,
                      .now_ms = T0 + 10 * day};
    merge_apply(E, &in, &CS);
    payload_free((payload_doc *)in.doc);
    cr_assert(merge_body_unchanged(E, "api", "http://b", h, T0 + 20 * day));
    cr_assert_eq(merge_prune(E, T0 + 30 * day), 0);
}

Test(merge, snapshot_restore_continues_counting)
{
    labelset ls;
    mklabels(&ls, "a:80");
    apply("api", "http://a", agg("A", "k", 10, "error", "a", 3), T0, &ls);
    merge_aggregate_info ai;
    merge_get(E, "api", "k", &ai);
    merge_aggregate_state as = {.job = "api", .key = "k", .total_count = ai.total_count, .severity = ai.severity,
                                .created_at_ms = ai.created_at_ms, .last_seen_ms = ai.last_seen_ms,
                                .samples = ai.samples, .n_samples = ai.n_samples, .labels = ai.labels,
                                .n_labels = ai.n_labels};
    merge_state st;
    merge_snapshot(E, &st);
    merge_engine *e2 = merge_new(NULL);
    merge_restore_aggregate(e2, &as);
    merge_restore(e2, &st);
    merge_state_free(&st);
    merge_free(E);
    E = e2;
    merge_changeset_clear(&CS);
    /* same instance, same count: nothing changes; +2: delta 2, not 12 */
    cr_assert_eq(apply("api", "http://a", agg("A", "k", 10, "error", "a", 3), T0 + MIN, &ls), 0);
    apply("api", "http://a", agg("A", "k", 12, "error", "a", 3), T0 + MIN, &ls);
    cr_assert_eq(count("api", "k"), 12);
    merge_get(E, "api", "k", &ai);
    cr_assert_eq(ai.n_samples, 3);
    cr_assert_eq(ai.n_labels, 1);
    labelset_free(&ls);
}

/* A store restores samples and label sets by identity only (start-up): dedup, order, eviction and
 * the label bound must behave as with full occurrences. */
Test(merge, restore_by_identity_dedups_and_evicts)
{
    labelset ls, other;
    mklabels(&ls, "a:80");
    mklabels(&other, "b:80");
    apply("api", "http://a", agg("A", "k", 10, "error", "a", 3), T0, &ls);
    merge_aggregate_info ai;
    merge_get(E, "api", "k", &ai);
    cr_assert_eq(ai.n_samples, 3);
    merge_sample_id ids[3];
    for (size_t i = 0; i < 3; i++) /* reversed: any order */
        ids[i] = (merge_sample_id){ai.samples[2 - i]->timestamp_ms, ai.samples[2 - i]->dedup_hash};
    uint64_t oldest = ai.samples[2]->dedup_hash;
    uint64_t lid = labelset_hash(&ls) & 0x7fffffffffffffffULL;
    merge_aggregate_state as = {.job = "api", .key = "k", .total_count = ai.total_count, .severity = ai.severity,
                                .created_at_ms = ai.created_at_ms, .last_seen_ms = ai.last_seen_ms,
                                .sample_ids = ids, .n_sample_ids = 3, .label_ids = &lid, .n_label_ids = 1};
    merge_state st;
    merge_snapshot(E, &st);
    merge_options o = {.samples_per_error = 3, .labels_per_error = 2};
    merge_engine *e2 = merge_new(&o);
    merge_restore_aggregate(e2, &as);
    merge_restore(e2, &st);
    merge_state_free(&st);
    merge_free(E);
    E = e2;
    merge_changeset_clear(&CS);
    /* the same samples and labels again: nothing changes */
    cr_assert_eq(apply("api", "http://a", agg("A", "k", 10, "error", "a", 3), T0 + MIN, &ls), 0);
    cr_assert_eq(CS.n, 0);
    merge_get(E, "api", "k", &ai);
    cr_assert_eq(ai.n_samples, 3);
    cr_assert_null(ai.samples[0]); /* known by identity only */
    cr_assert_eq(ai.n_labels, 0);
    /* a newer sample (a3) enters and evicts the oldest (a0) by hash; the known label set is not re-added */
    cr_assert_eq(apply("api", "http://a", agg("A", "k", 11, "error", "a", 4), T0 + 2 * MIN, &ls), 1);
    cr_assert_eq(CS.n, 1);
    cr_assert_eq(CS.v[0].n_added, 1);
    cr_assert_str_eq(CS.v[0].added[0]->uuid, "a3");
    cr_assert_eq(CS.v[0].n_evicted, 1);
    cr_assert_eq(CS.v[0].evicted[0], oldest);
    cr_assert_eq(CS.v[0].n_labels_added, 0);
    cr_assert_eq(CS.v[0].total_count, 11);
    merge_get(E, "api", "k", &ai);
    cr_assert_eq(ai.n_samples, 3);
    cr_assert_not_null(ai.samples[0]);
    cr_assert_str_eq(ai.samples[0]->uuid, "a3");
    cr_assert_null(ai.samples[1]);
    /* a new label set is added up to the bound (2), which counts the restored one */
    merge_changeset_clear(&CS);
    apply("api", "http://b", agg("B", "k", 1, "error", "b", 1), T0 + 3 * MIN, &other);
    cr_assert_eq(CS.v[0].n_labels_added, 1);
    merge_get(E, "api", "k", &ai);
    cr_assert_eq(ai.n_labels, 1);
    cr_assert(labelset_equal(&ai.labels[0], &other));
    labelset third;
    mklabels(&third, "c:80");
    merge_changeset_clear(&CS);
    apply("api", "http://c", agg("C", "k", 1, "error", "c", 1), T0 + 4 * MIN, &third);
    cr_assert_eq(CS.v[0].n_labels_added, 0);
    labelset_free(&ls);
    labelset_free(&other);
    labelset_free(&third);
}

#include "util/keymap.h"

/* keymap backs every lookup above; deletions use backward shift, checked against a reference. */
Test(keymap, random_insert_delete_matches_reference)
{
    enum { N = 3000 };
    static char keys[N][16];
    static int present[N];
    keymap m = KEYMAP_INIT;
    unsigned seed = 12345;
    for (int i = 0; i < N; i++)
        snprintf(keys[i], sizeof(keys[i]), "key-%d", i);
    for (int step = 0; step < 60000; step++) {
        seed = seed * 1103515245u + 12345u;
        int i = (int)((seed >> 8) % N);
        if (present[i]) {
            cr_assert_eq(keymap_del(&m, keys[i], strlen(keys[i])), (void *)keys[i]);
            present[i] = 0;
        } else {
            cr_assert_null(keymap_put(&m, keys[i], strlen(keys[i]), keys[i]));
            present[i] = 1;
        }
        if (step % 5000 == 0) {
            size_t n = 0;
            for (int k = 0; k < N; k++) {
                void *v = keymap_get(&m, keys[k], strlen(keys[k]));
                cr_assert_eq(v, present[k] ? (void *)keys[k] : NULL, "step %d key %d", step, k);
                n += present[k];
            }
            cr_assert_eq(m.n, n);
        }
    }
    keymap_free(&m);
}

/* ---- cases found by mutation testing (make mutate) ------------------------------------------- */

static merge_engine *engine_with_cap(size_t samples)
{
    merge_changeset_free(&CS);
    merge_free(E);
    merge_options o = {.samples_per_error = samples};
    E = merge_new(&o);
    merge_changeset_init(&CS);
    return E;
}

/* One occurrence uuid U at 2024-03-02T10:00:SS. */
static payload_doc *one(const char *uuid, int second)
{
    return P("http://a", "{\"target_uuid\":\"A\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":1,"
                         "\"latest_errors\":[{\"uuid\":\"%s\",\"timestamp\":\"2024-03-02T10:00:%02dZ\"}]}]}",
             uuid, second);
}

/* At the cap, a new sample is compared with the OLDEST kept: cap 3 with s10 s20 s30, then s25 gives
 * s30 s25 s20 (comparing with the newest would refuse s25 and keep s10). */
Test(merge, cap_compares_with_oldest_sample)
{
    engine_with_cap(3);
    apply("api", "http://a", one("s10", 10), T0, NULL);
    apply("api", "http://a", one("s30", 30), T0, NULL);
    apply("api", "http://a", one("s20", 20), T0, NULL);
    apply("api", "http://a", one("s25", 25), T0, NULL);
    merge_aggregate_info ai;
    cr_assert(merge_get(E, "api", "k", &ai));
    cr_assert_eq(ai.n_samples, 3);
    cr_assert_str_eq(ai.samples[0]->uuid, "s30");
    cr_assert_str_eq(ai.samples[1]->uuid, "s25");
    cr_assert_str_eq(ai.samples[2]->uuid, "s20");
    /* older than all three: refused */
    apply("api", "http://a", one("s05", 5), T0, NULL);
    merge_get(E, "api", "k", &ai);
    cr_assert_str_eq(ai.samples[2]->uuid, "s20");
}

/* Equal timestamps: the larger dedup hash first (before() in merge.c: one order for every backend),
 * whatever the arrival order; at the cap, a tie with the oldest is decided by the same rule. */
Test(merge, equal_timestamps_ordered_by_hash)
{
    char err[256];
    const char *body = "{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":2,\"latest_errors\":["
                       "{\"uuid\":\"x\",\"timestamp\":\"2024-03-02T10:00:07Z\"},"
                       "{\"uuid\":\"y\",\"timestamp\":\"2024-03-02T10:00:07Z\"}]}]}";
    payload_doc *d = payload_parse(body, strlen(body), "http://z", err, sizeof err);
    cr_assert_not_null(d, "%s", err);
    uint64_t hx = d->aggregates[0].occurrences[0]->dedup_hash, hy = d->aggregates[0].occurrences[1]->dedup_hash;
    payload_free(d);
    cr_assert_neq(hx, hy);
    const char *hi = hx > hy ? "x" : "y", *lo = hx > hy ? "y" : "x";
    for (int order = 0; order < 2; order++) {
        engine_with_cap(5);
        apply("api", "http://a", one(order ? "x" : "y", 7), T0, NULL);
        apply("api", "http://a", one(order ? "y" : "x", 7), T0, NULL);
        merge_aggregate_info ai;
        merge_get(E, "api", "k", &ai);
        cr_assert_eq(ai.n_samples, 2);
        cr_assert_str_eq(ai.samples[0]->uuid, hi, "arrival order %d", order);
        cr_assert_str_eq(ai.samples[1]->uuid, lo, "arrival order %d", order);
    }
    /* cap 1: the tie goes to the larger hash, in either arrival order */
    for (int order = 0; order < 2; order++) {
        engine_with_cap(1);
        apply("api", "http://a", one(order ? hi : lo, 7), T0, NULL);
        apply("api", "http://a", one(order ? lo : hi, 7), T0, NULL);
        merge_aggregate_info ai;
        merge_get(E, "api", "k", &ai);
        cr_assert_eq(ai.n_samples, 1);
        cr_assert_str_eq(ai.samples[0]->uuid, hi, "arrival order %d", order);
    }
}

/* The first report of a key by a new instance is "reported" even when it adds no count and no sample:
 * its severity becomes the key's and its labels join labels_seen. */
Test(merge, first_report_of_an_instance_counts_as_reported)
{
    labelset la, lb;
    mklabels(&la, "a:80");
    mklabels(&lb, "b:80");
    apply("api", "http://a", agg("A", "k", 5, "error", "s", 1), T0, &la);
    /* B: same key, count 0, the same occurrence (deduplicated), another severity */
    apply("api", "http://b", agg("B", "k", 0, "warning", "s", 1), T0, &lb);
    merge_aggregate_info ai;
    cr_assert(merge_get(E, "api", "k", &ai));
    cr_assert_eq(ai.total_count, 5);
    cr_assert_eq(ai.n_samples, 1);
    cr_assert_eq(ai.severity, PAYLOAD_WARNING);
    cr_assert_eq(ai.n_labels, 2);
    cr_assert_str_eq(labelset_get(&ai.labels[1], "instance"), "b:80");
    /* B again, unchanged: not reported, nothing changes */
    merge_changeset_clear(&CS);
    apply("api", "http://b", agg("B", "k", 0, "info", "s", 1), T0, &lb);
    merge_get(E, "api", "k", &ai);
    cr_assert_eq(ai.severity, PAYLOAD_WARNING);
    cr_assert_eq(CS.n, 0);
    labelset_free(&la);
    labelset_free(&lb);
}

/* One instance with 40 keys (its key table grows several times): a second identical scrape adds nothing,
 * a third with every count +1 adds exactly 1 per key. */
Test(merge, many_keys_per_instance_counted_once)
{
    char body[16384];
    for (int round = 0; round < 3; round++) {
        size_t off = (size_t)snprintf(body, sizeof body, "{\"target_uuid\":\"A\",\"aggregated_errors\":[");
        for (int k = 0; k < 40; k++)
            off += (size_t)snprintf(body + off, sizeof body - off, "%s{\"aggregation_key\":\"k%d\",\"total_count\":%d}",
                                    k ? "," : "", k, 10 + k + (round == 2));
        snprintf(body + off, sizeof body - off, "]}");
        apply("api", "http://a", P("http://a", "%s", body), T0 + round * MIN, NULL);
    }
    cr_assert_eq(count("api", "k0"), 11);
    cr_assert_eq(count("api", "k17"), 28);
    cr_assert_eq(count("api", "k39"), 50);
}

/* A second instance reporting a key with nothing new (count 0, an occurrence already kept, the same
 * labels) changes nothing, and no change is materialised for it. */
Test(merge, a_report_with_nothing_new_makes_no_change)
{
    labelset ls;
    labelset_init(&ls);
    labelset_set(&ls, "team", "core");
    apply("api", "http://a", agg("A", "k", 5, "error", "x", 1), T0, &ls);
    cr_assert_eq(CS.n, 1);
    merge_changeset_clear(&CS);
    cr_assert_eq(apply("api", "http://b", agg("B", "k", 0, "error", "x", 1), T0, &ls), 0);
    cr_assert_eq(CS.n, 0);
    cr_assert_eq(count("api", "k"), 5);
    labelset_free(&ls);
}

/* A new sample alone (the count did not move, and it is older than the newest kept: the last sighting
 * does not move either) is a change: counted by merge_apply, its change carries the sample and the
 * aggregate's state. */
static payload_doc *with_samples(const char *uuids_and_times)
{
    return P("http://a",
             "{\"target_uuid\":\"A\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":5,"
             "\"severity\":\"error\",\"created_at\":\"2024-03-02T09:00:00Z\",\"latest_errors\":[%s]}]}",
             uuids_and_times);
}

Test(merge, a_new_older_sample_alone_is_a_change)
{
    apply("api", "http://a",
          with_samples("{\"error\":{\"class\":\"E\",\"message\":\"m\"},\"uuid\":\"new\","
                       "\"timestamp\":\"2024-03-02T10:00:05Z\"}"),
          T0, NULL);
    merge_changeset_clear(&CS);
    cr_assert_eq(apply("api", "http://a",
                       with_samples("{\"error\":{\"class\":\"E\",\"message\":\"m\"},\"uuid\":\"new\","
                                    "\"timestamp\":\"2024-03-02T10:00:05Z\"},"
                                    "{\"error\":{\"class\":\"E\",\"message\":\"m\"},\"uuid\":\"old\","
                                    "\"timestamp\":\"2024-03-02T10:00:01Z\"}"),
                       T0 + MIN, NULL),
                 1);
    cr_assert_eq(CS.n, 1);
    cr_assert_eq(CS.v[0].n_added, 1);
    cr_assert_str_eq(CS.v[0].added[0]->uuid, "old");
    cr_assert_eq(CS.v[0].total_count, 5);
    cr_assert_eq(CS.v[0].last_seen_ms, 1709373605000LL); /* 2024-03-02T10:00:05Z */
}

/* ---- issue 19, the merge engine after its split (mutation testing, seeds 1 and 2) ---------------- */

/* merge_reuse_ok's question "does this instance count that key?" for a key the instance does not count
 * (another instance's) is answered "no" with 1 to 40 keys on the instance: the per-instance count table
 * (open addressing) grows before it is full, else a probe for an absent key would never end. */
Test(merge, an_instance_answers_for_keys_it_does_not_count_at_every_size, .timeout = 60)
{
    for (int n = 1; n <= 40; n++) {
        engine_with_cap(0);
        char body[4096], *p = body;
        p += sprintf(p, "{\"target_uuid\":\"A\",\"aggregated_errors\":[");
        for (int k = 0; k < n; k++)
            p += sprintf(p, "%s{\"aggregation_key\":\"k%d\",\"total_count\":1}", k ? "," : "", k);
        sprintf(p, "]}");
        apply("api", "http://a", P("http://a", "%s", body), T0, NULL);
        apply("api", "http://b", P("http://b", "{\"target_uuid\":\"B\",\"aggregated_errors\":["
                                               "{\"aggregation_key\":\"other\",\"total_count\":1}]}"),
              T0, NULL);
        payload_aggregate ra = {.key = "other", .total_count = 1, .raw_hash = 1, .reused = true};
        payload_doc doc = {.instance_id = "A", .aggregates = &ra, .n_aggregates = 1};
        merge_input mi = {.job = "api", .url = "http://a", .doc = &doc};
        cr_assert_not(merge_reuse_ok(E, &mi), "%d keys", n);
        ra.key = "k0"; /* one it counts, at that count */
        cr_assert(merge_reuse_ok(E, &mi), "%d keys", n);
    }
}

/* Label set identities restored with a repeat (the same 63-bit id, also with the top bit set: the SQL
 * store keeps labelset_hash & INT64_MAX) count once against labels_per_error. */
Test(merge, restored_label_ids_count_once)
{
    merge_changeset_free(&CS);
    merge_free(E);
    merge_options o = {.labels_per_error = 3};
    E = merge_new(&o);
    merge_changeset_init(&CS);
    const uint64_t ids[] = {0x11, 0x11 | (1ULL << 63), 0x22, 0x22};
    merge_aggregate_state as = {.job = "api", .key = "k", .total_count = 1, .created_at_ms = T0,
                                .last_seen_ms = T0, .label_ids = ids, .n_label_ids = 4};
    merge_restore_aggregate(E, &as);
    /* two identities: room for one more set, then none */
    for (int i = 0; i < 2; i++) {
        labelset ls;
        mklabels(&ls, i ? "10.0.0.2:80" : "10.0.0.1:80");
        apply("api", "http://a", agg("A", "k", 2 + (unsigned long)i, "error", "x", 1), T0 + MIN, &ls);
        labelset_free(&ls);
    }
    merge_aggregate_info ai;
    cr_assert(merge_get(E, "api", "k", &ai));
    cr_assert_eq(ai.n_labels, 1);
    cr_assert_str_eq(labelset_get(&ai.labels[0], "instance"), "10.0.0.1:80");
}

/* Two label sets with the same labelset_hash are still two sets: the hash only preselects, equality
 * decides. {a="x\xffb\xffy"} and {a="x", b="y"} hash the same bytes (name 0xff value 0xff per label). */
Test(merge, label_sets_with_the_same_hash_stay_apart)
{
    labelset one, two;
    labelset_init(&one);
    labelset_set(&one, "a", "x\xff" "b\xff" "y");
    labelset_init(&two);
    labelset_set(&two, "a", "x");
    labelset_set(&two, "b", "y");
    cr_assert_eq(labelset_hash(&one), labelset_hash(&two));
    cr_assert_not(labelset_equal(&one, &two));
    apply("api", "http://a", agg("A", "k", 1, "error", "a", 1), T0, &one);
    apply("api", "http://b", agg("B", "k", 1, "error", "b", 1), T0, &two);
    apply("api", "http://b", agg("B", "k", 2, "error", "b", 1), T0 + MIN, &two); /* the same set again */
    merge_aggregate_info ai;
    cr_assert(merge_get(E, "api", "k", &ai));
    cr_assert_eq(ai.n_labels, 2);
    cr_assert(labelset_equal(&ai.labels[0], &one));
    cr_assert(labelset_equal(&ai.labels[1], &two));
    labelset_free(&one);
    labelset_free(&two);
}
