/* cache: persisted last good target groups per provider (format and identity in cache.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yajl/yajl_parse.h>
#include <openssl/evp.h>

#include "sd/cache.h"
#include "sd/sd_internal.h"
#include "util/strbuf.h"
#include "util/xalloc.h"

#define CACHE_VERSION 1

/* ---- identity ---- */

static void sha256_hex(const void *data, size_t n, char out[SD_CACHE_ID_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!EVP_Digest(data, n, md, &len, EVP_sha256(), NULL) || len != 32)
        abort();
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int sd_cache_id(const char *job, const char *provider, const sd_config *cfg, char id[SD_CACHE_ID_LEN + 1],
                char config_hex[SD_CACHE_ID_LEN + 1])
{
    char *canon = sd_config_canonical(cfg, false);
    if (!canon)
        return -1;
    if (config_hex)
        sha256_hex(canon, strlen(canon), config_hex);
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, job);
    strbuf_putc(&sb, 0);
    strbuf_puts(&sb, provider);
    strbuf_putc(&sb, 0);
    strbuf_puts(&sb, canon);
    sha256_hex(sb.buf, sb.len, id);
    strbuf_free(&sb);
    free(canon);
    return 0;
}

static bool id_valid(const char *id)
{
    if (!id || strlen(id) != SD_CACHE_ID_LEN)
        return false;
    for (const char *c = id; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

/* ---- write ---- */

#define CACHE_FLUSH_BYTES 65536

static int write_all(int fd, const char *p, size_t n);

/* labelset_write_json of a group's labels (read through their view: a frozen group's packed maps expanded
 * name by name), written out CACHE_FLUSH_BYTES at a time: they may be millions (a Kubernetes object's
 * labels map). Returns false when a write failed. */
static bool write_labels(int fd, strbuf *sb, const label_view *lv)
{
    label_view_iter it;
    const char *name, *value;
    bool first = true, ok = true;
    strbuf_putc(sb, '{');
    label_view_iter_init(&it, lv);
    while (ok && label_view_next(&it, &name, &value)) {
        if (!first)
            strbuf_putc(sb, ',');
        first = false;
        strbuf_json_string(sb, name);
        strbuf_putc(sb, ':');
        strbuf_json_string(sb, value);
        if (sb->len >= CACHE_FLUSH_BYTES) {
            if (write_all(fd, sb->buf, sb->len) != 0)
                ok = false;
            strbuf_reset(sb);
        }
    }
    label_view_iter_free(&it);
    if (ok)
        strbuf_putc(sb, '}');
    return ok;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int sd_cache_write(const char *dir, const char *id, const char *job, const char *provider,
                   const char *config_hex, const target_group *const *groups, size_t n, char *err,
                   size_t errlen)
{
    if (!id_valid(id)) {
        snprintf(err, errlen, "invalid cache id");
        return -1;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
        return -1;
    }
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s.json", dir, id);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = -1;
    if (fd < 0) {
        snprintf(err, errlen, "open %s: %s", tmp, strerror(errno));
        return -1;
    }
    /* written as it is made, CACHE_FLUSH_BYTES at a time: the text of a big provider (about its response's
     * size) is never held whole */
    strbuf sb;
    strbuf_init(&sb);
    bool failed = false;
    strbuf_printf(&sb, "{\"version\":%d,\"job\":", CACHE_VERSION);
    strbuf_json_string(&sb, job);
    strbuf_puts(&sb, ",\"provider\":");
    strbuf_json_string(&sb, provider);
    strbuf_puts(&sb, ",\"config_sha256\":");
    strbuf_json_string(&sb, config_hex ? config_hex : "");
    strbuf_printf(&sb, ",\"saved_at\":%.3f,\"groups\":[", sd_now_unix());
    for (size_t i = 0; i < n && !failed; i++) {
        const target_group *g = groups[i];
        strbuf_puts(&sb, i ? ",\n{\"source\":" : "\n{\"source\":");
        strbuf_json_string(&sb, g->source ? g->source : "");
        strbuf_puts(&sb, ",\"labels\":");
        label_view gl = target_group_labels(g);
        failed = !write_labels(fd, &sb, &gl);
        strbuf_puts(&sb, ",\"targets\":[");
        for (size_t t = 0; t < g->n_targets && !failed; t++) {
            if (t)
                strbuf_putc(&sb, ',');
            label_view tl = label_view_of(&g->targets[t]);
            failed = !write_labels(fd, &sb, &tl);
        }
        strbuf_puts(&sb, "]}");
    }
    strbuf_puts(&sb, "]}\n");
    if (failed || write_all(fd, sb.buf, sb.len) != 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    /* the rename itself must survive a crash */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    rc = 0;
out:
    strbuf_free(&sb);
    return rc;
}

/* ---- load ----
 * Read as a stream (yajl), a chunk of the file at a time, each group frozen as soon as it ends (its targets
 * packed meanwhile, sd_group_builder): memory is the groups kept plus the one being read, not the file and
 * its jansson tree (12 times the file for 178,000 small groups). Accepted: exactly the files sd_cache_write
 * writes, read as before: a root object with version 1 (an integer), job, provider and config_sha256
 * (strings) and groups (an array); every group an object with a string source, a labels object of strings
 * and a targets array of such objects, each with an __address__; other keys ignored, a repeated key's last
 * occurrence deciding. Errors, in the order the tree-based reader found them: syntax, then version and
 * identity, then the first malformed group. */

#define CACHE_MAX_DEPTH 2048 /* as jansson's parser, which read these files before */
#define CACHE_CHUNK 65536

enum { RK_OTHER, RK_VERSION, RK_JOB, RK_PROVIDER, RK_CONFIG, RK_SAVED_AT, RK_GROUPS };
enum { GK_OTHER, GK_SOURCE, GK_LABELS, GK_TARGETS };
#define NO_TARGET SIZE_MAX

typedef struct creader {
    int depth;        /* inside: the root 1, the groups array 2, a group 3, its labels or targets 4, a target 5 */
    char fatal[160];
    int rkey, gkey;   /* the pending key inside the root / a group */
    /* what the root said (the last occurrence of each key) */
    bool version_ok, groups_array;
    char *job, *provider, *config;
    double saved_at;
    /* the group being read */
    size_t index;     /* its position */
    bool in_group, gobj;
    char *source;
    bool labels_ok;   /* a labels object whose values are strings */
    bool targets_arr;
    size_t target, tbad; /* the position of the target being read; the first malformed one (NO_TARGET) */
    labelset labels;
    label *pend;      /* pairs of the labels object or the target being read, in order */
    size_t npend, pcap;
    char *pkey;       /* the pending key of those pairs */
    bool pair_bad;    /* a value that is not a string */
    sd_group_builder tb;
    char gerr[160];   /* the first malformed group */
    target_group *out;
    size_t n, cap;
} creader;

static int cr_fatal(creader *c, const char *msg)
{
    if (!c->fatal[0])
        snprintf(c->fatal, sizeof c->fatal, "%s", msg);
    return 0;
}

static void cr_free_pairs(creader *c)
{
    for (size_t i = 0; i < c->npend; i++) {
        free(c->pend[i].name);
        free(c->pend[i].value);
    }
    c->npend = 0;
    c->pair_bad = false;
}

/* The pairs read, set into ls in order (labelset_set_many); false when a value was not a string. */
static bool cr_take_pairs(creader *c, labelset *ls)
{
    if (c->pair_bad) {
        cr_free_pairs(c);
        return false;
    }
    labelset_set_many(ls, c->pend, c->npend); /* takes the strings */
    c->npend = 0;
    return true;
}

static bool in_groups(const creader *c)
{
    return c->rkey == RK_GROUPS && c->groups_array;
}

static void cr_group_start(creader *c, bool is_object)
{
    c->in_group = true;
    c->gobj = is_object;
    free(c->source);
    c->source = NULL;
    c->labels_ok = c->targets_arr = false;
    c->tbad = NO_TARGET;
    c->gkey = GK_OTHER;
    labelset_clear(&c->labels);
    cr_free_pairs(c);
    sd_gb_clear(&c->tb);
}

static void cr_group_end(creader *c)
{
    size_t i = c->index++;
    c->in_group = false;
    if (!c->gerr[0]) {
        if (!c->gobj || !c->source || !c->labels_ok || !c->targets_arr)
            snprintf(c->gerr, sizeof c->gerr, "group %zu is malformed", i);
        else if (c->tbad != NO_TARGET)
            snprintf(c->gerr, sizeof c->gerr, "group %zu target %zu is malformed", i, c->tbad);
    }
    if (!c->gerr[0]) {
        if (c->n == c->cap) {
            c->cap = c->cap ? 2 * c->cap : 16;
            c->out = xrealloc(c->out, c->cap * sizeof *c->out);
        }
        sd_gb_freeze(&c->tb, c->source, &c->labels, &c->out[c->n++]);
    }
    labelset_clear(&c->labels);
    sd_gb_clear(&c->tb);
}

static void cr_bad_target(creader *c)
{
    if (c->tbad == NO_TARGET)
        c->tbad = c->target;
}

/* Where a label's value is read: inside the group's labels object, or inside one of its targets. */
static bool in_pairs(const creader *c)
{
    return c->in_group && ((c->depth == 4 && c->gkey == GK_LABELS && c->labels_ok) ||
                           (c->depth == 5 && c->gkey == GK_TARGETS && c->targets_arr));
}

/* A value that is not a container: str its text (NULL for another kind). */
static int cr_scalar(creader *c, const char *str, size_t len, bool is_int, long long iv, bool is_num, double dv)
{
    if (c->depth == 1) {
        switch (c->rkey) {
        case RK_VERSION: c->version_ok = is_int && iv == CACHE_VERSION; break;
        case RK_JOB: free(c->job); c->job = str ? xstrndup(str, len) : NULL; break;
        case RK_PROVIDER: free(c->provider); c->provider = str ? xstrndup(str, len) : NULL; break;
        case RK_CONFIG: free(c->config); c->config = str ? xstrndup(str, len) : NULL; break;
        case RK_SAVED_AT: c->saved_at = is_num ? dv : 0; break;
        case RK_GROUPS: c->groups_array = false; break;
        default: break;
        }
    } else if (c->depth == 2 && in_groups(c)) { /* a group that is not an object */
        cr_group_start(c, false);
        cr_group_end(c);
    } else if (c->depth == 3 && c->in_group) {
        if (c->gkey == GK_SOURCE) {
            free(c->source);
            c->source = str ? xstrndup(str, len) : NULL;
        } else if (c->gkey == GK_LABELS) {
            c->labels_ok = false;
        } else if (c->gkey == GK_TARGETS) {
            c->targets_arr = false;
        }
    } else if (c->depth == 4 && c->in_group && c->gkey == GK_TARGETS && c->targets_arr) {
        cr_bad_target(c); /* a target that is not an object */
        c->target++;
    } else if (in_pairs(c)) {
        if (!str) {
            c->pair_bad = true;
        } else if (c->pkey) {
            if (c->npend == c->pcap) {
                c->pcap = c->pcap ? 2 * c->pcap : 16;
                c->pend = xrealloc(c->pend, c->pcap * sizeof *c->pend);
            }
            c->pend[c->npend++] = (label){c->pkey, xstrndup(str, len)};
            c->pkey = NULL;
        }
    }
    return 1;
}

static int cr_null(void *ctx)
{
    return cr_scalar(ctx, NULL, 0, false, 0, false, 0);
}

static int cr_bool(void *ctx, int b)
{
    (void)b;
    return cr_scalar(ctx, NULL, 0, false, 0, false, 0);
}

static int cr_number(void *ctx, const char *s, size_t len)
{
    creader *c = ctx;
    bool is_int = false;
    long long iv = 0;
    const char *bad = sd_json_number_check(s, len, &is_int, &iv);
    if (bad)
        return cr_fatal(c, bad);
    char buf[64];
    snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), s);
    return cr_scalar(c, NULL, 0, is_int, iv, true, is_int ? (double)iv : strtod(buf, NULL));
}

static int cr_string(void *ctx, const unsigned char *s, size_t len)
{
    creader *c = ctx;
    if (memchr(s, 0, len))
        return cr_fatal(c, "\\u0000 is not allowed without JSON_ALLOW_NUL");
    return cr_scalar(c, (const char *)s, len, false, 0, false, 0);
}

static int cr_open(void *ctx, bool is_map)
{
    creader *c = ctx;
    if (c->depth + 1 > CACHE_MAX_DEPTH)
        return cr_fatal(c, "maximum parsing depth reached");
    if (c->depth == 1 && c->rkey == RK_GROUPS) {
        c->groups_array = !is_map; /* a repeated "groups": the last one decides */
        sd_groups_free(c->out, c->n);
        c->out = NULL;
        c->n = c->cap = c->index = 0;
        c->gerr[0] = 0;
    } else if (c->depth == 2 && in_groups(c)) {
        cr_group_start(c, is_map);
    } else if (c->depth == 3 && c->in_group) {
        if (c->gkey == GK_LABELS) {
            c->labels_ok = is_map;
            labelset_clear(&c->labels);
            cr_free_pairs(c);
        } else if (c->gkey == GK_TARGETS) {
            c->targets_arr = !is_map;
            c->target = 0;
            c->tbad = NO_TARGET;
            sd_gb_clear(&c->tb);
        }
    } else if (c->depth == 4 && c->in_group && c->gkey == GK_TARGETS && c->targets_arr) {
        if (!is_map)
            cr_bad_target(c);
        cr_free_pairs(c);
    } else if (in_pairs(c)) {
        c->pair_bad = true; /* a value that is a container */
    }
    c->depth++;
    return 1;
}

static int cr_start_map(void *ctx)
{
    return cr_open(ctx, true);
}

static int cr_start_array(void *ctx)
{
    return cr_open(ctx, false);
}

static int cr_close(void *ctx, bool is_map)
{
    creader *c = ctx;
    c->depth--;
    if (c->depth == 2 && in_groups(c) && c->in_group) {
        cr_group_end(c);
    } else if (c->depth == 3 && c->in_group && c->gkey == GK_LABELS && c->labels_ok && is_map) {
        labelset_clear(&c->labels);
        if (!cr_take_pairs(c, &c->labels))
            c->labels_ok = false;
    } else if (c->depth == 4 && c->in_group && c->gkey == GK_TARGETS && c->targets_arr) {
        if (is_map) {
            labelset t = LABELSET_INIT;
            if (!cr_take_pairs(c, &t) || !labelset_get(&t, "__address__"))
                cr_bad_target(c);
            else if (c->tbad == NO_TARGET)
                sd_gb_add_target(&c->tb, &t);
            labelset_free(&t);
        }
        c->target++;
    }
    return 1;
}

static int cr_end_map(void *ctx)
{
    return cr_close(ctx, true);
}

static int cr_end_array(void *ctx)
{
    return cr_close(ctx, false);
}

static int cr_key(void *ctx, const unsigned char *k, size_t len)
{
    creader *c = ctx;
    if (memchr(k, 0, len))
        return cr_fatal(c, "NUL byte in object key not supported");
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(k, lit, len) == 0)
    if (c->depth == 1) {
        c->rkey = IS("version") ? RK_VERSION : IS("job") ? RK_JOB : IS("provider") ? RK_PROVIDER
                : IS("config_sha256") ? RK_CONFIG : IS("saved_at") ? RK_SAVED_AT : IS("groups") ? RK_GROUPS
                : RK_OTHER;
    } else if (c->depth == 3 && c->in_group) {
        c->gkey = IS("source") ? GK_SOURCE : IS("labels") ? GK_LABELS : IS("targets") ? GK_TARGETS : GK_OTHER;
    } else if (in_pairs(c)) {
        free(c->pkey);
        c->pkey = xstrndup((const char *)k, len);
    }
#undef IS
    return 1;
}

static const yajl_callbacks cr_callbacks = {
    .yajl_null = cr_null,
    .yajl_boolean = cr_bool,
    .yajl_number = cr_number,
    .yajl_string = cr_string,
    .yajl_start_map = cr_start_map,
    .yajl_map_key = cr_key,
    .yajl_end_map = cr_end_map,
    .yajl_start_array = cr_start_array,
    .yajl_end_array = cr_end_array,
};

int sd_cache_load(const char *dir, const char *id, const char *job, const char *provider,
                  const char *config_hex, target_group **out, size_t *n_out, double *saved_at, char *err,
                  size_t errlen)
{
    if (!id_valid(id)) {
        snprintf(err, errlen, "invalid cache id");
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.json", dir, id);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "read %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0 || (size_t)st.st_size > SD_CACHE_MAX_BYTES) {
        snprintf(err, errlen, "read %s: %s", path, strerror(EFBIG));
        fclose(f);
        return -1;
    }
    creader c;
    memset(&c, 0, sizeof c);
    yajl_handle h = yajl_alloc(&cr_callbacks, NULL, &c);
    if (!h)
        abort();
    char *buf = xmalloc(CACHE_CHUNK);
    yajl_status ys = yajl_status_ok;
    size_t r;
    bool io_error = false;
    while (ys == yajl_status_ok && (r = fread(buf, 1, CACHE_CHUNK, f)) > 0)
        ys = yajl_parse(h, (const unsigned char *)buf, r);
    io_error = ferror(f);
    if (ys == yajl_status_ok && !io_error)
        ys = yajl_complete_parse(h);
    fclose(f);
    int rc = -1;
    if (io_error) {
        snprintf(err, errlen, "read %s: %s", path, strerror(EIO));
    } else if (ys != yajl_status_ok) {
        unsigned char *msg = c.fatal[0] ? NULL : yajl_get_error(h, 0, NULL, 0);
        snprintf(err, errlen, "%s: %s", path, c.fatal[0] ? c.fatal : (const char *)msg);
        if (msg)
            yajl_free_error(h, msg);
    } else if (!c.version_ok || !c.job || !c.provider || !c.config || !c.groups_array) {
        snprintf(err, errlen, "%s: not a version %d cache file", path, CACHE_VERSION);
    } else if (strcmp(c.job, job) != 0 || strcmp(c.provider, provider) != 0 ||
               strcmp(c.config, config_hex ? config_hex : "") != 0) {
        snprintf(err, errlen, "%s: belongs to another job, provider or configuration", path);
    } else if (c.gerr[0]) {
        snprintf(err, errlen, "%s: %s", path, c.gerr);
    } else {
        rc = 1;
    }
    yajl_free(h);
    free(buf);
    free(c.job);
    free(c.provider);
    free(c.config);
    free(c.source);
    free(c.pkey);
    cr_free_pairs(&c);
    free(c.pend);
    sd_gb_free(&c.tb);
    labelset_free(&c.labels);
    if (rc != 1) {
        sd_groups_free(c.out, c.n);
        return -1;
    }
    if (saved_at)
        *saved_at = c.saved_at;
    *out = c.out ? c.out : xcalloc(1, sizeof **out);
    *n_out = c.n;
    return 1;
}

void sd_cache_remove(const char *dir, const char *id)
{
    if (!id_valid(id))
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.json", dir, id);
    unlink(path);
}

size_t sd_cache_gc(const char *dir, const char *const *keep, size_t n_keep)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t removed = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *name = de->d_name;
        size_t len = strlen(name);
        char id[SD_CACHE_ID_LEN + 1];
        if (len < SD_CACHE_ID_LEN + 5)
            continue;
        memcpy(id, name, SD_CACHE_ID_LEN);
        id[SD_CACHE_ID_LEN] = 0;
        const char *rest = name + SD_CACHE_ID_LEN;
        bool tmp = strcmp(rest, ".json.tmp") == 0;
        if (!id_valid(id) || (strcmp(rest, ".json") != 0 && !tmp))
            continue; /* not ours: leave it */
        bool kept = false; /* a kept id's temp file may be a write in progress */
        for (size_t i = 0; i < n_keep && !kept; i++)
            kept = strcmp(keep[i], id) == 0;
        if (kept)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (unlink(path) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}
