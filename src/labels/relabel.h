/* relabel: Prometheus relabel_configs (model/relabel/relabel.go). Pure functions, no threads: a compiled
 * rule is immutable and may be applied from any thread concurrently (per-call match data).
 *
 * Regexes are Go RE2 syntax, fully anchored (^(?:REGEX)$), validated for RE2 compatibility and compiled
 * once with PCRE2 (JIT when available). */
#ifndef LOOKOUT_LABELS_RELABEL_H
#define LOOKOUT_LABELS_RELABEL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels/labels.h"

typedef enum relabel_action {
    RELABEL_REPLACE = 0,
    RELABEL_KEEP,
    RELABEL_DROP,
    RELABEL_KEEPEQUAL,
    RELABEL_DROPEQUAL,
    RELABEL_HASHMOD,
    RELABEL_LABELMAP,
    RELABEL_LABELDROP,
    RELABEL_LABELKEEP,
    RELABEL_LOWERCASE,
    RELABEL_UPPERCASE,
} relabel_action;

typedef struct relabel_regex relabel_regex; /* opaque compiled regex */

typedef struct relabel_rule {
    char **source_labels;
    size_t n_source_labels;
    char *separator;   /* default ";" */
    char *target_label;/* NULL when not set */
    char *regex;       /* source text as configured; default "(.*)" */
    relabel_regex *re; /* compiled, owned */
    uint64_t modulus;
    char *replacement; /* default "$1" */
    relabel_action action;
    int line, column;  /* position in the config file, 0 when built in code */
} relabel_rule;

/* Name used in config files ("replace", "keepequal", ...). */
const char *relabel_action_name(relabel_action a);
/* Parses an action name (case-insensitive as Prometheus); returns -1 when unknown. */
int relabel_action_parse(const char *s, relabel_action *out);

/* Fills defaults (separator, regex, replacement) for fields left NULL, compiles the regex and validates the
 * rule as Prometheus does. Returns 0, or -1 with a message in err (without file position). */
int relabel_rule_prepare(relabel_rule *r, char *err, size_t errlen);
void relabel_rule_free(relabel_rule *r); /* frees the fields, not r itself */
/* Deep copy of a prepared rule (recompiles the regex). */
void relabel_rule_copy(relabel_rule *dst, const relabel_rule *src);

/* Compiles a Go RE2 regex anchored as Prometheus does; NULL + message on error (syntax, or a construct
 * RE2 rejects: lookaround, backreference, atomic group, possessive quantifier, repeat count > 1000). */
relabel_regex *relabel_regex_compile(const char *re, char *err, size_t errlen);
void relabel_regex_free(relabel_regex *re);
bool relabel_regex_match(const relabel_regex *re, const char *s);
/* The regex text as given to relabel_regex_compile (without the anchors). */
const char *relabel_regex_source(const relabel_regex *re);
/* Finds the leftmost match in s (Go FindStringSubmatchIndex); when there is one, expands each of the n
 * templates with it (Go Regexp.Expand: $1 ${1} $name ${name} $$) into outs[i] (malloc'd, caller frees) and
 * returns true. */
bool relabel_regex_expand(const relabel_regex *re, const char *s, const char *const *tmpl, size_t n,
                          char **outs);
/* Go Regexp.ReplaceAllString(s, tmpl). Caller frees. */
char *relabel_regex_replace_all(const relabel_regex *re, const char *s, const char *tmpl);

/* Result of applying a chain. */
typedef struct relabel_result {
    bool keep;
    int dropped_by; /* index of the rule that dropped, -1 when kept */
} relabel_result;

/* Applies rules in order to ls (modified in place). Stops at the first rule that drops; a dropped set is
 * left empty (Prometheus returns empty labels). */
relabel_result relabel_apply(const relabel_rule *rules, size_t n, labelset *ls);

/* One step for the relabel_steps API: labels after rule i and whether it kept the target. The callback
 * is invoked after each rule; steps stop after a drop. */
typedef void (*relabel_step_fn)(void *ctx, size_t rule_index, const labelset *after, bool keep);
relabel_result relabel_apply_steps(const relabel_rule *rules, size_t n, labelset *ls, relabel_step_fn fn,
                                   void *ctx);

/* relabel_apply from rule `start` on (rules before it are taken as run): dropped_by counts from rule 0. */
relabel_result relabel_apply_from(const relabel_rule *rules, size_t start, size_t n, labelset *ls);

/* A view: rules run on labels read by name from a base nobody copies (a target's discovered labels, whose
 * group may hold a million), their writes kept aside. What target building runs first, so that a target the
 * rules drop never has its labels copied (issue 12). lookup returns the base's value of name, NULL or ""
 * when it has none; it is called only for names a rule reads. */
typedef const char *(*relabel_lookup_fn)(void *ctx, const char *name);
typedef struct relabel_view {
    relabel_lookup_fn lookup;
    void *ctx;
    labelset set;   /* labels the rules run so far set, over the base's */
    labelset unset; /* names they deleted (each with the value "1"; set again when also in set) */
    size_t done;    /* how many rules have run */
} relabel_view;
void relabel_view_init(relabel_view *v, relabel_lookup_fn lookup, void *ctx);
void relabel_view_free(relabel_view *v);
/* Runs rules[v->done..n) on the view while they read labels by name, stopping before the first labelmap,
 * labeldrop or labelkeep (they read every name: the caller materialises the labels, relabel_view_write,
 * and goes on with relabel_apply_from(rules, v->done, n, ...)) or after a drop (as relabel_apply: keep
 * false, dropped_by the rule's index, the writes cleared). v->done == n when every rule ran. */
relabel_result relabel_view_apply(const relabel_rule *rules, size_t n, relabel_view *v);
/* Applies the view's writes to ls, which holds the base's labels: ls becomes what relabel_apply of the
 * rules run would have made of them. */
void relabel_view_write(const relabel_view *v, labelset *ls);

/* hashmod as Prometheus: md5(value), last 8 bytes big-endian, modulo m. */
uint64_t relabel_hashmod(const char *value, uint64_t modulus);

/* Writes s quoted as Go's %q / strconv.Quote does (used in error texts that mirror Prometheus'). */
void relabel_go_quote(char *buf, size_t n, const char *s);

#endif
