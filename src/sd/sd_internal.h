/* sd_internal: what the discovery files share with each other and with their unit tests, but not with
 * the rest of lookout (which sees only sd.h). */
#ifndef LOOKOUT_SD_SD_INTERNAL_H
#define LOOKOUT_SD_SD_INTERNAL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sd/sd.h"

extern const sd_provider_ops sd_static_ops;
extern const sd_provider_ops sd_file_ops;
extern const sd_provider_ops sd_dns_ops;
extern const sd_provider_ops sd_consul_ops;
extern const sd_provider_ops sd_http_ops;

/* A provider's own copy of its SD block: allocated, deep (config's sd_config_copy), freed with
 * sd_block_free (sd_config_release, secrets wiped). sd_block_equal is config's sd_config_equal plus the
 * index (static sources and provider names derive from it), not pos; unknown kinds compare unequal so such
 * providers are always restarted. */
sd_config *sd_block_copy(const sd_config *src);
void sd_block_free(sd_config *c);
bool sd_block_equal(const sd_config *a, const sd_config *b);
/* "static_configs", "file_sd_configs", ... */
const char *sd_kind_list_name(sd_kind kind);

/* Frees a provider made by sd_provider_create (after stop): impl via ops->destroy, then the base. */
void sd_provider_free(sd_provider *p);

/* Tests: the minimum time between two cache writes of one provider (default SD_CACHE_WRITE_INTERVAL_MS). */
void sd_manager_set_cache_interval_ms(sd_manager *m, int64_t ms);

/* Largest file_sd file accepted (bytes): bounded reads. */
#define SD_FILE_MAX_BYTES (64u << 20)

/* Reads one file_sd file (format from the extension: .json, .yml, .yaml, case-insensitive), validates it
 * as Prometheus does and returns its groups that have targets (sources "PATH:INDEX" where INDEX is the
 * group's position in the file, __meta_filepath set; a group without targets changes nothing, and the
 * provider empties a source that had targets before, see sd_groups_gone). On error returns -1 and writes a
 * message (with line/column when the parser gives one) into err; *out is untouched. */
int sd_file_read(const char *path, target_group **out, size_t *n, char *err, size_t errlen);
/* sd_file_read's reading step: all of f into a malloc'd buffer (*out, *len bytes, with room for a NUL
 * after them). size is what fstat said (the file may grow or shrink meanwhile; /proc files say 0), limit
 * the most bytes accepted: -1 with err "file is more than the LIMIT bytes allowed" as soon as more are
 * there, or "read error". Separate so that a test can grow a file past the limit during the read without
 * writing 64 MiB (tests/unit/test_sd_file.c). */
int sd_file_read_stream(FILE *f, size_t size, size_t limit, char **out, size_t *len, char *err, size_t errlen);
/* Same from memory; `path` names the file in sources, labels and messages and selects the format. */
int sd_file_parse(const char *path, const char *data, size_t len, target_group **out, size_t *n, char *err,
                  size_t errlen);
void sd_groups_free(target_group *g, size_t n);
/* The file_sd JSON list parsed as a stream (json_groups.c): groups with targets only, sources
 * "PREFIX:INDEX", idx[k] = INDEX of out[k] (ascending; idx may be NULL). No provider label is set. */
int sd_json_groups_parse(const char *prefix, const char *data, size_t len, target_group **out, size_t **idx,
                         size_t *n, char *err, size_t errlen);
/* Shared by the streaming (yajl) SD parsers. "line L column C: TEXT" into err for a parse stopped at byte
 * off of data: TEXT is fatal_text when set (a callback's), else yajl's message; returns -1. */
int sd_json_syntax_error(void *yajl_handle, const char *data, size_t len, size_t off, const char *fatal_text,
                         char *err, size_t errlen);
/* yajl accepts an unterminated string after a complete document (`null"`): the offset + 1 of the first
 * byte other than JSON whitespace after root_end (where the root value ended), or 0. */
size_t sd_json_trailing_garbage(const char *data, size_t len, size_t root_end);
/* A JSON number as jansson judged it: NULL, or "too big integer" / "real number overflow" (it refused
 * both as syntax errors). *is_int: no fraction or exponent; *iv its value then. */
const char *sd_json_number_check(const char *s, size_t len, bool *is_int, long long *iv);
/* The INDEX of a source "PREFIX:INDEX" (0 when there is none). */
size_t sd_group_index(const target_group *g);
/* The positions in old[] (ascending) missing from the indexes of now[] (ascending), written to gone[]
 * (room for n_old); returns how many. A provider sends an empty group for each: it had targets before. */
size_t sd_groups_gone(const size_t *old, size_t n_old, const target_group *now, size_t n_now, size_t *gone);

/* Milliseconds on CLOCK_MONOTONIC / CLOCK_REALTIME. */
int64_t sd_now_mono_ms(void);
double sd_now_unix(void);

#endif
