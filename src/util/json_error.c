/* json_error: see json_error.h. */
#include "util/json_error.h"

#include <stdio.h>
#include <string.h>
#include <yajl/yajl_parse.h>

void json_error_position(const char *data, size_t len, size_t off, int *line, size_t *column0)
{
    if (off > len)
        off = len;
    int l = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < off; i++)
        if (data[i] == '\n') {
            l++;
            line_start = i + 1;
        }
    *line = l;
    *column0 = off - line_start;
}

void json_yajl_error_text(void *handle, char *text, size_t n)
{
    yajl_handle h = handle;
    unsigned char *ye = yajl_get_error(h, 0, NULL, 0);
    const char *t = (const char *)ye;
    if (!strncmp(t, "parse error: ", 13))
        t += 13;
    else if (!strncmp(t, "lexical error: ", 15))
        t += 15;
    snprintf(text, n, "%s", t);
    yajl_free_error(h, ye);
    size_t k = strlen(text);
    while (k && (text[k - 1] == '\n' || text[k - 1] == ' '))
        text[--k] = 0;
}
