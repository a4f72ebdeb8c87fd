/* targets_page: see targets_page.h. */
#include "api/targets_page.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/apiutil.h"
#include "api/html.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#define DROPPED_SHOWN 100

static bool icontains(const char *hay, const char *needle)
{
    return strcasestr(hay, needle) != NULL;
}

static bool target_matches_search(const active_target *t, const char *search)
{
    if (!search || !*search)
        return true;
    if (t->t.url && icontains(t->t.url, search))
        return true;
    char buf[1024];
    for (size_t i = 0; i < t->t.labels.n; i++) {
        const label *l = &t->t.labels.v[i];
        if (strncmp(l->name, "__", 2) == 0)
            continue;
        snprintf(buf, sizeof buf, "%s=\"%s\"", l->name, l->value);
        if (icontains(buf, search))
            return true;
        snprintf(buf, sizeof buf, "%s=%s", l->name, l->value);
        if (icontains(buf, search))
            return true;
    }
    return false;
}

static bool health_matches(const char *want, target_health h)
{
    return !want || !*want || strcmp(want, target_health_name(h)) == 0;
}

static void page_link(strbuf *out, const targets_page_query *q, const char *pool, long page, const char *text)
{
    int first = 1;
    char pg[32];
    snprintf(pg, sizeof pg, "%ld", page);
    strbuf_puts(out, "<a href=\"targets");
    html_query_param(out, &first, "scrapePool", pool);
    html_query_param(out, &first, "health", q->health);
    html_query_param(out, &first, "search", q->search);
    if (page > 1)
        html_query_param(out, &first, "page", pg);
    strbuf_puts(out, "\">");
    strbuf_puts(out, text);
    strbuf_puts(out, "</a>");
}

static void filter_form(strbuf *out, target_manager *tm, const targets_page_query *q)
{
    strbuf_puts(out, "<form class=\"filter\" method=\"get\" action=\"targets\"><select name=\"scrapePool\">"
                     "<option value=\"\">All scrape pools</option>");
    for (size_t i = 0; i < targets_n_pools(tm); i++) {
        const char *job = targets_pool_at(tm, i)->job;
        strbuf_puts(out, "<option value=\"");
        strbuf_html(out, job);
        strbuf_puts(out, "\"");
        if (q->scrape_pool && strcmp(q->scrape_pool, job) == 0)
            strbuf_puts(out, " selected");
        strbuf_puts(out, ">");
        strbuf_html(out, job);
        strbuf_puts(out, "</option>");
    }
    strbuf_puts(out, "</select><select name=\"health\"><option value=\"\">All states</option>");
    static const char *const hs[] = {"up", "down", "unknown"};
    for (size_t i = 0; i < 3; i++) {
        strbuf_printf(out, "<option value=\"%s\"%s>%s</option>", hs[i],
                      q->health && strcmp(q->health, hs[i]) == 0 ? " selected" : "", hs[i]);
    }
    strbuf_puts(out, "</select><input type=\"text\" name=\"search\" placeholder=\"Filter by endpoint or labels\" "
                     "value=\"");
    strbuf_html(out, q->search ? q->search : "");
    strbuf_puts(out, "\" size=\"40\"><button type=\"submit\">Filter</button></form>\n");
}

/* Discovered labels are written as they are merged from the target's group (targets_*_discovered_each, as
 * /api/v1/targets writes them), never copied into a label set: a page showing a target whose group holds
 * a million labels costs their text in the page. One of a, d, f is set. */
typedef struct disc_ref {
    const target_pool *p;
    const active_target *a;
    const dropped_target *d;
    const failed_target *f;
} disc_ref;

static void disc_each(const disc_ref *r, target_label_fn fn, void *ctx)
{
    if (r->a)
        targets_active_discovered_each(r->p, r->a, fn, ctx);
    else if (r->d)
        targets_dropped_discovered_each(r->p, r->d, fn, ctx);
    else
        targets_failed_discovered_each(r->p, r->f, fn, ctx);
}

