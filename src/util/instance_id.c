/* instance_id: see instance_id.h. */
#include "util/instance_id.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void format_uuid(const unsigned char b[16], char out[INSTANCE_ID_LEN])
{
    snprintf(out, INSTANCE_ID_LEN, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

void instance_id_random(char out[INSTANCE_ID_LEN])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1) {
        /* No entropy source: still unique enough per process (time, pid, address). */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, y = (uint64_t)getpid() ^ (uintptr_t)b;
        memcpy(b, &x, 8);
        memcpy(b + 8, &y, 8);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    format_uuid(b, out);
}

void instance_id_derive(const char *id, const char *name, char out[INSTANCE_ID_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        abort();
    EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
    EVP_DigestUpdate(ctx, id, strlen(id));
    EVP_DigestUpdate(ctx, "\n", 1);
    EVP_DigestUpdate(ctx, name, strlen(name));
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x50);
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
    format_uuid(md, out);
}

static int valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 8 || n >= INSTANCE_ID_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F') ||
              s[i] == '-'))
            return 0;
    return 1;
}

int instance_id_load(const char *dir, char out[INSTANCE_ID_LEN], char *err, size_t errlen)
{
    instance_id_random(out);
    if (!dir || !*dir) {
        snprintf(err, errlen, "no storage path");
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/instance_id", dir);
    FILE *f = fopen(path, "r");
    if (f) {
        char buf[128] = "";
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
            buf[--n] = 0;
        if (valid_id(buf)) {
            memcpy(out, buf, strlen(buf) + 1); /* valid_id: shorter than INSTANCE_ID_LEN */
            return 0;
        }
        snprintf(err, errlen, "%s: not an instance id; keeping it and using a temporary id", path);
        return -1;
    }
    if (errno != ENOENT) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    /* Write to a temporary file and rename, so a crash never leaves a half-written id. */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    char line[INSTANCE_ID_LEN + 1];
    int len = snprintf(line, sizeof line, "%s\n", out);
    if (write(fd, line, (size_t)len) != len || fsync(fd) != 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
