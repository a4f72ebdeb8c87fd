/* target: Prometheus 2.42 PopulateLabels (scrape/target.go) and Target.URL / Target.hash, with Go's
 * net.SplitHostPort and net/url escaping reproduced byte for byte, because the labels and URL we compute
 * are compared with Prometheus' /api/v1/targets. Pure functions. */
#include "scrape/target.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "labels/relabel.h"
#include "util/duration.h"
#include "util/hash.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#define PARAM_PREFIX "__param_"
#define META_PREFIX "__meta_"

/* Go's net.SplitHostPort, reduced to "does it split" (we only need whether a port is present). */
static bool go_split_host_port(const char *hp)
{
    const char *i = strrchr(hp, ':');
    if (!i)
        return false; /* missing port */
    size_t j = 0, k = 0;
    if (hp[0] == '[') {
        const char *end = strchr(hp, ']');
        if (!end)
            return false;
        if (end[1] == '\0')
            return false; /* missing port */
        if (end + 1 != i)
            return false; /* too many colons / missing port */
        j = 1;
        k = (size_t)(end - hp) + 1;
    } else {
        for (const char *p = hp; p < i; p++)
            if (*p == ':')
                return false; /* too many colons */
    }
    if (strchr(hp + j, '['))
        return false;
    if (strchr(hp + k, ']'))
        return false;
    return true;
}

