#!/usr/bin/env python3
"""fake_api.py: a stand-in for lookout's own JSON API (docs/api.md), for developing and testing the web UI
before (and besides) the real API. Serves web/ like src/api/ui.c does (/ and /static/NAME, same CSP), the
/api/v1 endpoints from a JSON fixture, resolve/reopen state, and control endpoints for tests:

  POST /_fake/errors   body: {"job","key","class","message","severity","stacktrace","cause","http_context",
                        "labels":{...},"count":N}  adds an occurrence (creates the error, or raises its count;
                        a resolved error becomes "regressed")
  POST /_fake/reset    body: {"fixture": "none"|"default", "bulk": {"job": N}}

Usage: fake_api.py --port 0 [--fixture PATH|none] [--bulk JOB:N] [--web DIR]; prints "listening PORT".
stdlib only."""
import argparse
import base64
import json
import os
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:"
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
         ".json": "application/json"}


def iso(t):
    if t is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


class Err:
    __slots__ = ("job", "key", "cls", "message", "severity", "count", "first", "last", "status", "resolved_at",
                 "resolved_count", "labels", "samples", "events", "spark", "hay", "seed")

    def index(self):
        parts = [self.key, self.cls, self.message]
        for s in self.samples or []:
            e = s["error"]
            while e:
                parts += [e.get("class", ""), e.get("message", "")] + list(e.get("stacktrace") or [])
                e = e.get("cause")
            h = s.get("http_context")
            if h:
                parts += [h.get("request_method", ""), h.get("request_url", ""), h.get("request_body", "")]
                for k, v in (h.get("request_headers") or {}).items():
                    parts += [k, v]
        self.hay = "\n".join(p for p in parts if p).lower()


WORDS = ("timeout connection refused reset peer invoice order payment customer cart session token user "
         "account database query deadlock replica shard cache miss redis kafka consumer lag offset retry "
         "upstream gateway tls handshake certificate expired quota exceeded disk full permission denied").split()
CLASSES = ["*url.Error", "*net.OpError", "*pq.Error", "ValueError", "KeyError", "TimeoutError",
           "NoMethodError", "ActiveRecord::RecordNotFound", "java.io.IOException",
           "java.lang.NullPointerException", "*json.SyntaxError", "RuntimeError"]
SEVS = ["error", "error", "error", "warning", "warning", "info"]


