#!/usr/bin/env python3
"""Exception targets for the web UI's browser tests against the real ./lookout.

Each target is an HTTP port serving a Periskop client payload (what a service using a Periskop client
library exposes at /-/exceptions). The targets are built from tests/fixtures/ui/errors.json: every distinct
label set of the fixture's errors becomes one target whose static_configs labels are that label set
(including `instance`, so lookout shows the fixture's instances), and an error's count is split across the
targets that report it (lookout sums them back). The fixture's `generate` adds seeded synthetic errors.

The script writes a lookout configuration for these targets (--config) and then plays the services: a
control port changes what they expose, the way a service throwing exceptions would:
  POST /errors      {"job", "key", "class", "message", "severity", "stacktrace", "cause", "http_context",
                     "count": 1, "instance": optional target instance} -> one more occurrence (count more)
  POST /targets     {"job", "labels": {...}} -> a new target on a new port; the config file is rewritten
                     (POST lookout's /-/reload afterwards)
  GET  /state       {"targets": [{"job", "instance", "labels", "port", "requests"}]}

--bulk JOB:N:T builds N synthetic errors spread over T targets of job JOB instead (no fixture); after
  POST /stop       they answer 503, so lookout keeps what it ingested without parsing the big payloads again
(the performance figures with 100,000 errors).

Usage: ui_targets.py --config PATH [--fixture PATH] [--bulk JOB:N:T] [--interval 1s]
Prints "control PORT" and then "ready". Python 3 standard library only."""
import argparse
import json
import os
import random
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
MAX_LATEST = 10
WORDS = ("timeout connection refused reset peer invoice order payment customer cart session token user "
         "account database query deadlock replica shard cache miss redis kafka consumer lag offset retry "
         "upstream gateway tls handshake certificate expired quota exceeded disk full permission denied").split()
CLASSES = ["*url.Error", "*net.OpError", "*pq.Error", "ValueError", "KeyError", "TimeoutError",
           "NoMethodError", "ActiveRecord::RecordNotFound", "java.io.IOException",
           "java.lang.NullPointerException", "*json.SyntaxError", "RuntimeError"]
SEVS = ["error", "error", "error", "warning", "warning", "info"]


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def uuid_for(r):
    h = "%032x" % r.getrandbits(128)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


class Target:
    def __init__(self, job, labels, once=False):
        self.job, self.labels, self.once = job, dict(labels), once
        self.errors = {}  # key -> aggregated error (Periskop client shape)
        self.order = []
        self.uuid = uuid_for(random.Random(json.dumps([job, labels], sort_keys=True)))
        self.requests = 0
        self.body = None  # cached payload bytes (None: rebuild)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def aggregate(self, key, severity, created):
        a = self.errors.get(key)
        if a is None:
            a = {"aggregation_key": key, "total_count": 0, "severity": severity, "created_at": iso(created),
                 "latest_errors": []}
            self.errors[key] = a
            self.order.append(key)
        return a

    def occur(self, key, severity, err, t, http=None, count=1, r=None):
        a = self.aggregate(key, severity, t)
        a["severity"] = severity
        a["total_count"] += count
        a["latest_errors"].append({"error": err, "uuid": uuid_for(r or random.Random(f"{key}{t}{count}")),
                                   "timestamp": iso(t), "severity": severity, "http_context": http})
        a["latest_errors"].sort(key=lambda o: o["timestamp"])
        del a["latest_errors"][:-MAX_LATEST]
        self.body = None

    def payload(self):
        if self.body is None:
            self.body = json.dumps({"target_uuid": self.uuid,
                                    "aggregated_errors": [self.errors[k] for k in self.order]}).encode()
        return self.body


