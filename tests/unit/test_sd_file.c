/* File SD: parsing and validation (fixtures in tests/fixtures/sd), and the watching provider driven by the
 * real discovery manager in real temporary directories with real inotify. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sd_test_util.h"
#include "util/metrics.h"
#include "util/strbuf.h"
#include "test_files.h"

#define FX "tests/fixtures/sd/"

/* ---- parsing ---- */

Test(sd_file_parse, json_groups_sources_and_filepath)
{
    target_group *g;
    size_t n;
    char err[256];
    cr_assert_eq(sd_file_read(FX "good.json", &g, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(g[0].source, FX "good.json:0");
    cr_assert_str_eq(g[2].source, FX "good.json:2");
    cr_assert_eq(g[0].n_targets, 2);
    cr_assert_str_eq(labelset_get(&g[0].targets[1], "__address__"), "10.0.0.2:9090");
    cr_assert_str_eq(labelset_get(&g[0].labels, "env"), "prod");
    cr_assert_str_eq(labelset_get(&g[0].labels, "team"), "core");
    cr_assert_str_eq(labelset_get(&g[0].labels, "__meta_filepath"), FX "good.json");
    cr_assert_eq(g[1].labels.n, 1); /* only __meta_filepath */
    /* encoding/json matches field names case-insensitively */
    cr_assert_str_eq(labelset_get(&g[2].labels, "env"), "dev");
    cr_assert_str_eq(labelset_get(&g[2].targets[0], "__address__"), "10.0.0.4:9090");
    sd_groups_free(g, n);
}

Test(sd_file_parse, yaml_groups_scalars_are_strings)
{
    target_group *g;
    size_t n;
    char err[256];
    cr_assert_eq(sd_file_read(FX "good.yml", &g, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 2); /* the third group has no targets: nothing to return */
    cr_assert_str_eq(labelset_get(&g[0].labels, "port"), "8080");
    cr_assert_str_eq(labelset_get(&g[0].labels, "env"), "staging");
    cr_assert_str_eq(labelset_get(&g[0].targets[0], "__address__"), "web-1:8080");
    cr_assert_str_eq(g[1].source, FX "good.yml:1");
    cr_assert_str_eq(labelset_get(&g[1].targets[0], "__address__"), "db:5432");
    cr_assert_str_eq(labelset_get(&g[1].labels, "__meta_filepath"), FX "good.yml");
    sd_groups_free(g, n);
}

Test(sd_file_parse, yaml_aliases_within_reason)
{
    target_group *g;
    size_t n;
    char err[256];
    cr_assert_eq(sd_file_read(FX "alias_ok.yml", &g, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(labelset_get(&g[1].labels, "team"), "core");
    sd_groups_free(g, n);
}

Test(sd_file_parse, null_and_empty_files)
{
    target_group *g = NULL;
    size_t n = 99;
    char err[256];
    cr_assert_eq(sd_file_read(FX "null.json", &g, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 0);
    sd_groups_free(g, n);
    n = 99;
    cr_assert_eq(sd_file_read(FX "empty.yaml", &g, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 0);
    sd_groups_free(g, n);
    /* as in Go, an empty JSON file is a syntax error (and so a half-written file keeps its targets) */
    cr_assert_eq(sd_file_read(FX "empty.json", &g, &n, err, sizeof err), -1);
}

/* The error texts name the position (1-based line and column, as Go's yaml.v2 does) and what was wrong. */
Test(sd_file_parse, yaml_errors_name_the_position)
{
    static const struct {
        const char *doc, *want;
    } cases[] = {
        {"- targets: [a:1]\n- targets: [[b:1]]\n", "line 2 column 13: targets: expected a string, got list"},
        {"- targets:\n  - {x: 1}\n", "line 2 column 5: targets: expected a string, got mapping"},
        {"- targets: [a:1]\n  labels: {a: [}\n", "line 2 column 16: "},
        {"- targets: [a:1\n", "line 2 column 1: "},
        /* a labels mapping's errors in document order: a repeated name (its second key), an invalid name, a
         * value that is not a string, whichever comes first */
        {"- targets: [a:1]\n  labels: {b: 1, a: 2, c: [x], b: 3}\n", "line 2 column 27: label c: expected a string, got list"},
        {"- targets: [a:1]\n  labels: {b: 1, a: 2, b: [x], c: 3}\n", "line 2 column 24: key \"b\" already set in map"},
        {"- targets: [a:1]\n  labels: {b: 1, 0a: 2, b: 3}\n", "line 2 column 18: \"0a\" is not a valid label name"},
        {"- targets: [a:1]\n  labels: {z: 1, y: 2, y: 3, z: 4}\n", "line 2 column 24: key \"y\" already set in map"},
        /* a group key that is not a string (a flow list or mapping as key), never read as a field name */
        {"- {[a]: 1, targets: [a:1]}\n", "line 1 column 3: group 0: expected a string key"},
        {"- targets: [a:1]\n- {{b: c}: 1}\n", "line 2 column 3: group 1: expected a string key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        target_group *g = NULL;
        size_t n = 0;
        char err[256] = "";
        cr_assert_eq(sd_file_parse("x.yml", cases[i].doc, strlen(cases[i].doc), &g, &n, err, sizeof err), -1,
                     "case %zu parsed", i);
        cr_assert(strncmp(err, cases[i].want, strlen(cases[i].want)) == 0, "case %zu: %s", i, err);
    }
}

/* libyaml's scanner is quadratic in flow nesting ("[[[[..."): deep documents are refused before loading, and
 * so is repeating a section just under the depth limit (found while fuzzing file_sd). */
/* A big labels mapping is set all at once (one name at a time, keys in descending order moved the whole set
 * for each key: quadratic, 4.2 s for this one), with every value. */
Test(sd_file_parse, yaml_big_labels_mapping_descending)
{
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "- targets: [a:1]\n  labels:\n");
    for (int i = 99999; i >= 0; i--)
        strbuf_printf(&sb, "    l%05d: v%d\n", i, i);
    strbuf_puts(&sb, "    e: ~\n");
    target_group *g = NULL;
    size_t n = 0;
    char err[256] = "";
    cr_assert_eq(sd_file_parse("x.yml", sb.buf, sb.len, &g, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 1);
    cr_assert_eq(g[0].labels.n, 100001); /* and __meta_filepath */
    cr_assert_str_eq(labelset_get(&g[0].labels, "l00000"), "v0");
    cr_assert_str_eq(labelset_get(&g[0].labels, "l99999"), "v99999");
    cr_assert_null(labelset_get(&g[0].labels, "e"));
    sd_groups_free(g, n);
    strbuf_free(&sb);
}

Test(sd_file_parse, yaml_nesting_is_bounded)
{
    size_t n = 200000;
    char *deep = malloc(2 * n);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    target_group *g = NULL;
    size_t k = 0;
    char err[256];
    cr_assert_eq(sd_file_parse("deep.yml", deep, 2 * n, &g, &k, err, sizeof err), -1);
    cr_assert(strstr(err, "line 1 column 1001: exceeded max depth of 1000"), "%s", err);
    /* 900-deep sections, 200 of them: each is legal, together the scanner's work is not. */
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "[");
    for (int i = 0; i < 200; i++) {
        for (int j = 0; j < 900; j++)
            strbuf_puts(&sb, "[");
        for (int j = 0; j < 900; j++)
            strbuf_puts(&sb, "]");
        strbuf_puts(&sb, ", ");
    }
    strbuf_puts(&sb, "1]");
    cr_assert_eq(sd_file_parse("rep.yml", sb.buf, sb.len, &g, &k, err, sizeof err), -1);
    cr_assert(strstr(err, "too much nesting for the document's size"), "%s", err);
    strbuf_free(&sb);
    /* Ordinary nesting is untouched. */
    const char *ok = "- targets: [a]\n  labels: {x: y}\n";
    cr_assert_eq(sd_file_parse("ok.yml", ok, strlen(ok), &g, &k, err, sizeof err), 0, "%s", err);
    sd_groups_free(g, k);
    free(deep);
}

Test(sd_file_parse, invalid_files_are_rejected_with_reason)
{
    static const struct {
        const char *file, *want;
    } cases[] = {
        {"bad_label_name.json", "\"0bad\" is not a valid label name"},
        {"bad_label_value.json", "label port: expected a string, got number"},
        {"bad_target.json", "target 1: expected a string"},
        {"nil_group.json", "nil target group item found"},
        {"unknown_field.json", "unknown field \"label\""},
        {"syntax.json", "line 2 column"},
        {"syntax.yaml", "line 2 column"},
        {"unknown_field.yml", "line 2 column 3: field lables not found"},
        {"duplicate_key.yml", "line 2 column 3: key \"targets\" already set"},
        {"nested_label.yml", "label a: expected a string, got mapping"},
        {"not_a_list.yml", "line 1 column 1: expected a list of target groups"},
        {"nil_group.yml", "nil target group item found"},
        {"does_not_exist.json", "No such file"},
        {"alias_bomb.yml", "(aliases)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char path[256], err[256] = "";
        snprintf(path, sizeof path, FX "%s", cases[i].file);
        target_group *g = NULL;
        size_t n = 0;
        cr_assert_eq(sd_file_read(path, &g, &n, err, sizeof err), -1, "%s accepted", cases[i].file);
        cr_assert_not_null(strstr(err, cases[i].want), "%s: got \"%s\", want \"%s\"", cases[i].file, err,
                           cases[i].want);
    }
    target_group *g;
    size_t n;
    char err[256];
    cr_assert_eq(sd_file_parse("x.txt", "[]", 2, &g, &n, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "unhandled file extension .txt"));
    /* the extension decides, in any case */
    cr_assert_eq(sd_file_parse("X.JSON", "[]", 2, &g, &n, err, sizeof err), 0);
    sd_groups_free(g, n);
}

/* ---- temporary directories ---- */

typedef struct tdir {
    char root[64];
} tdir;

static void tdir_make(tdir *t)
{
    strcpy(t->root, "/tmp/lookout-sd-XXXXXX");
    cr_assert_not_null(mkdtemp(t->root));
}

static void path_of(const tdir *t, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", t->root, name);
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (e->d_type == DT_DIR)
            rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Writes in place (truncate + write), like `echo > file`. */
static void put(const tdir *t, const char *name, const char *content)
{
    char p[256];
    path_of(t, name, p, sizeof p);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f, "%s", p);
    fputs(content, f);
    fclose(f);
}

/* A regular file whose size stat does not know (st_size 0, as every /proc file): read until its end, not
 * cut at the size fstat gave. The content is this thread's name (/proc/thread-self/comm), set to a
 * 14-byte YAML document; a link gives it the .yml name. */
Test(sd_file_parse, file_larger_than_its_stat_size)
{
    tdir t;
    tdir_make(&t);
    char link[256], old[16] = "";
    path_of(&t, "comm.yml", link, sizeof link);
    cr_assert_eq(symlink("/proc/thread-self/comm", link), 0);
    struct stat st;
    cr_assert_eq(stat(link, &st), 0);
    cr_assert(S_ISREG(st.st_mode) && st.st_size == 0, "size %lld", (long long)st.st_size);
    prctl(PR_GET_NAME, old);
    cr_assert_eq(prctl(PR_SET_NAME, "- targets: [a]"), 0);
    target_group *g = NULL;
    size_t n = 0;
    char err[256] = "";
    int rc = sd_file_read(link, &g, &n, err, sizeof err);
    prctl(PR_SET_NAME, old);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(n, 1);
    cr_assert_eq(g[0].n_targets, 1);
    cr_assert_str_eq(labelset_get(&g[0].targets[0], "__address__"), "a");
    sd_groups_free(g, n);
    rm_tree(t.root);
}

static double read_errors(void)
{
    return metric_value(metric_family_get("lookout_sd_file_read_errors_total", METRIC_COUNTER, "", 0, NULL), NULL);
}

/* Scans (full reads of a provider's files) so far, from the scan duration histogram's count. A provider
 * scans once in its start (inside sd_manager_apply_config) and once per watch event or refresh. */
static double scans(void)
{
    static const double b[] = {.0005, .001, .005, .01, .05, .1, .5, 1, 5};
    return metric_value(metric_histogram_get("lookout_sd_file_scan_duration_seconds",
                                             "The duration of the file SD scan in seconds.", 0, NULL, b, 9),
                        NULL);
}

/* Waits (10 s at most) until the scan count reaches n. */
static bool wait_scans(double n)
{
    int64_t end = sd_now_mono_ms() + 10000;
    while (scans() < n) {
        if (sd_now_mono_ms() > end)
            return false;
        sleep_ms(2);
    }
    return true;
}

typedef struct fixture {
    tdir t;
    recorder r;
    sd_manager *m;
    lookout_config *cfg;
} fixture;

/* One job "f" with one file_sd block over the given patterns (relative to the temp dir). */
static lookout_config *file_cfg(const tdir *t, const char *const *rel, int64_t refresh_ms)
{
    char paths[4][256];
    const char *pv[5] = {0};
    for (size_t i = 0; rel[i] && i < 4; i++) {
        path_of(t, rel[i], paths[i], sizeof paths[i]);
        pv[i] = paths[i];
    }
    lookout_config *cfg = tcfg_new();
    tcfg_file(tcfg_job(cfg, "f"), 0, pv, refresh_ms);
    return cfg;
}

static void fx_start(fixture *fx, const char *const *rel, int64_t refresh_ms, int64_t min_interval_ms)
{
    rec_init(&fx->r);
    fx->m = sd_manager_new(rec_sync, &fx->r, min_interval_ms);
    fx->cfg = file_cfg(&fx->t, rel, refresh_ms);
    sd_manager_apply_config(fx->m, fx->cfg);
    cr_assert(rec_wait(&fx->r, "f", 1, 2000));
}

static void fx_end(fixture *fx)
{
    sd_manager_free(fx->m);
    tcfg_free(fx->cfg);
    rec_free(&fx->r);
    rm_tree(fx->t.root);
}

#define HOUR (3600 * 1000)

/* ---- watching ---- */

Test(sd_file_watch, json_yaml_globs_sources_and_filepath)
{
    fixture fx;
    tdir_make(&fx.t);
    put(&fx.t, "a.json", "[{\"targets\": [\"a:1\", \"a:2\"], \"labels\": {\"env\": \"prod\"}}]");
    put(&fx.t, "b.yml", "- targets: [b:1]\n- targets: [b:2]\n");
    put(&fx.t, ".hidden.json", "[{\"targets\": [\"h:1\"]}]");
    put(&fx.t, "c.txt", "[{\"targets\": [\"c:1\"]}]");
    put(&fx.t, "d.yaml", "- targets: [d:1]\n"); /* not matched by the patterns */
    fx_start(&fx, (const char *[]){"*.json", "*.yml", NULL}, HOUR, 50);
    const rec_call *c = rec_last(&fx.r, "f");
    cr_assert_eq(call_targets(c), 5);
    cr_assert(call_has_address(c, "h:1"), "filepath.Glob lets * match a leading dot");
    cr_assert(!call_has_address(c, "c:1") && !call_has_address(c, "d:1"));
    char src[300], path[256];
    path_of(&fx.t, "a.json", path, sizeof path);
    snprintf(src, sizeof src, "%s:0", path);
    const target_group *g = call_group(c, src);
    cr_assert_not_null(g, "no group %s", src);
    cr_assert_str_eq(labelset_get(&g->labels, "__meta_filepath"), path);
    cr_assert_str_eq(labelset_get(&g->labels, "env"), "prod");
    path_of(&fx.t, "b.yml", path, sizeof path);
    snprintf(src, sizeof src, "%s:1", path);
    cr_assert_not_null(call_group(c, src));
    fx_end(&fx);
}

/* The refresh interval is an hour: a change seen at all during the test came through the watch. */
Test(sd_file_watch, modify_is_seen_by_the_watch_not_the_refresh)
{
    fixture fx;
    tdir_make(&fx.t);
    put(&fx.t, "a.json", "[{\"targets\": [\"old:1\"]}]");
    fx_start(&fx, (const char *[]){"*.json", NULL}, HOUR, 100);
    cr_assert(call_has_address(rec_last(&fx.r, "f"), "old:1"));
    put(&fx.t, "a.json", "[{\"targets\": [\"new:1\"]}]");
    const rec_call *c = rec_wait_for(&fx.r, "f", pred_has, "new:1", 10000);
    cr_assert_not_null(c, "the change was not seen");
    cr_assert(!call_has_address(c, "old:1"));
    cr_assert_eq(read_errors(), 0);
    fx_end(&fx);
}

Test(sd_file_watch, broken_file_keeps_targets_and_counts_error)
{
    fixture fx;
    tdir_make(&fx.t);
    put(&fx.t, "a.json", "[{\"targets\": [\"a:1\"]}]");
    put(&fx.t, "b.json", "[{\"targets\": [\"b:1\"]}]");
    fx_start(&fx, (const char *[]){"*.json", NULL}, HOUR, 50);
    put(&fx.t, "a.json", "[{\"targets\": [\"a:1\"");
    put(&fx.t, "b.json", "[{\"targets\": [\"b:2\"]}]");
    /* b's change proves the refresh ran; a keeps its old group */
    const rec_call *c = rec_wait_for(&fx.r, "f", pred_has, "b:2", 1500);
    cr_assert_not_null(c);
    cr_assert(call_has_address(c, "a:1"));
    cr_assert_geq(read_errors(), 1);
    /* fixed again: picked up */
    put(&fx.t, "a.json", "[{\"targets\": [\"a:2\"]}]");
    c = rec_wait_for(&fx.r, "f", pred_has, "a:2", 1500);
    cr_assert_not_null(c);
    cr_assert(!call_has_address(c, "a:1"));
    fx_end(&fx);
}

Test(sd_file_watch, delete_and_shrink_remove_groups)
{
    fixture fx;
    tdir_make(&fx.t);
    put(&fx.t, "a.json", "[{\"targets\": [\"a:1\"]}, {\"targets\": [\"a:2\"]}]");
    put(&fx.t, "b.json", "[{\"targets\": [\"b:1\"]}]");
    fx_start(&fx, (const char *[]){"*.json", NULL}, HOUR, 50);
    cr_assert_eq(call_targets(rec_last(&fx.r, "f")), 3);
    char p[256];
    path_of(&fx.t, "b.json", p, sizeof p);
    unlink(p);
    const rec_call *c = rec_wait_for(&fx.r, "f", pred_lacks, "b:1", 1500);
    cr_assert_not_null(c);
    cr_assert_eq(call_targets(c), 2);
    /* a file with fewer groups drops its old higher sources */
    put(&fx.t, "a.json", "[{\"targets\": [\"a:1\"]}]");
    c = rec_wait_for(&fx.r, "f", pred_lacks, "a:2", 1500);
    cr_assert_not_null(c);
    cr_assert_eq(c->n, 1);
    /* a group that loses its targets while a later one keeps them: its source is emptied (only groups
     * with targets come out of the parser; the provider remembers which positions had some) */
    put(&fx.t, "a.json", "[{\"targets\": [\"a:1\"]}, {\"targets\": [\"a:2\"]}, {\"targets\": [\"a:3\"]}]");
    c = rec_wait_for(&fx.r, "f", pred_has, "a:3", 1500);
    cr_assert_not_null(c);
    put(&fx.t, "a.json", "[{\"targets\": [\"a:1\"]}, {\"targets\": []}, {\"targets\": [\"a:3\"]}]");
    c = rec_wait_for(&fx.r, "f", pred_lacks, "a:2", 1500);
    cr_assert_not_null(c);
    cr_assert_eq(call_targets(c), 2);
    cr_assert_eq(read_errors(), 0);
    fx_end(&fx);
}

Test(sd_file_watch, rename_into_place)
{
    fixture fx;
    tdir_make(&fx.t);
    fx_start(&fx, (const char *[]){"*.json", NULL}, HOUR, 50);
    cr_assert_eq(rec_last(&fx.r, "f")->n, 0); /* nothing matches yet: the job still gets its empty sync */
    put(&fx.t, "x.json.tmp", "[{\"targets\": [\"x:1\"]}]");
    char from[256], to[256];
    path_of(&fx.t, "x.json.tmp", from, sizeof from);
    path_of(&fx.t, "x.json", to, sizeof to);
    cr_assert_eq(rename(from, to), 0);
    const rec_call *c = rec_wait_for(&fx.r, "f", pred_has, "x:1", 1500);
    cr_assert_not_null(c);
    cr_assert_eq(call_targets(c), 1);
    /* renamed away: gone */
    path_of(&fx.t, "x.json.old", from, sizeof from);
    cr_assert_eq(rename(to, from), 0);
    cr_assert_not_null(rec_wait_for(&fx.r, "f", pred_lacks, "x:1", 1500));
    fx_end(&fx);
}

/* A change made through a hard link in another directory gives the watched directory no inotify event:
 * only the refresh timer (or a restart of the provider) can see it. */
static void hardlinked(fixture *fx, const char *content)
{
    char w[256], u[256], wf[300], uf[300];
    path_of(&fx->t, "w", w, sizeof w);
    path_of(&fx->t, "u", u, sizeof u);
    mkdir(w, 0755);
    mkdir(u, 0755);
    snprintf(wf, sizeof wf, "%s/a.json", w);
    snprintf(uf, sizeof uf, "%s/a.json", u);
    FILE *f = fopen(uf, "w");
    cr_assert_not_null(f);
    fputs(content, f);
    fclose(f);
    if (access(wf, F_OK) != 0)
        cr_assert_eq(link(uf, wf), 0);
}

Test(sd_file_watch, refresh_interval_rereads_without_events)
{
    fixture fx;
    tdir_make(&fx.t);
    hardlinked(&fx, "[{\"targets\": [\"old:1\"]}]");
    fx_start(&fx, (const char *[]){"w/*.json", NULL}, 300, 50);
    cr_assert(call_has_address(rec_last(&fx.r, "f"), "old:1"));
    hardlinked(&fx, "[{\"targets\": [\"new:1\"]}]");
    cr_assert_not_null(rec_wait_for(&fx.r, "f", pred_has, "new:1", 1500));
    fx_end(&fx);
}

Test(sd_file_watch, reload_keeps_unchanged_provider_and_replaces_changed)
{
    fixture fx;
    tdir_make(&fx.t);
    hardlinked(&fx, "[{\"targets\": [\"old:1\"]}]");
    fx_start(&fx, (const char *[]){"w/*.json", NULL}, HOUR, 50);
    cr_assert(call_has_address(rec_last(&fx.r, "f"), "old:1"));
    hardlinked(&fx, "[{\"targets\": [\"new:1\"]}]"); /* unseen by the running provider */

    /* same config: the provider keeps running with its groups, nothing is re-read. A restarted provider
     * would have scanned inside sd_manager_apply_config (file_start reads before it returns), so the scan
     * count right after it tells, without waiting; the hour-long refresh and the unwatched directory of
     * the change leave the running provider nothing to scan meanwhile. */
    size_t before = rec_count(&fx.r, "f");
    double scans0 = scans();
    cr_assert_geq(scans0, 1);
    lookout_config *same = file_cfg(&fx.t, (const char *[]){"w/*.json", NULL}, HOUR);
    sd_manager_apply_config(fx.m, same);
    cr_assert_eq(scans(), scans0, "the unchanged provider was restarted");
    cr_assert(rec_wait(&fx.r, "f", before + 1, 1000)); /* full state after a reload */
    const rec_call *c = rec_last(&fx.r, "f");
    cr_assert(call_has_address(c, "old:1"), "the unchanged provider was restarted");
    cr_assert(!call_has_address(c, "new:1"));

    /* changed config (refresh_interval): a new provider reads the file again, and the count shows it */
    lookout_config *changed = file_cfg(&fx.t, (const char *[]){"w/*.json", NULL}, HOUR + 1);
    sd_manager_apply_config(fx.m, changed);
    cr_assert_eq(scans(), scans0 + 1);
    c = rec_wait_for(&fx.r, "f", pred_has, "new:1", 1500);
    cr_assert_not_null(c);
    cr_assert(!call_has_address(c, "old:1"));
    cr_assert_eq(c->n, 1);
    tcfg_free(same);
    tcfg_free(changed);
    fx_end(&fx);
}

Test(sd_file_watch, many_changes_few_syncs)
{
    fixture fx;
    tdir_make(&fx.t);
    put(&fx.t, "a.json", "[{\"targets\": [\"v:0\"]}]");
    fx_start(&fx, (const char *[]){"*.json", NULL}, HOUR, 300);
    size_t before = rec_count(&fx.r, "f");
    char buf[64];
    /* each change waits until the provider has scanned it: 20 scans, 20 updates to the manager */
    for (int i = 1; i <= 20; i++) {
        double n = scans();
        snprintf(buf, sizeof buf, "[{\"targets\": [\"v:%d\"]}]", i);
        put(&fx.t, "a.json", buf);
        cr_assert(wait_scans(n + 1), "change %d was not scanned", i);
    }
    cr_assert_not_null(rec_wait_for(&fx.r, "f", pred_has, "v:20", 1500));
    /* counted when the last change arrives: the syncs it took, at most one per 300 ms, not 20 */
    size_t syncs = rec_count(&fx.r, "f") - before;
    cr_assert_leq(syncs, 4, "%zu syncs for 20 changes", syncs);
    cr_assert(call_has_address(rec_last(&fx.r, "f"), "v:20"));
    fx_end(&fx);
}

Test(sd_file_watch, oversized_file_is_refused)
{
    tdir t;
    tdir_make(&t);
    char p[256], err[256];
    path_of(&t, "big.json", p, sizeof p);
    int fd = open(p, O_CREAT | O_WRONLY, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)SD_FILE_MAX_BYTES + 1), 0); /* sparse: costs no disk */
    close(fd);
    target_group *g;
    size_t n;
    cr_assert_eq(sd_file_read(p, &g, &n, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "more than"), "%s", err);
    rm_tree(t.root);
}

/* Many sources per provider: the manager's source index survives growth, replacement and removal. */
Test(sd_file_watch, many_groups_replace_and_remove)
{
    fixture fx;
    tdir_make(&fx.t);
    strbuf sb;
    strbuf_init(&sb);
    strbuf_putc(&sb, '[');
    for (int i = 0; i < 300; i++)
        strbuf_printf(&sb, "%s{\"targets\": [\"t%d:1\"]}", i ? "," : "", i);
    strbuf_putc(&sb, ']');
    put(&fx.t, "a.json", sb.buf);
    fx_start(&fx, (const char *[]){"*.json", NULL}, HOUR, 50);
    cr_assert_eq(rec_last(&fx.r, "f")->n, 300);
    /* keep 0..99 with new targets (every third one unchanged), drop 100..299 */
    strbuf_reset(&sb);
    strbuf_putc(&sb, '[');
    for (int i = 0; i < 100; i++)
        strbuf_printf(&sb, "%s{\"targets\": [\"%s%d:1\"]}", i ? "," : "", i % 3 ? "u" : "t", i);
    strbuf_putc(&sb, ']');
    put(&fx.t, "a.json", sb.buf);
    const rec_call *c = rec_wait_for(&fx.r, "f", pred_lacks, "t299:1", 1500);
    cr_assert_not_null(c);
    cr_assert_eq(c->n, 100);
    char path[256], src[300], addr[32];
    path_of(&fx.t, "a.json", path, sizeof path);
    for (int i = 0; i < 100; i++) {
        snprintf(src, sizeof src, "%s:%d", path, i);
        const target_group *g = call_group(c, src);
        cr_assert_not_null(g, "missing %s", src);
        snprintf(addr, sizeof addr, "%s%d:1", i % 3 ? "u" : "t", i);
        cr_assert_str_eq(labelset_get(&g->targets[0], "__address__"), addr);
    }
    strbuf_free(&sb);
    fx_end(&fx);
}

/* The size limit is inclusive: a file of exactly 64 MiB is read (and fails as JSON, being sparse zeros),
 * one byte more is refused before reading. Found by mutation testing (make mutate). */
Test(sd_file, size_limit_boundary)
{
    char path[] = "/tmp/lookout-sdfile-XXXXXX.json";
    int fd = mkstemps(path, 5);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, 64 << 20), 0);
    close(fd);
    target_group *g = NULL;
    size_t n = 0;
    char err[512] = "";
    cr_assert_eq(sd_file_read(path, &g, &n, err, sizeof err), -1);
    cr_assert_null(strstr(err, "bytes, more than"), "%s", err);
    cr_assert_eq(truncate(path, (64 << 20) + 1), 0);
    cr_assert_eq(sd_file_read(path, &g, &n, err, sizeof err), -1);
    cr_assert_str_eq(err, "file is 67108865 bytes, more than the 67108864 allowed");
    unlink(path);
}

/* The reading step with a small limit (sd_file_read_stream): a file that grows after fstat (its stat size
 * is smaller than what is read, as when a writer appends meanwhile, or 0 as in /proc) is read to its end
 * up to the limit, inclusive, and refused one byte past it, whatever the stat size. */
static int stream_read(const char *data, size_t data_len, size_t stat_size, size_t limit, char **buf,
                       size_t *len, char *err, size_t errlen)
{
    FILE *f = fmemopen((void *)data, data_len, "rb");
    cr_assert_not_null(f);
    *buf = NULL;
    *len = 0;
    int rc = sd_file_read_stream(f, stat_size, limit, buf, len, err, errlen);
    fclose(f);
    return rc;
}

Test(sd_file, grown_file_read_up_to_the_limit)
{
    static char data[1025];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)('a' + i % 26);
    /* stat sizes that reach the limit by doubling (0: 1, 2, ... 1024), that do not (100: 101, 202, 404,
     * 808, then the limit), the exact size, and one a writer truncated meanwhile */
    const size_t stat_sizes[] = {0, 100, 511, 1023, 1024, 2000};
    for (size_t k = 0; k < sizeof stat_sizes / sizeof *stat_sizes; k++) {
        char *buf, err[128] = "";
        size_t len;
        cr_assert_eq(stream_read(data, 1024, stat_sizes[k], 1024, &buf, &len, err, sizeof err), 0,
                     "stat size %zu: %s", stat_sizes[k], err);
        cr_assert_eq(len, 1024, "stat size %zu: %zu bytes read", stat_sizes[k], len);
        cr_assert_eq(memcmp(buf, data, 1024), 0);
        buf[len] = '\0'; /* room for the NUL the parsers may add */
        free(buf);
        cr_assert_eq(stream_read(data, 1025, stat_sizes[k], 1024, &buf, &len, err, sizeof err), -1,
                     "stat size %zu: 1025 bytes accepted", stat_sizes[k]);
        cr_assert_str_eq(err, "file is more than the 1024 bytes allowed");
        cr_assert_null(buf);
    }
    /* short files and the empty one, whatever the stat size said */
    char *buf, err[128] = "";
    size_t len;
    cr_assert_eq(stream_read(data, 7, 0, 1024, &buf, &len, err, sizeof err), 0, "%s", err);
    cr_assert_eq(len, 7);
    cr_assert_eq(memcmp(buf, "abcdefg", 7), 0);
    free(buf);
    cr_assert_eq(stream_read(data, 0, 9, 1024, &buf, &len, err, sizeof err), 0, "%s", err);
    cr_assert_eq(len, 0);
    free(buf);
}

/* A read that fails (a directory opened as a stream: EISDIR) is an error, not an empty file. */
Test(sd_file, read_error_is_reported)
{
    FILE *f = fopen("tests/fixtures/sd", "rb");
    cr_assert_not_null(f);
    char *buf = NULL, err[128] = "";
    size_t len = 0;
    cr_assert_eq(sd_file_read_stream(f, 0, 1024, &buf, &len, err, sizeof err), -1);
    fclose(f);
    cr_assert_str_eq(err, "read error");
    cr_assert_null(buf);
}

/* Every read closes its file, whatever the outcome: parsed, invalid, too large, not a regular file,
 * missing (each 20 times: a descriptor kept per read would show as 20). */
Test(sd_file, reads_close_their_files)
{
    tdir t;
    tdir_make(&t);
    char big[256];
    path_of(&t, "big.json", big, sizeof big);
    int fd = open(big, O_CREAT | O_WRONLY, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)SD_FILE_MAX_BYTES + 1), 0); /* sparse */
    close(fd);
    const char *paths[] = {FX "good.json", FX "good.yml", FX "bad_label_name.json", big, FX, FX "missing.json"};
    const int want[] = {0, 0, -1, -1, -1, -1};
    int before = test_open_fds();
    for (int round = 0; round < 20; round++)
        for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
            target_group *g = NULL;
            size_t n = 0;
            char err[256] = "";
            int rc = sd_file_read(paths[i], &g, &n, err, sizeof err);
            cr_assert_eq(rc, want[i], "%s: %d (%s)", paths[i], rc, err);
            if (!rc)
                sd_groups_free(g, n);
        }
    cr_assert_eq(test_open_fds(), before, "descriptors left open by 120 reads");
    rm_tree(t.root);
}

