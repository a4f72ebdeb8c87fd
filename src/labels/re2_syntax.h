/* re2_syntax: internal to the relabel module. Parses a regex with Go's grammar, rejects what Go rejects
 * (with Go's error texts: "error parsing regexp: CODE: `EXPR`") and returns an equivalent PCRE2 pattern
 * whose capture groups are all unnamed, plus Go's group names. */
#ifndef LOOKOUT_LABELS_RE2_SYNTAX_H
#define LOOKOUT_LABELS_RE2_SYNTAX_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct re2_translation {
    char *pattern;       /* PCRE2 pattern, for PCRE2_UTF | PCRE2_DOLLAR_ENDONLY with LF newlines */
    size_t pattern_len;
    uint32_t ncap;       /* capture groups, group 0 excluded */
    char **names;        /* [ncap + 1]: Go name of group i, or NULL */
} re2_translation;

/* Translates whole[0..len) (the complete, already anchored expression). 0, or -1 with err filled. */
int re2_translate(const char *whole, size_t len, re2_translation *out, char *err, size_t errlen);
void re2_translation_free(re2_translation *t);

/* One UTF-8 code point at s (s < end): its length, or 0 when the bytes are not valid UTF-8. */
size_t re2_utf8_decode(const char *s, const char *end, uint32_t *cp);

#endif
