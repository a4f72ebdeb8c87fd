/* relabel: relabel_configs with Prometheus 2.42 semantics (model/relabel/relabel.go): defaults, the
 * validation done when a config is loaded, and the eleven actions. Regex details live in
 * relabel_regex.c. Pure functions; a prepared rule is read-only while applied. */
#include "labels/relabel.h"

#include <locale.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "util/strbuf.h"
#include "util/xalloc.h"

static const char *const action_names[] = {
    [RELABEL_REPLACE] = "replace",     [RELABEL_KEEP] = "keep",           [RELABEL_DROP] = "drop",
    [RELABEL_KEEPEQUAL] = "keepequal", [RELABEL_DROPEQUAL] = "dropequal", [RELABEL_HASHMOD] = "hashmod",
    [RELABEL_LABELMAP] = "labelmap",   [RELABEL_LABELDROP] = "labeldrop", [RELABEL_LABELKEEP] = "labelkeep",
    [RELABEL_LOWERCASE] = "lowercase", [RELABEL_UPPERCASE] = "uppercase",
};
#define N_ACTIONS (sizeof action_names / sizeof *action_names)

#define DEFAULT_SEPARATOR ";"
#define DEFAULT_REGEX "(.*)"
#define DEFAULT_REPLACEMENT "$1"

const char *relabel_action_name(relabel_action a)
{
    return (unsigned)a < N_ACTIONS ? action_names[a] : "unknown";
}

int relabel_action_parse(const char *s, relabel_action *out)
{
    if (!s)
        return -1;
    for (size_t i = 0; i < N_ACTIONS; i++)
        if (strcasecmp(s, action_names[i]) == 0) {
            *out = (relabel_action)i;
            return 0;
        }
    return -1;
}

/* Prometheus' relabelTarget: ^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$ — a label name in which
 * $N / ${N} templates may appear. */
static bool is_word(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static bool relabel_target_valid(const char *s)
{
    if (!s || !*s)
        return false;
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' || *s == '$'))
        return false;
    for (const char *p = s; *p;) {
        if (is_word(*p)) {
            p++;
        } else if (*p == '$') {
            p++;
            bool brace = *p == '{';
            if (brace)
                p++;
            const char *w = p;
            while (is_word(*p))
                p++;
            if (p == w)
                return false;
            if (brace) {
                if (*p != '}')
                    return false;
                p++;
            }
        } else {
            return false;
        }
    }
    return true;
}

void relabel_go_quote(char *buf, size_t n, const char *s)
{
    strbuf sb;
    strbuf_init(&sb);
    strbuf_putc(&sb, '"');
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        if (c < 0x80) {
            switch (c) {
            case '"': strbuf_puts(&sb, "\\\""); break;
            case '\\': strbuf_puts(&sb, "\\\\"); break;
            case '\a': strbuf_puts(&sb, "\\a"); break;
            case '\b': strbuf_puts(&sb, "\\b"); break;
            case '\f': strbuf_puts(&sb, "\\f"); break;
            case '\n': strbuf_puts(&sb, "\\n"); break;
            case '\r': strbuf_puts(&sb, "\\r"); break;
            case '\t': strbuf_puts(&sb, "\\t"); break;
            case '\v': strbuf_puts(&sb, "\\v"); break;
            default:
                if (c < 0x20 || c == 0x7f)
                    strbuf_printf(&sb, "\\x%02x", c);
                else
                    strbuf_putc(&sb, (char)c);
            }
            p++;
            continue;
        }
        /* multi-byte: copy a valid sequence, \x-escape an invalid byte */
        size_t len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        bool ok = len > 0;
        for (size_t i = 1; ok && i < len; i++)
            if ((p[i] & 0xc0) != 0x80)
                ok = false;
        if (ok) {
            uint32_t cp = c & (0xff >> (len + 1));
            for (size_t i = 1; i < len; i++)
                cp = (cp << 6) | (p[i] & 0x3f);
            static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
            if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                ok = false;
            else if (cp < 0xa0) /* C1 controls are not printable */
                strbuf_printf(&sb, "\\u%04x", (unsigned)cp);
            else
                strbuf_append(&sb, (const char *)p, len);
        }
        if (!ok) {
            strbuf_printf(&sb, "\\x%02x", c);
            p++;
        } else {
            p += len;
        }
    }
    strbuf_putc(&sb, '"');
    snprintf(buf, n, "%s", sb.buf);
    strbuf_free(&sb);
}

