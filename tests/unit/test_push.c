/* Push ingestion and federation merging: the push config section (file:line errors), authorization
 * checks, ingest_push (replays, dedup, refusal of malformed bodies, nothing half-applied) and the
 * federated split of ingest_merge_doc (honor_labels and not). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/push_api.h"
#include "config/config.h"
#include "ingest/ingest.h"
#include "test_files.h"

static char err[2048];

static lookout_config *parse(const char *yaml)
{
    err[0] = 0;
    return config_parse(yaml, strlen(yaml), "p.yml", err, sizeof err);
}

static void bad(const char *yaml, const char *msg)
{
    lookout_config *cfg = parse(yaml);
    cr_assert_null(cfg, "should fail: %s", yaml);
    cr_assert(strstr(err, msg), "expected \"%s\" in \"%s\"", msg, err);
}

Test(push_config, defaults_off)
{
    lookout_config *cfg = parse("scrape_configs: []\n");
    cr_assert_not_null(cfg, "%s", err);
    cr_assert(!cfg->push.enabled);
    cr_assert_null(cfg->push.default_job);
    cr_assert_eq(cfg->push.body_size_limit, 10LL << 20);
    cr_assert(!cfg->push.has_authorization && !cfg->push.has_basic_auth);
    config_free(cfg);
}

Test(push_config, full_section)
{
    lookout_config *cfg = parse("push:\n  enabled: true\n  default_job: batch\n  body_size_limit: 1MiB\n"
                                "  authorization:\n    credentials_file: secret.txt\n");
    cr_assert_not_null(cfg, "%s", err);
    cr_assert(cfg->push.enabled);
    cr_assert_str_eq(cfg->push.default_job, "batch");
    cr_assert_eq(cfg->push.body_size_limit, 1 << 20);
    cr_assert(cfg->push.has_authorization);
    cr_assert_str_eq(cfg->push.authorization_type, "Bearer");
    cr_assert_str_eq(cfg->push.authorization_credentials_file, "secret.txt");
    config_free(cfg);
    cfg = parse("push:\n  basic_auth: {username: u, password: p}\n");
    cr_assert_not_null(cfg, "%s", err);
    cr_assert(cfg->push.has_basic_auth);
    config_free(cfg);
}

Test(push_config, errors_with_positions)
{
    bad("push:\n  enabled: maybe\n", "p.yml:2:");
    bad("push:\n  enabled: maybe\n", "boolean");
    bad("push:\n  default_job: a/b\n", "p.yml:2:16: invalid push default_job \"a/b\"");
    bad("push:\n  body_size_limit: lots\n", "p.yml:2:20: invalid push body_size_limit \"lots\"");
    bad("push:\n  body_size_limit: 0\n", "invalid push body_size_limit \"0\"");
    bad("push:\n  body_size_limit: 2GiB\n", "above 1GiB");
    bad("push:\n  authorization: {type: Bearer}\n", "p.yml:2:18: push authorization needs exactly one of");
    bad("push:\n  authorization: {credentials: a, credentials_file: b}\n", "exactly one of credentials");
    bad("push:\n  authorization: {type: basic, credentials: x}\n", "use basic_auth instead");
    bad("push:\n  basic_auth: {password: p}\n", "push basic_auth requires username");
    bad("push:\n  basic_auth: {username: u}\n", "exactly one of password & password_file");
    bad("push:\n  authorization: {credentials: x}\n  basic_auth: {username: u, password: p}\n",
        "at most one of push authorization & basic_auth");
    bad("push:\n  nonsense: 1\n", "p.yml:2:3:");
    bad("push: [1]\n", "p.yml:1:7:");
}

Test(push_auth, bearer_basic_and_files)
{
    push_config c = {0};
    cr_assert_eq(push_auth_check(&c, NULL, err, sizeof err), 1, "no auth configured: open");
    c.has_authorization = true;
    c.authorization_type = "Bearer";
    c.authorization_credentials = "s3cret";
    cr_assert_eq(push_auth_check(&c, "Bearer s3cret", err, sizeof err), 1);
    cr_assert_eq(push_auth_check(&c, "bearer s3cret", err, sizeof err), 1, "scheme is case-insensitive");
    cr_assert_eq(push_auth_check(&c, "Bearer s3cre", err, sizeof err), 0);
    cr_assert_eq(push_auth_check(&c, "Bearer s3cretX", err, sizeof err), 0);
    cr_assert_eq(push_auth_check(&c, "Basic s3cret", err, sizeof err), 0);
    cr_assert_eq(push_auth_check(&c, NULL, err, sizeof err), 0);
    char path[] = "/tmp/lookout-push-secret-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, "  filesecret\n", 13), 13);
    close(fd);
    c.authorization_credentials = NULL;
    c.authorization_credentials_file = path;
    cr_assert_eq(push_auth_check(&c, "Bearer filesecret", err, sizeof err), 1);
    unlink(path);
    cr_assert_eq(push_auth_check(&c, "Bearer filesecret", err, sizeof err), -1);
    cr_assert(strstr(err, "cannot read push credentials file"), "%s", err);

    push_config b = {.has_basic_auth = true, .basic_auth_username = "u", .basic_auth_password = "p"};
    cr_assert_eq(push_auth_check(&b, "Basic dTpw", err, sizeof err), 1); /* base64("u:p") */
    cr_assert_eq(push_auth_check(&b, "Basic dTpx", err, sizeof err), 0);
    cr_assert_eq(push_auth_check(&b, "Bearer dTpw", err, sizeof err), 0);
}

