/* json_groups: the file_sd / http_sd JSON list of target groups, parsed as a stream (yajl) straight into
 * target groups. No document tree is built: memory is the groups kept plus the group being read, so a
 * response of `[{},{},...]`, of empty target lists or of deep arrays costs a few bytes per nesting level
 * instead of a DOM's ~77 times its text.
 *
 * Validation and texts are those of the former jansson code (Prometheus' targetgroup.Group UnmarshalJSON
 * with DisallowUnknownFields, keys matched case-insensitively):
 *   - a syntax error anywhere wins over any other error (as when the whole tree was loaded first): after
 *     the first semantic error the rest is only scanned;
 *   - within one group: an unknown field, then targets' type, then labels' type, then the first bad label,
 *     then the first bad target; the first group with an error decides.
 * Differences with the tree: when a key repeats inside one object the last occurrence in document order
 * wins (jansson kept the first one's position and the last one's value; only matters for mixed-case
 * duplicates such as "targets" and "Targets"); a lone UTF-16 surrogate escape is accepted (yajl).
 *
 * Only groups with at least one target are returned: an empty group contributes nothing, and the caller
 * learns from idx[] which positions had targets (to empty those that had them before). Each group is frozen
 * as soon as it ends (sd_gb_freeze, with the provider's label): the discovery manager stores it by
 * reference, so the targets kept exist once, compactly, and the parse state is one group's.
 *
 * A group's labels object is written as it streams into one buffer (the arena: name NUL value NUL per pair,
 * in document order) plus 16 bytes per pair (their offsets, then, in place, their pointers), sorted once when
 * the group ends (the later pair of a name wins, an empty value deletes: labelset_set_many's rules). A group
 * whose labels take more than JG_ADOPT_MIN bytes gives its arena to its frozen group (sd_gb_freeze_arena),
 * which points into it: a map of a million short labels costs its text once plus two arrays of pointers
 * (the pairs and the frozen group's), not two allocations per label plus copies (8-9 x the body before). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yajl/yajl_parse.h>

#include "sd/sd_internal.h"
#include "util/json_budget.h"
#include "util/json_error.h"
#include "util/xalloc.h"

#define JG_MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH, kept for the same documents */
#define JG_ADOPT_MIN (64u << 10) /* labels text from which a group takes its arena instead of a copy */
size_t sd_json_adopt_min = JG_ADOPT_MIN;

/* A labels pair while its group is read: offsets into the arena; when the group ends, in place, a label. */
typedef union jpair {
    struct {
        size_t name, value;
    } off;
    label l;
} jpair;
_Static_assert(sizeof(jpair) == sizeof(label), "pairs become labels in place");

enum { PRIO_NONE = 0, PRIO_UNKNOWN }; /* gprio: an unknown field was seen (reported first) */
enum { F_NONE, F_TARGETS, F_LABELS, F_OTHER };

typedef struct jg {
    const char *prefix;
    const char *set_name, *set_value, *del_name; /* the provider's label, one it removes */
    char err[512];    /* the first semantic error of the document */
    char fatal[160];  /* a syntax-level error raised by a callback */
    int depth;        /* current nesting: root value 1, groups 2, their fields' values 3, ... */
    yajl_handle h;
    size_t root_end;  /* offset just after the root value */
    bool completing;  /* in yajl_complete_parse: a root number ending the input is reported only then */
    /* the group being read */
    size_t index;     /* position in the list */
    int field;        /* field whose value is being read (depth 3) */
    char gerr[512];
    int gprio;
    char *arena;      /* the labels object's names and values as they arrive (see the header) */
    size_t alen, acap;
    jpair *pend;      /* its pairs, sorted once when the group ends: one at a time, a big map in descending
                         order moved the whole set per key */
    size_t npend, pcap;
    size_t key_off;   /* the arena offset of the last key inside labels, while its value is awaited */
    bool key_pending;
    sd_group_builder tb; /* its targets, packed until the group ends; tb.pool: the provider's strings */
    /* errors of this group, reported in the old code's order (group_end) */
    char targets_err[256], labels_err[256], label_err[512], target_err[256];
    size_t kept, budget; /* bytes the groups kept so far take (an estimate), and at most */
    size_t len;
    /* result */
    target_group *out;
    size_t *idx;
    size_t n, cap;
} jg;

static void clear_targets(jg *c)
{
    sd_gb_clear(&c->tb);
}

