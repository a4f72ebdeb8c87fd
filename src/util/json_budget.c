/* json_budget: see json_budget.h. The hooks pass every allocation through to malloc/free, so memory
 * allocated before they were installed (or outside a window) is freed correctly by them and vice versa. */
#include "util/json_budget.h"

#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

static _Thread_local struct {
    bool active, exceeded;
    size_t used, max;
} tl;

static void *budget_malloc(size_t n)
{
    if (!tl.active)
        return malloc(n);
    if (tl.used + n > tl.max) {
        tl.exceeded = true;
        return NULL;
    }
    void *p = malloc(n);
    if (p)
        tl.used += malloc_usable_size(p);
    return p;
}

static void budget_free(void *p)
{
    if (tl.active && p) {
        size_t u = malloc_usable_size(p);
        tl.used = u > tl.used ? 0 : tl.used - u;
    }
    free(p);
}

static pthread_once_t installed = PTHREAD_ONCE_INIT;

static void install(void)
{
    json_set_alloc_funcs(budget_malloc, budget_free);
}

size_t json_budget_for(size_t len)
{
    return len > ((size_t)-1 - JSON_BUDGET_BASE) / JSON_BUDGET_RATIO ? (size_t)-1
                                                                   : len * JSON_BUDGET_RATIO + JSON_BUDGET_BASE;
}

void json_budget_begin(size_t max_bytes)
{
    pthread_once(&installed, install);
    tl.active = true;
    tl.exceeded = false;
    tl.used = 0;
    tl.max = max_bytes;
}

bool json_budget_exceeded(void)
{
    return tl.active && tl.exceeded;
}

bool json_budget_end(void)
{
    tl.active = false;
    return tl.exceeded;
}
