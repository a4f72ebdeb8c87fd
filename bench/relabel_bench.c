/* relabel_bench: builds 100,000 synthetic file_sd-like targets through a realistic 10-rule relabel chain
 * (target_build: populateLabels + relabel + URL + hash) and prints the rate.
 *
 * Build and run: make build/bench/relabel_bench && build/bench/relabel_bench [N [final]]  (or `make bench`);
 * `final`: target_build_final, what the target manager runs (the rules on a view first, no discovered set).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "labels/relabel.h"
#include "scrape/target.h"

static char **list(const char *a, const char *b, size_t *n)
{
    char **v = calloc(2, sizeof(char *));
    v[0] = strdup(a);
    *n = 1;
    if (b) {
        v[1] = strdup(b);
        *n = 2;
    }
    return v;
}

static relabel_rule rule(relabel_action a, const char *s1, const char *s2, const char *target, const char *regex,
                         const char *repl, uint64_t modulus)
{
    relabel_rule r;
    memset(&r, 0, sizeof r);
    r.action = a;
    if (s1)
        r.source_labels = list(s1, s2, &r.n_source_labels);
    r.target_label = target ? strdup(target) : NULL;
    r.regex = regex ? strdup(regex) : NULL;
    r.replacement = repl ? strdup(repl) : NULL;
    r.modulus = modulus;
    char err[256];
    if (relabel_rule_prepare(&r, err, sizeof err) != 0) {
        fprintf(stderr, "rule: %s\n", err);
        exit(1);
    }
    return r;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    bool final = argc > 2 && strcmp(argv[2], "final") == 0;
    relabel_rule rules[10] = {
        /* keep only targets that opted in */
        rule(RELABEL_KEEP, "__meta_scrape", NULL, NULL, "true|yes", NULL, 0),
        /* drop canaries */
        rule(RELABEL_DROP, "__meta_env", "__meta_track", NULL, "staging;canary", NULL, 0),
        /* copy meta labels of interest */
        rule(RELABEL_LABELMAP, NULL, NULL, NULL, "__meta_label_(.+)", "${1}", 0),
        rule(RELABEL_REPLACE, "__meta_env", NULL, "env", NULL, NULL, 0),
        rule(RELABEL_REPLACE, "__meta_filepath", NULL, "sd_file", ".*/([^/]+)\\.json", "$1", 0),
        /* port override from an annotation-like label */
        rule(RELABEL_REPLACE, "__address__", "__meta_port", "__address__", "([^:]+)(?::\\d+)?;(\\d+)", "$1:$2", 0),
        /* metrics path override */
        rule(RELABEL_REPLACE, "__meta_path", NULL, "__metrics_path__", "(.+)", NULL, 0),
        /* shard */
        rule(RELABEL_HASHMOD, "__address__", NULL, "__tmp_hash", NULL, NULL, 4),
        rule(RELABEL_KEEP, "__tmp_hash", NULL, NULL, "[0-3]", NULL, 0),
        rule(RELABEL_LOWERCASE, "__meta_team", NULL, "team", NULL, NULL, 0),
    };
    scrape_config sc;
    memset(&sc, 0, sizeof sc);
    sc.job_name = "bench";
    sc.scheme = "http";
    sc.metrics_path = "/-/exceptions";
    sc.scrape_interval_ms = 15000;
    sc.scrape_timeout_ms = 10000;
    sc.relabel_configs = rules;
    sc.n_relabel_configs = 10;

    /* one group label set per 100 targets, like a file_sd file */
    labelset group, tl;
    labelset_init(&group);
    labelset_init(&tl);
    char addr[64], buf[64];
    long active = 0, dropped = 0, failed = 0;
    uint64_t sink = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) {
        if (i % 100 == 0) {
            labelset_clear(&group);
            snprintf(buf, sizeof buf, "/etc/lookout/sd/file-%ld.json", i / 100);
            labelset_set(&group, "__meta_filepath", buf);
            labelset_set(&group, "__meta_env", (i / 100) % 10 == 0 ? "staging" : "production");
            labelset_set(&group, "__meta_scrape", "true");
            labelset_set(&group, "__meta_label_region", "eu-west-1");
            labelset_set(&group, "__meta_label_service", "checkout");
            labelset_set(&group, "__meta_team", "Payments");
        }
        labelset_clear(&tl);
        snprintf(addr, sizeof addr, "10.%ld.%ld.%ld:8080", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        labelset_set(&tl, "__address__", addr);
        labelset_set(&tl, "__meta_track", i % 50 == 0 ? "canary" : "stable");
        if (i % 3 == 0)
            labelset_set(&tl, "__meta_port", "9100");
        if (i % 7 == 0)
            labelset_set(&tl, "__meta_path", "/debug/exceptions");
        snprintf(buf, sizeof buf, "pod-%ld", i);
        labelset_set(&tl, "__meta_label_pod", buf);
        built_target bt;
        if (final)
            target_build_final(&sc, &group, &tl, &bt);
        else
            target_build(&sc, &group, &tl, &bt);
        if (bt.status == TARGET_ACTIVE)
            active++, sink ^= bt.hash;
        else if (bt.status == TARGET_DROPPED)
            dropped++;
        else
            failed++;
        built_target_free(&bt);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("relabel+target building: %.0f targets/s (%ld targets in %.3f s: %ld active, %ld dropped, %ld failed; %llx)\n",
           (double)n / secs, n, secs, active, dropped, failed, (unsigned long long)(sink & 0xff));
    labelset_free(&group);
    labelset_free(&tl);
    for (int i = 0; i < 10; i++)
        relabel_rule_free(&rules[i]);
    return failed ? 1 : 0;
}
