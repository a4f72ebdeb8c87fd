/* scrub: secrets in headers, URLs and bodies are masked with "[Filtered]"; names and the rest stay. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "periskop/payload.h"
#include "periskop/scrub.h"

static scrub_rules *R;

static void setup(void)
{
    R = scrub_rules_default();
}

static void teardown(void)
{
    scrub_rules_free(R);
}

TestSuite(scrub, .init = setup, .fini = teardown);

static void url_is(const char *in, const char *want)
{
    char *out = scrub_url(R, in);
    if (!want) {
        cr_expect_null(out, "%s -> %s", in, out);
    } else {
        cr_expect_not_null(out, "%s unchanged", in);
        if (out)
            cr_expect_str_eq(out, want);
    }
    free(out);
}

static void body_is(const char *in, const char *want)
{
    char *out = scrub_body(R, in);
    if (!want) {
        cr_expect_null(out, "%s -> %s", in, out);
    } else {
        cr_expect_not_null(out, "%s unchanged", in);
        if (out)
            cr_expect_str_eq(out, want);
    }
    free(out);
}

Test(scrub, urls)
{
    url_is("https://api.example/v1/orders?id=7&token=abc123&page=2",
           "https://api.example/v1/orders?id=7&token=[Filtered]&page=2");
    url_is("/login?user=bob&password=hunter2", "/login?user=bob&password=[Filtered]");
    url_is("https://bob:hunter2@db.example:5432/x?ok=1", "https://bob:[Filtered]@db.example:5432/x?ok=1");
    url_is("https://h/cb#access_token=xyz&state=s", "https://h/cb#access_token=[Filtered]&state=s");
    url_is("https://h/p?api_key=1&apiKey=2&X-Amz-Signature=3&sig=4&auth=5&session_id=6&client_secret=7&passwd=8",
           "https://h/p?api_key=[Filtered]&apiKey=[Filtered]&X-Amz-Signature=[Filtered]&sig=[Filtered]&"
           "auth=[Filtered]&session_id=[Filtered]&client_secret=[Filtered]&passwd=[Filtered]");
    url_is("https://h/p?pass%77ord=x", "https://h/p?pass%77ord=[Filtered]");
    url_is("https://h/p?design=a&monkey=b&author=c&assignee=d", NULL);
    url_is("https://h/p?token=[Filtered]", NULL); /* idempotent */
    url_is("https://h/path#frag", NULL);
    url_is("", NULL);
    /* A URL inside a parameter is not the authority: the query before it is still scrubbed (found by
     * fuzz_scrub), and the nested URL is scrubbed as a URL of its own. */
    url_is("/login?token=abc&next=https://u:p@x", "/login?token=[Filtered]&next=https://u:[Filtered]@x");
    url_is("Referer:p//x?to=1&u=x://h:pw@h", "Referer:p//x?to=1&u=x://h:[Filtered]@h");
}

Test(scrub, bodies)
{
    body_is("{\"user\":\"bob\",\"password\":\"hunter2\",\"n\":1}",
            "{\"user\":\"bob\",\"password\":\"[Filtered]\",\"n\":1}");
    body_is("{\"a\":{\"apiKey\": 12345, \"b\":[{\"refresh_token\":{\"x\":\"y\"}}]}, \"c\":\"token\"}",
            "{\"a\":{\"apiKey\": \"[Filtered]\", \"b\":[{\"refresh_token\":\"[Filtered]\"}]}, \"c\":\"token\"}");
    body_is("{\"secret\":\"unterminated", "{\"secret\":\"[Filtered]\"");
    body_is("{\"pw\\\"x\":\"a\",\"password\":\"p\\\"q\"}", "{\"pw\\\"x\":\"a\",\"password\":\"[Filtered]\"}");
    body_is("grant_type=password&username=bob&password=hunter2&client_secret=s",
            "grant_type=password&username=bob&password=[Filtered]&client_secret=[Filtered]");
    body_is("{\"message\":\"hello\"}", NULL);
    body_is("plain text with no fields", NULL);
    body_is("{\"password\":\"[Filtered]\"}", NULL);
}

