/* exception_server: a fake exception target for tests and benchmarks (libmicrohttpd). One port, many
 * behaviours chosen by path:
 *   /-/exceptions, /ok       a Periskop payload (--payload FILE, else generated; ?size=BYTES pads it)
 *   /t/<i>                   benchmark endpoint i: a generated payload of --payload-size bytes whose
 *                            target_uuid is derived from i
 *   /m/<i>                   benchmark endpoint i in the Prometheus text format (about --payload-size
 *                            bytes of counters), for comparing with Prometheus scraping the same targets
 *   /hang?ms=N               sleeps N ms (default 60000) before answering (a hung target)
 *   /slow?ms=N               sleeps N ms (default 300), then serves the payload
 *   /status/<code>           answers <code> with a short body
 *   /garbage                 200 with bytes that are not JSON (including NUL and 0xff)
 *   /huge?mb=N               streams N MiB (default 50) of JSON-ish filler, chunked (no Content-Length);
 *                            ?length=1 sends a Content-Length
 *   /redirect                302 to /ok
 *   /echo                    200 with the request headers, one "Name: value" per line
 *   /stats?path=P            {"connections":C,"requests":R,"path_requests":N,"bytes_sent":B}
 * Flags: --port N (0 = any; the chosen port is printed on stdout as "port=N"), --payload FILE,
 *        --payload-size BYTES (default 20000), --threads N (thread pool + epoll instead of a thread per
 *        connection: for many keep-alive connections; a /hang then blocks one pool thread),
 *        --max-connections N (default 20000).
 * Runs until SIGTERM/SIGINT. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#if MHD_VERSION < 0x00097002
typedef int MHD_Result;
#else
typedef enum MHD_Result MHD_Result;
#endif

static atomic_ullong n_connections, n_requests, bytes_sent;
static atomic_int stopping; /* set once SIGTERM/SIGINT arrived: slow handlers give up */
static char *payload;        /* --payload file contents, or NULL */
static size_t payload_len;
static size_t payload_size = 20000;

#define MAX_PATHS 4096
static pthread_mutex_t paths_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char *path;
    unsigned long long n;
} paths[MAX_PATHS];
static size_t n_paths;

static void count_path(const char *p)
{
    pthread_mutex_lock(&paths_mu);
    size_t i;
    for (i = 0; i < n_paths; i++)
        if (!strcmp(paths[i].path, p))
            break;
    if (i == n_paths && n_paths < MAX_PATHS)
        paths[n_paths++].path = strdup(p);
    if (i < n_paths)
        paths[i].n++;
    pthread_mutex_unlock(&paths_mu);
}

static unsigned long long path_count(const char *p)
{
    unsigned long long n = 0;
    pthread_mutex_lock(&paths_mu);
    for (size_t i = 0; i < n_paths; i++)
        if (!strcmp(paths[i].path, p))
            n = paths[i].n;
    pthread_mutex_unlock(&paths_mu);
    return n;
}

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void bput(buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < b->len + n + 1)
            c *= 2;
        b->p = realloc(b->p, c);
        if (!b->p)
            abort();
        b->cap = c;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void bprintf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(buf *b, const char *fmt, ...)
{
    char tmp[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof tmp - 1)
        n = sizeof tmp - 1;
    bput(b, tmp, (size_t)n);
}

/* A Periskop payload of about `size` bytes (at least one aggregate). */
static void gen_payload(buf *b, unsigned long id, size_t size)
{
    bprintf(b, "{\"target_uuid\":\"00000000-0000-4000-8000-%012lx\",\"aggregated_errors\":[", id);
    for (int i = 0;; i++) {
        if (i)
            bput(b, ",", 1);
        bprintf(b,
                "{\"aggregation_key\":\"*errors.errorString@%08x\",\"total_count\":%d,\"severity\":\"error\","
                "\"created_at\":\"2024-03-02T09:14:07.512Z\",\"latest_errors\":[{\"error\":{\"class\":"
                "\"*errors.errorString\",\"message\":\"failure number %d\",\"stacktrace\":["
                "\"/app/main.go:%d\",\"\\tmain.handler: return err\"],\"cause\":null},"
                "\"uuid\":\"11111111-2222-4333-8444-%012d\",\"timestamp\":\"2024-03-02T11:02:44.901Z\","
                "\"severity\":\"error\",\"http_context\":{\"request_method\":\"GET\",\"request_url\":"
                "\"http://api.internal/users/%d\",\"request_headers\":{\"Accept\":\"application/json\"},"
                "\"request_body\":null}}]}",
                0x1000 + i, 10 + i, i, 40 + i, i, i);
        if (b->len + 3 >= size)
            break;
    }
    bput(b, "]}", 2);
}

