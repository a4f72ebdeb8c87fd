/* scrub: masks secrets in the HTTP context of occurrences before anything stores, merges, indexes or
 * exports them (Sentry's default data scrubbing, applied at ingestion). A masked value becomes the fixed
 * text SCRUB_MASK; names, other parameters and the rest of a body stay readable.
 *
 * What is masked (names compared case-insensitively):
 *   headers     Authorization, Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key, X-Auth-Token, any header
 *               whose name contains token, secret, password, session, api-key or apikey, the configured
 *               extra header names, and headers matched by a field pattern; Referer and Location values
 *               are scrubbed as URLs
 *   URL         the password of userinfo (user:PASSWORD@host); query and fragment parameters whose names
 *               match a field pattern; a URL in another parameter's value (literal or percent-encoded,
 *               up to 4 levels deep) is scrubbed as a URL, in the encoding it came in
 *   body        JSON (any depth: the value of a matching key, whatever its type; string values holding a
 *               URL with userinfo lose the password, a string that is a URL is scrubbed as one) or
 *               application/x-www-form-urlencoded fields (as query parameters)
 * Field patterns: token, key, secret, password, passwd, auth, authorization, session, signature, sig,
 * credential, apikey, plus configured ones. A pattern of five or more characters matches anywhere in a
 * name (access_token, X-Amz-Signature, client_secret); a shorter one only as a whole word, words being
 * split at non-alphanumerics and lower-to-upper case changes (api_key, apiKey, sig, X-Auth; not monkey,
 * design, author).
 *
 * Pure functions over immutable rules; thread-safe. */
#ifndef LOOKOUT_PERISKOP_SCRUB_H
#define LOOKOUT_PERISKOP_SCRUB_H
#include <stdbool.h>
#include <stddef.h>

#include "periskop/payload.h"

#define SCRUB_MASK "[Filtered]"

typedef struct scrub_rules scrub_rules;

/* extra_headers: exact header names; extra_fields: field patterns (both copied). */
scrub_rules *scrub_rules_new(bool enabled, char *const *extra_headers, size_t n_headers, char *const *extra_fields,
                             size_t n_fields);
/* The defaults (enabled, no extras). */
scrub_rules *scrub_rules_default(void);
void scrub_rules_free(scrub_rules *r);
bool scrub_rules_enabled(const scrub_rules *r);

/* Bumped whenever the scrubber masks more than before (2: URLs nested in parameters and in JSON strings),
 * so that stored data is scrubbed again (store/sql_schema.c). */
#define SCRUB_VERSION 2
/* What r masks, as a fingerprint for "was this data scrubbed with these rules": "off" when r is disabled,
 * else 64 hex digits of SHA-256 over SCRUB_VERSION and the extra headers and fields (order and case do not
 * matter). NULL r: the defaults. */
void scrub_rules_fingerprint(const scrub_rules *r, char out[65]);

/* Each returns a new string (caller frees) when something was masked, NULL when s stays as it is. */
char *scrub_url(const scrub_rules *r, const char *s);
char *scrub_body(const scrub_rules *r, const char *s);
/* The scrubbed value of header (name, value). */
char *scrub_header(const scrub_rules *r, const char *name, const char *value);
bool scrub_field_name(const scrub_rules *r, const char *name, size_t len);

/* Scrubs every occurrence of a freshly parsed document in place (occurrences not yet shared) and
 * recomputes their dedup hashes so identity does not depend on secrets. Returns the number of masked
 * values. No-op when r is NULL or disabled. */
size_t scrub_doc(const scrub_rules *r, payload_doc *d);
size_t scrub_occurrence(const scrub_rules *r, payload_occurrence *o);

#endif