static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t n = (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
        if (!n)
            return false;
        uint32_t c = *p & (0xffu >> (n + 1));
        for (size_t i = 1; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            c = (c << 6) | (p[i] & 0x3f);
        }
        static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (c < min[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return false;
        p += n;
    }
    return true;
}

static void fail(built_target *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(built_target *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->error, sizeof out->error, fmt, ap);
    va_end(ap);
    out->status = TARGET_FAILED;
    labelset_clear(&out->labels);
}

/* model.ParseDuration for the error texts Prometheus prints. */
static int parse_label_duration(const char *what, const char *v, int64_t *ms, built_target *out)
{
    char q[300];
    if (!*v) {
        fail(out, "error parsing scrape %s: empty duration string", what);
        return -1;
    }
    if (duration_parse(v, ms) < 0) {
        relabel_go_quote(q, sizeof q, v);
        fail(out, "error parsing scrape %s: not a valid duration string: %s", what, q);
        return -1;
    }
    return 0;
}

/* Whether relabeling (sc's relabel_configs) can read the discovered label `name`: every label that is not
 * __meta_* (those outlive relabeling), and a __meta_* one only when a rule names it (source_labels, the
 * label keepequal/dropequal compare with) or a labelmap rule's regex matches it. Relabeling reads labels in
 * no other way: a __meta_* label that no rule reads can only be overwritten or deleted before step 5 drops
 * it, so leaving it out changes nothing of the result. */
static bool relabel_reads(const scrape_config *sc, const char *name)
{
    if (strncmp(name, META_PREFIX, sizeof META_PREFIX - 1) != 0)
        return true;
    for (size_t i = 0; i < sc->n_relabel_configs; i++) {
        const relabel_rule *r = &sc->relabel_configs[i];
        for (size_t k = 0; k < r->n_source_labels; k++)
            if (strcmp(r->source_labels[k], name) == 0)
                return true;
        if ((r->action == RELABEL_KEEPEQUAL || r->action == RELABEL_DROPEQUAL) && r->target_label &&
            strcmp(r->target_label, name) == 0)
            return true;
        if (r->action == RELABEL_LABELMAP && (!r->re || relabel_regex_match(r->re, name)))
            return true;
    }
    return false;
}

/* The labels of src (sorted, unique) that relabeling reads, as a view: the strings stay src's. */
static void read_view(const scrape_config *sc, const labelset *src, labelset *view)
{
    labelset_init(view);
    for (size_t i = 0; src && i < src->n; i++) {
        if (!relabel_reads(sc, src->v[i].name))
            continue;
        if (view->n == view->cap) {
            view->cap = view->cap ? 2 * view->cap : 16;
            view->v = xrealloc(view->v, view->cap * sizeof(label));
        }
        view->v[view->n++] = src->v[i];
    }
}

/* target_discovered_labels; lean: only the labels relabeling reads (relabel_reads). The group's labels are
 * read through its view (maps expanded name by name, in order): appended to out, which they keep sorted. */
static void discovered_labels(const scrape_config *sc, const label_view *group, const labelset *target_labels,
                              labelset *out, bool lean)
{
    labelset_init(out);
    labelset *ls = out;

    /* 1. group labels overlaid by the target's own */
    label_view_iter it;
    const char *gn, *gv;
    label_view_iter_init(&it, group);
    while (label_view_next(&it, &gn, &gv)) {
        if (lean && !relabel_reads(sc, gn))
            continue;
        if (ls->n == ls->cap) {
            ls->cap = ls->cap ? 2 * ls->cap : 16;
            ls->v = xrealloc(ls->v, ls->cap * sizeof(label));
        }
        ls->v[ls->n].name = xstrdup(gn);
        ls->v[ls->n++].value = xstrdup(gv);
    }
    label_view_iter_free(&it);
    if (lean) {
        labelset tv;
        read_view(sc, target_labels, &tv);
        labelset_merge(ls, &tv);
        free(tv.v); /* a view: the strings are the target's */
    } else if (target_labels) {
        labelset_merge(ls, target_labels);
    }

    /* 2. scrape config defaults, then params (which override) */
    char buf[64];
    labelset_set_default(ls, "job", sc->job_name);
    labelset_set_default(ls, "__scrape_interval__", duration_format(sc->scrape_interval_ms, buf, sizeof buf));
    labelset_set_default(ls, "__scrape_timeout__", duration_format(sc->scrape_timeout_ms, buf, sizeof buf));
    /* As written: a path without a leading slash gets one only in the URL (target_url). */
    labelset_set_default(ls, "__metrics_path__", sc->metrics_path ? sc->metrics_path : "");
    labelset_set_default(ls, "__scheme__", sc->scheme ? sc->scheme : "http");
    for (size_t i = 0; i < sc->n_params; i++) {
        const param *p = &sc->params[i];
        if (p->n_values == 0)
            continue;
        size_t n = strlen(p->name);
        char *name = malloc(sizeof PARAM_PREFIX + n);
        if (!name)
            abort();
        memcpy(name, PARAM_PREFIX, sizeof PARAM_PREFIX - 1);
        memcpy(name + sizeof PARAM_PREFIX - 1, p->name, n + 1);
        labelset_set(ls, name, p->values[0]); /* an empty first value deletes, as Go's builder does */
        free(name);
    }
}

void target_discovered_labels_view(const scrape_config *sc, const label_view *group, const labelset *target_labels,
                                   labelset *out)
{
    discovered_labels(sc, group, target_labels, out, false);
}

void target_discovered_labels(const scrape_config *sc, const labelset *group_labels,
                              const labelset *target_labels, labelset *out)
{
    label_view g = label_view_of(group_labels);
    discovered_labels(sc, &g, target_labels, out, false);
}

/* One label of the scrape config's defaults (weak: only when absent) and params (strong: replace, an empty
 * value deletes) that target_discovered_labels adds. */
typedef struct extra_label {
    const char *name, *value;
    bool strong;
    size_t at; /* its order: a later param of a name wins */
} extra_label;

static int extra_cmp(const void *a, const void *b)
{
    const extra_label *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->at > y->at) - (x->at < y->at);
}

void target_discovered_each(const scrape_config *sc, const labelset *group_labels, const labelset *target_labels,
                            target_label_fn fn, void *ctx)
{
    label_view g = label_view_of(group_labels);
    target_discovered_each_view(sc, &g, target_labels, fn, ctx);
}

