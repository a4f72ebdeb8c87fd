/* The search language parser (store/query.h): terms, negation, quoting, lists, and every error a user
 * can make, with the message the API answers 400 with. */
#include <criterion/criterion.h>
#include <string.h>

#include "store/query.h"
#include "store/store.h"

static char err[256];

Test(query, terms_fields_and_negation)
{
    store_search s;
    cr_assert_eq(store_search_parse("  Disk -\"Connection Refused\" is:open,resolved -severity:warning,error "
                                    "job:a,b class:\"Null Pointer\" key:ABC namespace:prod -version:1.14.2 "
                                    "http://x", &s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(s.n, 10);
    cr_assert(s.v[0].kind == STORE_TERM_TEXT && !s.v[0].neg);
    cr_assert_str_eq(s.v[0].value, "disk");
    cr_assert(s.v[1].kind == STORE_TERM_TEXT && s.v[1].neg);
    cr_assert_str_eq(s.v[1].value, "connection refused");
    cr_assert_eq(s.v[2].kind, STORE_TERM_IS);
    cr_assert_eq(s.v[2].mask, (1u << STORE_OPEN) | (1u << STORE_REGRESSED) | (1u << STORE_RESOLVED));
    cr_assert(s.v[3].kind == STORE_TERM_SEVERITY && s.v[3].neg);
    cr_assert_eq(s.v[3].mask, (1u << PAYLOAD_WARNING) | (1u << PAYLOAD_ERROR));
    cr_assert_eq(s.v[4].kind, STORE_TERM_JOB);
    cr_assert_eq(s.v[4].n_values, 2);
    cr_assert_str_eq(s.v[4].values[1], "b");
    cr_assert_eq(s.v[5].kind, STORE_TERM_CLASS);
    cr_assert_str_eq(s.v[5].value, "null pointer");
    cr_assert_eq(s.v[6].kind, STORE_TERM_KEY);
    cr_assert_str_eq(s.v[6].value, "abc");
    cr_assert_eq(s.v[7].kind, STORE_TERM_LABEL);
    cr_assert_str_eq(s.v[7].name, "namespace");
    cr_assert_str_eq(s.v[7].value, "prod");
    cr_assert(s.v[8].kind == STORE_TERM_LABEL && s.v[8].neg);
    cr_assert_str_eq(s.v[8].value, "1.14.2"); /* label values keep their case and dots */
    cr_assert_eq(s.v[9].kind, STORE_TERM_LABEL); /* http://x is a label term: quote it for text */
    cr_assert_str_eq(s.v[9].value, "//x");
    store_search_free(&s);
    /* a lone "-" is a word; "" is no term; a colon after a non-label-name is text */
    cr_assert_eq(store_search_parse("- \"\" a.b:c \"x\\\"y\"", &s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(s.n, 3);
    cr_assert_str_eq(s.v[0].value, "-");
    cr_assert(s.v[1].kind == STORE_TERM_TEXT);
    cr_assert_str_eq(s.v[1].value, "a.b:c");
    cr_assert_str_eq(s.v[2].value, "x\"y");
    store_search_free(&s);
    cr_assert_eq(store_search_parse(NULL, &s, err, sizeof err), 0);
    cr_assert_eq(s.n, 0);
    store_search_free(&s);
}

Test(query, errors_name_the_problem)
{
    static const char *const cases[][2] = {
        {"is:closed", "unknown is: value \"closed\" (expected open, resolved or regressed)"},
        {"severity:fatal", "unknown severity: value \"fatal\" (expected info, warning or error)"},
        {"severity:,", "empty value for severity: (write severity:VALUE)"},
        {"namespace:", "empty value for namespace: (write namespace:VALUE)"},
        {"job:\"\"", "empty value for job: (write job:VALUE)"},
        {"ok \"disk full", "unclosed quote in search query (the quote at position 4)"},
        {"class:\"a b", "unclosed quote in search query (the quote at position 7)"},
        {"\"a\"b", "unexpected character after the quote closed at position 3 (expected a space)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        store_search s;
        err[0] = 0;
        cr_assert_eq(store_search_parse(cases[i][0], &s, err, sizeof err), -1, "q=%s", cases[i][0]);
        cr_assert_str_eq(err, cases[i][1], "q=%s", cases[i][0]);
        cr_assert_eq(s.n, 0);
        store_search_free(&s);
    }
}

Test(query, bounds)
{
    char q[STORE_SEARCH_MAX_LEN + 2];
    store_search s;
    memset(q, 'a', sizeof q - 1);
    q[sizeof q - 1] = 0;
    cr_assert_eq(store_search_parse(q, &s, err, sizeof err), -1);
    cr_assert_str_eq(err, "search query too long (2049 bytes, at most 2048)");
    q[STORE_SEARCH_MAX_TERM_LEN] = 0;
    cr_assert_eq(store_search_parse(q, &s, err, sizeof err), 0, "%s", err); /* 256 bytes: fits */
    store_search_free(&s);
    q[STORE_SEARCH_MAX_TERM_LEN] = 'a';
    q[STORE_SEARCH_MAX_TERM_LEN + 1] = 0;
    cr_assert_eq(store_search_parse(q, &s, err, sizeof err), -1);
    cr_assert_str_eq(err, "search term too long (at most 256 bytes)");
    strcpy(q, "");
    for (int i = 0; i < 32; i++)
        strcat(q, "ab ");
    cr_assert_eq(store_search_parse(q, &s, err, sizeof err), 0, "%s", err);
    cr_assert_eq(s.n, 32);
    store_search_free(&s);
    strcat(q, "-x:y");
    cr_assert_eq(store_search_parse(q, &s, err, sizeof err), -1);
    cr_assert_str_eq(err, "too many search terms (about 33, at most 32)");
    strcpy(q, "job:");
    for (int i = 0; i < 17; i++)
        strcat(q, "j,");
    cr_assert_eq(store_search_parse(q, &s, err, sizeof err), -1);
    cr_assert_str_eq(err, "too many values for job: (at most 16)");
    /* found by fuzz_query: an over-long is: list leaked its values (ASan run of this test) */
    strcpy(q, "is:");
    for (int i = 0; i < 17; i++)
        strcat(q, "open,");
    cr_assert_eq(store_search_parse(q, &s, err, sizeof err), -1);
    cr_assert_str_eq(err, "too many values for is: (at most 16)");
}

Test(query, contains_folds_ascii_only)
{
    cr_assert(store_search_contains("NullPointerException", "pointer"));
    cr_assert(!store_search_contains("NullPointer", "pointers"));
    cr_assert(store_search_contains("x", ""));
    cr_assert(!store_search_contains("ÉCOLE", "école")); /* ASCII folding, as every backend */
}
