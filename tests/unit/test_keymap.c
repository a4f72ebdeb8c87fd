/* util/keymap: both flavours (byte-string and 64-bit keys) - insert, replace, lookup, delete inside
 * collision chains (including chains that wrap around the end of the table), growth, and a long random
 * run checked against a plain array. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/keymap.h"
#include "util/strtab.h"

/* keymap64's home slot (the same finaliser as keymap.c): lets the tests build chains on purpose. */
static size_t home64(uint64_t k, size_t mask)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k & mask;
}

/* n keys (from 1 up) whose home slot in a 16-slot table is `home`. */
static void keys_at64(size_t home, uint64_t *out, size_t n)
{
    for (uint64_t k = 1; n; k++)
        if (home64(k, 15) == home)
            *out++ = k, n--;
}

static void keys_at(size_t home, char (*out)[16], size_t n)
{
    for (unsigned k = 0; n; k++) {
        char buf[16];
        snprintf(buf, sizeof buf, "k%u", k);
        if ((keymap_hash(buf, strlen(buf)) & 15) == home) {
            memcpy(*out++, buf, sizeof buf);
            n--;
        }
    }
}

Test(keymap64, put_get_replace_del)
{
    keymap64 m = KEYMAP64_INIT;
    int a, b, c;
    cr_assert_null(keymap64_get(&m, 7));
    cr_assert_null(keymap64_del(&m, 7));
    cr_assert_null(keymap64_put(&m, 7, &a));
    cr_assert_null(keymap64_put(&m, 0, &b)); /* 0 is an ordinary key */
    cr_assert_eq(keymap64_get(&m, 7), &a);
    cr_assert_eq(keymap64_get(&m, 0), &b);
    cr_assert_eq(keymap64_put(&m, 7, &c), &a);
    cr_assert_eq(m.n, 2);
    cr_assert_eq(keymap64_get(&m, 7), &c);
    cr_assert_eq(keymap64_del(&m, 7), &c);
    cr_assert_null(keymap64_get(&m, 7));
    cr_assert_eq(keymap64_get(&m, 0), &b);
    cr_assert_eq(m.n, 1);
    keymap64_free(&m);
    cr_assert_eq(m.n, 0);
    cr_assert_null(keymap64_get(&m, 0));
}

/* Five keys with one home (slot 14 of 16): the chain runs 14, 15, 0, 1, 2 - across the end. Deleting
 * the head and a middle entry must leave every other one reachable. */
Test(keymap64, deletion_in_a_wrapping_chain)
{
    keymap64 m = KEYMAP64_INIT;
    uint64_t k[5], other[1];
    keys_at64(14, k, 5);
    keys_at64(0, other, 1); /* its home is inside the chain: must not move before slot 0 */
    int v[6];
    for (int i = 0; i < 5; i++)
        keymap64_put(&m, k[i], &v[i]);
    keymap64_put(&m, other[0], &v[5]);
    cr_assert_eq(m.cap, 16);
    cr_assert_eq(keymap64_del(&m, k[0]), &v[0]);
    cr_assert_eq(keymap64_del(&m, k[2]), &v[2]);
    cr_assert_eq(keymap64_get(&m, k[1]), &v[1]);
    cr_assert_eq(keymap64_get(&m, k[3]), &v[3]);
    cr_assert_eq(keymap64_get(&m, k[4]), &v[4]);
    cr_assert_eq(keymap64_get(&m, other[0]), &v[5]);
    cr_assert_null(keymap64_get(&m, k[0]));
    /* every remaining entry sits within its probe run: home .. slot without an empty slot between */
    for (size_t i = 0; i < m.cap; i++) {
        if (!m.slots[i].value)
            continue;
        for (size_t s = home64(m.slots[i].key, 15); s != i; s = (s + 1) & 15)
            cr_assert_not_null(m.slots[s].value, "hole at %zu before slot %zu", s, i);
    }
    cr_assert_eq(m.n, 4);
    keymap64_free(&m);
}

