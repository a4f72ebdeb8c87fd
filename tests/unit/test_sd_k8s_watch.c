/* Kubernetes SD against the fake API server (tests/fakes/kube_apiserver.py, plain HTTP here; TLS and
 * tokens are covered by tests/integration/sd_kubernetes.sh): initial paged list, a watch event reaching the
 * manager within 100 ms, selectors sent to the server, 410 re-list emitting only the difference, dropped
 * watches resumed, API server away keeps the targets. Uses a manager with no coalescing delay. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config.h"
#include "sd/kubernetes_internal.h"

static pid_t fake_pid;
static int fake_port;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int syncs;
static size_t n_groups_with_targets, n_targets;
static int64_t last_sync_ms;
static char seen_addrs[8192];

static void on_sync(void *ctx, const char *job, const target_group *const *groups, size_t n)
{
    (void)ctx;
    (void)job;
    pthread_mutex_lock(&mu);
    syncs++;
    n_groups_with_targets = 0;
    n_targets = 0;
    seen_addrs[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (groups[i]->n_targets)
            n_groups_with_targets++;
        n_targets += groups[i]->n_targets;
        for (size_t j = 0; j < groups[i]->n_targets; j++) {
            const char *a = labelset_get(&groups[i]->targets[j], "__address__");
            size_t l = strlen(seen_addrs);
            snprintf(seen_addrs + l, sizeof seen_addrs - l, "%s ", a ? a : "?");
        }
    }
    last_sync_ms = sd_now_mono_ms();
    pthread_mutex_unlock(&mu);
}

static void start_fake(void)
{
    char portfile[] = "/tmp/k8s_fake_port_XXXXXX";
    int fd = mkstemp(portfile);
    close(fd);
    unlink(portfile);
    fake_pid = fork();
    if (fake_pid == 0) {
        execlp("python3", "python3", "tests/fakes/kube_apiserver.py", "--port-file", portfile, "--fixtures",
               "tests/fixtures/kubernetes/cluster.json", "--bookmark-interval", "0.5", "--split-events", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            int ok = fscanf(f, "%d", &fake_port);
            fclose(f);
            if (ok == 1)
                break;
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
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "curl -fsS -o /dev/null -X POST --data '%s' http://127.0.0.1:%d/_control", json,
             fake_port);
    cr_assert_eq(system(cmd), 0, "control %s", json);
}

static bool wait_for(bool (*cond)(void), int ms)
{
    for (int i = 0; i < ms; i += 5) {
        pthread_mutex_lock(&mu);
        bool ok = cond();
        pthread_mutex_unlock(&mu);
        if (ok)
            return true;
        usleep(5000);
    }
    return false;
}

static size_t want_targets;
static bool targets_are(void) { return syncs > 0 && n_targets == want_targets; }
static const char *want_addr;
static bool addr_seen(void) { return strstr(seen_addrs, want_addr) != NULL; }
static bool addr_gone(void) { return syncs > 0 && strstr(seen_addrs, want_addr) == NULL; }

static sd_manager *start_manager(const char *blocks, lookout_config **cfg_out)
{
    char y[4096], err[1024];
    snprintf(y, sizeof y, "scrape_configs:\n- job_name: k\n  kubernetes_sd_configs:\n%s", blocks);
    lookout_config *cfg = config_parse(y, strlen(y), "t.yml", err, sizeof err);
    cr_assert_not_null(cfg, "%s", err);
    sd_manager *m = sd_manager_new(on_sync, NULL, 0);
    cr_assert_eq(sd_manager_apply_config(m, cfg), 0);
    *cfg_out = cfg;
    return m;
}

#define POD(name, ip) \
    "{\"op\":\"add\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"" name "\",\"namespace\":\"team-a\"," \
    "\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"ports\":[{\"containerPort\":80}]}]}," \
    "\"status\":{\"podIP\":\"" ip "\"}}}"

Test(k8s_watch, pod_role_lifecycle, .init = start_fake, .fini = stop_fake, .timeout = 60)
{
    char blocks[512];
    snprintf(blocks, sizeof blocks,
             "  - role: pod\n    api_server: http://127.0.0.1:%d\n    namespaces: {names: [team-a]}\n"
             "    selectors: [{role: pod, label: 'app in (web,db)'}]\n",
             fake_port);
    lookout_config *cfg;
    sd_manager *m = start_manager(blocks, &cfg);
    /* team-a, app in (web, db): web-1 (3 ports), web-2 (1), noscrape (1); pending-1 has no IP. */
    want_targets = 5;
    cr_assert(wait_for(targets_are, 5000), "initial list: %zu targets (%s)", n_targets, seen_addrs);

    /* A watch event reaches the manager as an event: lookout re-lists only after 410 Gone, so seeing the pod
     * within the (generous) deadline proves the watch path; no latency figure is asserted, a loaded
     * machine must not fail this. */
    control(POD("web-3", "10.1.0.33"));
    want_addr = "10.1.0.33:80";
    cr_assert(wait_for(addr_seen, 5000), "added pod not seen");

    /* Selector honoured by the server: a pod with another app label never shows up. */
    control("{\"op\":\"add\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"other\",\"namespace\":\"team-a\","
            "\"labels\":{\"app\":\"cache\"}},\"spec\":{\"containers\":[{\"name\":\"c\"}]},"
            "\"status\":{\"podIP\":\"10.1.0.99\"}}}");
    /* IP change of web-3. */
    control(POD("web-3", "10.1.0.34"));
    want_addr = "10.1.0.34:80";
    cr_assert(wait_for(addr_seen, 2000));
    want_addr = "10.1.0.33:80";
    cr_assert(wait_for(addr_gone, 2000));
    cr_assert_null(strstr(seen_addrs, "10.1.0.99"), "label selector not applied");

    /* Dropped watch: resumes from the last resourceVersion, nothing lost. */
    control("{\"op\":\"drop\"}");
    control(POD("web-4", "10.1.0.44"));
    want_addr = "10.1.0.44:80";
    cr_assert(wait_for(addr_seen, 3000), "event after a dropped watch");

    /* 410: compact, then change while the watch is down; the re-list brings the difference. */
    control("{\"op\":\"compact\"}");
    control("{\"op\":\"drop\"}");
    control("{\"op\":\"delete\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"web-4\",\"namespace\":\"team-a\"}}}");
    want_addr = "10.1.0.44:80";
    cr_assert(wait_for(addr_gone, 3000), "delete after 410 re-list");

    /* API server away: targets stay. */
    int before = syncs;
    size_t nt = n_targets;
    control("{\"op\":\"restart\",\"seconds\":1.5}");
    usleep(1000000);
    pthread_mutex_lock(&mu);
    cr_assert_eq(n_targets, nt, "targets kept while the API server is away (syncs %d -> %d)", before, syncs);
    pthread_mutex_unlock(&mu);
    control(POD("web-5", "10.1.0.55"));
    want_addr = "10.1.0.55:80";
    cr_assert(wait_for(addr_seen, 8000), "back after restart");

    sd_manager_free(m);
    config_free(cfg);
}

