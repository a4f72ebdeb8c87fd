/* Payload parser: every client style, every malformed case, timestamps, serializers. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap_use.h"
#include "periskop/payload.h"
#include "util/hash.h"

static char *slurp(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof(path), "tests/fixtures/payloads/%s", name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (run from the repository root)", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return b;
}

static payload_doc *load(const char *name)
{
    size_t len;
    char *b = slurp(name, &len);
    char err[256] = "";
    payload_doc *p = payload_parse(b, len, "http://10.0.0.1:8080/-/exceptions", err, sizeof(err));
    free(b);
    cr_assert_not_null(p, "%s: %s", name, err);
    return p;
}

static payload_doc *parse_str(const char *s, char *err, size_t errlen)
{
    return payload_parse(s, strlen(s), "http://fallback/x", err, errlen);
}

static int64_t ts(const char *s)
{
    int64_t ms;
    cr_assert_eq(payload_parse_time(s, &ms), 0, "%s", s);
    return ms;
}

Test(payload_time, formats_of_every_client)
{
    /* 2024-03-02T11:02:44Z = 1709377364 */
    cr_assert_eq(ts("2024-03-02T11:02:44Z"), 1709377364000LL);              /* Ruby iso8601 */
    cr_assert_eq(ts("2024-03-02T11:02:44.901Z"), 1709377364901LL);          /* Python ms + Z */
    cr_assert_eq(ts("2024-03-02T11:02:44.901234567Z"), 1709377364901LL);    /* Go RFC3339Nano */
    cr_assert_eq(ts("2024-03-02T11:02:44.9Z"), 1709377364900LL);            /* Go trims zeros */
    cr_assert_eq(ts("2024-03-02T12:02:44.901+01:00"), 1709377364901LL);     /* Scala XXX */
    cr_assert_eq(ts("2024-03-02T05:32:44-05:30"), 1709377364000LL);
    cr_assert_eq(ts("2024-03-02t11:02:44z"), 1709377364000LL);
    cr_assert_eq(ts("1970-01-01T00:00:00Z"), 0);
    cr_assert_eq(ts("2024-02-29T00:00:00Z"), 1709164800000LL);
}

