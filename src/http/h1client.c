/* h1client: see h1client.h. */
#include "http/h1client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <zlib.h>

#include "http/client.h"
#include "util/xalloc.h"

#define RECV_CHUNK 32768

typedef enum conn_state { C_IDLE = 0, C_CONNECTING, C_SENDING, C_RECEIVING } conn_state;

struct h1_client {
    char *url;
    char *target;   /* request target: path and query */
    char *host;     /* Host header value */
    union { /* a numeric IPv4 or IPv6 address (parse_url): not a 128-byte sockaddr_storage per target */
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } addr;
    socklen_t addrlen;
    char addr_text[80]; /* "127.0.0.1:80", "[::1]:80": Go's dialled address */
    int epfd, fd;
    h1_idle_budget *budget;
    bool counted_idle; /* this idle connection is counted in budget->idle */
    uint32_t events; /* current epoll interest, 0 when not registered */
    conn_state state;
    bool usable, reused, retried;
    char *req;
    size_t req_len, req_cap, sent;
    size_t req_prefix; /* the first bytes of req, the same in every request of this client (request line
                        * and Host; the target's own URL, as c->target holds it) and kept between requests; 0 until built */
    h1_parser p;
    int64_t body_limit;
    h1_sink_fn sink;
    void *sink_ctx;
    h1_space_fn space; /* NULL: recv into a stack buffer */
    z_stream *z;
    bool z_end, sink_refused;
};

/* ---- URL ------------------------------------------------------------------------------------ */

static bool path_char(unsigned char c)
{
    if (isalnum(c))
        return true;
    return strchr("-._~!$&'()*+,;=:@/%?", c) != NULL && c;
}

/* Parses an eligible URL into its parts; false when not eligible. host/target/addr may be NULL. */
static bool parse_url(const char *url, char *hostbuf, size_t hostlen, const char **target,
                      struct sockaddr_storage *ss, socklen_t *sl, char *addr_text, size_t atlen)
{
    if (strncmp(url, "http://", 7) != 0)
        return false;
    const char *a = url + 7;
    size_t alen = strcspn(a, "/?#");
    const char *rest = a + alen;
    char hostpart[64];
    const char *portp = NULL;
    size_t hlen;
    bool v6 = a[0] == '[';
    if (v6) {
        const char *close = memchr(a, ']', alen);
        if (!close)
            return false;
        hlen = (size_t)(close - a - 1);
        if (hlen == 0 || hlen >= sizeof hostpart)
            return false;
        memcpy(hostpart, a + 1, hlen);
        hostpart[hlen] = '\0';
        if (close + 1 < rest) {
            if (close[1] != ':')
                return false;
            portp = close + 2;
        }
    } else {
        const char *colon = memchr(a, ':', alen);
        hlen = colon ? (size_t)(colon - a) : alen;
        if (hlen == 0 || hlen >= sizeof hostpart)
            return false;
        memcpy(hostpart, a, hlen);
        hostpart[hlen] = '\0';
        if (colon)
            portp = colon + 1;
    }
    long port = 80;
    if (portp) {
        size_t pl = (size_t)(rest - portp);
        if (pl == 0 || pl > 5 || portp[0] == '0')
            return false;
        port = 0;
        for (size_t i = 0; i < pl; i++) {
            if (portp[i] < '0' || portp[i] > '9')
                return false;
            port = port * 10 + (portp[i] - '0');
        }
        if (port < 1 || port > 65535)
            return false;
    }
    /* canonical numeric address only: what inet_ntop gives back */
    unsigned char bin[16];
    char canon[INET6_ADDRSTRLEN];
    int af = v6 ? AF_INET6 : AF_INET;
    if (inet_pton(af, hostpart, bin) != 1 || !inet_ntop(af, bin, canon, sizeof canon) || strcmp(canon, hostpart))
        return false;
    /* path and query: characters curl passes through, no dot segments, no fragment */
    if (*rest && *rest != '/' && *rest != '?')
        return false;
    for (const char *q = rest; *q; q++) {
        unsigned char c = (unsigned char)*q;
        if (!path_char(c))
            return false;
        if (c == '%' && !(isxdigit((unsigned char)q[1]) && isxdigit((unsigned char)q[2])))
            return false;
    }
    size_t plen = strcspn(rest, "?");
    for (size_t i = 0; i < plen; i++) {
        if (rest[i] != '/')
            continue;
        const char *s = rest + i + 1;
        size_t sl2 = strcspn(s, "/?");
        if ((sl2 == 1 && s[0] == '.') || (sl2 == 2 && s[0] == '.' && s[1] == '.'))
            return false;
    }
    if (target)
        *target = rest;
    if (hostbuf) {
        /* curl's Host header: the port only when it is not the scheme's default */
        if (port == 80)
            snprintf(hostbuf, hostlen, "%s%s%s", v6 ? "[" : "", hostpart, v6 ? "]" : "");
        else
            snprintf(hostbuf, hostlen, "%s%s%s:%ld", v6 ? "[" : "", hostpart, v6 ? "]" : "", port);
    }
    if (addr_text)
        snprintf(addr_text, atlen, "%s%s%s:%ld", v6 ? "[" : "", hostpart, v6 ? "]" : "", port);
    if (ss) {
        memset(ss, 0, sizeof *ss);
        if (v6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
            s6->sin6_family = AF_INET6;
            s6->sin6_port = htons((uint16_t)port);
            memcpy(&s6->sin6_addr, bin, 16);
            *sl = sizeof *s6;
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
            s4->sin_family = AF_INET;
            s4->sin_port = htons((uint16_t)port);
            memcpy(&s4->sin_addr, bin, 4);
            *sl = sizeof *s4;
        }
    }
    return true;
}

