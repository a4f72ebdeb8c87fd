/* canonical: the writers behind sd_config_canonical - every field as name=<len>:value; so that no value can
 * imitate a field boundary, lists with their length first. The text is hashed into the ids of persisted
 * SD caches (sd/cache.h): changing what these functions write invalidates every persisted cache once. */
#include <string.h>

#include "config/internal.h"

void cfg_canon_str(strbuf *sb, const char *name, const char *v)
{
    if (!v) {
        strbuf_printf(sb, "%s=-;", name);
        return;
    }
    strbuf_printf(sb, "%s=%zu:", name, strlen(v));
    strbuf_puts(sb, v);
    strbuf_putc(sb, ';');
}

void cfg_canon_secret(strbuf *sb, const char *name, const char *v, bool with_secrets)
{
    cfg_canon_str(sb, name, v && !with_secrets ? "set" : v);
}

void cfg_canon_int(strbuf *sb, const char *name, long long v)
{
    strbuf_printf(sb, "%s=%lld;", name, v);
}

void cfg_canon_strv(strbuf *sb, const char *name, char *const *v, size_t n)
{
    strbuf_printf(sb, "%s=[%zu;", name, n);
    for (size_t i = 0; i < n; i++)
        cfg_canon_str(sb, "", v[i]);
    strbuf_puts(sb, "];");
}