Test(payload_time, rejects_malformed)
{
    int64_t ms;
    const char *bad[] = {"", "yesterday", "2024-03-02", "2024-03-02T11:02:44", "2024-13-02T11:02:44Z",
                         "2024-03-32T11:02:44Z", "2023-02-29T00:00:00Z", "2024-03-02T25:00:00Z",
                         "2024-03-02T11:02:44.Z", "2024-03-02T11:02:44+1", "2024-03-02T11:02:44Zjunk",
                         "2024-3-2T11:02:44Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(payload_parse_time(bad[i], &ms), -1, "accepted %s", bad[i]);
}

Test(payload_time, format_roundtrip)
{
    char buf[40];
    payload_format_time(1709377364901LL, buf, sizeof(buf));
    cr_assert_str_eq(buf, "2024-03-02T11:02:44.901Z");
    payload_format_time(0, buf, sizeof(buf));
    cr_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
    payload_format_time(951782400000LL, buf, sizeof(buf)); /* 2000-02-29 */
    cr_assert_str_eq(buf, "2000-02-29T00:00:00.000Z");
}

/* Before dates (floor division) and the int64 extremes, which once overflowed (found by fuzz_payload). */
Test(payload_time, format_negative_and_extremes)
{
    char buf[40];
    payload_format_time(-1, buf, sizeof(buf));
    cr_assert_str_eq(buf, "1969-12-31T23:59:59.999Z");
    payload_format_time(-86400000LL, buf, sizeof(buf));
    cr_assert_str_eq(buf, "1969-12-31T00:00:00.000Z");
    payload_format_time(-62135596800001LL, buf, sizeof(buf));
    cr_assert_str_eq(buf, "0000-12-31T23:59:59.999Z");
    payload_format_time(INT64_MIN, buf, sizeof(buf));
    cr_assert_str_eq(buf, "-292275055-05-16T16:47:04.192Z");
    payload_format_time(INT64_MAX, buf, sizeof(buf));
    cr_assert_str_eq(buf, "292278994-08-17T07:12:55.807Z");
}

Test(payload, go_client)
{
    payload_doc *p = load("go.json");
    cr_assert_str_eq(p->target_uuid, "3f6c1e2a-9b7d-4c41-8e0a-5d2b7f90c1aa");
    cr_assert_str_eq(p->instance_id, p->target_uuid);
    cr_assert_eq(p->n_aggregates, 2);
    cr_assert_eq(p->skipped_aggregates + p->skipped_occurrences, 0);
    payload_aggregate *a = &p->aggregates[0];
    cr_assert_str_eq(a->key, "*url.Error@9f3c1a07");
    cr_assert_eq(a->total_count, 137);
    cr_assert_eq(a->severity, PAYLOAD_ERROR);
    cr_assert_eq(a->created_at_ms, ts("2024-03-02T09:14:07.512Z"));
    cr_assert_eq(a->n_occurrences, 2);
    payload_occurrence *o = a->occurrences[0];
    cr_assert_str_eq(o->error.class_name, "*url.Error");
    cr_assert_eq(o->error.n_stacktrace, 2);
    cr_assert_str_eq(o->error.stacktrace[1], "\tbilling.(*Client).Invoices: resp, err := c.http.Do(req)");
    cr_assert_null(o->error.cause);
    cr_assert_eq(o->timestamp_ms, 1709377364901LL);
    cr_assert_not_null(o->http);
    cr_assert_str_eq(o->http->method, "GET");
    cr_assert_eq(o->http->n_headers, 3);
    /* client order kept */
    cr_assert_str_eq(o->http->headers[0].name, "Accept");
    cr_assert_str_eq(o->http->headers[1].name, "X-Request-Id");
    cr_assert_str_eq(o->http->headers[2].name, "Authorization");
    cr_assert_null(a->occurrences[1]->http);
    cr_assert_eq(a->occurrences[1]->error.n_stacktrace, 0);
    cr_assert_eq(p->aggregates[1].severity, PAYLOAD_WARNING);
    cr_assert_eq(p->aggregates[1].occurrences[0]->timestamp_ms, ts("2024-03-02T09:00:00.500Z"));
    payload_free(p);
}

Test(payload, python_client)
{
    payload_doc *p = load("python.json");
    cr_assert_eq(p->n_aggregates, 1);
    payload_occurrence *o = p->aggregates[0].occurrences[0];
    cr_assert_eq(o->error.n_stacktrace, 4);
    cr_assert_str_eq(o->http->method, "POST");
    cr_assert_str_eq(o->http->body, "{\"a\": 1, \"b\": 0}");
    cr_assert_eq(o->timestamp_ms, ts("2024-03-02T10:05:06.789Z"));
    payload_free(p);
}

Test(payload, ruby_client_cause_chain)
{
    payload_doc *p = load("ruby.json");
    payload_occurrence *o = p->aggregates[0].occurrences[0];
    cr_assert_not_null(o->error.cause);
    cr_assert_str_eq(o->error.cause->class_name, "ActiveRecord::RecordNotFound");
    cr_assert_not_null(o->error.cause->cause);
    cr_assert_str_eq(o->error.cause->cause->message, "connection lost");
    cr_assert_null(o->error.cause->cause->cause);
    cr_assert_str_eq(o->http->body, ""); /* request_body: null */
    cr_assert_str_eq(o->http->headers[0].name, "HTTP_USER_AGENT");
    cr_assert_eq(o->timestamp_ms, ts("2024-03-02T10:15:30Z"));
    payload_free(p);
}

Test(payload, scala_client_offsets_and_messages)
{
    payload_doc *p = load("scala.json");
    cr_assert_eq(p->n_aggregates, 2);
    cr_assert_eq(p->aggregates[0].created_at_ms, ts("2024-03-02T09:40:00Z"));
    cr_assert_eq(p->aggregates[0].occurrences[0]->timestamp_ms, ts("2024-03-02T09:41:12.333Z"));
    payload_aggregate *m = &p->aggregates[1];
    cr_assert_eq(m->severity, PAYLOAD_INFO);
    cr_assert_eq(m->created_at_ms, ts("2024-03-02T13:30:01Z"));
    cr_assert_str_eq(m->occurrences[0]->error.class_name, ""); /* addMessage: no class */
    cr_assert_str_eq(m->occurrences[0]->error.message, "flag service unavailable, using defaults");
    payload_free(p);
}

Test(payload, missing_uuid_and_created_at_defaulted)
{
    payload_doc *p = load("legacy_no_uuid.json");
    cr_assert_str_eq(p->target_uuid, "");
    cr_assert_str_eq(p->instance_id, "http://10.0.0.1:8080/-/exceptions");
    payload_aggregate *a = &p->aggregates[0];
    cr_assert_eq(a->created_at_ms, PAYLOAD_TS_NONE);
    cr_assert_eq(a->severity, PAYLOAD_ERROR);
    cr_assert_str_eq(a->occurrences[0]->uuid, "");
    cr_assert_eq(a->occurrences[0]->severity, PAYLOAD_ERROR); /* inherits the aggregate's */
    cr_assert_null(a->occurrences[0]->http);
    payload_free(p);
}

Test(payload, malformed_records_skipped_and_counted)
{
    payload_doc *p = load("partly_malformed.json");
    /* bad-count, bad-created, missing key, bad-list, 42 */
    cr_assert_eq(p->skipped_aggregates, 5, "skipped %zu", p->skipped_aggregates);
    /* bad ts, bad class, bad stacktrace, bad header, not-an-object */
    cr_assert_eq(p->skipped_occurrences, 5, "skipped %zu", p->skipped_occurrences);
    cr_assert(strstr(p->first_problem, "yesterday") != NULL, "%s", p->first_problem);
    cr_assert_eq(p->n_aggregates, 2);
    payload_aggregate *g = &p->aggregates[0];
    cr_assert_str_eq(g->key, "good");
    cr_assert_eq(g->severity, PAYLOAD_ERROR); /* "bogus" */
    cr_assert_eq(g->n_occurrences, 2);
    cr_assert_str_eq(g->occurrences[1]->uuid, "o6");
    cr_assert_eq(g->occurrences[1]->severity, PAYLOAD_ERROR); /* "" -> aggregate's */
    /* repeated key folded: max count, min created_at, both samples, last severity */
    payload_aggregate *d = &p->aggregates[1];
    cr_assert_str_eq(d->key, "dup");
    cr_assert_eq(d->total_count, 5);
    cr_assert_eq(d->created_at_ms, ts("2024-03-01T10:00:00Z"));
    cr_assert_eq(d->n_occurrences, 2);
    cr_assert_eq(d->severity, PAYLOAD_INFO);
    payload_free(p);
}

Test(payload, fatal_errors_are_precise)
{
    char err[256];
    cr_assert_null(parse_str("{\"aggregated_errors\": [ }", err, sizeof(err)));
    cr_assert_str_eq(err, "invalid JSON at line 1 column 25: unallowed token at this point in JSON text");
    cr_assert_null(parse_str("{\n  \"aggregated_errors\": [\n    {\"x\": tru }\n]}", err, sizeof(err)));
    cr_assert_str_eq(err, "invalid JSON at line 3 column 13: invalid string in json text.");
    cr_assert_null(parse_str("{\"a\":1} x", err, sizeof(err)));
    cr_assert_str_eq(err, "invalid JSON at line 1 column 9: trailing garbage");
    cr_assert_null(parse_str("", err, sizeof(err)));
    cr_assert(strncmp(err, "invalid JSON at line 1", 22) == 0, "%s", err);
    cr_assert_null(parse_str("<html>502</html>", err, sizeof(err)));
    cr_assert(strstr(err, "invalid JSON") != NULL, "%s", err);
    cr_assert_null(parse_str("[1,2]", err, sizeof(err)));
    cr_assert_str_eq(err, "payload is not a JSON object (got array)");
    cr_assert_null(parse_str("{\"aggregated_errors\":\"x\"}", err, sizeof(err)));
    cr_assert_str_eq(err, "\"aggregated_errors\" is not an array (got string)");
    cr_assert_null(parse_str("{\"a\":1}\n{\"b\":2}", err, sizeof(err)));
    cr_assert(strstr(err, "line 2") != NULL, "%s", err);
}

Test(payload, empty_and_null_lists)
{
    char err[256];
    payload_doc *p = parse_str("{}", err, sizeof(err));
    cr_assert_not_null(p);
    cr_assert_eq(p->n_aggregates, 0);
    cr_assert_str_eq(p->instance_id, "http://fallback/x");
    payload_free(p);
    p = parse_str("{\"target_uuid\":17,\"aggregated_errors\":null}", err, sizeof(err));
    cr_assert_not_null(p);
    cr_assert_str_eq(p->instance_id, "http://fallback/x"); /* non-string uuid ignored */
    payload_free(p);
    p = parse_str("{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":3.0,\"latest_errors\":null}]}",
                  err, sizeof(err));
    cr_assert_eq(p->aggregates[0].total_count, 3);
    cr_assert_eq(p->aggregates[0].n_occurrences, 0);
    payload_free(p);
    p = parse_str("{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":-1}]}", err, sizeof(err));
    cr_assert_eq(p->n_aggregates, 0);
    cr_assert_eq(p->skipped_aggregates, 1);
    payload_free(p);
}

Test(payload, dedup_hash)
{
    char err[256];
    payload_doc *p = parse_str(
        "{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":1,\"latest_errors\":["
        "{\"error\":{\"message\":\"a\"},\"timestamp\":\"2024-01-01T00:00:00Z\"},"
        "{\"error\":{\"message\":\"a\"},\"timestamp\":\"2024-01-01T00:00:00Z\"},"
        "{\"error\":{\"message\":\"a\"},\"timestamp\":\"2024-01-01T00:00:01Z\"},"
        "{\"error\":{\"message\":\"x\"},\"uuid\":\"u1\",\"timestamp\":\"2024-01-01T00:00:00Z\"},"
        "{\"error\":{\"message\":\"y\"},\"uuid\":\"u1\",\"timestamp\":\"2024-01-01T00:00:05Z\"}]}]}",
        err, sizeof(err));
    payload_occurrence **o = p->aggregates[0].occurrences;
    cr_assert_eq(o[0]->dedup_hash, o[1]->dedup_hash);
    cr_assert_neq(o[0]->dedup_hash, o[2]->dedup_hash);
    cr_assert_eq(o[3]->dedup_hash, o[4]->dedup_hash); /* same uuid */
    payload_free(p);
}

Test(payload, refcount_outlives_doc)
{
    payload_doc *p = load("ruby.json");
    payload_occurrence *o = p->aggregates[0].occurrences[0];
    payload_occurrence_ref(o);
    payload_free(p);
    cr_assert_str_eq(o->error.cause->class_name, "ActiveRecord::RecordNotFound");
    payload_occurrence_unref(o);
}