bool h1_url_eligible(const char *url)
{
    return url && parse_url(url, NULL, 0, NULL, NULL, NULL, NULL, 0);
}

/* ---- Accept-Encoding ------------------------------------------------------------------------ */

static char accept_enc[64];
static pthread_once_t accept_once = PTHREAD_ONCE_INIT;

static void accept_init(void)
{
    /* curl's Curl_all_content_encodings order: deflate, gzip (zlib), br, zstd */
    curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    char *p = accept_enc;
    size_t left = sizeof accept_enc;
    const char *sep = "";
    int n;
    if (v->features & CURL_VERSION_LIBZ) {
        n = snprintf(p, left, "deflate, gzip");
        p += n, left -= (size_t)n, sep = ", ";
    }
    if (v->features & CURL_VERSION_BROTLI) {
        n = snprintf(p, left, "%sbr", sep);
        p += n, left -= (size_t)n, sep = ", ";
    }
#ifdef CURL_VERSION_ZSTD
    if (v->features & CURL_VERSION_ZSTD) {
        n = snprintf(p, left, "%szstd", sep);
        p += n, left -= (size_t)n;
    }
#endif
    (void)left;
}

const char *h1_accept_encoding(void)
{
    pthread_once(&accept_once, accept_init);
    return accept_enc;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

h1_client *h1_client_new(const char *url, int epfd, h1_idle_budget *budget)
{
    char host[80];
    const char *target;
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    char at[80];
    if (!url || !parse_url(url, host, sizeof host, &target, &ss, &sl, at, sizeof at))
        return NULL;
    h1_client *c = xcalloc(1, sizeof *c);
    c->url = xstrdup(url);
    c->host = xstrdup(host);
    c->target = xstrdup(*target ? target : "/");
    if (c->target[0] == '?') { /* "http://h?q": curl requests "/?q" */
        char *t = xmalloc(strlen(c->target) + 2);
        t[0] = '/';
        strcpy(t + 1, c->target);
        free(c->target);
        c->target = t;
    }
    if (sl > sizeof c->addr) /* parse_url fills in an AF_INET or AF_INET6 address */
        sl = sizeof c->addr;
    memcpy(&c->addr, &ss, sl);
    c->addrlen = sl;
    snprintf(c->addr_text, sizeof c->addr_text, "%s", at);
    c->epfd = epfd;
    c->budget = budget;
    c->fd = -1;
    c->usable = true;
    return c;
}

static void inflate_end(h1_client *c)
{
    if (c->z) {
        inflateEnd(c->z);
        free(c->z);
        c->z = NULL;
    }
}

static void leave_idle(h1_client *c)
{
    if (c->counted_idle) {
        c->budget->idle--;
        c->counted_idle = false;
    }
}

static void conn_close(h1_client *c)
{
    leave_idle(c);
    if (c->fd >= 0)
        close(c->fd); /* removes it from the epoll set */
    c->fd = -1;
    c->events = 0;
}

/* Ends the request: wipes it past the fixed prefix (credentials), back to idle. The connection stays when
 * keep is true. */
static void request_end(h1_client *c, bool keep)
{
    if (c->req && c->req_len > c->req_prefix)
        explicit_bzero(c->req + c->req_prefix, c->req_len - c->req_prefix);
    c->req_len = c->sent = 0;
    inflate_end(c);
    c->state = C_IDLE;
    if (keep && c->fd >= 0 && c->budget && !c->counted_idle) {
        if (c->budget->idle >= c->budget->max)
            keep = false; /* descriptors are bounded: this target connects afresh next time */
        else {
            c->budget->idle++;
            c->counted_idle = true;
        }
    }
    if (!keep)
        conn_close(c);
}

void h1_client_free(h1_client *c)
{
    if (!c)
        return;
    request_end(c, false);
    free(c->req);
    free(c->url);
    free(c->host);
    free(c->target);
    free(c);
}

void h1_client_set_space(h1_client *c, h1_space_fn space) { c->space = space; }
int h1_client_fd(const h1_client *c) { return c->fd; }
bool h1_client_usable(const h1_client *c) { return c->usable; }
bool h1_client_busy(const h1_client *c) { return c->state != C_IDLE; }

void h1_client_abort(h1_client *c)
{
    request_end(c, false);
}

void h1_client_idle_event(h1_client *c)
{
    if (c->state == C_IDLE)
        conn_close(c);
}

void h1_client_timeout(h1_client *c, h1c_outcome *out)
{
    request_end(c, false);
    memset(out, 0, sizeof *out);
    out->error = H1E_TIMEOUT;
}

void h1_client_describe(const h1_client *c, const h1c_outcome *o, char *out, size_t n)
{
    char url[2048];
    http_client_redact_url(c->url, url, sizeof url);
    if (o->error == H1E_TIMEOUT) {
        snprintf(out, n, "Get \"%s\": context deadline exceeded", url);
    } else if (o->error == H1E_CONNECT) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s", o->os_errno ? strerror(o->os_errno) : "connection failed");
        msg[0] = (char)tolower((unsigned char)msg[0]);
        snprintf(out, n, "Get \"%s\": dial tcp %s: connect: %s", url, c->addr_text, msg);
    } else {
        snprintf(out, n, "Get \"%s\"", url);
    }
}

