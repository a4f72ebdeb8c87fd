/* dns: dns_sd_configs (Prometheus discovery/dns/dns.go). Every refresh_interval each name is resolved
 * with the search domains and ndots of resolv.conf (re-read at each refresh, as Prometheus does):
 *   - the first search variant answered NOERROR gives the name's targets (possibly none);
 *   - NXDOMAIN from every variant means the name does not exist: its group is emptied;
 *   - any other failure (timeout, SERVFAIL, REFUSED, unreachable server, malformed answer) on some variant
 *     without a NOERROR elsewhere keeps the name's previous targets; it is logged and counted.
 * Servers come from resolv.conf (port 53), or from LOOKOUT_DNS_SERVERS ("IP:PORT,IP:PORT", a testing and
 * split-horizon aid). Each server is tried once per variant with a 2 s timeout (Go's dns.Client default);
 * SERVFAIL/REFUSED/NOTIMP move on to the next server; a truncated UDP answer is retried over TCP (c-ares).
 *
 * Threading: one thread per provider runs all lookups of a refresh concurrently on one c-ares channel,
 * polling its sockets together with an eventfd used to stop it. Only that thread touches dns_impl after
 * start, except stop_fd. */
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sd/sd_remote.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xalloc.h"

#define COMPONENT "sd/dns"
#define DNS_TIMEOUT_MS 2000
#define DNS_EDNS_SIZE 4096 /* miekg/dns DefaultMsgSize */

const char *sd_dns_resolv_conf_path = "/etc/resolv.conf";

static metric_family *m_lookups, *m_failures;

static void metrics_create(void)
{
    ares_library_init(ARES_LIB_INIT_ALL);
    m_lookups = metric_family_get("lookout_sd_dns_lookups_total", METRIC_COUNTER, "The number of DNS-SD lookups.",
                                  0, NULL);
    m_failures = metric_family_get("lookout_sd_dns_lookup_failures_total", METRIC_COUNTER,
                                   "The number of DNS-SD lookup failures.", 0, NULL);
}

/* ---- resolv.conf and the search list ---- */

void dns_resolv_conf_free(dns_resolv_conf *rc)
{
    for (size_t i = 0; i < rc->n_search; i++)
        free(rc->search[i]);
    free(rc->search);
    rc->search = NULL;
    rc->n_search = 0;
}

static void search_set(dns_resolv_conf *rc, char *rest)
{
    dns_resolv_conf_free(rc);
    char *save = NULL;
    for (char *tok = strtok_r(rest, " \t\r", &save); tok; tok = strtok_r(NULL, " \t\r", &save)) {
        size_t l = strlen(tok);
        while (l > 0 && tok[l - 1] == '.')
            tok[--l] = '\0';
        if (!l)
            continue;
        rc->search = realloc(rc->search, (rc->n_search + 1) * sizeof(char *));
        if (!rc->search)
            abort();
        rc->search[rc->n_search++] = xstrdup(tok);
    }
}

void dns_resolv_conf_parse(const char *text, dns_resolv_conf *out)
{
    memset(out, 0, sizeof *out);
    out->ndots = 1;
    char *copy = xstrdup(text ? text : "");
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        while (*line == ' ' || *line == '\t')
            line++;
        if (*line == '#' || *line == ';')
            continue;
        size_t kl = strcspn(line, " \t\r");
        char *rest = line[kl] ? line + kl + 1 : line + kl;
        if (kl == 6 && !strncmp(line, "domain", 6)) {
            char *s = rest; /* "domain" takes one name */
            s[strcspn(s, " \t\r#;")] = '\0';
            search_set(out, s);
        } else if (kl == 6 && !strncmp(line, "search", 6)) {
            rest[strcspn(rest, "#;")] = '\0';
            search_set(out, rest);
        } else if (kl == 7 && !strncmp(line, "options", 7)) {
            char *s2 = NULL;
            for (char *o = strtok_r(rest, " \t\r", &s2); o; o = strtok_r(NULL, " \t\r", &s2))
                if (!strncmp(o, "ndots:", 6)) {
                    long n = strtol(o + 6, NULL, 10);
                    out->ndots = n < 0 ? 0 : n > 15 ? 15 : (int)n;
                }
        }
    }
    free(copy);
}

