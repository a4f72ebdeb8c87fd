/* h1parse: see h1parse.h. */
#include "http/h1parse.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

enum {
    S_STATUS = 0, /* sub: position in the status line */
    S_CR,         /* a CR was read; sub: the state a line end leads to (one of the L_ below) */
    S_HLINE,      /* start of a header (or trailer) line */
    S_HNAME,
    S_HVWS,       /* spaces before a value */
    S_HVAL,
    S_BODY_LEN,
    S_BODY_EOF,
    S_CHUNK_SIZE,
    S_CHUNK_EXT,
    S_CHUNK_DATA,
    S_CHUNK_DATA_END, /* CRLF after a chunk's data */
    S_DONE,
    S_ERROR,      /* sub: the h1_result */
};

/* What a line end (LF, or CR LF) completes. */
enum { L_STATUS = 1, L_HEADER, L_HEND, L_CHUNK_SIZE, L_CHUNK_DATA, L_TRAILER, L_TEND };

#define IN_TRAILERS 0x40000000 /* flag in sub while parsing trailer lines */
#define CHUNK_EXT_MAX 1024
#define CHUNK_HEX_MAX 15


/* Byte classes: 1 = a token character (header names), 2 = a field-value character (reason phrases and
 * header values: visible, space, tab, obs-text; not CR, LF, other controls or DEL). */
static unsigned char cls[256];
static pthread_once_t cls_once = PTHREAD_ONCE_INIT;

static void cls_init(void)
{
    for (int c = 0; c < 256; c++) {
        bool t = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
        bool v = (c >= 0x20 && c != 0x7f) || c == '\t';
        cls[c] = (unsigned char)((t ? 1 : 0) | (v ? 2 : 0));
    }
}

static bool is_tchar(unsigned char c)
{
    return cls[c] & 1;
}

/* Length of the run of bytes of class k at the start of b. Field values (k = 2: no control byte but tab,
 * no DEL) 16 bytes at a time where SSE2 is there (every x86-64). */
static size_t run_of(const unsigned char *b, size_t n, unsigned char k)
{
    size_t j = 0;
#ifdef __SSE2__
    if (k == 2) {
        const __m128i c1f = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f), tab = _mm_set1_epi8('\t');
        for (; j + 16 <= n; j += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + j));
            __m128i ctl = _mm_cmpeq_epi8(_mm_max_epu8(v, c1f), c1f); /* v <= 0x1f */
            ctl = _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(v, tab), ctl), _mm_cmpeq_epi8(v, del));
            unsigned m = (unsigned)_mm_movemask_epi8(ctl);
            if (m)
                return j + (size_t)__builtin_ctz(m);
        }
    }
#endif
    while (j < n && (cls[b[j]] & k))
        j++;
    return j;
}

void h1_parser_init(h1_parser *p)
{
    pthread_once(&cls_once, cls_init);
    memset(p, 0, sizeof *p);
    p->content_length = -1;
}

static h1_result fail(h1_parser *p, h1_result r)
{
    p->state = S_ERROR;
    p->sub = (int)r;
    return r;
}

static bool name_is(const h1_parser *p, const char *n)
{
    size_t l = strlen(n);
    return p->name_len == l && strncasecmp(p->name, n, l) == 0;
}

static bool value_is(const h1_parser *p, const char *v)
{
    size_t l = strlen(v);
    return !p->value_long && p->value_len == l && strncasecmp(p->value, v, l) == 0;
}

