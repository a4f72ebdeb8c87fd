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
 * Threads: a compiled regex is immutable; matching allocates its match data per call. */
#include "labels/relabel.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/strbuf.h"

struct relabel_regex {
    pcre2_code *code;
    uint32_t ncap;  /* capture groups (group 0 excluded) */
    char **names;   /* [ncap + 1]; names[i] is group i's Go name or NULL */
    char *source;   /* as given (without the anchors) */
};

/* Go refuses repeat counts above this and nesting deeper than this. */
#define RE_MAX_REPEAT 1000
#define RE_MAX_DEPTH 1000

/* ---- Go grammar → PCRE2 pattern ---- */

typedef struct re_frame {
    long inner; /* largest product of {n,m} counts inside this group (Go's repeatIsValid) */
} re_frame;

typedef struct re_parser {
    const char *whole; /* the anchored text */
    const char *p;     /* cursor */
    const char *end;
    strbuf out;
    char *err;
    size_t errlen;
    re_frame *stack;
    size_t depth, cap;
    uint32_t ncap;
    char **names; /* grows with ncap; index = group number */
    size_t names_cap;
} re_parser;

static int re_fail(re_parser *ps, const char *code, const char *expr, size_t exprlen)
{
    if (ps->err && ps->errlen)
        snprintf(ps->err, ps->errlen, "error parsing regexp: %s: `%.*s`", code, (int)exprlen, expr);
    return -1;
}

