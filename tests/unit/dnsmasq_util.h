/* A private dnsmasq for the DNS SD tests: started on 127.0.0.1:PORT with no upstream, no /etc/hosts, an
 * addn-hosts file the test rewrites (SIGHUP re-reads it) and the SRV/MX records given as arguments. */
#ifndef LOOKOUT_TESTS_DNSMASQ_UTIL_H
#define LOOKOUT_TESTS_DNSMASQ_UTIL_H
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

typedef struct dnsmasq {
    pid_t pid;
    int port;
    char dir[64];
    char hosts[128];
} dnsmasq;

static inline bool dnsmasq_available(void)
{
    return access("/usr/sbin/dnsmasq", X_OK) == 0;
}

/* A free UDP+TCP port on 127.0.0.1 (bound then released). */
static inline int dnsmasq_free_port(void)
{
    for (int tries = 0; tries < 50; tries++) {
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof a;
        if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(s, (struct sockaddr *)&a, &l) != 0) {
            close(s);
            continue;
        }
        int port = ntohs(a.sin_port);
        close(s);
        int t = socket(AF_INET, SOCK_STREAM, 0);
        a.sin_port = htons((uint16_t)port);
        int ok = bind(t, (struct sockaddr *)&a, sizeof a) == 0;
        close(t);
        if (ok)
            return port;
    }
    return -1;
}

static inline void dnsmasq_write_hosts(dnsmasq *d, const char *content)
{
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", d->hosts);
    FILE *f = fopen(tmp, "w");
    fputs(content, f);
    fclose(f);
    rename(tmp, d->hosts);
}

/* extra: NULL-terminated dnsmasq options (e.g. "--srv-host=..."). port 0 = pick one. Returns 0 or -1. */
static inline int dnsmasq_start(dnsmasq *d, int port, const char *hosts, const char *const *extra)
{
    if (!d->dir[0]) {
        snprintf(d->dir, sizeof d->dir, "/tmp/lookout-dnsmasq-XXXXXX");
        if (!mkdtemp(d->dir))
            return -1;
        snprintf(d->hosts, sizeof d->hosts, "%s/hosts", d->dir);
    }
    if (hosts)
        dnsmasq_write_hosts(d, hosts);
    d->port = port ? port : dnsmasq_free_port();
    char portarg[32], hostsarg[160], pidarg[160];
    snprintf(portarg, sizeof portarg, "--port=%d", d->port);
    snprintf(hostsarg, sizeof hostsarg, "--addn-hosts=%s", d->hosts);
    snprintf(pidarg, sizeof pidarg, "--pid-file=%s/pid", d->dir);
    const char *argv[64] = {"dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                            "--listen-address=127.0.0.1", "--bind-interfaces", portarg, hostsarg, pidarg,
                            "--local=/test/", "--user=root", "--group=root", "--log-facility=/dev/null"};
    size_t n = 14;
    for (size_t i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execv("/usr/sbin/dnsmasq", (char *const *)argv);
        _exit(127);
    }
    d->pid = pid;
    /* ready when it accepts TCP on the port */
    for (int i = 0; i < 200; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                .sin_port = htons((uint16_t)d->port)};
        int ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
        close(s);
        if (ok)
            return 0;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            d->pid = 0;
            return -1;
        }
        usleep(10000);
    }
    return -1;
}

static inline void dnsmasq_stop(dnsmasq *d)
{
    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        waitpid(d->pid, NULL, 0);
        d->pid = 0;
    }
}

static inline void dnsmasq_reload(dnsmasq *d)
{
    if (d->pid > 0)
        kill(d->pid, SIGHUP);
}

static inline void dnsmasq_cleanup(dnsmasq *d)
{
    dnsmasq_stop(d);
    if (d->dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", d->dir);
        if (system(cmd) != 0) {
        }
        d->dir[0] = '\0';
    }
}

#endif