void target_discovered_each_view(const scrape_config *sc, const label_view *group, const labelset *target_labels,
                                 target_label_fn fn, void *ctx)
{
    /* the defaults and params, sorted (a few), merged with the group's and the target's labels in one pass */
    char ibuf[64], tbuf[64];
    size_t ne = 5 + sc->n_params, n = 0;
    extra_label *e = xmalloc(ne * sizeof *e);
    char **names = xcalloc(sc->n_params + 1, sizeof *names);
    e[n] = (extra_label){"job", sc->job_name, false, n}, n++;
    e[n] = (extra_label){"__scrape_interval__", duration_format(sc->scrape_interval_ms, ibuf, sizeof ibuf), false, n}, n++;
    e[n] = (extra_label){"__scrape_timeout__", duration_format(sc->scrape_timeout_ms, tbuf, sizeof tbuf), false, n}, n++;
    e[n] = (extra_label){"__metrics_path__", sc->metrics_path ? sc->metrics_path : "", false, n}, n++;
    e[n] = (extra_label){"__scheme__", sc->scheme ? sc->scheme : "http", false, n}, n++;
    for (size_t i = 0; i < sc->n_params; i++) {
        const param *p = &sc->params[i];
        if (p->n_values == 0)
            continue;
        size_t len = strlen(p->name);
        names[i] = xmalloc(sizeof PARAM_PREFIX + len);
        memcpy(names[i], PARAM_PREFIX, sizeof PARAM_PREFIX - 1);
        memcpy(names[i] + sizeof PARAM_PREFIX - 1, p->name, len + 1);
        e[n] = (extra_label){names[i], p->values[0], true, n}, n++;
    }
    qsort(e, n, sizeof *e, extra_cmp);
    size_t tn = target_labels ? target_labels->n : 0;
    size_t j = 0, k = 0;
    label_view_iter it;
    const char *gname, *gvalue;
    label_view_iter_init(&it, group);
    bool more = label_view_next(&it, &gname, &gvalue);
    while (more || j < tn || k < n) {
        const char *name = NULL;
        if (more)
            name = gname;
        if (j < tn && (!name || strcmp(target_labels->v[j].name, name) < 0))
            name = target_labels->v[j].name;
        if (k < n && (!name || strcmp(e[k].name, name) < 0))
            name = e[k].name;
        const char *value = NULL;
        bool gtaken = more && strcmp(gname, name) == 0; /* read the group's next after fn: name may be gname */
        if (gtaken)
            value = gvalue;
        if (j < tn && strcmp(target_labels->v[j].name, name) == 0)
            value = target_labels->v[j++].value; /* the target's own labels win */
        for (; k < n && strcmp(e[k].name, name) == 0; k++) {
            if (e[k].strong)
                value = e[k].value; /* a param replaces; an empty one deletes */
            else if (!value || !*value)
                value = e[k].value;
        }
        if (value && *value)
            fn(ctx, name, value);
        if (gtaken)
            more = label_view_next(&it, &gname, &gvalue);
    }
    label_view_iter_free(&it);
    for (size_t p = 0; p < sc->n_params; p++)
        free(names[p]);
    free(names);
    free(e);
}

typedef struct disc_hash {
    uint64_t h;
    const char *address;
} disc_hash;

static void hash_label(void *ctx, const char *name, const char *value)
{
    static const unsigned char sep = 0xff;
    disc_hash *d = ctx;
    d->h = fnv1a64(d->h, name, strlen(name));
    d->h = fnv1a64(d->h, &sep, 1);
    d->h = fnv1a64(d->h, value, strlen(value));
    d->h = fnv1a64(d->h, &sep, 1);
    if (strcmp(name, "__address__") == 0)
        d->address = value;
}

uint64_t target_discovered_hash(const scrape_config *sc, const labelset *group_labels, const labelset *target_labels,
                                const char **address)
{
    label_view g = label_view_of(group_labels);
    return target_discovered_hash_view(sc, &g, target_labels, address);
}

