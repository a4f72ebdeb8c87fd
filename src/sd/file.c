/* file: file_sd_configs (Prometheus discovery/file/file.go). Each refresh globs every pattern, re-reads
 * every matching file and sends its groups; a file that fails keeps its previous groups (the error is
 * logged and counted); a file that vanished, or now has fewer groups, gets empty groups for its old
 * sources. Refreshes run at start (synchronously, so the first sync already has the targets), on inotify
 * events in the patterns' directories, and every refresh_interval.
 *
 * Threading: one thread per provider, polling the inotify fd, an eventfd used to stop it, and the timer.
 * Everything in file_impl except stop_fd is touched by that thread only (and by start before it runs). */
#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "sd/sd_internal.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

#define COMPONENT "sd/file"
#define WATCH_MASK (IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | \
                    IN_DELETE_SELF | IN_MOVE_SELF)
/* Events come in bursts (truncate, write, close; editors' rename dances): wait until the directory has
 * been quiet this long, but never longer than SETTLE_MAX_MS, before re-reading. */
#define SETTLE_QUIET_MS 20
#define SETTLE_MAX_MS 250

typedef struct seen_file {
    char *path;
    size_t *idx;     /* positions of the groups with targets sent for it last time (sources PATH:INDEX), */
    size_t n_idx;    /* ascending; an empty group is sent for each that has none any more */
} seen_file;

typedef struct file_impl {
    int ifd, stop_fd;
    pthread_t thread;
    bool running;
    char **dirs; /* directory of each pattern ("." when the pattern has none) */
    const char **bases; /* last path element of each pattern (points into the config) */
    int *wds;           /* watch descriptor of each pattern's directory, -1 when not watched */
    seen_file *seen;
    size_t n_seen;
    sd_pool *pool; /* the strings its groups share, across refreshes (sd_internal.h) */
} file_impl;

static metric_family *m_read_errors, *m_scan_duration;

static void metrics_create(void)
{
    m_read_errors = metric_family_get("lookout_sd_file_read_errors_total", METRIC_COUNTER,
                                      "The number of file SD read errors.", 0, NULL);
    static const double buckets[] = {.0005, .001, .005, .01, .05, .1, .5, 1, 5};
    m_scan_duration = metric_histogram_get("lookout_sd_file_scan_duration_seconds",
                                           "The duration of the file SD scan in seconds.", 0, NULL, buckets,
                                           sizeof buckets / sizeof *buckets);
}

static void watch_dirs(sd_provider *p)
{
    file_impl *fi = p->impl;
    /* Re-added on every refresh: a directory created after start, or deleted and recreated, is picked up
     * (inotify returns the same descriptor for a directory already watched). */
    for (size_t i = 0; i < p->cfg->u.file.n_files; i++) {
        int wd = inotify_add_watch(fi->ifd, fi->dirs[i], WATCH_MASK | IN_ONLYDIR);
        if (wd < 0 && fi->wds[i] >= 0)
            log_error(COMPONENT, "cannot watch directory", "job", p->job, "dir", fi->dirs[i], "err",
                      strerror(errno));
        fi->wds[i] = wd;
    }
}

static const seen_file *find_seen(const seen_file *v, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].path, path))
            return &v[i];
    return NULL;
}

typedef struct gbuf {
    target_group *v;
    size_t n, cap;
} gbuf;

static target_group *gbuf_push(gbuf *b)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->v = realloc(b->v, b->cap * sizeof(target_group));
        if (!b->v)
            abort();
    }
    return &b->v[b->n++];
}

/* Room for n more without doubling: a file of many groups is moved in whole. */
static void gbuf_reserve(gbuf *b, size_t n)
{
    if (b->cap - b->n >= n)
        return;
    b->cap = b->n + n;
    b->v = realloc(b->v, b->cap * sizeof(target_group));
    if (!b->v)
        abort();
}

static void push_empty(gbuf *b, const char *path, const size_t *idx, size_t n)
{
    char source[PATH_MAX + 32];
    for (size_t i = 0; i < n; i++) {
        snprintf(source, sizeof source, "%s:%zu", path, idx[i]);
        target_group_init(gbuf_push(b), source);
    }
}