static void pend_clear(jg *c)
{
    c->npend = 0;
    c->alen = 0;
    c->key_pending = false;
    if (c->acap > JG_ADOPT_MIN) { /* a big group's buffers are not kept for the next, small one */
        free(c->arena);
        c->arena = NULL;
        c->acap = 0;
    }
    if (c->pcap > JG_ADOPT_MIN / sizeof(jpair)) {
        free(c->pend);
        c->pend = NULL;
        c->pcap = 0;
    }
}

/* Appends s (len bytes) and a NUL to the arena; returns its offset. */
static size_t arena_put(jg *c, const void *s, size_t len)
{
    if (c->acap - c->alen < len + 1) {
        size_t cap = c->acap ? c->acap : 256;
        while (cap - c->alen < len + 1)
            cap *= 2;
        c->arena = xrealloc(c->arena, cap);
        c->acap = cap;
    }
    size_t at = c->alen;
    memcpy(c->arena + at, s, len);
    c->arena[at + len] = 0;
    c->alen += len + 1;
    return at;
}

static int by_name_then_place(const void *a, const void *b)
{
    const label *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->name > y->name) - (x->name < y->name); /* names are in the arena in document order */
}

/* The pairs turned into the group's labels (pointers into the arena), sorted by name: the later pair of a
 * name wins and an empty value deletes (labelset_set_many's rules). Returns their number; one more slot
 * is free after them (the provider's label). */
static size_t pend_labels(jg *c)
{
    if (c->npend + 1 > c->pcap) {
        c->pcap = c->npend + 1;
        c->pend = xrealloc(c->pend, c->pcap * sizeof *c->pend);
    }
    label *v = &c->pend[0].l; /* jpair and label have the same size: converted in place */
    for (size_t i = 0; i < c->npend; i++) {
        size_t no = c->pend[i].off.name, vo = c->pend[i].off.value;
        c->pend[i].l = (label){c->arena + no, c->arena + vo};
    }
    if (c->npend > 1)
        qsort(v, c->npend, sizeof(jpair), by_name_then_place);
    size_t k = 0;
    for (size_t i = 0; i < c->npend; i++) {
        label l = c->pend[i].l;
        if (i + 1 < c->npend && strcmp(l.name, c->pend[i + 1].l.name) == 0)
            continue;
        if (*l.value)
            c->pend[k++].l = l;
    }
    return k;
}

/* Binary search in the first n labels of c->pend: the position of name, or where it would go (*found). */
static size_t pend_find(const jg *c, size_t n, const char *name, bool *found)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(c->pend[mid].l.name, name);
        if (r == 0) {
            *found = true;
            return mid;
        }
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* labelset_del then labelset_set on the first *n labels of c->pend (room for one more). */
static void pend_provider_labels(jg *c, size_t *n)
{
    bool found;
    if (c->del_name) {
        size_t at = pend_find(c, *n, c->del_name, &found);
        if (found) {
            memmove(&c->pend[at], &c->pend[at + 1], (*n - at - 1) * sizeof(jpair));
            (*n)--;
        }
    }
    if (!c->set_name)
        return;
    size_t at = pend_find(c, *n, c->set_name, &found);
    if (!c->set_value || !*c->set_value) { /* an empty value deletes */
        if (found) {
            memmove(&c->pend[at], &c->pend[at + 1], (*n - at - 1) * sizeof(jpair));
            (*n)--;
        }
        return;
    }
    if (!found) {
        memmove(&c->pend[at + 1], &c->pend[at], (*n - at) * sizeof(jpair));
        (*n)++;
    }
    c->pend[at].l = (label){(char *)c->set_name, (char *)c->set_value};
}

static void group_reset(jg *c)
{
    pend_clear(c);
    clear_targets(c);
    c->gprio = PRIO_NONE;
    c->gerr[0] = c->targets_err[0] = c->labels_err[0] = c->label_err[0] = c->target_err[0] = 0;
    c->field = F_NONE;
}

static int fatal(jg *c, const char *msg)
{
    snprintf(c->fatal, sizeof c->fatal, "%s", msg);
    return 0;
}

