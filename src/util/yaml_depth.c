/* yaml_depth: see yaml_depth.h. */
#include "util/yaml_depth.h"

#include <stdbool.h>
#include <stdint.h>

#include <yaml.h>

int yaml_depth_check(const char *data, size_t len, size_t *line, size_t *column, const char **why)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return 0; /* the loader reports it */
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
    bool flow[YAML_DEPTH_MAX + 1]; /* style of each open collection */
    int depth = 0, flow_depth = 0, rc = 0;
    uint64_t work = 0, budget = 16 * (uint64_t)len + 100000;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev))
            break; /* a syntax error: the loader gives the message */
        yaml_event_type_t t = ev.type;
        if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
            if (depth == YAML_DEPTH_MAX) {
                *why = "exceeded max depth of 1000"; /* YAML_DEPTH_MAX */
                rc = -1;
            } else {
                bool f = t == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE
                                                        : ev.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE;
                flow[depth++] = f;
                flow_depth += f;
            }
        } else if ((t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) && depth > 0) {
            flow_depth -= flow[--depth];
        }
        work += (uint64_t)flow_depth;
        if (!rc && work > budget) {
            *why = "too much nesting for the document's size";
            rc = -1;
        }
        if (rc) {
            *line = ev.start_mark.line;
            *column = ev.start_mark.column;
        }
        yaml_event_delete(&ev);
        if (rc || t == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete(&p);
    return rc;
}
