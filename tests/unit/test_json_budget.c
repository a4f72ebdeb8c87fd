/* json_budget: jansson's allocations inside a window are refused past its budget (JSON_BUDGET_RATIO x body +
 * base for json_budget_for), so a parse or a build fails instead of growing. */
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
    cr_assert_eq(json_budget_for(sb.len), 24 * 3000001 + (1 << 20));
    json_budget_begin(json_budget_for(sb.len));
    cr_assert_null(json_loadb(sb.buf, sb.len, 0, &e));
    cr_assert(json_budget_exceeded());
    cr_assert(json_budget_end(), "the window says the parse failed for the budget");
    cr_assert_not(json_budget_exceeded(), "a closed window refuses nothing");
    /* compact http_sd target lists, the densest real discovery data: ~15 times the text */
    strbuf_reset(&sb);
    strbuf_putc(&sb, '[');
    for (int i = 0; i < 20000; i++)
        strbuf_printf(&sb, "%s{\"targets\":[\"10.0.%d.%d:8080\"],\"labels\":{\"env\":\"prod\",\"team\":\"t%d\"}}",
                      i ? "," : "", i / 250, i % 250, i % 7);
    strbuf_putc(&sb, ']');
    json_budget_begin(json_budget_for(sb.len));
    json_t *root = json_loadb(sb.buf, sb.len, 0, &e);
    cr_assert_not(json_budget_end());
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