/* ---- I/O ------------------------------------------------------------------------------------ */

static void want(h1_client *c, uint32_t ev)
{
    if (c->events == ev)
        return;
    struct epoll_event e = {.events = ev, .data.fd = c->fd};
    if (epoll_ctl(c->epfd, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) == 0)
        c->events = ev;
}

static void req_put(h1_client *c, const char *s, size_t n)
{
    if (c->req_len + n > c->req_cap) {
        /* A scrape's request is ~190 bytes and each target's client keeps its buffer: 256, not 512 (2.5 MiB
         * less at 10,000 targets, bench/fleet_memory.sh). */
        size_t nc = c->req_cap ? c->req_cap : 256;
        while (nc < c->req_len + n)
            nc *= 2;
        char *nb = xmalloc(nc);
        if (c->req) {
            memcpy(nb, c->req, c->req_len);
            explicit_bzero(c->req, c->req_cap);
            free(c->req);
        }
        c->req = nb;
        c->req_cap = nc;
    }
    memcpy(c->req + c->req_len, s, n);
    c->req_len += n;
}

static void req_line(h1_client *c, const char *s)
{
    req_put(c, s, strlen(s));
    req_put(c, "\r\n", 2);
}

static h1c_state fallback(h1_client *c)
{
    request_end(c, false);
    return H1C_FALLBACK;
}

static h1c_state connect_error(h1_client *c, int e, h1c_outcome *out)
{
    request_end(c, false);
    memset(out, 0, sizeof *out);
    out->error = H1E_CONNECT;
    out->os_errno = e;
    return H1C_DONE;
}

static h1c_state do_send(h1_client *c, h1c_outcome *out);

