/* auth: HTTP basic authentication against the bcrypt hashes of a web configuration (basic_auth_users),
 * as exporter-toolkit does it: an unknown user is checked against a fixed hash (so timing does not tell
 * which users exist), bcrypt runs one at a time (it is CPU heavy by design), and results are cached so a
 * correct password does not cost a bcrypt per request.
 *
 * The cache holds AUTH_CACHE_SIZE entries keyed by SHA-256(user NUL hash NUL password): neither passwords
 * nor anything a password can be read back from without brute force; hits are found by a constant-time
 * comparison of the whole key. A changed hash (reload) misses by construction. Thread-safe. */
#ifndef LOOKOUT_HTTP_AUTH_H
#define LOOKOUT_HTTP_AUTH_H
#include <stdbool.h>
#include <stddef.h>

#include "config/web_config.h"

#define AUTH_CACHE_SIZE 128

typedef struct auth_cache auth_cache;

auth_cache *auth_cache_new(void);
void auth_cache_free(auth_cache *c);

/* Decodes an "Authorization: Basic base64(user:password)" value (scheme case-insensitive) into user and
 * pass (NUL-terminated, truncated never: -1 when they do not fit). Returns 0 or -1. */
int auth_parse_basic(const char *header, char *user, size_t ulen, char *pass, size_t plen);

/* True when user/pass match cfg's basic_auth_users. */
bool auth_check(auth_cache *c, const web_config *cfg, const char *user, const char *pass);

/* Counters for tests: bcrypt computations done so far. */
unsigned long auth_bcrypt_runs(const auth_cache *c);

#endif