/* ---- ingest_push ---- */

static uint64_t total_of(store *st, const char *job, const char *key, size_t *samples)
{
    store_detail d;
    char e[256];
    if (store_get(st, job, key, &d, e, sizeof e) != 0)
        return 0;
    uint64_t t = d.s.total_count;
    if (samples)
        *samples = d.n_samples;
    store_detail_free(&d);
    return t;
}

static const char *P1 = "{\"target_uuid\":\"t1\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":3,"
                        "\"severity\":\"error\",\"latest_errors\":[{\"error\":{\"class\":\"E\",\"message\":\"m\"},"
                        "\"uuid\":\"o1\",\"timestamp\":\"2024-03-02T11:02:44Z\",\"severity\":\"error\"}]}]}";
static const char *P2 = "{\"target_uuid\":\"t1\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":4,"
                        "\"severity\":\"error\",\"latest_errors\":[{\"error\":{\"class\":\"E\",\"message\":\"m\"},"
                        "\"uuid\":\"o1\",\"timestamp\":\"2024-03-02T11:02:44Z\",\"severity\":\"error\"},"
                        "{\"error\":{\"class\":\"E\",\"message\":\"m\"},"
                        "\"uuid\":\"o2\",\"timestamp\":\"2024-03-02T11:03:44Z\",\"severity\":\"error\"}]}]}";

Test(ingest_push, replays_add_nothing_and_samples_dedup)
{
    store *st = store_memory_new(NULL);
    ingest *in = ingest_new(st, NULL, NULL, NULL);
    cr_assert_eq(ingest_start(in, err, sizeof err), 0, "%s", err);
    ingest_push_info info;
    cr_assert_eq(ingest_push(in, "batch", "10.0.0.1", P1, strlen(P1), 5000, &info, err, sizeof err),
                 INGEST_PUSH_STORED, "%s", err);
    cr_assert_eq(info.aggregates, 1);
    cr_assert_str_eq(info.instance_id, "t1");
    /* Stored on return: readable at once. */
    size_t ns = 0;
    cr_assert_eq(total_of(st, "batch", "k", &ns), 3);
    cr_assert_eq(ns, 1);
    cr_assert_eq(ingest_push(in, "batch", "10.0.0.1", P1, strlen(P1), 5000, NULL, err, sizeof err),
                 INGEST_PUSH_STORED);
    cr_assert_eq(total_of(st, "batch", "k", &ns), 3, "replay adds nothing");
    cr_assert_eq(ingest_push(in, "batch", "10.0.0.1", P2, strlen(P2), 5000, NULL, err, sizeof err),
                 INGEST_PUSH_STORED);
    cr_assert_eq(total_of(st, "batch", "k", &ns), 4);
    cr_assert_eq(ns, 2, "o1 deduplicated by uuid");
    /* The same state under another job is another instance. */
    cr_assert_eq(ingest_push(in, "other", "h", P2, strlen(P2), 5000, NULL, err, sizeof err), INGEST_PUSH_STORED);
    cr_assert_eq(total_of(st, "other", "k", NULL), 4);
    cr_assert_eq(total_of(st, "batch", "k", NULL), 4);
    ingest_free(in);
    store_close(st);
}

