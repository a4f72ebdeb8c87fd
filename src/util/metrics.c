/* metrics: see metrics.h. One global mutex: updates are rare compared to the work they count (a scrape,
 * an SD refresh), so contention is not a concern; hot counters can be batched by callers. */
#include "util/metrics.h"

#include <math.h>
#include <stdio.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

typedef struct metric_series {
    struct metric_family *family;
    char **values;
    double value;          /* counter/gauge; histogram: sum */
    unsigned long long count; /* histogram */
    unsigned long long *bucket_counts;
    struct metric_series *next;
} series;

struct metric_family {
    char *name, *help;
    metric_type type;
    size_t n_labels;
    char **label_names;
    double *buckets;
    size_t n_buckets;
    series *head;
    struct metric_family *next;
};

typedef struct collector {
    metrics_collector_fn fn;
    metrics_pager_fn pager; /* instead of fn */
    void (*free_state)(void *);
    void *ctx;
    struct collector *next;
} collector;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static metric_family *families;
static collector *collectors;

static const double default_buckets[] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};

static metric_family *family_get(const char *name, metric_type type, const char *help, size_t n_labels,
                                 const char *const *label_names, const double *buckets, size_t n_buckets)
{
    pthread_mutex_lock(&mu);
    metric_family *f;
    for (f = families; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            break;
    if (!f) {
        f = calloc(1, sizeof *f);
        if (!f)
            abort();
        f->name = xstrdup_or_empty(name);
        f->help = xstrdup_or_empty(help);
        f->type = type;
        f->n_labels = n_labels;
        f->label_names = calloc(n_labels ? n_labels : 1, sizeof(char *));
        for (size_t i = 0; i < n_labels; i++)
            f->label_names[i] = xstrdup_or_empty(label_names[i]);
        if (type == METRIC_HISTOGRAM) {
            if (!buckets) {
                buckets = default_buckets;
                n_buckets = sizeof default_buckets / sizeof *default_buckets;
            }
            f->buckets = malloc(n_buckets * sizeof(double));
            memcpy(f->buckets, buckets, n_buckets * sizeof(double));
            f->n_buckets = n_buckets;
        }
        /* keep the list sorted by name so rendering is stable */
        metric_family **pp = &families;
        while (*pp && strcmp((*pp)->name, name) < 0)
            pp = &(*pp)->next;
        f->next = *pp;
        *pp = f;
    }
    pthread_mutex_unlock(&mu);
    return f;
}

metric_family *metric_family_get(const char *name, metric_type type, const char *help, size_t n_labels,
                                 const char *const *label_names)
{
    return family_get(name, type, help, n_labels, label_names, NULL, 0);
}

metric_family *metric_histogram_get(const char *name, const char *help, size_t n_labels,
                                    const char *const *label_names, const double *buckets, size_t n_buckets)
{
    return family_get(name, METRIC_HISTOGRAM, help, n_labels, label_names, buckets, n_buckets);
}

/* Caller holds mu. */
static series *find_series(metric_family *f, const char *const *values, int create)
{
    for (series *s = f->head; s; s = s->next) {
        size_t i;
        for (i = 0; i < f->n_labels; i++)
            if (strcmp(s->values[i], values[i] ? values[i] : "") != 0)
                break;
        if (i == f->n_labels)
            return s;
    }
    if (!create)
        return NULL;
    series *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->family = f;
    s->values = calloc(f->n_labels ? f->n_labels : 1, sizeof(char *));
    for (size_t i = 0; i < f->n_labels; i++)
        s->values[i] = xstrdup_or_empty(values[i]);
    if (f->type == METRIC_HISTOGRAM)
        s->bucket_counts = calloc(f->n_buckets ? f->n_buckets : 1, sizeof(unsigned long long));
    /* sorted insert by label values for stable output */
    series **pp = &f->head;
    while (*pp) {
        int c = 0;
        for (size_t i = 0; i < f->n_labels && c == 0; i++)
            c = strcmp((*pp)->values[i], s->values[i]);
        if (c > 0)
            break;
        pp = &(*pp)->next;
    }
    s->next = *pp;
    *pp = s;
    return s;
}

static void free_series(metric_family *f, series *s)
{
    for (size_t i = 0; i < f->n_labels; i++)
        free(s->values[i]);
    free(s->values);
    free(s->bucket_counts);
    free(s);
}

void metric_add(metric_family *f, const char *const *label_values, double delta)
{
    pthread_mutex_lock(&mu);
    find_series(f, label_values, 1)->value += delta;
    pthread_mutex_unlock(&mu);
}

void metric_set(metric_family *f, const char *const *label_values, double value)
{
    pthread_mutex_lock(&mu);
    find_series(f, label_values, 1)->value = value;
    pthread_mutex_unlock(&mu);
}

/* Caller holds mu. */
static void observe(series *s, double value)
{
    const metric_family *f = s->family;
    s->value += value;
    s->count++;
    for (size_t i = 0; i < f->n_buckets; i++)
        if (value <= f->buckets[i])
            s->bucket_counts[i]++;
}

void metric_observe(metric_family *f, const char *const *label_values, double value)
{
    pthread_mutex_lock(&mu);
    observe(find_series(f, label_values, 1), value);
    pthread_mutex_unlock(&mu);
}

metric_series *metric_series_get(metric_family *f, const char *const *label_values)
{
    pthread_mutex_lock(&mu);
    series *s = find_series(f, label_values, 1);
    pthread_mutex_unlock(&mu);
    return s;
}

void metric_series_update(metric_series *const *s, const double *v, size_t n)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < n; i++) {
        if (!s[i])
            continue;
        if (s[i]->family->type == METRIC_HISTOGRAM)
            observe(s[i], v[i]);
        else
            s[i]->value += v[i];
    }
    pthread_mutex_unlock(&mu);
}

