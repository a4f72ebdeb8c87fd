/* Persisted discovery groups: the file format (cache.c) and the manager's use of it — write after a good
 * refresh, reload at start as stale groups until the first success, config changes invalidate, debounce. */
#include <criterion/criterion.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sd/cache.h"
#include "sd_test_util.h"
#include "util/metrics.h"

static double gauge2(const char *name, const char *job, const char *prov)
{
    const char *lv[] = {job, prov};
    return metric_value(metric_family_get(name, METRIC_GAUGE, "", 2, (const char *[]){"job", "provider"}), lv);
}

static char *mktmp(void)
{
    char *d = strdup("/tmp/lookout-sdcache.XXXXXX");
    cr_assert(mkdtemp(d));
    return d;
}

static void rm_rf(const char *d)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    cr_assert_eq(system(cmd), 0);
}

static void write_file(const char *path, const char *text)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    FILE *f = fopen(tmp, "w");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(rename(tmp, path), 0);
}

static bool file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static target_group mk_group(const char *source, const char *const *addrs, const char *lname, const char *lval)
{
    target_group g;
    target_group_init(&g, source);
    if (lname)
        labelset_set(&g.labels, lname, lval);
    for (size_t i = 0; addrs[i]; i++) {
        labelset t = LABELSET_INIT;
        labelset_set(&t, "__address__", addrs[i]);
        target_group_add_target(&g, &t);
        labelset_free(&t);
    }
    return g;
}

static sd_config file_block(const char *pattern, int64_t refresh)
{
    static char *files[1];
    files[0] = (char *)pattern;
    sd_config c;
    memset(&c, 0, sizeof c);
    c.kind = SD_FILE;
    c.u.file.files = files;
    c.u.file.n_files = 1;
    c.u.file.refresh_interval_ms = refresh;
    return c;
}

/* ---- cache.c ---- */

Test(sd_cache, write_then_load_round_trips)
{
    char *dir = mktmp();
    sd_config c = file_block("/x/*.json", 60000);
    char id[65], hex[65];
    cr_assert_eq(sd_cache_id("job \"a\"", "file_sd_configs/0", &c, id, hex), 0);
    cr_assert_eq(strlen(id), 64);
    target_group g[2] = {mk_group("/x/a.json:0", (const char *[]){"a:1", "b:2", NULL}, "env", "pr\"od\n"),
                         mk_group("/x/a.json:1", (const char *[]){"[::1]:3", NULL}, NULL, NULL)};
    labelset_set(&g[1].targets[0], "__meta_x", "ü");
    const target_group *gp[2] = {&g[0], &g[1]};
    char err[512] = "";
    cr_assert_eq(sd_cache_write(dir, id, "job \"a\"", "file_sd_configs/0", hex, gp, 2, err, sizeof err), 0, "%s", err);

    target_group *out = NULL;
    size_t n = 0;
    double at = 0;
    cr_assert_eq(sd_cache_load(dir, id, "job \"a\"", "file_sd_configs/0", hex, &out, &n, &at, err, sizeof err), 1,
                 "%s", err);
    cr_assert_eq(n, 2);
    cr_assert_gt(at, 1e9);
    for (size_t i = 0; i < 2; i++) {
        cr_assert_str_eq(out[i].source, g[i].source);
        cr_assert(labelset_equal(&out[i].labels, &g[i].labels));
        cr_assert_eq(out[i].n_targets, g[i].n_targets);
        for (size_t t = 0; t < g[i].n_targets; t++)
            cr_assert(labelset_equal(&out[i].targets[t], &g[i].targets[t]));
    }
    sd_groups_free(out, n);
    target_group_free(&g[0]);
    target_group_free(&g[1]);

    /* another job, provider or config digest: refused, not silently used */
    cr_assert_eq(sd_cache_load(dir, id, "other", "file_sd_configs/0", hex, &out, &n, &at, err, sizeof err), -1);
    cr_assert_eq(sd_cache_load(dir, id, "job \"a\"", "file_sd_configs/1", hex, &out, &n, &at, err, sizeof err), -1);
    char hex2[65];
    memcpy(hex2, hex, 65);
    hex2[0] = hex2[0] == '0' ? '1' : '0';
    cr_assert_eq(sd_cache_load(dir, id, "job \"a\"", "file_sd_configs/0", hex2, &out, &n, &at, err, sizeof err), -1);
    /* no temp file left behind */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s/%s.json.tmp", dir, id);
    cr_assert(!file_exists(tmp));
    rm_rf(dir);
    free(dir);
}

