/* Frozen groups (src/sd/frozen.c): the group builder the streaming parsers fill, views, the strings the
 * groups of one response share (sd_pool), and the discovery manager storing parsed groups by reference
 * (the same frozen group reaches the sync callback: nothing is copied on the way). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heap_use.h"
#include "sd/sd_remote.h"
#include "sd_test_util.h"

static labelset ls2(const char *n1, const char *v1, const char *n2, const char *v2)
{
    labelset t = LABELSET_INIT;
    labelset_set(&t, n1, v1);
    if (n2)
        labelset_set(&t, n2, v2);
    return t;
}

Test(sd_frozen, builder_freezes_targets_in_order)
{
    sd_group_builder b = {0};
    labelset t = ls2("__address__", "a:1", "zone", "z1");
    sd_gb_add_target(&b, &t);
    labelset_free(&t);
    sd_gb_add_address(&b, "b:2", 3);
    sd_gb_add_address(&b, "", 0); /* a target without labels, as labelset_set("") leaves it */
    t = ls2("__address__", "c:3", "zone", "z2");
    sd_gb_add_target(&b, &t);
    labelset_free(&t);
    labelset gl = ls2("env", "prod", "__meta_x", "1");
    target_group g;
    sd_gb_freeze(&b, "src:7", &gl, &g);
    labelset_free(&gl);
    cr_assert_eq(b.n_targets, 0); /* emptied for the next group */
    cr_assert_neq(g.gen, 0);
    cr_assert_str_eq(g.source, "src:7");
    cr_assert_eq(g.labels.n, 2);
    cr_assert_str_eq(g.labels.v[0].name, "__meta_x"); /* the order the label set had */
    cr_assert_str_eq(labelset_get(&g.labels, "env"), "prod");
    cr_assert_eq(g.n_targets, 4);
    cr_assert_eq(g.targets[0].n, 2);
    cr_assert_str_eq(labelset_get(&g.targets[0], "zone"), "z1");
    cr_assert_eq(g.targets[1].n, 1);
    cr_assert_str_eq(labelset_get(&g.targets[1], "__address__"), "b:2");
    cr_assert_eq(g.targets[2].n, 0);
    cr_assert_str_eq(labelset_get(&g.targets[3], "__address__"), "c:3");
    cr_assert_str_eq(labelset_get(&g.targets[3], "zone"), "z2");
    /* a name equal to the previous target's at the same position is stored once */
    cr_assert_eq(g.targets[1].v[0].name, g.targets[0].v[0].name);

    /* another reference outlives the view; a deep copy is a plain group with the same content */
    const target_group *ref = target_group_ref(&g);
    target_group c;
    target_group_copy(&c, &g);
    target_group_free(&g);
    cr_assert_null(g.source);
    cr_assert_eq(c.gen, 0);
    cr_assert_eq(c.n_targets, 4);
    cr_assert_str_eq(labelset_get(&ref->targets[3], "zone"), "z2");
    cr_assert(labelset_equal(&c.targets[0], &ref->targets[0]));
    target_group_unref(ref);
    target_group_free(&c);
    sd_gb_free(&b);
}

/* A target's label name equal to the previous target's at the same position is packed as one mark byte, and
 * read back as that name: targets of mixed shapes (a name changed at one position, an address-only target
 * between, more and fewer labels than the previous) come out as they went in. */
