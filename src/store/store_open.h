/* store_open: the backend factory, storage_config -> store. One small switch; each persistent backend
 * adds its case. When a backend is not compiled in, sqlite (the default) falls back to memory with a
 * warning (so a plain build still runs), while an explicitly configured postgres/mysql is an error. */
#ifndef LOOKOUT_STORE_STORE_OPEN_H
#define LOOKOUT_STORE_STORE_OPEN_H
#include <stddef.h>

#include "config/config.h"
#include "store/store.h"

/* default_path: --storage.path, used when sc->path is NULL. scrubbing: the `scrubbing:` section (NULL:
 * the defaults); a SQL database scrubbed with other rules is scrubbed with these while it opens. Returns
 * the store, or NULL with err. */
store *store_open(const storage_config *sc, const scrubbing_config *scrubbing, const char *default_path, char *err,
                  size_t errlen);

#endif