Test(keymap64, grows_and_keeps_everything)
{
    keymap64 m = KEYMAP64_INIT;
    static int v[5000];
    for (uint64_t i = 0; i < 5000; i++)
        keymap64_put(&m, i * 0x9e3779b97f4a7c15ULL, &v[i]);
    cr_assert_eq(m.n, 5000);
    cr_assert_eq(m.cap, 8192); /* load factor <= 0.75 */
    for (uint64_t i = 0; i < 5000; i++)
        cr_assert_eq(keymap64_get(&m, i * 0x9e3779b97f4a7c15ULL), &v[i]);
    size_t seen = 0;
    for (size_t i = 0; i < m.cap; i++)
        if (m.slots[i].value)
            seen++;
    cr_assert_eq(seen, 5000);
    keymap64_free(&m);
}

/* Random puts and deletes over a small key space (dense chains), checked against an array after each
 * step. */
Test(keymap64, random_run_matches_a_plain_array)
{
    enum { KEYS = 300 };
    static int v[KEYS];
    void *model[KEYS] = {0};
    keymap64 m = KEYMAP64_INIT;
    uint64_t x = 88172645463325252ULL;
    size_t n = 0;
    for (int step = 0; step < 60000; step++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t k = x % KEYS;
        if ((x >> 20) % 3 == 0) {
            cr_assert_eq(keymap64_del(&m, k), model[k]);
            n -= model[k] != NULL;
            model[k] = NULL;
        } else {
            cr_assert_eq(keymap64_put(&m, k, &v[k]), model[k]);
            n += model[k] == NULL;
            model[k] = &v[k];
        }
        if (step % 97 == 0)
            for (size_t i = 0; i < KEYS; i++)
                cr_assert_eq(keymap64_get(&m, i), model[i], "step %d key %zu", step, i);
        cr_assert_eq(m.n, n);
    }
    keymap64_free(&m);
}

Test(keymap, put_get_replace_del_with_binary_keys)
{
    keymap m = KEYMAP_INIT;
    int a, b, c;
    const char k1[] = "job\0a", k2[] = "job\0b";
    cr_assert_null(keymap_put(&m, k1, 5, &a));
    cr_assert_null(keymap_put(&m, k2, 5, &b)); /* differs after the NUL */
    cr_assert_null(keymap_put(&m, "job", 3, &c)); /* a prefix is another key */
    cr_assert_eq(keymap_get(&m, k1, 5), &a);
    cr_assert_eq(keymap_get(&m, k2, 5), &b);
    cr_assert_eq(keymap_get(&m, "job", 3), &c);
    cr_assert_eq(keymap_put(&m, k1, 5, &c), &a);
    cr_assert_eq(m.n, 3);
    cr_assert_eq(keymap_del(&m, k2, 5), &b);
    cr_assert_null(keymap_get(&m, k2, 5));
    cr_assert_null(keymap_del(&m, k2, 5));
    cr_assert_eq(keymap_get(&m, k1, 5), &c);
    cr_assert_eq(m.n, 2);
    keymap_free(&m);
}

Test(keymap, deletion_in_a_wrapping_chain)
{
    keymap m = KEYMAP_INIT;
    char k[5][16], other[1][16];
    keys_at(15, k, 5); /* chain 15, 0, 1, 2, 3 */
    keys_at(1, other, 1);
    int v[6];
    for (int i = 0; i < 5; i++)
        keymap_put(&m, k[i], strlen(k[i]), &v[i]);
    keymap_put(&m, other[0], strlen(other[0]), &v[5]);
    cr_assert_eq(m.cap, 16);
    cr_assert_eq(keymap_del(&m, k[1], strlen(k[1])), &v[1]);
    cr_assert_eq(keymap_del(&m, k[0], strlen(k[0])), &v[0]);
    cr_assert_eq(keymap_get(&m, k[2], strlen(k[2])), &v[2]);
    cr_assert_eq(keymap_get(&m, k[3], strlen(k[3])), &v[3]);
    cr_assert_eq(keymap_get(&m, k[4], strlen(k[4])), &v[4]);
    cr_assert_eq(keymap_get(&m, other[0], strlen(other[0])), &v[5]);
    for (size_t i = 0; i < m.cap; i++) {
        if (!m.slots[i].hash)
            continue;
        for (size_t s = m.slots[i].hash & 15; s != i; s = (s + 1) & 15)
            cr_assert_neq(m.slots[s].hash, 0, "hole at %zu before slot %zu", s, i);
    }
    keymap_free(&m);
}