/* Applies a complete header line (name, value) to the framing. */
static h1_result header_done(h1_parser *p, bool trailer)
{
    while (p->value_len && (p->value[p->value_len - 1] == ' ' || p->value[p->value_len - 1] == '\t'))
        p->value_len--;
    if (++p->headers > H1_MAX_HEADERS)
        return fail(p, H1_UNSUPPORTED);
    if (trailer || p->name_len > sizeof p->name) /* a long name is none of the ones below */
        return H1_MORE;
    if (name_is(p, "content-length")) {
        if (p->value_long || p->value_len == 0 || p->value_len > 18)
            return fail(p, H1_BAD);
        int64_t v = 0;
        for (size_t i = 0; i < p->value_len; i++) {
            if (p->value[i] < '0' || p->value[i] > '9')
                return fail(p, H1_BAD);
            v = v * 10 + (p->value[i] - '0');
        }
        if (p->content_length >= 0 && p->content_length != v)
            return fail(p, H1_BAD);
        p->content_length = v;
    } else if (name_is(p, "transfer-encoding")) {
        if (!value_is(p, "chunked") || p->chunked)
            return fail(p, H1_UNSUPPORTED);
        p->chunked = true;
    } else if (name_is(p, "content-encoding")) {
        if (p->encoding != H1_ENC_IDENTITY)
            return fail(p, H1_UNSUPPORTED); /* two codings: curl's business */
        if (value_is(p, "gzip") || value_is(p, "x-gzip"))
            p->encoding = H1_ENC_GZIP;
        else if (!value_is(p, "identity"))
            return fail(p, H1_UNSUPPORTED);
    } else if (name_is(p, "connection")) {
        if (value_is(p, "close"))
            p->close = true;
        else if (value_is(p, "keep-alive"))
            p->keep_alive_10 = true;
        else
            p->close = true; /* a token list: do not reuse the connection */
    }
    return H1_MORE;
}

/* A whole header (or trailer) line "name: value" CR LF at b, taken at once when it is all in this piece
 * and well formed (the bulk of a header block): returns its length, with *r what applying it gave; 0 when
 * the line is not complete here or not plain, and the byte-at-a-time states take it (and find any error).
 * Name, value, counts and limits end up exactly as those states leave them. */
static size_t header_line(h1_parser *p, const unsigned char *b, size_t n, h1_result *r)
{
    size_t nl = run_of(b, n, 1);
    if (nl == 0 || nl == n || b[nl] != ':')
        return 0;
    size_t j = nl + 1;
    while (j < n && (b[j] == ' ' || b[j] == '\t'))
        j++;
    size_t v0 = j;
    j += run_of(b + j, n - j, 2);
    if (j + 1 >= n || b[j] != '\r' || b[j + 1] != '\n')
        return 0;
    size_t line = j + 2;
    if (p->header_bytes + line > H1_MAX_HEADER_BYTES)
        return 0;
    p->header_bytes += line;
    memcpy(p->name, b, nl < sizeof p->name ? nl : sizeof p->name);
    p->name_len = nl > sizeof p->name ? sizeof p->name + 1 : nl;
    size_t vl = j - v0;
    p->value_len = vl < sizeof p->value ? vl : sizeof p->value;
    memcpy(p->value, b + v0, p->value_len);
    p->value_long = vl > sizeof p->value;
    bool trailers = (p->sub & IN_TRAILERS) != 0;
    *r = header_done(p, trailers);
    if (*r == H1_MORE)
        p->sub = trailers ? IN_TRAILERS : 0; /* the state stays S_HLINE: the next line */
    return line;
}

/* The status line "HTTP/1.x ddd[ reason]" CR LF at b, taken at once when it is all in this piece and
 * plain, like header_line: its length, or 0 for the byte-at-a-time states. */
static size_t status_line(h1_parser *p, const unsigned char *b, size_t n)
{
    if (n < 14 || memcmp(b, "HTTP/1.", 7) != 0 || (b[7] != '0' && b[7] != '1') || b[8] != ' ')
        return 0;
    for (int k = 9; k < 12; k++)
        if (b[k] < '0' || b[k] > '9')
            return 0;
    size_t j = 12, r0 = 13;
    if (b[12] == ' ')
        j = r0 + run_of(b + r0, n - r0, 2);
    if (j + 1 >= n || b[j] != '\r' || b[j + 1] != '\n')
        return 0;
    size_t line = j + 2;
    if (p->header_bytes + line > H1_MAX_HEADER_BYTES)
        return 0;
    p->header_bytes += line;
    p->minor = b[7] - '0';
    p->status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
    size_t rl = j > r0 ? j - r0 : 0;
    p->reason_len = rl < sizeof p->reason - 1 ? rl : sizeof p->reason - 1;
    memcpy(p->reason, b + r0, p->reason_len);
    p->reason[p->reason_len] = '\0';
    p->state = S_HLINE;
    p->sub = 0;
    return line;
}