Test(sd_frozen, builder_packs_a_repeated_name_once)
{
    static const char *const spec[][7] = {
        {"__address__", "a:1", "__meta_long_label_name", "v1", "zone", "z1", NULL},
        {"__address__", "b:2", "__meta_long_label_name", "v2", "zone", "z2", NULL},
        {"__address__", "c:3", "__meta_other", "o", "zone", "z3", NULL},
        {"__address__", "d:4", NULL},
        {"__address__", "e:5", "zone", "z5", NULL},
        {"__address__", "f:6", "a", "1", "b", "2", NULL},
        {"__address__", "g:7", NULL},
        {"__address__", "h:8", "a", "9", NULL},
    };
    size_t n = sizeof spec / sizeof spec[0];
    labelset want[8];
    sd_group_builder b = {0};
    size_t len[8];
    for (size_t t = 0; t < n; t++) {
        want[t] = (labelset)LABELSET_INIT;
        for (int i = 0; spec[t][i]; i += 2)
            labelset_set(&want[t], spec[t][i], spec[t][i + 1]);
        if (t == 3)
            sd_gb_add_address(&b, "d:4", 3);
        else
            sd_gb_add_target(&b, &want[t]);
        len[t] = b.len;
    }
    /* the second target: its count, 3 marks, the values "b:2" "v2" "z2" with their NULs; no name again */
    cr_assert_eq(len[1] - len[0], 4 + 3 + 4 + 3 + 3, "%zu bytes", len[1] - len[0]);
    /* the third: __meta_other's text (mark, 13 bytes), the other two names marks only */
    cr_assert_eq(len[2] - len[1], 4 + 3 + 13 + 4 + 2 + 3, "%zu bytes", len[2] - len[1]);
    /* after an address-only target nothing is shared: __address__ and zone in full */
    cr_assert_eq(len[4] - len[3], 4 + 2 + 12 + 5 + 4 + 3, "%zu bytes", len[4] - len[3]);
    /* after {__address__}: "a" written again, __address__ a mark */
    cr_assert_eq(len[7] - len[6], 4 + 2 + 2 + 4 + 2, "%zu bytes", len[7] - len[6]);
    labelset gl = LABELSET_INIT;
    target_group g;
    sd_gb_freeze(&b, "s", &gl, &g);
    cr_assert_eq(g.n_targets, n);
    for (size_t t = 0; t < n; t++) {
        cr_assert(labelset_equal(&g.targets[t], &want[t]), "target %zu", t);
        labelset_free(&want[t]);
    }
    target_group_free(&g);
    /* the builder is reusable: its first target after freezing shares nothing with the last one before
     * (count, mark and __address__, "x:1", mark and "a", "2") */
    labelset t = ls2("__address__", "x:1", "a", "2");
    sd_gb_add_target(&b, &t);
    cr_assert_eq(b.len, 4 + 1 + 12 + 4 + 1 + 2 + 2, "%zu bytes", b.len);
    sd_gb_freeze(&b, "s2", &gl, &g);
    cr_assert(labelset_equal(&g.targets[0], &t));
    target_group_free(&g);
    labelset_free(&t);
    sd_gb_free(&b);
    cr_assert_null(b.prev_off);
}

/* sd_gb_freeze_adopt: the group takes the label array (no copy) and the arena; label strings in the arena are
 * referenced, the others copied; both are freed with the group (a leak under ASan otherwise). */
Test(sd_frozen, builder_freeze_adopts_an_arena)
{
    char *arena = malloc(16);
    memcpy(arena, "name\0value\0", 11);
    char own_name[] = "a_own";
    label *own = malloc(2 * sizeof *own);
    own[0] = (label){own_name, "x"};
    own[1] = (label){arena, arena + 5};
    labelset gl = {own, 2, 2};
    sd_group_builder b = {0};
    labelset t = ls2("__address__", "a:1", NULL, NULL);
    sd_gb_add_target(&b, &t);
    labelset_free(&t);
    target_group g;
    sd_gb_freeze_adopt(&b, "src", &gl, arena, 16, &g);
    cr_assert_eq(g.labels.v, own);
    cr_assert_eq(g.labels.n, 2);
    cr_assert_eq(g.labels.v[1].name, arena);
    cr_assert_eq(g.labels.v[1].value, arena + 5);
    cr_assert_neq(g.labels.v[0].name, own_name); /* outside the arena: copied */
    own_name[0] = 'X';
    cr_assert_str_eq(g.labels.v[0].name, "a_own");
    cr_assert_str_eq(g.labels.v[0].value, "x");
    cr_assert_str_eq(labelset_get(&g.targets[0], "__address__"), "a:1");
    target_group_free(&g);
    sd_gb_free(&b);
}

/* A frozen group gives back all it holds when its last reference goes: its block, the label array and the
 * arena it took, and nothing is left behind by reading packed targets (address-only ones between full
 * ones). 20 groups of 20,000 targets and 20,000 labels: a dropped free of any of these is megabytes
 * (heap_use.h; under ASan LeakSanitizer checks the same). */
