/* sd_internal: what the discovery files share with each other and with their unit tests, but not with
 * the rest of lookout (which sees only sd.h). */
#ifndef LOOKOUT_SD_SD_INTERNAL_H
#define LOOKOUT_SD_SD_INTERNAL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sd/sd.h"

typedef struct sd_pool sd_pool; /* below */

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
/* The same, JSON groups sharing their strings through pool (the provider's, see sd_pool; NULL: none). */
int sd_file_read_pooled(const char *path, sd_pool *pool, target_group **out, size_t *n, char *err, size_t errlen);
/* Same from memory; `path` names the file in sources, labels and messages and selects the format. */
int sd_file_parse(const char *path, const char *data, size_t len, target_group **out, size_t *n, char *err,
                  size_t errlen);
void sd_groups_free(target_group *g, size_t n);

/* A pool of strings shared by the frozen groups of a provider (label names, the provider's label, group
 * label values), so each group does not carry its own copy. One per provider, kept across its refreshes
 * (interned strings are never freed while it lives), so a group kept unchanged from an old response holds
 * no old per-response pool: what a provider's pool holds is bounded by SD_POOL_MAX_STRINGS strings of at
 * most SD_POOL_MAX_LEN bytes and SD_POOL_MAX_BYTES in all (then sd_pool_intern returns NULL and the
 * caller keeps its own copy), whatever its responses do. Interning: one thread (the provider's) until
 * sd_pool_seal; pooled strings never move and are read by any thread; each frozen group using the pool
 * holds a reference. */
#define SD_POOL_MAX_STRINGS 16384
#define SD_POOL_MAX_LEN 256
#define SD_POOL_MAX_BYTES (1u << 20)
sd_pool *sd_pool_new(void);
/* The pooled copy of s (len bytes, no NUL inside), or NULL when the pool is full, s too long or the pool
 * sealed. */
const char *sd_pool_intern(sd_pool *p, const char *s, size_t len);
/* Ends interning: frees the lookup table (the strings stay). */
void sd_pool_seal(sd_pool *p);
void sd_pool_unref(sd_pool *p);

/* A group being read by a streaming parser (frozen.c): its targets packed (a few bytes per target besides
 * the strings), then frozen into the compact, immutable form the discovery manager stores by reference, so
 * a response's targets exist once instead of as plain label sets plus the manager's copy.
 * Zero-initialised = empty. */
typedef struct sd_group_builder {
    char *buf;
    size_t len, cap;
    size_t n_targets;
    sd_pool *pool; /* optional (not owned): label strings found in it are referenced, not copied */
    size_t *prev_off; /* where the last target's label names are in buf (prev_n of them, prev_cap room) */
    size_t prev_n, prev_cap;
} sd_group_builder;
/* Appends a target with t's labels (t is a valid label set: sorted, unique, no empty value). */
void sd_gb_add_target(sd_group_builder *b, const labelset *t);
/* Appends the target {__address__="addr"} (len bytes; an empty address is a target without labels). */
void sd_gb_add_address(sd_group_builder *b, const char *addr, size_t len);
/* *out = a view (gen != 0) of a new frozen group of source, labels and the targets added, holding its one
 * reference (target_group_free or sd_groups_free releases it; never change it). The builder is emptied. */
void sd_gb_freeze(sd_group_builder *b, const char *source, const labelset *labels, target_group *out);
/* sd_gb_freeze, where the group takes labels->v (malloc'd; its entries are rewritten) and arena (arena_len
 * bytes, malloc'd; NULL for none), both freed with it: strings of `labels` inside arena are referenced, the
 * others copied. For a group whose labels were generated by the million (a Kubernetes object's labels map):
 * one copy of their text and one array instead of a labelset's allocations plus a frozen copy. */
void sd_gb_freeze_adopt(sd_group_builder *b, const char *source, const labelset *labels, char *arena,
                        size_t arena_len, target_group *out);
/* sd_gb_freeze, the group taking arena (arena_len bytes, malloc'd; freed with it) but not labels' array: the
 * group labels' strings inside it are referenced, not copied (json_groups.c: a group with a big labels map
 * written into it as it streamed). */
void sd_gb_freeze_arena(sd_group_builder *b, const char *source, const labelset *labels, char *arena,
                        size_t arena_len, target_group *out);
/* Maps a frozen group keeps packed (a Kubernetes object's labels and annotations): m[i].text and m[i].off
 * malloc'd, the prefixes static. */
typedef struct sd_lazy {
    size_t n;
    label_pmap m[];
} sd_lazy;
void sd_lazy_free(sd_lazy *z);
/* sd_gb_freeze, the group also taking maps (freed with it; NULL for none), read with labels through
 * target_group_labels: their labels are never expanded into the group. labels' names must be none of the
 * maps' (label_view). */
void sd_gb_freeze_lazy(sd_group_builder *b, const char *source, const labelset *labels, sd_lazy *maps,
                       target_group *out);
void sd_gb_clear(sd_group_builder *b);
void sd_gb_free(sd_group_builder *b);
/* The file_sd JSON list parsed as a stream (json_groups.c): groups with targets only, sources
 * "PREFIX:INDEX", idx[k] = INDEX of out[k] (ascending; idx may be NULL). Every group's labels lose del_name
 * (when not NULL), then get set_name=set_value (when set_name is not NULL: the provider's label). The
 * groups are frozen views (gen != 0): read them, free them with sd_groups_free, never change them. Their
 * strings are shared through pool (the provider's; NULL: a pool of this response only). */
/* Labels text (bytes) past which a group takes the buffer its labels were read into (sd_gb_freeze_adopt)
 * instead of copying them: 64 KiB. Fuzz harnesses and tests set 0 to take both paths on small inputs. */
extern size_t sd_json_adopt_min;
int sd_json_groups_parse(const char *prefix, const char *set_name, const char *set_value, const char *del_name,
                         sd_pool *pool, const char *data, size_t len, target_group **out, size_t **idx, size_t *n,
                         char *err, size_t errlen);
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
