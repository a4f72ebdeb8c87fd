/* server_conn: http/server's connections and listening sockets: the header deadline of every connection and
 * the reaper thread that enforces it, binding the listen address, starting libmicrohttpd, and switching TLS
 * on or off by replacing the daemon (the old one is stopped once idle). See server.c. */
#include "http/server_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

int64_t http_server_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Moves conn's connection to phase (see conn_track) and sets its deadline. */
void http_server_conn_phase(http_server *s, struct MHD_Connection *conn, int phase)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_track *t = ci ? ci->socket_context : NULL;
    if (!t)
        return;
    int64_t now = http_server_mono_ms(), read_ms = (int64_t)s->opts.timeout_s * 1000;
    pthread_mutex_lock(&s->conns_mu);
    if (phase == CT_HEADERS) { /* the request line of a request after a keep-alive wait */
        if (t->phase == CT_IDLE) {
            t->start_ms = now;
            t->deadline_ms = now + (int64_t)s->opts.header_timeout_s * 1000;
            t->phase = CT_HEADERS;
        }
    } else {
        t->phase = phase;
        t->deadline_ms = phase == CT_BODY ? t->start_ms + read_ms : phase == CT_IDLE ? now + read_ms : 0;
    }
    pthread_mutex_unlock(&s->conns_mu);
}

/* libmicrohttpd's URI logger: a request line is in. After a keep-alive wait, its headers have the header
 * timeout from now (Go: ReadHeaderTimeout from the request's first bytes). Returns the request's initial
 * con_cls (none). */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)uri;
    http_server *s = cls;
    http_server_conn_phase(s, conn, CT_HEADERS);
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned int)s->opts.header_timeout_s);
    return NULL;
}

static const char *const no_labels[] = {NULL};

/* The reaper: about every 250 ms, shuts down the sockets of connections past their header deadline.
 * Under conns_mu, so a connection cannot be closed (its fd reused) meanwhile: libmicrohttpd tells
 * on_connection CLOSED before it closes the socket, and that waits for the mutex. */
static void *reaper_main(void *arg)
{
    http_server *s = arg;
    pthread_mutex_lock(&s->conns_mu);
    while (!s->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&s->reaper_cv, &s->conns_mu, &ts);
        int64_t now = http_server_mono_ms();
        for (conn_track *t = s->conns; t && !s->stopping; t = t->next) {
            if (!t->deadline_ms || now < t->deadline_ms)
                continue;
            t->deadline_ms = 0; /* once */
            /* counted before the socket is shut: a client that sees its connection closed sees the count
             * too (test_api_server's read_timeout_cuts_a_dribbled_body reads it right after) */
            if (t->phase == CT_HEADERS)
                metric_add(metric_family_get("lookout_http_header_timeouts_total", METRIC_COUNTER,
                                             "Connections closed because their request headers were not complete "
                                             "within --web.read-header-timeout.",
                                             0, no_labels),
                           no_labels, 1);
            else if (t->phase == CT_BODY)
                metric_add(metric_family_get("lookout_http_read_timeouts_total", METRIC_COUNTER,
                                             "Connections closed because a request (headers and body) was not "
                                             "read within --web.read-timeout.",
                                             0, no_labels),
                           no_labels, 1);
            shutdown(t->fd, SHUT_RDWR);
        }
    }
    pthread_mutex_unlock(&s->conns_mu);
    return NULL;
}

/* A new connection must complete its request headers within the header timeout (a total deadline, see
 * conn_track; libmicrohttpd's idle timeout is set to the same value too). */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    http_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned int)s->opts.header_timeout_s);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_track *t = calloc(1, sizeof *t);
        if (!t || !ci)
            abort();
        t->fd = ci->connect_fd;
        t->start_ms = http_server_mono_ms();
        t->phase = CT_HEADERS;
        t->deadline_ms = t->start_ms + (int64_t)s->opts.header_timeout_s * 1000;
        pthread_mutex_lock(&s->conns_mu);
        t->next = s->conns;
        if (s->conns)
            s->conns->prev = t;
        s->conns = t;
        pthread_mutex_unlock(&s->conns_mu);
        /* libmicrohttpd made the GnuTLS session but has not started the handshake yet: the TLS settings of
         * this connection are decided now. */
        const union MHD_ConnectionInfo *ti = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        if (s->tls_setup && ti && ti->tls_session)
            t->tls = s->tls_setup(s->tls_ctx, ti->tls_session);
        *socket_context = t;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        conn_track *t = *socket_context;
        if (t->tls && s->tls_release)
            s->tls_release(s->tls_ctx, t->tls);
        pthread_mutex_lock(&s->conns_mu);
        if (t->prev)
            t->prev->next = t->next;
        else
            s->conns = t->next;
        if (t->next)
            t->next->prev = t->prev;
        pthread_mutex_unlock(&s->conns_mu);
        free(t);
        *socket_context = NULL;
    }
}