int relabel_rule_prepare(relabel_rule *r, char *err, size_t errlen)
{
    /* What was set explicitly matters to the keepequal/dropequal/labeldrop/labelkeep checks: Prometheus
     * compares the regex by identity with its default, the rest by value. */
    bool regex_set = r->regex != NULL;
    char q[600];

    if (!r->separator)
        r->separator = xstrdup(DEFAULT_SEPARATOR);
    if (!r->regex)
        r->regex = xstrdup(DEFAULT_REGEX);
    if (!r->replacement)
        r->replacement = xstrdup(DEFAULT_REPLACEMENT);
    if (!r->re) {
        r->re = relabel_regex_compile(r->regex, err, errlen);
        if (!r->re)
            return -1;
    }
    relabel_action a = r->action;
    const char *name = relabel_action_name(a);
    const char *tl = r->target_label ? r->target_label : "";

    if (a == RELABEL_HASHMOD && r->modulus == 0) {
        snprintf(err, errlen, "relabel configuration for hashmod requires non-zero modulus");
        return -1;
    }
    bool needs_target = a == RELABEL_REPLACE || a == RELABEL_HASHMOD || a == RELABEL_LOWERCASE ||
                        a == RELABEL_UPPERCASE || a == RELABEL_KEEPEQUAL || a == RELABEL_DROPEQUAL;
    if (needs_target && !*tl) {
        snprintf(err, errlen, "relabel configuration for %s action requires 'target_label' value", name);
        return -1;
    }
    bool templated_target = a == RELABEL_REPLACE || a == RELABEL_LOWERCASE || a == RELABEL_UPPERCASE ||
                            a == RELABEL_KEEPEQUAL || a == RELABEL_DROPEQUAL;
    if (templated_target && !relabel_target_valid(tl)) {
        relabel_go_quote(q, sizeof q, tl);
        snprintf(err, errlen, "%s is invalid 'target_label' for %s action", q, name);
        return -1;
    }
    bool default_replacement = strcmp(r->replacement, DEFAULT_REPLACEMENT) == 0;
    if ((a == RELABEL_LOWERCASE || a == RELABEL_UPPERCASE || a == RELABEL_KEEPEQUAL || a == RELABEL_DROPEQUAL) &&
        !default_replacement) {
        snprintf(err, errlen, "'replacement' can not be set for %s action", name);
        return -1;
    }
    if (a == RELABEL_LABELMAP && !relabel_target_valid(r->replacement)) {
        relabel_go_quote(q, sizeof q, r->replacement);
        snprintf(err, errlen, "%s is invalid 'replacement' for %s action", q, name);
        return -1;
    }
    if (a == RELABEL_HASHMOD && !label_name_valid(tl)) {
        relabel_go_quote(q, sizeof q, tl);
        snprintf(err, errlen, "%s is invalid 'target_label' for %s action", q, name);
        return -1;
    }
    bool default_separator = strcmp(r->separator, DEFAULT_SEPARATOR) == 0;
    if ((a == RELABEL_KEEPEQUAL || a == RELABEL_DROPEQUAL) &&
        (regex_set || r->modulus != 0 || !default_separator || !default_replacement)) {
        snprintf(err, errlen, "%s action requires only 'source_labels' and `target_label`, and no other fields",
                 name);
        return -1;
    }
    if ((a == RELABEL_LABELDROP || a == RELABEL_LABELKEEP) &&
        (r->source_labels != NULL || r->n_source_labels != 0 || *tl || r->modulus != 0 || !default_separator ||
         !default_replacement)) {
        snprintf(err, errlen, "%s action requires only 'regex', and no other fields", name);
        return -1;
    }
    return 0;
}

void relabel_rule_free(relabel_rule *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_source_labels; i++)
        free(r->source_labels[i]);
    free(r->source_labels);
    free(r->separator);
    free(r->target_label);
    free(r->regex);
    relabel_regex_free(r->re);
    free(r->replacement);
    memset(r, 0, sizeof *r);
}

