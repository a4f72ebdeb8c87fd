#!/usr/bin/env python3
"""Example exception emitter: serves a changing Periskop payload at /-/exceptions.

It mimics what the four Periskop client libraries expose, so lookout (or Periskop) has something
realistic to scrape:
  go      keys "*url.Error@<fnv32a hex>", RFC3339Nano UTC timestamps, stack traces as "file:line" /
          "\\tpkg.Func: source" pairs, no causes, http_context with request headers, v4 UUIDs
  python  keys "ValueError@<md5[:8]>", "...T...000Z" millisecond timestamps, traceback lines, uuid1,
          no causes, always severity "error"
  ruby    keys "NoMethodError@<md5[:8]>", second-precision "...Z" timestamps, Ruby backtraces, causes,
          Rack-style HTTP_* header names
  scala   keys "java.lang.IllegalStateException@<hex>", "...+01:00"-style offset timestamps, Java frames,
          causes, and addMessage-style events (an "error" with only a "message", caller-chosen key)
  mixed   (default) one error family of each style in the same payload

Counts grow over time (each error has its own rate), each aggregate keeps the 10 latest occurrences
(oldest first), and a new error appears every --new-every seconds.

Usage: emitter.py [--port 7778] [--host 127.0.0.1] [--style go|python|ruby|scala|mixed]
                  [--new-every 20] [--seed N] [--path /-/exceptions]
Python 3 standard library only.
"""
import argparse
import datetime
import hashlib
import json
import random
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_LATEST = 10
STYLES = ("go", "python", "ruby", "scala")


