/* The store suite (store_suite.h) against the memory backend. */
#include <stdbool.h>

#include "store/store.h"

#define SUITE mem
#define SUITE_PERSISTENT 0
static store *suite_open(const store_options *o, bool fresh)
{
    (void)fresh;
    return store_memory_new(o);
}

#include "store_suite.h"
