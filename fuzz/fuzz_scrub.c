/* fuzz_scrub: the secret scrubber on arbitrary text (URLs, bodies and headers come from any client that
 * reports an exception). The input, cut at its first NUL, goes through scrub_url, scrub_body and (split at
 * the first ':') scrub_header; a result is scrubbed again, which must not grow it (masking is a fixed
 * replacement of what was already masked). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "periskop/scrub.h"

static void twice(const scrub_rules *r, char *(*fn)(const scrub_rules *, const char *), const char *s)
{
    char *a = fn(r, s);
    if (!a)
        return;
    char *b = fn(r, a);
    if (b && strlen(b) > strlen(a) + 64)
        abort();
    free(b);
    free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static scrub_rules *r;
    if (!r) {
        char *h[] = {"X-Extra"};
        char *f[] = {"ssn", "pin"};
        r = scrub_rules_new(true, h, 1, f, 2);
    }
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    twice(r, scrub_url, s);
    twice(r, scrub_body, s);
    char *colon = strchr(s, ':');
    if (colon) {
        *colon = 0;
        free(scrub_header(r, s, colon + 1));
        (void)scrub_field_name(r, s, strlen(s));
    }
    free(s);
    return 0;
}