Test(payload, serialize_server_shape)
{
    payload_doc *p = load("go.json");
    strbuf sb;
    strbuf_init(&sb);
    payload_occurrence_write_json(&sb, p->aggregates[0].occurrences[1], PAYLOAD_SHAPE_SERVER);
    cr_assert_str_eq(sb.buf,
                     "{\"error\":{\"class\":\"*url.Error\",\"message\":\"Get \\\"http://billing:8080/v1/invoices\\\": "
                     "context deadline exceeded\",\"stacktrace\":null,\"cause\":null},\"uuid\":\"d1b9f3d2-51e4-4b8e-"
                     "9a57-0f6a9a3e2b12\",\"timestamp\":1709377380,\"severity\":\"error\",\"http_context\":null}");
    strbuf_reset(&sb);
    payload_occurrence_write_json(&sb, p->aggregates[0].occurrences[0], PAYLOAD_SHAPE_SERVER);
    cr_assert(strstr(sb.buf, "\"http_context\":{\"request_method\":\"GET\",\"request_url\":\"http://api.internal/users/"
                             "42/invoices?limit=20\",\"request_headers\":{\"Accept\":\"application/json\",\"X-Request-"
                             "Id\":\"7d1e0c\",\"Authorization\":\"Bearer x\"},\"request_body\":\"\"}") != NULL,
              "%s", sb.buf);
    strbuf_free(&sb);
    payload_free(p);
}

Test(payload, serialize_client_shape_reparses)
{
    payload_doc *p = load("ruby.json");
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":1,\"latest_errors\":[");
    payload_occurrence_write_json(&sb, p->aggregates[0].occurrences[0], PAYLOAD_SHAPE_CLIENT);
    strbuf_puts(&sb, "]}]}");
    char err[256];
    payload_doc *q = parse_str(sb.buf, err, sizeof(err));
    cr_assert_not_null(q, "%s", err);
    payload_occurrence *a = p->aggregates[0].occurrences[0], *b = q->aggregates[0].occurrences[0];
    cr_assert_eq(a->timestamp_ms, b->timestamp_ms);
    cr_assert_eq(a->dedup_hash, b->dedup_hash);
    cr_assert_str_eq(b->error.cause->cause->class_name, "PG::ConnectionBad");
    cr_assert_eq(b->http->n_headers, 3);
    payload_free(q);
    strbuf_free(&sb);
    payload_free(p);
}

Test(payload, severity_names)
{
    cr_assert_eq(payload_severity_parse("info"), PAYLOAD_INFO);
    cr_assert_eq(payload_severity_parse("WARNING"), PAYLOAD_WARNING);
    cr_assert_eq(payload_severity_parse(""), PAYLOAD_ERROR);
    cr_assert_eq(payload_severity_parse(NULL), PAYLOAD_ERROR);
    cr_assert_eq(payload_severity_parse("fatal"), PAYLOAD_ERROR);
    cr_assert_str_eq(payload_severity_name(PAYLOAD_WARNING), "warning");
}

/* ---- cases found by mutation testing (make mutate) ------------------------------------------- */

