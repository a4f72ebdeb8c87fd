/* target_check_static (promtool check config's static targets) and the letters and digits of scrape URLs, which
 * test_target's cases did not reach (mutation testing of src/scrape/target.c). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "scrape/target.h"

static scrape_config cfg(sd_config *sd, size_t n)
{
    scrape_config sc;
    memset(&sc, 0, sizeof sc);
    sc.job_name = "job";
    sc.metrics_path = "/metrics";
    sc.scrape_interval_ms = 1000;
    sc.scrape_timeout_ms = 1000;
    sc.sd_configs = sd;
    sc.n_sd_configs = n;
    return sc;
}

Test(target_check, static_targets_first_failure_named_as_promtool)
{
    char *good[] = {"h:1", "10.0.0.1:9100"}, *bad[] = {"ok:1", "bad/addr:80"};
    sd_config sd[3];
    memset(sd, 0, sizeof sd);
    sd[0].kind = SD_FILE; /* not static: not checked */
    sd[1].kind = SD_STATIC;
    sd[1].index = 0;
    sd[1].u.static_sd.targets = good;
    sd[1].u.static_sd.n_targets = 2;
    sd[2].kind = SD_STATIC;
    sd[2].index = 1;
    sd[2].pos.line = 12;
    sd[2].u.static_sd.targets = bad;
    sd[2].u.static_sd.n_targets = 2;
    char err[512] = "";
    config_pos pos = {0};
    scrape_config sc = cfg(sd, 2);
    cr_assert_eq(target_check_static(&sc, &pos, err, sizeof err), 0);
    cr_assert_str_eq(err, "");
    sc = cfg(sd, 3);
    cr_assert_eq(target_check_static(&sc, &pos, err, sizeof err), -1);
    cr_assert_str_eq(err, "instance 1 in group 1: \"bad/addr:80\" is not a valid hostname");
    cr_assert_eq(pos.line, 12);
}

Test(target_check, letters_and_digits_are_not_escaped)
{
    scrape_config sc = cfg(NULL, 0);
    labelset l = LABELSET_INIT;
    labelset_set(&l, "__scheme__", "http");
    labelset_set(&l, "__address__", "10.0.0.9:9100");
    labelset_set(&l, "__metrics_path__", "/Am0/a9Z");
    labelset_set(&l, "__param_Q0", "A09");
    char *u = target_url(&sc, &l);
    cr_assert_str_eq(u, "http://10.0.0.9:9100/Am0/a9Z?Q0=A09");
    free(u);
    labelset_free(&l);
}