int dns_resolv_conf_read(const char *path, dns_resolv_conf *out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        dns_resolv_conf_parse("", out);
        return -1;
    }
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    dns_resolv_conf_parse(buf, out);
    return 0;
}

static size_t count_labels(const char *name)
{
    /* miekg/dns CountLabel: labels of the name ("." has none); escapes are rare enough to ignore */
    size_t n = 0, len = strlen(name);
    if (len == 0 || !strcmp(name, "."))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (name[i] == '.' && i + 1 < len)
            n++;
    return n + 1;
}

char **dns_name_list(const char *name, const dns_resolv_conf *rc, size_t *n)
{
    size_t len = strlen(name);
    char **v = calloc(rc->n_search + 1, sizeof(char *));
    if (!v)
        abort();
    *n = 0;
    if (len > 0 && name[len - 1] == '.') {
        v[(*n)++] = xstrdup(name);
        return v;
    }
    bool has_ndots = count_labels(name) > (size_t)rc->ndots;
    char *fq = malloc(len + 2);
    if (!fq)
        abort();
    snprintf(fq, len + 2, "%s.", name);
    if (has_ndots)
        v[(*n)++] = xstrdup(fq);
    for (size_t i = 0; i < rc->n_search; i++) {
        size_t l = len + strlen(rc->search[i]) + 3;
        char *s = malloc(l);
        if (!s)
            abort();
        snprintf(s, l, "%s%s.", fq, rc->search[i]);
        v[(*n)++] = s;
    }
    if (!has_ndots)
        v[(*n)++] = fq;
    else
        free(fq);
    return v;
}

/* ---- answers ---- */

void dns_format_ipv6(const unsigned char a[16], char *out, size_t outlen)
{
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!memcmp(a, v4mapped, 12)) {
        snprintf(out, outlen, "%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
        return;
    }
    /* RFC 5952 as Go writes it: longest run (>= 2) of zero groups becomes "::", first one on ties;
     * no dotted-quad form for IPv4-compatible addresses (glibc's inet_ntop would use one). */
    unsigned g[8];
    for (int i = 0; i < 8; i++)
        g[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
    int best = -1, best_len = 1;
    for (int i = 0; i < 8;) {
        if (g[i]) {
            i++;
            continue;
        }
        int j = i;
        while (j < 8 && !g[j])
            j++;
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j;
    }
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < 8 && o < outlen; i++) {
        if (i == best) {
            o += (size_t)snprintf(out + o, outlen - o, "::");
            i += best_len - 1;
            continue;
        }
        if (i > 0 && i != best + best_len)
            o += (size_t)snprintf(out + o, outlen - o, ":");
        if (o < outlen)
            o += (size_t)snprintf(out + o, outlen - o, "%x", g[i]);
    }
}

void sd_join_host_port(const char *host, int port, char *out, size_t outlen)
{
    if (strchr(host, ':'))
        snprintf(out, outlen, "[%s]:%d", host, port);
    else
        snprintf(out, outlen, "%s:%d", host, port);
}

static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return -1;
}

static unsigned get16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* Expands a (possibly compressed) name at p; returns bytes consumed in place, or -1. fqdn gets the name
 * with its trailing dot, as Go prints it. */
static long expand_name(const unsigned char *p, const unsigned char *msg, size_t len, char *fqdn, size_t fqlen)
{
    char *s = NULL;
    long enclen = 0;
    if (ares_expand_name(p, msg, (int)len, &s, &enclen) != ARES_SUCCESS)
        return -1;
    if (fqdn) /* the root name: ares gives "", Go prints "." */
        snprintf(fqdn, fqlen, "%s.", s);
    ares_free_string(s);
    return enclen;
}