Test(scrub, headers)
{
    const char *secret[] = {"Authorization", "proxy-authorization", "Cookie", "Set-Cookie", "X-Api-Key",
                            "X-Auth-Token",  "X-CSRF-Token",        "X-Client-Secret", "X-Session-Id", "My-Password",
                            "X-Goog-Api-Key"};
    for (size_t i = 0; i < sizeof secret / sizeof *secret; i++) {
        char *v = scrub_header(R, secret[i], "s3cr3t-value");
        cr_expect_not_null(v, "%s", secret[i]);
        if (v)
            cr_expect_str_eq(v, "[Filtered]");
        free(v);
    }
    cr_expect_null(scrub_header(R, "User-Agent", "curl/8"));
    cr_expect_null(scrub_header(R, "Content-Type", "application/json"));
    char *v = scrub_header(R, "Referer", "https://app.example/reset?token=abc");
    cr_expect_str_eq(v, "https://app.example/reset?token=[Filtered]");
    free(v);
}

Test(scrub, extra_rules_and_disabled)
{
    char *hdr[] = {"X-Internal"};
    char *fld[] = {"ssn", "creditcard"};
    scrub_rules *r = scrub_rules_new(true, hdr, 1, fld, 2);
    char *v = scrub_header(r, "x-internal", "abc");
    cr_expect_str_eq(v, "[Filtered]");
    free(v);
    v = scrub_url(r, "/p?ssn=1&lessnumber=2&creditCardNumber=3");
    cr_expect_str_eq(v, "/p?ssn=[Filtered]&lessnumber=2&creditCardNumber=[Filtered]");
    free(v);
    scrub_rules_free(r);

    scrub_rules *off = scrub_rules_new(false, NULL, 0, NULL, 0);
    payload_occurrence *o = payload_occurrence_new("E", "m", "", 1000, PAYLOAD_ERROR, "GET", "/x?token=abc");
    cr_expect_eq(scrub_occurrence(off, o), 0);
    cr_expect_str_eq(o->http->url, "/x?token=abc");
    scrub_rules_free(off);
    payload_occurrence_unref(o);
}

Test(scrub, documents)
{
    const char *body = "{\"target_uuid\":\"t\",\"aggregated_errors\":[{\"aggregation_key\":\"k\",\"total_count\":1,"
                       "\"severity\":\"error\",\"latest_errors\":[{\"error\":{\"class\":\"E\",\"message\":\"m\"},"
                       "\"uuid\":\"\",\"timestamp\":\"2024-01-01T00:00:00Z\",\"severity\":\"error\","
                       "\"http_context\":{\"request_method\":\"POST\",\"request_url\":\"/a?token=T1\","
                       "\"request_headers\":{\"Authorization\":\"Bearer T2\",\"Accept\":\"*/*\"},"
                       "\"request_body\":\"{\\\"password\\\":\\\"T3\\\"}\"}}]}]}";
    char err[256];
    payload_doc *d = payload_parse(body, strlen(body), "u", err, sizeof err);
    cr_assert_not_null(d, "%s", err);
    payload_occurrence *o = d->aggregates[0].occurrences[0];
    uint64_t before = o->dedup_hash;
    cr_expect_eq(scrub_doc(R, d), 3);
    cr_expect_str_eq(o->http->url, "/a?token=[Filtered]");
    cr_expect_str_eq(o->http->body, "{\"password\":\"[Filtered]\"}");
    for (size_t i = 0; i < o->http->n_headers; i++)
        if (strcmp(o->http->headers[i].name, "Authorization") == 0)
            cr_expect_str_eq(o->http->headers[i].value, "[Filtered]");
        else
            cr_expect_str_eq(o->http->headers[i].value, "*/*");
    cr_expect_neq(o->dedup_hash, before, "identity no longer depends on the secrets");
    cr_expect_eq(scrub_doc(R, d), 0, "idempotent");
    payload_free(d);
}

#include "config/config.h"