Test(sd_cache, missing_and_malformed_files)
{
    char *dir = mktmp();
    char id[65], hex[65], path[600], err[512];
    sd_config c = file_block("/x/*.json", 60000);
    sd_cache_id("j", "file_sd_configs/0", &c, id, hex);
    target_group *out = NULL;
    size_t n = 0;
    cr_assert_eq(sd_cache_load(dir, id, "j", "file_sd_configs/0", hex, &out, &n, NULL, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/%s.json", dir, id);
    const char *bad[] = {
        "{", "[]", "{\"version\":2}",
        "{\"version\":1,\"job\":\"j\",\"provider\":\"file_sd_configs/0\",\"config_sha256\":\"%s\",\"groups\":[{\"labels\":{}}]}",
        "{\"version\":1,\"job\":\"j\",\"provider\":\"file_sd_configs/0\",\"config_sha256\":\"%s\",\"groups\":[{\"source\":\"s\",\"labels\":{},\"targets\":[{\"a\":\"b\"}]}]}",
        "{\"version\":1,\"job\":\"j\",\"provider\":\"file_sd_configs/0\",\"config_sha256\":\"%s\",\"groups\":[{\"source\":\"s\",\"labels\":{\"x\":1},\"targets\":[]}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text, bad[i], hex);
        write_file(path, text);
        err[0] = 0;
        cr_assert_eq(sd_cache_load(dir, id, "j", "file_sd_configs/0", hex, &out, &n, NULL, err, sizeof err), -1,
                     "case %zu", i);
        cr_assert_neq(err[0], 0);
    }
    /* a valid one with an empty group list loads as zero groups */
    char text[1024];
    snprintf(text, sizeof text,
             "{\"version\":1,\"job\":\"j\",\"provider\":\"file_sd_configs/0\",\"config_sha256\":\"%s\",\"groups\":[]}", hex);
    write_file(path, text);
    cr_assert_eq(sd_cache_load(dir, id, "j", "file_sd_configs/0", hex, &out, &n, NULL, err, sizeof err), 1);
    cr_assert_eq(n, 0);
    free(out);
    /* ids are validated: no path tricks */
    cr_assert_eq(sd_cache_load(dir, "../etc", "j", "p", hex, &out, &n, NULL, err, sizeof err), -1);
    rm_rf(dir);
    free(dir);
}

Test(sd_cache, identity_follows_config_and_hides_secrets)
{
    sd_config a = file_block("/x/*.json", 60000);
    char id1[65], id2[65], id3[65], id4[65];
    sd_cache_id("j", "file_sd_configs/0", &a, id1, NULL);
    a.u.file.refresh_interval_ms = 30000;
    sd_cache_id("j", "file_sd_configs/0", &a, id2, NULL);
    sd_cache_id("k", "file_sd_configs/0", &a, id3, NULL);
    sd_cache_id("j", "file_sd_configs/1", &a, id4, NULL);
    cr_assert_str_neq(id1, id2);
    cr_assert_str_neq(id2, id3);
    cr_assert_str_neq(id2, id4);

    sd_config k;
    memset(&k, 0, sizeof k);
    k.kind = SD_KUBERNETES;
    k.u.kubernetes.role = K8S_ROLE_POD;
    k.u.kubernetes.api_server = "https://k";
    k.u.kubernetes.http.has_authorization = true;
    k.u.kubernetes.http.authorization_credentials = "s3cret-token";
    char *with = sd_config_canonical(&k, true), *without = sd_config_canonical(&k, false);
    cr_assert(strstr(with, "s3cret-token"));
    cr_assert_null(strstr(without, "s3cret-token"));
    free(with);
    free(without);
    /* selectors are part of the identity */
    char *c1 = sd_config_canonical(&k, false);
    kubernetes_selector sel = {K8S_ROLE_POD, "app=a", NULL};
    k.u.kubernetes.selectors = &sel;
    k.u.kubernetes.n_selectors = 1;
    char *c2 = sd_config_canonical(&k, false);
    cr_assert_str_neq(c1, c2);
    free(c1);
    free(c2);
    /* kinds without a canonical form (static: nothing to cache) are not cached */
    sd_config d;
    memset(&d, 0, sizeof d);
    d.kind = SD_KIND_COUNT;
    cr_assert_null(sd_config_canonical(&d, false));
    cr_assert_eq(sd_cache_id("j", "x_sd_configs/0", &d, id1, NULL), -1);
    /* a consul token is part of the identity but never written in clear */
    sd_config c;
    memset(&c, 0, sizeof c);
    c.kind = SD_CONSUL;
    c.u.consul.token = "s3cret-token";
    char *cw = sd_config_canonical(&c, false);
    cr_assert_not_null(cw);
    cr_assert_null(strstr(cw, "s3cret-token"));
    free(cw);
}

Test(sd_cache, gc_removes_only_unknown_ids)
{
    char *dir = mktmp();
    char keep[65], drop[65], p[700];
    memset(keep, 'a', 64), keep[64] = 0;
    memset(drop, 'b', 64), drop[64] = 0;
    const char *names[] = {"%s/%s.json", "%s/%s.json.tmp"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, names[i], dir, keep);
        write_file(p, "{}");
        snprintf(p, sizeof p, names[i], dir, drop);
        write_file(p, "{}");
    }
    snprintf(p, sizeof p, "%s/README", dir);
    write_file(p, "not ours");
    const char *k[] = {keep};
    cr_assert_eq(sd_cache_gc(dir, k, 1), 2);
    snprintf(p, sizeof p, "%s/%s.json", dir, keep);
    cr_assert(file_exists(p));
    snprintf(p, sizeof p, "%s/%s.json", dir, drop);
    cr_assert(!file_exists(p));
    snprintf(p, sizeof p, "%s/README", dir);
    cr_assert(file_exists(p));
    rm_rf(dir);
    free(dir);
}

/* ---- the manager ---- */

typedef struct env {
    char *dir;       /* storage path */
    char sd_file[600], pattern[600];
} env;

static void env_init(env *e)
{
    e->dir = mktmp();
    snprintf(e->pattern, sizeof e->pattern, "%s/targets/*.json", e->dir);
    snprintf(e->sd_file, sizeof e->sd_file, "%s/targets/a.json", e->dir);
    char d[600];
    snprintf(d, sizeof d, "%s/targets", e->dir);
    cr_assert_eq(mkdir(d, 0755), 0);
}

static lookout_config *file_cfg(const env *e, int64_t refresh)
{
    lookout_config *cfg = tcfg_new();
    scrape_config *sc = tcfg_job(cfg, "files");
    tcfg_file(sc, 0, (const char *[]){e->pattern, NULL}, refresh);
    return cfg;
}

static sd_manager *start(recorder *r, const env *e, const lookout_config *cfg, int64_t cache_ms)
{
    sd_manager *m = sd_manager_new(rec_sync, r, 20);
    sd_manager_set_cache_interval_ms(m, cache_ms);
    sd_manager_set_storage_path(m, e->dir);
    sd_manager_apply_config(m, cfg);
    return m;
}

static void cache_path(const env *e, const lookout_config *cfg, char *out, size_t len)
{
    char id[65];
    cr_assert_eq(sd_cache_id("files", "file_sd_configs/0", &cfg->scrape_configs[0].sd_configs[0], id, NULL), 0);
    snprintf(out, len, "%s/sd/%s.json", e->dir, id);
}

static bool file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, needle) != NULL;
}

