/* re2_syntax: Go's regexp/syntax grammar (Perl flags, as regexp.Compile uses it; Go 1.19, the
 * toolchain of Prometheus 2.42) translated into an equivalent PCRE2 pattern. See relabel_regex.c for why we
 * translate instead of handing the text to PCRE2. Pure functions. */
#include "labels/re2_syntax.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/strbuf.h"

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
size_t re2_utf8_decode(const char *s, const char *end, uint32_t *cp)
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
    size_t n = re2_utf8_decode(ps->p, ps->end, cp);
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
        size_t n = re2_utf8_decode(t, ps->end, &c);
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
                    size_t n = re2_utf8_decode(ps->p, lend, &c);
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


int re2_translate(const char *whole, size_t len, re2_translation *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    re_parser ps = {.whole = whole, .p = whole, .end = whole + len, .err = err, .errlen = errlen};
    strbuf_init(&ps.out);
    int rc = re_translate(&ps);
    free(ps.stack);
    if (rc == 0) {
        out->pattern = ps.out.buf; /* taken */
        out->pattern_len = ps.out.len;
        out->ncap = ps.ncap;
        if (!ps.names) { /* always hand back names[0..ncap] */
            ps.names = calloc(1, sizeof(char *));
            if (!ps.names)
                abort();
        }
        out->names = ps.names;
        return 0;
    }
    strbuf_free(&ps.out);
    if (ps.names) {
        for (size_t i = 0; i <= ps.ncap && i < ps.names_cap; i++)
            free(ps.names[i]);
        free(ps.names);
    }
    return -1;
}

void re2_translation_free(re2_translation *t)
{
    free(t->pattern);
    if (t->names) {
        for (uint32_t i = 0; i <= t->ncap; i++)
            free(t->names[i]);
        free(t->names);
    }
    memset(t, 0, sizeof *t);
}
