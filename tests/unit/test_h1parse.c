/* h1parse: the fast path's response parser. Every response is parsed whole, split in two at every byte,
 * and byte by byte, and must give the same result each way. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1parse.h"

typedef struct got {
    char body[65536];
    size_t len;
    size_t refuse_after; /* the sink refuses once the body would pass this; 0: never */
} got;

static int sink(void *ctx, const char *p, size_t n)
{
    got *g = ctx;
    if (g->refuse_after && g->len + n > g->refuse_after)
        return -1;
    cr_assert_lt(g->len + n, sizeof g->body);
    memcpy(g->body + g->len, p, n);
    g->len += n;
    return 0;
}

typedef struct outcome {
    h1_result r;  /* final: H1_DONE, H1_BAD, ...; H1_MORE when the input ended first */
    size_t used;  /* bytes consumed in total when the result came */
    int status;
    char reason[H1_REASON_MAX];
    int64_t content_length;
    bool chunked, close;
    h1_encoding enc;
    got g;
} outcome;

/* Feeds msg in pieces of the given sizes (cuts: offsets where a new piece starts, ascending, ending 0). */
static void run(const char *msg, size_t len, const size_t *cuts, bool eof, size_t refuse, outcome *o)
{
    h1_parser p;
    h1_parser_init(&p);
    memset(o, 0, sizeof *o);
    o->g.refuse_after = refuse;
    size_t pos = 0, ci = 0;
    h1_result r = H1_MORE;
    while (pos < len) {
        size_t end = len;
        while (cuts && cuts[ci] && cuts[ci] <= pos)
            ci++;
        if (cuts && cuts[ci] && cuts[ci] < len)
            end = cuts[ci];
        size_t used = 0;
        r = h1_parse(&p, msg + pos, end - pos, &used, sink, &o->g);
        cr_assert_leq(used, end - pos);
        pos += used;
        if (r == H1_HEADERS)
            continue;
        if (r != H1_MORE)
            break;
        cr_assert_eq(pos, end, "H1_MORE consumes everything");
    }
    if (r == H1_HEADERS) { /* the input ended with the headers: a body-less response is done */
        size_t used = 0;
        r = h1_parse(&p, "", 0, &used, sink, &o->g);
    }
    if (r == H1_MORE && eof)
        r = h1_parse_eof(&p);
    o->r = r;
    o->used = pos;
    o->status = p.status;
    memcpy(o->reason, p.reason, sizeof o->reason);
    o->content_length = p.content_length;
    o->chunked = p.chunked;
    o->close = p.close;
    o->enc = p.encoding;
}

/* Parses msg whole, split at every byte, and byte by byte; all must agree. Returns the whole result. */
static outcome check_all(const char *msg, bool eof, size_t refuse)
{
    size_t len = strlen(msg);
    outcome whole, o;
    run(msg, len, NULL, eof, refuse, &whole);
    for (size_t cut = 1; cut < len; cut++) {
        size_t cuts[2] = {cut, 0};
        run(msg, len, cuts, eof, refuse, &o);
        cr_assert_eq(o.r, whole.r, "split at %zu: result %d, whole %d", cut, o.r, whole.r);
        if (whole.r == H1_DONE) /* where an error was found does not matter */
            cr_assert_eq(o.used, whole.used, "split at %zu", cut);
        cr_assert_eq(o.status, whole.status);
        cr_assert_str_eq(o.reason, whole.reason);
        if (whole.r == H1_SINK) /* how much fitted before the refusal depends on the pieces */
            continue;
        cr_assert_eq(o.g.len, whole.g.len, "split at %zu: body %zu, whole %zu", cut, o.g.len, whole.g.len);
        cr_assert(memcmp(o.g.body, whole.g.body, o.g.len) == 0);
        cr_assert_eq(o.close, whole.close);
    }
    size_t *bytes = malloc((len + 1) * sizeof *bytes);
    for (size_t i = 0; i < len; i++)
        bytes[i] = i + 1;
    bytes[len] = 0;
    run(msg, len, bytes, eof, refuse, &o);
    free(bytes);
    cr_assert_eq(o.r, whole.r, "byte by byte: result %d, whole %d", o.r, whole.r);
    if (whole.r != H1_SINK)
        cr_assert_eq(o.g.len, whole.g.len);
    cr_assert(whole.r == H1_SINK || memcmp(o.g.body, whole.g.body, o.g.len) == 0);
    whole.g.body[whole.g.len] = '\0';
    return whole;
}