/* YAML aliases: every group costs 1 + its targets + its labels against len / 2 + 64. A flow list of aliases
 * of a one-target group ("[&g {targets: [a]},*g,*g...]", 3 bytes and 2 units per alias) reaches the edge at
 * 145 aliases; a labels mapping counts as much through an alias as written out. */
static int alias_doc(int aliases, int labels, size_t *groups, char *err, size_t errlen)
{
    strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "[&g {targets: [a]");
    if (labels) {
        strbuf_puts(&sb, ", labels: {");
        for (int i = 0; i < labels; i++)
            strbuf_printf(&sb, "%sl%d: v", i ? ", " : "", i);
        strbuf_puts(&sb, "}");
    }
    strbuf_puts(&sb, "}");
    for (int i = 0; i < aliases; i++)
        strbuf_puts(&sb, ",*g");
    strbuf_puts(&sb, "]\n");
    target_group *g = NULL;
    size_t n = 0;
    int rc = sd_file_parse("x.yml", sb.buf, sb.len, &g, &n, err, errlen);
    if (rc == 0) {
        *groups = n;
        cr_assert_str_eq(labelset_get(&g[n - 1].targets[0], "__address__"), "a");
        sd_groups_free(g, n);
    }
    strbuf_free(&sb);
    return rc;
}

Test(sd_file_parse, yaml_alias_budget_at_its_edge)
{
    char err[256] = "";
    size_t n = 0;
    cr_assert_eq(alias_doc(144, 0, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 145);
    cr_assert_eq(alias_doc(145, 0, &n, err, sizeof err), -1);
    cr_assert_str_eq(err, "document expands to more targets and labels than its size allows (aliases)");
    /* 200 labels written once fit; 40 aliases of them do not (a 1.8 kB file holding 8,200 labels) */
    cr_assert_eq(alias_doc(0, 200, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 1);
    err[0] = 0;
    cr_assert_eq(alias_doc(40, 200, &n, err, sizeof err), -1);
    cr_assert_str_eq(err, "document expands to more targets and labels than its size allows (aliases)");
}
