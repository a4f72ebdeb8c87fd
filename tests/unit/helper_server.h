/* helper_server.h: starts tests/helpers/exception_server (built as $BUILD/helpers/exception_server) from
 * a unit test and stops it. Header-only (static functions) so each test binary stays one file. */
#ifndef LOOKOUT_TESTS_HELPER_SERVER_H
#define LOOKOUT_TESTS_HELPER_SERVER_H
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

typedef struct helper_server {
    pid_t pid;
    int port;
} helper_server;

/* Starts the server with extra args (NULL-terminated, may be NULL). Returns 0 on success. */
static int helper_server_start(helper_server *s, const char *const *args)
{
    const char *build = getenv("BUILD");
    char path[512];
    snprintf(path, sizeof path, "%s/helpers/exception_server", build && *build ? build : "build");
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    const char *argv[32] = {path, "--port", "0"};
    int n = 3;
    for (int i = 0; args && args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* no stray server when the test crashes or fails before helper_server_stop (a crashing mutant of
         * `make mutate` left dozens); the forking thread is the test's own */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(path, (char *const *)argv);
        fprintf(stderr, "cannot run %s (build it with make %s)\n", path, path);
        _exit(127);
    }
    close(fds[1]);
    /* the port line within 10 s, not an unbounded fgets: a server that never prints fails the test here
     * instead of at criterion's timeout */
    char line[64] = "";
    size_t got = 0;
    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    while (got < sizeof line - 1 && !memchr(line, '\n', got) && poll(&pfd, 1, 10000) == 1) {
        ssize_t r = read(fds[0], line + got, sizeof line - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        line[got] = '\0';
    }
    close(fds[0]);
    int port = 0;
    sscanf(line, "port=%d", &port);
    s->pid = pid;
    s->port = port;
    if (port <= 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return 0;
}

/* SIGTERM, then SIGKILL if the server has not exited within 5 s: a wedged server costs 5 s and a line on
 * stderr, never a hung test. */
static void helper_server_stop(helper_server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            s->pid = 0;
            return;
        }
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "helper_server: exception_server %d ignored SIGTERM for 5 s; killed\n", (int)s->pid);
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

static size_t helper_sink(char *p, size_t sz, size_t n, void *ud)
{
    char *out = ud;
    size_t have = strlen(out), len = sz * n;
    size_t room = 4095 - have;
    memcpy(out + have, p, len < room ? len : room);
    out[have + (len < room ? len : room)] = '\0';
    return len;
}

/* GETs path from the server into out (4096 bytes). Returns the HTTP status or -1. */
static long helper_get(const helper_server *s, const char *path, char out[4096])
{
    char url[1024];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
    out[0] = '\0';
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, helper_sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    long code = -1;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    return code;
}

/* Reads one number from /stats ("connections", "requests", "path_requests", "bytes_sent"). */
static long long helper_stat(const helper_server *s, const char *key, const char *path)
{
    char q[512], out[4096], k[64];
    snprintf(q, sizeof q, "/stats%s%s", path ? "?path=" : "", path ? path : "");
    if (helper_get(s, q, out) != 200)
        return -1;
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(out, k);
    return p ? atoll(p + strlen(k)) : -1;
}

#endif