Test(scrub, config_section)
{
    char err[512] = "";
    const char *y = "scrubbing:\n  enabled: false\n  headers: [X-Internal]\n  fields: [ssn, pin]\nscrape_configs: []\n";
    lookout_config *c = config_parse(y, strlen(y), "s.yml", err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_expect(!c->scrubbing.enabled);
    cr_expect_eq(c->scrubbing.n_headers, 1);
    cr_expect_str_eq(c->scrubbing.headers[0], "X-Internal");
    cr_expect_eq(c->scrubbing.n_fields, 2);
    config_free(c);
    c = config_parse("scrape_configs: []\n", 19, "d.yml", err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_expect(c->scrubbing.enabled, "on by default");
    config_free(c);
    const char *bad = "scrubbing:\n  enable: true\n";
    cr_expect_null(config_parse(bad, strlen(bad), "b.yml", err, sizeof err));
    cr_expect(strstr(err, "b.yml:2:3: field enable not found in type scrubbing") != NULL, "%s", err);
    const char *empty = "scrubbing:\n  fields: ['']\n";
    cr_expect_null(config_parse(empty, strlen(empty), "e.yml", err, sizeof err));
    cr_expect(strstr(err, "empty pattern in scrubbing.fields") != NULL, "%s", err);
}

/* A URL inside an ordinary parameter (a login redirect's next=, literal or percent-encoded) is scrubbed
 * like a URL: its password and its own secret parameters; the encoding stays as it came. */
Test(scrub, urls_nested_in_parameters)
{
    url_is("https://h/login?next=https://user:pass@host/x&a=1", "https://h/login?next=https://user:[Filtered]@host/x&a=1");
    url_is("https://h/?next=https%3A%2F%2Fuser%3Apass%40host%2F&b=2",
           "https://h/?next=https%3A%2F%2Fuser%3A%5BFiltered%5D%40host%2F&b=2");
    url_is("https://h/?next=https%3A%2F%2Fh2%2F%3Ftoken%3Dabc", "https://h/?next=https%3A%2F%2Fh2%2F%3Ftoken%3D%5BFiltered%5D");
    url_is("/cb?redirect=%2Fp%3Fsession%3Dxyz", "/cb?redirect=%2Fp%3Fsession%3D%5BFiltered%5D");
    url_is("https://h/?a=1#next=https://u:p@h2/", "https://h/?a=1#next=https://u:[Filtered]@h2/");
    /* nested twice */
    url_is("https://h/?n=https://a/%3Fm%3Dhttps%253A%252F%252Fu%253Ap%2540h",
           "https://h/?n=https%3A%2F%2Fa%2F%3Fm%3Dhttps%253A%252F%252Fu%253A%255BFiltered%255D%2540h");
    /* already scrubbed, or nothing secret: unchanged */
    url_is("https://h/?next=https%3A%2F%2Fuser%3A%5BFiltered%5D%40host%2F", NULL);
    url_is("https://h/?next=https%3A%2F%2Fhost%2Fpath&q=a+b", NULL);
    url_is("https://h/?next=https://user@host/", NULL);
    url_is("https://h/?next=%2Fhome", NULL);
    /* form bodies use the same parameter scanner */
    body_is("user=bob&next=https%3A%2F%2Fu%3Ap%40h", "user=bob&next=https%3A%2F%2Fu%3A%5BFiltered%5D%40h");
}

/* Hostile nesting is bounded: deeper than SCRUB_MAX_NEST levels is left as it is, and nothing overflows. */
Test(scrub, nesting_is_bounded)
{
    size_t levels = 20000;
    char *s = malloc(levels * 14 + 64);
    size_t o = 0;
    for (size_t i = 0; i < levels; i++)
        o += (size_t)sprintf(s + o, "%s", "https://h/?n=");
    strcpy(s + o, "https://u:p@h/");
    char *out = scrub_url(R, s);
    cr_expect_null(out, "a password 20000 levels deep is beyond the bound");
    free(out);
    free(s);
    url_is("https://h/?n=https://h/?n=https://u:p@h/", "https://h/?n=https://h/?n=https://u:[Filtered]@h/");
}

/* JSON string values holding URLs with userinfo lose the password, wherever the URL is in the string;
 * a string that is a URL is scrubbed like a URL. */
Test(scrub, json_strings_with_urls)
{
    body_is("{\"db\":\"postgres://app:s3cr3t@db:5432/x\"}", "{\"db\":\"postgres://app:[Filtered]@db:5432/x\"}");
    body_is("{\"m\":\"connect to https://u:pw@h/a failed\",\"n\":1}",
            "{\"m\":\"connect to https://u:[Filtered]@h/a failed\",\"n\":1}");
    body_is("{\"e\":\"https:\\/\\/c:d@h\\/\"}", "{\"e\":\"https://c:[Filtered]@h/\"}");
    body_is("[\"https://h/cb?token=abc\"]", "[\"https://h/cb?token=[Filtered]\"]");
    body_is("{\"q\":\"say \\\"https://u:p@h\\\" now\"}", "{\"q\":\"say \\\"https://u:[Filtered]@h\\\" now\"}");
    body_is("{\"u\":\"https://u:p@h", "{\"u\":\"https://u:[Filtered]@h"); /* truncated */
    body_is("{\"u\":\"https://user@h/\",\"v\":\"a:b@c\",\"w\":\"mailto:x@y\"}", NULL);
    body_is("{\"u\":\"https://u:[Filtered]@h/\"}", NULL);
}