static void add_target(target_group *g, const char *address, const char *name, const char *srv_target,
                       const char *srv_port, const char *mx_target)
{
    labelset t = LABELSET_INIT;
    labelset_set(&t, "__address__", address);
    labelset_set(&t, "__meta_dns_name", name);
    labelset_set(&t, "__meta_dns_srv_record_target", srv_target);
    labelset_set(&t, "__meta_dns_srv_record_port", srv_port);
    labelset_set(&t, "__meta_dns_mx_record_target", mx_target);
    target_group_add_target(g, &t);
    labelset_free(&t);
}

static void trim_dot(char *s)
{
    size_t l = strlen(s);
    while (l > 0 && s[l - 1] == '.')
        s[--l] = '\0';
}

int dns_answer_to_group(const unsigned char *msg, size_t len, const char *name, dns_sd_type type, int port,
                        target_group *g, char *err, size_t errlen)
{
    (void)type; /* like Prometheus, every answer record of a known kind counts, whatever was asked */
    if (len < 12 || len > 65535)
        return fail(err, errlen, "malformed DNS message: short header");
    int rcode = msg[3] & 0x0f;
    unsigned qd = get16(msg + 4), an = get16(msg + 6);
    const unsigned char *p = msg + 12, *end = msg + len;
    for (unsigned i = 0; i < qd; i++) {
        long l = expand_name(p, msg, len, NULL, 0);
        if (l < 0 || p + l + 4 > end)
            return fail(err, errlen, "malformed DNS message: question");
        p += l + 4;
    }
    if (rcode != 0)
        return rcode;
    char host[1100], label[1100], portbuf[16], addr[1200];
    for (unsigned i = 0; i < an; i++) {
        long l = expand_name(p, msg, len, NULL, 0);
        if (l < 0 || p + l + 10 > end)
            return fail(err, errlen, "malformed DNS message: answer record");
        p += l;
        unsigned rtype = get16(p), rdlen = get16(p + 8);
        p += 10;
        if (p + rdlen > end)
            return fail(err, errlen, "malformed DNS message: record data");
        const unsigned char *rd = p;
        p += rdlen;
        switch (rtype) {
        case 1: /* A */
            if (rdlen != 4)
                return fail(err, errlen, "malformed DNS message: A record");
            snprintf(host, sizeof host, "%u.%u.%u.%u", rd[0], rd[1], rd[2], rd[3]);
            sd_join_host_port(host, port, addr, sizeof addr);
            add_target(g, addr, name, NULL, NULL, NULL);
            break;
        case 28: /* AAAA */
            if (rdlen != 16)
                return fail(err, errlen, "malformed DNS message: AAAA record");
            dns_format_ipv6(rd, host, sizeof host);
            sd_join_host_port(host, port, addr, sizeof addr);
            add_target(g, addr, name, NULL, NULL, NULL);
            break;
        case 33: { /* SRV: priority, weight, port, target */
            if (rdlen < 7 || expand_name(rd + 6, msg, len, label, sizeof label) < 0)
                return fail(err, errlen, "malformed DNS message: SRV record");
            unsigned sport = get16(rd + 4);
            snprintf(portbuf, sizeof portbuf, "%u", sport);
            snprintf(host, sizeof host, "%s", label);
            trim_dot(host);
            sd_join_host_port(host, (int)sport, addr, sizeof addr);
            add_target(g, addr, name, label, portbuf, NULL);
            break;
        }
        case 15: /* MX: preference, exchange */
            if (rdlen < 3 || expand_name(rd + 2, msg, len, label, sizeof label) < 0)
                return fail(err, errlen, "malformed DNS message: MX record");
            snprintf(host, sizeof host, "%s", label);
            trim_dot(host);
            sd_join_host_port(host, port, addr, sizeof addr);
            add_target(g, addr, name, NULL, NULL, label);
            break;
        case 5: /* CNAME: answers to A/AAAA queries may carry them */
            break;
        default: {
            char t[16];
            snprintf(t, sizeof t, "%u", rtype);
            log_warn(COMPONENT, "Invalid record", "name", name, "type", t);
            break;
        }
        }
    }
    return 0;
}