static void doc_error(jg *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void doc_error(jg *c, const char *fmt, ...)
{
    if (c->err[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
}

/* Kind of a value as the old code named it. */
enum { K_OBJECT, K_ARRAY, K_STRING, K_NUMBER, K_BOOL, K_NULL };
static const char *kind_name[] = {"object", "array", "string", "number", "bool", "null"};

/* What is kept is bounded too: a list of millions of tiny targets would otherwise build GiBs of label
 * sets from a few MB (a frozen target costs 40 bytes + its address, and its packed form while its group is
 * read 5 bytes + its address).
 * Past the budget the document fails like one the tree parser could not hold (the provider keeps its last
 * good targets). */
static bool over_budget(jg *c, size_t bytes)
{
    c->kept += bytes;
    if (c->kept <= c->budget)
        return false;
    doc_error(c, "targets take more than %zu MiB for a body of %zu bytes (at most %u times the body + 1 MiB)",
              c->budget >> 20, c->len, JSON_BUDGET_RATIO);
    return true;
}

static void add_target(jg *c, const unsigned char *s, size_t len)
{
    if (over_budget(c, sizeof(labelset) + sizeof(label) + len + 32))
        return;
    sd_gb_add_address(&c->tb, (const char *)s, len);
}

/* The group at depth 2 ends: keep it when it has targets and the document has no error so far. */
static void group_end(jg *c)
{
    if (!c->err[0]) {
        /* the priority order of the old code */
        if (c->gprio == PRIO_UNKNOWN)
            doc_error(c, "%s", c->gerr);
        else if (c->targets_err[0])
            doc_error(c, "%s", c->targets_err);
        else if (c->labels_err[0])
            doc_error(c, "%s", c->labels_err);
        else if (c->label_err[0])
            doc_error(c, "%s", c->label_err);
        else if (c->target_err[0])
            doc_error(c, "%s", c->target_err);
    }
    if (!c->err[0] && c->tb.n_targets &&
        !over_budget(c, sizeof(target_group) + sizeof(size_t) + 2 * strlen(c->prefix) + 128 +
                            c->npend * (sizeof(label) + 64))) {
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 4;
            c->out = xrealloc(c->out, c->cap * sizeof *c->out);
            c->idx = xrealloc(c->idx, c->cap * sizeof *c->idx);
        }
        bool adopt = c->alen > sd_json_adopt_min;
        if (adopt) { /* the group takes the arena, to size: before the pairs become pointers into it */
            c->arena = xrealloc(c->arena, c->alen);
            c->acap = c->alen;
        }
        size_t nl = pend_labels(c);
        pend_provider_labels(c, &nl);
        labelset view = {nl ? &c->pend[0].l : NULL, nl, nl}; /* jpair's first member is the label */
        size_t sl = strlen(c->prefix) + 24;
        char *source = xmalloc(sl);
        snprintf(source, sl, "%s:%zu", c->prefix, c->index);
        if (adopt) {
            /* its frozen group points into the arena: no copy of a big map's text */
            char *arena = c->arena;
            size_t alen = c->alen;
            c->arena = NULL;
            c->alen = c->acap = 0;
            sd_gb_freeze_arena(&c->tb, source, &view, arena, alen, &c->out[c->n]);
        } else {
            /* the labels' names and values in the provider's pool (shared by its groups) */
            for (size_t i = 0; i < nl; i++) {
                label *l = &c->pend[i].l;
                const char *nm = sd_pool_intern(c->tb.pool, l->name, strlen(l->name));
                const char *va = sd_pool_intern(c->tb.pool, l->value, strlen(l->value));
                if (nm)
                    l->name = (char *)nm;
                if (va)
                    l->value = (char *)va;
            }
            sd_gb_freeze(&c->tb, source, &view, &c->out[c->n]); /* stored by reference, never copied */
        }
        free(source);
        c->idx[c->n++] = c->index;
    }
    group_reset(c);
    c->index++;
}

/* A value (scalar or the start of a container) at the current depth + 1 for containers, current depth for
 * scalars: `d` is the depth the value lives at. */
static void on_value(jg *c, int d, int kind, const unsigned char *s, size_t len)
{
    if (c->err[0])
        return;
    if (d == 1) { /* root */
        if (kind == K_NULL || kind == K_ARRAY)
            return;
        doc_error(c, "expected a list of target groups, got %s", kind_name[kind]);
        return;
    }
    if (d == 2) { /* a group */
        if (kind == K_OBJECT) {
            group_reset(c);
            return;
        }
        if (kind == K_NULL)
            doc_error(c, "nil target group item found");
        else
            doc_error(c, "group %zu: expected an object with targets and labels, got %s", c->index, kind_name[kind]);
        return;
    }
    if (d == 3) { /* the value of a group's field */
        if (c->field == F_TARGETS) {
            if (kind != K_NULL && kind != K_ARRAY)
                snprintf(c->targets_err, sizeof c->targets_err,
                         "group %zu: targets: expected a list of strings, got %s", c->index, kind_name[kind]);
        } else if (c->field == F_LABELS) {
            if (kind != K_NULL && kind != K_OBJECT)
                snprintf(c->labels_err, sizeof c->labels_err,
                         "group %zu: labels: expected an object of strings, got %s", c->index, kind_name[kind]);
        }
        return;
    }
    if (d == 4) {
        if (c->field == F_TARGETS && !c->targets_err[0]) {
            if (kind == K_STRING) {
                add_target(c, s, len);
            } else if (!c->target_err[0]) {
                snprintf(c->target_err, sizeof c->target_err, "group %zu: target %zu: expected a string, got %s",
                         c->index, c->tb.n_targets, kind_name[kind]);
            }
        } else if (c->field == F_LABELS && !c->labels_err[0] && c->key_pending) {
            const char *name = c->arena + c->key_off;
            if (c->label_err[0]) {
                /* only the first bad label is reported */
            } else if (!label_name_valid(name)) {
                snprintf(c->label_err, sizeof c->label_err, "group %zu: \"%s\" is not a valid label name", c->index,
                         name);
            } else if (kind != K_STRING) {
                snprintf(c->label_err, sizeof c->label_err, "group %zu: label %s: expected a string, got %s",
                         c->index, name, kind_name[kind]);
            } else {
                size_t vo = arena_put(c, s, len);
                if (c->npend == c->pcap) {
                    c->pcap = c->pcap ? c->pcap * 2 : 16;
                    c->pend = xrealloc(c->pend, c->pcap * sizeof *c->pend);
                }
                c->pend[c->npend].off.name = c->key_off;
                c->pend[c->npend++].off.value = vo;
                c->key_pending = false; /* the pair is kept: the next key goes after it */
            }
        }
    }
}

static int open_container(jg *c, int kind)
{
    if (c->depth >= JG_MAX_DEPTH)
        return fatal(c, "maximum parsing depth reached");
    on_value(c, c->depth + 1, kind, NULL, 0);
    c->depth++;
    return 1;
}

static int close_container(jg *c, bool is_map)
{
    if (c->depth == 2 && is_map && !c->err[0])
        group_end(c); /* values deeper than a target or a label value are never looked at */
    if (c->depth == 3 && c->field != F_NONE)
        c->field = F_NONE;
    if (--c->depth == 0)
        c->root_end = yajl_get_bytes_consumed(c->h);
    return 1;
}

/* Scalars live at depth+1 (the container they are in is at depth). */
static int scalar(jg *c, int kind, const unsigned char *s, size_t len)
{
    on_value(c, c->depth + 1, kind, s, len);
    if (c->depth == 0)
        c->root_end = c->completing ? (size_t)-1 : yajl_get_bytes_consumed(c->h);
    return 1;
}

static int cb_null(void *ctx)
{
    return scalar(ctx, K_NULL, NULL, 0);
}

static int cb_boolean(void *ctx, int b)
{
    (void)b;
    return scalar(ctx, K_BOOL, NULL, 0);
}

const char *sd_json_number_check(const char *s, size_t len, bool *is_int, long long *iv)
{
    /* jansson refused integers beyond long long and reals beyond double as syntax errors */
    bool real = memchr(s, '.', len) || memchr(s, 'e', len) || memchr(s, 'E', len);
    *is_int = !real;
    *iv = 0;
    char buf[64], *t = len < sizeof buf ? buf : xmalloc(len + 1);
    memcpy(t, s, len);
    t[len] = 0;
    const char *bad = NULL;
    errno = 0;
    if (real) {
        double d = strtod(t, NULL);
        if (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL))
            bad = "real number overflow";
    } else {
        *iv = strtoll(t, NULL, 10);
        if (errno == ERANGE)
            bad = "too big integer";
    }
    if (t != buf)
        free(t);
    return bad;
}

static int cb_number(void *ctx, const char *s, size_t len)
{
    jg *c = ctx;
    bool is_int;
    long long iv;
    const char *bad = sd_json_number_check(s, len, &is_int, &iv);
    if (bad)
        return fatal(c, bad);
    return scalar(c, K_NUMBER, NULL, 0);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    jg *c = ctx;
    if (memchr(s, 0, len))
        return fatal(c, "\\u0000 is not allowed without JSON_ALLOW_NUL");
    return scalar(c, K_STRING, s, len);
}

static int cb_start_map(void *ctx)
{
    return open_container(ctx, K_OBJECT);
}

static int cb_start_array(void *ctx)
{
    return open_container(ctx, K_ARRAY);
}

static int cb_map_key(void *ctx, const unsigned char *key, size_t len)
{
    jg *c = ctx;
    if (memchr(key, 0, len))
        return fatal(c, "NUL byte in object key not supported");
    if (c->err[0])
        return 1;
    if (c->depth == 2) { /* a group's field */
        if (len == 7 && !strncasecmp((const char *)key, "targets", 7)) {
            c->field = F_TARGETS; /* a repeated key: the last one wins */
            clear_targets(c);
            c->targets_err[0] = c->target_err[0] = 0;
        } else if (len == 6 && !strncasecmp((const char *)key, "labels", 6)) {
            c->field = F_LABELS;
            pend_clear(c);
            c->labels_err[0] = c->label_err[0] = 0;
        } else {
            c->field = F_OTHER;
            if (c->gprio != PRIO_UNKNOWN) {
                c->gprio = PRIO_UNKNOWN;
                snprintf(c->gerr, sizeof c->gerr, "group %zu: unknown field \"%.*s\" (expected targets, labels)",
                         c->index, (int)(len > 4096 ? 4096 : len), (const char *)key);
            }
        }
    } else if (c->depth == 3 && c->field == F_LABELS) {
        if (c->key_pending) /* the previous key's value was not kept: its bytes are reused */
            c->alen = c->key_off;
        c->key_off = arena_put(c, key, len);
        c->key_pending = true;
    }
    return 1;
}

static int cb_end_map(void *ctx)
{
    return close_container(ctx, true);
}

static int cb_end_array(void *ctx)
{
    return close_container(ctx, false);
}

static const yajl_callbacks callbacks = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_boolean,
    .yajl_number = cb_number,
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_map_key,
    .yajl_end_map = cb_end_map,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = cb_end_array,
};