/* The header block ended: decide the body framing. */
static h1_result headers_end(h1_parser *p)
{
    if (p->status < 200 || (p->status >= 300 && p->status < 400) || p->status > 599)
        return fail(p, H1_UNSUPPORTED); /* 1xx, redirects, odd codes: curl's business */
    if (p->minor == 0 && !p->keep_alive_10)
        p->close = true;
    if (p->chunked && p->content_length >= 0)
        return fail(p, H1_UNSUPPORTED);
    if (p->status == 204) {
        if (p->content_length > 0 || p->chunked)
            return fail(p, H1_UNSUPPORTED);
        p->state = S_DONE;
    } else if (p->chunked) {
        p->state = S_CHUNK_SIZE;
        p->hex_digits = 0;
        p->remaining = 0;
    } else if (p->content_length >= 0) {
        p->remaining = (uint64_t)p->content_length;
        p->state = p->remaining ? S_BODY_LEN : S_DONE;
    } else {
        p->close = true;
        p->state = S_BODY_EOF;
    }
    return H1_HEADERS;
}

/* A line end completed `what`; sets the next state. */
static h1_result line_end(h1_parser *p, int what)
{
    switch (what) {
    case L_STATUS:
        p->state = S_HLINE;
        p->sub = 0;
        return H1_MORE;
    case L_HEADER:
        p->state = S_HLINE;
        p->sub = 0;
        return H1_MORE;
    case L_TRAILER:
        p->state = S_HLINE;
        p->sub = IN_TRAILERS;
        return H1_MORE;
    case L_HEND:
        p->sub = 0;
        return headers_end(p);
    case L_TEND:
        p->state = S_DONE;
        return H1_DONE;
    case L_CHUNK_SIZE:
        if (p->hex_digits == 0)
            return fail(p, H1_BAD);
        if (p->remaining == 0) { /* last chunk: trailers follow */
            p->state = S_HLINE;
            p->sub = IN_TRAILERS;
        } else {
            p->state = S_CHUNK_DATA;
        }
        return H1_MORE;
    case L_CHUNK_DATA:
        p->state = S_CHUNK_SIZE;
        p->hex_digits = 0;
        p->remaining = 0;
        p->sub = 0;
        return H1_MORE;
    }
    return fail(p, H1_BAD);
}