class Store:
    def __init__(self, fixture, bulk, now=None):
        self.lock = threading.Lock()
        self.version = 0
        self.now0 = now or time.time()
        self.jobs = {}
        self.errors = {}
        self.order = []  # insertion order, for stable sorting ties
        self.cache = {}
        if fixture:
            self.load_fixture(fixture)
        for job, n in (bulk or {}).items():
            self.jobs.setdefault(job, {"targets_up": 50, "targets_down": 2, "targets_unknown": 0})
            self.generate(job, n, seed=n)

    # ---- building
    def add(self, e):
        k = (e.job, e.key)
        if k not in self.errors:
            self.order.append(k)
        self.errors[k] = e
        self.version += 1

    def load_fixture(self, path):
        with open(path) as f:
            fx = json.load(f)
        now = self.now0
        for job, t in fx.get("jobs", {}).items():
            self.jobs[job] = dict(t)
        for d in fx.get("errors", []):
            e = Err()
            e.job, e.key, e.severity, e.count = d["job"], d["key"], d["severity"], d["count"]
            e.first, e.last = now - d["first_seen_ago"], now - d["last_seen_ago"]
            e.status = d.get("status", "open")
            e.resolved_at = now - d["resolved_ago"] if "resolved_ago" in d else None
            e.resolved_count = d.get("resolved_count")
            e.labels = d.get("labels", [])
            e.samples = []
            for s in d.get("samples", []):
                t = now - s["ago"]
                e.samples.append({"uuid": self.uuid(e.key, t), "timestamp": iso(t), "severity": e.severity,
                                  "error": s["error"], "http_context": s.get("http_context")})
            e.cls = e.samples[0]["error"]["class"] if e.samples else ""
            e.message = e.samples[0]["error"]["message"] if e.samples else ""
            e.events = self.spread(e.key, e.count, e.first, e.last)
            e.spark = None
            e.seed = 0
            e.index()
            self.add(e)
        for job, n in fx.get("generate", {}).items():
            self.generate(job, n, seed=len(job) * 7919 + n)

    def uuid(self, key, t):
        r = random.Random(f"{key}{t}")
        h = "%032x" % r.getrandbits(128)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"

    def spread(self, key, count, first, last):
        r = random.Random(key)
        n = min(count, 300)
        ts = sorted(first + r.random() * max(0.0, last - first) for _ in range(max(0, n - 2)))
        ts = [first] + ts + ([last] if n > 1 else [])
        per, extra = divmod(count, max(1, len(ts)))
        return [(t, per + (1 if i < extra else 0)) for i, t in enumerate(ts)]

    def generate(self, job, n, seed):
        r = random.Random(seed)
        now = self.now0
        for i in range(n):
            e = Err()
            e.job = job
            e.cls = r.choice(CLASSES)
            e.key = "%s@%08x" % (e.cls, r.getrandbits(32))
            words = r.sample(WORDS, 5)
            e.message = f"{words[0]} {words[1]}: {words[2]} {words[3]} ({words[4]} #{i})"
            e.severity = r.choice(SEVS)
            e.count = int(r.paretovariate(1.2)) + 1
            e.first = now - r.random() * 14 * 86400
            e.last = e.first + r.random() * (now - e.first)
            e.status = "open" if r.random() < 0.8 else "resolved"
            e.resolved_at = e.last + 1 if e.status == "resolved" else None
            e.resolved_count = e.count if e.status == "resolved" else None
            pod = r.randrange(8)
            e.labels = [{"job": job, "instance": f"10.1.{pod}.{r.randrange(250)}:8080",
                         "namespace": "prod" if pod < 6 else "staging", "pod": f"{job}-{pod}"}]
            e.samples = None  # made on demand
            e.events = None
            age_h = (now - e.last) / 3600
            e.spark = [0] * 24
            if age_h < 24:
                e.spark[23 - int(age_h)] = min(e.count, 1 + r.randrange(5))
            e.seed = r.getrandbits(32)
            e.hay = f"{e.key}\n{e.cls}\n{e.message}\nmain.handle{i % 97}\n/app/{words[0]}.go".lower()
            self.add(e)

    def materialize(self, e):
        if e.samples is None:
            r = random.Random(e.seed)
            e.samples = [{"uuid": self.uuid(e.key, e.last), "timestamp": iso(e.last), "severity": e.severity,
                          "error": {"class": e.cls, "message": e.message,
                                    "stacktrace": [f"main.handle{r.randrange(97)}", "main.main"], "cause": None},
                          "http_context": None}]
        if e.events is None:
            e.events = self.spread(e.key, e.count, e.first, e.last)

    # ---- mutations
    def inject(self, d):
        now = time.time()
        k = (d["job"], d["key"])
        sample = {"uuid": self.uuid(d["key"], now), "timestamp": iso(now), "severity": d.get("severity", "error"),
                  "error": {"class": d.get("class", ""), "message": d.get("message", ""),
                            "stacktrace": d.get("stacktrace", []), "cause": d.get("cause")},
                  "http_context": d.get("http_context")}
        n = int(d.get("count", 1))
        with self.lock:
            self.jobs.setdefault(d["job"], {"targets_up": 1, "targets_down": 0, "targets_unknown": 0})
            e = self.errors.get(k)
            if e is None:
                e = Err()
                e.job, e.key, e.count, e.first = d["job"], d["key"], 0, now
                e.status, e.resolved_at, e.resolved_count = "open", None, None
                e.labels, e.samples, e.events, e.spark, e.seed = [], [], [], None, 0
            self.materialize(e)
            e.cls, e.message, e.severity = sample["error"]["class"], sample["error"]["message"], sample["severity"]
            e.count += n
            e.last = now
            e.samples.insert(0, sample)
            del e.samples[100:]
            e.events.append((now, n))
            e.spark = None
            if d.get("labels") and d["labels"] not in e.labels:
                e.labels.append(d["labels"])
            if e.status == "resolved":
                e.status = "regressed"
            e.index()
            self.add(e)
            return e

    def set_status(self, job, key, verb):
        with self.lock:
            e = self.errors.get((job, key))
            if e is None:
                return None
            if verb == "resolve":
                e.status, e.resolved_at, e.resolved_count = "resolved", time.time(), e.count
            else:
                e.status, e.resolved_at, e.resolved_count = "open", None, None
            self.version += 1
            return e

    # ---- queries
    def sparkline(self, e, now):
        if e.spark is not None:
            return e.spark
        s = [0] * 24
        for t, n in e.events or []:
            age = int((now - t) // 3600)
            if 0 <= age < 24:
                s[23 - age] += n
        return s

    def entry(self, e, now, spark=True):
        d = {"job": e.job, "aggregation_key": e.key, "class": e.cls, "message": e.message, "severity": e.severity,
             "total_count": e.count, "first_seen": iso(e.first), "last_seen": iso(e.last), "status": e.status,
             "resolved_at": iso(e.resolved_at), "resolved_count": e.resolved_count}
        if spark:
            d["sparkline"] = self.sparkline(e, now)
        return d

    def sorted_errors(self, sort):
        ck = ("sorted", sort, self.version)
        if ck not in self.cache:
            self.cache = {k: v for k, v in self.cache.items() if k[-1] == self.version}
            attr = {"last_seen": "last", "count": "count", "first_seen": "first"}[sort]
            vals = [self.errors[k] for k in self.order]
            self.cache[ck] = sorted(vals, key=lambda e: getattr(e, attr), reverse=True)
        return self.cache[ck]

    def list(self, q):
        sort = (q.get("sort") or ["last_seen"])[0]
        if sort not in ("last_seen", "count", "first_seen"):
            raise ValueError(f'invalid sort "{sort}": want last_seen, count or first_seen')
        try:
            limit = int((q.get("limit") or ["50"])[0])
        except ValueError:
            raise ValueError("invalid limit")
        if limit < 1 or limit > 1000:
            raise ValueError("limit must be between 1 and 1000")
        jobs = set(q.get("job") or [])
        sevs = set(q.get("severity") or [])
        status = (q.get("status") or [""])[0]
        words = " ".join(q.get("q") or []).lower().split()
        labels = []
        for l in q.get("label") or []:
            if "=" not in l:
                raise ValueError(f'invalid label filter "{l}": want NAME=VALUE')
            labels.append(tuple(l.split("=", 1)))
        offset = 0
        cur = (q.get("cursor") or [""])[0]
        if cur:
            try:
                c = json.loads(base64.urlsafe_b64decode(cur.encode()))
                offset = int(c["o"])
            except Exception:
                raise ValueError("invalid cursor")
        now = time.time()
        with self.lock:
            out = []
            for e in self.sorted_errors(sort):
                if jobs and e.job not in jobs:
                    continue
                if sevs and e.severity not in sevs:
                    continue
                if status == "open" and e.status not in ("open", "regressed"):
                    continue
                if status in ("resolved", "regressed") and e.status != status:
                    continue
                if words and not all(w in e.hay for w in words):
                    continue
                if labels and not all(any(ls.get(n) == v for ls in e.labels) for n, v in labels):
                    continue
                out.append(e)
            page = out[offset:offset + limit]
            nxt = None
            if offset + limit < len(out):
                nxt = base64.urlsafe_b64encode(json.dumps({"o": offset + limit}).encode()).decode()
            return {"errors": [self.entry(e, now) for e in page], "next_cursor": nxt, "total": len(out)}

    def detail(self, job, key, q):
        now = time.time()
        with self.lock:
            e = self.errors.get((job, key))
            if e is None:
                return None
            self.materialize(e)
            d = self.entry(e, now, spark=False)
            n = int((q.get("samples") or ["100"])[0])
            res = (q.get("resolution") or [""])[0] or ("hour" if e.last - e.first > 6 * 3600 else "minute")
            step = 3600 if res == "hour" else 60
            buckets = {}
            for t, c in e.events:
                b = int(t // step) * step
                buckets[b] = buckets.get(b, 0) + c
            d["labels_seen"] = e.labels
            d["samples"] = e.samples[:n]
            d["series"] = {"resolution": res, "step_seconds": step, "start": iso(int(e.first // step) * step),
                           "points": [[b, buckets[b]] for b in sorted(buckets)]}
            return d

    def overview(self):
        now = time.time()
        with self.lock:
            ck = ("jobs", int(now // 30), self.version)
            if ck in self.cache:
                return self.cache[ck]
            res = {j: {"job": j, "open": 0, "regressed": 0, "resolved": 0, "errors_last_hour": 0,
                       "targets_up": t.get("targets_up", 0), "targets_down": t.get("targets_down", 0),
                       "targets_unknown": t.get("targets_unknown", 0), "sparkline": [0] * 24}
                   for j, t in self.jobs.items()}
            for e in self.errors.values():
                r = res[e.job]
                r[e.status] += 1
                sp = self.sparkline(e, now)
                for i, v in enumerate(sp):
                    r["sparkline"][i] += v
                if e.events is not None:
                    r["errors_last_hour"] += sum(n for t, n in e.events if now - t < 3600)
                elif now - e.last < 3600:
                    r["errors_last_hour"] += sp[23]
            out = sorted(res.values(), key=lambda r: r["job"])
            self.cache[ck] = out
            return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-lookout"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("fake_api: " + fmt % args + "\n")

    def send(self, status, body, ctype="application/json", headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def ok(self, data, status=200):
        self.send(status, json.dumps({"status": "success", "data": data}))

    def fail(self, status, etype, msg):
        self.send(status, json.dumps({"status": "error", "errorType": etype, "error": msg}))

    def static(self, path):
        name = "index.html" if path == "/" else path[len("/static/"):]
        if "/" in name or name.startswith("."):
            return self.send(404, "404 page not found\n", "text/plain")
        fp = os.path.join(self.server.web, name)
        if not os.path.isfile(fp):
            return self.send(404, "404 page not found\n", "text/plain")
        with open(fp, "rb") as f:
            body = f.read()
        ctype = TYPES.get(os.path.splitext(name)[1], "application/octet-stream")
        self.send(200, body, ctype, {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                                     "Cache-Control": "no-cache"})

    def split_error_path(self, raw):
        # raw: after /api/v1/errors/ , still percent-encoded: {job}/{key...}
        if "/" not in raw:
            return None, None
        job, key = raw.split("/", 1)
        return unquote(job), unquote(key)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        u = urlsplit(self.path)
        q = parse_qs(u.query, keep_blank_values=False)
        st = self.server.store
        if u.path == "/" or u.path.startswith("/static/"):
            return self.static(u.path)
        if u.path in ("/targets", "/service-discovery"):
            title = "Targets" if u.path == "/targets" else "Service discovery"
            return self.send(200, f"<!doctype html><title>{title}</title><h1>{title}</h1>"
                             "<p>Served by lookout's targets module (fake).</p><a href='/'>lookout</a>",
                             "text/html; charset=utf-8")
        if u.path == "/-/ready":
            return self.send(200, "lookout is Ready.\n", "text/plain")
        if u.path == "/api/v1/jobs":
            return self.ok(st.overview())
        if u.path == "/api/v1/errors":
            try:
                return self.ok(st.list(q))
            except ValueError as e:
                return self.fail(400, "bad_data", str(e))
        if u.path.startswith("/api/v1/errors/"):
            job, key = self.split_error_path(u.path[len("/api/v1/errors/"):])
            d = st.detail(job, key, q) if job is not None else None
            if d is None:
                return self.fail(404, "not_found", "error not found")
            return self.ok(d)
        self.send(404, "404 page not found\n", "text/plain")

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_POST(self):
        u = urlsplit(self.path)
        st = self.server.store
        raw = self.body()
        if u.path.startswith("/api/v1/errors/"):
            rest = u.path[len("/api/v1/errors/"):]
            for verb in ("resolve", "reopen"):
                if rest.endswith("/" + verb):
                    job, key = self.split_error_path(rest[: -len(verb) - 1])
                    e = st.set_status(job, key, verb) if job is not None else None
                    if e is None:
                        return self.fail(404, "not_found", "error not found")
                    return self.ok(st.entry(e, time.time()))
            return self.send(405, "405 method not allowed\n", "text/plain", {"Allow": "GET, HEAD"})
        if u.path == "/_fake/errors":
            e = st.inject(json.loads(raw))
            return self.ok(st.entry(e, time.time()))
        if u.path == "/_fake/reset":
            d = json.loads(raw or b"{}")
            fx = d.get("fixture", "default")
            self.server.store = Store(None if fx == "none" else self.server.fixture, d.get("bulk"))
            return self.ok({"errors": len(self.server.store.errors)})
        self.send(404, "404 page not found\n", "text/plain")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--fixture", default=os.path.join(ROOT, "tests", "fixtures", "ui", "errors.json"))
    ap.add_argument("--bulk", action="append", default=[], help="JOB:N synthetic errors")
    ap.add_argument("--web", default=os.path.join(ROOT, "web"))
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    bulk = {j: int(n) for j, n in (b.rsplit(":", 1) for b in a.bulk)}
    fixture = None if a.fixture == "none" else a.fixture
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.fixture = fixture
    srv.store = Store(fixture, bulk)
    srv.web = a.web
    srv.verbose = a.verbose
    print("listening", srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