/* Decodes one UTF-8 code point; returns its length, or 0 when the bytes are not valid UTF-8. */
static size_t utf8_decode(const char *s, const char *end, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t avail = (size_t)(end - s);
    if (avail == 0)
        return 0;
    if (u[0] < 0x80) {
        *cp = u[0];
        return 1;
    }
    size_t n;
    uint32_t c, min;
    if ((u[0] & 0xe0) == 0xc0) {
        n = 2, c = u[0] & 0x1f, min = 0x80;
    } else if ((u[0] & 0xf0) == 0xe0) {
        n = 3, c = u[0] & 0x0f, min = 0x800;
    } else if ((u[0] & 0xf8) == 0xf0) {
        n = 4, c = u[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (u[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

static int re_next_rune(re_parser *ps, uint32_t *cp)
{
    size_t n = utf8_decode(ps->p, ps->end, cp);
    if (n == 0)
        return re_fail(ps, "invalid UTF-8", ps->p, (size_t)(ps->end - ps->p));
    ps->p += n;
    return 0;
}

static bool is_alnum_ascii(uint32_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int unhex(uint32_t c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1;
}

/* Emits one literal code point so that PCRE2 reads it as exactly that character, in or out of a class. */
static void emit_literal(strbuf *sb, uint32_t c)
{
    if (is_alnum_ascii(c)) {
        strbuf_putc(sb, (char)c);
    } else {
        strbuf_printf(sb, "\\x{%x}", (unsigned)c);
    }
}

/* Go's parseEscape: the escape at ps->p (a backslash) that stands for one character. */
static int parse_escape(re_parser *ps, uint32_t *out)
{
    const char *start = ps->p;
    ps->p++; /* backslash */
    if (ps->p >= ps->end)
        return re_fail(ps, "trailing backslash at end of expression", "", 0);
    uint32_t c;
    if (re_next_rune(ps, &c) < 0)
        return -1;
    switch (c) {
    case '1': case '2': case '3': case '4': case '5': case '6': case '7':
        /* a single non-zero digit would be a backreference: not supported */
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '7')
            break;
        /* fallthrough */
    case '0': {
        uint32_t r = c - '0';
        for (int i = 1; i < 3; i++) {
            if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '7')
                break;
            r = r * 8 + (uint32_t)(*ps->p - '0');
            ps->p++;
        }
        *out = r;
        return 0;
    }
    case 'x': {
        if (ps->p >= ps->end)
            break;
        if (re_next_rune(ps, &c) < 0)
            return -1;
        if (c == '{') {
            int nhex = 0;
            uint32_t r = 0;
            for (;;) {
                if (ps->p >= ps->end)
                    goto invalid;
                if (re_next_rune(ps, &c) < 0)
                    return -1;
                if (c == '}')
                    break;
                int v = unhex(c);
                if (v < 0)
                    goto invalid;
                r = r * 16 + (uint32_t)v;
                if (r > 0x10ffff)
                    goto invalid;
                nhex++;
            }
            if (nhex == 0)
                goto invalid;
            *out = r;
            return 0;
        }
        int x = unhex(c);
        if (ps->p >= ps->end)
            return re_fail(ps, "invalid UTF-8", ps->p, 0); /* Go: nextRune on "" */
        if (re_next_rune(ps, &c) < 0)
            return -1;
        int y = unhex(c);
        if (x < 0 || y < 0)
            break;
        *out = (uint32_t)(x * 16 + y);
        return 0;
    }
    case 'a': *out = '\a'; return 0;
    case 'f': *out = '\f'; return 0;
    case 'n': *out = '\n'; return 0;
    case 'r': *out = '\r'; return 0;
    case 't': *out = '\t'; return 0;
    case 'v': *out = '\v'; return 0;
    default:
        if (c < 0x80 && !is_alnum_ascii(c)) {
            *out = c;
            return 0;
        }
        break;
    }
invalid:
    return re_fail(ps, "invalid escape sequence", start, (size_t)(ps->p - start));
}

static const char *const posix_names[] = {"alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph",
                                          "lower", "print", "punct", "space", "upper", "word", "xdigit"};

/* \p{..} / \pL at ps->p (backslash); emits it for PCRE2. */
static int parse_unicode_class(re_parser *ps)
{
    const char *start = ps->p;
    ps->p += 2; /* \p or \P */
    uint32_t c;
    if (ps->p >= ps->end)
        return re_fail(ps, "invalid character class range", start, (size_t)(ps->end - start));
    const char *name_start = ps->p;
    if (re_next_rune(ps, &c) < 0)
        return -1;
    const char *name_end;
    if (c != '{') {
        name_end = ps->p;
    } else {
        const char *close = memchr(ps->p, '}', (size_t)(ps->end - ps->p));
        if (!close)
            return re_fail(ps, "invalid character class range", start, (size_t)(ps->end - start));
        name_start = ps->p;
        name_end = close;
        ps->p = close + 1;
    }
    const char *n = name_start;
    bool neg = start[1] == 'P';
    if (n < name_end && *n == '^') {
        neg = !neg;
        n++;
    }
    /* PCRE2 knows the same categories and scripts; restrict names to letters and '_' so nothing
     * else can be smuggled into the pattern. */
    if (n == name_end)
        return re_fail(ps, "invalid character class range", start, (size_t)(ps->p - start));
    for (const char *q = n; q < name_end; q++)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || *q == '_' || *q == '&'))
            return re_fail(ps, "invalid character class range", start, (size_t)(ps->p - start));
    strbuf_printf(&ps->out, "\\%c{%.*s}", neg ? 'P' : 'p', (int)(name_end - n), n);
    return 0;
}

/* A character class; ps->p at '['. */
static int parse_class(re_parser *ps)
{
    const char *whole = ps->p;
    ps->p++;
    strbuf_putc(&ps->out, '[');
    if (ps->p < ps->end && *ps->p == '^') {
        strbuf_putc(&ps->out, '^');
        ps->p++;
    }
    bool first = true;
    for (;;) {
        if (ps->p >= ps->end)
            return re_fail(ps, "missing closing ]", whole, (size_t)(ps->end - whole));
        if (*ps->p == ']' && !first)
            break;
        first = false;
        /* POSIX [:name:] */
        if (ps->end - ps->p > 2 && ps->p[0] == '[' && ps->p[1] == ':') {
            const char *close = NULL;
            for (const char *q = ps->p + 2; q + 1 < ps->end; q++)
                if (q[0] == ':' && q[1] == ']') {
                    close = q;
                    break;
                }
            if (close) {
                const char *nm = ps->p + 2;
                bool neg = nm < close && *nm == '^';
                if (neg)
                    nm++;
                bool ok = false;
                for (size_t i = 0; i < sizeof posix_names / sizeof *posix_names; i++)
                    if (strlen(posix_names[i]) == (size_t)(close - nm) &&
                        memcmp(posix_names[i], nm, (size_t)(close - nm)) == 0)
                        ok = true;
                if (!ok)
                    return re_fail(ps, "invalid character class range", ps->p, (size_t)(close + 2 - ps->p));
                strbuf_append(&ps->out, ps->p, (size_t)(close + 2 - ps->p));
                ps->p = close + 2;
                continue;
            }
        }
        if (ps->p[0] == '\\' && ps->end - ps->p >= 2) {
            char e = ps->p[1];
            if (e == 'p' || e == 'P') {
                if (parse_unicode_class(ps) < 0)
                    return -1;
                continue;
            }
            if (e == 'd' || e == 'D' || e == 'w' || e == 'W') {
                strbuf_append(&ps->out, ps->p, 2);
                ps->p += 2;
                continue;
            }
            if (e == 's') { /* Go's \s has no \v */
                strbuf_puts(&ps->out, "\\x{9}\\x{a}\\x{c}\\x{d}\\x{20}");
                ps->p += 2;
                continue;
            }
            if (e == 'S') { /* PCRE2's \S lacks \v, which Go's \S has */
                strbuf_puts(&ps->out, "\\S\\x{b}");
                ps->p += 2;
                continue;
            }
        }
        const char *rng = ps->p;
        uint32_t lo, hi;
        if (*ps->p == '\\') {
            if (parse_escape(ps, &lo) < 0)
                return -1;
        } else if (re_next_rune(ps, &lo) < 0) {
            return -1;
        }
        hi = lo;
        if (ps->end - ps->p >= 2 && ps->p[0] == '-' && ps->p[1] != ']') {
            ps->p++;
            if (*ps->p == '\\') {
                if (parse_escape(ps, &hi) < 0)
                    return -1;
            } else if (re_next_rune(ps, &hi) < 0) {
                return -1;
            }
            if (hi < lo)
                return re_fail(ps, "invalid character class range", rng, (size_t)(ps->p - rng));
        }
        emit_literal(&ps->out, lo);
        if (hi != lo) {
            strbuf_putc(&ps->out, '-');
            emit_literal(&ps->out, hi);
        }
    }
    ps->p++; /* ] */
    strbuf_putc(&ps->out, ']');
    return 0;
}

/* Go's parseInt for repeat counts: no leading zeros; values >= 1e8 become -1. */
static bool parse_int(const char **pp, const char *end, long *n)
{
    const char *s = *pp;
    if (s >= end || *s < '0' || *s > '9')
        return false;
    if (end - s >= 2 && s[0] == '0' && s[1] >= '0' && s[1] <= '9')
        return false;
    long v = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        if (v >= 100000000)
            v = -1;
        else if (v >= 0)
            v = v * 10 + (*s - '0');
        s++;
    }
    *pp = s;
    *n = v;
    return true;
}

/* {min}, {min,} or {min,max} at s; false when it is not one (then '{' is a literal). */
static bool parse_repeat(const char *s, const char *end, long *min, long *max, const char **rest)
{
    if (s >= end || *s != '{')
        return false;
    s++;
    if (!parse_int(&s, end, min) || s >= end)
        return false;
    if (*s != ',') {
        *max = *min;
    } else {
        s++;
        if (s >= end)
            return false;
        if (*s == '}') {
            *max = -1;
        } else {
            if (!parse_int(&s, end, max))
                return false;
            if (*max < 0)
                *min = -1;
        }
    }
    if (s >= end || *s != '}')
        return false;
    *rest = s + 1;
    return true;
}

static int push_frame(re_parser *ps)
{
    if (ps->depth >= RE_MAX_DEPTH)
        return re_fail(ps, "expression nests too deeply", ps->whole, strlen(ps->whole));
    if (ps->depth == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 16;
        re_frame *ns = realloc(ps->stack, cap * sizeof *ns);
        if (!ns)
            abort();
        ps->stack = ns;
        ps->cap = cap;
    }
    ps->stack[ps->depth++] = (re_frame){1};
    return 0;
}

static void add_capture(re_parser *ps, const char *name, size_t len)
{
    ps->ncap++;
    if (ps->ncap + 1 > ps->names_cap) {
        size_t cap = ps->names_cap ? ps->names_cap * 2 : 8;
        while (cap < ps->ncap + 1)
            cap *= 2;
        char **nn = realloc(ps->names, cap * sizeof *nn);
        if (!nn)
            abort();
        for (size_t i = ps->names_cap; i < cap; i++)
            nn[i] = NULL;
        ps->names = nn;
        ps->names_cap = cap;
    }
    ps->names[ps->ncap] = name ? strndup(name, len) : NULL;
}

/* "(?" at ps->p: named capture, flags, or non-capturing group (Go's parsePerlFlags, Go 1.19: no
 * "(?<name>" form). */
static int parse_perl_flags(re_parser *ps)
{
    const char *s = ps->p;
    if (ps->end - s > 4 && s[2] == 'P' && s[3] == '<') {
        const char *gt = memchr(s, '>', (size_t)(ps->end - s));
        if (!gt)
            return re_fail(ps, "invalid named capture", s, (size_t)(ps->end - s));
        const char *name = s + 4;
        size_t len = (size_t)(gt - name);
        bool ok = len > 0;
        for (size_t i = 0; i < len; i++)
            if (!(is_alnum_ascii((unsigned char)name[i]) || name[i] == '_'))
                ok = false;
        if (!ok)
            return re_fail(ps, "invalid named capture", s, (size_t)(gt + 1 - s));
        if (push_frame(ps) < 0)
            return -1;
        add_capture(ps, name, len);
        strbuf_putc(&ps->out, '(');
        ps->p = gt + 1;
        return 1; /* opened a group */
    }
    const char *t = s + 2;
    int sign = 1;
    bool saw = false;
    strbuf flags;
    strbuf_init(&flags);
    while (t < ps->end) {
        uint32_t c;
        size_t n = utf8_decode(t, ps->end, &c);
        if (n == 0) {
            strbuf_free(&flags);
            return re_fail(ps, "invalid UTF-8", t, (size_t)(ps->end - t));
        }
        t += n;
        switch (c) {
        case 'i': case 'm': case 's': case 'U':
            strbuf_putc(&flags, (char)c);
            saw = true;
            continue;
        case '-':
            if (sign < 0)
                goto bad;
            sign = -1;
            saw = false;
            strbuf_putc(&flags, '-');
            continue;
        case ':':
        case ')':
            if (sign < 0 && !saw)
                goto bad;
            if (c == ':') {
                if (push_frame(ps) < 0) {
                    strbuf_free(&flags);
                    return -1;
                }
                strbuf_printf(&ps->out, "(?%s:", flags.buf);
                ps->p = t;
                strbuf_free(&flags);
                return 1;
            }
            if (flags.len)
                strbuf_printf(&ps->out, "(?%s)", flags.buf);
            strbuf_free(&flags);
            ps->p = t;
            return 0;
        default:
            goto bad;
        }
    }
bad:
    strbuf_free(&flags);
    return re_fail(ps, "invalid or unsupported Perl syntax", s, (size_t)(t - s));
}

/* Translates ps->whole; returns 0 or -1 (message in err). */
static int re_translate(re_parser *ps)
{
    const char *last_repeat = NULL; /* start of the previous token when it was a repetition operator */
    bool have_atom = false;         /* something a quantifier can apply to precedes */
    long atom_prod = 1;             /* repeat product inside that atom */
    if (push_frame(ps) < 0)         /* the whole expression */
        return -1;
    while (ps->p < ps->end) {
        const char *before = ps->p;
        const char *repeat = NULL;
        char ch = *ps->p;
        switch (ch) {
        case '(':
            if (ps->end - ps->p >= 2 && ps->p[1] == '?') {
                int r = parse_perl_flags(ps);
                if (r < 0)
                    return -1;
                have_atom = false; /* a flag group leaves nothing to repeat in our translation */
                break;
            }
            if (push_frame(ps) < 0)
                return -1;
            add_capture(ps, NULL, 0);
            strbuf_putc(&ps->out, '(');
            ps->p++;
            have_atom = false;
            break;
        case '|':
            strbuf_putc(&ps->out, '|');
            ps->p++;
            have_atom = false;
            break;
        case ')':
            if (ps->depth <= 1)
                return re_fail(ps, "unexpected )", ps->whole, strlen(ps->whole));
            atom_prod = ps->stack[--ps->depth].inner;
            strbuf_putc(&ps->out, ')');
            ps->p++;
            have_atom = true;
            break;
        case '^':
            strbuf_puts(&ps->out, "(?:^)");
            ps->p++;
            have_atom = true, atom_prod = 1;
            break;
        case '$':
            strbuf_puts(&ps->out, "(?:$)");
            ps->p++;
            have_atom = true, atom_prod = 1;
            break;
        case '.':
            strbuf_putc(&ps->out, '.');
            ps->p++;
            have_atom = true, atom_prod = 1;
            break;
        case '[':
            if (parse_class(ps) < 0)
                return -1;
            have_atom = true, atom_prod = 1;
            break;
        case '*':
        case '+':
        case '?':
        case '{': {
            long min = 0, max = 0;
            const char *after = ps->p + 1;
            if (ch == '{') {
                if (!parse_repeat(ps->p, ps->end, &min, &max, &after)) {
                    emit_literal(&ps->out, '{'); /* not a repeat: a literal brace */
                    ps->p++;
                    have_atom = true, atom_prod = 1;
                    break;
                }
                if (min < 0 || min > RE_MAX_REPEAT || max > RE_MAX_REPEAT || (max >= 0 && min > max))
                    return re_fail(ps, "invalid repeat count", before, (size_t)(after - before));
            }
            bool lazy = after < ps->end && *after == '?';
            if (lazy)
                after++;
            if (last_repeat)
                return re_fail(ps, "invalid nested repetition operator", last_repeat, (size_t)(after - last_repeat));
            if (!have_atom)
                return re_fail(ps, "missing argument to repetition operator", before, (size_t)(after - before));
            if (ch == '{') {
                long m = max < 0 ? min : max;
                long prod = atom_prod * (m > 0 ? m : 1);
                if ((min >= 2 || max >= 2) && prod > RE_MAX_REPEAT)
                    return re_fail(ps, "invalid repeat count", before, (size_t)(after - before));
                if (prod > ps->stack[ps->depth - 1].inner)
                    ps->stack[ps->depth - 1].inner = prod;
                if (max < 0)
                    strbuf_printf(&ps->out, "{%ld,}", min);
                else
                    strbuf_printf(&ps->out, "{%ld,%ld}", min, max);
            } else {
                strbuf_putc(&ps->out, ch);
            }
            if (lazy)
                strbuf_putc(&ps->out, '?');
            ps->p = after;
            repeat = before;
            break;
        }
        case '\\': {
            char e = ps->end - ps->p >= 2 ? ps->p[1] : 0;
            switch (e) {
            case 'A': strbuf_puts(&ps->out, "(?:\\A)"); ps->p += 2; have_atom = true, atom_prod = 1; goto next;
            case 'b': strbuf_puts(&ps->out, "(?:\\b)"); ps->p += 2; have_atom = true, atom_prod = 1; goto next;
            case 'B': strbuf_puts(&ps->out, "(?:\\B)"); ps->p += 2; have_atom = true, atom_prod = 1; goto next;
            case 'z': strbuf_puts(&ps->out, "(?:\\z)"); ps->p += 2; have_atom = true, atom_prod = 1; goto next;
            case 'C': return re_fail(ps, "invalid escape sequence", ps->p, 2);
            case 'Q': {
                const char *lit = ps->p + 2, *lend = ps->end, *resume = ps->end;
                for (const char *q = lit; q + 1 < ps->end; q++)
                    if (q[0] == '\\' && q[1] == 'E') {
                        lend = q;
                        resume = q + 2;
                        break;
                    }
                ps->p = lit;
                while (ps->p < lend) {
                    uint32_t c;
                    size_t n = utf8_decode(ps->p, lend, &c);
                    if (n == 0)
                        return re_fail(ps, "invalid UTF-8", ps->p, (size_t)(ps->end - ps->p));
                    emit_literal(&ps->out, c);
                    ps->p += n;
                    have_atom = true, atom_prod = 1;
                }
                ps->p = resume;
                goto next;
            }
            case 'p':
            case 'P':
                if (parse_unicode_class(ps) < 0)
                    return -1;
                have_atom = true, atom_prod = 1;
                goto next;
            case 'd': case 'D': case 'w': case 'W':
                strbuf_append(&ps->out, ps->p, 2);
                ps->p += 2;
                have_atom = true, atom_prod = 1;
                goto next;
            case 's':
                strbuf_puts(&ps->out, "[\\x{9}\\x{a}\\x{c}\\x{d}\\x{20}]");
                ps->p += 2;
                have_atom = true, atom_prod = 1;
                goto next;
            case 'S':
                strbuf_puts(&ps->out, "[^\\x{9}\\x{a}\\x{c}\\x{d}\\x{20}]");
                ps->p += 2;
                have_atom = true, atom_prod = 1;
                goto next;
            default: {
                uint32_t c;
                if (parse_escape(ps, &c) < 0)
                    return -1;
                emit_literal(&ps->out, c);
                have_atom = true, atom_prod = 1;
                goto next;
            }
            }
        }
        default: {
            uint32_t c;
            if (re_next_rune(ps, &c) < 0)
                return -1;
            emit_literal(&ps->out, c);
            have_atom = true, atom_prod = 1;
            break;
        }
        }
    next:
        last_repeat = repeat;
    }
    if (ps->depth != 1)
        return re_fail(ps, "missing closing )", ps->whole, strlen(ps->whole));
    return 0;
}

static pthread_once_t match_ctx_once = PTHREAD_ONCE_INIT;
static pcre2_match_context *match_ctx;
static pcre2_compile_context *compile_ctx;

static void contexts_init(void)
{
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

    re_parser ps = {.whole = whole, .p = whole, .end = whole + n + 6, .err = err, .errlen = errlen};
    strbuf_init(&ps.out);
    relabel_regex *re = NULL;
    if (re_translate(&ps) == 0) {
        int ec;
        PCRE2_SIZE off;
        pcre2_code *code = pcre2_compile((PCRE2_SPTR)ps.out.buf, ps.out.len,
                                         PCRE2_UTF | PCRE2_DOLLAR_ENDONLY |
                                             PCRE2_NEVER_BACKSLASH_C,
                                         &ec, &off, compile_ctx);
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
            re->ncap = ps.ncap;
            re->names = ps.names;
            ps.names = NULL;
            re->source = strdup(src);
            if (!re->source)
                abort();
        }
    }
    if (ps.names) {
        for (size_t i = 0; i <= ps.ncap && i < ps.names_cap; i++)
            free(ps.names[i]);
        free(ps.names);
    }
    free(ps.stack);
    strbuf_free(&ps.out);
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
    pcre2_match_data *md = pcre2_match_data_create(re->ncap + 1, NULL);
    if (!md)
        abort();
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
    pcre2_match_data_free(md);
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
        size_t n = utf8_decode(s + i, s + len, &c);
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
        size_t n = (unsigned char)s[i] < 0x80 ? 1 : utf8_decode(s + i, s + len, &c);
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

static bool expand_name_char(const char *t, const char *end, size_t *len)
{
    uint32_t c;
    size_t n = utf8_decode(t, end, &c);
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
            outs[i] = strbuf_detach(&sb, NULL);
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
            width = utf8_decode(s + pos, s + len, &c);
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
    return strbuf_detach(&sb, NULL);
}
