/* Kubernetes SD watch sharing: jobs with identical kubernetes_sd_configs blocks run one LIST+WATCH per
 * resource against the fake API server (tests/fakes/kube_apiserver.py, plain HTTP), every job gets the
 * groups, a job joining a running watch gets the full state without a new LIST, the last job leaving stops
 * the watch. A block differing only in its selector gets its own watch. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config.h"
#include "sd/kubernetes_internal.h"
#include "sd_test_util.h"
#include "util/metrics.h"

static pid_t fake_pid;
static int fake_port;

static void start_fake(void)
{
    char portfile[] = "/tmp/k8s_share_port_XXXXXX";
    int fd = mkstemp(portfile);
    close(fd);
    unlink(portfile);
    fake_pid = fork();
    if (fake_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* no stray server when a test crashes */
        execlp("python3", "python3", "tests/fakes/kube_apiserver.py", "--port-file", portfile, "--fixtures",
               "tests/fixtures/kubernetes/cluster.json", "--bookmark-interval", "0.5", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100 && !fake_port; i++) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            if (fscanf(f, "%d", &fake_port) != 1)
                fake_port = 0;
            fclose(f);
        }
        usleep(50000);
    }
    unlink(portfile);
    cr_assert_gt(fake_port, 0, "fake API server did not start");
}

static void stop_fake(void)
{
    if (fake_pid > 0) {
        kill(fake_pid, SIGTERM);
        waitpid(fake_pid, NULL, 0);
    }
}

static void control(const char *json)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "curl -fsS -o /dev/null -X POST --data '%s' http://127.0.0.1:%d/_control", json,
             fake_port);
    cr_assert_eq(system(cmd), 0, "control %s", json);
}

/* Requests the fake saw for path: LISTs (watch absent) or WATCHes, with or without a labelSelector. */
static int count_requests(const char *path, bool watch, bool with_selector)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "curl -fsS http://127.0.0.1:%d/_control/stats", fake_port);
    FILE *f = popen(cmd, "r");
    cr_assert(f);
    json_error_t e;
    json_t *st = json_loadf(f, 0, &e);
    pclose(f);
    cr_assert(st, "stats: %s", e.text);
    int n = 0;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(st, "requests"), i, r) {
        const char *p = json_string_value(json_object_get(r, "path"));
        json_t *q = json_object_get(r, "query");
        bool w = json_object_get(q, "watch") != NULL, s = json_object_get(q, "labelSelector") != NULL;
        if (p && strcmp(p, path) == 0 && w == watch && s == with_selector)
            n++;
    }
    json_decref(st);
    return n;
}

static lookout_config *parse(const char *jobs_yaml)
{
    char err[1024];
    lookout_config *cfg = config_parse(jobs_yaml, strlen(jobs_yaml), "t.yml", err, sizeof err);
    cr_assert_not_null(cfg, "%s", err);
    return cfg;
}

#define BLOCK "  kubernetes_sd_configs:\n  - role: pod\n    api_server: http://127.0.0.1:%d\n" \
              "    namespaces: {names: [team-a]}\n"
#define POD(name, ip) \
    "{\"op\":\"add\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"" name "\",\"namespace\":\"team-a\"," \
    "\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"ports\":[{\"containerPort\":80}]}]}," \
    "\"status\":{\"podIP\":\"" ip "\"}}}"

#define PODS "/api/v1/namespaces/team-a/pods"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted addresses of job's last sync, as one string (copied under the recorder's lock: the calls
 * array moves when other jobs sync). NULL when the job has not synced. Caller frees. */
static char *addrs_of(recorder *r, const char *job)
{
    char *out = NULL;
    pthread_mutex_lock(&r->mu);
    const rec_call *c = NULL;
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->calls[i].job, job))
            c = &r->calls[i];
    if (c) {
        size_t n = call_targets(c), k = 0, len = 1;
        char **v = calloc(n ? n : 1, sizeof *v);
        for (size_t i = 0; i < c->n; i++)
            for (size_t t = 0; t < c->groups[i].n_targets; t++) {
                v[k] = (char *)labelset_get(&c->groups[i].targets[t], "__address__");
                len += strlen(v[k++]) + 1;
            }
        qsort(v, n, sizeof *v, cmp_str);
        out = calloc(1, len);
        for (size_t i = 0; i < n; i++) {
            strcat(out, v[i]);
            strcat(out, " ");
        }
        free(v);
    }
    pthread_mutex_unlock(&r->mu);
    return out;
}

