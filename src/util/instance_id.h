/* instance_id: a lookout instance's persistent identity, and stable UUIDs derived from it.
 *
 * The id is a random UUID kept in DIR/instance_id (DIR = --storage.path), created on first start, so that
 * a lookout exporting its state (GET /federate/exceptions, GET /-/errors) keeps the same target_uuid
 * across restarts: an upper lookout then continues the same counters instead of counting everything
 * again. Pure file I/O, no threads. */
#ifndef LOOKOUT_UTIL_INSTANCE_ID_H
#define LOOKOUT_UTIL_INSTANCE_ID_H
#include <stddef.h>

#define INSTANCE_ID_LEN 37 /* 36 characters + NUL */

/* Reads DIR/instance_id, or creates it with a new random UUID (creating DIR when missing). Returns 0 with
 * out filled, or -1 with err (out then holds a random id valid for this process only). */
int instance_id_load(const char *dir, char out[INSTANCE_ID_LEN], char *err, size_t errlen);
/* A random (version 4) UUID. */
void instance_id_random(char out[INSTANCE_ID_LEN]);
/* A name-based UUID (version 5 layout, SHA-1 of id "\n" name): the same inputs always give the same
 * UUID. */
void instance_id_derive(const char *id, const char *name, char out[INSTANCE_ID_LEN]);

#endif