Test(h1parse, content_length_body)
{
    outcome o = check_all("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: x\r\n\r\nhello", false, 0);
    cr_assert_eq(o.r, H1_DONE);
    cr_assert_eq(o.status, 200);
    cr_assert_str_eq(o.reason, "OK");
    cr_assert_str_eq(o.g.body, "hello");
    cr_assert_eq(o.content_length, 5);
    cr_assert_not(o.close);
}

Test(h1parse, bytes_after_the_response_are_not_consumed)
{
    const char *m = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n";
    outcome o = check_all(m, false, 0);
    cr_assert_eq(o.r, H1_DONE);
    cr_assert_eq(o.used, strlen(m) - strlen("HTTP/1.1 200 OK\r\n"));
    cr_assert_str_eq(o.g.body, "{}");
}

Test(h1parse, reason_phrases)
{
    outcome o = check_all("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", false, 0);
    cr_assert_eq(o.r, H1_DONE);
    cr_assert_eq(o.status, 500);
    cr_assert_str_eq(o.reason, "Internal Server Error");
    o = check_all("HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n", false, 0);
    cr_assert_eq(o.r, H1_DONE);
    cr_assert_str_eq(o.reason, "");
    o = check_all("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", false, 0);
    cr_assert_str_eq(o.reason, "");
    /* a reason longer than the buffer is cut, not overflowed */
    char m[600];
    snprintf(m, sizeof m, "HTTP/1.1 500 %0400d\r\nContent-Length: 0\r\n\r\n", 7);
    o = check_all(m, false, 0);
    cr_assert_eq(o.r, H1_DONE);
    cr_assert_eq(strlen(o.reason), H1_REASON_MAX - 1);
}

Test(h1parse, bare_lf_line_ends)
{
    outcome o = check_all("HTTP/1.1 200 OK\nContent-Length: 3\n\nabc", false, 0);
    cr_assert_eq(o.r, H1_DONE);
    cr_assert_str_eq(o.g.body, "abc");
}