static void refresh(sd_provider *p)
{
    file_impl *fi = p->impl;
    const file_sd_config *fc = &p->cfg->u.file;
    int64_t t0 = sd_now_mono_ms();

    glob_t gl;
    memset(&gl, 0, sizeof gl);
    for (size_t i = 0; i < fc->n_files; i++) {
        /* GLOB_PERIOD: Go's filepath.Glob lets * match a leading dot */
        int rc = glob(fc->files[i], GLOB_PERIOD | (i ? GLOB_APPEND : 0), NULL, &gl);
        if (rc != 0 && rc != GLOB_NOMATCH)
            log_error(COMPONENT, "error expanding glob", "job", p->job, "pattern", fc->files[i]);
    }

    seen_file *now = calloc(gl.gl_pathc ? gl.gl_pathc : 1, sizeof *now);
    if (!now)
        abort();
    size_t n_now = 0, errors = 0;
    gbuf out = {0};
    char err[512];
    for (size_t i = 0; i < gl.gl_pathc; i++) {
        const char *path = gl.gl_pathv[i];
        if (find_seen(now, n_now, path))
            continue; /* matched by two patterns */
        const seen_file *old = find_seen(fi->seen, fi->n_seen, path);
        target_group *groups = NULL;
        size_t n = 0;
        now[n_now].path = xstrdup(path);
        if (!fi->pool)
            fi->pool = sd_pool_new();
        if (sd_file_read_pooled(path, fi->pool, &groups, &n, err, sizeof err) != 0) {
            errors++;
            metric_add(m_read_errors, NULL, 1);
            log_error(COMPONENT, "error reading file", "job", p->job, "file", path, "err", err);
            if (old && old->n_idx) { /* keep its groups */
                now[n_now].idx = xmalloc(old->n_idx * sizeof(size_t));
                memcpy(now[n_now].idx, old->idx, old->n_idx * sizeof(size_t));
                now[n_now].n_idx = old->n_idx;
            }
            n_now++;
            continue;
        }
        if (old && old->n_idx) {
            size_t *gone = xmalloc(old->n_idx * sizeof(size_t));
            push_empty(&out, path, gone, sd_groups_gone(old->idx, old->n_idx, groups, n, gone));
            free(gone);
        }
        now[n_now].idx = n ? xmalloc(n * sizeof(size_t)) : NULL;
        for (size_t k = 0; k < n; k++)
            now[n_now].idx[k] = sd_group_index(&groups[k]);
        if (!out.n && n) { /* the first: its array is taken over (a big file's groups are not copied) */
            free(out.v);
            out.v = groups;
            out.n = out.cap = n;
        } else {
            gbuf_reserve(&out, n);
            for (size_t k = 0; k < n; k++)
                *gbuf_push(&out) = groups[k]; /* moved */
            free(groups);
        }
        now[n_now++].n_idx = n;
    }
    for (size_t i = 0; i < fi->n_seen; i++)
        if (!find_seen(now, n_now, fi->seen[i].path)) {
            log_debug(COMPONENT, "file no longer matches, removing its targets", "job", p->job, "file",
                      fi->seen[i].path);
            push_empty(&out, fi->seen[i].path, fi->seen[i].idx, fi->seen[i].n_idx);
        }
    globfree(&gl);

    /* one update for the whole scan: the manager never sees half a refresh */
    sd_provider_update(p, out.v, out.n);
    sd_groups_free(out.v, out.n);
    for (size_t i = 0; i < fi->n_seen; i++) {
        free(fi->seen[i].path);
        free(fi->seen[i].idx);
    }
    free(fi->seen);
    fi->seen = now;
    fi->n_seen = n_now;

    watch_dirs(p);
    if (!errors)
        sd_provider_mark_success(p);
    metric_observe(m_scan_duration, NULL, (double)(sd_now_mono_ms() - t0) / 1000.0);
}

/* Drains pending inotify events; returns true when one may change what the patterns match. */
static bool drain_events(sd_provider *p)
{
    file_impl *fi = p->impl;
    bool relevant = false;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t r = read(fi->ifd, buf, sizeof buf);
        if (r <= 0)
            return relevant;
        for (char *q = buf; q < buf + r;) {
            const struct inotify_event *ev = (const struct inotify_event *)q;
            q += sizeof *ev + ev->len;
            if (ev->mask & (IN_Q_OVERFLOW | IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF) || !ev->len) {
                relevant = true;
                continue;
            }
            /* skip files no pattern can match (editor swap files, other tools' files) */
            for (size_t i = 0; i < p->cfg->u.file.n_files && !relevant; i++)
                if (fi->wds[i] == ev->wd && fnmatch(fi->bases[i], ev->name, 0) == 0)
                    relevant = true;
        }
    }
}

