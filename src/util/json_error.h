/* json_error: where a JSON syntax error is and what yajl says about it, for the streaming parsers
 * (periskop/payload_parse.c, sd/json_groups.c and sd/consul_parse.c word their messages from these). */
#ifndef LOOKOUT_UTIL_JSON_ERROR_H
#define LOOKOUT_UTIL_JSON_ERROR_H
#include <stddef.h>

/* Line (from 1) and column (from 0) of byte offset off of data (len bytes; off beyond len: the end). */
void json_error_position(const char *data, size_t len, size_t off, int *line, size_t *column0);
/* yajl's error text for the handle (a yajl_handle) without its "parse error: " / "lexical error: " prefix
 * and trailing blanks, into text (n bytes). */
void json_yajl_error_text(void *handle, char *text, size_t n);

#endif