static MHD_Result send_buf(struct MHD_Connection *c, unsigned code, const char *data, size_t len,
                           const char *ctype)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (ctype)
        MHD_add_response_header(r, "Content-Type", ctype);
    MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    bytes_sent += len;
    return ret;
}

static MHD_Result send_payload(struct MHD_Connection *c, unsigned long id, size_t size)
{
    if (payload && size == 0)
        return send_buf(c, 200, payload, payload_len, "application/json");
    buf b = {0};
    gen_payload(&b, id, size ? size : 2000);
    MHD_Result r = send_buf(c, 200, b.p, b.len, "application/json");
    free(b.p);
    return r;
}

/* A Prometheus text exposition of about `size` bytes: counters with a few labels. */
static MHD_Result send_metrics(struct MHD_Connection *c, unsigned long id, size_t size)
{
    buf b = {0};
    bprintf(&b, "# HELP bench_events_total Benchmark counter.\n# TYPE bench_events_total counter\n");
    for (unsigned long k = 0; b.len < size; k++)
        bprintf(&b, "bench_events_total{target=\"%lu\",handler=\"/api/v1/items/%lu\",code=\"500\"} %lu\n", id, k,
                k * 7 + id);
    MHD_Result r = send_buf(c, 200, b.p, b.len, "text/plain; version=0.0.4");
    free(b.p);
    return r;
}