static void *file_thread(void *arg)
{
    sd_provider *p = arg;
    file_impl *fi = p->impl;
    int64_t interval = p->cfg->u.file.refresh_interval_ms > 0 ? p->cfg->u.file.refresh_interval_ms : 300000;
    int64_t next_refresh = sd_now_mono_ms() + interval;
    int64_t pending_since = -1; /* first relevant event not yet acted on */
    for (;;) {
        int64_t now = sd_now_mono_ms();
        int64_t deadline = next_refresh;
        if (pending_since >= 0) {
            int64_t settle = now + SETTLE_QUIET_MS;
            if (settle > pending_since + SETTLE_MAX_MS)
                settle = pending_since + SETTLE_MAX_MS;
            if (settle < deadline)
                deadline = settle;
        }
        int timeout = deadline <= now ? 0 : (deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now));
        struct pollfd pfd[2] = {{.fd = fi->stop_fd, .events = POLLIN}, {.fd = fi->ifd, .events = POLLIN}};
        int r = poll(pfd, 2, timeout);
        if (r < 0 && errno != EINTR) {
            log_error(COMPONENT, "poll failed", "job", p->job, "err", strerror(errno));
            return NULL;
        }
        if (r > 0 && pfd[0].revents)
            return NULL;
        if (r > 0 && pfd[1].revents) {
            if (drain_events(p) && pending_since < 0)
                pending_since = sd_now_mono_ms();
            continue; /* wait for the burst to end */
        }
        now = sd_now_mono_ms();
        if (pending_since >= 0 || now >= next_refresh) {
            refresh(p);
            pending_since = -1;
            next_refresh = sd_now_mono_ms() + interval;
        }
    }
}

static void file_destroy(sd_provider *p);

static int file_start(sd_provider *p, char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, metrics_create);
    const file_sd_config *fc = &p->cfg->u.file;
    file_impl *fi = calloc(1, sizeof *fi);
    if (!fi)
        abort();
    p->impl = fi;
    fi->ifd = fi->stop_fd = -1;
    size_t n = fc->n_files;
    fi->dirs = calloc(n ? n : 1, sizeof(char *));
    fi->bases = calloc(n ? n : 1, sizeof(char *));
    fi->wds = calloc(n ? n : 1, sizeof(int));
    if (!fi->dirs || !fi->bases || !fi->wds)
        abort();
    for (size_t i = 0; i < n; i++) {
        const char *slash = strrchr(fc->files[i], '/');
        if (slash) {
            size_t dl = slash == fc->files[i] ? 1 : (size_t)(slash - fc->files[i]);
            fi->dirs[i] = strndup(fc->files[i], dl);
            if (!fi->dirs[i])
                abort();
            fi->bases[i] = slash + 1;
        } else {
            fi->dirs[i] = xstrdup(".");
            fi->bases[i] = fc->files[i];
        }
        fi->wds[i] = 0; /* "was fine": the first failure is logged */
    }
    fi->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    fi->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fi->ifd < 0 || fi->stop_fd < 0) {
        snprintf(err, errlen, "cannot create file watcher: %s", strerror(errno));
        file_destroy(p);
        return -1;
    }
    refresh(p); /* also adds the watches */
    if (pthread_create(&fi->thread, NULL, file_thread, p) != 0) {
        snprintf(err, errlen, "cannot start the file watch thread");
        file_destroy(p);
        return -1;
    }
    fi->running = true;
    return 0;
}

static void file_stop(sd_provider *p)
{
    file_impl *fi = p->impl;
    if (!fi || !fi->running)
        return;
    uint64_t one = 1;
    if (write(fi->stop_fd, &one, sizeof one) < 0)
        log_error(COMPONENT, "cannot signal the file watch thread", "job", p->job, "err", strerror(errno));
    pthread_join(fi->thread, NULL);
    fi->running = false;
}

static void file_destroy(sd_provider *p)
{
    file_impl *fi = p->impl;
    if (!fi)
        return;
    if (fi->ifd >= 0)
        close(fi->ifd);
    if (fi->stop_fd >= 0)
        close(fi->stop_fd);
    for (size_t i = 0; i < p->cfg->u.file.n_files; i++)
        free(fi->dirs[i]);
    free(fi->dirs);
    free(fi->bases);
    free(fi->wds);
    for (size_t i = 0; i < fi->n_seen; i++) {
        free(fi->seen[i].path);
        free(fi->seen[i].idx);
    }
    free(fi->seen);
    sd_pool_unref(fi->pool); /* groups still stored elsewhere keep it */
    free(fi);
    p->impl = NULL;
}

const sd_provider_ops sd_file_ops = {
    .kind = "file",
    .start = file_start,
    .stop = file_stop,
    .destroy = file_destroy,
};