static void badge_label(void *ctx, const char *name, const char *value)
{
    html_label_badge(ctx, name, value);
}

static void disc_badges(strbuf *out, const disc_ref *r)
{
    disc_each(r, badge_label, out);
}

/* One label of the relabel link's `labels` parameter: its JSON member (api_json_label, into a scratch
 * buffer) query-escaped into the page. Escaping is byte by byte, so the parameter is the escaped JSON
 * object, as if the object had been built whole first. */
typedef struct link_writer {
    api_json_labels json; /* .out: the scratch buffer */
    strbuf *out;
} link_writer;

static void link_label(void *ctx, const char *name, const char *value)
{
    link_writer *w = ctx;
    strbuf_reset(w->json.out);
    api_json_label(&w->json, name, value);
    strbuf_url_query_escape(w->out, w->json.out->buf);
}

/* A link to /api/v1/targets/relabel_steps for the target's discovered labels (a job name is never empty). */
static void relabel_link(strbuf *out, const char *job, const disc_ref *r)
{
    strbuf scratch;
    strbuf_init(&scratch);
    link_writer w = {{&scratch, false}, out};
    strbuf_puts(out, " <a class=\"muted\" href=\"api/v1/targets/relabel_steps?scrapePool=");
    strbuf_url_query_escape(out, job);
    strbuf_puts(out, "&amp;labels=%7B");
    disc_each(r, link_label, &w);
    strbuf_puts(out, "%7D\">relabel steps</a>");
    strbuf_free(&scratch);
}

