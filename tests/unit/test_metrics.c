/* util/metrics: series handles (metric_series_get / metric_series_update, the scrape path's per-scrape
 * counts) render exactly what the same updates through metric_add / metric_observe render. */
#include <criterion/criterion.h>
#include <string.h>

#include "util/metrics.h"
#include "util/strbuf.h"

/* The lines of the rendering that start with prefix, in order. */
static char *lines_of(const char *prefix)
{
    strbuf all = {0}, out = {0};
    metrics_render(&all);
    const char *p = all.buf ? all.buf : "";
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) + 1 : strlen(p);
        if (strncmp(p, prefix, strlen(prefix)) == 0)
            strbuf_append(&out, p, n);
        p += n;
    }
    strbuf_free(&all);
    char *r = strdup(out.buf ? out.buf : "");
    strbuf_free(&out);
    return r;
}

Test(metrics, series_handles_update_like_add_and_observe)
{
    static const double b[] = {0.01, 0.1, 1};
    const char *job[] = {"job"};
    metric_family *c1 = metric_family_get("t_series_a_total", METRIC_COUNTER, "a", 1, job);
    metric_family *h1 = metric_histogram_get("t_series_a_seconds", "a", 1, job, b, 3);
    metric_family *c2 = metric_family_get("t_series_b_total", METRIC_COUNTER, "b", 1, job);
    metric_family *h2 = metric_histogram_get("t_series_b_seconds", "b", 1, job, b, 3);
    const char *x[] = {"x"}, *y[] = {"y"};
    /* the reference: plain calls */
    metric_add(c1, x, 1);
    metric_add(c1, x, 2);
    metric_add(c1, y, 5);
    metric_observe(h1, x, 0.0625);
    metric_observe(h1, x, 0.5);
    metric_observe(h1, x, 7);
    /* the same through handles, one series skipped as NULL */
    metric_series *sx = metric_series_get(c2, x), *sy = metric_series_get(c2, y);
    metric_series *hx = metric_series_get(h2, x);
    cr_assert_eq(metric_series_get(c2, x), sx, "the same series twice");
    metric_series *s[] = {sx, hx, NULL, sy};
    double v1[] = {1, 0.0625, 100, 5}, v2[] = {2, 0.5, 100, 0};
    metric_series_update(s, v1, 4);
    metric_series_update(s, v2, 4);
    metric_series *only[] = {hx};
    double v3[] = {7};
    metric_series_update(only, v3, 1);
    cr_assert_eq(metric_value(c2, x), 3);
    cr_assert_eq(metric_value(c2, y), 5);
    cr_assert_eq(metric_value(h2, x), 3, "histogram count");

    char *a = lines_of("t_series_a_"), *bb = lines_of("t_series_b_");
    cr_assert_str_eq(a, "t_series_a_seconds_bucket{job=\"x\",le=\"0.01\"} 0\n"
                        "t_series_a_seconds_bucket{job=\"x\",le=\"0.1\"} 1\n"
                        "t_series_a_seconds_bucket{job=\"x\",le=\"1\"} 2\n"
                        "t_series_a_seconds_bucket{job=\"x\",le=\"+Inf\"} 3\n"
                        "t_series_a_seconds_sum{job=\"x\"} 7.5625\n"
                        "t_series_a_seconds_count{job=\"x\"} 3\n"
                        "t_series_a_total{job=\"x\"} 3\n"
                        "t_series_a_total{job=\"y\"} 5\n");
    /* the b family renders the same lines under its own name */
    for (char *p = a; (p = strstr(p, "t_series_a_")); p += 11)
        p[9] = 'b';
    cr_assert_str_eq(bb, a);
    free(a);
    free(bb);
}
