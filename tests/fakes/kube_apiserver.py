#!/usr/bin/env python3
"""Fake Kubernetes API server for lookout's tests (python3 stdlib only).

Serves pods, services, endpoints (core/v1), endpointslices (discovery.k8s.io/v1), nodes and ingresses
(networking.k8s.io/v1) from fixture objects:
  LIST   ?limit=&continue=  paged, with metadata.resourceVersion; label and field selectors
         (=, ==, !=, in, notin, exists, !exists);
  WATCH  ?watch=1&resourceVersion=RV&allowWatchBookmarks=true&timeoutSeconds=N  chunked JSON lines, a
         BOOKMARK every --bookmark-interval seconds; an RV older than the compaction point gets an ERROR
         event with code 410 (as the watch cache does);
  auth   --token-file: requests must carry "Authorization: Bearer <current token>" (401 otherwise);
  TLS    --cert/--key.
Control (no auth), POST /_control with a JSON body:
  {"op":"add"|"modify"|"delete", "object":{...}}   (kind taken from object.kind)
  {"op":"drop"}          close every open watch
  {"op":"compact"}       forget history: older resourceVersions get 410
  {"op":"restart", "seconds":S}  drop watches, compact, refuse requests (503) for S seconds
  {"op":"token", "token":T}      accept only T from now on, drop watches
  {"op":"bulk", "objects":[...]} add many objects at once
GET /_control/stats -> {"requests":[{"path","query"}...] (last 200), "lists":N, "watches":N}.
"""
import argparse
import base64
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

RESOURCES = {
    ("api/v1", "pods"): "Pod",
    ("api/v1", "services"): "Service",
    ("api/v1", "endpoints"): "Endpoints",
    ("api/v1", "nodes"): "Node",
    ("apis/discovery.k8s.io/v1", "endpointslices"): "EndpointSlice",
    ("apis/networking.k8s.io/v1", "ingresses"): "Ingress",
}
KIND_TO_RES = {v: k[1] for k, v in RESOURCES.items()}


class State:
    def __init__(self):
        self.lock = threading.Condition()
        self.rv = 100
        self.objects = {}  # (resource, ns, name) -> obj
        self.events = []   # (rv, resource, type, obj)
        self.compacted = 0
        self.generation = 0  # bumped to drop watches
        self.token = None
        self.down_until = 0.0
        self.requests = []
        self.lists = 0
        self.watches = 0

    def apply(self, op, obj):
        res = KIND_TO_RES[obj["kind"]]
        md = obj.setdefault("metadata", {})
        ns = md.get("namespace", "") if res != "nodes" else ""
        key = (res, ns, md["name"])
        self.rv += 1
        md["resourceVersion"] = str(self.rv)
        if op == "delete":
            old = self.objects.pop(key, None)
            if old is None:
                return
            old = json.loads(json.dumps(old))
            old["metadata"]["resourceVersion"] = str(self.rv)
            self.events.append((self.rv, res, "DELETED", old))
        else:
            typ = "MODIFIED" if key in self.objects else "ADDED"
            self.objects[key] = obj
            self.events.append((self.rv, res, typ, obj))
        if len(self.events) > 200000:
            self.compacted = self.events[100000][0]
            self.events = self.events[100000:]


S = State()


def parse_selector(s, field=False):
    reqs = []
    if not s:
        return reqs
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    for p in parts:
        p = p.strip()
        if not p:
            continue
        if " notin " in p or " in " in p:
            neg = " notin " in p
            k, vals = p.split(" notin " if neg else " in ", 1)
            vals = [v.strip() for v in vals.strip().strip("()").split(",")]
            reqs.append((k.strip(), "notin" if neg else "in", vals))
        elif "!=" in p:
            k, v = p.split("!=", 1)
            reqs.append((k.strip(), "!=", [v.strip()]))
        elif "==" in p or "=" in p:
            k, v = p.split("==", 1) if "==" in p else p.split("=", 1)
            reqs.append((k.strip(), "=", [v.strip()]))
        elif p.startswith("!"):
            reqs.append((p[1:].strip(), "!exists", []))
        else:
            reqs.append((p, "exists", []))
    return reqs