/* Field bounds and the Gregorian leap-year rule (expected values from python3's calendar.timegm). */
Test(payload_time, bounds_and_leap_years)
{
    cr_assert_eq(ts("2000-02-29T00:00:00Z"), 951782400000LL); /* divisible by 400: leap */
    cr_assert_eq(ts("2024-12-31T23:59:59Z"), 1735689599000LL);
    cr_assert_eq(ts("2024-01-31T00:00:00Z"), 1706659200000LL);
    cr_assert_eq(ts("1999-12-31T23:59:59Z"), 946684799000LL);
    int64_t ms;
    const char *bad[] = {"2024-03-02T24:00:00Z", "2024-03-02T23:60:00Z", "1900-02-29T00:00:00Z",
                         "2100-02-29T00:00:00Z", "2024-02-30T00:00:00Z", "2024-04-31T00:00:00Z",
                         "2024-00-10T00:00:00Z", "2024-01-00T00:00:00Z", "2024-03-02T11:02:44+24:00",
                         "2024-03-02T11:02:44+01:60"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(payload_parse_time(bad[i], &ms), -1, "accepted %s", bad[i]);
}

/* Every month's last day is accepted and the day after it refused (2023: not a leap year). */
Test(payload_time, month_lengths)
{
    static const int last[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (int m = 1; m <= 12; m++) {
        char s[32];
        int64_t ms;
        snprintf(s, sizeof s, "2023-%02d-%02dT00:00:00Z", m, last[m - 1]);
        cr_assert_eq(payload_parse_time(s, &ms), 0, "refused %s", s);
        snprintf(s, sizeof s, "2023-%02d-%02dT00:00:00Z", m, last[m - 1] + 1);
        cr_assert_eq(payload_parse_time(s, &ms), -1, "accepted %s", s);
    }
    cr_assert_eq(ts("2023-12-31T23:59:59Z"), 1704067199000LL); /* python3 calendar.timegm */
}

/* An occurrence without a severity takes its aggregate's, whatever that is (not "error"). */
Test(payload, occurrence_severity_defaults_to_the_aggregates)
{
    const char *body = "{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":2,\"severity\":\"warning\","
                       "\"latest_errors\":[{\"uuid\":\"a\",\"timestamp\":\"2024-03-02T10:00:00Z\"},"
                       "{\"uuid\":\"b\",\"timestamp\":\"2024-03-02T10:00:01Z\",\"severity\":\"info\"}]},"
                       "{\"aggregation_key\":\"j\",\"total_count\":1,\"severity\":\"info\","
                       "\"latest_errors\":[{\"uuid\":\"c\",\"timestamp\":\"2024-03-02T10:00:00Z\"}]}]}";
    char err[256];
    payload_doc *p = payload_parse(body, strlen(body), "http://x", err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(p->aggregates[0].severity, PAYLOAD_WARNING);
    cr_assert_eq(p->aggregates[0].occurrences[0]->severity, PAYLOAD_WARNING);
    cr_assert_eq(p->aggregates[0].occurrences[1]->severity, PAYLOAD_INFO);
    cr_assert_eq(p->aggregates[1].occurrences[0]->severity, PAYLOAD_INFO);
    payload_free(p);
}

/* A federated aggregate names its origin job (__lookout_job__); an empty or non-string one is ignored. */
Test(payload, origin_job_of_federated_aggregates)
{
    const char *body = "{\"aggregated_errors\":[{\"aggregation_key\":\"a\",\"total_count\":1,\"__lookout_job__\":\"api\"},"
                       "{\"aggregation_key\":\"b\",\"total_count\":1,\"__lookout_job__\":\"\"},"
                       "{\"aggregation_key\":\"c\",\"total_count\":1,\"__lookout_job__\":7},"
                       "{\"aggregation_key\":\"d\",\"total_count\":1},"
                       "{\"aggregation_key\":\"e\",\"total_count\":1,\"__lookout_job__\":\"x\"}]}";
    char err[256];
    payload_doc *p = payload_parse(body, strlen(body), "http://x", err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(p->n_aggregates, 5);
    cr_assert_str_eq(p->aggregates[0].origin_job, "api");
    cr_assert_str_eq(p->aggregates[4].origin_job, "x");
    cr_assert_null(p->aggregates[1].origin_job);
    cr_assert_null(p->aggregates[2].origin_job);
    cr_assert_null(p->aggregates[3].origin_job);
    payload_free(p);
}

/* The streaming parser evaluates an object when it closes: member order never changes the result. */
Test(payload, member_order_and_repeated_members)
{
    char err[256];
    payload_doc *p = parse_str(
        "{\"aggregated_errors\":[{\"latest_errors\":[{\"severity\":\"\",\"error\":{\"stacktrace\":[\"a\",\"b\"],"
        "\"class\":\"C\"}}],\"severity\":\"info\",\"total_count\":\"x\",\"total_count\":4,\"aggregation_key\":\"k\"}],"
        "\"target_uuid\":\"late\"}",
        err, sizeof(err));
    cr_assert_not_null(p, "%s", err);
    cr_assert_str_eq(p->target_uuid, "late");
    cr_assert_eq(p->n_aggregates, 1);
    payload_aggregate *a = &p->aggregates[0];
    cr_assert_eq(a->total_count, 4); /* the last of a repeated member wins */
    cr_assert_eq(a->occurrences[0]->severity, PAYLOAD_INFO); /* inherited from a severity given later */
    cr_assert_str_eq(a->occurrences[0]->error.class_name, "C");
    cr_assert_eq(a->occurrences[0]->error.n_stacktrace, 2);
    cr_assert_str_eq(a->occurrences[0]->error.stacktrace[1], "b");
    payload_free(p);
    /* a problem found before the key is known still names the key */
    p = parse_str("{\"aggregated_errors\":[{\"latest_errors\":[{\"uuid\":5}],\"aggregation_key\":\"k2\"}]}", err,
                  sizeof(err));
    cr_assert_str_eq(p->first_problem, "aggregate \"k2\" occurrence 0: \"uuid\" is a number, expected a string");
    cr_assert_eq(p->skipped_occurrences, 1);
    payload_free(p);
}

/* At most max_occurrences per aggregate are built, the newest (also across folded repeats). */
Test(payload, occurrences_capped_newest_kept)
{
    char err[256];
    const char *s = "{\"aggregated_errors\":["
                    "{\"aggregation_key\":\"k\",\"latest_errors\":[{\"uuid\":\"a\",\"timestamp\":\"2024-01-01T00:00:03Z\"},"
                    "{\"uuid\":\"b\",\"timestamp\":\"2024-01-01T00:00:01Z\"},{\"uuid\":\"c\",\"timestamp\":\"2024-01-01T00:00:05Z\"}]},"
                    "{\"aggregation_key\":\"k\",\"latest_errors\":[{\"uuid\":\"d\",\"timestamp\":\"2024-01-01T00:00:04Z\"},{\"uuid\":\"e\"}]}]}";
    payload_doc *p = payload_parse_limited(s, strlen(s), "fb", 2, err, sizeof(err));
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(p->n_aggregates, 1);
    payload_aggregate *a = &p->aggregates[0];
    cr_assert_eq(a->n_occurrences, 2);
    bool c = false, d = false;
    for (size_t i = 0; i < 2; i++) {
        c |= strcmp(a->occurrences[i]->uuid, "c") == 0;
        d |= strcmp(a->occurrences[i]->uuid, "d") == 0;
    }
    cr_assert(c && d, "kept %s %s", a->occurrences[0]->uuid, a->occurrences[1]->uuid);
    payload_free(p);
}

/* 100,000 empty occurrences (the `[{},{},...]` shape) keep only the cap; a value nobody reads is skipped. */
Test(payload, runaway_shapes_stay_small)
{
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "{\"x\":[");
    for (int i = 0; i < 100000; i++)
        strbuf_puts(&sb, i ? ",[{}]" : "[{}]");
    strbuf_puts(&sb, "],\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"latest_errors\":[");
    for (int i = 0; i < 100000; i++)
        strbuf_puts(&sb, i ? ",{}" : "{}");
    strbuf_puts(&sb, "]}]}");
    char err[256];
    payload_doc *p = payload_parse(sb.buf, sb.len, "fb", err, sizeof(err));
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(p->aggregates[0].n_occurrences, PAYLOAD_DEFAULT_MAX_OCCURRENCES);
    payload_free(p);
    strbuf_free(&sb);
}

/* A valid time does not end the checks of a record: a bad severity or http_context after it still makes
 * the record malformed, with its own text. */
Test(payload, checks_after_a_valid_time)
{
    char err[256];
    payload_doc *p = parse_str("{\"aggregated_errors\":[{\"aggregation_key\":\"a\",\"created_at\":\"2024-03-02T10:00:00Z\","
                               "\"severity\":5},{\"aggregation_key\":\"b\",\"latest_errors\":[{\"error\":{\"class\":\"E\"},"
                               "\"uuid\":\"u1\",\"timestamp\":\"2024-03-02T10:00:00Z\",\"severity\":true},"
                               "{\"error\":{\"class\":\"E\"},\"uuid\":\"u2\",\"timestamp\":\"2024-03-02T10:00:00Z\","
                               "\"http_context\":7},{\"error\":{\"class\":\"E\"},\"uuid\":\"u3\"}]}]}",
                               err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(p->n_aggregates, 1);
    cr_assert_str_eq(p->aggregates[0].key, "b");
    cr_assert_eq(p->aggregates[0].n_occurrences, 1);
    cr_assert_str_eq(p->aggregates[0].occurrences[0]->uuid, "u3");
    cr_assert_eq(p->skipped_aggregates, 1);
    cr_assert_eq(p->skipped_occurrences, 2);
    cr_assert_str_eq(p->first_problem, "aggregate 0: \"severity\" is a number, expected a string");
    payload_free(p);
}

/* The same key with and without an origin job (federation) is two aggregates, never folded. */
Test(payload, same_key_with_and_without_origin_job)
{
    char err[256];
    payload_doc *p = parse_str("{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":1},"
                               "{\"aggregation_key\":\"k\",\"total_count\":2,\"__lookout_job__\":\"lower\"},"
                               "{\"aggregation_key\":\"k\",\"total_count\":3,\"__lookout_job__\":\"lower\"},"
                               "{\"aggregation_key\":\"k\",\"total_count\":4}]}",
                               err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(p->n_aggregates, 2);
    cr_assert_null(p->aggregates[0].origin_job);
    cr_assert_eq(p->aggregates[0].total_count, 4);
    cr_assert_str_eq(p->aggregates[1].origin_job, "lower");
    cr_assert_eq(p->aggregates[1].total_count, 3);
    payload_free(p);
}

/* A stack trace's first bad line is the one named. */
Test(payload, first_bad_stack_line_is_named)
{
    char err[256];
    payload_doc *p = parse_str("{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"latest_errors\":[{\"error\":"
                               "{\"class\":\"E\",\"stacktrace\":[\"ok\",1,true]},\"uuid\":\"u\"}]}]}",
                               err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(p->skipped_occurrences, 1);
    cr_assert_str_eq(p->first_problem,
                     "aggregate \"k\" occurrence 0: \"stacktrace\"[1] is a number, expected a string");
    payload_free(p);
}

/* ---- mutation testing (issue 19): what the streaming parser's survivors showed untested ---- */

/* payload_parse.c's identity_hash, mirrored: the aggregate index's slot of (key, origin job). */
static uint64_t identity_hash_of(const char *key, const char *job)
{
    uint64_t h = fnv1a64(FNV64_OFFSET, key, strlen(key));
    if (job)
        h = fnv1a64(h ^ 0x9e3779b97f4a7c15ULL, job, strlen(job));
    return h;
}

/* The same key with and without an origin job in the same slot of the aggregate index (chosen so that
 * the low 12 bits of their hashes agree: the same slot for every table size up to 4096): the probe meets
 * the other identity and must tell them apart, in both orders, without folding them. */
Test(payload, same_key_with_and_without_origin_job_in_one_index_slot)
{
    char job[32] = "";
    uint64_t want = identity_hash_of("k", NULL) & 4095;
    for (int i = 0; i < 10000000 && !job[0]; i++) {
        char j[32];
        snprintf(j, sizeof j, "job%d", i);
        if ((identity_hash_of("k", j) & 4095) == want)
            snprintf(job, sizeof job, "%s", j);
    }
    cr_assert(job[0], "no colliding job name found");
    char body[512], err[256];
    snprintf(body, sizeof body,
             "{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":1},"
             "{\"aggregation_key\":\"k\",\"total_count\":2,\"__lookout_job__\":\"%s\"},"
             "{\"aggregation_key\":\"k\",\"total_count\":3},"
             "{\"aggregation_key\":\"k\",\"total_count\":5,\"__lookout_job__\":\"%s\"}]}",
             job, job);
    payload_doc *p = parse_str(body, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(p->n_aggregates, 2);
    cr_assert_null(p->aggregates[0].origin_job);
    cr_assert_eq(p->aggregates[0].total_count, 3);
    cr_assert_str_eq(p->aggregates[1].origin_job, job);
    cr_assert_eq(p->aggregates[1].total_count, 5);
    payload_free(p);
    /* the other order: the job's aggregate holds the slot first */
    snprintf(body, sizeof body,
             "{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":2,\"__lookout_job__\":\"%s\"},"
             "{\"aggregation_key\":\"k\",\"total_count\":1},{\"aggregation_key\":\"k\",\"total_count\":7}]}",
             job);
    p = parse_str(body, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(p->n_aggregates, 2);
    cr_assert_str_eq(p->aggregates[0].origin_job, job);
    cr_assert_eq(p->aggregates[0].total_count, 2);
    cr_assert_null(p->aggregates[1].origin_job);
    cr_assert_eq(p->aggregates[1].total_count, 7);
    payload_free(p);
}

/* Hundreds of keys (the aggregate index grows and rehashes at 33, 65, 129, 257 entries), then each key
 * again: every repeat is found and folded, none is added twice, the order is the first appearance. */
Test(payload, repeated_keys_found_after_the_index_grows)
{
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "{\"aggregated_errors\":[");
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 300; i++) {
            char a[128];
            snprintf(a, sizeof a, "%s{\"aggregation_key\":\"key-%03d\",\"total_count\":%d}", round || i ? "," : "", i,
                     round ? 1000 + i : 1);
            strbuf_puts(&sb, a);
        }
    strbuf_puts(&sb, "]}");
    char err[256];
    payload_doc *p = payload_parse(sb.buf, sb.len, "fb", err, sizeof err);
    strbuf_free(&sb);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(p->n_aggregates, 300);
    for (int i = 0; i < 300; i++) {
        char k[16];
        snprintf(k, sizeof k, "key-%03d", i);
        cr_assert_str_eq(p->aggregates[i].key, k);
        cr_assert_eq(p->aggregates[i].total_count, (uint64_t)(1000 + i), "%s", k);
    }
    payload_free(p);
}

/* A repeated "aggregated_errors" member: the last one replaces everything the first one gave (its
 * aggregates, its skipped counts and its first problem), and what it held is freed. */
Test(payload, repeated_aggregated_errors_replace_the_first)
{
    char err[256];
    payload_doc *p = parse_str("{\"aggregated_errors\":[{\"aggregation_key\":\"a\",\"total_count\":1},"
                               "{\"aggregation_key\":5},{\"aggregation_key\":\"c\",\"latest_errors\":[{\"uuid\":1}]}],"
                               "\"aggregated_errors\":[{\"aggregation_key\":\"b\",\"total_count\":2},"
                               "{\"aggregation_key\":\"a\",\"total_count\":3}]}",
                               err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(p->n_aggregates, 2);
    cr_assert_str_eq(p->aggregates[0].key, "b");
    cr_assert_eq(p->aggregates[0].total_count, 2);
    cr_assert_str_eq(p->aggregates[1].key, "a");
    cr_assert_eq(p->aggregates[1].total_count, 3, "not folded into the first list's \"a\"");
    cr_assert_eq(p->skipped_aggregates, 0);
    cr_assert_eq(p->skipped_occurrences, 0);
    cr_assert_str_eq(p->first_problem, "");
    payload_free(p);
    p = parse_str("{\"aggregated_errors\":[{\"aggregation_key\":\"a\"}],\"aggregated_errors\":null}", err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(p->n_aggregates, 0);
    payload_free(p);
    p = parse_str("{\"aggregated_errors\":[{\"aggregation_key\":\"a\"}],\"aggregated_errors\":{}}", err, sizeof err);
    cr_assert_null(p);
    cr_assert_str_eq(err, "\"aggregated_errors\" is not an array (got object)");
    p = parse_str("{\"aggregated_errors\":7,\"aggregated_errors\":[{\"aggregation_key\":\"a\"}]}", err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(p->n_aggregates, 1);
    payload_free(p);

    /* every aggregate of the replaced list is freed, the first one too (a 1 MiB key each, so that the
     * plain build's heap count sees one left behind) */
    size_t big = 1 << 20;
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "{\"aggregated_errors\":[");
    for (int i = 0; i < 3; i++) {
        char head[64];
        snprintf(head, sizeof head, "%s{\"aggregation_key\":\"%d", i ? "," : "", i);
        strbuf_puts(&sb, head);
        for (size_t j = 0; j < big; j++)
            strbuf_putc(&sb, 'k');
        strbuf_puts(&sb, "\",\"latest_errors\":[{\"uuid\":\"u\"}]}");
    }
    strbuf_puts(&sb, "],\"aggregated_errors\":[]}");
    size_t before = heap_use();
    p = payload_parse(sb.buf, sb.len, "fb", err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(p->n_aggregates, 0);
    payload_free(p);
    heap_use_assert_back_to(before);
    strbuf_free(&sb);
}

/* Values nobody reads are skipped by their nesting alone: booleans, nulls, numbers and strings inside
 * them (at any depth, in unknown members of every record kind) never stop the parse. */
Test(payload, scalars_inside_skipped_values)
{
    char err[256];
    payload_doc *p = parse_str(
        "{\"x\":{\"a\":true,\"b\":[false,null,1,2.5,\"s\",{\"c\":true,\"d\":null}]},\"y\":true,\"z\":null,"
        "\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"other\":[true,{\"d\":false},null],"
        "\"latest_errors\":[{\"more\":{\"t\":true,\"n\":null},\"uuid\":\"u\",\"error\":{\"class\":\"E\","
        "\"x\":[true,false,null],\"stacktrace\":[\"s1\"],\"cause\":{\"class\":\"C\",\"y\":{\"b\":false}}},"
        "\"http_context\":{\"q\":[true],\"request_method\":\"GET\",\"request_headers\":{\"h\":\"v\"}}}]},"
        "true,null,[true,{\"a\":false}],{\"aggregation_key\":\"k2\",\"latest_errors\":[true,[false,null],"
        "{\"uuid\":\"w\",\"error\":{\"class\":\"E2\",\"stacktrace\":[1,[true,null],false]}}]}]}",
        err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(p->n_aggregates, 2);
    payload_aggregate *a = &p->aggregates[0];
    cr_assert_str_eq(a->key, "k");
    cr_assert_eq(a->n_occurrences, 1);
    cr_assert_str_eq(a->occurrences[0]->uuid, "u");
    cr_assert_str_eq(a->occurrences[0]->error.class_name, "E");
    cr_assert_eq(a->occurrences[0]->error.n_stacktrace, 1);
    cr_assert_str_eq(a->occurrences[0]->error.cause->class_name, "C");
    cr_assert_str_eq(a->occurrences[0]->http->method, "GET");
    cr_assert_eq(a->occurrences[0]->http->n_headers, 1);
    cr_assert_str_eq(p->aggregates[1].key, "k2");
    cr_assert_eq(p->aggregates[1].n_occurrences, 0);
    cr_assert_eq(p->skipped_aggregates, 3);
    cr_assert_eq(p->skipped_occurrences, 3);
    cr_assert_str_eq(p->first_problem, "aggregate 1: aggregate is a boolean, expected an object");
    payload_free(p);
}

/* No time, and a date and time joined by anything but T, t or a space (RFC 3339 5.6, with the space
 * its note allows). Found by mutation testing (issue 19, seed 2 of payload.c). */
Test(payload_time, null_and_separators)
{
    int64_t ms = 5;
    cr_assert_eq(payload_parse_time(NULL, &ms), -1);
    const char *bad[] = {"2024-03-02X11:02:44Z", "2024-03-02_11:02:44Z", "2024-03-0211:02:44Z",
                         "2024-03-02\t11:02:44Z", "2024-03-02:11:02:44Z", "2024-03-02"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(payload_parse_time(bad[i], &ms), -1, "accepted %s", bad[i]);
    cr_assert_eq(ts("2024-03-02 11:02:44Z"), 1709377364000LL);
    cr_assert_eq(ts("2024-03-02t11:02:44Z"), 1709377364000LL);
    cr_assert_eq(ts("2024-03-02T11:02:44Z"), 1709377364000LL);
}

/* A zone is Z, z or a signed offset; anything else after the seconds is refused. Found by mutation testing
 * (issue 19, seed 1 of payload.c on the current code). */
Test(payload_time, zone_designators)
{
    int64_t ms;
    const char *bad[] = {"2024-03-02T11:02:44X01:00", "2024-03-02T11:02:44 01:00", "2024-03-02T11:02:44*0100",
                         "2024-03-02T11:02:44.5X01:00", "2024-03-02T11:02:44=00:00"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(payload_parse_time(bad[i], &ms), -1, "accepted %s", bad[i]);
    cr_assert_eq(ts("2024-03-02T12:02:44+01:00"), 1709377364000LL);
    cr_assert_eq(ts("2024-03-02T10:02:44-0100"), 1709377364000LL);
    cr_assert_eq(ts("2024-03-02T11:02:44z"), 1709377364000LL);
}

/* Without a uuid, the dedup hash of an occurrence covers its http context (method, URL, body): two
 * occurrences that differ only there are two samples. */
Test(payload, dedup_hash_covers_the_http_context)
{
    char err[256];
    payload_doc *p = parse_str(
        "{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"latest_errors\":["
        "{\"error\":{\"class\":\"E\"},\"timestamp\":\"2024-03-02T11:02:44Z\",\"http_context\":{\"request_method\":\"GET\",\"request_url\":\"/a\",\"request_body\":\"\"}},"
        "{\"error\":{\"class\":\"E\"},\"timestamp\":\"2024-03-02T11:02:44Z\",\"http_context\":{\"request_method\":\"POST\",\"request_url\":\"/a\",\"request_body\":\"\"}},"
        "{\"error\":{\"class\":\"E\"},\"timestamp\":\"2024-03-02T11:02:44Z\",\"http_context\":{\"request_method\":\"GET\",\"request_url\":\"/b\",\"request_body\":\"\"}},"
        "{\"error\":{\"class\":\"E\"},\"timestamp\":\"2024-03-02T11:02:44Z\",\"http_context\":{\"request_method\":\"GET\",\"request_url\":\"/a\",\"request_body\":\"x\"}},"
        "{\"error\":{\"class\":\"E\"},\"timestamp\":\"2024-03-02T11:02:44Z\"},"
        "{\"error\":{\"class\":\"E\"},\"timestamp\":\"2024-03-02T11:02:44Z\",\"http_context\":{\"request_method\":\"GET\",\"request_url\":\"/a\",\"request_body\":\"\",\"request_headers\":{\"h\":\"v\"}}}"
        "]}]}",
        err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    payload_aggregate *a = &p->aggregates[0];
    cr_assert_eq(a->n_occurrences, 6);
    for (size_t i = 0; i < 5; i++)
        for (size_t j = i + 1; j < 5; j++)
            cr_assert_neq(a->occurrences[i]->dedup_hash, a->occurrences[j]->dedup_hash, "%zu and %zu", i, j);
    /* request headers are not part of it */
    cr_assert_eq(a->occurrences[5]->dedup_hash, a->occurrences[0]->dedup_hash);
    payload_free(p);
}

/* Members nobody reads, as scalars of every type, in every record kind: skipped without a trace. Found by
 * mutation testing (issue 19, seed 3 of payload_parse.c, run blind). */
Test(payload, unknown_scalar_members_everywhere)
{
    char err[256];
    payload_doc *p = parse_str(
        "{\"v\":1,\"target_uuid\":\"t\",\"w\":\"s\",\"aggregated_errors\":[{\"x\":\"s\",\"aggregation_key\":\"k\",\"x2\":false,"
        "\"latest_errors\":[{\"y\":2,\"uuid\":\"u\",\"y2\":null,\"error\":{\"class\":\"E\",\"z\":true,\"z2\":3.5,\"z3\":\"s\","
        "\"z4\":null,\"cause\":{\"w\":null,\"class\":\"C\",\"w2\":7}},\"http_context\":{\"q\":1.5,\"request_method\":\"GET\","
        "\"q2\":\"s\",\"q3\":false}}]}],\"u\":null}",
        err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_str_eq(p->target_uuid, "t");
    cr_assert_eq(p->n_aggregates, 1);
    payload_occurrence *o = p->aggregates[0].occurrences[0];
    cr_assert_str_eq(o->uuid, "u");
    cr_assert_str_eq(o->error.class_name, "E");
    cr_assert_str_eq(o->error.cause->class_name, "C");
    cr_assert_str_eq(o->http->method, "GET");
    cr_assert_eq(p->skipped_aggregates + p->skipped_occurrences, 0);
    cr_assert_str_eq(p->first_problem, "");
    payload_free(p);
}

/* A cause chain is cut after 32 causes, unchecked below: a scalar, an object or a bad value there neither
 * stops the parse nor makes the occurrence malformed. */
Test(payload, cause_chain_cut_at_32)
{
    const char *deepest[] = {"\"x\"", "7", "null", "true", "{\"class\":5}", "[1]"};
    for (size_t d = 0; d < sizeof deepest / sizeof *deepest; d++) {
        strbuf sb;
        strbuf_init(&sb);
        strbuf_puts(&sb, "{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"latest_errors\":[{\"uuid\":\"u\",\"error\":");
        for (int i = 0; i < 40; i++) {
            char e[64];
            snprintf(e, sizeof e, "{\"class\":\"E%d\",\"cause\":", i);
            strbuf_puts(&sb, e);
        }
        strbuf_puts(&sb, deepest[d]);
        for (int i = 0; i < 40; i++)
            strbuf_putc(&sb, '}');
        strbuf_puts(&sb, "}]}]}");
        char err[256];
        payload_doc *p = payload_parse(sb.buf, sb.len, "fb", err, sizeof err);
        strbuf_free(&sb);
        cr_assert_not_null(p, "%s: %s", deepest[d], err);
        cr_assert_eq(p->aggregates[0].n_occurrences, 1, "%s", deepest[d]);
        int n = 0;
        for (const payload_error *e = &p->aggregates[0].occurrences[0]->error; e; e = e->cause) {
            char want[16];
            snprintf(want, sizeof want, "E%d", n);
            cr_assert_str_eq(e->class_name, want);
            n++;
        }
        cr_assert_eq(n, 33, "the error and 32 causes, got %d", n);
        payload_free(p);
    }
}

/* jansson's nesting limit, kept: 2048 levels (the root object counts) parse, 2049 are refused. */
Test(payload, nesting_limit_at_its_exact_edge)
{
    for (int extra = 0; extra < 2; extra++) {
        int arrays = 2047 + extra; /* inside the root object */
        strbuf sb;
        strbuf_init(&sb);
        strbuf_puts(&sb, "{\"x\":");
        for (int i = 0; i < arrays; i++)
            strbuf_putc(&sb, '[');
        for (int i = 0; i < arrays; i++)
            strbuf_putc(&sb, ']');
        strbuf_puts(&sb, ",\"aggregated_errors\":[]}");
        char err[256] = "";
        payload_doc *p = payload_parse(sb.buf, sb.len, "fb", err, sizeof err);
        strbuf_free(&sb);
        if (!extra) {
            cr_assert_not_null(p, "%s", err);
            payload_free(p);
        } else {
            cr_assert_null(p);
            cr_assert_str_eq(err, "invalid JSON at line 1 column 2053: maximum parsing depth reached");
        }
    }
}

/* Errors raised by the parser's own callbacks stop the parse, with jansson's words and the position where
 * yajl stopped. Found by mutation testing (issue 19, seed 3 of payload_parse.c, run blind). */
Test(payload, callback_errors_stop_the_parse)
{
    struct {
        const char *body, *err;
    } cases[] = {
        {"{\"aggregated_errors\":[],\"x\":99999999999999999999}",
         "invalid JSON at line 1 column 48: too big integer"},
        {"{\"aggregated_errors\":[],\"x\":-99999999999999999999}",
         "invalid JSON at line 1 column 49: too big negative integer"},
        {"{\"aggregated_errors\":[],\"x\":1e999}", "invalid JSON at line 1 column 33: real number overflow"},
        {"{\"aggregated_errors\":[],\"x\":\"a\\u0000b\"}",
         "invalid JSON at line 1 column 38: \\u0000 is not allowed without JSON_ALLOW_NUL"},
        {"{\"aggregated_errors\":[],\"a\\u0000b\":1}",
         "invalid JSON at line 1 column 34: NUL byte in object key not supported"},
        {"\"just a string\"", "invalid JSON at line 1 column 15: '[' or '{' expected"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char err[256] = "";
        payload_doc *p = parse_str(cases[i].body, err, sizeof err);
        cr_assert_null(p, "%s parsed", cases[i].body);
        cr_assert_str_eq(err, cases[i].err, "%s: %s", cases[i].body, err);
    }
    /* a bare number ends only at the end of the input (yajl_complete_parse, whose offsets restart: the
     * column is not checked here) */
    char err[256];
    cr_assert_null(parse_str("7", err, sizeof err));
    cr_assert(strncmp(err, "invalid JSON at line 1 column ", 30) == 0, "%s", err);
    cr_assert(strstr(err, ": '[' or '{' expected") != NULL, "%s", err);
    /* the largest numbers that fit are fine, also where nobody reads them */
    payload_doc *p = parse_str("{\"x\":[9223372036854775807,-9223372036854775808,1e308],\"aggregated_errors\":"
                               "[{\"aggregation_key\":\"k\",\"total_count\":9223372036854775807}]}",
                               err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(p->aggregates[0].total_count, 9223372036854775807ULL);
    payload_free(p);
}

/* Times of another type are problems of their record, not absent times. */
Test(payload, times_of_another_type)
{
    char err[256];
    payload_doc *p = parse_str("{\"aggregated_errors\":[{\"aggregation_key\":\"a\",\"created_at\":true},"
                               "{\"aggregation_key\":\"b\",\"latest_errors\":[{\"uuid\":\"u1\",\"timestamp\":5},"
                               "{\"uuid\":\"u2\",\"timestamp\":{}},{\"uuid\":\"u3\",\"timestamp\":null}]}]}",
                               err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(p->n_aggregates, 1);
    cr_assert_str_eq(p->aggregates[0].key, "b");
    cr_assert_eq(p->aggregates[0].n_occurrences, 1);
    cr_assert_str_eq(p->aggregates[0].occurrences[0]->uuid, "u3");
    cr_assert_eq(p->skipped_aggregates, 1);
    cr_assert_eq(p->skipped_occurrences, 2);
    cr_assert_str_eq(p->first_problem, "aggregate 0: \"created_at\" is a boolean, expected an RFC 3339 string");
    payload_free(p);
    p = parse_str("{\"aggregated_errors\":[{\"aggregation_key\":\"b\",\"latest_errors\":[{\"uuid\":\"u1\",\"timestamp\":5}]}]}",
                  err, sizeof err);
    cr_assert_str_eq(p->first_problem,
                     "aggregate \"b\" occurrence 0: \"timestamp\" is a number, expected an RFC 3339 string");
    payload_free(p);
}

/* Every string an occurrence builder held is freed, kept or not (1 MiB timestamps, uuids and severities,
 * so that the plain build's heap count sees one left behind), and stack traces whose lines grow the line
 * buffer past every doubling keep every line intact. */
Test(payload, occurrence_builders_free_what_they_held)
{
    size_t big = 1 << 20;
    const char *member[] = {"timestamp", "uuid", "severity"};
    for (size_t m = 0; m < 3; m++) {
        strbuf sb;
        strbuf_init(&sb);
        strbuf_puts(&sb, "{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"latest_errors\":[");
        for (int i = 0; i < 3; i++) {
            strbuf_puts(&sb, i ? ",{\"" : "{\"");
            strbuf_puts(&sb, member[m]);
            strbuf_puts(&sb, "\":\"");
            for (size_t j = 0; j < big; j++)
                strbuf_putc(&sb, 'x');
            strbuf_puts(&sb, i == 1 ? "\",\"uuid\":5}" : "\"}"); /* the second is malformed */
        }
        strbuf_puts(&sb, "]}]}");
        char err[256];
        size_t before = heap_use();
        payload_doc *p = payload_parse(sb.buf, sb.len, "fb", err, sizeof err);
        cr_assert_not_null(p, "%s", err);
        payload_free(p);
        heap_use_assert_back_to(before);
        strbuf_free(&sb);
    }
    /* lines of 0, 1, 150, 1500, 3000, ... bytes: each growth step of the line buffer */
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"latest_errors\":[{\"error\":{\"class\":\"E\","
                     "\"stacktrace\":[");
    size_t lens[] = {0, 1, 150, 1000, 1500, 3000, 7000, 64, 20000};
    size_t n = sizeof lens / sizeof *lens;
    for (size_t i = 0; i < n; i++) {
        strbuf_puts(&sb, i ? ",\"" : "\"");
        for (size_t j = 0; j < lens[i]; j++)
            strbuf_putc(&sb, (char)('a' + (i + j) % 26));
        strbuf_putc(&sb, '"');
    }
    strbuf_puts(&sb, "]}}]}]}");
    char err[256];
    payload_doc *p = payload_parse(sb.buf, sb.len, "fb", err, sizeof err);
    strbuf_free(&sb);
    cr_assert_not_null(p, "%s", err);
    const payload_error *e = &p->aggregates[0].occurrences[0]->error;
    cr_assert_eq(e->n_stacktrace, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(strlen(e->stacktrace[i]), lens[i], "line %zu", i);
        for (size_t j = 0; j < lens[i]; j++)
            cr_assert_eq(e->stacktrace[i][j], (char)('a' + (i + j) % 26), "line %zu byte %zu", i, j);
    }
    payload_free(p);
}

/* Every request header an http_context builder held is freed, the first one too, whether the context is
 * kept, replaced by a repeated request_headers member, or dropped with its malformed occurrence (1 MiB
 * values, seen by the plain build's heap count). Found by mutation testing (issue 19, seed 4, blind). */
Test(payload, http_builders_free_every_header)
{
    size_t big = 1 << 20;
    const char *tail[] = {"}}", "},\"request_headers\":{}}", "},\"request_method\":5}"};
    for (size_t t = 0; t < 3; t++) {
        strbuf sb;
        strbuf_init(&sb);
        strbuf_puts(&sb, "{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"latest_errors\":[{\"uuid\":\"u\","
                         "\"http_context\":{\"request_headers\":{");
        for (int h = 0; h < 2; h++) {
            strbuf_puts(&sb, h ? ",\"h" : "\"h");
            strbuf_putc(&sb, (char)('0' + h));
            strbuf_puts(&sb, "\":\"");
            for (size_t j = 0; j < big; j++)
                strbuf_putc(&sb, 'v');
            strbuf_putc(&sb, '"');
        }
        strbuf_puts(&sb, tail[t]);
        strbuf_puts(&sb, "}]}]}");
        char err[256];
        size_t before = heap_use();
        payload_doc *p = payload_parse(sb.buf, sb.len, "fb", err, sizeof err);
        cr_assert_not_null(p, "%s", err);
        payload_aggregate *a = &p->aggregates[0];
        if (t == 0) {
            cr_assert_eq(a->occurrences[0]->http->n_headers, 2);
            cr_assert_eq(strlen(a->occurrences[0]->http->headers[0].value), big);
        } else if (t == 1) {
            cr_assert_eq(a->occurrences[0]->http->n_headers, 0);
        } else {
            cr_assert_eq(a->n_occurrences, 0);
        }
        payload_free(p);
        heap_use_assert_back_to(before);
        strbuf_free(&sb);
    }
}

/* request_headers given twice, the last one empty: the kept context has no headers and the first one's
 * header array (grown to 2 MiB by 100,000 headers here, so that the plain build's heap count sees it) is
 * freed. Found by the ASan mode of the mutation tool on the test above: the array leaked. */
Test(payload, empty_repeated_request_headers_free_the_first_array)
{
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"latest_errors\":[{\"uuid\":\"u\","
                     "\"http_context\":{\"request_headers\":{");
    for (int h = 0; h < 100000; h++) {
        char m[32];
        snprintf(m, sizeof m, "%s\"h%d\":\"v\"", h ? "," : "", h);
        strbuf_puts(&sb, m);
    }
    strbuf_puts(&sb, "},\"request_headers\":{}}}]}]}");
    char err[256];
    size_t before = heap_use();
    payload_doc *p = payload_parse(sb.buf, sb.len, "fb", err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_not_null(p->aggregates[0].occurrences[0]->http);
    cr_assert_eq(p->aggregates[0].occurrences[0]->http->n_headers, 0);
    payload_free(p);
    heap_use_assert_back_to(before);
    strbuf_free(&sb);
}

/* An aggregate folded into an earlier one of the same identity gives back its own key and origin job
 * (1 MiB each here, for the plain build's heap count). Found by mutation testing (issue 19, seed 2 on the
 * code after the request_headers fix). */
Test(payload, folded_aggregates_free_their_strings)
{
    size_t big = 1 << 20;
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "{\"aggregated_errors\":[");
    for (int i = 0; i < 3; i++) {
        strbuf_puts(&sb, i ? ",{\"aggregation_key\":\"" : "{\"aggregation_key\":\"");
        for (size_t j = 0; j < big; j++)
            strbuf_putc(&sb, 'k');
        strbuf_puts(&sb, "\",\"__lookout_job__\":\"");
        for (size_t j = 0; j < big; j++)
            strbuf_putc(&sb, 'j');
        char c[96];
        snprintf(c, sizeof c, "\",\"total_count\":%d,\"latest_errors\":[{\"uuid\":\"u%d\"}]}", i + 1, i);
        strbuf_puts(&sb, c);
    }
    strbuf_puts(&sb, "]}");
    char err[256];
    size_t before = heap_use();
    payload_doc *p = payload_parse(sb.buf, sb.len, "fb", err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(p->n_aggregates, 1);
    cr_assert_eq(p->aggregates[0].total_count, 3);
    cr_assert_eq(p->aggregates[0].n_occurrences, 3);
    payload_free(p);
    heap_use_assert_back_to(before);
    strbuf_free(&sb);
}

/* A repeated aggregated_errors list starts with an empty index: keys of the first list, at other
 * positions in the second, are neither folded into the first list's (freed) aggregates nor lost. */
Test(payload, repeated_aggregated_errors_start_a_new_index)
{
    strbuf sb;
    strbuf_init(&sb);
    for (int list = 0; list < 2; list++) {
        strbuf_puts(&sb, list ? "],\"aggregated_errors\":[" : "{\"aggregated_errors\":[");
        for (int i = 0; i < 40; i++) {
            char a[96];
            int k = list ? 39 - i : i; /* the second list in reverse order */
            snprintf(a, sizeof a, "%s{\"aggregation_key\":\"key-%02d\",\"total_count\":%d}", i ? "," : "", k,
                     list ? 100 + k : k);
            strbuf_puts(&sb, a);
        }
    }
    strbuf_puts(&sb, ",{\"aggregation_key\":\"key-00\",\"total_count\":7}]}");
    char err[256];
    payload_doc *p = payload_parse(sb.buf, sb.len, "fb", err, sizeof err);
    strbuf_free(&sb);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(p->n_aggregates, 40);
    for (int i = 0; i < 40; i++) {
        char k[16];
        snprintf(k, sizeof k, "key-%02d", 39 - i);
        cr_assert_str_eq(p->aggregates[i].key, k);
        cr_assert_eq(p->aggregates[i].total_count, (uint64_t)(100 + 39 - i), "%s", k);
    }
    payload_free(p);
}

/* payload_parse_reuse: when the text with placeholders fails to parse, the body is parsed again in full
 * (no lookups), which gives the full parse's error. The source here knows the first aggregate only. */
static int reuse_lookups;
static bool lookup_first(void *ctx, uint64_t raw_hash, payload_aggregate *out)
{
    (void)ctx;
    (void)raw_hash;
    if (reuse_lookups++)
        return false;
    *out = (payload_aggregate){.key = "k", .total_count = 1};
    return true;
}

Test(payload, reuse_falls_back_to_a_full_parse_on_errors)
{
    const char *body = "{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":1},"
                       "{\"aggregation_key\":\"x\",\"total_count\":1e999}]}";
    char err[256] = "", err2[256] = "";
    cr_assert_null(payload_parse(body, strlen(body), "fb", err, sizeof err));
    cr_assert_str_eq(err, "invalid JSON at line 1 column 104: real number overflow");
    payload_reuse r = {.lookup = lookup_first};
    reuse_lookups = 0;
    cr_assert_null(payload_parse_reuse(body, strlen(body), "fb", 0, &r, err2, sizeof err2));
    cr_assert_str_eq(err2, err);
    cr_assert_eq(reuse_lookups, 2, "one plan with lookups, the fallback without");
}

/* The first bad request header is the one named, not a later one. Found by mutation testing (issue 19,
 * seed 4 on the code after the request_headers fix). */
Test(payload, first_bad_request_header_is_named)
{
    char err[256];
    payload_doc *p = parse_str("{\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"latest_errors\":[{\"uuid\":\"u\","
                               "\"http_context\":{\"request_headers\":{\"ok\":\"v\",\"a\":1,\"b\":true,\"c\":\"v\"}}}]}]}",
                               err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(p->skipped_occurrences, 1);
    cr_assert_str_eq(p->first_problem, "aggregate \"k\" occurrence 0: header \"a\" is a number, expected a string");
    payload_free(p);
}

/* The document's aggregate array is trimmed to its length: 1,370 aggregates grew it to room for 2,053. */
Test(payload, aggregate_array_trimmed_to_its_length)
{
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "{\"aggregated_errors\":[");
    for (int i = 0; i < 1370; i++) {
        char a[64];
        snprintf(a, sizeof a, "%s{\"aggregation_key\":\"k%d\"}", i ? "," : "", i);
        strbuf_puts(&sb, a);
    }
    strbuf_puts(&sb, "]}");
    char err[256];
    payload_doc *p = payload_parse(sb.buf, sb.len, "fb", err, sizeof err);
    strbuf_free(&sb);
    cr_assert_not_null(p, "%s", err);
    cr_assert_eq(p->n_aggregates, 1370);
    size_t usable = malloc_usable_size(p->aggregates), want = 1370 * sizeof *p->aggregates;
    cr_assert(usable >= want && usable < want + 4096, "%zu usable bytes for %zu", usable, want);
    payload_free(p);
}