Test(sd_frozen, freed_groups_give_their_memory_back)
{
    enum { ROUNDS = 20, TARGETS = 20000, LABELS = 20000 };
    size_t before = heap_use();
    sd_group_builder b = {0};
    for (int round = 0; round < ROUNDS; round++) {
        char a[32];
        for (int t = 0; t < TARGETS; t++) {
            int n = snprintf(a, sizeof a, "10.0.%d.%d:80", t >> 8, t & 255);
            if (t % 100 == 0) {
                labelset ls = ls2("__address__", a, "zone", "z");
                sd_gb_add_target(&b, &ls);
                labelset_free(&ls);
            } else {
                sd_gb_add_address(&b, a, (size_t)n);
            }
        }
        char *arena = malloc(LABELS * 8);
        label *v = malloc(LABELS * sizeof *v);
        for (int i = 0; i < LABELS; i++) {
            snprintf(arena + 8 * i, 8, "l%05u", (unsigned)i % 100000u); /* 5 digits: gcc -O1 sees the bound */
            v[i] = (label){arena + 8 * i, "v"};
        }
        labelset gl = {v, LABELS, LABELS};
        target_group g;
        sd_gb_freeze_adopt(&b, "s", &gl, arena, LABELS * 8, &g);
        cr_assert_eq(g.n_targets, TARGETS);
        cr_assert_str_eq(labelset_get(&g.targets[TARGETS - 1], "__address__"), "10.0.78.31:80");
        cr_assert_str_eq(labelset_get(&g.targets[TARGETS - 100], "zone"), "z");
        target_group_free(&g);
    }
    sd_gb_free(&b);
    heap_use_assert_back_to(before);
}

Test(sd_frozen, groups_of_one_pool_share_strings)
{
    sd_pool *p = sd_pool_new();
    sd_group_builder b = {.pool = p};
    const char *env = sd_pool_intern(p, "env", 3), *prod = sd_pool_intern(p, "prod", 4);
    cr_assert_not_null(env);
    cr_assert_eq(sd_pool_intern(p, "env", 3), env); /* interned once */
    labelset gl = LABELSET_INIT;
    label v[1] = {{(char *)env, (char *)prod}};
    gl = (labelset){v, 1, 1};
    target_group g[2];
    for (int i = 0; i < 2; i++) {
        labelset t = ls2("__address__", i ? "b:2" : "a:1", "rack", "r1");
        sd_gb_add_target(&b, &t);
        labelset_free(&t);
        sd_gb_freeze(&b, i ? "s:1" : "s:0", &gl, &g[i]);
    }
    sd_pool_seal(p);
    cr_assert_null(sd_pool_intern(p, "late", 4)); /* sealed */
    sd_pool_unref(p);                               /* the groups keep it */
    cr_assert_eq(g[0].labels.v[0].name, g[1].labels.v[0].name);
    cr_assert_eq(g[0].labels.v[0].value, g[1].labels.v[0].value);
    /* target labels of packed targets are pooled too; addresses are not */
    cr_assert_eq(g[0].targets[0].v[1].value, g[1].targets[0].v[1].value);
    cr_assert_eq(g[0].targets[0].v[0].name, g[1].targets[0].v[0].name);
    cr_assert_neq(g[0].targets[0].v[0].value, g[1].targets[0].v[0].value);
    target_group_free(&g[0]);
    cr_assert_str_eq(g[1].labels.v[0].value, "prod"); /* still there after the first group went */
    cr_assert_str_eq(labelset_get(&g[1].targets[0], "rack"), "r1");
    target_group_free(&g[1]);
    sd_gb_free(&b);
}