void relabel_rule_copy(relabel_rule *dst, const relabel_rule *src)
{
    memset(dst, 0, sizeof *dst);
    if (src->source_labels || src->n_source_labels) {
        dst->source_labels = calloc(src->n_source_labels ? src->n_source_labels : 1, sizeof(char *));
        if (!dst->source_labels)
            abort();
        for (size_t i = 0; i < src->n_source_labels; i++)
            dst->source_labels[i] = xstrdup(src->source_labels[i]);
    }
    dst->n_source_labels = src->n_source_labels;
    dst->separator = xstrdup(src->separator);
    dst->target_label = xstrdup(src->target_label);
    dst->regex = xstrdup(src->regex);
    dst->replacement = xstrdup(src->replacement);
    dst->modulus = src->modulus;
    dst->action = src->action;
    dst->line = src->line;
    dst->column = src->column;
    if (src->re) {
        char err[256];
        dst->re = relabel_regex_compile(relabel_regex_source(src->re), err, sizeof err);
    }
}

uint64_t relabel_hashmod(const char *value, uint64_t modulus)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(value, strlen(value), md, &mdlen, EVP_md5(), NULL) || mdlen != 16)
        abort(); /* md5 is always available in libcrypto's default provider */
    uint64_t s = 0;
    for (int i = 8; i < 16; i++) /* the high bytes shift out of Go's uint64 sum */
        s = (s << 8) | md[i];
    return modulus ? s % modulus : s;
}

/* strings.ToLower / strings.ToUpper: Unicode simple case mapping per code point; bytes that are not
 * UTF-8 become U+FFFD (Go's strings.Map). */
static locale_t utf8_locale(void)
{
    static locale_t loc = (locale_t)0;
    static bool tried = false;
    if (!tried) { /* a benign race: every thread computes the same value */
        locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
        loc = l;
        tried = true;
    }
    return loc;
}

static void put_utf8(strbuf *sb, uint32_t c)
{
    char b[4];
    size_t n;
    if (c < 0x80) {
        b[0] = (char)c, n = 1;
    } else if (c < 0x800) {
        b[0] = (char)(0xc0 | (c >> 6)), b[1] = (char)(0x80 | (c & 0x3f)), n = 2;
    } else if (c < 0x10000) {
        b[0] = (char)(0xe0 | (c >> 12)), b[1] = (char)(0x80 | ((c >> 6) & 0x3f)), b[2] = (char)(0x80 | (c & 0x3f));
        n = 3;
    } else {
        b[0] = (char)(0xf0 | (c >> 18)), b[1] = (char)(0x80 | ((c >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((c >> 6) & 0x3f)), b[3] = (char)(0x80 | (c & 0x3f));
        n = 4;
    }
    strbuf_append(sb, b, n);
}

static char *change_case(const char *s, bool upper)
{
    bool ascii = true;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p >= 0x80) {
            ascii = false;
            break;
        }
    if (ascii) {
        char *d = xstrdup(s);
        for (char *p = d; *p; p++) {
            if (upper && *p >= 'a' && *p <= 'z')
                *p = (char)(*p - 32);
            else if (!upper && *p >= 'A' && *p <= 'Z')
                *p = (char)(*p + 32);
        }
        return d;
    }
    locale_t loc = utf8_locale();
    strbuf sb;
    strbuf_init(&sb);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t c = *p;
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        bool ok = len > 0;
        if (len > 1) {
            c &= 0xffu >> (len + 1);
            for (size_t i = 1; ok && i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                    ok = false;
                else
                    c = (c << 6) | (p[i] & 0x3f);
            }
            static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
            if (ok && (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)))
                ok = false;
        }
        if (!ok) {
            put_utf8(&sb, 0xfffd);
            p++;
            continue;
        }
        p += len;
        if (loc)
            c = upper ? (uint32_t)towupper_l((wint_t)c, loc) : (uint32_t)towlower_l((wint_t)c, loc);
        else if (c < 0x80)
            c = upper ? (uint32_t)towupper((wint_t)c) : (uint32_t)towlower((wint_t)c);
        put_utf8(&sb, c);
    }
    return sb.buf /* taken: strbuf_detach would allocate anew */;
}

