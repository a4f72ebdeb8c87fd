/* json_budget: a jansson parse inside a window is refused past JSON_BUDGET_RATIO x body + base. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_budget.h"
#include "util/strbuf.h"

Test(json_budget, empty_objects_refused_real_documents_pass)
{
    strbuf sb;
    strbuf_init(&sb);
    strbuf_putc(&sb, '[');
    for (int i = 0; i < 1000000; i++) /* 3 MB of text, ~230 MB as a jansson tree */
        strbuf_puts(&sb, i ? ",{}" : "{}");
    strbuf_putc(&sb, ']');
    json_error_t e;
    cr_assert_null(json_budget_loadb(sb.buf, sb.len, 0, &e));
    cr_assert(strstr(e.text, "JSON document too large to hold: more than 69 MiB for a body of 3000001 bytes"), "%s",
              e.text);
    /* compact http_sd target lists, the densest real discovery data: ~15 times the text */
    strbuf_reset(&sb);
    strbuf_putc(&sb, '[');
    for (int i = 0; i < 20000; i++)
        strbuf_printf(&sb, "%s{\"targets\":[\"10.0.%d.%d:8080\"],\"labels\":{\"env\":\"prod\",\"team\":\"t%d\"}}",
                      i ? "," : "", i / 250, i % 250, i % 7);
    strbuf_putc(&sb, ']');
    json_t *root = json_budget_loadb(sb.buf, sb.len, 0, &e);
    cr_assert_not_null(root, "%s", e.text);
    cr_assert_eq(json_array_size(root), 20000);
    json_decref(root);
    /* outside a window nothing is counted or refused */
    strbuf_reset(&sb);
    strbuf_puts(&sb, "[{},{},{},{}]");
    root = json_loadb(sb.buf, sb.len, 0, &e);
    cr_assert_eq(json_array_size(root), 4);
    json_decref(root);
    strbuf_free(&sb);
}