def field_value(obj, path):
    v = obj
    for part in path.split("."):
        if not isinstance(v, dict):
            return None
        v = v.get(part)
    return v if isinstance(v, str) else (None if v is None else str(v))


def matches(obj, label_reqs, field_reqs):
    labels = obj.get("metadata", {}).get("labels") or {}
    for k, op, vals in label_reqs:
        has, v = k in labels, labels.get(k)
        if op == "=" and v != vals[0]:
            return False
        if op == "!=" and has and v == vals[0]:
            return False
        if op == "in" and v not in vals:
            return False
        if op == "notin" and has and v in vals:
            return False
        if op == "exists" and not has:
            return False
        if op == "!exists" and has:
            return False
    for k, op, vals in field_reqs:
        v = field_value(obj, k) or ""
        if op == "=" and v != vals[0]:
            return False
        if op == "!=" and v == vals[0]:
            return False
    return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if os.environ.get("KUBE_FAKE_VERBOSE"):
            sys.stderr.write("kube_apiserver: " + fmt % args + "\n")

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def status(self, code, reason, msg):
        self.send_json(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": msg,
                              "reason": reason, "code": code})

    def do_POST(self):
        if not self.path.startswith("/_control"):
            return self.status(405, "MethodNotAllowed", "read-only fake")
        n = int(self.headers.get("Content-Length", "0"))
        req = json.loads(self.rfile.read(n) or b"{}")
        op = req.get("op")
        with S.lock:
            if op in ("add", "modify", "delete"):
                S.apply(op, req["object"])
            elif op == "bulk":
                for o in req["objects"]:
                    S.apply(req.get("each", "add"), o)
            elif op == "drop":
                S.generation += 1
            elif op == "compact":
                S.compacted = S.rv + 1
                S.events = []
            elif op == "restart":
                S.generation += 1
                S.compacted = S.rv + 1
                S.events = []
                S.down_until = time.time() + float(req.get("seconds", 1))
            elif op == "token":
                S.token = req["token"]
                S.generation += 1
            else:
                return self.status(400, "BadRequest", "unknown op %r" % op)
            S.lock.notify_all()
            rv = S.rv
        self.send_json(200, {"ok": True, "resourceVersion": str(rv)})

    def do_GET(self):
        u = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        if u.path == "/_control/stats":
            with S.lock:
                return self.send_json(200, {"requests": S.requests[-200:], "lists": S.lists, "watches": S.watches,
                                            "resourceVersion": str(S.rv)})
        if time.time() < S.down_until:
            return self.status(503, "ServiceUnavailable", "restarting")
        if S.token is not None and self.headers.get("Authorization") != "Bearer " + S.token:
            return self.status(401, "Unauthorized", "Unauthorized")
        parts = u.path.strip("/").split("/")
        ns = ""
        if len(parts) >= 3 and parts[0] == "api":
            group, rest = "api/v1", parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            group, rest = "/".join(parts[:3]), parts[3:]
        else:
            return self.status(404, "NotFound", "the server could not find the requested resource")
        if len(rest) == 3 and rest[0] == "namespaces":
            ns, res = rest[1], rest[2]
        elif len(rest) == 1:
            res = rest[0]
        else:
            return self.status(404, "NotFound", "the server could not find the requested resource")
        if (group, res) not in RESOURCES:
            return self.status(404, "NotFound", "the server could not find the requested resource")
        try:
            lreq = parse_selector(q.get("labelSelector", ""))
            freq = parse_selector(q.get("fieldSelector", ""), field=True)
        except ValueError:
            return self.status(400, "BadRequest", "invalid selector")
        with S.lock:
            S.requests.append({"path": u.path, "query": q})
        if q.get("watch") in ("1", "true"):
            return self.watch(res, ns, lreq, freq, q)
        return self.list(res, ns, lreq, freq, q)

    def list(self, res, ns, lreq, freq, q):
        limit = int(q.get("limit", "0") or 0)
        with S.lock:
            S.lists += 1
            if "continue" in q:
                try:
                    crv, off = base64.b64decode(q["continue"]).decode().split(":")
                    crv, off = int(crv), int(off)
                except Exception:
                    return self.status(400, "BadRequest", "invalid continue token")
                if crv < S.compacted:
                    return self.status(410, "Expired", "The provided continue parameter is too old")
            else:
                crv, off = S.rv, 0
            items = [o for (r, n, _), o in sorted(S.objects.items()) if r == res and (not ns or n == ns)
                     and matches(o, lreq, freq)]
            rv = S.rv
        page = items[off:off + limit] if limit else items[off:]
        meta = {"resourceVersion": str(crv if "continue" in q else rv)}
        if limit and off + limit < len(items):
            meta["continue"] = base64.b64encode(("%d:%d" % (crv, off + limit)).encode()).decode()
        kind = RESOURCES[[k for k in RESOURCES if k[1] == res][0]]
        self.send_json(200, {"kind": kind + "List", "apiVersion": "v1", "metadata": meta, "items": page})

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, res, ns, lreq, freq, q):
        try:
            since = int(q.get("resourceVersion", "0") or 0)
        except ValueError:
            return self.status(400, "BadRequest", "bad resourceVersion")
        timeout = float(q.get("timeoutSeconds", "300"))
        bookmarks = q.get("allowWatchBookmarks") == "true"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        end = time.time() + timeout
        last_bm = time.time()
        with S.lock:
            S.watches += 1
            gen = S.generation
            if since < S.compacted:
                ev = {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                                  "message": "too old resource version: %d (%d)" % (since, S.compacted),
                                                  "reason": "Expired", "code": 410}}
                try:
                    self.chunk(json.dumps(ev).encode() + b"\n")
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass
                return
        try:
            while True:
                out = []
                with S.lock:
                    if gen != S.generation:
                        break
                    for rv, r, typ, obj in S.events:
                        if rv <= since or r != res:
                            continue
                        md = obj.get("metadata", {})
                        if ns and md.get("namespace") != ns:
                            continue
                        if matches(obj, lreq, freq):
                            out.append(json.dumps({"type": typ, "object": obj}).encode() + b"\n")
                    since = max(since, S.rv)
                    if not out:
                        now = time.time()
                        if now >= end:
                            break
                        if bookmarks and now - last_bm >= ARGS.bookmark_interval:
                            kind = RESOURCES[[k for k in RESOURCES if k[1] == res][0]]
                            out.append(json.dumps({"type": "BOOKMARK", "object": {
                                "kind": kind, "apiVersion": "v1",
                                "metadata": {"resourceVersion": str(S.rv)}}}).encode() + b"\n")
                            last_bm = now
                        else:
                            S.lock.wait(timeout=min(0.5, max(0.01, end - now)))
                            continue
                # Events are written outside the lock; several per chunk, and an event may be split across
                # chunks (--split-events) so the client's line reassembly is exercised.
                data = b"".join(out)
                if ARGS.split_events and len(data) > 10:
                    self.chunk(data[:7])
                    self.chunk(data[7:])
                else:
                    self.chunk(data)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            pass
        self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, BrokenPipeError)):
            super().handle_error(request, client_address)


def load_fixtures(path):
    with open(path) as f:
        data = json.load(f)
    items = data["items"] if isinstance(data, dict) else data
    with S.lock:
        for o in items:
            S.apply("add", o)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", help="write the bound port here")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--token", help="required bearer token")
    ap.add_argument("--fixtures", action="append", default=[])
    ap.add_argument("--bookmark-interval", type=float, default=5.0)
    ap.add_argument("--split-events", action="store_true")
    ARGS = ap.parse_args()
    S.token = ARGS.token
    for f in ARGS.fixtures:
        load_fixtures(f)
    srv = Server(("127.0.0.1", ARGS.port), Handler)
    if ARGS.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.cert, ARGS.key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    if ARGS.port_file:
        with open(ARGS.port_file + ".tmp", "w") as f:
            f.write(str(srv.server_address[1]))
        os.rename(ARGS.port_file + ".tmp", ARGS.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