static void render_pool(strbuf *out, const target_pool *p, const targets_page_query *q, int64_t now_ms,
                        bool single)
{
    size_t up = 0, matching = 0;
    target_state st;
    for (size_t i = 0; i < p->n_active; i++) {
        targets_state_get(p, p->active[i], &st);
        up += st.health == TARGET_HEALTH_UP;
    }
    strbuf_puts(out, "<details open><summary><h2>");
    strbuf_html(out, p->job);
    strbuf_printf(out, "</h2><span class=\"count\">(%zu/%zu up)</span>", up, p->n_active);
    if (p->dropped_count || p->failed_count)
        strbuf_printf(out, "<span class=\"count\">%zu dropped, %zu failed</span>", p->dropped_count,
                      p->failed_count);
    strbuf_puts(out, "</summary>\n");

    long page = single && q->page > 0 ? q->page : 1;
    size_t from = (size_t)(page - 1) * TARGETS_PAGE_SIZE, to = from + TARGETS_PAGE_SIZE;
    strbuf_puts(out, "<table><tr><th>Endpoint</th><th>State</th><th>Labels</th><th>Last scrape</th>"
                     "<th>Scrape duration</th><th>Error</th></tr>\n");
    for (size_t i = 0; i < p->n_active; i++) {
        const active_target *t = p->active[i];
        targets_state_get(p, t, &st);
        if (!health_matches(q->health, st.health) || !target_matches_search(t, q->search))
            continue;
        size_t k = matching++;
        if (k < from || k >= to)
            continue;
        const char *url = t->t.url ? t->t.url : "";
        strbuf_puts(out, "<tr><td>");
        /* Only http(s) URLs become links: __scheme__ may come from discovered metadata (a pod annotation),
         * and "javascript://x/%0aalert(1)" in an href would run in lookout's origin when clicked. */
        bool link = strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
        if (link) {
            strbuf_puts(out, "<a href=\"");
            strbuf_html(out, url);
            strbuf_puts(out, "\">");
        }
        strbuf_html(out, url);
        strbuf_printf(out, "%s</td><td><span class=\"state %s\">%s</span></td><td>", link ? "</a>" : "",
                      target_health_name(st.health), target_health_name(st.health));
        html_label_badges(out, &t->t.labels, 1);
        strbuf_puts(out, "</td><td>");
        html_relative_time(out, now_ms, st.last_scrape_ms);
        strbuf_puts(out, "</td><td>");
        if (st.last_scrape_ms)
            html_duration(out, st.last_duration_s);
        strbuf_puts(out, "</td><td class=\"err\">");
        strbuf_html(out, st.last_error);
        strbuf_puts(out, "</td></tr>\n");
    }
    strbuf_puts(out, "</table>\n");
    if (matching > TARGETS_PAGE_SIZE || page > 1) {
        strbuf_printf(out, "<div class=\"pager\">Showing %zu&ndash;%zu of %zu matching targets. ",
                      matching ? (from < matching ? from + 1 : matching) : 0, to < matching ? to : matching,
                      matching);
        if (page > 1)
            page_link(out, q, p->job, page - 1, "&laquo; previous");
        if (to < matching) {
            strbuf_puts(out, " ");
            page_link(out, q, p->job, page + 1, "next &raquo;");
        }
        strbuf_puts(out, "</div>\n");
    } else if (matching == 0 && p->n_active) {
        strbuf_puts(out, "<div class=\"pager muted\">No target matches the filter.</div>\n");
    }

    if (p->n_dropped) {
        strbuf_printf(out, "<details><summary>Dropped targets (%zu", p->dropped_count);
        if (p->n_dropped < p->dropped_count)
            strbuf_printf(out, ", %zu kept by keep_dropped_targets", p->n_dropped);
        strbuf_puts(out, ")</summary><table><tr><th>Discovered labels</th><th>Dropped by</th></tr>\n");
        for (size_t i = 0; i < p->n_dropped && i < DROPPED_SHOWN; i++) {
            const dropped_target *d = &p->dropped[i];
            disc_ref r = {.p = p, .d = d};
            strbuf_puts(out, "<tr><td>");
            disc_badges(out, &r);
            strbuf_puts(out, "</td><td>");
            if (d->rule_index >= 0)
                strbuf_printf(out, "dropped by rule #%d (%s)", d->rule_index,
                              relabel_action_name(d->action));
            else
                strbuf_puts(out, "dropped by relabeling");
            relabel_link(out, p->job, &r);
            strbuf_puts(out, "</td></tr>\n");
        }
        strbuf_puts(out, "</table>");
        if (p->n_dropped > DROPPED_SHOWN) {
            int first = 1;
            strbuf_printf(out, "<div class=\"pager\">%zu more: <a href=\"api/v1/targets", p->n_dropped - DROPPED_SHOWN);
            html_query_param(out, &first, "state", "dropped");
            html_query_param(out, &first, "scrapePool", p->job);
            strbuf_puts(out, "\">all dropped targets (JSON)</a></div>");
        }
        strbuf_puts(out, "</details>\n");
    }
    if (p->n_failed) {
        strbuf_printf(out, "<details open><summary>Failed targets (%zu)</summary><table><tr><th>Discovered "
                           "labels</th><th>Reason</th></tr>\n",
                      p->failed_count);
        for (size_t i = 0; i < p->n_failed && i < DROPPED_SHOWN; i++) {
            strbuf_puts(out, "<tr><td>");
            disc_badges(out, &(disc_ref){.p = p, .f = &p->failed[i]});
            strbuf_puts(out, "</td><td class=\"err\">");
            strbuf_html(out, p->failed[i].error);
            strbuf_puts(out, "</td></tr>\n");
        }
        strbuf_puts(out, "</table></details>\n");
    }
    strbuf_puts(out, "</details>\n");
}

/* One pool of /service-discovery: TARGETS_PAGE_SIZE discovered targets (active, then dropped) from the
 * page's (the first page when every pool is shown). */