void metric_remove(metric_family *f, const char *const *label_values)
{
    pthread_mutex_lock(&mu);
    series *s = find_series(f, label_values, 0);
    if (s) {
        series **pp = &f->head;
        while (*pp != s)
            pp = &(*pp)->next;
        *pp = s->next;
        free_series(f, s);
    }
    pthread_mutex_unlock(&mu);
}

void metric_remove_by_first_label(metric_family *f, const char *value)
{
    pthread_mutex_lock(&mu);
    series **pp = &f->head;
    while (*pp) {
        series *s = *pp;
        if (f->n_labels > 0 && strcmp(s->values[0], value) == 0) {
            *pp = s->next;
            free_series(f, s);
        } else {
            pp = &s->next;
        }
    }
    pthread_mutex_unlock(&mu);
}

double metric_value(metric_family *f, const char *const *label_values)
{
    pthread_mutex_lock(&mu);
    series *s = find_series(f, label_values, 0);
    double v = s ? (f->type == METRIC_HISTOGRAM ? (double)s->count : s->value) : 0;
    pthread_mutex_unlock(&mu);
    return v;
}

static void collector_add(metrics_collector_fn fn, metrics_pager_fn pager, void (*free_state)(void *), void *ctx)
{
    collector *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->fn = fn;
    c->pager = pager;
    c->free_state = free_state;
    c->ctx = ctx;
    pthread_mutex_lock(&mu);
    collector **pp = &collectors;
    while (*pp)
        pp = &(*pp)->next;
    *pp = c;
    pthread_mutex_unlock(&mu);
}

static void collector_remove(metrics_collector_fn fn, metrics_pager_fn pager, void *ctx)
{
    pthread_mutex_lock(&mu);
    for (collector **pp = &collectors; *pp; pp = &(*pp)->next) {
        if ((*pp)->fn == fn && (*pp)->pager == pager && (*pp)->ctx == ctx) {
            collector *c = *pp;
            *pp = c->next;
            free(c);
            break;
        }
    }
    pthread_mutex_unlock(&mu);
}

void metrics_register_collector(metrics_collector_fn fn, void *ctx)
{
    collector_add(fn, NULL, NULL, ctx);
}

void metrics_unregister_collector(metrics_collector_fn fn, void *ctx)
{
    collector_remove(fn, NULL, ctx);
}

void metrics_register_pager(metrics_pager_fn fn, void (*free_state)(void *state), void *ctx)
{
    collector_add(NULL, fn, free_state, ctx);
}

void metrics_unregister_pager(metrics_pager_fn fn, void *ctx)
{
    collector_remove(NULL, fn, ctx);
}

static void put_number(strbuf *out, double v)
{
    if (isnan(v))
        strbuf_puts(out, "NaN");
    else if (isinf(v))
        strbuf_puts(out, v > 0 ? "+Inf" : "-Inf");
    else if (v == (double)(long long)v && fabs(v) < 1e15)
        strbuf_printf(out, "%lld", (long long)v);
    else
        strbuf_printf(out, "%.17g", v);
}