static h1_result cr(h1_parser *p, int what)
{
    p->state = S_CR;
    p->sub = what;
    return H1_MORE;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

h1_result h1_parse(h1_parser *p, const char *buf, size_t len, size_t *used, h1_sink_fn sink, void *ctx)
{
    static const char proto[] = "HTTP/1.";
    size_t i = 0;
    h1_result r = H1_MORE;
    *used = 0;
    if (p->state == S_ERROR)
        return (h1_result)p->sub;
    if (p->state == S_DONE)
        return H1_DONE;
    while (i < len) {
        unsigned char c = (unsigned char)buf[i];
        switch (p->state) {
        case S_BODY_LEN:
        case S_CHUNK_DATA:
        case S_BODY_EOF: {
            size_t n = len - i;
            if (p->state != S_BODY_EOF && (uint64_t)n > p->remaining)
                n = (size_t)p->remaining;
            if (n && sink && sink(ctx, buf + i, n) != 0) {
                *used = i;
                return fail(p, H1_SINK);
            }
            p->body_bytes += n;
            i += n;
            if (p->state == S_BODY_EOF)
                continue;
            p->remaining -= n;
            if (p->remaining == 0) {
                if (p->state == S_BODY_LEN) {
                    p->state = S_DONE;
                    *used = i;
                    return H1_DONE;
                }
                p->state = S_CHUNK_DATA_END;
                p->sub = 0;
            }
            continue;
        }
        case S_HNAME:
        case S_HVAL:
        case S_STATUS: {
            if (p->state == S_STATUS && p->sub == 0) {
                size_t n = status_line(p, (const unsigned char *)buf + i, len - i);
                if (n) {
                    i += n;
                    continue;
                }
            }
            /* a run of name, value or reason bytes at once (the bulk of a header block) */
            if (p->state == S_STATUS && p->sub < 13)
                break;
            const unsigned char *u = (const unsigned char *)buf + i;
            size_t run = run_of(u, len - i, p->state == S_HNAME ? 1 : 2);
            if (run == 0)
                break;
            if (p->header_bytes + run > H1_MAX_HEADER_BYTES)
                return fail(p, H1_UNSUPPORTED);
            p->header_bytes += run;
            i += run;
            if (p->state == S_HNAME) {
                size_t room = p->name_len < sizeof p->name ? sizeof p->name - p->name_len : 0;
                size_t n = run < room ? run : room;
                if (n) /* a long name's length stays past the buffer: no pointer there */
                    memcpy(p->name + p->name_len, u, n);
                p->name_len = p->name_len + run > sizeof p->name ? sizeof p->name + 1 : p->name_len + run;
            } else if (p->state == S_HVAL) {
                size_t room = sizeof p->value - p->value_len;
                size_t n = run < room ? run : room;
                memcpy(p->value + p->value_len, u, n);
                p->value_len += n;
                if (run > n)
                    p->value_long = true;
            } else {
                size_t room = sizeof p->reason - 1 - p->reason_len;
                size_t n = run < room ? run : room;
                memcpy(p->reason + p->reason_len, u, n);
                p->reason_len += n;
                p->reason[p->reason_len] = '\0';
            }
            continue;
        }
        case S_HLINE: {
            size_t n = header_line(p, (const unsigned char *)buf + i, len - i, &r);
            if (n == 0)
                break;
            if (r != H1_MORE)
                return r;
            i += n;
            continue;
        }
        default:
            break;
        }
        i++;
        bool in_head = p->state == S_STATUS || p->state == S_HLINE || p->state == S_HNAME ||
                       p->state == S_HVWS || p->state == S_HVAL ||
                       (p->state == S_CR && p->sub != L_CHUNK_SIZE && p->sub != L_CHUNK_DATA);
        if (in_head && ++p->header_bytes > H1_MAX_HEADER_BYTES)
            return fail(p, H1_UNSUPPORTED);
        bool trailers = (p->sub & IN_TRAILERS) != 0;
        switch (p->state) {
        case S_STATUS:
            if (p->sub < 7) {
                if (c != (unsigned char)proto[p->sub])
                    return fail(p, H1_BAD);
                p->sub++;
            } else if (p->sub == 7) {
                if (c != '0' && c != '1')
                    return fail(p, H1_BAD);
                p->minor = c - '0';
                p->sub++;
            } else if (p->sub == 8) {
                if (c != ' ')
                    return fail(p, H1_BAD);
                p->sub++;
            } else if (p->sub <= 11) {
                if (c < '0' || c > '9')
                    return fail(p, H1_BAD);
                p->status = p->status * 10 + (c - '0');
                p->sub++;
            } else if (p->sub == 12) { /* after the code: a reason, or the line's end */
                if (c == ' ')
                    p->sub++;
                else if (c == '\r')
                    r = cr(p, L_STATUS);
                else if (c == '\n')
                    r = line_end(p, L_STATUS);
                else
                    return fail(p, H1_BAD);
            } else {
                if (c == '\r')
                    r = cr(p, L_STATUS);
                else if (c == '\n')
                    r = line_end(p, L_STATUS);
                else if ((c < 0x20 && c != '\t') || c == 0x7f)
                    return fail(p, H1_BAD);
                else if (p->reason_len < sizeof p->reason - 1)
                    p->reason[p->reason_len++] = (char)c;
                p->reason[p->reason_len] = '\0';
            }
            break;
        case S_CR:
            if (c != '\n')
                return fail(p, H1_BAD);
            r = line_end(p, p->sub);
            break;
        case S_HLINE:
            if (c == '\r') {
                r = cr(p, trailers ? L_TEND : L_HEND);
            } else if (c == '\n') {
                r = line_end(p, trailers ? L_TEND : L_HEND);
            } else if (is_tchar(c)) {
                p->state = S_HNAME;
                p->name_len = 0;
                p->value_len = 0;
                p->value_long = false;
                p->name[p->name_len++] = (char)c;
            } else {
                return fail(p, H1_BAD); /* obs-fold, or garbage */
            }
            break;
        case S_HNAME:
            if (c == ':') {
                p->state = S_HVWS;
            } else if (is_tchar(c)) {
                if (p->name_len < sizeof p->name)
                    p->name[p->name_len] = (char)c;
                if (p->name_len <= sizeof p->name)
                    p->name_len++;
            } else {
                return fail(p, H1_BAD);
            }
            break;
        case S_HVWS:
        case S_HVAL:
            if (c == '\r' || c == '\n') {
                r = header_done(p, trailers);
                if (r != H1_MORE)
                    return r;
                r = c == '\r' ? cr(p, trailers ? L_TRAILER : L_HEADER)
                              : line_end(p, trailers ? L_TRAILER : L_HEADER);
            } else if (p->state == S_HVWS && (c == ' ' || c == '\t')) {
                /* leading whitespace */
            } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
                return fail(p, H1_BAD);
            } else {
                p->state = S_HVAL;
                if (p->value_len < sizeof p->value)
                    p->value[p->value_len++] = (char)c;
                else
                    p->value_long = true;
            }
            break;
        case S_CHUNK_SIZE: {
            int h = hexval(c);
            if (h >= 0) {
                if (++p->hex_digits > CHUNK_HEX_MAX)
                    return fail(p, H1_BAD);
                p->remaining = p->remaining * 16 + (uint64_t)h;
            } else if (c == ';' && p->hex_digits) {
                p->state = S_CHUNK_EXT;
                p->sub = 0;
            } else if (c == '\r') {
                r = cr(p, L_CHUNK_SIZE);
            } else if (c == '\n') {
                r = line_end(p, L_CHUNK_SIZE);
            } else {
                return fail(p, H1_BAD);
            }
            break;
        }
        case S_CHUNK_EXT:
            if (c == '\r')
                r = cr(p, L_CHUNK_SIZE);
            else if (c == '\n')
                r = line_end(p, L_CHUNK_SIZE);
            else if (++p->sub > CHUNK_EXT_MAX || (c < 0x20 && c != '\t') || c == 0x7f)
                return fail(p, H1_BAD);
            break;
        case S_CHUNK_DATA_END:
            if (c == '\r' && p->sub == 0)
                p->sub = 1;
            else if (c == '\n')
                r = line_end(p, L_CHUNK_DATA);
            else
                return fail(p, H1_BAD);
            break;
        default:
            return fail(p, H1_BAD);
        }
        if (r != H1_MORE) {
            *used = i;
            return r;
        }
    }
    *used = i;
    return H1_MORE;
}

h1_result h1_parse_eof(h1_parser *p)
{
    if (p->state == S_BODY_EOF || p->state == S_DONE) {
        p->state = S_DONE;
        return H1_DONE;
    }
    if (p->state == S_ERROR)
        return (h1_result)p->sub;
    return fail(p, H1_BAD);
}