/* Waits until job's last sync has addr; returns its address list (caller frees) or NULL. */
static char *wait_addr(recorder *r, const char *job, const char *addr, int ms)
{
    char needle[128];
    snprintf(needle, sizeof needle, "%s ", addr);
    for (int i = 0; i <= ms / 10; i++) {
        char *a = addrs_of(r, job);
        if (a && strstr(a, needle))
            return a;
        free(a);
        sleep_ms(10);
    }
    return NULL;
}

Test(k8s_share, identical_blocks_share_one_watch, .init = start_fake, .fini = stop_fake, .timeout = 60)
{
    char y[2048];
    snprintf(y, sizeof y,
             "scrape_configs:\n- job_name: a\n" BLOCK "- job_name: b\n" BLOCK "- job_name: c\n" BLOCK
             "    selectors: [{role: pod, label: 'app=web'}]\n",
             fake_port, fake_port, fake_port);
    lookout_config *cfg = parse(y);
    recorder r;
    rec_init(&r);
    sd_manager *m = sd_manager_new(rec_sync, &r, 0);
    sd_manager_apply_config(m, cfg);
    cr_assert_eq(k8s_watch_count(), 2, "a and b share, c has its own");

    control(POD("web-9", "10.1.0.99"));
    char *aa = wait_addr(&r, "a", "10.1.0.99:80", 5000), *ab = wait_addr(&r, "b", "10.1.0.99:80", 5000);
    cr_assert(aa && ab, "both jobs get the watch's events");
    char *ac = wait_addr(&r, "c", "10.1.0.99:80", 5000);
    cr_assert(ac);
    cr_assert_str_eq(aa, ab, "same targets");
    cr_assert(strchr(aa, ' ') != strrchr(aa, ' '), "more than one target: %s", aa);
    cr_assert_eq(count_requests(PODS, false, false), 1, "one LIST for a and b");
    cr_assert_eq(count_requests(PODS, true, false), 1, "one WATCH for a and b");
    cr_assert_eq(count_requests(PODS, false, true), 1, "c lists with its selector");
    cr_assert_eq(count_requests(PODS, true, true), 1);
    free(aa), free(ab), free(ac);

    /* Reload: a and c go, b stays (its provider is kept) and a new job d with the same block joins. */
    lookout_config *cfg2;
    snprintf(y, sizeof y, "scrape_configs:\n- job_name: b\n" BLOCK "- job_name: d\n" BLOCK, fake_port, fake_port);
    cfg2 = parse(y);
    sd_manager_apply_config(m, cfg2);
    cr_assert_eq(k8s_watch_count(), 1);
    char *ad = wait_addr(&r, "d", "10.1.0.99:80", 3000);
    cr_assert(ad, "a joining job gets the current state");
    ab = addrs_of(&r, "b");
    cr_assert_str_eq(ab, ad);
    free(ab), free(ad);
    control(POD("web-10", "10.1.0.100"));
    ab = wait_addr(&r, "b", "10.1.0.100:80", 3000);
    ad = wait_addr(&r, "d", "10.1.0.100:80", 3000);
    cr_assert(ab && ad);
    free(ab), free(ad);
    cr_assert_eq(count_requests(PODS, false, false), 1, "no new LIST for the joining job");
    cr_assert_eq(count_requests(PODS, true, false), 1);

    /* Bookmarks of a live watch (every 0.5 s from the fake) keep the success timestamp current. */
    metric_family *f = metric_family_get("lookout_sd_last_success_timestamp_seconds", METRIC_GAUGE, "", 2,
                                         (const char *[]){"job", "provider"});
    const char *lv[] = {"d", "kubernetes_sd_configs/0"};
    double t1 = metric_value(f, lv);
    cr_assert_gt(t1, 1e9);
    sleep_ms(1300);
    cr_assert_gt(metric_value(f, lv), t1, "success timestamp advances without a new LIST");

    sd_manager_free(m);
    cr_assert_eq(k8s_watch_count(), 0, "the last subscriber stops the watch");
    config_free(cfg);
    config_free(cfg2);
    rec_free(&r);
}