static bool wait_file_has(const char *path, const char *needle, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        if (file_has(path, needle))
            return true;
        sleep_ms(10);
    }
    return file_has(path, needle);
}

static bool pred_only_b1(const rec_call *c, void *arg)
{
    (void)arg;
    return call_targets(c) == 1 && call_has_address(c, "b:1");
}

Test(sd_cache, restart_serves_persisted_groups_until_first_success)
{
    env e;
    env_init(&e);
    write_file(e.sd_file, "[{\"targets\":[\"a:1\",\"a:2\"],\"labels\":{\"env\":\"prod\"}}]");
    lookout_config *cfg = file_cfg(&e, 60000);
    char cpath[700];
    cache_path(&e, cfg, cpath, sizeof cpath);

    recorder r;
    rec_init(&r);
    sd_manager *m = start(&r, &e, cfg, 5000);
    cr_assert(rec_wait_for(&r, "files", pred_has, "a:2", 2000));
    cr_assert(wait_file_has(cpath, "\"a:2\"", 2000), "written right after the first success");
    cr_assert_eq(gauge2("lookout_sd_groups_from_cache", "files", "file_sd_configs/0"), 0);
    sd_manager_free(m);
    rec_free(&r);

    /* The source breaks while we are down: a fresh start would have nothing to scrape. */
    write_file(e.sd_file, "[{\"targets\": ");
    rec_init(&r);
    m = start(&r, &e, cfg, 5000);
    cr_assert(rec_wait(&r, "files", 1, 2000));
    const rec_call *c = rec_last(&r, "files");
    cr_assert(call_has_address(c, "a:1") && call_has_address(c, "a:2"), "seeded from the cache");
    cr_assert_str_eq(labelset_get(&c->groups[0].labels, "env"), "prod");
    cr_assert_str_eq(labelset_get(&c->groups[0].labels, "__meta_filepath"), e.sd_file);
    cr_assert_eq(gauge2("lookout_sd_groups_from_cache", "files", "file_sd_configs/0"), 1);
    cr_assert_eq(gauge2("lookout_sd_discovered_targets", "files", "file_sd_configs/0"), 2);
    /* the failed refresh did not overwrite the cache */
    sleep_ms(100);
    cr_assert(file_has(cpath, "\"a:2\""));

    /* The source comes back with other targets: they replace the cached ones, and are persisted. */
    write_file(e.sd_file, "[{\"targets\":[\"b:1\"]}]");
    cr_assert(rec_wait_for(&r, "files", pred_only_b1, NULL, 3000), "fresh groups replace the cached ones");
    cr_assert_eq(gauge2("lookout_sd_groups_from_cache", "files", "file_sd_configs/0"), 0);
    cr_assert(wait_file_has(cpath, "\"b:1\"", 2000));
    cr_assert(!file_has(cpath, "\"a:1\""));
    sd_manager_free(m);
    rec_free(&r);
    tcfg_free(cfg);
    rm_rf(e.dir);
    free(e.dir);
}

