/* parse_scrubbing: lookout's top-level `scrubbing:` section (config.h, docs/security.md). Secrets in the
 * HTTP context of occurrences are masked at ingestion; this section turns it off or extends the lists. */
#include <string.h>

#include "config/internal.h"
#include "util/strv.h"

void cfg_scrubbing_defaults(scrubbing_config *s)
{
    memset(s, 0, sizeof *s);
    s->enabled = true;
}

void cfg_scrubbing_free(scrubbing_config *s)
{
    strv_free(s->headers, s->n_headers);
    strv_free(s->fields, s->n_fields);
    memset(s, 0, sizeof *s);
}

int cfg_parse_scrubbing(cfg_ctx *c, const yaml_node_t *node, scrubbing_config *s)
{
    static const char *const keys[] = {"enabled", "headers", "fields", NULL};
    int r = cfg_check_map(c, node, "scrubbing", keys);
    if (r)
        return r < 0 ? -1 : 0;
    if (cfg_read_bool(c, node, "enabled", &s->enabled) < 0 ||
        cfg_read_string_list(c, node, "headers", &s->headers, &s->n_headers) < 0 ||
        cfg_read_string_list(c, node, "fields", &s->fields, &s->n_fields) < 0)
        return -1;
    for (size_t i = 0; i < s->n_headers; i++)
        if (!*s->headers[i])
            return cfg_error(c, cfg_get(c, node, "headers"), "empty header name in scrubbing.headers");
    for (size_t i = 0; i < s->n_fields; i++)
        if (!*s->fields[i])
            return cfg_error(c, cfg_get(c, node, "fields"), "empty pattern in scrubbing.fields (it would match "
                                                           "nothing)");
    return 0;
}
