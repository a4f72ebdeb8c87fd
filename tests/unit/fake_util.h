/* Starting the python fakes (tests/fakes/ scripts) from unit tests, and talking to them with libcurl. */
#ifndef LOOKOUT_TESTS_FAKE_UTIL_H
#define LOOKOUT_TESTS_FAKE_UTIL_H
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct fake_proc {
    pid_t pid;
    int port;
    char portfile[64];
} fake_proc;

/* argv: NULL-terminated extra arguments. port 0 = any. Returns 0 or -1. */
static inline int fake_start(fake_proc *fp, const char *script, int port, const char *const *extra)
{
    snprintf(fp->portfile, sizeof fp->portfile, "/tmp/lookout-fake-%d-%ld.port", (int)getpid(), random());
    unlink(fp->portfile);
    char portarg[16];
    snprintf(portarg, sizeof portarg, "%d", port);
    const char *argv[32] = {"python3", script, "--port", portarg, "--port-file", fp->portfile};
    size_t n = 6;
    for (size_t i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* no stray fake when a test fails or crashes before fake_stop */
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execvp("python3", (char *const *)argv);
        _exit(127);
    }
    fp->pid = pid;
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(fp->portfile, "r");
        if (f) {
            int ok = fscanf(f, "%d", &fp->port) == 1;
            fclose(f);
            if (ok)
                return 0;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            fp->pid = 0;
            return -1;
        }
        usleep(10000);
    }
    kill(pid, SIGKILL); /* never ready: not left behind */
    waitpid(pid, NULL, 0);
    fp->pid = 0;
    return -1;
}

static inline void fake_stop(fake_proc *fp)
{
    if (fp->pid > 0) {
        kill(fp->pid, SIGKILL);
        waitpid(fp->pid, NULL, 0);
        fp->pid = 0;
    }
    unlink(fp->portfile);
}

static size_t fake_sink(char *d, size_t s, size_t n, void *arg)
{
    char **out = arg;
    if (out) {
        size_t old = *out ? strlen(*out) : 0;
        *out = realloc(*out, old + s * n + 1);
        memcpy(*out + old, d, s * n);
        (*out)[old + s * n] = '\0';
    }
    return s * n;
}

/* POST json to http://127.0.0.1:port/path; returns the HTTP status (or -1). body_out (may be NULL): malloc'd. */
static inline long fake_request(int port, const char *method, const char *path, const char *json, char **body_out)
{
    CURL *h = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    if (!strcmp(method, "POST")) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, json ? json : "{}");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fake_sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body_out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    long code = -1;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    return code;
}

static inline long fake_post(int port, const char *path, const char *json)
{
    return fake_request(port, "POST", path, json, NULL);
}

#endif