/* Where a rule reads and writes labels: a label set, or a view (v: its base read by name, its writes kept
 * aside). The labelmap/labeldrop/labelkeep rules read every name and run on a label set only. */
typedef struct acc {
    labelset *ls;
    relabel_view *v;
} acc;

static const char *acc_get(const acc *a, const char *name)
{
    if (a->ls)
        return labelset_get(a->ls, name);
    const char *s = labelset_get(&a->v->set, name);
    if (s)
        return s;
    if (labelset_get(&a->v->unset, name))
        return NULL;
    s = a->v->lookup(a->v->ctx, name);
    return s && *s ? s : NULL;
}

static void acc_del(acc *a, const char *name)
{
    if (a->ls) {
        labelset_del(a->ls, name);
        return;
    }
    labelset_del(&a->v->set, name);
    labelset_set(&a->v->unset, name, "1");
}

/* An empty value deletes, as labelset_set. */
static void acc_set(acc *a, const char *name, const char *value)
{
    if (a->ls) {
        labelset_set(a->ls, name, value);
    } else if (!value || !*value) {
        acc_del(a, name);
    } else {
        labelset_set(&a->v->set, name, value); /* read before unset; written after it */
    }
}

/* The source labels' values joined by the separator (a missing label is ""). Returns a pointer into the
 * label set when there is exactly one source label, else into *tmp (which the caller frees). */
static const char *source_value(const relabel_rule *r, const acc *ls, char **tmp)
{
    *tmp = NULL;
    if (r->n_source_labels == 1) {
        const char *v = acc_get(ls, r->source_labels[0]);
        return v ? v : "";
    }
    strbuf sb;
    strbuf_init(&sb);
    for (size_t i = 0; i < r->n_source_labels; i++) {
        if (i)
            strbuf_puts(&sb, r->separator ? r->separator : DEFAULT_SEPARATOR);
        const char *v = acc_get(ls, r->source_labels[i]);
        if (v)
            strbuf_puts(&sb, v);
    }
    *tmp = sb.buf /* taken: strbuf_detach would allocate anew */;
    return *tmp;
}

/* One rule; returns false when the target is dropped. */
static bool apply_one(const relabel_rule *r, acc *a)
{
    char *tmp;
    const char *val = source_value(r, a, &tmp);
    labelset *ls = a->ls; /* the rules that read every name: a label set only */
    const char *tl = r->target_label ? r->target_label : "";
    bool keep = true;

    switch (r->action) {
    case RELABEL_DROP:
        keep = !relabel_regex_match(r->re, val);
        break;
    case RELABEL_KEEP:
        keep = relabel_regex_match(r->re, val);
        break;
    case RELABEL_DROPEQUAL: {
        const char *t = acc_get(a, tl);
        keep = strcmp(t ? t : "", val) != 0;
        break;
    }
    case RELABEL_KEEPEQUAL: {
        const char *t = acc_get(a, tl);
        keep = strcmp(t ? t : "", val) == 0;
        break;
    }
    case RELABEL_REPLACE: {
        const char *tmpl[2] = {tl, r->replacement ? r->replacement : DEFAULT_REPLACEMENT};
        char *outs[2];
        if (!relabel_regex_expand(r->re, val, tmpl, 2, outs))
            break; /* no match: nothing happens */
        /* An invalid expanded name or an empty value deletes the label named by the *unexpanded*
         * target_label, as Prometheus does. */
        if (!label_name_valid(outs[0]) || !*outs[1])
            acc_del(a, tl);
        else
            acc_set(a, outs[0], outs[1]);
        free(outs[0]);
        free(outs[1]);
        break;
    }
    case RELABEL_LOWERCASE:
    case RELABEL_UPPERCASE: {
        char *v = change_case(val, r->action == RELABEL_UPPERCASE);
        acc_set(a, tl, v);
        free(v);
        break;
    }
    case RELABEL_HASHMOD: {
        char num[24];
        snprintf(num, sizeof num, "%llu", (unsigned long long)relabel_hashmod(val, r->modulus));
        acc_set(a, tl, num);
        break;
    }
    case RELABEL_LABELMAP: {
        /* Every new name is computed from the labels as they were before this rule (Prometheus reads the
         * old set and writes a builder), so a created label is never mapped again. */
        size_t n = 0;
        char **pairs = NULL;
        for (size_t i = 0; i < ls->n; i++) {
            if (!relabel_regex_match(r->re, ls->v[i].name))
                continue;
            if (!pairs) {
                pairs = malloc(2 * ls->n * sizeof(char *));
                if (!pairs)
                    abort();
            }
            pairs[2 * n] = relabel_regex_replace_all(r->re, ls->v[i].name,
                                                     r->replacement ? r->replacement : DEFAULT_REPLACEMENT);
            pairs[2 * n + 1] = xstrdup(ls->v[i].value);
            n++;
        }
        for (size_t i = 0; i < n; i++) {
            labelset_set(ls, pairs[2 * i], pairs[2 * i + 1]);
            free(pairs[2 * i]);
            free(pairs[2 * i + 1]);
        }
        free(pairs);
        break;
    }
    case RELABEL_LABELDROP:
    case RELABEL_LABELKEEP: {
        bool drop_matching = r->action == RELABEL_LABELDROP;
        size_t w = 0;
        for (size_t i = 0; i < ls->n; i++) {
            bool m = relabel_regex_match(r->re, ls->v[i].name);
            if (m == drop_matching) {
                free(ls->v[i].name);
                free(ls->v[i].value);
            } else {
                ls->v[w++] = ls->v[i];
            }
        }
        ls->n = w;
        break;
    }
    }
    free(tmp);
    return keep;
}

