/* strv: counted string vectors (char **v, size_t n), as config and SD structs store lists. */
#ifndef LOOKOUT_UTIL_STRV_H
#define LOOKOUT_UTIL_STRV_H
#include <stdbool.h>
#include <stddef.h>

/* Deep copy of v[0..n). n == 0 gives NULL (what a zeroed struct holds). NULL elements stay NULL.
 * Aborts on OOM like util/xalloc.h. Free with strv_free. */
char **strv_copy(char *const *v, size_t n);
/* The same, but NULL elements become "" (for lists whose users never expect NULL). */
char **strv_copy_or_empty(char *const *v, size_t n);
/* Frees v[0..n) and v; v may be NULL when n == 0. */
void strv_free(char **v, size_t n);
/* Same length and the same strings in the same order (elements must not be NULL). */
bool strv_equal(char *const *a, size_t na, char *const *b, size_t nb);

#endif