static void sd_render_pool(strbuf *out, const target_pool *p, bool single, long page)
{
    size_t total = p->n_active + p->n_dropped;
    strbuf_puts(out, "<details open><summary><h2>");
    strbuf_html(out, p->job);
    strbuf_printf(out, "</h2><span class=\"count\">(%zu / %zu active targets)</span></summary>\n",
                  p->n_active, p->n_active + p->dropped_count);
    strbuf_puts(out, "<table><tr><th>Discovered labels</th><th>Target labels</th></tr>\n");
    size_t from = single ? (size_t)(page - 1) * TARGETS_PAGE_SIZE : 0, to = from + TARGETS_PAGE_SIZE;
    for (size_t k = from; k < total && k < to; k++) {
        strbuf_puts(out, "<tr><td>");
        if (k < p->n_active) {
            const active_target *t = p->active[k];
            disc_badges(out, &(disc_ref){.p = p, .a = t});
            strbuf_puts(out, "</td><td>");
            html_label_badges(out, &t->t.labels, 1);
        } else {
            const dropped_target *d = &p->dropped[k - p->n_active];
            disc_ref r = {.p = p, .d = d};
            disc_badges(out, &r);
            strbuf_puts(out, "</td><td class=\"muted\">Dropped");
            if (d->rule_index >= 0)
                strbuf_printf(out, " by rule #%d (%s)", d->rule_index, relabel_action_name(d->action));
            relabel_link(out, p->job, &r);
        }
        strbuf_puts(out, "</td></tr>\n");
    }
    strbuf_puts(out, "</table>\n");
    if (total > TARGETS_PAGE_SIZE) {
        int first = 1;
        char pg[32];
        strbuf_puts(out, "<div class=\"pager\">");
        if (single && page > 1) {
            snprintf(pg, sizeof pg, "%ld", page - 1);
            strbuf_puts(out, "<a href=\"service-discovery");
            html_query_param(out, &first, "scrapePool", p->job);
            html_query_param(out, &first, "page", pg);
            strbuf_puts(out, "\">&laquo; previous</a> ");
        }
        if (to < total) {
            first = 1;
            snprintf(pg, sizeof pg, "%ld", single ? page + 1 : 2);
            strbuf_puts(out, "<a href=\"service-discovery");
            html_query_param(out, &first, "scrapePool", p->job);
            html_query_param(out, &first, "page", pg);
            strbuf_puts(out, "\">next &raquo;</a>");
        }
        strbuf_puts(out, "</div>\n");
    }
    strbuf_puts(out, "</details>\n");
}

/* Both pages are written a piece at a time (targets_page_fill), each piece under the target manager's
 * read lock, which is never held while the client reads: whole pools until the piece holds
 * TARGETS_PAGE_PIECE bytes. Between pieces the writer keeps the last pool's job name (pools are sorted
 * by it), never an index or a pointer; a pool added or removed meanwhile is shown or not as its name
 * falls, and no pool is shown twice. A pool's section is written whole, under one hold of the lock. */
struct targets_page_writer {
    target_manager *tm;
    bool sd; /* /service-discovery, else /targets */
    char *scrape_pool, *health, *search; /* copies (NULL: none) */
    long page;
    int64_t now_ms;
    bool begun;   /* the filter form is written (/targets) */
    char *job;    /* the last pool visited (NULL: none yet) */
    size_t shown; /* pools written */
};

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

targets_page_writer *targets_page_writer_new(target_manager *tm, bool sd, const targets_page_query *q,
                                             int64_t now_ms, strbuf *out)
{
    targets_page_writer *w = xcalloc(1, sizeof *w);
    w->tm = tm;
    w->sd = sd;
    w->scrape_pool = dup_or_null(q->scrape_pool);
    w->health = dup_or_null(q->health);
    w->search = dup_or_null(q->search);
    w->page = q->page < 1 ? 1 : q->page;
    w->now_ms = now_ms;
    html_page_begin(out, sd ? "Service discovery" : "Targets");
    return w;
}