void http_server_on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_debug("web", "libmicrohttpd", "detail", msg);
}

int http_split_host_port(const char *addr, char *host, size_t hostlen, char *port, size_t portlen, char *err,
                         size_t errlen)
{
    const char *colon = strrchr(addr, ':');
    if (!colon) {
        snprintf(err, errlen, "address %s: missing port in address", addr);
        return -1;
    }
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (hl && addr[0] == '[') {
        if (addr[hl - 1] != ']') {
            snprintf(err, errlen, "address %s: missing ']' in address", addr);
            return -1;
        }
        h = addr + 1;
        hl -= 2;
    } else if (memchr(addr, ':', hl)) {
        snprintf(err, errlen, "address %s: too many colons in address", addr);
        return -1;
    }
    const char *p = colon + 1;
    if (hl >= hostlen || strlen(p) >= portlen) {
        snprintf(err, errlen, "address %s: too long", addr);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    strcpy(port, p);
    return 0;
}

/* Binds a listening socket for addr. Empty host: every address, IPv6 dual-stack when available. */
static int bind_listen(const char *addr, int *out_port, char *err, size_t errlen)
{
    char host[256], port[32];
    if (http_split_host_port(addr, host, sizeof host, port, sizeof port, err, errlen) != 0)
        return -1;
    char *end;
    long pn = strtol(port, &end, 10);
    if (!*port || *end || pn < 0 || pn > 65535) {
        snprintf(err, errlen, "listen tcp %s: invalid port %s", addr, port);
        return -1;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    hints.ai_family = *host ? AF_UNSPEC : AF_INET6;
    int rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);
    if (rc != 0 && !*host) {
        hints.ai_family = AF_INET; /* no IPv6 on this machine */
        rc = getaddrinfo(NULL, port, &hints, &res);
    }
    if (rc != 0) {
        snprintf(err, errlen, "listen tcp %s: lookup %s: %s", addr, host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, last_errno = 0;
    const char *what = "socket";
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            what = "socket";
            continue;
        }
        int one = 1, zero = 0;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6 && !*host)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            last_errno = errno;
            what = "bind";
        } else if (listen(fd, 128) != 0) {
            last_errno = errno;
            what = "listen";
        } else {
            break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        /* Go's wording: "listen tcp :7777: bind: address already in use" */
        char msg[128];
        snprintf(msg, sizeof msg, "%s", strerror(last_errno));
        if (msg[0] >= 'A' && msg[0] <= 'Z' && msg[1] >= 'a' && msg[1] <= 'z')
            msg[0] = (char)(msg[0] - 'A' + 'a');
        snprintf(err, errlen, "listen tcp %s: %s: %s", addr, what, msg);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *out_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                             : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* Starts a libmicrohttpd daemon on the listening socket fd, speaking TLS when opts has a certificate. */
static struct MHD_Daemon *start_daemon(http_server *s, int fd, char *err, size_t errlen)
{
    /* poll(), not epoll: with epoll, MHD_quiesce_daemon (http_server_free, http_server_switch_tls) races a
     * worker thread that takes the listening socket out of its epoll set on its own, and libmicrohttpd
     * (0.9.75) aborts the process when its own removal then fails ("Failed to remove listen FD from epoll
     * set"; test_api_server's stop_while_connections_arrive_never_aborts). Quiescing a poll() daemon only
     * signals its threads. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_POLL;
    /* HTTPS: libmicrohttpd's GnuTLS layer; the options are passed as an array since they are optional. */
    struct MHD_OptionItem tls[6];
    size_t nt = 0;
    if (s->opts.tls_cert_pem || s->opts.tls_cert_callback) {
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
            snprintf(err, errlen, "listen tcp %s: TLS is configured but libmicrohttpd was built without TLS support",
                     s->listen_address);
            return NULL;
        }
        flags |= MHD_USE_TLS;
        if (s->opts.tls_cert_callback) {
            tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, s->opts.tls_cert_callback};
        } else {
            tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)s->opts.tls_cert_pem};
            tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)s->opts.tls_key_pem};
        }
        if (s->opts.tls_trust_pem)
            tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, (void *)s->opts.tls_trust_pem};
        if (s->opts.tls_priorities)
            tls[nt++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)s->opts.tls_priorities};
    }
    tls[nt] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, http_server_on_request, s, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)s->opts.threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)s->opts.max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)s->opts.timeout_s,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)s->opts.max_connections_per_ip,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_URI_LOG_CALLBACK, on_request_line, s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)s->opts.max_header_memory, MHD_OPTION_NOTIFY_COMPLETED,
        http_server_on_completed, s, MHD_OPTION_EXTERNAL_LOGGER, http_server_on_mhd_log, NULL, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (!d)
        snprintf(err, errlen, "listen tcp %s: cannot start the HTTP server", s->listen_address);
    return d;
}

