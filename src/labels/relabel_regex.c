/* relabel_regex: Go RE2 regexes on top of PCRE2.
 *
 * Prometheus compiles every relabel regex as "^(?:" + REGEX + ")$" with Go's regexp package. PCRE2 accepts
 * a superset of that syntax and gives some shared syntax another meaning, so we do not hand the text to
 * PCRE2 as is: we parse the whole anchored string with Go's grammar (regexp/syntax, Perl flags), reject
 * what Go rejects with Go's error texts, and emit an equivalent PCRE2 pattern in which every literal is
 * written unambiguously (\x{..}), \s means Go's [\t\n\f\r ], octal escapes never become backreferences,
 * and capture groups are all unnamed (we keep Go's names ourselves: Go allows names PCRE2 refuses, such
 * as "1x" or duplicates). The anchored text is parsed as a whole, like Go does, so a regex such as
 * "a)|(b" means what it means in Prometheus.
 *
 * Subjects that are not valid UTF-8 are matched as Go does (each bad byte reads as U+FFFD), so the pattern
 * is compiled with PCRE2_UTF only and every subject is validated (or repaired) before matching.
 *
 * Threads: a compiled regex is immutable; each thread matches with its own match data (thread-specific,
 * freed when the thread exits). */
#include "labels/relabel.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "labels/re2_syntax.h"
#include "util/strbuf.h"

struct relabel_regex {
    pcre2_code *code;
    uint32_t ncap;  /* capture groups (group 0 excluded) */
    char **names;   /* [ncap + 1]; names[i] is group i's Go name or NULL */
    char *source;   /* as given (without the anchors) */
};

static pthread_once_t match_ctx_once = PTHREAD_ONCE_INIT;
static pcre2_match_context *match_ctx;
static pcre2_compile_context *compile_ctx;
/* Per-thread match data, reused across calls (a malloc per match was a tenth of target building). */
static pthread_key_t md_key;

static void md_destroy(void *md)
{
    pcre2_match_data_free(md);
}

static void contexts_init(void)
{
    if (pthread_key_create(&md_key, md_destroy) != 0)
        abort();
    /* Go's engine is linear-time; PCRE2 backtracks. Bound the work so that a pathological regex costs a
     * non-match instead of a stalled discovery update. */
    match_ctx = pcre2_match_context_create(NULL);
    if (match_ctx)
        pcre2_set_match_limit(match_ctx, 10000000);
    compile_ctx = pcre2_compile_context_create(NULL);
    if (compile_ctx)
        pcre2_set_newline(compile_ctx, PCRE2_NEWLINE_LF);
}

relabel_regex *relabel_regex_compile(const char *src, char *err, size_t errlen)
{
    pthread_once(&match_ctx_once, contexts_init);
    if (!src)
        src = "";
    size_t n = strlen(src);
    char *whole = malloc(n + 7);
    if (!whole)
        abort();
    memcpy(whole, "^(?:", 4);
    memcpy(whole + 4, src, n);
    memcpy(whole + 4 + n, ")$", 3);

    re2_translation tr;
    relabel_regex *re = NULL;
    if (re2_translate(whole, n + 6, &tr, err, errlen) == 0) {
        int ec;
        PCRE2_SIZE off;
        pcre2_code *code = pcre2_compile((PCRE2_SPTR)tr.pattern, tr.pattern_len,
                                         PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C, &ec, &off,
                                         compile_ctx);
        if (!code) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof msg);
            if (err && errlen)
                snprintf(err, errlen, "error parsing regexp: %s: `%s`", (const char *)msg, whole);
        } else {
            pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* optional: falls back to the interpreter */
            re = calloc(1, sizeof *re);
            if (!re)
                abort();
            re->code = code;
            re->ncap = tr.ncap;
            re->names = tr.names;
            tr.names = NULL;
            re->source = strdup(src);
            if (!re->source)
                abort();
        }
        re2_translation_free(&tr);
    }
    free(whole);
    return re;
}

void relabel_regex_free(relabel_regex *re)
{
    if (!re)
        return;
    pcre2_code_free(re->code);
    if (re->names) {
        for (uint32_t i = 0; i <= re->ncap; i++)
            free(re->names[i]);
        free(re->names);
    }
    free(re->source);
    free(re);
}

