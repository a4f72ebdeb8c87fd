/* h1parse: an incremental HTTP/1.x response parser for the scrape fast path (h1client.c).
 *
 * Byte-at-a-time state machine over the status line and headers, so that input split at any byte parses
 * the same and nothing is buffered: only the status, the reason phrase (bounded), and the few headers
 * that decide the body framing (Content-Length, Transfer-Encoding, Content-Encoding, Connection) are kept.
 * Body bytes (Content-Length, chunked, or until the connection closes) go to a sink callback as they
 * arrive, de-chunked but not decoded.
 *
 * The parser is strict: anything it does not fully understand is H1_BAD (malformed) or H1_UNSUPPORTED
 * (legal but not handled: 1xx, 3xx, a transfer coding other than chunked, a content coding other than
 * gzip, oversize headers...). The client then hands the scrape to curl, which gives the error text (or
 * the result) the scrape would have had without the fast path. Every count and size is bounded.
 *
 * Threading: none; one parser per response, plain data. */
#ifndef LOOKOUT_HTTP_H1PARSE_H
#define LOOKOUT_HTTP_H1PARSE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define H1_MAX_HEADER_BYTES 16384 /* status line + header lines (+ chunked trailers) */
#define H1_MAX_HEADERS 100
#define H1_REASON_MAX 128
#define H1_VALUE_MAX 64 /* framing headers' values; longer ones are unsupported */

typedef enum h1_result {
    H1_MORE = 0,    /* all input consumed, the response is not complete */
    H1_HEADERS,     /* the header block just ended; *used says where; call again with the rest */
    H1_DONE,        /* the response is complete; *used says where it ended */
    H1_BAD,         /* malformed */
    H1_UNSUPPORTED, /* well-formed but not for the fast path */
    H1_SINK,        /* the sink refused the body bytes (body size limit) */
} h1_result;

typedef enum h1_encoding { H1_ENC_IDENTITY = 0, H1_ENC_GZIP } h1_encoding;

/* Receives body bytes; returns 0, or non-zero to stop (h1_parse returns H1_SINK). */
typedef int (*h1_sink_fn)(void *ctx, const char *p, size_t n);

typedef struct h1_parser {
    int state, sub;
    int minor;              /* HTTP/1.minor */
    int status;
    char reason[H1_REASON_MAX];
    size_t reason_len;
    char name[24], value[H1_VALUE_MAX];
    size_t name_len, value_len;
    bool value_long;        /* value did not fit: only a problem for the framing headers */
    size_t header_bytes;
    unsigned headers;
    int64_t content_length; /* -1 when absent */
    bool chunked, close;    /* close: the connection cannot be reused after this response */
    bool keep_alive_10;     /* HTTP/1.0 "Connection: keep-alive" */
    h1_encoding encoding;
    uint64_t remaining;     /* body bytes left in the Content-Length body or the current chunk */
    unsigned hex_digits;
    uint64_t body_bytes;    /* raw (not decoded) body bytes passed to the sink */
} h1_parser;

void h1_parser_init(h1_parser *p);
/* Feeds len bytes. *used receives how many were consumed (all of them for H1_MORE). After H1_HEADERS the
 * caller may look at status/content_length/encoding and then call again with buf + *used. Errors are
 * final: feeding a parser after H1_BAD/H1_UNSUPPORTED/H1_SINK/H1_DONE returns the same result. */
h1_result h1_parse(h1_parser *p, const char *buf, size_t len, size_t *used, h1_sink_fn sink, void *ctx);
/* The peer closed the connection: H1_DONE when the body runs until close and the headers are complete,
 * else H1_BAD (truncated response). */
h1_result h1_parse_eof(h1_parser *p);
/* True when no byte of a response has been parsed yet. */
static inline bool h1_parser_pristine(const h1_parser *p)
{
    return p->state == 0 && p->sub == 0;
}

#endif