int http_server_start(http_server *s, char *err, size_t errlen)
{
    s->fd = bind_listen(s->listen_address, &s->port, err, errlen);
    if (s->fd < 0)
        return -1;
    s->daemon = start_daemon(s, s->fd, err, errlen);
    if (!s->daemon) {
        close(s->fd);
        s->fd = -1;
        return -1;
    }
    s->pools[HTTP_POOL_SLOW] = workpool_new(s->opts.slow_threads, s->opts.slow_queue);
    s->pools[HTTP_POOL_UPLOAD] = workpool_new(s->opts.upload_threads, s->opts.upload_queue);
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0)
        abort();
    s->reaper_running = true;
    return 0;
}

static size_t daemon_connections(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return di ? di->num_connections : 0;
}

static void *reap_daemon(void *arg)
{
    retired_daemon *r = arg;
    /* Idle keep-alive connections close within the header timeout; requests finish within their own. */
    while (!atomic_load(&r->stop_now) && daemon_connections(r->daemon) > 0) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!atomic_load(&r->stop_now)) {
        MHD_stop_daemon(r->daemon);
        r->daemon = NULL;
    }
    return NULL;
}

int http_server_switch_tls(http_server *s, void *tls_cert_callback, char *err, size_t errlen)
{
    if (!s->daemon)
        return -1;
    void *was = s->opts.tls_cert_callback;
    if (!was == !tls_cert_callback) {
        s->opts.tls_cert_callback = tls_cert_callback;
        return 0;
    }
    /* The new daemon takes over the listening socket; the old one stops accepting and serves the
     * connections it has until they end (a plain HTTP keep-alive connection stays plain). */
    MHD_socket lfd = MHD_quiesce_daemon(s->daemon);
    if (lfd == MHD_INVALID_SOCKET) {
        snprintf(err, errlen, "listen tcp %s: cannot hand the listening socket over", s->listen_address);
        return -1;
    }
    s->opts.tls_cert_callback = tls_cert_callback;
    struct MHD_Daemon *d = start_daemon(s, (int)lfd, err, errlen);
    if (!d) {
        /* Serve on as before from a fresh daemon of the old kind. */
        char e2[256];
        s->opts.tls_cert_callback = was;
        d = start_daemon(s, (int)lfd, e2, sizeof e2);
        if (!d) {
            log_error("web", "cannot serve HTTP any more", "err", e2);
            return -1;
        }
    }
    retired_daemon *r = xcalloc(1, sizeof *r);
    r->daemon = s->daemon;
    s->daemon = d;
    pthread_mutex_lock(&s->retired_mu);
    r->next = s->retired;
    s->retired = r;
    if (pthread_create(&r->reaper, NULL, reap_daemon, r) != 0)
        atomic_store(&r->stop_now, true); /* no reaper: stopped at http_server_free */
    else
        r->reaper_started = true;
    pthread_mutex_unlock(&s->retired_mu);
    return s->opts.tls_cert_callback == tls_cert_callback ? 0 : -1;
}