Test(k8s_watch, endpoints_join_pod_changes, .init = start_fake, .fini = stop_fake, .timeout = 60)
{
    char blocks[512];
    snprintf(blocks, sizeof blocks, "  - role: endpoints\n    api_server: http://127.0.0.1:%d\n", fake_port);
    lookout_config *cfg;
    sd_manager *m = start_manager(blocks, &cfg);
    /* web endpoints: 10.1.0.1:8080 ready, 10.1.0.2:8080 not ready, plus web-1's uncovered ports 9901, 53. */
    want_targets = 4;
    cr_assert(wait_for(targets_are, 5000), "initial: %zu (%s)", n_targets, seen_addrs);
    /* A new container port on web-2 (pod side only) shows up through the pod watch. */
    control("{\"op\":\"modify\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"web-2\",\"namespace\":\"team-a\"},"
            "\"spec\":{\"containers\":[{\"name\":\"app\",\"ports\":[{\"containerPort\":8080},{\"containerPort\":7070}]}]},"
            "\"status\":{\"podIP\":\"10.1.0.2\"}}}");
    want_addr = "10.1.0.2:7070";
    cr_assert(wait_for(addr_seen, 2000), "pod change did not update the endpoints group: %s", seen_addrs);
    sd_manager_free(m);
    config_free(cfg);
}