Test(sd_cache, changed_config_does_not_use_stale_groups)
{
    env e;
    env_init(&e);
    write_file(e.sd_file, "[{\"targets\":[\"a:1\"]}]");
    lookout_config *cfg = file_cfg(&e, 60000);
    char old_path[700];
    cache_path(&e, cfg, old_path, sizeof old_path);
    recorder r;
    rec_init(&r);
    sd_manager *m = start(&r, &e, cfg, 5000);
    cr_assert(wait_file_has(old_path, "\"a:1\"", 2000));
    sd_manager_free(m);
    rec_free(&r);
    tcfg_free(cfg);

    write_file(e.sd_file, "[{\"targets\": ");
    cfg = file_cfg(&e, 30000); /* another refresh_interval: another identity */
    rec_init(&r);
    m = start(&r, &e, cfg, 5000);
    cr_assert(rec_wait(&r, "files", 1, 2000));
    cr_assert_eq(rec_last(&r, "files")->n, 0, "no stale groups for a changed block");
    cr_assert_eq(gauge2("lookout_sd_groups_from_cache", "files", "file_sd_configs/0"), 0);
    cr_assert(!file_exists(old_path), "the old block's file is collected");
    sd_manager_free(m);
    rec_free(&r);
    tcfg_free(cfg);
    rm_rf(e.dir);
    free(e.dir);
}