Test(h1parse, chunked)
{
    outcome o = check_all("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "5\r\nhello\r\n1;ext=\"a b\"\r\n,\r\nA\r\n0123456789\r\n0\r\nX-Trailer: y\r\n\r\n",
                          false, 0);
    cr_assert_eq(o.r, H1_DONE);
    cr_assert(o.chunked);
    cr_assert_str_eq(o.g.body, "hello,0123456789");
    o = check_all("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\nff\r\n", false, 0);
    cr_assert_eq(o.r, H1_MORE, "incomplete: more wanted");
    o = check_all("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false, 0);
    cr_assert_eq(o.r, H1_DONE);
    cr_assert_eq(o.g.len, 0);
    o = check_all("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\nab\n0\n\n", false, 0);
    cr_assert_eq(o.r, H1_DONE, "bare LF in chunk framing");
    cr_assert_str_eq(o.g.body, "ab");
}

Test(h1parse, chunked_malformed)
{
    const char *bad[] = {
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nx\r\n",                  /* not hex */
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",                    /* no size */
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",            /* data overruns */
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\r\n",           /* CR CR */
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n",    /* 16 hex digits */
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n",                  /* extension only */
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\n",                  /* space */
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n", /* trailer */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        outcome o = check_all(bad[i], false, 0);
        cr_assert_eq(o.r, H1_BAD, "case %zu: %d", i, o.r);
    }
    /* a chunk extension is bounded */
    char m[4096];
    int n = snprintf(m, sizeof m, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;");
    memset(m + n, 'e', 1100);
    strcpy(m + n + 1100, "\r\na\r\n0\r\n\r\n");
    outcome o = check_all(m, false, 0);
    cr_assert_eq(o.r, H1_BAD);
    /* 15 hex digits are fine as a number (the body limit bounds them) */
    o = check_all("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\nab", false, 0);
    cr_assert_eq(o.r, H1_MORE);
    cr_assert_str_eq(o.g.body, "ab");
}

Test(h1parse, body_until_close)
{
    outcome o = check_all("HTTP/1.1 200 OK\r\nServer: x\r\n\r\nall of it", true, 0);
    cr_assert_eq(o.r, H1_DONE);
    cr_assert_str_eq(o.g.body, "all of it");
    cr_assert(o.close);
    o = check_all("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", true, 0);
    cr_assert_eq(o.r, H1_BAD, "truncated Content-Length body");
    o = check_all("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", true, 0);
    cr_assert_eq(o.r, H1_BAD, "truncated chunked body");
    o = check_all("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", true, 0);
    cr_assert_eq(o.r, H1_BAD, "truncated headers");
    h1_parser p;
    h1_parser_init(&p);
    cr_assert(h1_parser_pristine(&p));
    cr_assert_eq(h1_parse_eof(&p), H1_BAD, "nothing at all");
}

Test(h1parse, connection_reuse)
{
    outcome o = check_all("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false, 0);
    cr_assert(o.close);
    o = check_all("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, 0);
    cr_assert(o.close, "HTTP/1.0 closes by default");
    o = check_all("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", false, 0);
    cr_assert_not(o.close);
    o = check_all("HTTP/1.1 200 OK\r\nConnection: keep-alive, Upgrade\r\nContent-Length: 0\r\n\r\n", false, 0);
    cr_assert(o.close, "token lists: not reused");
}

Test(h1parse, framing_headers)
{
    outcome o = check_all("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab", false, 0);
    cr_assert_eq(o.r, H1_DONE, "repeated equal lengths");
    o = check_all("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc", false, 0);
    cr_assert_eq(o.r, H1_BAD);
    o = check_all("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, 0);
    cr_assert_eq(o.r, H1_BAD);
    o = check_all("HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456789\r\n\r\n", false, 0);
    cr_assert_eq(o.r, H1_BAD, "19 digits");
    o = check_all("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", false, 0);
    cr_assert_eq(o.r, H1_BAD);
    o = check_all("HTTP/1.1 200 OK\r\nContent-Length:  7 \r\n\r\n", false, 0);
    cr_assert_eq(o.r, H1_MORE);
    cr_assert_eq(o.content_length, 7);
    o = check_all("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", false, 0);
    cr_assert_eq(o.r, H1_UNSUPPORTED);
    o = check_all("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, 0);
    cr_assert_eq(o.r, H1_UNSUPPORTED);
    o = check_all("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 0\r\n\r\n", false, 0);
    cr_assert_eq(o.r, H1_DONE);
    cr_assert_eq(o.enc, H1_ENC_GZIP);
    o = check_all("HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 0\r\n\r\n", false, 0);
    cr_assert_eq(o.r, H1_UNSUPPORTED);
    o = check_all("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Encoding: gzip\r\n\r\n", false, 0);
    cr_assert_eq(o.r, H1_UNSUPPORTED);
    o = check_all("HTTP/1.1 204 No Content\r\n\r\n", false, 0);
    cr_assert_eq(o.r, H1_DONE);
    cr_assert_eq(o.g.len, 0);
}

Test(h1parse, status_lines)
{
    const char *bad[] = {
        "HTTP/2 200 OK\r\n\r\n", "HTTP/1.2 200 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n",
        "http/1.1 200 OK\r\n\r\n", "HTTP/1.1  200 OK\r\n\r\n", "ICY 200 OK\r\n\r\n", "HTTP/1.1 200 O\x01K\r\n\r\n",
        "HTTP/1.1 200 OK\r\r\n\r\n", "\r\nHTTP/1.1 200 OK\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        outcome o = check_all(bad[i], false, 0);
        cr_assert_eq(o.r, H1_BAD, "case %zu: %d", i, o.r);
    }
    const char *unsupported[] = {
        "HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 301 Moved Permanently\r\nLocation: /x\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\n\r\n", "HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++) {
        outcome o = check_all(unsupported[i], false, 0);
        cr_assert_eq(o.r, H1_UNSUPPORTED, "case %zu: %d", i, o.r);
    }
}

Test(h1parse, header_lines)
{
    const char *bad[] = {
        "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", "HTTP/1.1 200 OK\r\nNo colon\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n", "HTTP/1.1 200 OK\r\nX: a\x7f\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX : a\r\n\r\n", "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        outcome o = check_all(bad[i], false, 0);
        cr_assert_eq(o.r, H1_BAD, "case %zu: %d", i, o.r);
    }
    /* long names and values of other headers are fine */
    char m[8192];
    int n = snprintf(m, sizeof m, "HTTP/1.1 200 OK\r\nX-");
    memset(m + n, 'n', 300);
    n += 300;
    n += snprintf(m + n, sizeof m - (size_t)n, ": ");
    memset(m + n, 'v', 3000);
    n += 3000;
    snprintf(m + n, sizeof m - (size_t)n, "\r\nContent-Length: 1\r\n\r\nz");
    outcome o = check_all(m, false, 0);
    cr_assert_eq(o.r, H1_DONE);
    cr_assert_str_eq(o.g.body, "z");
    /* a framing header whose value does not fit its buffer is not guessed at */
    n = snprintf(m, sizeof m, "HTTP/1.1 200 OK\r\nTransfer-Encoding: ");
    memset(m + n, ' ', 10);
    n += 10;
    memset(m + n, 'c', 100);
    snprintf(m + n + 100, sizeof m - (size_t)n - 100, "\r\n\r\n");
    o = check_all(m, false, 0);
    cr_assert_eq(o.r, H1_UNSUPPORTED);
}

Test(h1parse, header_limits)
{
    char *m = malloc(40000);
    int n = sprintf(m, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < H1_MAX_HEADERS; i++)
        n += sprintf(m + n, "X-%d: v\r\n", i);
    strcpy(m + n, "Content-Length: 0\r\n\r\n");
    outcome o = check_all(m, false, 0);
    cr_assert_eq(o.r, H1_UNSUPPORTED, "%d headers", H1_MAX_HEADERS + 1);
    n = sprintf(m, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < H1_MAX_HEADERS - 1; i++)
        n += sprintf(m + n, "X-%d: v\r\n", i);
    strcpy(m + n, "Content-Length: 0\r\n\r\n");
    o = check_all(m, false, 0);
    cr_assert_eq(o.r, H1_DONE, "%d headers", H1_MAX_HEADERS);
    n = sprintf(m, "HTTP/1.1 200 OK\r\nX: ");
    memset(m + n, 'v', H1_MAX_HEADER_BYTES);
    strcpy(m + n + H1_MAX_HEADER_BYTES, "\r\n\r\n");
    o = check_all(m, false, 0);
    cr_assert_eq(o.r, H1_UNSUPPORTED, "header bytes");
    /* trailers count too */
    n = sprintf(m, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n");
    for (int i = 0; i < H1_MAX_HEADERS + 1; i++)
        n += sprintf(m + n, "T-%d: v\r\n", i);
    strcpy(m + n, "\r\n");
    o = check_all(m, false, 0);
    cr_assert_eq(o.r, H1_UNSUPPORTED, "trailers");
    free(m);
}

Test(h1parse, sink_refusal_stops_the_body)
{
    outcome o = check_all("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", false, 4);
    cr_assert_eq(o.r, H1_SINK);
    cr_assert_lt(o.g.len, 5);
    o = check_all("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", false, 5);
    cr_assert_eq(o.r, H1_SINK);
    cr_assert_str_eq(o.g.body, "abc");
}

Test(h1parse, results_are_final)
{
    h1_parser p;
    h1_parser_init(&p);
    size_t used;
    cr_assert_eq(h1_parse(&p, "XTTP", 4, &used, NULL, NULL), H1_BAD);
    cr_assert_eq(h1_parse(&p, "HTTP/1.1 200 OK\r\n", 17, &used, NULL, NULL), H1_BAD);
    cr_assert_eq(used, 0);
    h1_parser_init(&p);
    const char *m = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    cr_assert_eq(h1_parse(&p, m, strlen(m), &used, NULL, NULL), H1_HEADERS);
    cr_assert_eq(h1_parse(&p, m + used, strlen(m) - used, &used, NULL, NULL), H1_DONE);
    cr_assert_eq(h1_parse(&p, "more", 4, &used, NULL, NULL), H1_DONE);
    cr_assert_eq(used, 0);
}

/* Mutation testing (issue 19): the edges the tests above left open. */

Test(h1parse, header_block_limit_at_its_exact_edge)
{
    /* Every byte of the status line and the header lines counts, line ends included, also the separator
     * (':'), the spaces before a value and its first byte: a block of exactly H1_MAX_HEADER_BYTES is
     * fine, one byte more is not. "HTTP/1.1 200 OK\r\n" + "X: " + value + "\r\n" + "Content-Length: 0\r\n"
     * + "\r\n" is 43 bytes around the value; with bare LF line ends, 39. */
    cr_assert_eq(H1_MAX_HEADER_BYTES, 16384);
    char *m = malloc(20000);
    for (int lf = 0; lf < 2; lf++) {
        const char *eol = lf ? "\n" : "\r\n";
        size_t around = lf ? 39 : 43;
        for (size_t extra = 0; extra < 2; extra++) {
            size_t vlen = 16384 - around + extra;
            int n = sprintf(m, "HTTP/1.1 200 OK%sX: ", eol);
            memset(m + n, 'v', vlen);
            sprintf(m + n + vlen, "%sContent-Length: 0%s%s", eol, eol, eol);
            cr_assert_eq(strlen(m), 16384 + extra);
            h1_parser p;
            h1_parser_init(&p);
            size_t used;
            h1_result r = h1_parse(&p, m, strlen(m), &used, NULL, NULL);
            cr_assert_eq(r, extra ? H1_UNSUPPORTED : H1_HEADERS, "lf %d, %zu bytes: %d", lf, strlen(m), r);
            if (!extra)
                cr_assert_eq(p.header_bytes, 16384);
        }
    }
    /* many short header lines: the separators and spaces of each count */
    int n = sprintf(m, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 90; i++)
        n += sprintf(m + n, "X-%02d: %0170d\r\n", i, i); /* 178 bytes each */
    size_t vlen = 16384 - (size_t)n - strlen("Y: \r\n\r\n");
    n += sprintf(m + n, "Y: ");
    for (size_t extra = 0; extra < 2; extra++) {
        memset(m + n, 'y', vlen + extra);
        strcpy(m + n + vlen + extra, "\r\n\r\n");
        cr_assert_eq(strlen(m), 16384 + extra);
        h1_parser p;
        h1_parser_init(&p);
        size_t used;
        cr_assert_eq(h1_parse(&p, m, strlen(m), &used, NULL, NULL), extra ? H1_UNSUPPORTED : H1_HEADERS);
    }
    free(m);
}

Test(h1parse, chunk_framing_does_not_count_as_header_bytes)
{
    /* 3000 chunks: their size lines and CRLFs are body framing, far more than H1_MAX_HEADER_BYTES */
    size_t cap = 64 + 3000 * 8 + 16;
    char *m = malloc(cap);
    int n = sprintf(m, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3000; i++)
        n += sprintf(m + n, "1;e\r\n%c\r\n", 'a' + i % 26);
    strcpy(m + n, "0\r\n\r\n");
    h1_parser p;
    h1_parser_init(&p);
    size_t used;
    got g = {.len = 0};
    cr_assert_eq(h1_parse(&p, m, strlen(m), &used, sink, &g), H1_HEADERS);
    size_t head = used;
    cr_assert_eq(h1_parse(&p, m + head, strlen(m) - head, &used, sink, &g), H1_DONE);
    cr_assert_eq(g.len, 3000);
    cr_assert_eq(memcmp(g.body, "abcdefghijklmnopqrstuvwxyzab", 28), 0);
    cr_assert_eq(p.header_bytes, head + 2, "the header block and the empty trailer line: %zu", p.header_bytes);
    free(m);
}

Test(h1parse, chunk_sizes_in_lower_and_upper_case_hex)
{
    outcome o = check_all("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "a\r\n0123456789\r\nB\r\nabcdefghijk\r\n1f\r\n0123456789012345678901234567890\r\n"
                          "F\r\nABCDEFGHIJKLMNO\r\n0\r\n\r\n",
                          false, 0);
    cr_assert_eq(o.r, H1_DONE);
    cr_assert_eq(o.g.len, 10 + 11 + 31 + 15);
    cr_assert_str_eq(o.g.body, "0123456789abcdefghijk0123456789012345678901234567890ABCDEFGHIJKLMNO");
    const char *bad[] = {"g", "G", "`", "@", "/", ":"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char m[128];
        snprintf(m, sizeof m, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%s\r\nx\r\n0\r\n\r\n", bad[i]);
        o = check_all(m, false, 0);
        cr_assert_eq(o.r, H1_BAD, "size %s: %d", bad[i], o.r);
    }
}

Test(h1parse, chunk_extension_bound_at_its_exact_edge)
{
    /* CHUNK_EXT_MAX (1024) bytes after the ';' are fine, 1025 are not */
    char m[2048];
    for (size_t ext = 1023; ext <= 1025; ext++) {
        int n = snprintf(m, sizeof m, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;");
        memset(m + n, 'e', ext);
        strcpy(m + n + ext, "\r\na\r\n0\r\n\r\n");
        outcome o = check_all(m, false, 0);
        cr_assert_eq(o.r, ext <= 1024 ? H1_DONE : H1_BAD, "%zu extension bytes: %d", ext, o.r);
        if (ext <= 1024)
            cr_assert_str_eq(o.g.body, "a");
    }
}

Test(h1parse, chunk_data_must_end_with_a_line_end)
{
    const char *bad[] = {
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc0\r\n\r\n",   /* a byte instead of CRLF */
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\rX0\r\n\r\n",  /* CR, then not LF */
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab 0\r\n\r\n",    /* a space */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        outcome o = check_all(bad[i], false, 0);
        cr_assert_eq(o.r, H1_BAD, "case %zu: %d", i, o.r);
        cr_assert_str_eq(o.g.body, "ab");
    }
}

Test(h1parse, eof_after_a_final_result_keeps_it)
{
    const char *cases[] = {
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",    /* unsupported */
        "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",          /* bad */
        "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd",      /* refused by the sink */
    };
    const h1_result want[] = {H1_UNSUPPORTED, H1_BAD, H1_SINK};
    for (size_t i = 0; i < 3; i++) {
        h1_parser p;
        h1_parser_init(&p);
        size_t used;
        got g = {.refuse_after = 2};
        h1_result r = h1_parse(&p, cases[i], strlen(cases[i]), &used, sink, &g);
        if (r == H1_HEADERS)
            r = h1_parse(&p, cases[i] + used, strlen(cases[i]) - used, &used, sink, &g);
        cr_assert_eq(r, want[i], "case %zu: %d", i, r);
        cr_assert_eq(h1_parse_eof(&p), want[i], "case %zu: the peer's close does not change the result", i);
        cr_assert_eq(h1_parse_eof(&p), want[i]);
    }
    h1_parser p;
    h1_parser_init(&p);
    size_t used;
    const char *m = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    cr_assert_eq(h1_parse(&p, m, strlen(m), &used, NULL, NULL), H1_HEADERS);
    cr_assert_eq(h1_parse(&p, "", 0, &used, NULL, NULL), H1_DONE);
    cr_assert_eq(h1_parse_eof(&p), H1_DONE);
}

Test(h1parse, a_long_header_name_stays_in_its_buffer)
{
    /* Only the first sizeof name bytes of a name are kept; the rest of it must not spill into the
     * neighbouring value buffer (a write past name[] that no sanitizer sees, being inside the struct). */
    const char *m = "HTTP/1.1 200 OK\r\nX-A-Header-Name-Longer-Than-The-Buffer-Holds:\r\n";
    for (size_t first = 1; first < 40; first++) {
        h1_parser p;
        h1_parser_init(&p);
        size_t used;
        size_t hdr = strlen("HTTP/1.1 200 OK\r\n");
        cr_assert_eq(h1_parse(&p, m, hdr + first, &used, NULL, NULL), H1_MORE);
        cr_assert_eq(h1_parse(&p, m + hdr + first, strlen(m) - hdr - first, &used, NULL, NULL), H1_MORE);
        cr_assert_eq(p.name_len, sizeof p.name + 1, "a long name is marked as such");
        cr_assert_eq(memcmp(p.name, "X-A-Header-Name-Longer-T", sizeof p.name), 0);
        char zero[H1_VALUE_MAX] = {0};
        cr_assert_eq(memcmp(p.value, zero, sizeof zero), 0, "split after %zu name bytes", first);
        cr_assert_eq(p.value_len, 0);
    }
}

/* Each chunk's size line is checked afresh, not only the first: no digits, and the 15-digit bound.
 * Found by mutation testing (issue 19, seed 3, run blind). */
Test(h1parse, every_chunk_size_line_is_checked)
{
    outcome o = check_all("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n\r\n", false, 0);
    cr_assert_eq(o.r, H1_BAD, "an empty size line after a chunk: %d", o.r);
    o = check_all("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n;x\r\n", false, 0);
    cr_assert_eq(o.r, H1_BAD, "an extension without a size after a chunk: %d", o.r);
    o = check_all("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n00000000000000f\r\n0123", false, 0);
    cr_assert_eq(o.r, H1_MORE, "15 digits after a chunk: %d", o.r);
    cr_assert_str_eq(o.g.body, "ab0123");
    o = check_all("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n000000000000000f\r\n0123", false, 0);
    cr_assert_eq(o.r, H1_BAD, "16 digits after a chunk: %d", o.r);
    o = check_all("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n000000000000000\r\n\r\n", false, 0);
    cr_assert_eq(o.r, H1_DONE, "a last chunk of 15 zeros: %d", o.r);
    cr_assert_str_eq(o.g.body, "ab");
}

/* A 204 has no body: a Content-Length above 0 or a chunked coding with it is not for the fast path.
 * Found by mutation testing (issue 19, seed 4, blind). */
Test(h1parse, no_content_with_a_body_framing)
{
    outcome o = check_all("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello", false, 0);
    cr_assert_eq(o.r, H1_UNSUPPORTED);
    cr_assert_eq(o.g.len, 0);
    o = check_all("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false, 0);
    cr_assert_eq(o.r, H1_UNSUPPORTED);
    o = check_all("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", false, 0);
    cr_assert_eq(o.r, H1_DONE);
    o = check_all("HTTP/1.1 205 Reset Content\r\nContent-Length: 2\r\n\r\nab", false, 0);
    cr_assert_eq(o.r, H1_DONE);
    cr_assert_str_eq(o.g.body, "ab");
}

/* Field values are scanned 16 bytes at a time (SSE2): a control byte or DEL anywhere in a long value is
 * found at every position, and tabs and obs-text (bytes >= 0x80) anywhere are value bytes. */
Test(h1parse, long_values_are_checked_at_every_position)
{
    const unsigned char bad[] = {0x7f, 0x01, 0x1f, 0x0b, 0x00};
    char m[256];
    for (size_t b = 0; b < sizeof bad; b++) {
        for (int at = 0; at < 40; at++) {
            int n = snprintf(m, sizeof m, "HTTP/1.1 200 OK\r\nX-Long: ");
            memset(m + n, 'v', 40);
            m[n + at] = (char)bad[b];
            size_t total = (size_t)n + 40 +
                           (size_t)snprintf(m + n + 40, sizeof m - (size_t)n - 40, "\r\nContent-Length: 1\r\n\r\nz");
            h1_parser p;
            h1_parser_init(&p);
            size_t used = 0;
            h1_result r = h1_parse(&p, m, total, &used, NULL, NULL); /* whole: m may hold a NUL */
            cr_assert_eq(r, H1_BAD, "byte 0x%02x at %d: %d", bad[b], at, r);
        }
    }
    for (int at = 0; at < 40; at++) {
        int n = snprintf(m, sizeof m, "HTTP/1.1 200 OK\r\nX-Long: ");
        memset(m + n, 'v', 40);
        m[n + at] = (at & 1) ? '\t' : (char)0xe9;
        m[n + (at + 17) % 40] = (char)0xff;
        snprintf(m + n + 40, sizeof m - (size_t)n - 40, "\r\nContent-Length: 1\r\n\r\nz");
        outcome o = check_all(m, false, 0);
        cr_assert_eq(o.r, H1_DONE, "tab/obs-text at %d: %d", at, o.r);
        cr_assert_str_eq(o.g.body, "z");
    }
}
