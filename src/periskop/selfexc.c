/* selfexc: see selfexc.h. */
#include "periskop/selfexc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "util/strbuf.h"

typedef struct sx_agg {
    char *key;
    uint64_t count;
    payload_severity sev;
    int64_t created_ms;
    payload_occurrence *ring[SELFEXC_MAX_OCCURRENCES]; /* oldest at head */
    size_t head, n;
} sx_agg;

struct selfexc {
    pthread_mutex_t mu;
    char uuid[40];
    sx_agg *v;
    size_t n, cap;
    uint64_t dropped;
};

void selfexc_uuid4(char *buf)
{
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof(b)) {
        ssize_t r = getrandom(b + got, sizeof(b) - got, 0);
        if (r <= 0) { /* no entropy source: fall back to time and address, uniqueness is what matters */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(uintptr_t)buf;
            for (; got < sizeof(b); got++, x = x * 6364136223846793005ULL + 1442695040888963407ULL)
                b[got] = (unsigned char)(x >> 56);
            break;
        }
        got += (size_t)r;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
             b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

selfexc *selfexc_new(void)
{
    selfexc *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    pthread_mutex_init(&c->mu, NULL);
    selfexc_uuid4(c->uuid);
    return c;
}

void selfexc_free(selfexc *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        for (size_t k = 0; k < c->v[i].n; k++)
            payload_occurrence_unref(c->v[i].ring[(c->v[i].head + k) % SELFEXC_MAX_OCCURRENCES]);
        free(c->v[i].key);
    }
    free(c->v);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

const char *selfexc_target_uuid(const selfexc *c)
{
    return c->uuid;
}

uint64_t selfexc_dropped(selfexc *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t d = c->dropped;
    pthread_mutex_unlock(&c->mu);
    return d;
}

void selfexc_report_at(selfexc *c, int64_t now_ms, const char *key, const char *class_name, const char *message,
                       payload_severity sev, const char *http_method, const char *http_url)
{
    char uuid[40];
    selfexc_uuid4(uuid);
    /* Built outside the lock: allocation is the slow part. */
    payload_occurrence *o = payload_occurrence_new(class_name ? class_name : "", message ? message : "", uuid,
                                                   now_ms, sev, http_method, http_url ? http_url : "");
    pthread_mutex_lock(&c->mu);
    sx_agg *a = NULL;
    for (size_t i = 0; i < c->n && !a; i++) /* few keys: a linear scan is cheapest */
        if (strcmp(c->v[i].key, key) == 0)
            a = &c->v[i];
    if (!a) {
        if (c->n >= SELFEXC_MAX_KEYS) {
            c->dropped++;
            pthread_mutex_unlock(&c->mu);
            payload_occurrence_unref(o);
            return;
        }
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 8;
            c->v = realloc(c->v, c->cap * sizeof(sx_agg));
            if (!c->v)
                abort();
        }
        a = &c->v[c->n++];
        memset(a, 0, sizeof(*a));
        a->key = strdup(key);
        if (!a->key)
            abort();
        a->created_ms = now_ms;
    }
    a->count++;
    a->sev = sev; /* like periskop-scala: the aggregate carries the latest occurrence's severity */
    if (a->n == SELFEXC_MAX_OCCURRENCES) {
        payload_occurrence_unref(a->ring[a->head]);
        a->ring[a->head] = o;
        a->head = (a->head + 1) % SELFEXC_MAX_OCCURRENCES;
    } else {
        a->ring[(a->head + a->n++) % SELFEXC_MAX_OCCURRENCES] = o;
    }
    pthread_mutex_unlock(&c->mu);
}

void selfexc_report(selfexc *c, const char *key, const char *class_name, const char *message, payload_severity sev,
                    const char *http_method, const char *http_url)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    selfexc_report_at(c, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, key, class_name, message, sev,
                      http_method, http_url);
}

char *selfexc_export(selfexc *c, size_t *len)
{
    strbuf sb;
    strbuf_init(&sb);
    pthread_mutex_lock(&c->mu);
    strbuf_puts(&sb, "{\"target_uuid\":");
    strbuf_json_string(&sb, c->uuid);
    strbuf_puts(&sb, ",\"aggregated_errors\":[");
    for (size_t i = 0; i < c->n; i++) {
        const sx_agg *a = &c->v[i];
        char t[40];
        payload_format_time(a->created_ms, t, sizeof(t));
        if (i)
            strbuf_putc(&sb, ',');
        strbuf_puts(&sb, "{\"aggregation_key\":");
        strbuf_json_string(&sb, a->key);
        strbuf_printf(&sb, ",\"total_count\":%llu,\"severity\":\"%s\",\"created_at\":\"%s\",\"latest_errors\":[",
                      (unsigned long long)a->count, payload_severity_name(a->sev), t);
        for (size_t k = 0; k < a->n; k++) {
            if (k)
                strbuf_putc(&sb, ',');
            payload_occurrence_write_json(&sb, a->ring[(a->head + k) % SELFEXC_MAX_OCCURRENCES],
                                          PAYLOAD_SHAPE_CLIENT);
        }
        strbuf_puts(&sb, "]}");
    }
    strbuf_puts(&sb, "]}");
    pthread_mutex_unlock(&c->mu);
    size_t n;
    char *r = strbuf_detach(&sb, &n);
    strbuf_free(&sb);
    if (len)
        *len = n;
    return r;
}
