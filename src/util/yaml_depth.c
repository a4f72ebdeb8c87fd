/* yaml_depth: see yaml_depth.h. */
#include "util/yaml_depth.h"

#include <stdlib.h>

void yaml_depth_init(yaml_depth_state *s, size_t len)
{
    s->depth = s->flow_depth = 0;
    s->work = 0;
    s->budget = 16 * (uint64_t)len + 100000;
}

const char *yaml_depth_event(yaml_depth_state *s, const yaml_event_t *ev)
{
    yaml_event_type_t t = ev->type;
    if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
        if (s->depth == YAML_DEPTH_MAX)
            return "exceeded max depth of 1000"; /* YAML_DEPTH_MAX */
        bool f = t == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE
                                                : ev->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE;
        s->flow[s->depth++] = f;
        s->flow_depth += f;
    } else if ((t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) && s->depth > 0) {
        s->flow_depth -= s->flow[--s->depth];
    }
    s->work += (uint64_t)s->flow_depth;
    return s->work > s->budget ? "too much nesting for the document's size" : NULL;
}

int yaml_depth_check(const char *data, size_t len, size_t *line, size_t *column, const char **why)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return 0; /* the loader reports it */
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
    yaml_depth_state *s = malloc(sizeof *s);
    if (!s)
        abort();
    yaml_depth_init(s, len);
    int rc = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev))
            break; /* a syntax error: the loader gives the message */
        yaml_event_type_t t = ev.type;
        const char *bad = yaml_depth_event(s, &ev);
        if (bad) {
            *why = bad;
            *line = ev.start_mark.line;
            *column = ev.start_mark.column;
            rc = -1;
        }
        yaml_event_delete(&ev);
        if (rc || t == YAML_STREAM_END_EVENT)
            break;
    }
    free(s);
    yaml_parser_delete(&p);
    return rc;
}
