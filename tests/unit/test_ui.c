/* Web UI handler over a real socket: index and assets with the right types, CSP, ETag/304, immutable
 * versioned URLs, 404s, no mutation over GET routes; the embedded table matches the files in web/. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/server.h"
#include "api/ui.h"
#include "api/web_assets.h"
#include "test_files.h"

typedef struct reply {
    long status;
    strbuf body;
    char ctype[128], etag[64], cache[128], csp[256], nosniff[32];
} reply;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    strbuf_append(ud, p, sz * n);
    return sz * n;
}

static void grab(const char *line, size_t len, const char *name, char *dst, size_t dstlen)
{
    size_t nl = strlen(name);
    if (len > nl && strncasecmp(line, name, nl) == 0) {
        const char *v = line + nl;
        while (*v == ' ')
            v++;
        int vl = (int)(len - (size_t)(v - line));
        while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
            vl--;
        snprintf(dst, dstlen, "%.*s", vl, v);
    }
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    reply *r = ud;
    grab(p, sz * n, "Content-Type:", r->ctype, sizeof r->ctype);
    grab(p, sz * n, "ETag:", r->etag, sizeof r->etag);
    grab(p, sz * n, "Cache-Control:", r->cache, sizeof r->cache);
    grab(p, sz * n, "Content-Security-Policy:", r->csp, sizeof r->csp);
    grab(p, sz * n, "X-Content-Type-Options:", r->nosniff, sizeof r->nosniff);
    return sz * n;
}

static http_server *srv;
static int port;

static void setup(void)
{
    http_server_options o = {.listen_address = "127.0.0.1:0", .threads = 2};
    srv = http_server_new(&o);
    ui_register(srv);
    char err[256];
    cr_assert_eq(http_server_start(srv, err, sizeof err), 0, "%s", err);
    port = http_server_port(srv);
}

static void teardown(void)
{
    http_server_free(srv);
}

static void request(const char *method, const char *path, const char *if_none_match, reply *r)
{
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    memset(r, 0, sizeof *r);
    strbuf_init(&r->body);
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    char h[128];
    if (if_none_match) {
        snprintf(h, sizeof h, "If-None-Match: %s", if_none_match);
        hdrs = curl_slist_append(hdrs, h);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    CURLcode rc = curl_easy_perform(c);
    cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
}

/* Reads a file of web/ (tests run from the repository root). */
TestSuite(ui, .init = setup, .fini = teardown);

Test(ui, index_is_html_with_csp_and_versioned_assets)
{
    reply r;
    request("GET", "/", NULL, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.ctype, "text/html; charset=utf-8");
    cr_assert_str_eq(r.csp, UI_CSP);
    cr_assert_str_eq(r.nosniff, "nosniff");
    cr_assert_str_eq(r.cache, "no-cache");
    cr_assert_eq(r.etag[0], '"');
    const web_asset *js = web_asset_find("/static/app.js");
    cr_assert_not_null(js);
    char want[128];
    snprintf(want, sizeof want, "src=\"static/app.js?v=%.*s\"", (int)strlen(js->etag) - 2, js->etag + 1);
    cr_assert_not_null(strstr(r.body.buf, want), "index.html references %s", want);
    strbuf_free(&r.body);
}

Test(ui, etag_revalidation_gives_304)
{
    reply r, r2, r3;
    request("GET", "/static/app.css", NULL, &r);
    cr_assert_eq(r.status, 200);
    request("GET", "/static/app.css", r.etag, &r2);
    cr_assert_eq(r2.status, 304);
    cr_assert_eq(r2.body.len, 0);
    char list[160];
    snprintf(list, sizeof list, "\"other\", W/%s", r.etag);
    request("GET", "/static/app.css", list, &r3);
    cr_assert_eq(r3.status, 304, "weak and listed ETags match");
    strbuf_free(&r.body);
    strbuf_free(&r2.body);
    strbuf_free(&r3.body);
    request("GET", "/static/app.css", "\"nope\"", &r);
    cr_assert_eq(r.status, 200);
    strbuf_free(&r.body);
}

Test(ui, assets_have_types_and_cache_by_version)
{
    reply r;
    request("GET", "/static/app.js", NULL, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.ctype, "text/javascript; charset=utf-8");
    cr_assert_str_eq(r.cache, "no-cache");
    cr_assert_str_eq(r.csp, UI_CSP);
    strbuf_free(&r.body);

    const web_asset *css = web_asset_find("/static/app.css");
    char path[128];
    snprintf(path, sizeof path, "/static/app.css?v=%.*s", (int)strlen(css->etag) - 2, css->etag + 1);
    request("GET", path, NULL, &r);
    cr_assert_str_eq(r.ctype, "text/css; charset=utf-8");
    cr_assert_str_eq(r.cache, "public, max-age=31536000, immutable");
    strbuf_free(&r.body);
    request("GET", "/static/app.css?v=0000000000000000", NULL, &r);
    cr_assert_str_eq(r.cache, "no-cache", "a stale version is not immutable");
    strbuf_free(&r.body);

    request("GET", "/static/favicon.svg", NULL, &r);
    cr_assert_str_eq(r.ctype, "image/svg+xml");
    strbuf_free(&r.body);
}

Test(ui, unknown_paths_and_methods)
{
    const char *missing[] = {"/static/nope.js", "/static/", "/static", "/static/../index.html", "/static/index.html",
                             "/index.html"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        reply r;
        request("GET", missing[i], NULL, &r);
        cr_assert_eq(r.status, 404, "%s -> %ld", missing[i], r.status);
        strbuf_free(&r.body);
    }
    reply r;
    request("POST", "/", NULL, &r);
    cr_assert_eq(r.status, 405);
    strbuf_free(&r.body);
    request("DELETE", "/static/app.js", NULL, &r);
    cr_assert_eq(r.status, 405);
    strbuf_free(&r.body);
}

Test(ui, embedded_table_matches_web_dir)
{
    const char *files[] = {"app.js", "app.css", "dom.js", "chart.js", "favicon.svg"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char fs[256], url[256];
        snprintf(fs, sizeof fs, "web/%s", files[i]);
        snprintf(url, sizeof url, "/static/%s", files[i]);
        size_t len;
        char *want = test_slurp(fs, &len);
        const web_asset *a = web_asset_find(url);
        cr_assert_not_null(a, "%s embedded", url);
        cr_assert_eq(a->len, len, "%s length", url);
        cr_assert_eq(memcmp(a->data, want, len), 0, "%s bytes", url);
        cr_assert_eq(a->data[len], 0, "NUL after %s", url);
        reply r;
        request("GET", url, NULL, &r);
        cr_assert_eq(r.body.len, len);
        cr_assert_eq(memcmp(r.body.buf, want, len), 0);
        strbuf_free(&r.body);
        free(want);
    }
    size_t n;
    const web_asset *all = web_asset_list(&n);
    cr_assert_geq(n, 6);
    for (size_t i = 0; i < n; i++)
        cr_assert(strcmp(all[i].path, "/") == 0 || strncmp(all[i].path, "/static/", 8) == 0, "%s", all[i].path);
    cr_assert_null(web_asset_find("/static/nope"));
}