static relabel_result apply_steps(const relabel_rule *rules, size_t start, size_t n, labelset *ls,
                                  relabel_step_fn fn, void *ctx)
{
    relabel_result res = {true, -1};
    acc a = {ls, NULL};
    for (size_t i = start; i < n; i++) {
        bool keep = apply_one(&rules[i], &a);
        if (!keep) {
            /* Prometheus returns empty labels for a dropped target */
            labelset_clear(ls);
            res.keep = false;
            res.dropped_by = (int)i;
        }
        if (fn)
            fn(ctx, i, ls, keep);
        if (!keep)
            break;
    }
    return res;
}

relabel_result relabel_apply_steps(const relabel_rule *rules, size_t n, labelset *ls, relabel_step_fn fn,
                                   void *ctx)
{
    return apply_steps(rules, 0, n, ls, fn, ctx);
}

relabel_result relabel_apply(const relabel_rule *rules, size_t n, labelset *ls)
{
    return apply_steps(rules, 0, n, ls, NULL, NULL);
}

relabel_result relabel_apply_from(const relabel_rule *rules, size_t start, size_t n, labelset *ls)
{
    return apply_steps(rules, start, n, ls, NULL, NULL);
}

/* ---- a view: rules run on a base read by name ---- */

void relabel_view_init(relabel_view *v, relabel_lookup_fn lookup, void *ctx)
{
    v->lookup = lookup;
    v->ctx = ctx;
    labelset_init(&v->set);
    labelset_init(&v->unset);
    v->done = 0;
}

void relabel_view_free(relabel_view *v)
{
    labelset_free(&v->set);
    labelset_free(&v->unset);
}

static bool reads_every_name(relabel_action a)
{
    return a == RELABEL_LABELMAP || a == RELABEL_LABELDROP || a == RELABEL_LABELKEEP;
}

relabel_result relabel_view_apply(const relabel_rule *rules, size_t n, relabel_view *v)
{
    relabel_result res = {true, -1};
    acc a = {NULL, v};
    for (; v->done < n && !reads_every_name(rules[v->done].action); v->done++) {
        if (!apply_one(&rules[v->done], &a)) {
            labelset_clear(&v->set);
            labelset_clear(&v->unset);
            res.keep = false;
            res.dropped_by = (int)v->done;
            v->done++;
            break;
        }
    }
    return res;
}

void relabel_view_write(const relabel_view *v, labelset *ls)
{
    for (size_t i = 0; i < v->unset.n; i++)
        labelset_del(ls, v->unset.v[i].name);
    for (size_t i = 0; i < v->set.n; i++)
        labelset_set(ls, v->set.v[i].name, v->set.v[i].value);
}