/* Opens a new connection and sends once it is up. */
static h1c_state do_connect(h1_client *c, h1c_outcome *out)
{
    conn_close(c);
    c->reused = false;
    c->fd = socket(c->addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (c->fd < 0)
        return fallback(c);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* curl's default */
    h1_parser_init(&c->p);
    if (connect(c->fd, &c->addr.sa, c->addrlen) == 0) {
        c->state = C_SENDING;
        return do_send(c, out);
    }
    if (errno == EINPROGRESS) {
        c->state = C_CONNECTING;
        want(c, EPOLLOUT);
        return H1C_RUNNING;
    }
    if (errno == ECONNREFUSED)
        return connect_error(c, errno, out);
    return fallback(c);
}

/* The reused connection failed before the response began: once, a new connection (curl does this). */
static h1c_state retry_or_fallback(h1_client *c, h1c_outcome *out)
{
    if (c->reused && !c->retried && h1_parser_pristine(&c->p)) {
        c->retried = true;
        c->sent = 0;
        return do_connect(c, out);
    }
    return fallback(c);
}

static h1c_state do_send(h1_client *c, h1c_outcome *out)
{
    while (c->sent < c->req_len) {
        ssize_t w = send(c->fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL);
        if (w > 0) {
            c->sent += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            want(c, EPOLLOUT);
            return H1C_RUNNING;
        }
        return retry_or_fallback(c, out);
    }
    c->state = C_RECEIVING;
    want(c, EPOLLIN);
    return H1C_RUNNING;
}

/* Body bytes from the parser: inflated when gzip, then to the caller's sink. */
static int body_sink(void *ctx, const char *p, size_t n)
{
    h1_client *c = ctx;
    if (!c->z) {
        if (c->sink(c->sink_ctx, p, n) == 0)
            return 0;
        c->sink_refused = true;
        return 1;
    }
    if (c->z_end)
        return 2; /* bytes after the gzip stream */
    char out[16384];
    c->z->next_in = (Bytef *)p;
    c->z->avail_in = (uInt)n;
    while (c->z->avail_in > 0 && !c->z_end) {
        c->z->next_out = (Bytef *)out;
        c->z->avail_out = sizeof out;
        int rc = inflate(c->z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
            return 2;
        size_t got = sizeof out - c->z->avail_out;
        if (got && c->sink(c->sink_ctx, out, got) != 0) {
            c->sink_refused = true;
            return 1;
        }
        if (rc == Z_STREAM_END)
            c->z_end = true;
        else if (rc == Z_BUF_ERROR && got == 0)
            return 2;
    }
    return c->z->avail_in ? 2 : 0;
}

static h1c_state finished(h1_client *c, h1c_outcome *out, bool keep)
{
    if (c->z && !c->z_end)
        return fallback(c); /* a truncated gzip stream: curl decides */
    memset(out, 0, sizeof *out);
    out->status = c->p.status;
    memcpy(out->reason, c->p.reason, sizeof out->reason);
    request_end(c, keep && !c->p.close);
    return H1C_DONE;
}

static h1c_state limit_hit(h1_client *c, h1c_outcome *out)
{
    request_end(c, false);
    memset(out, 0, sizeof *out);
    out->error = H1E_LIMIT;
    out->status = c->p.status;
    return H1C_DONE;
}

/* Parses n received bytes. RUNNING when more are needed. in_space: buf is the sink's buffer (space). */
static h1c_state feed(h1_client *c, const char *buf, size_t n, h1c_outcome *out, bool in_space)
{
    size_t off = 0;
    for (;;) {
        size_t used = 0;
        h1_result r = h1_parse(&c->p, buf + off, n - off, &used, body_sink, c);
        off += used;
        switch (r) {
        case H1_MORE:
            return H1C_RUNNING;
        case H1_HEADERS:
            if (c->p.content_length > c->body_limit)
                return limit_hit(c, out);
            if (c->p.encoding == H1_ENC_GZIP) {
                c->z = xcalloc(1, sizeof *c->z);
                c->z_end = false;
                if (inflateInit2(c->z, 16 + MAX_WBITS) != Z_OK) {
                    free(c->z);
                    c->z = NULL;
                    return fallback(c);
                }
                if (in_space && off < n) {
                    /* the inflated body goes where these bytes are: inflate a copy of them */
                    size_t rest = n - off;
                    char *copy = xmalloc(rest);
                    memcpy(copy, buf + off, rest);
                    h1c_state st = feed(c, copy, rest, out, false);
                    free(copy);
                    return st;
                }
            }
            continue; /* the body (maybe none: then H1_DONE at once) */
        case H1_DONE:
            return finished(c, out, off == n); /* bytes after the response: do not reuse */
        case H1_SINK:
            return c->sink_refused ? limit_hit(c, out) : fallback(c);
        case H1_BAD:
            return fallback(c);
        case H1_UNSUPPORTED:
            c->usable = false;
            return fallback(c);
        }
        return fallback(c);
    }
}

static h1c_state do_recv(h1_client *c, h1c_outcome *out)
{
    char stack[RECV_CHUNK];
    for (;;) {
        char *buf = NULL;
        size_t room = 0;
        bool in_space = false;
        if (c->space && !c->z) /* gzip: the inflated text must not land on the compressed bytes */
            buf = c->space(c->sink_ctx, &room);
        if (buf && room)
            in_space = true;
        else
            buf = stack, room = sizeof stack;
        ssize_t r = recv(c->fd, buf, room, 0);
        if (r > 0) {
            h1c_state s = feed(c, buf, (size_t)r, out, in_space);
            if (s != H1C_RUNNING || (size_t)r < room)
                return s;
            continue; /* a full buffer: there may be more already */
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return H1C_RUNNING;
        if (r < 0)
            return retry_or_fallback(c, out); /* reset: a retry when nothing came yet, else curl */
        /* EOF */
        if (h1_parser_pristine(&c->p))
            return retry_or_fallback(c, out);
        if (h1_parse_eof(&c->p) == H1_DONE) {
            c->p.close = true;
            return finished(c, out, false);
        }
        return fallback(c);
    }
}

h1c_state h1_client_collect(h1_client *c, h1c_outcome *out)
{
    return c->state == C_RECEIVING ? do_recv(c, out) : H1C_RUNNING;
}

h1c_state h1_client_start(h1_client *c, const char *basic_auth, const char *const *headers, int64_t body_limit,
                          h1_sink_fn sink, void *sink_ctx, h1c_outcome *out)
{
    if (c->state != C_IDLE)
        request_end(c, false);
    c->sent = 0;
    if (c->req_prefix) { /* built by the first request: the request line and Host */
        c->req_len = c->req_prefix;
    } else {
        c->req_len = 0;
        req_put(c, "GET ", 4);
        req_put(c, c->target, strlen(c->target));
        req_line(c, " HTTP/1.1");
        req_put(c, "Host: ", 6);
        req_line(c, c->host);
        c->req_prefix = c->req_len;
    }
    if (basic_auth) /* where curl puts it: after Host, before Accept-Encoding */
        req_line(c, basic_auth);
    const char *ae = h1_accept_encoding();
    if (*ae) {
        req_put(c, "Accept-Encoding: ", 17);
        req_line(c, ae);
    }
    for (size_t i = 0; headers && headers[i]; i++)
        req_line(c, headers[i]);
    req_put(c, "\r\n", 2);
    c->body_limit = body_limit;
    c->sink = sink;
    c->sink_ctx = sink_ctx;
    c->sink_refused = false;
    c->retried = false;
    inflate_end(c);
    if (c->fd < 0)
        return do_connect(c, out);
    c->reused = true;
    leave_idle(c);
    h1_parser_init(&c->p);
    c->state = C_SENDING;
    return do_send(c, out);
}

h1c_state h1_client_event(h1_client *c, uint32_t events, h1c_outcome *out)
{
    switch (c->state) {
    case C_IDLE:
        h1_client_idle_event(c);
        return H1C_RUNNING;
    case C_CONNECTING: {
        int e = 0;
        socklen_t el = sizeof e;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0)
            e = errno;
        if (e == EINPROGRESS || (e == 0 && !(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))))
            return H1C_RUNNING;
        if (e == ECONNREFUSED)
            return connect_error(c, e, out);
        if (e != 0)
            return fallback(c); /* other dial errors: curl's words */
        c->state = C_SENDING;
        return do_send(c, out);
    }
    case C_SENDING:
        return do_send(c, out);
    case C_RECEIVING:
        return do_recv(c, out);
    }
    return fallback(c);
}