int targets_page_fill(targets_page_writer *w, strbuf *out)
{
    size_t start = out->len;
    bool single = w->scrape_pool && *w->scrape_pool;
    targets_page_query q = {w->scrape_pool, w->health, w->search, w->page};
    targets_read_begin(w->tm);
    if (!w->begun && !w->sd)
        filter_form(out, w->tm, &q);
    w->begun = true;
    size_t np = targets_n_pools(w->tm), i = 0;
    if (w->job) {
        i = targets_pool_lower_bound(w->tm, w->job);
        if (i < np && strcmp(targets_pool_at(w->tm, i)->job, w->job) == 0)
            i++;
    }
    for (; i < np && out->len - start < TARGETS_PAGE_PIECE; i++) {
        const target_pool *p = targets_pool_at(w->tm, i);
        free(w->job);
        w->job = xstrdup(p->job);
        if (single && strcmp(p->job, w->scrape_pool) != 0)
            continue;
        if (w->sd)
            sd_render_pool(out, p, single, w->page);
        else
            render_pool(out, p, &q, w->now_ms, single);
        w->shown++;
    }
    targets_read_end(w->tm);
    if (i < np)
        return 1;
    if (!w->shown && !w->sd)
        strbuf_puts(out, single ? "<p class=\"muted\">No such scrape pool.</p>\n"
                                : "<p class=\"muted\">No scrape pools configured.</p>\n");
    html_page_end(out);
    return 0;
}

void targets_page_writer_free(targets_page_writer *w)
{
    if (!w)
        return;
    free(w->scrape_pool);
    free(w->health);
    free(w->search);
    free(w->job);
    free(w);
}

static void render_whole(target_manager *tm, bool sd, const targets_page_query *q, int64_t now_ms, strbuf *out)
{
    targets_page_writer *w = targets_page_writer_new(tm, sd, q, now_ms, out);
    while (targets_page_fill(w, out) == 1)
        ;
    targets_page_writer_free(w);
}

void targets_page_render(target_manager *tm, const targets_page_query *q, int64_t now_ms, strbuf *out)
{
    render_whole(tm, false, q, now_ms, out);
}

void sd_page_render(target_manager *tm, const char *scrape_pool, long page, strbuf *out)
{
    targets_page_query q = {.scrape_pool = scrape_pool, .page = page};
    render_whole(tm, true, &q, 0, out);
}

static long parse_page(const char *s)
{
    if (!s || !*s)
        return 1;
    char *end;
    long v = strtol(s, &end, 10);
    return (*end || v < 1 || v > 1000000) ? 1 : v;
}

/* Server-rendered pages: inline style only, no script, not framed (clickjacking), forms to ourselves. */
static void page_headers(api_response *resp)
{
    api_response_header(resp, "Content-Security-Policy",
                         "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                         "frame-ancestors 'none'; base-uri 'none'");
    api_response_header(resp, "X-Frame-Options", "DENY");
}

static int page_stream(void *ctx, strbuf *out)
{
    return targets_page_fill(ctx, out);
}

static void page_stream_free(void *ctx)
{
    targets_page_writer_free(ctx);
}

/* The first piece now; the rest streamed (a small page goes out whole, with a Content-Length). */
static void answer(target_manager *tm, bool sd, const targets_page_query *q, api_response *resp)
{
    resp->status = 200;
    resp->content_type = "text/html; charset=utf-8";
    page_headers(resp);
    targets_page_writer *w = targets_page_writer_new(tm, sd, q, html_now_ms(), &resp->body);
    if (targets_page_fill(w, &resp->body) == 0) {
        targets_page_writer_free(w);
        return;
    }
    api_response_stream(resp, page_stream, w, page_stream_free);
}

static void h_targets(void *ctx, const api_request *req, api_response *resp)
{
    targets_page_query q = {
        .scrape_pool = api_request_query(req, "scrapePool"),
        .health = api_request_query(req, "health"),
        .search = api_request_query(req, "search"),
        .page = parse_page(api_request_query(req, "page")),
    };
    answer(ctx, false, &q, resp);
}

static void h_sd(void *ctx, const api_request *req, api_response *resp)
{
    targets_page_query q = {
        .scrape_pool = api_request_query(req, "scrapePool"),
        .page = parse_page(api_request_query(req, "page")),
    };
    answer(ctx, true, &q, resp);
}

void targets_page_register(target_manager *tm, http_server *s)
{
    http_server_route(s, "GET", "/targets", false, h_targets, tm);
    http_server_route(s, "GET", "/service-discovery", false, h_sd, tm);
}
