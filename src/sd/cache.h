/* cache: the last good target groups of a discovery provider, persisted under <storage.path>/sd/ so that a
 * restart during an SD outage still has targets to scrape (prometheus#2335, #8438, #17137).
 *
 * One file per (job, provider name, SD block): <dir>/<id>.json where id is the hex SHA-256 of
 * "job \0 provider \0 canonical form of the block" (config's sd_config_canonical without secrets). A changed block
 * therefore has another id and never sees the groups of the old one. The file repeats job, provider and the
 * config digest, and sd_cache_load checks them, so a renamed or foreign file is ignored.
 *
 * Format (version 1):
 *   {"version":1, "job":"j", "provider":"file_sd_configs/0", "config_sha256":"<hex>",
 *    "saved_at":1712345678.123,
 *    "groups":[{"source":"s", "labels":{"k":"v"}, "targets":[{"__address__":"a:1", ...}, ...]}, ...]}
 * Writes are atomic (temp file in the same directory, fsync, rename, fsync of the directory): a crash
 * leaves the old file or the new one, never a torn one.
 *
 * Pure file functions: no threads, no globals; the discovery manager decides when to write and load. */
#ifndef LOOKOUT_SD_CACHE_H
#define LOOKOUT_SD_CACHE_H
#include <stdbool.h>
#include <stddef.h>

#include "sd/sd.h"

#define SD_CACHE_ID_LEN 64                /* hex digits */
#define SD_CACHE_MAX_BYTES (256u << 20)   /* largest cache file read back */
#define SD_CACHE_WRITE_INTERVAL_MS 5000   /* the manager writes a provider at most this often */

/* The file id of a provider: 64 hex digits + NUL into id. Returns 0, or -1 for kinds without a canonical
 * form. config_hex (may be NULL) receives the digest of the canonical form alone. */
int sd_cache_id(const char *job, const char *provider, const sd_config *cfg, char id[SD_CACHE_ID_LEN + 1],
                char config_hex[SD_CACHE_ID_LEN + 1]);

/* Writes groups atomically to <dir>/<id>.json, creating dir (one level) if needed. Returns 0, or -1 + err. */
int sd_cache_write(const char *dir, const char *id, const char *job, const char *provider,
                   const char *config_hex, const target_group *const *groups, size_t n, char *err,
                   size_t errlen);

/* Reads <dir>/<id>.json. Returns 1 with *out and *n (free with sd_groups_free) and *saved_at (unix seconds),
 * 0 when there is no file, -1 + err when it is unreadable, malformed or belongs to another identity. */
int sd_cache_load(const char *dir, const char *id, const char *job, const char *provider,
                  const char *config_hex, target_group **out, size_t *n, double *saved_at, char *err,
                  size_t errlen);

/* Deletes <dir>/<id>.json (no error when absent). */
void sd_cache_remove(const char *dir, const char *id);

/* Deletes every "<64 hex>.json" file (and its temp file) in dir whose id is not in keep. Returns the
 * number of files removed. */
size_t sd_cache_gc(const char *dir, const char *const *keep, size_t n_keep);

#endif