size_t sd_json_trailing_garbage(const char *data, size_t len, size_t root_end)
{
    for (size_t i = root_end; i < len; i++) /* root_end (size_t)-1: nothing follows */
        if (data[i] != ' ' && data[i] != '\t' && data[i] != '\n' && data[i] != '\r')
            return i + 1;
    return 0;
}

int sd_json_syntax_error(void *handle, const char *data, size_t len, size_t off, const char *fatal_text, char *err,
                         size_t errlen)
{
    int line;
    size_t col0;
    json_error_position(data, len, off, &line, &col0);
    char text[160];
    if (fatal_text && fatal_text[0])
        snprintf(text, sizeof text, "%s", fatal_text);
    else
        json_yajl_error_text(handle, text, sizeof text);
    snprintf(err, errlen, "line %d column %zu: %s", line, col0 + 1, text);
    return -1;
}

int sd_json_groups_parse(const char *prefix, const char *set_name, const char *set_value, const char *del_name,
                         sd_pool *pool, const char *data, size_t len, target_group **out, size_t **idx, size_t *n,
                         char *err, size_t errlen)
{
    jg *c = xcalloc(1, sizeof *c);
    c->prefix = prefix;
    c->set_name = set_name;
    c->set_value = set_value;
    c->del_name = del_name;
    sd_pool *own = pool ? NULL : sd_pool_new();
    c->tb.pool = pool ? pool : own;
    c->len = len;
    c->budget = json_budget_for(len);
    yajl_handle h = yajl_alloc(&callbacks, NULL, c);
    if (!h)
        abort();
    c->h = h;
    yajl_status s = yajl_parse(h, (const unsigned char *)(data ? data : ""), len);
    size_t off = yajl_get_bytes_consumed(h);
    if (s == yajl_status_ok) {
        c->completing = true;
        s = yajl_complete_parse(h);
        off = len; /* the document ended too early */
    }
    int rc = 0;
    size_t garbage = s == yajl_status_ok ? sd_json_trailing_garbage(data, len, c->root_end) : 0;
    if (s != yajl_status_ok)
        rc = sd_json_syntax_error(h, data ? data : "", len, off, c->fatal, err, errlen);
    else if (garbage)
        rc = sd_json_syntax_error(h, data, len, garbage, "trailing garbage", err, errlen);
    else if (c->err[0])
        rc = -1, snprintf(err, errlen, "%s", c->err);
    yajl_free(h);
    group_reset(c);
    if (own) {
        sd_pool_seal(own);
        sd_pool_unref(own); /* the groups keep it alive */
    }
    sd_gb_free(&c->tb);
    free(c->arena);
    free(c->pend);
    if (rc) {
        sd_groups_free(c->out, c->n);
        free(c->idx);
    } else {
        if (c->n && c->n < c->cap) { /* to size: the caller may hold these while it builds more */
            c->out = xrealloc(c->out, c->n * sizeof *c->out);
            c->idx = xrealloc(c->idx, c->n * sizeof *c->idx);
        }
        *out = c->out;
        *n = c->n;
        if (idx)
            *idx = c->idx;
        else
            free(c->idx);
    }
    free(c);
    return rc;
}