uint64_t target_discovered_hash_view(const scrape_config *sc, const label_view *group, const labelset *target_labels,
                                     const char **address)
{
    disc_hash d = {FNV64_OFFSET, NULL};
    target_discovered_each_view(sc, group, target_labels, hash_label, &d);
    if (address)
        *address = d.address;
    return d.h;
}

/* The discovered labels read by name, without building them (a relabel_view's base): what
 * target_discovered_each gives for name, NULL when nothing. */
typedef struct disc_base {
    const scrape_config *sc;
    const label_view *group;
    const labelset *target_labels;
    char interval[64], timeout[64]; /* formatted once: a rule may read both (source and target label) */
} disc_base;

static const char *disc_lookup(void *ctx, const char *name)
{
    disc_base *d = ctx;
    const scrape_config *sc = d->sc;
    const char *value = label_view_get(d->group, name);
    const char *tv = d->target_labels ? labelset_get(d->target_labels, name) : NULL;
    if (tv)
        value = tv; /* the target's own labels win */
    if (strncmp(name, PARAM_PREFIX, sizeof PARAM_PREFIX - 1) == 0) {
        for (size_t i = 0; i < sc->n_params; i++)
            if (sc->params[i].n_values && strcmp(sc->params[i].name, name + sizeof PARAM_PREFIX - 1) == 0)
                value = sc->params[i].values[0]; /* a param replaces (the last of a name); "" deletes */
    } else if (!value || !*value) {
        if (strcmp(name, "job") == 0)
            value = sc->job_name;
        else if (strcmp(name, "__scrape_interval__") == 0)
            value = d->interval;
        else if (strcmp(name, "__scrape_timeout__") == 0)
            value = d->timeout;
        else if (strcmp(name, "__metrics_path__") == 0)
            value = sc->metrics_path ? sc->metrics_path : "";
        else if (strcmp(name, "__scheme__") == 0)
            value = sc->scheme ? sc->scheme : "http";
    }
    return value && *value ? value : NULL;
}

