/* ui: serves the embedded web UI (api/web_assets.h):
 *   GET /               index.html, Cache-Control: no-cache (always revalidated, so a new build shows up)
 *   GET /static/F       an asset; with ?v=<its ETag> (the URLs index.html uses) it is immutable for a
 *                       year, otherwise no-cache
 * Every response carries a strong ETag (If-None-Match -> 304), the exact content type, and
 * Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:
 * (the UI has no inline script or style), nosniff and no framing. Thread-safe (static data only). */
#ifndef LOOKOUT_API_UI_H
#define LOOKOUT_API_UI_H
#include "http/server.h"

#define UI_CSP "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:"

void ui_register(http_server *s);

#endif