const char *relabel_regex_source(const relabel_regex *re)
{
    return re ? re->source : NULL;
}

static bool exec_raw(const relabel_regex *re, const char *s, size_t len, size_t from, long *ov)
{
    pcre2_match_data *md = pthread_getspecific(md_key);
    if (!md || pcre2_get_ovector_count(md) < re->ncap + 1) {
        pcre2_match_data_free(md);
        md = pcre2_match_data_create(re->ncap + 1 < 16 ? 16 : re->ncap + 1, NULL);
        if (!md || pthread_setspecific(md_key, md) != 0)
            abort();
    }
    /* the subject is valid UTF-8 here (see re_exec), so PCRE2 need not check it again */
    int rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, from, PCRE2_NO_UTF_CHECK, md, match_ctx);
    bool ok = rc >= 0;
    if (ok && ov) {
        PCRE2_SIZE *pv = pcre2_get_ovector_pointer(md);
        for (uint32_t i = 0; i < 2 * (re->ncap + 1); i++) {
            bool set = (uint32_t)rc > i / 2 && pv[i] != PCRE2_UNSET;
            ov[i] = set ? (long)pv[i] : -1;
        }
    }
    return ok;
}

/* Length of the valid UTF-8 prefix of s. */
static size_t utf8_valid_prefix(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t c;
        size_t n = re2_utf8_decode(s + i, s + len, &c);
        if (n == 0)
            return i;
        i += n;
    }
    return len;
}

/* Leftmost match at or after `from` (Go's doExecute with a start position: ^ still means offset 0).
 * Returns true and fills ov[0..2*(ncap+1)) with byte offsets into s, -1 for unset groups.
 * Go reads each byte that is not UTF-8 as U+FFFD (which `.` and [^a] match); we do the same by matching
 * a copy in which those bytes are U+FFFD and mapping the offsets back. */
static bool re_exec(const relabel_regex *re, const char *s, size_t len, size_t from, long *ov)
{
    size_t valid = utf8_valid_prefix(s, len);
    if (valid == len)
        return exec_raw(re, s, len, from, ov);
    char *t = malloc(3 * len + 1);
    size_t *back = malloc((3 * len + 1) * sizeof(size_t));
    if (!t || !back)
        abort();
    size_t tl = 0, from_t = 0, i = 0;
    while (i < len) {
        if (i == from)
            from_t = tl;
        uint32_t c;
        size_t n = (unsigned char)s[i] < 0x80 ? 1 : re2_utf8_decode(s + i, s + len, &c);
        if (n == 0) {
            memcpy(t + tl, "\xef\xbf\xbd", 3);
            back[tl] = back[tl + 1] = back[tl + 2] = i;
            tl += 3;
            i++;
        } else {
            for (size_t k = 0; k < n; k++)
                back[tl + k] = i;
            memcpy(t + tl, s + i, n);
            tl += n;
            i += n;
        }
    }
    if (from >= len)
        from_t = tl;
    back[tl] = len;
    bool ok = exec_raw(re, t, tl, from_t, ov);
    if (ok && ov)
        for (uint32_t k = 0; k < 2 * (re->ncap + 1); k++)
            if (ov[k] >= 0)
                ov[k] = (long)back[ov[k]];
    free(t);
    free(back);
    return ok;
}

bool relabel_regex_match(const relabel_regex *re, const char *s)
{
    return re_exec(re, s, strlen(s), 0, NULL);
}

