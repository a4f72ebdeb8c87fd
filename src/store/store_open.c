/* store_open: the backend factory, from the storage configuration. */
#include "store/store_open.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "periskop/scrub.h"

static store *open_backend(const storage_config *cfg, const char *storage_path, const store_options *o, char *err,
                           size_t errlen)
{
    switch (cfg->type) {
    case STORAGE_MEMORY: return store_memory_new(o);
    case STORAGE_POSTGRES:
    case STORAGE_MYSQL:
        if (!cfg->dsn || !cfg->dsn[0]) {
            snprintf(err, errlen, "storage.type %s needs storage.dsn",
                     cfg->type == STORAGE_POSTGRES ? "postgres" : "mysql");
            return NULL;
        }
        return cfg->type == STORAGE_POSTGRES ? store_postgres_new(cfg->dsn, o, err, errlen)
                                             : store_mysql_new(cfg->dsn, o, err, errlen);
    default: break;
    }
    const char *dir = cfg->path && cfg->path[0] ? cfg->path : storage_path && storage_path[0] ? storage_path : LOOKOUT_DEFAULT_STORAGE_PATH;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "storage.path %s: cannot create directory: %s", dir, strerror(errno));
        return NULL;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/lookout.db", dir);
    return store_sqlite_new(path, o, err, errlen);
}

store *store_open(const storage_config *cfg, const scrubbing_config *scrubbing, const char *storage_path, char *err,
                  size_t errlen)
{
    scrub_rules *r = scrubbing ? scrub_rules_new(scrubbing->enabled, scrubbing->headers, scrubbing->n_headers,
                                                 scrubbing->fields, scrubbing->n_fields)
                               : NULL;
    store_options o = {.retention_ms = cfg->retention_ms, .scrub = r};
    store *s = open_backend(cfg, storage_path, &o, err, errlen);
    scrub_rules_free(r);
    return s;
}