def fnv32a(s):
    h = 0x811C9DC5
    for b in s.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def ts(style, t):
    if style == "go":  # time.Now().UTC() marshalled: RFC3339Nano, trailing zeros trimmed
        frac = ("%06d000" % t.microsecond).rstrip("0")
        return t.strftime("%Y-%m-%dT%H:%M:%S") + ("." + frac if frac else "") + "Z"
    if style == "python":  # utcnow().isoformat(timespec="milliseconds") + "Z"
        return t.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    if style == "ruby":  # Time.now.utc.iso8601
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    # scala: yyyy-MM-dd'T'HH:mm:ss.SSSXXX in a local zone (+01:00 here)
    local = t.astimezone(datetime.timezone(datetime.timedelta(hours=1)))
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + "%03d" % (local.microsecond // 1000) + "+01:00"


# Error families per style: (class, message template, stack frames, cause or None, severity)
FAMILIES = {
    "go": [
        ("*url.Error", 'Get "http://billing:8080/v1/invoices": context deadline exceeded',
         ["billing.(*Client).Invoices", "api.(*Server).listInvoices"], None, "error"),
        ("*json.SyntaxError", "invalid character '}' looking for beginning of value",
         ["api.decodeBody", "api.(*Server).createUser"], None, "warning"),
        ("*net.OpError", "dial tcp 10.0.3.%d:5432: connect: connection refused",
         ["db.(*Pool).Conn", "repo.(*Users).Find"], None, "error"),
    ],
    "python": [
        ("ValueError", "invalid literal for int() with base 10: 'abc'", ["parse_limit", "list_items"], None,
         "error"),
        ("KeyError", "'user_id'", ["get_user", "handle_request"], None, "error"),
        ("TimeoutError", "timed out after %d s", ["fetch_profile", "render_page"], None, "error"),
    ],
    "ruby": [
        ("NoMethodError", "undefined method `name' for nil:NilClass", ["show", "process_action"],
         ("ActiveRecord::RecordNotFound", "Couldn't find User with 'id'=%d"), "error"),
        ("Redis::TimeoutError", "Connection timed out", ["cache_fetch", "index"], None, "error"),
    ],
    "scala": [
        ("java.lang.IllegalStateException", "cache not warmed", ["Cache.get", "Api.handle"],
         ("java.util.concurrent.TimeoutException", "warmup exceeded %ds"), "warning"),
        ("java.lang.NullPointerException", "Cannot invoke \"User.id()\" because \"u\" is null",
         ["UserService.lookup", "Routes.user"], None, "error"),
        (None, "flag service unavailable, using defaults", [], None, "info"),  # addMessage
    ],
}


def stacktrace(style, cls, frames):
    if style == "go":
        out = []
        for i, f in enumerate(frames):
            pkg = f.split(".")[0]
            out += ["/app/internal/%s/%s.go:%d" % (pkg, pkg, 40 + 17 * i), "\t%s: return err" % f]
        return out
    if style == "python":
        out = ["Traceback (most recent call last):"]
        for i, f in enumerate(frames):
            out += ['  File "/app/service/views.py", line %d, in %s' % (30 + 11 * i, f), "    return %s()" % f]
        return out + ["%s: ..." % cls]
    if style == "ruby":
        return ["/app/app/controllers/users_controller.rb:%d:in `%s'" % (12 + 5 * i, f)
                for i, f in enumerate(frames)]
    return ["com.acme.%s(%s.scala:%d)" % (f, f.split(".")[0], 18 + 23 * i) for i, f in enumerate(frames)]


def agg_key(style, cls, msg, trace, name):
    if style == "go":  # Class@fnv32a(message + first 4 lines), %x
        return "%s@%x" % (cls, fnv32a(msg + "".join(trace[:4])))
    if style in ("python", "ruby"):  # Class@md5(first 5 lines)[:8]
        return "%s@%s" % (cls.split("::")[-1] if style == "python" else cls,
                          hashlib.md5("".join(trace[:5]).encode()).hexdigest()[:8])
    if cls is None:  # scala addMessage: the caller's key
        return name
    return "%s@%x" % (cls, fnv32a("".join(trace[:5])) & 0x7FFFFFFF)


class Aggregate:
    def __init__(self, rng, style, fam, n):
        self.rng, self.style = rng, style
        cls, msg, frames, cause, sev = fam
        self.cls, self.frames, self.cause, self.severity = cls, frames, cause, sev
        self.msg_t = msg
        self.msg = msg % (n + 2) if "%d" in msg else msg
        self.trace = stacktrace(style, cls, frames)
        self.key = agg_key(style, cls, self.msg, self.trace, "feature-flag-fallback-%d" % n)
        self.rate = rng.uniform(0.05, 2.0)  # occurrences per second
        self.count = 0
        self.created = now_utc()
        self.latest = []
        self.carry = 0.0

    def advance(self, dt):
        self.carry += self.rate * dt * self.rng.uniform(0.5, 1.5)
        n, self.carry = int(self.carry), self.carry - int(self.carry)
        for _ in range(n):
            self.count += 1
            occ = self.occurrence()
            if len(self.latest) >= MAX_LATEST:
                # periskop-python drops the newest (a known bug); the others drop the oldest
                self.latest.pop(-1 if self.style == "python" else 0)
            self.latest.append(occ)

    def error(self):
        if self.cls is None:
            return {"message": self.msg}
        e = {"class": self.cls, "message": self.msg, "stacktrace": self.trace, "cause": None}
        if self.cause and self.style in ("ruby", "scala"):
            ccls, cmsg = self.cause
            e["cause"] = {"class": ccls, "message": cmsg % self.rng.randint(1, 99) if "%d" in cmsg else cmsg,
                          "stacktrace": stacktrace(self.style, ccls, self.frames[-1:]), "cause": None}
        return e

    def http_context(self):
        if self.style == "python" or self.cls is None or self.rng.random() < 0.3:
            return None
        path = "/users/%d" % self.rng.randint(1, 500)
        if self.style == "ruby":
            headers = {"HTTP_USER_AGENT": "curl/8.0", "HTTP_ACCEPT": "*/*", "CONTENT_TYPE": "application/json"}
        else:
            headers = {"Accept": "application/json", "X-Request-Id": uuid.uuid4().hex[:6]}
        ctx = {"request_method": "GET", "request_url": "http://api.internal" + path, "request_headers": headers}
        if self.style == "go":
            ctx["request_body"] = None
        return ctx

    def occurrence(self):
        return {
            "error": self.error(),
            "uuid": str(uuid.uuid1() if self.style == "python" else uuid.uuid4()),
            "timestamp": ts(self.style, now_utc()),
            "severity": self.severity,
            "http_context": self.http_context(),
        }

    def to_json(self):
        return {
            "aggregation_key": self.key,
            "total_count": self.count,
            "severity": self.severity,
            "created_at": ts(self.style, self.created),
            "latest_errors": list(self.latest),
        }


class Emitter:
    def __init__(self, style, new_every, seed):
        self.rng = random.Random(seed)
        self.styles = STYLES if style == "mixed" else (style,)
        self.new_every = new_every
        self.target_uuid = str(uuid.uuid4())
        self.lock = threading.Lock()
        self.aggs = []
        self.next_family = 0
        for s in self.styles:  # start with the first family of each style
            self.add(s, FAMILIES[s][0])
        self.last = time.monotonic()
        self.last_new = self.last

    def add(self, style, fam):
        a = Aggregate(self.rng, style, fam, len(self.aggs))
        a.carry = 1.0  # exactly one occurrence now, so the aggregate is visible at once
        a.advance(0.0)
        self.aggs.append(a)

    def payload(self):
        with self.lock:
            now = time.monotonic()
            dt, self.last = now - self.last, now
            for a in self.aggs:
                a.advance(dt)
            if self.new_every > 0 and now - self.last_new >= self.new_every:
                self.last_new = now
                style = self.styles[self.next_family % len(self.styles)]
                fams = FAMILIES[style]
                self.next_family += 1
                self.add(style, fams[self.next_family % len(fams)])
            return {"target_uuid": self.target_uuid,
                    "aggregated_errors": [a.to_json() for a in self.aggs if a.count > 0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=7778)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--style", choices=STYLES + ("mixed",), default="mixed")
    ap.add_argument("--new-every", type=float, default=20.0, help="seconds between new errors (0: never)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--path", default="/-/exceptions")
    args = ap.parse_args()
    em = Emitter(args.style, args.new_every, args.seed)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the real clients' Go/Python servers

        def do_GET(self):
            if self.path.split("?")[0] != args.path:
                body, code = b"not found\n", 404
            else:
                body, code = json.dumps(em.payload()).encode(), 200
            self.send_response(code)
            self.send_header("Content-Type", "application/json" if code == 200 else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    print("emitter: serving %s style payload on http://%s:%d%s" % (args.style, args.host,
                                                                  srv.server_address[1], args.path), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