static void build(const scrape_config *sc, const label_view *group, const labelset *target_labels,
                  built_target *out, bool lean)
{
    memset(out, 0, sizeof *out);
    labelset_init(&out->discovered);
    out->dropped_by = -1;
    out->status = TARGET_ACTIVE;

    /* 1.-3. discovered labels (group + target labels, scrape config defaults and params), relabeled. Lean:
     * the rules run first on a view of them (read by name, nothing copied) until one drops the target or
     * reads every name (labelmap, labeldrop, labelkeep); only then are they copied (the ones relabeling
     * reads), with the view's writes, and the remaining rules run on the copy. A target the rules drop costs
     * no copy of its group's labels (issue 12: a million-label group kept by a dropped target). */
    labelset *ls = &out->labels;
    relabel_result rr;
    if (lean) {
        disc_base base = {sc, group, target_labels, {0}, {0}};
        duration_format(sc->scrape_interval_ms, base.interval, sizeof base.interval);
        duration_format(sc->scrape_timeout_ms, base.timeout, sizeof base.timeout);
        relabel_view v;
        relabel_view_init(&v, disc_lookup, &base);
        rr = relabel_view_apply(sc->relabel_configs, sc->n_relabel_configs, &v);
        if (rr.keep) {
            discovered_labels(sc, group, target_labels, ls, true);
            relabel_view_write(&v, ls);
            rr = relabel_apply_from(sc->relabel_configs, v.done, sc->n_relabel_configs, ls);
        }
        relabel_view_free(&v);
    } else {
        discovered_labels(sc, group, target_labels, ls, false);
        labelset_copy(&out->discovered, ls);
        rr = relabel_apply(sc->relabel_configs, sc->n_relabel_configs, ls);
    }
    if (!rr.keep) {
        out->status = TARGET_DROPPED;
        out->dropped_by = rr.dropped_by;
        labelset_clear(ls);
        return;
    }

    /* 4. address, port, interval and timeout */
    const char *addr0 = labelset_get(ls, "__address__");
    if (!addr0) {
        fail(out, "no address");
        return;
    }
    char *addr = strdup(addr0);
    if (!addr)
        abort();
    const char *scheme = labelset_get(ls, "__scheme__");
    if (!scheme)
        scheme = "";
    bool has_port = go_split_host_port(addr);
    bool can_add = false;
    if (!has_port) {
        /* add a port only when that makes a valid host:port (a bare IPv6 address does not) */
        char *probe = malloc(strlen(addr) + 6);
        if (!probe)
            abort();
        sprintf(probe, "%s:1234", addr);
        can_add = go_split_host_port(probe);
        free(probe);
    }
    char q[600], q2[300];
    if (can_add) {
        const char *port;
        if (!strcmp(scheme, "http") || !*scheme) {
            port = ":80";
        } else if (!strcmp(scheme, "https")) {
            port = ":443";
        } else {
            relabel_go_quote(q, sizeof q, sc->scheme ? sc->scheme : "");
            fail(out, "invalid scheme: %s", q);
            free(addr);
            return;
        }
        char *na = malloc(strlen(addr) + 5);
        if (!na)
            abort();
        sprintf(na, "%s%s", addr, port);
        free(addr);
        addr = na;
        labelset_set(ls, "__address__", addr);
    }
    if (strchr(addr, '/')) {
        relabel_go_quote(q, sizeof q, addr);
        fail(out, "%s is not a valid hostname", q);
        free(addr);
        return;
    }
    const char *iv = labelset_get(ls, "__scrape_interval__");
    const char *tv = labelset_get(ls, "__scrape_timeout__");
    int64_t ims, tms;
    if (parse_label_duration("interval", iv ? iv : "", &ims, out) < 0) {
        free(addr);
        return;
    }
    if (ims == 0) {
        fail(out, "scrape interval cannot be 0");
        free(addr);
        return;
    }
    if (parse_label_duration("timeout", tv ? tv : "", &tms, out) < 0) {
        free(addr);
        return;
    }
    if (tms == 0) {
        fail(out, "scrape timeout cannot be 0");
        free(addr);
        return;
    }
    if (tms > ims) {
        relabel_go_quote(q, sizeof q, tv);
        relabel_go_quote(q2, sizeof q2, iv);
        fail(out, "scrape timeout cannot be greater than scrape interval (%s > %s)", q, q2);
        free(addr);
        return;
    }

    /* 5. drop __meta_*, default instance, check values */
    size_t w = 0;
    for (size_t i = 0; i < ls->n; i++) {
        if (strncmp(ls->v[i].name, META_PREFIX, sizeof META_PREFIX - 1) == 0) {
            free(ls->v[i].name);
            free(ls->v[i].value);
        } else {
            ls->v[w++] = ls->v[i];
        }
    }
    ls->n = w;
    labelset_set_default(ls, "instance", addr);
    free(addr);
    for (size_t i = 0; i < ls->n; i++) {
        if (!utf8_valid(ls->v[i].value)) {
            relabel_go_quote(q, sizeof q, ls->v[i].name);
            relabel_go_quote(q2, sizeof q2, ls->v[i].value);
            fail(out, "invalid label value for %s: %s", q, q2);
            return;
        }
    }

    out->url = target_url(sc, ls);
    /* Prometheus: fnv64a(fmt.Sprintf("%016d", labels.Hash()) + URL); labels.Hash is xxhash there, FNV here */
    char hb[32];
    int hn = snprintf(hb, sizeof hb, "%016llu", (unsigned long long)labelset_hash(ls));
    uint64_t h = fnv1a64(FNV64_OFFSET, hb, (size_t)hn);
    out->hash = fnv1a64(h, out->url, strlen(out->url));
}

void target_build(const scrape_config *sc, const labelset *group_labels, const labelset *target_labels,
                  built_target *out)
{
    label_view g = label_view_of(group_labels);
    build(sc, &g, target_labels, out, false);
}

