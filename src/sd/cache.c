/* cache: persisted last good target groups per provider (format and identity in cache.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "sd/cache.h"
#include "sd/sd_internal.h"
#include "util/json_budget.h"
#include "util/strbuf.h"

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

/* labelset_write_json, written out CACHE_FLUSH_BYTES at a time: a group's own labels may be millions (a
 * Kubernetes object's labels map). Returns false when a write failed. */
static bool write_labels(int fd, strbuf *sb, const labelset *ls)
{
    strbuf_putc(sb, '{');
    for (size_t i = 0; i < ls->n; i++) {
        if (i)
            strbuf_putc(sb, ',');
        strbuf_json_string(sb, ls->v[i].name);
        strbuf_putc(sb, ':');
        strbuf_json_string(sb, ls->v[i].value);
        if (sb->len >= CACHE_FLUSH_BYTES) {
            if (write_all(fd, sb->buf, sb->len) != 0)
                return false;
            strbuf_reset(sb);
        }
    }
    strbuf_putc(sb, '}');
    return true;
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
        failed = !write_labels(fd, &sb, &g->labels);
        strbuf_puts(&sb, ",\"targets\":[");
        for (size_t t = 0; t < g->n_targets && !failed; t++) {
            if (t)
                strbuf_putc(&sb, ',');
            failed = !write_labels(fd, &sb, &g->targets[t]);
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

/* ---- load ---- */

static int labels_from_json(const json_t *o, labelset *ls)
{
    if (!json_is_object(o))
        return -1;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        if (!json_is_string(v))
            return -1;
        labelset_set(ls, k, json_string_value(v));
    }
    return 0;
}

static char *read_bounded(const char *path, size_t max, size_t *len, int *err_no)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err_no = errno;
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0 || (size_t)st.st_size > max) {
        *err_no = EFBIG;
        fclose(f);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf)
        abort();
    size_t r = fread(buf, 1, n, f);
    fclose(f);
    if (r != n) {
        *err_no = EIO;
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

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
    size_t len = 0;
    int e = 0;
    char *data = read_bounded(path, SD_CACHE_MAX_BYTES, &len, &e);
    if (!data) {
        if (e == ENOENT)
            return 0;
        snprintf(err, errlen, "read %s: %s", path, strerror(e));
        return -1;
    }
    json_error_t jerr;
    json_t *root = json_budget_loadb(data, len, 0, &jerr);
    free(data);
    if (!root) {
        snprintf(err, errlen, "%s:%d: %s", path, jerr.line, jerr.text);
        return -1;
    }
    const char *fj = json_string_value(json_object_get(root, "job"));
    const char *fp = json_string_value(json_object_get(root, "provider"));
    const char *fc = json_string_value(json_object_get(root, "config_sha256"));
    json_t *groups = json_object_get(root, "groups");
    if (json_integer_value(json_object_get(root, "version")) != CACHE_VERSION || !fj || !fp || !fc ||
        !json_is_array(groups)) {
        snprintf(err, errlen, "%s: not a version %d cache file", path, CACHE_VERSION);
        json_decref(root);
        return -1;
    }
    if (strcmp(fj, job) != 0 || strcmp(fp, provider) != 0 || strcmp(fc, config_hex ? config_hex : "") != 0) {
        snprintf(err, errlen, "%s: belongs to another job, provider or configuration", path);
        json_decref(root);
        return -1;
    }
    size_t n = json_array_size(groups), i;
    target_group *gs = calloc(n ? n : 1, sizeof *gs);
    if (!gs)
        abort();
    json_t *g;
    json_array_foreach(groups, i, g) {
        const char *src = json_string_value(json_object_get(g, "source"));
        json_t *targets = json_object_get(g, "targets");
        target_group_init(&gs[i], src);
        if (!src || labels_from_json(json_object_get(g, "labels"), &gs[i].labels) != 0 ||
            !json_is_array(targets)) {
            snprintf(err, errlen, "%s: group %zu is malformed", path, i);
            sd_groups_free(gs, i + 1);
            json_decref(root);
            return -1;
        }
        size_t t;
        json_t *tv;
        json_array_foreach(targets, t, tv) {
            labelset ls = LABELSET_INIT;
            if (labels_from_json(tv, &ls) != 0 || !labelset_get(&ls, "__address__")) {
                labelset_free(&ls);
                snprintf(err, errlen, "%s: group %zu target %zu is malformed", path, i, t);
                sd_groups_free(gs, i + 1);
                json_decref(root);
                return -1;
            }
            target_group_add_target(&gs[i], &ls);
            labelset_free(&ls);
        }
    }
    if (saved_at)
        *saved_at = json_number_value(json_object_get(root, "saved_at"));
    json_decref(root);
    *out = gs;
    *n_out = n;
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