static bool is_alnum_ascii(uint32_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool expand_name_char(const char *t, const char *end, size_t *len)
{
    uint32_t c;
    size_t n = re2_utf8_decode(t, end, &c);
    if (n == 0)
        return false;
    if (c < 0x80) {
        if (!(is_alnum_ascii(c) || c == '_'))
            return false;
    }
    /* Go accepts any Unicode letter or digit; group names are ASCII, so a non-ASCII letter only
     * lengthens a name that then matches nothing, as in Go. */
    *len = n;
    return true;
}

/* Go Regexp.expand: appends tmpl expanded with the match ov on s. */
static void re_expand(const relabel_regex *re, strbuf *dst, const char *tmpl, const char *s, const long *ov)
{
    const char *t = tmpl, *end = tmpl + strlen(tmpl);
    while (t < end) {
        const char *dollar = memchr(t, '$', (size_t)(end - t));
        if (!dollar)
            break;
        strbuf_append(dst, t, (size_t)(dollar - t));
        t = dollar + 1;
        if (t < end && *t == '$') {
            strbuf_putc(dst, '$');
            t++;
            continue;
        }
        /* extract */
        const char *q = t;
        bool brace = false;
        if (q < end && *q == '{') {
            brace = true;
            q++;
        }
        const char *name = q;
        size_t cl;
        while (q < end && expand_name_char(q, end, &cl))
            q += cl;
        size_t nlen = (size_t)(q - name);
        if (nlen == 0 || (brace && (q >= end || *q != '}'))) {
            strbuf_putc(dst, '$'); /* malformed: the $ is literal text */
            continue;
        }
        if (brace)
            q++;
        long num = 0;
        for (size_t i = 0; i < nlen; i++) {
            if (name[i] < '0' || name[i] > '9' || num >= 100000000) {
                num = -1;
                break;
            }
            num = num * 10 + (name[i] - '0');
        }
        if (name[0] == '0' && nlen > 1)
            num = -1;
        t = q;
        if (num >= 0) {
            if ((uint64_t)num <= re->ncap && ov[2 * num] >= 0)
                strbuf_append(dst, s + ov[2 * num], (size_t)(ov[2 * num + 1] - ov[2 * num]));
        } else {
            for (uint32_t i = 1; i <= re->ncap; i++) {
                const char *gn = re->names[i];
                if (gn && strlen(gn) == nlen && memcmp(gn, name, nlen) == 0 && ov[2 * i] >= 0) {
                    strbuf_append(dst, s + ov[2 * i], (size_t)(ov[2 * i + 1] - ov[2 * i]));
                    break;
                }
            }
        }
    }
    strbuf_append(dst, t, (size_t)(end - t));
}

#define OV_STACK 32

bool relabel_regex_expand(const relabel_regex *re, const char *s, const char *const *tmpl, size_t n,
                          char **outs)
{
    long ovs[OV_STACK];
    size_t need = 2 * ((size_t)re->ncap + 1);
    long *ov = need <= OV_STACK ? ovs : malloc(need * sizeof(long));
    if (!ov)
        abort();
    bool ok = re_exec(re, s, strlen(s), 0, ov);
    if (ok) {
        for (size_t i = 0; i < n; i++) {
            strbuf sb;
            strbuf_init(&sb);
            re_expand(re, &sb, tmpl[i], s, ov);
            outs[i] = sb.buf /* taken: strbuf_detach would allocate anew */;
        }
    }
    if (ov != ovs)
        free(ov);
    return ok;
}

char *relabel_regex_replace_all(const relabel_regex *re, const char *s, const char *tmpl)
{
    long ovs[OV_STACK];
    size_t need = 2 * ((size_t)re->ncap + 1);
    long *ov = need <= OV_STACK ? ovs : malloc(need * sizeof(long));
    if (!ov)
        abort();
    size_t len = strlen(s), last_end = 0, pos = 0;
    strbuf sb;
    strbuf_init(&sb);
    /* Go's Regexp.replaceAll loop */
    while (pos <= len) {
        if (!re_exec(re, s, len, pos, ov))
            break;
        size_t a0 = (size_t)ov[0], a1 = (size_t)ov[1];
        strbuf_append(&sb, s + last_end, a0 - last_end);
        if (a1 > last_end || a0 == 0)
            re_expand(re, &sb, tmpl, s, ov);
        last_end = a1;
        size_t width = 0;
        if (pos < len) {
            uint32_t c;
            width = re2_utf8_decode(s + pos, s + len, &c);
            if (width == 0)
                width = 1;
        }
        if (pos + width > a1)
            pos += width;
        else if (pos + 1 > a1)
            pos++;
        else
            pos = a1;
    }
    strbuf_append(&sb, s + last_end, len - last_end);
    if (ov != ovs)
        free(ov);
    return sb.buf /* taken: strbuf_detach would allocate anew */;
}
