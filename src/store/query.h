/* store/query: the search language of the API's `q=` and the UI's search box, parsed once into a
 * structured store_search that every backend evaluates (memory.c directly, the SQL backends as
 * conditions in sql_read.c), so the language means the same on each.
 *
 *   word              full-text: case-insensitive substring of the key or of any one field of any
 *                     sample (store.h's q semantics)
 *   "an exact phrase" full-text of the whole phrase (spaces included); \" and \\ escape inside quotes
 *   is:open|resolved|regressed   status (is:open is open or regressed, as the API's status=open);
 *                     comma lists are ORed: is:resolved,regressed
 *   severity:LIST     severity:error, severity:warning,error
 *   job:LIST          job name (exact), comma lists ORed
 *   class:TEXT        case-insensitive substring of the class of some stored sample
 *   key:TEXT          case-insensitive substring of the aggregation key
 *   NAME:VALUE        some label set seen for the error has NAME=VALUE (exact); NAME is a Prometheus
 *                     label name; any other NAME:... is a label term
 *   -term             negates any of the above (-is:resolved, -"phrase", -namespace:dev)
 * Field values may be quoted (class:"Foo Bar"). Terms are ANDed.
 *
 * Bounded where it enters: at most STORE_SEARCH_MAX_LEN bytes, STORE_SEARCH_MAX_TERMS terms, each value
 * at most STORE_SEARCH_MAX_TERM_LEN bytes; anything else is a parse error naming the problem (the API
 * answers 400 with it). Pure: no threads, no globals. */
#ifndef LOOKOUT_STORE_QUERY_H
#define LOOKOUT_STORE_QUERY_H
#include <stdbool.h>
#include <stddef.h>

#define STORE_SEARCH_MAX_LEN 2048
#define STORE_SEARCH_MAX_TERMS 32
#define STORE_SEARCH_MAX_TERM_LEN 256
#define STORE_SEARCH_MAX_VALUES 16 /* per comma list */

typedef enum store_term_kind {
    STORE_TERM_TEXT = 0,
    STORE_TERM_IS,
    STORE_TERM_SEVERITY,
    STORE_TERM_JOB,
    STORE_TERM_CLASS,
    STORE_TERM_KEY,
    STORE_TERM_LABEL,
} store_term_kind;

typedef struct store_term {
    store_term_kind kind;
    bool neg;
    /* IS: bit (1 << store_status) per status matched; SEVERITY: bit (1 << payload_severity) */
    unsigned mask;
    /* TEXT, CLASS, KEY: the text, ASCII lower-cased; LABEL: the value, exact */
    char *value;
    char *name; /* LABEL: the label name */
    /* JOB: the names (ORed) */
    char **values;
    size_t n_values;
} store_term;

typedef struct store_search {
    store_term *v;
    size_t n;
} store_search;

/* Parses q (NULL or "" gives no terms). 0, or -1 with a message naming the problem in err (out is then
 * empty). Free out with store_search_free either way. */
int store_search_parse(const char *q, store_search *out, char *err, size_t errlen);
void store_search_free(store_search *s);

/* ASCII lower-case of s[0..n) into a new string (the case folding of every backend). */
char *store_search_lower(const char *s, size_t n);
/* True when needle (already lower-cased) is an ASCII-case-insensitive substring of hay. */
bool store_search_contains(const char *hay, const char *needle);

#endif
