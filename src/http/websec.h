/* websec: who may read and change what, for every endpoint of the HTTP server. Applies a web
 * configuration (config/web_config.h, --web.config.file) and the cross-site policy (http/origin.h,
 * --web.cors.origin) through the server's gate and decorate hooks:
 *
 *   every response   http_server_config.headers; CORS headers for an Origin allowed by --web.cors.origin
 *   rate_limit       429 Too Many Requests beyond it (whole server, like exporter-toolkit)
 *   client_auth_type a request without the required (or with an unverifiable) client certificate: 403
 *   cross-site write 403 (origin.h), checked before credentials; an allowed origin's preflight: 204
 *   basic_auth_users 401 with "WWW-Authenticate: Basic" unless the credentials match (auth.h)
 *
 * TLS: the certificate and key are served through GnuTLS' certificate callback, so a reload with a new
 * certificate takes effect for the next handshake; the client CA list, protocol versions, cipher suites and
 * curves are fixed when the server starts (a reload that changes them says so in the log).
 *
 * Thread-safety: gate/decorate run on server threads; websec_reload on the reload thread. The current
 * configuration is read under a read-write lock; replaced certificates are kept until websec_free
 * (in-flight TLS sessions may still use their certificate). */
#ifndef LOOKOUT_HTTP_WEBSEC_H
#define LOOKOUT_HTTP_WEBSEC_H
#include <stdbool.h>

#include "config/web_config.h"
#include "http/origin.h"
#include "http/server.h"

typedef struct websec websec;

/* Takes ownership of cfg (NULL: no web configuration) and cors (NULL: no cross-origin writes allowed).
 * Only one websec with TLS may exist at a time (GnuTLS' callback has no context argument). */
websec *websec_new(web_config *cfg, pcre2_code *cors);
/* Fills the TLS fields of server options; the strings belong to ws. Returns 0, or -1 with err when the
 * certificate cannot be loaded into GnuTLS. */
int websec_server_options(websec *ws, http_server_options *o, char *err, size_t errlen);
/* Installs the gate and decorate hooks. */
void websec_attach(websec *ws, http_server *s);
/* Replaces the web configuration (takes ownership). Returns 0, or -1 with err when cfg cannot be applied
 * (TLS switched on or off, or a certificate GnuTLS refuses); then the running one stays and cfg is freed.
 * *restart_needed tells that TLS settings other than the certificate changed (they apply at restart). */
int websec_reload(websec *ws, web_config *cfg, bool *restart_needed, char *err, size_t errlen);
bool websec_tls(const websec *ws);
/* Also treats --web.external-url's scheme://host[:port] as lookout's own origin (call before the server
 * starts; a URL without "scheme://host" is ignored). */
void websec_set_external_url(websec *ws, const char *url);
void websec_free(websec *ws);

bool websec_gate(void *ctx, const api_request *req, api_response *resp);
void websec_decorate(void *ctx, const api_request *req, api_response *resp);

#endif