Test(ingest_push, client_fixtures_and_no_uuid_fallback)
{
    store *st = store_memory_new(NULL);
    ingest *in = ingest_new(st, NULL, NULL, NULL);
    cr_assert_eq(ingest_start(in, err, sizeof err), 0, "%s", err);
    const char *files[] = {"go", "python", "ruby", "scala"};
    for (size_t i = 0; i < 4; i++) {
        char path[256], job[32];
        snprintf(path, sizeof path, "tests/fixtures/payloads/%s.json", files[i]);
        snprintf(job, sizeof job, "j-%s", files[i]);
        size_t len;
        char *b = test_slurp(path, &len);
        ingest_push_info info;
        cr_assert_eq(ingest_push(in, job, "h", b, len, 5000, &info, err, sizeof err), INGEST_PUSH_STORED,
                     "%s: %s", files[i], err);
        cr_assert_gt(info.aggregates, 0, "%s", files[i]);
        free(b);
    }
    /* Without target_uuid: keyed on "push:" + instance, so a replay still counts once. */
    size_t len;
    char *b = test_slurp("tests/fixtures/payloads/legacy_no_uuid.json", &len);
    ingest_push_info info;
    cr_assert_eq(ingest_push(in, "legacy", "host-a", b, len, 5000, &info, err, sizeof err), INGEST_PUSH_STORED);
    cr_assert_str_eq(info.instance_id, "push:host-a");
    cr_assert_eq(ingest_push(in, "legacy", "host-a", b, len, 5000, &info, err, sizeof err), INGEST_PUSH_STORED);
    cr_assert_eq(total_of(st, "legacy", "k1", NULL), 4);
    cr_assert_eq(ingest_push(in, "legacy", "host-b", b, len, 5000, &info, err, sizeof err), INGEST_PUSH_STORED);
    cr_assert_eq(total_of(st, "legacy", "k1", NULL), 8, "another host is another instance");
    free(b);
    ingest_free(in);
    store_close(st);
}

