/* fuzz_h1parse: the scrape fast path's HTTP/1.x response parser (http/h1parse.c) on arbitrary server
 * bytes. Byte 0: the piece size the response is fed in (1-64; 0 = whole) and, in its top bit, whether the
 * connection then closes; byte 1: a body limit for the sink (0 = none, else N*64 bytes). The rest is the
 * response. It is parsed twice, whole and in pieces: both must reach the same result with the same
 * status, framing and body (except how much of a refused body fitted), and never consume more than given. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1parse.h"

typedef struct sinkbuf {
    unsigned char *b;
    size_t len, cap, limit;
} sinkbuf;

static int sink(void *ctx, const char *p, size_t n)
{
    sinkbuf *s = ctx;
    if (s->limit && s->len + n > s->limit)
        return 1;
    if (s->len + n > s->cap)
        abort(); /* more body than input: impossible */
    memcpy(s->b + s->len, p, n);
    s->len += n;
    return 0;
}

static h1_result run(const uint8_t *d, size_t n, size_t piece, int eof, sinkbuf *s, h1_parser *p, size_t *consumed)
{
    h1_parser_init(p);
    size_t pos = 0;
    h1_result r = H1_MORE;
    while (pos < n) {
        size_t len = piece ? (n - pos < piece ? n - pos : piece) : n - pos;
        size_t used = 0;
        r = h1_parse(p, (const char *)d + pos, len, &used, sink, s);
        if (used > len)
            abort();
        pos += used;
        if (r == H1_HEADERS)
            continue;
        if (r != H1_MORE)
            break;
        if (used != len)
            abort(); /* H1_MORE consumes everything */
    }
    if (r == H1_HEADERS) {
        size_t used = 0;
        r = h1_parse(p, "", 0, &used, sink, s);
    }
    if (r == H1_MORE && eof)
        r = h1_parse_eof(p);
    *consumed = pos;
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t piece = data[0] & 0x3f;
    int eof = data[0] >> 7;
    size_t limit = (size_t)data[1] * 64;
    const uint8_t *d = data + 2;
    size_t n = size - 2;
    unsigned char *b1 = malloc(n + 1), *b2 = malloc(n + 1);
    if (!b1 || !b2)
        abort();
    sinkbuf s1 = {b1, 0, n, limit}, s2 = {b2, 0, n, limit};
    h1_parser p1, p2;
    size_t c1, c2;
    h1_result r1 = run(d, n, 0, eof, &s1, &p1, &c1);
    h1_result r2 = run(d, n, piece, eof, &s2, &p2, &c2);
    if (r1 != r2 || p1.status != p2.status || strcmp(p1.reason, p2.reason) != 0)
        abort();
    if (r1 == H1_DONE && (c1 != c2 || p1.close != p2.close || p1.encoding != p2.encoding))
        abort();
    if (r1 != H1_SINK && (s1.len != s2.len || memcmp(b1, b2, s1.len) != 0))
        abort();
    if (p1.reason[sizeof p1.reason - 1] != '\0' || p1.header_bytes > H1_MAX_HEADER_BYTES + 1)
        abort();
    free(b1);
    free(b2);
    return 0;
}