/* ---- the provider ---- */

typedef struct dns_lookup {
    struct dns_impl *di;
    const char *name; /* as configured (points into the config) */
    char **variants;
    size_t n_variants, cur;
    bool all_nxdomain;
    int state; /* 0 running, 1 answered (g valid), 2 failed */
    target_group g;
} dns_lookup;

typedef struct dns_impl {
    sd_provider *p;
    int stop_fd;
    pthread_t thread;
    bool running, stopping;
    ares_channel ch;
    dns_lookup *lookups;
    size_t pending;
} dns_impl;

static int qtype_of(dns_sd_type t)
{
    switch (t) {
    case DNS_SD_A: return 1;
    case DNS_SD_AAAA: return 28;
    case DNS_SD_MX: return 15;
    default: return 33;
    }
}

static void lookup_next(dns_lookup *lk);

static void lookup_finish(dns_lookup *lk, int state)
{
    lk->state = state;
    lk->di->pending--;
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    dns_lookup *lk = arg;
    sd_provider *p = lk->di->p;
    const char *variant = lk->variants[lk->cur];
    if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
        lookup_finish(lk, 2);
        return;
    }
    char err[256] = "";
    if (status == ARES_SUCCESS) {
        target_group g;
        target_group_init(&g, lk->name);
        int rc = dns_answer_to_group(abuf, (size_t)alen, lk->name, p->cfg->u.dns.type, p->cfg->u.dns.port, &g, err,
                                     sizeof err);
        if (rc == 0) {
            lk->g = g; /* outcome 1: this variant exists */
            lookup_finish(lk, 1);
            return;
        }
        target_group_free(&g);
        if (rc == 3) {
            /* NXDOMAIN: keep going, the name may still exist under a later variant */
        } else {
            if (rc > 0)
                snprintf(err, sizeof err, "server answered with RCODE %d", rc);
            lk->all_nxdomain = false;
            log_warn(COMPONENT, "DNS resolution failed", "job", p->job, "name", variant, "err", err);
        }
    } else {
        lk->all_nxdomain = false;
        log_warn(COMPONENT, "DNS resolution failed", "job", p->job, "name", variant, "err", ares_strerror(status));
    }
    lk->cur++;
    if (lk->cur < lk->n_variants) {
        lookup_next(lk);
        return;
    }
    if (lk->all_nxdomain) {
        target_group_init(&lk->g, lk->name); /* outcome 2: the name does not exist */
        lookup_finish(lk, 1);
    } else {
        lookup_finish(lk, 2);
    }
}

static void lookup_next(dns_lookup *lk)
{
    const dns_sd_config *dc = &lk->di->p->cfg->u.dns;
    unsigned char *q = NULL;
    int qlen = 0;
    int rc = ares_create_query(lk->variants[lk->cur], 1 /* IN */, qtype_of(dc->type), 0, 1, &q, &qlen,
                               DNS_EDNS_SIZE);
    if (rc != ARES_SUCCESS) {
        log_warn(COMPONENT, "DNS resolution failed", "job", lk->di->p->job, "name", lk->variants[lk->cur], "err",
                 ares_strerror(rc));
        /* an unencodable name (too long a label) can never succeed: treat like a server failure */
        lk->all_nxdomain = false;
        lk->cur++;
        if (lk->cur < lk->n_variants)
            lookup_next(lk);
        else
            lookup_finish(lk, 2);
        return;
    }
    ares_send(lk->di->ch, q, qlen, on_answer, lk);
    ares_free_string(q);
}