class Targets:
    def __init__(self, config, interval):
        self.lock = threading.Lock()
        self.config, self.interval = config, interval
        self.targets = []
        self.extra_jobs = {}  # job -> list of (address, labels) without a server (down targets)
        self.body_size_limit = None
        self.stopped = False  # --bulk targets answer 503 once set (POST /stop)

    def add(self, job, labels, once=False):
        t = Target(job, labels, once)
        self.targets.append(t)
        srv = ThreadingHTTPServer(("127.0.0.1", t.port), TargetHandler, bind_and_activate=False)
        srv.socket.close()
        srv.socket = t.sock
        srv.server_activate()
        srv.target, srv.all = t, self
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        return t

    def find(self, job, instance=None):
        for t in self.targets:
            if t.job == job and (instance is None or t.labels.get("instance") == instance):
                return t
        return None

    def write_config(self):
        jobs = {}
        for t in self.targets:
            jobs.setdefault(t.job, []).append((f"127.0.0.1:{t.port}", t.labels))
        for job, lst in self.extra_jobs.items():
            jobs.setdefault(job, []).extend(lst)
        q = json.dumps  # JSON strings are valid YAML scalars: no quoting trouble with odd names
        out = ["global:", f"  scrape_interval: {self.interval}", f"  scrape_timeout: {self.interval}",
               "scrape_configs:"]
        for job, lst in jobs.items():
            out += [f"  - job_name: {q(job)}"]
            if self.body_size_limit:
                out.append(f"    body_size_limit: {self.body_size_limit}")
            if job == "api":  # a rule that changes nothing here: the detail page's relabel steps show it
                out += ["    error_relabel_configs:",
                        "      - {source_labels: [__class__], regex: 'NeverRaised.*', action: drop}"]
            out.append("    static_configs:")
            if not lst:
                out.append("      []")
            for addr, labels in lst:
                out.append(f"      - targets: [{q(addr)}]")
                lab = {k: v for k, v in labels.items() if k != "job"}
                if lab:
                    out.append("        labels: {" + ", ".join(f"{q(k)}: {q(v)}" for k, v in lab.items()) + "}")
        tmp = self.config + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(out) + "\n")
        os.replace(tmp, self.config)


class TargetHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        t, all_ = self.server.target, self.server.all
        with all_.lock:
            t.requests += 1
            gone = t.once and all_.stopped
            body = b"served once\n" if gone else t.payload()
        self.send_response(503 if gone else 200)
        self.send_header("Content-Type", "text/plain" if gone else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class ControlHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        all_ = self.server.all
        if self.path == "/state":
            with all_.lock:
                return self.reply(200, {"targets": [{"job": t.job, "instance": t.labels.get("instance"),
                                                     "labels": t.labels, "port": t.port, "requests": t.requests}
                                                    for t in all_.targets]})
        self.reply(404, {"error": "not found"})

    def do_POST(self):
        all_ = self.server.all
        n = int(self.headers.get("Content-Length") or 0)
        try:
            d = json.loads(self.rfile.read(n) or b"{}")
        except ValueError as e:
            return self.reply(400, {"error": str(e)})
        with all_.lock:
            if self.path == "/errors":
                t = all_.find(d["job"], d.get("instance"))
                if t is None:
                    return self.reply(400, {"error": "no target for job %r" % d["job"]})
                err = {"class": d.get("class", ""), "message": d.get("message", ""),
                       "stacktrace": d.get("stacktrace", []), "cause": d.get("cause")}
                t.occur(d["key"], d.get("severity", "error"), err, time.time(), d.get("http_context"),
                        int(d.get("count", 1)))
                return self.reply(200, {"instance": t.labels.get("instance"), "port": t.port,
                                        "total_count": t.errors[d["key"]]["total_count"]})
            if self.path == "/stop":
                all_.stopped = True
                return self.reply(200, {})
            if self.path == "/targets":
                labels = dict(d.get("labels") or {})
                labels.setdefault("job", d["job"])
                t = all_.add(d["job"], labels)
                all_.write_config()
                return self.reply(200, {"port": t.port})
        self.reply(404, {"error": "not found"})


def load_fixture(all_, path, now):
    with open(path) as f:
        fx = json.load(f)
    for job in fx.get("jobs", {}):
        all_.extra_jobs.setdefault(job, [])
    for e in fx.get("errors", []):
        targets = []
        for lab in e["labels"]:
            t = all_.find(e["job"], lab.get("instance")) or all_.add(e["job"], lab)
            targets.append(t)
        # The count is split across the reporting targets; the first one also has the stored samples.
        share = [e["count"] // len(targets)] * len(targets)
        share[0] += e["count"] - sum(share)
        for i, t in enumerate(targets):
            a = t.aggregate(e["key"], e["severity"], now - e["first_seen_ago"])
            a["total_count"] = share[i]
        for s in e.get("samples", []):
            ts = now - s["ago"]
            a = targets[0].errors[e["key"]]
            a["latest_errors"].append({"error": s["error"], "uuid": uuid_for(random.Random(f"{e['key']}{s['ago']}")),
                                       "timestamp": iso(ts), "severity": e["severity"],
                                       "http_context": s.get("http_context")})
            a["latest_errors"].sort(key=lambda o: o["timestamp"])
    for job, n in fx.get("generate", {}).items():
        generate(all_, job, n, [t for t in all_.targets if t.job == job], seed=len(job) * 7919 + n, now=now)
    # Jobs with down targets (the fixture's targets_down): an address nobody listens on.
    for job, h in fx.get("jobs", {}).items():
        for i in range(h.get("targets_down", 0)):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
            all_.extra_jobs[job].append((f"127.0.0.1:{port}", {"instance": f"10.9.{i}.1:8080",
                                                               "namespace": "prod"}))


def generate(all_, job, n, targets, seed, now, max_count=100):
    r = random.Random(seed)
    for i in range(n):
        cls = r.choice(CLASSES)
        key = "%s@%08x" % (cls, (i * 2654435761 + seed) & 0xFFFFFFFF)  # unique per i
        w = r.sample(WORDS, 5)
        msg = f"{w[0]} {w[1]}: {w[2]} {w[3]} ({w[4]} #{i})"
        sev = r.choice(SEVS)
        t = targets[i % len(targets)]
        created = now - r.random() * 14 * 86400
        a = t.aggregate(key, sev, created)
        a["total_count"] = 1 + min(max_count, int(r.paretovariate(1.2)))
        a["latest_errors"].append({
            "error": {"class": cls, "message": msg, "stacktrace": [f"main.handle{i % 97}", f"/app/{w[0]}.go:{i % 300}"],
                      "cause": None},
            "uuid": uuid_for(r), "timestamp": iso(created + r.random() * (now - created)), "severity": sev,
            "http_context": None})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--fixture", default=os.path.join(ROOT, "tests", "fixtures", "ui", "errors.json"))
    ap.add_argument("--bulk", help="JOB:N:TARGETS")
    ap.add_argument("--interval", default="1s", help="scrape_interval (and scrape_timeout) in the config")
    ap.add_argument("--body-size-limit", help="body_size_limit of every job (e.g. 64MB)")
    args = ap.parse_args()
    all_ = Targets(args.config, args.interval)
    all_.body_size_limit = args.body_size_limit
    now = time.time()
    if args.bulk:
        job, n, nt = args.bulk.split(":")
        ts = [all_.add(job, {"instance": f"10.1.{i}.10:8080", "namespace": "prod" if i % 4 else "staging",
                             "pod": f"{job}-{i}"}, once=True) for i in range(int(nt))]
        generate(all_, job, int(n), ts, seed=int(n), now=now)
        for t in ts:
            t.payload()
    else:
        load_fixture(all_, args.fixture, now)
    all_.write_config()
    ctl = ThreadingHTTPServer(("127.0.0.1", 0), ControlHandler)
    ctl.all = all_
    ctl.daemon_threads = True
    print(f"control {ctl.server_address[1]}", flush=True)
    print("ready", flush=True)
    try:
        ctl.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