Test(ingest_push, malformed_refused_whole)
{
    store *st = store_memory_new(NULL);
    ingest *in = ingest_new(st, NULL, NULL, NULL);
    cr_assert_eq(ingest_start(in, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ingest_push(in, "j", "h", "{", 1, 5000, NULL, err, sizeof err), INGEST_PUSH_INVALID);
    cr_assert(strstr(err, "invalid JSON"), "%s", err);
    size_t len;
    char *b = test_slurp("tests/fixtures/payloads/partly_malformed.json", &len);
    cr_assert_eq(ingest_push(in, "j", "h", b, len, 5000, NULL, err, sizeof err), INGEST_PUSH_INVALID);
    cr_assert_neq(err[0], 0);
    free(b);
    store_job *jobs;
    size_t n;
    cr_assert_eq(store_jobs(st, &jobs, &n, err, sizeof err), 0);
    cr_assert_eq(n, 0, "nothing applied");
    store_jobs_free(jobs, n);
    ingest_free(in);
    store_close(st);
}

/* ---- federation ---- */

static const char *FED =
    "{\"target_uuid\":\"sel\",\"__lookout_instance__\":\"lower1\",\"aggregated_errors\":["
    "{\"aggregation_key\":\"k\",\"total_count\":5,\"__lookout_job__\":\"api\"},"
    "{\"aggregation_key\":\"k\",\"total_count\":7,\"__lookout_job__\":\"web\"},"
    "{\"aggregation_key\":\"plain\",\"total_count\":1}]}";

Test(federation, parser_keeps_origin_jobs_apart)
{
    payload_doc *d = payload_parse(FED, strlen(FED), "u", err, sizeof err);
    cr_assert_not_null(d, "%s", err);
    cr_assert_eq(d->n_aggregates, 3, "same key from two origin jobs is not folded");
    cr_assert_str_eq(d->lookout_instance, "lower1");
    cr_assert_str_eq(d->aggregates[0].origin_job, "api");
    cr_assert_null(d->aggregates[2].origin_job);
    payload_free(d);
}

Test(federation, honor_labels_maps_back_to_origin_job)
{
    merge_engine *e = merge_new(NULL);
    merge_changeset cs;
    merge_changeset_init(&cs);
    payload_doc *d = payload_parse(FED, strlen(FED), "u", err, sizeof err);
    labelset ls = LABELSET_INIT;
    labelset_set(&ls, "job", "federate");
    labelset_set(&ls, "instance", "lower1:7777");
    ingest_merge_doc(e, "federate", "http://lower1/federate/exceptions", NULL, &ls, d, true, 0, 1000, &cs);
    merge_aggregate_info ai;
    cr_assert(merge_get(e, "api", "k", &ai));
    cr_assert_eq(ai.total_count, 5);
    cr_assert_eq(ai.n_labels, 1);
    cr_assert_str_eq(labelset_get(&ai.labels[0], "job"), "api");
    cr_assert(merge_get(e, "web", "k", &ai));
    cr_assert_eq(ai.total_count, 7);
    cr_assert(merge_get(e, "federate", "plain", &ai));
    cr_assert(!merge_get(e, "federate", "k", &ai));
    /* A second lower lookout with the same jobs adds up; the first one again adds nothing. */
    ingest_merge_doc(e, "federate", "http://lower1/federate/exceptions", NULL, &ls, d, true, 0, 2000, &cs);
    payload_free(d);
    char *fed2 = strdup(FED);
    memcpy(strstr(fed2, "lower1"), "lower2", 6);
    d = payload_parse(fed2, strlen(fed2), "u2", err, sizeof err);
    ingest_merge_doc(e, "federate", "http://lower2/federate/exceptions", NULL, &ls, d, true, 0, 3000, &cs);
    cr_assert(merge_get(e, "api", "k", &ai));
    cr_assert_eq(ai.total_count, 10);
    cr_assert(merge_get(e, "web", "k", &ai));
    cr_assert_eq(ai.total_count, 14);
    payload_free(d);
    free(fed2);
    labelset_free(&ls);
    merge_changeset_free(&cs);
    merge_free(e);
}

Test(federation, without_honor_labels_origin_becomes_exported_job)
{
    merge_engine *e = merge_new(NULL);
    merge_changeset cs;
    merge_changeset_init(&cs);
    payload_doc *d = payload_parse(FED, strlen(FED), "u", err, sizeof err);
    labelset ls = LABELSET_INIT;
    labelset_set(&ls, "job", "federate");
    ingest_merge_doc(e, "federate", "http://lower1/federate/exceptions", NULL, &ls, d, false, 0, 1000, &cs);
    merge_aggregate_info ai;
    cr_assert(merge_get(e, "federate", "k", &ai));
    cr_assert_eq(ai.total_count, 12, "both origin jobs sum into the scrape job");
    cr_assert_eq(ai.n_labels, 2);
    cr_assert(!merge_get(e, "api", "k", &ai));
    ingest_merge_doc(e, "federate", "http://lower1/federate/exceptions", NULL, &ls, d, false, 0, 2000, &cs);
    cr_assert(merge_get(e, "federate", "k", &ai));
    cr_assert_eq(ai.total_count, 12, "unchanged export adds nothing");
    payload_free(d);
    labelset_free(&ls);
    merge_changeset_free(&cs);
    merge_free(e);
}

/* ---- federate_render: the export another lookout (or a Periskop server) scrapes; found by mutation
 * testing (make mutate). The body is checked by parsing it back as a Periskop client payload. -------- */

#include "api/federate_api.h"
#include "store/merge.h"

static void fed_put(store *st, const char *job, const char *key, uint64_t count, payload_severity sev,
                    int64_t created, const char *const *msgs, size_t n)
{
    merge_changeset cs;
    merge_changeset_init(&cs);
    cs.v = calloc(1, sizeof(merge_change));
    cs.n = cs.cap = 1;
    merge_change *c = &cs.v[0];
    c->job = strdup(job);
    c->key = strdup(key);
    c->is_new = true;
    c->total_count = count;
    c->severity = sev;
    c->created_at_ms = created;
    c->last_seen_ms = created + (int64_t)n * 1000;
    c->added = calloc(n ? n : 1, sizeof(void *));
    for (size_t i = 0; i < n; i++)
        c->added[i] = payload_occurrence_new("E", msgs[i], "", created + (int64_t)(i + 1) * 1000, sev, NULL, NULL);
    c->n_added = c->cap_added = n;
    char e[256];
    cr_assert_eq(store_apply(st, &cs, created + 100000, e, sizeof e), 0, "%s", e);
    merge_changeset_free(&cs);
}

static payload_doc *fed(store *st, const char *const *jobs, size_t n, const char *uuid_name, char **body)
{
    strbuf sb;
    strbuf_init(&sb);
    char e[256];
    cr_assert_eq(federate_render(st, "inst-1", jobs, n, uuid_name, &sb, e, sizeof e), 0, "%s", e);
    payload_doc *d = payload_parse(sb.buf, sb.len, "http://x/federate/exceptions", e, sizeof e);
    cr_assert_not_null(d, "%s: %s", e, sb.buf);
    *body = sb.buf;
    return d;
}

Test(federate, export_parses_back_with_every_field)
{
    store *st = store_memory_new(NULL);
    const int64_t t0 = 1709377200000LL; /* 2024-03-02T11:00:00Z */
    fed_put(st, "b", "kb", 7, PAYLOAD_WARNING, t0, (const char *[]){"b-old", "b-new"}, 2);
    fed_put(st, "a", "ka", 3, PAYLOAD_INFO, t0 + 60000, (const char *[]){"a-1"}, 1);
    fed_put(st, "c", "kc", 1, PAYLOAD_ERROR, t0, (const char *[]){"c-1"}, 1);

    char *body;
    /* every job: sorted by job name */
    payload_doc *d = fed(st, NULL, 0, NULL, &body);
    cr_assert_eq(d->n_aggregates, 3, "%s", body);
    cr_assert_str_eq(d->aggregates[0].key, "ka");
    cr_assert_str_eq(d->aggregates[1].key, "kb");
    cr_assert_str_eq(d->aggregates[2].key, "kc");
    const payload_aggregate *b = &d->aggregates[1];
    cr_assert_eq(b->total_count, 7);
    cr_assert_eq(b->severity, PAYLOAD_WARNING);
    cr_assert_eq(b->created_at_ms, t0);
    cr_assert_eq(b->n_occurrences, 2);
    cr_assert_str_eq(b->occurrences[0]->error.message, "b-old"); /* clients send oldest first */
    cr_assert_str_eq(b->occurrences[1]->error.message, "b-new");
    cr_assert_eq(b->occurrences[1]->timestamp_ms, t0 + 2000);
    cr_assert(strstr(body, "\"__lookout_instance__\":\"inst-1\""), "%s", body);
    cr_assert(strstr(body, "\"__lookout_job__\":\"b\""), "%s", body);
    char want[INSTANCE_ID_LEN];
    instance_id_derive("inst-1", "*", want);
    cr_assert_str_eq(d->target_uuid, want);
    payload_free(d);
    free(body);

    /* named jobs: deduplicated and sorted; the target_uuid names the sorted selection */
    d = fed(st, (const char *[]){"c", "a", "c"}, 3, NULL, &body);
    cr_assert_eq(d->n_aggregates, 2, "%s", body);
    cr_assert_str_eq(d->aggregates[0].key, "ka");
    cr_assert_str_eq(d->aggregates[1].key, "kc");
    instance_id_derive("inst-1", "job:a\njob:c\n", want);
    cr_assert_str_eq(d->target_uuid, want);
    payload_free(d);
    free(body);

    /* an explicit uuid name wins; an unknown job exports nothing */
    d = fed(st, (const char *[]){"nope"}, 1, "custom", &body);
    cr_assert_eq(d->n_aggregates, 0, "%s", body);
    instance_id_derive("inst-1", "custom", want);
    cr_assert_str_eq(d->target_uuid, want);
    payload_free(d);
    free(body);
    store_close(st);
}

/* A streamed export (federate_respond) while the writer reorders, adds and deletes errors between its
 * pages: every error that existed throughout is listed exactly once (a cursor on created_at would miss
 * the one moved before it and repeat the one moved after it). */
Test(federate, streamed_export_consistent_under_writes)
{
    store *st = store_memory_new(NULL);
    const int64_t t0 = 1709377200000LL;
    char key[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "k%04d", i);
        fed_put(st, "j", key, 1, PAYLOAD_ERROR, t0 + i * 1000LL,
                (const char *[]){"a message long enough to fill pages of the export quickly"}, 1);
    }
    api_request req = {.method = "GET", .path = "/federate/exceptions"};
    api_response resp = {.status = 200};
    strbuf_init(&resp.body);
    char e[256];
    const char *jobs[] = {"j"};
    cr_assert_eq(federate_respond(st, NULL, "inst-1", jobs, 1, NULL, &req, &resp, e, sizeof e), 0, "%s", e);
    cr_assert_not_null(resp.stream, "3000 errors take more than one page");
    /* newest created first: the first page holds k2999 down; k0000 is not in it */
    cr_assert_null(strstr(resp.body.buf, "\"k0000\""));
    fed_put(st, "j", "k0000", 2, PAYLOAD_ERROR, t0 + 9000000, (const char *[]){"moved to the front"}, 1);
    fed_put(st, "j", "k2999", 2, PAYLOAD_ERROR, t0 - 9000000, (const char *[]){"moved to the end"}, 1);
    fed_put(st, "j", "new", 1, PAYLOAD_ERROR, t0 + 9100000, (const char *[]){"created meanwhile"}, 1);
    merge_changeset cs;
    merge_changeset_init(&cs);
    merge_deleted del = {.job = (char *)"j", .key = (char *)"k0001"};
    cs.deleted = &del;
    cs.n_deleted = 1;
    cr_assert_eq(store_apply(st, &cs, t0, e, sizeof e), 0, "%s", e);
    int rc, pages = 1;
    while ((rc = resp.stream(resp.stream_ctx, &resp.body)) == 1)
        pages++;
    cr_assert_eq(rc, 0);
    cr_assert_gt(pages, 3);
    payload_doc *d = payload_parse(resp.body.buf, resp.body.len, "http://x/federate/exceptions", e, sizeof e);
    cr_assert_not_null(d, "%s", e);
    int seen[3000] = {0};
    for (size_t i = 0; i < d->n_aggregates; i++) {
        const char *k = d->aggregates[i].key;
        if (k[0] == 'k')
            seen[atoi(k + 1)]++;
    }
    for (int i = 0; i < 3000; i++)
        cr_assert_eq(seen[i], i == 1 ? 0 : 1, "k%04d listed %d times", i, seen[i]);
    payload_free(d);
    resp.stream_free(resp.stream_ctx);
    strbuf_free(&resp.body);
    store_close(st);
}
