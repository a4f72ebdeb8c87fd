#!/usr/bin/env python3
"""A scrape target that misbehaves in many ways, one per path, for scrape_fastpath.sh.
Usage: h1_misbehave.py PORTFILE PAYLOAD. Listens on a free loopback port (written to PORTFILE) and answers
every request on its connection by path; keeps connections alive unless the case closes them.
Counts requests per path: GET /-/count?p=PATH answers the number as text (never counted itself)."""
import gzip, socket, sys, threading, time

payload = open(sys.argv[2], 'rb').read()
counts = {}
lock = threading.Lock()

def chunked(body, size=700):
    out = b''
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += b'%x\r\n' % len(part) + part + b'\r\n'
    return out + b'0\r\n\r\n'

def cl(status, body, extra=b''):
    return b'HTTP/1.1 ' + status + b'\r\nContent-Type: application/json\r\n' + extra + \
        b'Content-Length: %d\r\n\r\n' % len(body) + body

def answer(path):
    """-> (bytes to send, then: 'keep' | 'close' | 'reset' | 'hang')"""
    if path == '/ok':
        return cl(b'200 OK', payload), 'keep'
    if path == '/chunked':
        return b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' + chunked(payload), 'keep'
    if path == '/gzip':
        return cl(b'200 OK', gzip.compress(payload), b'Content-Encoding: gzip\r\n'), 'keep'
    if path == '/http10':
        return b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n' + payload, 'close'
    if path == '/close':
        return cl(b'200 OK', payload, b'Connection: close\r\n'), 'close'
    if path == '/s500':
        return cl(b'500 Internal Server Error', b'oops'), 'keep'
    if path == '/s503bare':
        return b'HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n', 'keep'
    if path == '/s404own':
        return cl(b'404 Nothing Here At All', b''), 'keep'
    if path == '/big':
        return cl(b'200 OK', b' ' * 3000), 'keep'
    if path == '/bigchunked':
        return b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' + chunked(b' ' * 3000), 'keep'
    if path == '/biggzip':
        return cl(b'200 OK', gzip.compress(b' ' * 3000), b'Content-Encoding: gzip\r\n'), 'keep'
    if path == '/hang':
        return b'', 'hang'
    if path == '/reset':
        return b'', 'reset'
    if path == '/resetmid':
        return b'HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{"aggr', 'reset'
    if path == '/truncated':
        return b'HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{"aggr', 'close'
    if path == '/truncchunk':
        return b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nabc', 'close'
    if path == '/badchunk':
        return b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', 'close'
    if path == '/garbage':
        return b'GARBAGE GARBAGE\r\n\r\n', 'close'
    if path == '/nothing':
        return b'', 'close'
    if path == '/badlength':
        return b'HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n', 'close'
    if path == '/redirect':
        return b'HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 0\r\n\r\n', 'keep'
    if path == '/brotli':
        return cl(b'200 OK', b'not brotli at all', b'Content-Encoding: br\r\n'), 'keep'
    if path == '/badgzip':
        return cl(b'200 OK', b'not gzip at all', b'Content-Encoding: gzip\r\n'), 'keep'
    if path == '/hugeheaders':
        return b'HTTP/1.1 200 OK\r\n' + b''.join(b'X-H%d: %s\r\n' % (i, b'v' * 200) for i in range(120)) + \
            b'Content-Length: %d\r\n\r\n' % len(payload) + payload, 'keep'
    if path == '/continue':
        return b'HTTP/1.1 100 Continue\r\n\r\n' + cl(b'200 OK', payload), 'keep'
    return cl(b'404 Not Found', b''), 'keep'

def handle(c):
    buf = b''
    try:
        while True:
            while b'\r\n\r\n' not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head, buf = buf.split(b'\r\n\r\n', 1)
            target = head.split(b'\r\n', 1)[0].split(b' ')[1].decode()
            path, _, query = target.partition('?')
            if path == '/-/count':
                n = counts.get(query[2:], 0)
                c.sendall(cl(b'200 OK', b'%d' % n))
                continue
            with lock:
                counts[path] = counts.get(path, 0) + 1
            data, then = answer(path)
            if data:
                c.sendall(data)
            if then == 'close':
                return
            if then == 'reset':
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')
                return
            if then == 'hang':
                time.sleep(30)
                return
    except OSError:
        pass
    finally:
        c.close()

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', 0))
s.listen(128)
with open(sys.argv[1] + '.tmp', 'w') as f:
    f.write(str(s.getsockname()[1]))
import os
os.rename(sys.argv[1] + '.tmp', sys.argv[1])
while True:
    c, _ = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
