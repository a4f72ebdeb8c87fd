/* yaml_depth: a bound on YAML nesting, checked on libyaml's events.
 *
 * libyaml's scanner walks its whole stack of possible simple keys (one per open flow collection, "[" or "{")
 * for every token, so "[[[[..." of n bytes costs O(n^2): a 200 KB file_sd file of brackets held the parser
 * for minutes. Go's yaml (Prometheus) stops at depth 10000. We stop at YAML_DEPTH_MAX levels of any
 * collection, far beyond any real config or target file, and also when the flow depth summed over all events
 * (the scanner's work) exceeds a budget linear in the document's size (real documents use a few units per
 * byte), so repeating a deep-but-legal section cannot add the work back. yaml_depth_check streams the events
 * (no document is built) before a document is loaded and stops at the first violation, so its own cost stays
 * within the budget; a streaming reader (file_sd) feeds its own events to yaml_depth_event instead. */
#ifndef LOOKOUT_UTIL_YAML_DEPTH_H
#define LOOKOUT_UTIL_YAML_DEPTH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

#define YAML_DEPTH_MAX 1000

/* 0 when the document stays within the limits (syntax errors are left to the loader); -1 with the
 * 0-based line and column of the offending collection and a static reason ("exceeded max depth of 1000"). */
int yaml_depth_check(const char *data, size_t len, size_t *line, size_t *column, const char **why);

/* The same check one event at a time, for a parser that reads the events itself: init with the document's
 * size, then every event in order; NULL while within the limits, else the static reason (the event's
 * start_mark is the position; the events after it are not to be fed). */
typedef struct yaml_depth_state {
    bool flow[YAML_DEPTH_MAX + 1]; /* style of each open collection */
    int depth, flow_depth;
    uint64_t work, budget;
} yaml_depth_state;
void yaml_depth_init(yaml_depth_state *s, size_t len);
const char *yaml_depth_event(yaml_depth_state *s, const yaml_event_t *ev);

#endif
