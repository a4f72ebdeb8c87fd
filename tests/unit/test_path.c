/* util/path: Go's filepath.Clean and filepath.Join on Unix. The tables are Go's own (path/filepath
 * path_test.go: cleantests, nonwincleantests, jointests, nonwinjointests), so __meta_filepath and every
 * other configured path reads as Prometheus derives it. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "util/path.h"

static const char *const cleantests[][2] = {
    /* Already clean */
    {"abc", "abc"},
    {"abc/def", "abc/def"},
    {"a/b/c", "a/b/c"},
    {".", "."},
    {"..", ".."},
    {"../..", "../.."},
    {"../../abc", "../../abc"},
    {"/abc", "/abc"},
    {"/", "/"},
    /* Empty is current dir */
    {"", "."},
    /* Remove trailing slash */
    {"abc/", "abc"},
    {"abc/def/", "abc/def"},
    {"a/b/c/", "a/b/c"},
    {"./", "."},
    {"../", ".."},
    {"../../", "../.."},
    {"/abc/", "/abc"},
    /* Remove doubled slash */
    {"abc//def//ghi", "abc/def/ghi"},
    {"abc//", "abc"},
    /* Remove . elements */
    {"abc/./def", "abc/def"},
    {"/./abc/def", "/abc/def"},
    {"abc/.", "abc"},
    /* Remove .. elements */
    {"abc/def/ghi/../jkl", "abc/def/jkl"},
    {"abc/def/../ghi/../jkl", "abc/jkl"},
    {"abc/def/..", "abc"},
    {"abc/def/../..", "."},
    {"/abc/def/../..", "/"},
    {"abc/def/../../..", ".."},
    {"/abc/def/../../..", "/"},
    {"abc/def/../../../ghi/jkl/../../../mno", "../../mno"},
    {"/../abc", "/abc"},
    /* Combinations */
    {"abc/./../def", "def"},
    {"abc//./../def", "def"},
    {"abc/../../././../def", "../../def"},
    /* nonwincleantests: remove leading doubled slash */
    {"//abc", "/abc"},
    {"///abc", "/abc"},
    {"//abc//", "/abc"},
    /* lookout's own: the file_sd forms of issue 17, glob characters are ordinary */
    {"/etc/lookout/./sd/a.json", "/etc/lookout/sd/a.json"},
    {"/etc/lookout/sd/../sd/b.yaml", "/etc/lookout/sd/b.yaml"},
    {"conf/../sd/./*.json", "sd/*.json"},
    {"..a/.b/...", "..a/.b/..."},
};

Test(path, clean_go_table)
{
    for (size_t i = 0; i < sizeof cleantests / sizeof cleantests[0]; i++) {
        char *got = path_clean(cleantests[i][0]);
        cr_expect_str_eq(got, cleantests[i][1], "Clean(\"%s\")", cleantests[i][0]);
        free(got);
        /* Go checks too that a clean path is its own Clean */
        got = path_clean(cleantests[i][1]);
        cr_expect_str_eq(got, cleantests[i][1], "Clean(\"%s\")", cleantests[i][1]);
        free(got);
    }
}

static const char *const jointests[][3] = {
    {"", "", ""},
    {"/", "", "/"},
    {"a", "", "a"},
    {"a", "b", "a/b"},
    {"", "b", "b"},
    {"/", "a", "/a"},
    {"/", "a/b", "/a/b"},
    {"/a", "b", "/a/b"},
    {"a", "/b", "a/b"},
    {"/a", "/b", "/a/b"},
    {"a/", "b", "a/b"},
    {"a/", "", "a"},
    {"//", "a", "/a"}, /* nonwinjointests */
    {"/etc/lookout", "./sd/a.json", "/etc/lookout/sd/a.json"},
    {"/etc/lookout", "sd/../sd/b.yaml", "/etc/lookout/sd/b.yaml"},
    {".", "./sd/*.json", "sd/*.json"},
};

Test(path, join_go_table)
{
    for (size_t i = 0; i < sizeof jointests / sizeof jointests[0]; i++) {
        char *got = path_join(jointests[i][0], jointests[i][1]);
        cr_expect_str_eq(got, jointests[i][2], "Join(\"%s\", \"%s\")", jointests[i][0], jointests[i][1]);
        free(got);
    }
}
