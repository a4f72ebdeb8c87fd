/* web_assets: the web UI (the files under web/) compiled into the binary. The table is generated at build time by
 * scripts/embed_web.sh into $(BUILD)/gen/web_assets.c; web/index.html has path "/", every other file F
 * has path "/static/F". Read-only static data: thread-safe, nothing to free. */
#ifndef LOOKOUT_API_WEB_ASSETS_H
#define LOOKOUT_API_WEB_ASSETS_H
#include <stddef.h>

typedef struct web_asset {
    const char *path;          /* "/" or "/static/app.js" */
    const char *content_type;  /* "text/javascript; charset=utf-8" */
    const unsigned char *data; /* len bytes, followed by a NUL */
    size_t len;
    const char *etag; /* strong ETag, quoted: "\"3f2a9c0d1e4b5a67\"" (first 64 bits of the SHA-256) */
} web_asset;

/* The asset served at path (exact match, no query string), or NULL. */
const web_asset *web_asset_find(const char *path);
/* All assets; *n receives their number. */
const web_asset *web_asset_list(size_t *n);

#endif
