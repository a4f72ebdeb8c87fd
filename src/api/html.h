/* html: helpers for lookout's server-rendered pages: the page frame (inline CSS, navigation), label badges,
 * relative times and durations, query links. Everything user-controlled goes through strbuf_html. */
#ifndef LOOKOUT_API_HTML_H
#define LOOKOUT_API_HTML_H
#include <stdint.h>

#include "labels/labels.h"
#include "util/strbuf.h"

void html_page_begin(strbuf *out, const char *title);
void html_page_end(strbuf *out);
/* <span class="badge">name="value"</span> for every label (public labels only when public_only). */
void html_label_badges(strbuf *out, const labelset *ls, int public_only);
/* The badge of one label (every label of html_label_badges is written by it). */
void html_label_badge(strbuf *out, const char *name, const char *value);
/* "never", "12.345s ago", "3m 5s ago", "2h 1m ago", "4d 3h ago"; now_ms and then_ms in Unix ms. */
void html_relative_time(strbuf *out, int64_t now_ms, int64_t then_ms);
/* "0ms", "12.345ms", "1.234s" */
void html_duration(strbuf *out, double seconds);
/* Appends "key=value" escaped for a query, preceded by '?' when first, else by "&amp;". Skips NULL/""
 * values. *first is updated. */
void html_query_param(strbuf *out, int *first, const char *key, const char *value);
/* Current time in Unix ms. */
int64_t html_now_ms(void);

#endif