static void sleep_ms(long ms)
{
    while (ms > 0 && !stopping) {
        long step = ms > 20 ? 20 : ms;
        struct timespec ts = {0, step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

static long qlong(struct MHD_Connection *c, const char *name, long def)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    return v ? strtol(v, NULL, 10) : def;
}

typedef struct huge_state {
    uint64_t left;
} huge_state;

static ssize_t huge_reader(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    huge_state *h = cls;
    if (h->left == 0 || stopping)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = max < h->left ? max : (size_t)h->left;
    for (size_t i = 0; i < n; i++)
        out[i] = "[\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"],"[i % 33];
    h->left -= n;
    bytes_sent += n;
    return (ssize_t)n;
}

static MHD_Result echo_header(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
    (void)kind;
    buf *b = cls;
    bprintf(b, "%s: %s\n", k, v ? v : "");
    return MHD_YES;
}

static MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                          const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)method;
    (void)version;
    (void)upload;
    (void)upload_size;
    static int first;
    if (*con_cls == NULL) {
        *con_cls = &first;
        n_requests++;
        count_path(url);
        return MHD_YES;
    }
    if (!strcmp(url, "/-/exceptions") || !strcmp(url, "/ok"))
        return send_payload(c, 1, (size_t)qlong(c, "size", 0));
    if (!strncmp(url, "/t/", 3))
        return send_payload(c, strtoul(url + 3, NULL, 10), payload_size);
    if (!strncmp(url, "/m/", 3))
        return send_metrics(c, strtoul(url + 3, NULL, 10), payload_size);
    if (!strcmp(url, "/hang")) {
        sleep_ms(qlong(c, "ms", 60000));
        return send_buf(c, 200, "late\n", 5, "text/plain");
    }
    if (!strcmp(url, "/slow")) {
        sleep_ms(qlong(c, "ms", 300));
        return send_payload(c, 2, 0);
    }
    if (!strncmp(url, "/status/", 8)) {
        long code = strtol(url + 8, NULL, 10);
        if (code < 100 || code > 999)
            code = 500;
        return send_buf(c, (unsigned)code, "status\n", 7, "text/plain");
    }
    if (!strcmp(url, "/redirect")) {
        struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Location", "/ok");
        MHD_Result ret = MHD_queue_response(c, 302, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (!strcmp(url, "/garbage")) {
        static const char g[] = "\x00\xff<html>not json{{{\x01\x02 garbage \xfe]]";
        return send_buf(c, 200, g, sizeof g - 1, "application/json");
    }
    if (!strcmp(url, "/huge")) {
        huge_state *h = malloc(sizeof *h);
        h->left = (uint64_t)qlong(c, "mb", 50) * 1024 * 1024;
        uint64_t total = qlong(c, "length", 0) ? h->left : MHD_SIZE_UNKNOWN;
        struct MHD_Response *r = MHD_create_response_from_callback(total, 64 * 1024, huge_reader, h, free);
        MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (!strcmp(url, "/echo")) {
        buf b = {0};
        bput(&b, "", 0);
        MHD_get_connection_values(c, MHD_HEADER_KIND, echo_header, &b);
        MHD_Result r = send_buf(c, 200, b.p, b.len, "text/plain");
        free(b.p);
        return r;
    }
    if (!strcmp(url, "/stats")) {
        const char *p = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "path");
        char out[256];
        int n = snprintf(out, sizeof out,
                         "{\"connections\":%llu,\"requests\":%llu,\"path_requests\":%llu,\"bytes_sent\":%llu}\n",
                         (unsigned long long)n_connections, (unsigned long long)n_requests,
                         p ? path_count(p) : 0ULL, (unsigned long long)bytes_sent);
        return send_buf(c, 200, out, (size_t)n, "application/json");
    }
    return send_buf(c, 404, "not found\n", 10, "text/plain");
}

static void notify_conn(void *cls, struct MHD_Connection *c, void **socket_ctx,
                        enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    (void)c;
    (void)socket_ctx;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        n_connections++;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    buf b = {0};
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        bput(&b, tmp, n);
    fclose(f);
    if (!b.p)
        bput(&b, "", 0);
    *len = b.len;
    return b.p;
}

int main(int argc, char **argv)
{
    unsigned port = 0, threads = 0, max_conn = 20000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--port") && v) {
            port = (unsigned)atoi(v);
            i++;
        } else if (!strcmp(a, "--payload") && v) {
            payload = read_file(v, &payload_len);
            if (!payload) {
                fprintf(stderr, "exception_server: cannot read %s: %s\n", v, strerror(errno));
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--payload-size") && v) {
            payload_size = (size_t)atol(v);
            i++;
        } else if (!strcmp(a, "--threads") && v) {
            threads = (unsigned)atoi(v);
            i++;
        } else if (!strcmp(a, "--max-connections") && v) {
            max_conn = (unsigned)atoi(v);
            i++;
        } else {
            fprintf(stderr, "usage: exception_server [--port N] [--payload FILE] [--payload-size BYTES] "
                            "[--threads N] [--max-connections N]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    /* SIGTERM/SIGINT blocked before libmicrohttpd starts its threads (they inherit the mask) and taken
     * with sigwait below: with a handler and pause() the signal could land on an MHD thread, or between
     * the flag test and pause(), and the main thread slept forever (a test's waitpid then hung until
     * criterion's timeout; seen once in CI under ASan). */
    sigset_t stop_sigs;
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGTERM);
    sigaddset(&stop_sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_sigs, NULL);

    unsigned flags = getenv("EXCEPTION_SERVER_DEBUG") ? MHD_USE_ERROR_LOG : 0;
    struct MHD_Daemon *d;
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(0x7f000001);
    if (threads > 0)
        d = MHD_start_daemon(flags | MHD_USE_EPOLL_INTERNAL_THREAD, (uint16_t)port, NULL, NULL, handler, NULL,
                             MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_THREAD_POOL_SIZE, threads,
                             MHD_OPTION_CONNECTION_LIMIT, max_conn, MHD_OPTION_CONNECTION_TIMEOUT, 0U,
                             MHD_OPTION_NOTIFY_CONNECTION, notify_conn, NULL, MHD_OPTION_LISTEN_BACKLOG_SIZE,
                             4096U, MHD_OPTION_END);
    else
        d = MHD_start_daemon(flags | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
                             (uint16_t)port, NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &addr,
                             MHD_OPTION_CONNECTION_LIMIT, max_conn, MHD_OPTION_CONNECTION_TIMEOUT, 0U,
                             MHD_OPTION_NOTIFY_CONNECTION, notify_conn, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "exception_server: cannot listen on 127.0.0.1:%u\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("port=%u\n", info ? info->port : port);
    fflush(stdout);
    int sig;
    sigwait(&stop_sigs, &sig);
    stopping = 1;
    MHD_stop_daemon(d);
    return 0;
}
