/* yaml_depth: a bound on YAML nesting, checked before a document is loaded.
 *
 * libyaml's scanner walks its whole stack of possible simple keys (one per open flow collection, "[" or "{")
 * for every token, so "[[[[..." of n bytes costs O(n^2): a 200 KB file_sd file of brackets held the parser
 * for minutes. Go's yaml (Prometheus) stops at depth 10000. We stop at YAML_DEPTH_MAX levels of any
 * collection, far beyond any real config or target file, and also when the flow depth summed over all events
 * (the scanner's work) exceeds a budget linear in the document's size (real documents use a few units per
 * byte), so repeating a deep-but-legal section cannot add the work back. The check streams events (no
 * document is built) and stops at the first violation, so its own cost stays within the budget. */
#ifndef LOOKOUT_UTIL_YAML_DEPTH_H
#define LOOKOUT_UTIL_YAML_DEPTH_H
#include <stddef.h>

#define YAML_DEPTH_MAX 1000

/* 0 when the document stays within the limits (syntax errors are left to the loader); -1 with the
 * 0-based line and column of the offending collection and a static reason ("exceeded max depth of 1000"). */
int yaml_depth_check(const char *data, size_t len, size_t *line, size_t *column, const char **why);

#endif
