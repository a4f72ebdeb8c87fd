/* json_budget: bounds the memory jansson may take on the calling thread. Discovery answers are streamed
 * (sd/json_groups.c, sd/consul_parse.c, sd/k8s_json.c; no document tree is built, a tree of `[{},{},...]`
 * costing ~77 times its text): k8s_json.c builds jansson values for the fields it keeps and bounds them
 * with this window and json_budget_exceeded, and json_budget_for is the bound other streamed parsers put on
 * what they keep. Inside a budget window jansson's allocations are counted (its allocator hooks, installed
 * once) and refused past the budget, so the parse fails instead of growing: at most JSON_BUDGET_RATIO times
 * the body plus JSON_BUDGET_BASE bytes. A refused response is a failed refresh like any other (the
 * provider keeps its last good targets).
 *
 * Threading: the window is thread-local; other threads' jansson use is unaffected. */
#ifndef LOOKOUT_UTIL_JSON_BUDGET_H
#define LOOKOUT_UTIL_JSON_BUDGET_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define JSON_BUDGET_RATIO 24
#define JSON_BUDGET_BASE (1u << 20)

/* The budget for a body of len bytes: JSON_BUDGET_RATIO * len + JSON_BUDGET_BASE. */
size_t json_budget_for(size_t len);
/* Opens the window: jansson allocations on this thread may total max_bytes. */
void json_budget_begin(size_t max_bytes);
/* True when an allocation of the open window was refused (a streaming builder stops there). */
bool json_budget_exceeded(void);
/* Closes it; true when an allocation was refused (the parse failed for the budget). */
bool json_budget_end(void);

#endif
