/* store_open: see store_open.h. */
#include "store/store_open.h"

#include <stdio.h>

#include "util/log.h"

store *store_open(const storage_config *sc, const char *default_path, char *err, size_t errlen)
{
    store_options o = {.retention_ms = sc->retention_ms};
    (void)default_path; /* used by the file-based backends */
    switch (sc->type) {
    case STORAGE_MEMORY:
        return store_memory_new(&o);
    case STORAGE_SQLITE:
        log_warn("store", "the sqlite backend is not built in; using the memory store (nothing survives a restart)",
                 "path", sc->path ? sc->path : default_path);
        return store_memory_new(&o);
    case STORAGE_POSTGRES:
        snprintf(err, errlen, "storage type postgres is not built into this lookout");
        return NULL;
    case STORAGE_MYSQL:
        snprintf(err, errlen, "storage type mysql is not built into this lookout");
        return NULL;
    }
    snprintf(err, errlen, "unknown storage type %d", (int)sc->type);
    return NULL;
}