void target_build_final(const scrape_config *sc, const labelset *group_labels, const labelset *target_labels,
                        built_target *out)
{
    label_view g = label_view_of(group_labels);
    build(sc, &g, target_labels, out, true);
}

void target_build_final_view(const scrape_config *sc, const label_view *group, const labelset *target_labels,
                             built_target *out)
{
    build(sc, group, target_labels, out, true);
}

int target_check_static(const scrape_config *sc, config_pos *pos, char *err, size_t errlen)
{
    for (size_t i = 0; i < sc->n_sd_configs; i++) {
        const sd_config *sd = &sc->sd_configs[i];
        if (sd->kind != SD_STATIC)
            continue;
        for (size_t t = 0; t < sd->u.static_sd.n_targets; t++) {
            labelset tl = LABELSET_INIT;
            labelset_set(&tl, "__address__", sd->u.static_sd.targets[t]);
            built_target bt;
            target_build(sc, &sd->u.static_sd.labels, &tl, &bt);
            labelset_free(&tl);
            bool failed = bt.status == TARGET_FAILED;
            if (failed) {
                snprintf(err, errlen, "instance %zu in group %d: %s", t, sd->index, bt.error);
                if (pos)
                    *pos = sd->pos;
            }
            built_target_free(&bt);
            if (failed)
                return -1;
        }
    }
    return 0;
}

void built_target_free(built_target *t)
{
    if (!t)
        return;
    labelset_free(&t->discovered);
    labelset_free(&t->labels);
    free(t->url);
    t->url = NULL;
}

static bool public_label(const label *l)
{
    return strncmp(l->name, "__", 2) != 0 && l->value && *l->value;
}

/* Sized exactly: the ingest keeps one of these per target (labelset_set would give it room for 8). A
 * labelset is sorted by name with each name once, so the copy in its order is too; should one not be, the
 * labels go through labelset_set as before. */
void target_public_labels(const labelset *labels, labelset *out)
{
    labelset_init(out);
    size_t n = 0;
    bool sorted = true;
    for (size_t i = 0; i < labels->n; i++) {
        n += public_label(&labels->v[i]);
        sorted = sorted && (i == 0 || strcmp(labels->v[i - 1].name, labels->v[i].name) < 0);
    }
    if (!sorted) {
        for (size_t i = 0; i < labels->n; i++)
            if (strncmp(labels->v[i].name, "__", 2) != 0)
                labelset_set(out, labels->v[i].name, labels->v[i].value);
        return;
    }
    if (!n)
        return;
    out->v = xmalloc(n * sizeof *out->v);
    out->cap = n;
    for (size_t i = 0; i < labels->n; i++)
        if (public_label(&labels->v[i])) {
            out->v[out->n].name = xstrdup(labels->v[i].name);
            out->v[out->n++].value = xstrdup(labels->v[i].value);
        }
}

/* ---- Go net/url ---- */

typedef enum { ENC_PATH, ENC_HOST, ENC_QUERY } url_mode;

static bool should_escape(unsigned char c, url_mode mode)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return false;
    if (mode == ENC_HOST && strchr("!$&'()*+,;=:[]<>\"", c) && c)
        return false;
    switch (c) {
    case '-': case '_': case '.': case '~':
        return false;
    case '$': case '&': case '+': case ',': case '/': case ':': case ';': case '=': case '?': case '@':
        if (mode == ENC_PATH)
            return c == '?';
        return true; /* query: everything reserved; host: these fall through to "escape" */
    default:
        return true;
    }
}

static void url_escape(strbuf *sb, const char *s, url_mode mode)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == ' ' && mode == ENC_QUERY) {
            strbuf_putc(sb, '+');
        } else if (should_escape(*p, mode)) {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            strbuf_append(sb, e, 3);
        } else {
            strbuf_putc(sb, (char)*p);
        }
    }
}

typedef struct qparam {
    const char *key;
    const char **values;
    size_t n;
} qparam;

