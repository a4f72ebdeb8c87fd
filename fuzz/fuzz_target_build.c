/* fuzz_target_build: target_build_final (relabeling on a view of the discovered labels first, the copy only
 * when a rule reads every name or the target is kept) against target_build (everything copied first), on
 * groups, targets, params and relabel chains the input picks. Aborts on any difference in status,
 * dropped_by, error, final labels, URL or hash (issue 12, session 8).
 * Input: a byte stream read as choices (names and regexes from small pools, values as length + bytes). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "labels/relabel.h"
#include "scrape/target.h"

typedef struct in {
    const uint8_t *p;
    size_t n;
} in;

static unsigned byte(in *s)
{
    if (!s->n)
        return 0;
    s->n--;
    return *s->p++;
}

static const char *names[] = {"__address__", "__meta_a", "__meta_b", "__meta_k_label_x", "env", "job", "__scheme__",
                              "__metrics_path__", "__param_module", "__scrape_interval__", "__scrape_timeout__",
                              "instance", "z", "__meta_z", "__tmp", "a_b"};
static const char *regexes[] = {"(.*)", "a|web", "__meta_(.+)", ".*a.*", "h:.*", "env|z", "(h):(.*)",
                                "__meta_k_label_(.+)", "1s|https", "(.+)", "", "[a-z]+_(.*)"};
static const char *repls[] = {"$1", "v$1", "", "${2}x", "z", "$0", "__meta_$1"};
#define PICK(s, a) (a)[byte(s) % (sizeof(a) / sizeof *(a))]

/* a value: up to 15 bytes of the input (NUL read as 'h'), or a pool name */
static char *value(in *s, char *buf)
{
    unsigned len = byte(s) % 20;
    if (len >= 16)
        return strcpy(buf, PICK(s, names));
    for (unsigned i = 0; i < len; i++) {
        unsigned c = byte(s);
        buf[i] = (char)(c ? c : 'h');
    }
    buf[len] = '\0';
    return buf;
}

static void labels(in *s, labelset *ls, unsigned max)
{
    char buf[64];
    labelset_init(ls);
    for (unsigned k = byte(s) % max; k; k--) {
        const char *n = PICK(s, names);
        labelset_set(ls, n, value(s, buf));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    in s = {data, size};
    scrape_config sc;
    memset(&sc, 0, sizeof sc);
    sc.job_name = "job";
    sc.scheme = byte(&s) & 1 ? "https" : "http";
    sc.metrics_path = "/metrics";
    sc.scrape_interval_ms = 1000 * (1 + byte(&s) % 3);
    sc.scrape_timeout_ms = 1000 * (1 + byte(&s) % 3);
    char pvbuf[2][64];
    char *pv[2] = {value(&s, pvbuf[0]), value(&s, pvbuf[1])};
    param p[2] = {{"module", &pv[0], byte(&s) % 2}, {byte(&s) & 1 ? "module" : "x", &pv[1], byte(&s) % 2}};
    sc.params = p;
    sc.n_params = byte(&s) % 3;
    labelset g, t;
    labels(&s, &g, 8);
    labels(&s, &t, 5);
    relabel_rule rules[8];
    size_t n = 0;
    for (unsigned k = byte(&s) % 9; k; k--) {
        relabel_rule r;
        memset(&r, 0, sizeof r);
        r.action = (relabel_action)(byte(&s) % (RELABEL_UPPERCASE + 1));
        unsigned ns = byte(&s) % 3;
        if (ns) {
            r.source_labels = calloc(ns, sizeof(char *));
            for (unsigned i = 0; i < ns; i++)
                r.source_labels[r.n_source_labels++] = strdup(PICK(&s, names));
        }
        if (byte(&s) & 1)
            r.target_label = strdup(PICK(&s, names));
        if (byte(&s) & 1)
            r.regex = strdup(PICK(&s, regexes));
        if (byte(&s) & 1)
            r.replacement = strdup(PICK(&s, repls));
        r.modulus = byte(&s) % 4;
        char err[256];
        if (relabel_rule_prepare(&r, err, sizeof err) < 0) {
            relabel_rule_free(&r);
            continue;
        }
        rules[n++] = r;
    }
    sc.relabel_configs = rules;
    sc.n_relabel_configs = n;

    built_target a, b;
    target_build(&sc, &g, &t, &a);
    target_build_final(&sc, &g, &t, &b);
    if (a.status != b.status || a.dropped_by != b.dropped_by || strcmp(a.error, b.error) != 0 ||
        !labelset_equal(&a.labels, &b.labels) || a.hash != b.hash || (!a.url) != (!b.url) ||
        (a.url && strcmp(a.url, b.url) != 0) || b.discovered.n != 0)
        abort();
    built_target_free(&a);
    built_target_free(&b);
    for (size_t i = 0; i < n; i++)
        relabel_rule_free(&rules[i]);
    labelset_free(&g);
    labelset_free(&t);
    return 0;
}