Test(sd_frozen, pool_is_bounded)
{
    sd_pool *p = sd_pool_new();
    char s[32];
    for (int i = 0; i < SD_POOL_MAX_STRINGS; i++) {
        int n = snprintf(s, sizeof s, "v%d", i);
        cr_assert_not_null(sd_pool_intern(p, s, (size_t)n));
    }
    cr_assert_null(sd_pool_intern(p, "one more", 8));
    cr_assert_str_eq(sd_pool_intern(p, "v7", 2), "v7"); /* what it has is still found */
    sd_pool_unref(p);

    /* long strings are not pooled, and the bytes are bounded too */
    p = sd_pool_new();
    char big[SD_POOL_MAX_LEN + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    cr_assert_null(sd_pool_intern(p, big, SD_POOL_MAX_LEN + 1));
    cr_assert_not_null(sd_pool_intern(p, big, SD_POOL_MAX_LEN));
    size_t k = 1, bytes = SD_POOL_MAX_LEN + 1;
    for (;; k++) {
        snprintf(big, sizeof big, "%08zu", k); /* distinct prefix, the rest of the 256 bytes stays 'x' */
        big[8] = 'x';
        if (!sd_pool_intern(p, big, SD_POOL_MAX_LEN))
            break;
        bytes += SD_POOL_MAX_LEN + 1;
    }
    cr_assert_leq(bytes, SD_POOL_MAX_BYTES);
    cr_assert_gt(bytes + SD_POOL_MAX_LEN + 1, SD_POOL_MAX_BYTES);
    sd_pool_unref(p);
}

/* An http_sd answer: every group carries __meta_url, and its groups share that string and their label
 * names instead of each holding a copy. */
Test(sd_frozen, http_sd_groups_share_the_url_and_label_names)
{
    const char *body = "[{\"targets\":[\"a:1\"],\"labels\":{\"team\":\"x\",\"__meta_filepath\":\"gone\"}},"
                       "{\"targets\":[\"b:1\",\"b:2\"],\"labels\":{\"team\":\"y\"}}]";
    target_group *g = NULL;
    size_t n = 0;
    char err[256];
    cr_assert_eq(http_sd_parse_response("http://sd.example/t", 200, "application/json", body, strlen(body), &g, &n,
                                        err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 2);
    cr_assert_neq(g[0].gen, 0);
    cr_assert_eq(g[0].labels.n, 2); /* __meta_url, team; __meta_filepath removed */
    cr_assert_str_eq(g[0].labels.v[0].name, "__meta_url");
    cr_assert_str_eq(g[0].labels.v[0].value, "http://sd.example/t");
    cr_assert_eq(g[0].labels.v[0].value, g[1].labels.v[0].value);
    cr_assert_eq(g[0].labels.v[1].name, g[1].labels.v[1].name);
    cr_assert_eq(g[0].targets[0].v[0].name, g[1].targets[1].v[0].name);
    cr_assert_str_eq(g[1].targets[1].v[0].value, "b:2");
    sd_groups_free(g, n);
}

/* ---- the manager keeps parsed groups by reference ---- */

typedef struct seen {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool got;
    uint64_t gen[2];
    bool shared_name, shared_value;
    char addr[2][16];
} seen;

static void on_sync(void *ctx, const char *job, const target_group *const *groups, size_t n)
{
    (void)job;
    seen *s = ctx;
    if (n != 2)
        return;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < 2; i++) {
        s->gen[i] = groups[i]->gen;
        snprintf(s->addr[i], sizeof s->addr[i], "%s", labelset_get(&groups[i]->targets[0], "__address__"));
    }
    /* both groups point at one copy of "team" and of the file path: the parser's pool reached the
     * callback, so the manager kept the parsed groups themselves (a copy has its own strings) */
    s->shared_name = groups[0]->labels.v[1].name == groups[1]->labels.v[1].name;
    s->shared_value = groups[0]->labels.v[0].value == groups[1]->labels.v[0].value;
    s->got = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void wait_got(seen *s)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < 50 && !s->got; i++) {
        pthread_mutex_unlock(&s->mu);
        sleep_ms(100);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
}

Test(sd_frozen, manager_stores_parsed_groups_by_reference)
{
    char dir[] = "/tmp/sd_frozen.XXXXXX", path[64], pattern[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.json", dir);
    snprintf(pattern, sizeof pattern, "%s/*.json", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("[{\"targets\":[\"a:1\"],\"labels\":{\"team\":\"x\"}},{\"targets\":[\"b:1\"],\"labels\":{\"team\":\"y\"}}]", f);
    fclose(f);
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    lookout_config *cfg = tcfg_new();
    scrape_config *sc = tcfg_job(cfg, "j");
    tcfg_file(sc, 0, (const char *[]){pattern, NULL}, 300000);
    sd_manager *m = sd_manager_new(on_sync, &s, 100);
    cr_assert_eq(sd_manager_apply_config(m, cfg), 0);
    wait_got(&s);
    cr_assert(s.got);
    cr_assert_str_eq(s.addr[0], "a:1");
    cr_assert_str_eq(s.addr[1], "b:1");
    cr_assert_neq(s.gen[0], 0);
    cr_assert_neq(s.gen[0], s.gen[1]);
    cr_assert(s.shared_name);
    cr_assert(s.shared_value);
    uint64_t first = s.gen[0];

    /* the second group changes: the first is kept as it was (same gen), the new one comes from another
     * response, and still shares the strings (the pool is the provider's, not the response's: an old
     * response's strings are not held by the groups it left behind) */
    pthread_mutex_lock(&s.mu);
    s.got = false;
    pthread_mutex_unlock(&s.mu);
    char tmp[80];
    snprintf(tmp, sizeof tmp, "%s/.t", dir);
    f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fputs("[{\"targets\":[\"a:1\"],\"labels\":{\"team\":\"x\"}},{\"targets\":[\"c:1\"],\"labels\":{\"team\":\"y\"}}]", f);
    fclose(f);
    cr_assert_eq(rename(tmp, path), 0);
    wait_got(&s);
    sd_manager_free(m);
    tcfg_free(cfg);
    unlink(path);
    rmdir(dir);
    cr_assert(s.got);
    cr_assert_str_eq(s.addr[1], "c:1");
    cr_assert_eq(s.gen[0], first);
    cr_assert(s.shared_name);
    cr_assert(s.shared_value);
}
