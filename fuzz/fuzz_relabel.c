/* fuzz_relabel: relabel_regex_compile of arbitrary regex source (Go RE2 syntax, translated to PCRE2 by
 * labels/re2_syntax.c), then match, expand and replace-all against an arbitrary subject and template.
 * Input: REGEX \0 SUBJECT \0 TEMPLATE (missing parts are empty). Checks two of Go's invariants: a full match
 * implies a leftmost match, and ReplaceAllString(s, "$0") == s. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "labels/relabel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *buf = malloc(size + 3);
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = buf[size + 2] = '\0';
    const char *re_src = buf;
    const char *subject = re_src + strlen(re_src) + 1;
    if (subject > buf + size)
        subject = buf + size + 1;
    const char *tmpl = subject + strlen(subject) + 1;
    if (tmpl > buf + size + 1)
        tmpl = buf + size + 2;

    char err[512];
    relabel_regex *re = relabel_regex_compile(re_src, err, sizeof err);
    if (re) {
        if (strcmp(relabel_regex_source(re), re_src) != 0)
            abort();
        bool full = relabel_regex_match(re, subject);
        /* Go's ReplaceAllString copies the bytes between matches and $0 is the matched bytes themselves, so
         * "$0" gives the subject back unchanged (even when it is not valid UTF-8). */
        char *same = relabel_regex_replace_all(re, subject, "$0");
        if (strcmp(same, subject) != 0)
            abort();
        free(same);
        const char *tmpls[2] = {tmpl, "$1${1}$$"};
        char *outs[2] = {NULL, NULL};
        if (relabel_regex_expand(re, subject, tmpls, 2, outs)) {
            free(outs[0]);
            free(outs[1]);
        } else if (full) {
            abort(); /* the anchored regex matched the whole subject, so a leftmost match exists */
        }
        free(relabel_regex_replace_all(re, subject, tmpl));
        relabel_regex_free(re);
    }
    free(buf);
    return 0;
}
