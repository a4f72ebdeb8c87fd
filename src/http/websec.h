/* websec: who may read and change what, for every endpoint of the HTTP server. Applies a web
 * configuration (config/web_config.h, --web.config.file) and the cross-site policy (http/origin.h,
 * --web.cors.origin) through the server's gate and decorate hooks:
 *
 *   every response   http_server_config.headers; CORS headers for an Origin allowed by --web.cors.origin
 *   rate_limit       429 Too Many Requests beyond it (whole server, like exporter-toolkit)
 *   cross-site write 403 (origin.h), checked before credentials; an allowed origin's preflight: 204
 *   basic_auth_users 401 with "WWW-Authenticate: Basic" unless the credentials match (auth.h)
 *
 * TLS: every connection gets, before its handshake, the GnuTLS credentials (certificate and key, client CA
 * list), priorities (versions, cipher suites, curves) and client certificate request of the configuration
 * current at that moment (server.h's TLS hooks), so a reload applies all of them to the next handshake like
 * Prometheus, which reads its TLS configuration per handshake. client_auth_type is enforced in the
 * handshake, with Go's crypto/tls semantics: a missing required certificate, one the client CA list does
 * not verify (for the client-auth key usage; the system's roots without client_ca_file) or one with none
 * of client_allowed_sans fails the handshake.
 *
 * Thread-safety: gate/decorate and the TLS hooks run on server threads; websec_reload on the reload
 * thread. The current configuration is read under a read-write lock; the TLS settings of a configuration
 * live as long as a connection uses them (reference-counted). */
#ifndef LOOKOUT_HTTP_WEBSEC_H
#define LOOKOUT_HTTP_WEBSEC_H
#include <stdbool.h>

#include "config/web_config.h"
#include "http/origin.h"
#include "http/server.h"

typedef struct websec websec;

/* Takes ownership of cfg (NULL: no web configuration) and cors (NULL: no cross-origin writes allowed). */
websec *websec_new(web_config *cfg, pcre2_code *cors);
/* Fills the TLS fields of server options. Returns 0, or -1 with err when the TLS settings cannot be loaded
 * into GnuTLS. */
int websec_server_options(websec *ws, http_server_options *o, char *err, size_t errlen);
/* Installs the gate, decorate and TLS hooks. */
void websec_attach(websec *ws, http_server *s);
/* Replaces the web configuration (takes ownership). Switching TLS on or off replaces the server's daemon
 * (http_server_switch_tls): new connections get the new kind, open ones finish as they are. Returns 0, or
 * -1 with err when cfg cannot be applied (TLS settings GnuTLS refuses, a daemon that cannot start); then
 * the running one stays and cfg is freed. */
int websec_reload(websec *ws, web_config *cfg, char *err, size_t errlen);
bool websec_tls(const websec *ws);
/* Also treats --web.external-url's scheme://host[:port] as lookout's own origin (call before the server
 * starts; a URL without "scheme://host" is ignored). */
void websec_set_external_url(websec *ws, const char *url);
void websec_free(websec *ws);

bool websec_gate(void *ctx, const api_request *req, api_response *resp);
void websec_decorate(void *ctx, const api_request *req, api_response *resp);

#endif