static int qparam_cmp(const void *a, const void *b)
{
    return strcmp(((const qparam *)a)->key, ((const qparam *)b)->key);
}

char *target_url(const scrape_config *sc, const labelset *labels)
{
    /* url.Values: configured params, then __param_* labels replace the first value or add a key */
    size_t cap = sc->n_params + labels->n, n = 0;
    qparam *qp = calloc(cap ? cap : 1, sizeof *qp);
    if (!qp)
        abort();
    for (size_t i = 0; i < sc->n_params; i++) {
        qp[n].key = sc->params[i].name;
        qp[n].n = sc->params[i].n_values;
        qp[n].values = malloc((qp[n].n + 1) * sizeof(char *));
        if (!qp[n].values)
            abort();
        for (size_t k = 0; k < qp[n].n; k++)
            qp[n].values[k] = sc->params[i].values[k];
        n++;
    }
    size_t nconf = n;
    for (size_t i = 0; i < labels->n; i++) {
        const char *name = labels->v[i].name;
        if (strncmp(name, PARAM_PREFIX, sizeof PARAM_PREFIX - 1) != 0)
            continue;
        const char *key = name + sizeof PARAM_PREFIX - 1;
        qparam *found = NULL;
        for (size_t k = 0; k < nconf; k++)
            if (!strcmp(qp[k].key, key))
                found = &qp[k];
        if (found && found->n > 0) {
            found->values[0] = labels->v[i].value;
        } else if (found) {
            found->values[0] = labels->v[i].value;
            found->n = 1;
        } else {
            qp[n].key = key;
            qp[n].n = 1;
            qp[n].values = malloc(sizeof(char *));
            if (!qp[n].values)
                abort();
            qp[n].values[0] = labels->v[i].value;
            n++;
        }
    }
    qsort(qp, n, sizeof *qp, qparam_cmp);
    strbuf query;
    strbuf_init(&query);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < qp[i].n; k++) {
            if (query.len)
                strbuf_putc(&query, '&');
            url_escape(&query, qp[i].key, ENC_QUERY);
            strbuf_putc(&query, '=');
            url_escape(&query, qp[i].values[k], ENC_QUERY);
        }
        free(qp[i].values);
    }
    free(qp);

    /* url.URL{Scheme, Host, Path, RawQuery}.String() */
    const char *scheme = labelset_get(labels, "__scheme__");
    const char *host = labelset_get(labels, "__address__");
    const char *path = labelset_get(labels, "__metrics_path__");
    scheme = scheme ? scheme : "";
    host = host ? host : "";
    path = path ? path : "";
    strbuf sb;
    strbuf_init(&sb);
    if (*scheme) {
        strbuf_puts(&sb, scheme);
        strbuf_putc(&sb, ':');
    }
    if (*scheme || *host) {
        if (*host || *path)
            strbuf_puts(&sb, "//");
        url_escape(&sb, host, ENC_HOST);
    }
    strbuf ep;
    strbuf_init(&ep);
    if (!strcmp(path, "*"))
        strbuf_putc(&ep, '*');
    else
        url_escape(&ep, path, ENC_PATH);
    if (ep.len && ep.buf[0] != '/' && *host)
        strbuf_putc(&sb, '/');
    if (sb.len == 0) {
        /* RFC 3986 4.2: a first segment with a colon would read as a scheme */
        const char *slash = strchr(ep.buf, '/');
        size_t seg = slash ? (size_t)(slash - ep.buf) : ep.len;
        if (memchr(ep.buf, ':', seg))
            strbuf_puts(&sb, "./");
    }
    strbuf_append(&sb, ep.buf, ep.len);
    strbuf_free(&ep);
    if (query.len) {
        strbuf_putc(&sb, '?');
        strbuf_append(&sb, query.buf, query.len);
    }
    strbuf_free(&query);
    return sb.buf /* taken: strbuf_detach would allocate anew */;
}