static int channel_open(dns_impl *di, char *err, size_t errlen)
{
    struct ares_options o;
    memset(&o, 0, sizeof o);
    o.flags = ARES_FLAG_EDNS;
    o.timeout = DNS_TIMEOUT_MS;
    o.tries = 1;
    o.ednspsz = DNS_EDNS_SIZE;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_EDNSPSZ;
    int rc = ares_init_options(&di->ch, &o, mask);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "cannot initialise the DNS resolver: %s", ares_strerror(rc));
        return -1;
    }
    const char *servers = getenv("LOOKOUT_DNS_SERVERS");
    if (servers && *servers) {
        rc = ares_set_servers_ports_csv(di->ch, servers);
        if (rc != ARES_SUCCESS) {
            snprintf(err, errlen, "invalid LOOKOUT_DNS_SERVERS \"%s\": %s (expected IP:PORT[,IP:PORT...])", servers,
                     ares_strerror(rc));
            ares_destroy(di->ch);
            return -1;
        }
    }
    return 0;
}

/* Runs the lookups of one refresh until they all end; returns false when asked to stop. */
static bool drive(dns_impl *di)
{
    while (di->pending > 0) {
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        int bits = ares_getsock(di->ch, socks, ARES_GETSOCK_MAXNUM);
        struct pollfd pfd[ARES_GETSOCK_MAXNUM + 1];
        nfds_t n = 0;
        pfd[n++] = (struct pollfd){.fd = di->stop_fd, .events = POLLIN};
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            short ev = 0;
            /* c-ares' ARES_GETSOCK_WRITABLE shifts a signed 1 into the sign bit for the last socket */
            if ((unsigned)bits & (1u << i))
                ev |= POLLIN;
            if ((unsigned)bits & (1u << (i + ARES_GETSOCK_MAXNUM)))
                ev |= POLLOUT;
            if (ev)
                pfd[n++] = (struct pollfd){.fd = socks[i], .events = ev};
        }
        struct timeval tv, maxtv = {.tv_sec = 1, .tv_usec = 0}, *t = ares_timeout(di->ch, &maxtv, &tv);
        int timeout = (int)(t->tv_sec * 1000 + t->tv_usec / 1000);
        int r = poll(pfd, n, timeout);
        if (r < 0 && errno != EINTR)
            return false;
        if (r > 0 && pfd[0].revents)
            return false;
        bool any = false;
        for (nfds_t i = 1; i < n; i++) {
            if (!pfd[i].revents)
                continue;
            any = true;
            ares_socket_t rd = pfd[i].revents & (POLLIN | POLLERR | POLLHUP) ? pfd[i].fd : ARES_SOCKET_BAD;
            ares_socket_t wr = pfd[i].revents & POLLOUT ? pfd[i].fd : ARES_SOCKET_BAD;
            ares_process_fd(di->ch, rd, wr);
        }
        if (!any)
            ares_process_fd(di->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts */
    }
    return true;
}

