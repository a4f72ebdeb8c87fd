/* strtab: reference-counted string interning. The target manager keeps one per pool so that the label
 * names and the values shared by many targets (job, scheme, path, interval...) are stored once.
 * Not thread-safe: the owner serialises changes (the target manager's write lock); the returned strings
 * can be read concurrently while they are referenced. */
#ifndef LOOKOUT_UTIL_STRTAB_H
#define LOOKOUT_UTIL_STRTAB_H
#include <stddef.h>
#include <stdint.h>

#include "util/keymap.h"

typedef struct istr istr;

typedef struct strtab {
    keymap map;    /* string -> istr (the key bytes live in the entry) */
    size_t n;      /* distinct strings */
} strtab;          /* zero-initialised = empty */

/* The interned copy of s, with one more reference. */
const char *strtab_get(strtab *t, const char *s);
/* Drops a reference to a string strtab_get returned; the last one frees it. */
void strtab_put(strtab *t, const char *s);
/* Frees every string, referenced or not. */
void strtab_free(strtab *t);

#endif