Test(sd_cache, writes_are_debounced_and_flushed_at_shutdown)
{
    env e;
    env_init(&e);
    write_file(e.sd_file, "[{\"targets\":[\"a:1\"]}]");
    lookout_config *cfg = file_cfg(&e, 60000);
    char cpath[700];
    cache_path(&e, cfg, cpath, sizeof cpath);
    recorder r;
    rec_init(&r);
    /* the first write is after t0: while less than the interval has passed since t0, it is not rewritten
     * (a test thread stalled past the interval, on a loaded machine, cannot tell: it does not check) */
    int64_t t0 = sd_now_mono_ms();
    sd_manager *m = start(&r, &e, cfg, 1500);
    cr_assert(wait_file_has(cpath, "\"a:1\"", 2000));
    write_file(e.sd_file, "[{\"targets\":[\"a:2\"]}]");
    cr_assert(rec_wait_for(&r, "files", pred_has, "a:2", 2000));
    sleep_ms(200);
    bool had_a1 = file_has(cpath, "\"a:1\"");
    if (sd_now_mono_ms() - t0 < 1500)
        cr_assert(had_a1, "not rewritten within the interval");
    cr_assert(wait_file_has(cpath, "\"a:2\"", 3000), "rewritten once the interval is over");
    /* a change just before shutdown is not lost */
    write_file(e.sd_file, "[{\"targets\":[\"a:3\"]}]");
    cr_assert(rec_wait_for(&r, "files", pred_has, "a:3", 2000));
    sd_manager_free(m);
    cr_assert(file_has(cpath, "\"a:3\""));
    rec_free(&r);
    tcfg_free(cfg);
    rm_rf(e.dir);
    free(e.dir);
}

Test(sd_cache, no_storage_path_no_files)
{
    env e;
    env_init(&e);
    write_file(e.sd_file, "[{\"targets\":[\"a:1\"]}]");
    lookout_config *cfg = file_cfg(&e, 60000);
    recorder r;
    rec_init(&r);
    sd_manager *m = sd_manager_new(rec_sync, &r, 20);
    sd_manager_apply_config(m, cfg);
    cr_assert(rec_wait_for(&r, "files", pred_has, "a:1", 2000));
    sd_manager_free(m);
    char d[600];
    snprintf(d, sizeof d, "%s/sd", e.dir);
    cr_assert(!file_exists(d));
    rec_free(&r);
    tcfg_free(cfg);
    rm_rf(e.dir);
    free(e.dir);
}

/* The reader streams (issue 12: the file's jansson tree took 12 times the file): a repeated key's last
 * occurrence decides (groups, a group's labels and targets, a label), keys it does not read and their
 * values of any shape are skipped, the header may follow the groups, and the first malformed group is
 * named whatever follows it. */