Test(keymap, random_run_matches_a_plain_array)
{
    enum { KEYS = 300 };
    static char names[KEYS][16];
    static int v[KEYS];
    void *model[KEYS] = {0};
    for (int i = 0; i < KEYS; i++)
        snprintf(names[i], sizeof names[i], "t%d", i);
    keymap m = KEYMAP_INIT;
    uint64_t x = 2463534242ULL;
    for (int step = 0; step < 60000; step++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t k = x % KEYS;
        if ((x >> 20) % 3 == 0) {
            cr_assert_eq(keymap_del(&m, names[k], strlen(names[k])), model[k]);
            model[k] = NULL;
        } else {
            cr_assert_eq(keymap_put(&m, names[k], strlen(names[k]), &v[k]), model[k]);
            model[k] = &v[k];
        }
        if (step % 97 == 0)
            for (size_t i = 0; i < KEYS; i++)
                cr_assert_eq(keymap_get(&m, names[i], strlen(names[i])), model[i], "step %d key %zu", step, i);
    }
    keymap_free(&m);
}

/* strtab (a keymap with reference-counted entries): one copy per distinct string, freed with its last
 * reference, and the hashed calls agree with the plain ones. */
Test(strtab, interns_counts_and_releases)
{
    strtab t = {0};
    char a1[] = "kubernetes-pods", a2[] = "kubernetes-pods";
    const char *x = strtab_get(&t, a1), *y = strtab_get(&t, a2), *z = strtab_get(&t, "");
    cr_assert_eq(x, y);
    cr_assert_neq(x, a1);
    cr_assert_str_eq(x, "kubernetes-pods");
    cr_assert_str_eq(z, "");
    cr_assert_eq(t.n, 2);
    strtab_put(&t, x);
    cr_assert_eq(t.n, 2); /* one reference left */
    cr_assert_eq(strtab_get(&t, "kubernetes-pods"), y);
    strtab_put(&t, y);
    strtab_put(&t, y);
    cr_assert_eq(t.n, 1);
    cr_assert_null(keymap_get(&t.map, "kubernetes-pods", 15));
    const char *w = strtab_get(&t, "kubernetes-pods");
    cr_assert_str_eq(w, "kubernetes-pods");
    cr_assert_eq(t.n, 2);
    for (int i = 0; i < 1000; i++) { /* growth keeps every entry findable from its address */
        char buf[16];
        snprintf(buf, sizeof buf, "v%d", i);
        strtab_get(&t, buf);
    }
    for (int i = 0; i < 1000; i += 2) {
        char buf[16];
        snprintf(buf, sizeof buf, "v%d", i);
        const char *s = strtab_get(&t, buf);
        strtab_put(&t, s);
        strtab_put(&t, s);
    }
    cr_assert_eq(t.n, 502);
    cr_assert_null(keymap_get(&t.map, "v10", 3));
    cr_assert_not_null(keymap_get(&t.map, "v11", 3));
    cr_assert_eq(keymap_get_hashed(&t.map, "v11", 3, keymap_hash("v11", 3)), keymap_get(&t.map, "v11", 3));
    strtab_free(&t);
    cr_assert_eq(t.n, 0);
}