static void put_label_value(strbuf *out, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '\\')
            strbuf_puts(out, "\\\\");
        else if (*p == '"')
            strbuf_puts(out, "\\\"");
        else if (*p == '\n')
            strbuf_puts(out, "\\n");
        else
            strbuf_putc(out, *p);
    }
}

static void write_labels(strbuf *out, size_t n, const char *const *names, const char *const *values,
                         const char *extra_name, const char *extra_value)
{
    if (n == 0 && !extra_name)
        return;
    strbuf_putc(out, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            strbuf_putc(out, ',');
        strbuf_printf(out, "%s=\"", names[i]);
        put_label_value(out, values[i] ? values[i] : "");
        strbuf_putc(out, '"');
    }
    if (extra_name) {
        if (n)
            strbuf_putc(out, ',');
        strbuf_printf(out, "%s=\"%s\"", extra_name, extra_value);
    }
    strbuf_putc(out, '}');
}

void metrics_write_sample(strbuf *out, const char *name, size_t n_labels, const char *const *label_names,
                          const char *const *label_values, double value)
{
    strbuf_puts(out, name);
    write_labels(out, n_labels, label_names, label_values, NULL, NULL);
    strbuf_putc(out, ' ');
    put_number(out, value);
    strbuf_putc(out, '\n');
}

/* Every family, under the lock. */
static void render_families(strbuf *out)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    for (metric_family *f = families; f; f = f->next) {
        strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, type_names[f->type]);
        const char *const *names = (const char *const *)f->label_names;
        for (series *s = f->head; s; s = s->next) {
            const char *const *values = (const char *const *)s->values;
            if (f->type != METRIC_HISTOGRAM) {
                metrics_write_sample(out, f->name, f->n_labels, names, values, s->value);
                continue;
            }
            strbuf sn;
            strbuf_init(&sn);
            for (size_t i = 0; i < f->n_buckets; i++) {
                char le[64];
                snprintf(le, sizeof le, "%g", f->buckets[i]);
                strbuf_printf(out, "%s_bucket", f->name);
                write_labels(out, f->n_labels, names, values, "le", le);
                strbuf_printf(out, " %llu\n", s->bucket_counts[i]);
            }
            strbuf_printf(out, "%s_bucket", f->name);
            write_labels(out, f->n_labels, names, values, "le", "+Inf");
            strbuf_printf(out, " %llu\n", s->count);
            strbuf_printf(&sn, "%s_sum", f->name);
            metrics_write_sample(out, sn.buf, f->n_labels, names, values, s->value);
            strbuf_reset(&sn);
            strbuf_printf(&sn, "%s_count", f->name);
            metrics_write_sample(out, sn.buf, f->n_labels, names, values, (double)s->count);
            strbuf_free(&sn);
        }
    }
}

void metrics_render_state_free(metrics_render_state *st)
{
    if (st->state && st->free_state)
        st->free_state(st->state);
    st->state = NULL;
    st->state_owner = NULL;
    st->free_state = NULL;
}

int metrics_render_step(metrics_render_state *st, strbuf *out)
{
    pthread_mutex_lock(&mu);
    if (st->step == 0) {
        render_families(out);
        st->step++;
        bool more = collectors != NULL;
        pthread_mutex_unlock(&mu);
        return more;
    }
    collector *c = collectors;
    for (size_t i = 1; c && i < st->step; i++)
        c = c->next;
    if (!c) {
        pthread_mutex_unlock(&mu);
        metrics_render_state_free(st);
        return 0;
    }
    metrics_collector_fn fn = c->fn;
    metrics_pager_fn pager = c->pager;
    void (*free_state)(void *) = c->free_state;
    void *ctx = c->ctx;
    bool more = c->next != NULL;
    pthread_mutex_unlock(&mu);
    if (st->state && st->state_owner != (const void *)c) /* the collectors changed meanwhile */
        metrics_render_state_free(st);
    /* Collectors run without the lock so they may update metrics themselves. */
    if (pager) {
        st->state_owner = c;
        st->free_state = free_state;
        if (pager(ctx, &st->state, out))
            return 1; /* the same collector again */
        st->state = NULL;
        st->state_owner = NULL;
    } else {
        fn(ctx, out);
    }
    st->step++;
    return more;
}

void metrics_render(strbuf *out)
{
    metrics_render_state st = {0};
    while (metrics_render_step(&st, out))
        ;
    metrics_render_state_free(&st);
}