static bool refresh(dns_impl *di)
{
    sd_provider *p = di->p;
    const dns_sd_config *dc = &p->cfg->u.dns;
    char err[256];
    if (channel_open(di, err, sizeof err) < 0) {
        log_error(COMPONENT, "Error refreshing DNS targets", "job", p->job, "err", err);
        metric_add(m_lookups, NULL, (double)dc->n_names);
        metric_add(m_failures, NULL, (double)dc->n_names);
        return true;
    }
    dns_resolv_conf rc;
    dns_resolv_conf_read(sd_dns_resolv_conf_path, &rc);
    di->lookups = calloc(dc->n_names ? dc->n_names : 1, sizeof(dns_lookup));
    if (!di->lookups)
        abort();
    di->pending = dc->n_names;
    for (size_t i = 0; i < dc->n_names; i++) {
        dns_lookup *lk = &di->lookups[i];
        lk->di = di;
        lk->name = dc->names[i];
        lk->all_nxdomain = true;
        lk->variants = dns_name_list(dc->names[i], &rc, &lk->n_variants);
    }
    dns_resolv_conf_free(&rc);
    for (size_t i = 0; i < dc->n_names; i++)
        lookup_next(&di->lookups[i]);
    bool alive = drive(di);
    ares_destroy(di->ch); /* ends queries still running (with ARES_EDESTRUCTION) when stopping */

    target_group *out = calloc(dc->n_names ? dc->n_names : 1, sizeof *out);
    if (!out)
        abort();
    size_t n_out = 0, failed = 0;
    for (size_t i = 0; i < dc->n_names; i++) {
        dns_lookup *lk = &di->lookups[i];
        if (lk->state == 1)
            out[n_out++] = lk->g; /* moved */
        else if (alive) {
            failed++;
            char m[600];
            snprintf(m, sizeof m, "could not resolve \"%s\": all servers responded with errors to at least one search domain",
                     lk->name);
            log_error(COMPONENT, "Error refreshing DNS targets", "job", p->job, "err", m);
        }
        for (size_t k = 0; k < lk->n_variants; k++)
            free(lk->variants[k]);
        free(lk->variants);
    }
    free(di->lookups);
    di->lookups = NULL;
    if (alive) {
        metric_add(m_lookups, NULL, (double)dc->n_names);
        if (failed)
            metric_add(m_failures, NULL, (double)failed);
        /* names that failed are left out: the manager keeps their previous groups */
        if (n_out)
            sd_provider_update(p, out, n_out);
        if (!failed)
            sd_provider_mark_success(p);
    }
    sd_groups_free(out, n_out);
    return alive;
}

static void *dns_thread(void *arg)
{
    dns_impl *di = arg;
    int64_t interval = di->p->cfg->u.dns.refresh_interval_ms > 0 ? di->p->cfg->u.dns.refresh_interval_ms : 30000;
    for (;;) {
        int64_t next = sd_now_mono_ms() + interval;
        if (!refresh(di))
            return NULL;
        for (;;) {
            int64_t now = sd_now_mono_ms();
            if (now >= next)
                break;
            struct pollfd pfd = {.fd = di->stop_fd, .events = POLLIN};
            int64_t wait = next - now;
            int r = poll(&pfd, 1, wait > INT_MAX ? INT_MAX : (int)wait);
            if (r > 0)
                return NULL;
        }
    }
}

static void dns_destroy(sd_provider *p);

static int dns_start(sd_provider *p, char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, metrics_create);
    dns_impl *di = calloc(1, sizeof *di);
    if (!di)
        abort();
    p->impl = di;
    di->p = p;
    di->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (di->stop_fd < 0) {
        snprintf(err, errlen, "cannot create the DNS stop event: %s", strerror(errno));
        dns_destroy(p);
        return -1;
    }
    /* check LOOKOUT_DNS_SERVERS now so that a typo is reported at start, not only logged later */
    if (channel_open(di, err, errlen) < 0) {
        dns_destroy(p);
        return -1;
    }
    ares_destroy(di->ch);
    if (pthread_create(&di->thread, NULL, dns_thread, di) != 0) {
        snprintf(err, errlen, "cannot start the DNS thread");
        dns_destroy(p);
        return -1;
    }
    di->running = true;
    return 0;
}

static void dns_stop(sd_provider *p)
{
    dns_impl *di = p->impl;
    if (!di || !di->running)
        return;
    uint64_t one = 1;
    if (write(di->stop_fd, &one, sizeof one) < 0)
        log_error(COMPONENT, "cannot signal the DNS thread", "job", p->job, "err", strerror(errno));
    pthread_join(di->thread, NULL);
    di->running = false;
}

static void dns_destroy(sd_provider *p)
{
    dns_impl *di = p->impl;
    if (!di)
        return;
    if (di->stop_fd >= 0)
        close(di->stop_fd);
    free(di);
    p->impl = NULL;
}

const sd_provider_ops sd_dns_ops = {
    .kind = "dns",
    .start = dns_start,
    .stop = dns_stop,
    .destroy = dns_destroy,
};
