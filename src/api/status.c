/* status: see status.h. Process metrics follow client_golang's process collector (same names and
 * help texts), read from /proc at scrape time. */
#include "api/status.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

static void h_healthy(void *ctx, const api_request *req, api_response *resp)
{
    (void)ctx;
    (void)req;
    api_response_text(resp, 200, "lookout is Healthy.\n");
}

static void h_ready(void *ctx, const api_request *req, api_response *resp)
{
    (void)req;
    status_api *st = ctx;
    if (atomic_load(&st->ready)) {
        api_response_text(resp, 200, "lookout is Ready.\n");
        if (st->ready_note)
            st->ready_note(st->note_ctx, &resp->body);
    }
    else
        api_response_text(resp, 503, "Service Unavailable");
}

static int metrics_stream(void *ctx, strbuf *out)
{
    return metrics_render_step(ctx, out);
}

static void metrics_stream_free(void *ctx)
{
    metrics_render_state_free(ctx);
    free(ctx);
}

/* Streamed a section at a time (the registry, then each collector; the per-error and per-target series a
 * page at a time), so the whole exposition is never in memory at once. */
static void h_metrics(void *ctx, const api_request *req, api_response *resp)
{
    (void)ctx;
    (void)req;
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    metrics_render_state *st = xcalloc(1, sizeof *st);
    if (metrics_render_step(st, &resp->body)) {
        api_response_stream(resp, metrics_stream, st, metrics_stream_free);
    } else {
        metrics_render_state_free(st);
        free(st);
    }
}

static bool lifecycle_allowed(status_api *st, api_response *resp)
{
    if (st->enable_lifecycle)
        return true;
    api_response_text(resp, 403, "Lifecycle API is not enabled.");
    return false;
}

static void h_reload(void *ctx, const api_request *req, api_response *resp)
{
    (void)req;
    status_api *st = ctx;
    if (!lifecycle_allowed(st, resp))
        return;
    char err[2048] = "";
    if (!st->reload || st->reload(st->ctx, err, sizeof err) != 0) {
        strbuf_reset(&resp->body);
        strbuf_printf(&resp->body, "failed to reload config: %s\n", err);
        resp->status = 500;
        return;
    }
    resp->status = 200;
}

static void h_quit(void *ctx, const api_request *req, api_response *resp)
{
    (void)req;
    status_api *st = ctx;
    if (!lifecycle_allowed(st, resp))
        return;
    api_response_text(resp, 200, "Requesting termination... Goodbye!");
    if (st->quit)
        st->quit(st->ctx);
}

void status_api_register(status_api *st, http_server *s)
{
    http_server_route(s, "GET", "/-/healthy", false, h_healthy, st);
    http_server_route(s, "GET", "/-/ready", false, h_ready, st);
    http_server_route(s, "GET", "/metrics", false, h_metrics, st);
    http_server_route(s, "POST", "/-/reload", false, h_reload, st);
    http_server_route(s, "PUT", "/-/reload", false, h_reload, st);
    http_server_route(s, "POST", "/-/quit", false, h_quit, st);
    http_server_route(s, "PUT", "/-/quit", false, h_quit, st);
}

/* ---- process metrics ---- */

static void family(strbuf *out, const char *name, const char *type, const char *help, double v)
{
    strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    metrics_write_sample(out, name, 0, NULL, NULL, v);
}

/* Boot time (seconds since the epoch) from /proc/stat's btime. */
static double boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    char line[256];
    double bt = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "btime ", 6) == 0) {
            bt = strtod(line + 6, NULL);
            break;
        }
    fclose(f);
    return bt;
}

void status_process_metrics_render(void *ctx, strbuf *out)
{
    (void)ctx;
    double ticks = (double)sysconf(_SC_CLK_TCK);
    double page = (double)sysconf(_SC_PAGESIZE);
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* Fields after the command name (which may contain spaces) start after the last ')'. */
        char *p = strrchr(buf, ')');
        if (p && ticks > 0) {
            unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
            long long rss = 0;
            /* state(3) ... utime(14) stime(15) ... starttime(22) vsize(23) rss(24) */
            int got = sscanf(p + 2,
                             "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
                             "%llu %llu %lld",
                             &utime, &stime, &start, &vsize, &rss);
            if (got == 5) {
                family(out, "process_cpu_seconds_total", "counter",
                       "Total user and system CPU time spent in seconds.", (double)(utime + stime) / ticks);
                family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                       (double)rss * page);
                family(out, "process_start_time_seconds", "gauge",
                       "Start time of the process since unix epoch in seconds.",
                       boot_time() + (double)start / ticks);
                family(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
                       (double)vsize);
            }
        }
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                n++;
        closedir(d);
        family(out, "process_open_fds", "gauge", "Number of open file descriptors.", (double)(n - 1));
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        family(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
               rl.rlim_cur == RLIM_INFINITY ? 1.8446744073709552e19 : (double)rl.rlim_cur);
}

void status_process_metrics_register(void)
{
    metrics_unregister_collector(status_process_metrics_render, NULL);
    metrics_register_collector(status_process_metrics_render, NULL);
}

void status_process_metrics_unregister(void)
{
    metrics_unregister_collector(status_process_metrics_render, NULL);
}