Test(sd_cache, streamed_reader_last_key_wins)
{
    char *dir = mktmp();
    char id[65], hex[65], path[600], err[512], text[2048];
    sd_config c = file_block("/x/*.json", 60000);
    sd_cache_id("j", "file_sd_configs/0", &c, id, hex);
    snprintf(path, sizeof path, "%s/%s.json", dir, id);
    snprintf(text, sizeof text,
             "{\"groups\":[{\"source\":\"old\",\"labels\":{},\"targets\":[{\"__address__\":\"o:1\"}]}],"
             "\"x\":[[{\"groups\":1}],{\"labels\":{\"a\":1}}],"
             "\"groups\":[{\"source\":\"s\",\"labels\":{\"a\":\"1\",\"a\":\"2\",\"b\":\"x\",\"b\":\"\"},"
             "\"targets\":[5],\"targets\":[{\"__address__\":\"h:1\",\"k\":\"v\",\"k\":\"w\"},{\"__address__\":\"h:2\"}],"
             "\"extra\":{\"labels\":[1,{\"y\":[]}]},\"n\":5,\"t\":true,\"source\":\"s2\"},"
             "{\"source\":\"t\",\"labels\":[],\"labels\":{},\"targets\":[{\"__address__\":\"h:3\"}]}],"
             "\"version\":2,\"version\":1,\"job\":\"j\",\"provider\":\"file_sd_configs/0\",\"config_sha256\":\"%s\","
             "\"saved_at\":12.5}",
             hex);
    write_file(path, text);
    target_group *out = NULL;
    size_t n = 0;
    double at = 0;
    cr_assert_eq(sd_cache_load(dir, id, "j", "file_sd_configs/0", hex, &out, &n, &at, err, sizeof err), 1, "%s", err);
    cr_assert_eq(n, 2);
    cr_assert(at == 12.5);
    cr_assert_str_eq(out[0].source, "s2");
    cr_assert_eq(out[0].labels.n, 1);
    cr_assert_str_eq(labelset_get(&out[0].labels, "a"), "2");
    cr_assert_eq(out[0].n_targets, 2);
    cr_assert_str_eq(labelset_get(&out[0].targets[0], "k"), "w");
    cr_assert_str_eq(labelset_get(&out[0].targets[1], "__address__"), "h:2");
    cr_assert_str_eq(out[1].source, "t");
    cr_assert_eq(out[1].labels.n, 0);
    sd_groups_free(out, n);
    /* malformed groups: the first one is named, whatever follows */
    const char *bad[][2] = {
        {"[{\"source\":\"s\",\"labels\":{},\"targets\":[]},{\"source\":\"u\",\"labels\":{},\"targets\":[{\"a\":\"b\"}]},7]",
         "group 1 target 0 is malformed"},
        {"[{\"source\":\"s\",\"labels\":{},\"targets\":[{\"__address__\":\"h\"},[],{\"__address__\":1}]}]",
         "group 0 target 1 is malformed"},
        {"[{\"source\":\"s\",\"labels\":{\"a\":{}},\"targets\":[]}]", "group 0 is malformed"},
        {"[{\"source\":5,\"labels\":{},\"targets\":[]}]", "group 0 is malformed"},
        {"[{\"source\":\"s\",\"targets\":[]}]", "group 0 is malformed"},
        {"[{\"source\":\"s\",\"labels\":{},\"targets\":{}}]", "group 0 is malformed"},
        {"[{\"source\":\"s\",\"labels\":{},\"targets\":[]},[]]", "group 1 is malformed"},
        {"[{\"source\":\"s\",\"labels\":{},\"targets\":[{\"__address__\":\"h\"},5]}]", "group 0 target 1 is malformed"},
        {"[{\"source\":\"s\",\"labels\":[],\"targets\":[]}]", "group 0 is malformed"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(text, sizeof text,
                 "{\"version\":1,\"job\":\"j\",\"provider\":\"file_sd_configs/0\",\"config_sha256\":\"%s\",\"groups\":%s}",
                 hex, bad[i][0]);
        write_file(path, text);
        cr_assert_eq(sd_cache_load(dir, id, "j", "file_sd_configs/0", hex, &out, &n, NULL, err, sizeof err), -1,
                     "case %zu", i);
        char want[700];
        snprintf(want, sizeof want, "%.600s: %s", path, bad[i][1]);
        cr_assert_str_eq(err, want, "case %zu", i);
    }
    /* the header decides before the groups; a syntax error before both */
    snprintf(text, sizeof text, "{\"version\":1,\"job\":\"k\",\"provider\":\"file_sd_configs/0\",\"config_sha256\":\"%s\","
             "\"groups\":[7]}", hex);
    write_file(path, text);
    cr_assert_eq(sd_cache_load(dir, id, "j", "file_sd_configs/0", hex, &out, &n, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "belongs to another job"), "%s", err);
    snprintf(text, sizeof text, "{\"version\":1.0,\"job\":\"j\",\"provider\":\"file_sd_configs/0\",\"config_sha256\":\"%s\","
             "\"groups\":[]}", hex);
    write_file(path, text);
    cr_assert_eq(sd_cache_load(dir, id, "j", "file_sd_configs/0", hex, &out, &n, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "not a version 1 cache file"), "%s", err);
    /* a NUL in a string, as jansson refused it */
    snprintf(text, sizeof text, "{\"version\":1,\"job\":\"j\",\"provider\":\"file_sd_configs/0\",\"config_sha256\":\"%s\","
             "\"groups\":[{\"source\":\"s\",\"labels\":{\"a\":\"x\\u0000y\"},\"targets\":[]}]}", hex);
    write_file(path, text);
    cr_assert_eq(sd_cache_load(dir, id, "j", "file_sd_configs/0", hex, &out, &n, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "\\u0000 is not allowed"), "%s", err);
    /* an invalid id is refused by the writer too */
    cr_assert_eq(sd_cache_write(dir, "../x", "j", "p", hex, NULL, 0, err, sizeof err), -1);
    cr_assert_str_eq(err, "invalid cache id");
    write_file(path, "{\"version\":1,\"groups\":[7] x");
    cr_assert_eq(sd_cache_load(dir, id, "j", "file_sd_configs/0", hex, &out, &n, NULL, err, sizeof err), -1);
    cr_assert_null(strstr(err, "malformed"), "%s", err);
    cr_assert_null(strstr(err, "version"), "%s", err);
    rm_rf(dir);
    free(dir);
}
