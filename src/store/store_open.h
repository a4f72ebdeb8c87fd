/* store_open: picks and opens the store backend named by the configuration (storage.type):
 * sqlite (default, <path>/lookout.db, the directory is created), memory, postgres, mysql (storage.dsn).
 * storage_path is --storage.path, used when storage.path is not set. NULL with err on failure. */
#ifndef LOOKOUT_STORE_STORE_OPEN_H
#define LOOKOUT_STORE_STORE_OPEN_H
#include <stddef.h>

#include "config/config.h"
#include "store/store.h"

store *store_open(const storage_config *cfg, const char *storage_path, char *err, size_t errlen);

#endif
