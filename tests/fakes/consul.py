#!/usr/bin/env python3
"""A fake Consul agent for lookout's consul_sd tests (python3 standard library only).

Serves the endpoints Prometheus' Consul discovery uses, with real blocking-query semantics:
  GET /v1/agent/self                 {"Config": {"Datacenter": ..., "NodeName": ...}, "Member": {...}}
  GET /v1/catalog/services           {"name": [tags...]} (node-meta filtered), X-Consul-Index
  GET /v1/health/service/NAME        [{"Node": {...}, "Service": {...}, "Checks": [...]}] (tag=, node-meta=)
A request with ?index=N where N >= the current index of what it reads is held until that index changes or
`wait` (e.g. 120000ms, 2m, 10s; default 5m, at most 10m) expires; the answer always carries X-Consul-Index.
Tags match case-insensitively (as Consul does); node-meta=key:value filters on Node.Meta.

State comes from a fixture shaped like real Consul data:
  {"datacenter": "dc1", "node_name": "agent-1", "token": null,
   "services": {"web": [<health entry>, ...], ...}}
and is controlled at runtime:
  POST /_test/state      body = a new state (same shape) or {"fixture": "path.json"}; indexes of what changed
                         move forward, and held requests for it return
  POST /_test/restart    the agent "restarts": indexes start again from a small number (they go backwards)
  POST /_test/delay      {"ms": N} delay every API answer by N ms
  POST /_test/malformed  {"on": true} API answers carry broken JSON
  POST /_test/status     {"code": 500} API answers with this status (0 = normal)
  POST /_test/generate   {"services": S, "instances": I} synthesize S services x I instances
  POST /_test/churn      {"fraction": 0.01} flip the health of that fraction of instances
  GET  /_test/requests   the request lines seen (path?query and X-Consul-Token), for assertions
  GET  /_test/stats      {"requests": N, "held": N}
Usage: consul.py [--port N] [--port-file FILE] [--fixture FILE]
"""
import argparse
import copy
import json
import random
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


class State:
    def __init__(self):
        self.cv = threading.Condition()
        self.dc = "dc1"
        self.node_name = "agent-1"
        self.token = None
        self.services = {}  # name -> list of entries
        self.index = 10  # raft index
        self.svc_index = {}  # name -> index of its last change
        self.catalog_index = 10
        self.delay_ms = 0
        self.malformed = False
        self.status = 0
        self.requests = []
        self.held = 0
        self.count = 0

    def catalog(self, node_meta):
        out = {}
        for name, entries in self.services.items():
            tags = []
            seen = False
            for e in entries:
                if not meta_match(e, node_meta):
                    continue
                seen = True
                for t in e.get("Service", {}).get("Tags") or []:
                    if t not in tags:
                        tags.append(t)
            if seen:
                out[name] = tags
        return out

    def set_state(self, st):
        """Replace the state; move the indexes of what changed (caller holds cv)."""
        new_services = st.get("services", {}) or {}
        old_catalog = self.catalog([])
        changed = [n for n in set(self.services) | set(new_services)
                   if json.dumps(self.services.get(n), sort_keys=True) != json.dumps(new_services.get(n), sort_keys=True)]
        self.dc = st.get("datacenter", self.dc)
        self.node_name = st.get("node_name", self.node_name)
        if "token" in st:
            self.token = st["token"]
        self.services = copy.deepcopy(new_services)
        if changed:
            self.index += 1
            for n in changed:
                self.svc_index[n] = self.index
        if self.catalog([]) != old_catalog:
            self.catalog_index = self.index
        self.cv.notify_all()

    def restart(self):
        """Indexes start again low (as after an agent restart with a fresh data dir)."""
        self.index = 2
        self.catalog_index = 2
        for n in self.services:
            self.svc_index[n] = 2
        self.cv.notify_all()


STATE = State()


def meta_match(entry, node_meta):
    meta = (entry.get("Node") or {}).get("Meta") or {}
    for kv in node_meta:
        k, _, v = kv.partition(":")
        if meta.get(k) != v:
            return False
    return True


def parse_wait(s):
    if not s:
        return 300.0
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", s)
    if not m:
        return 300.0
    n = int(m.group(1))
    unit = m.group(2) or "s"
    secs = {"ms": n / 1000.0, "s": n, "m": n * 60, "h": n * 3600}[unit]
    return min(secs, 600.0)


def entry(node, addr, svc, port, tags=None, status="passing", svc_addr="", meta=None, node_meta=None, svc_id=None,
          tagged=None):
    return {
        "Node": {"ID": "00000000-0000-0000-0000-%012d" % (abs(hash(node)) % 10**12), "Node": node, "Address": addr,
                 "Datacenter": STATE.dc, "TaggedAddresses": tagged or {"lan": addr, "wan": addr},
                 "Meta": node_meta or {"consul-network-segment": ""}, "CreateIndex": 5, "ModifyIndex": 5},
        "Service": {"ID": svc_id or "%s-%s" % (svc, node), "Service": svc, "Tags": tags or [], "Address": svc_addr,
                    "Meta": meta or {}, "Port": port, "Weights": {"Passing": 1, "Warning": 1},
                    "EnableTagOverride": False, "Proxy": {}, "Connect": {}, "CreateIndex": 6, "ModifyIndex": 6},
        "Checks": [
            {"Node": node, "CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "passing", "Notes": "",
             "Output": "Agent alive and reachable", "ServiceID": "", "ServiceName": "", "ServiceTags": [],
             "Type": "", "CreateIndex": 5, "ModifyIndex": 5},
            {"Node": node, "CheckID": "service:%s" % (svc_id or "%s-%s" % (svc, node)), "Name": "Service check",
             "Status": status, "Notes": "", "Output": "", "ServiceID": svc_id or "%s-%s" % (svc, node),
             "ServiceName": svc, "ServiceTags": tags or [], "Type": "http", "CreateIndex": 6, "ModifyIndex": 6},
        ],
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body, index=None, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if index is not None:
            self.send_header("X-Consul-Index", str(index))
            self.send_header("X-Consul-Knownleader", "true")
            self.send_header("X-Consul-Lastcontact", "0")
        self.end_headers()
        self.wfile.write(data)

    def read_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b"{}"
        return json.loads(raw or b"{}")

    def do_POST(self):
        path = urlsplit(self.path).path
        try:
            body = self.read_json()
        except ValueError:
            return self.reply(400, {"error": "bad json"})
        with STATE.cv:
            if path == "/_test/state":
                if "fixture" in body:
                    with open(body["fixture"]) as f:
                        body = json.load(f)
                STATE.set_state(body)
            elif path == "/_test/restart":
                STATE.restart()
            elif path == "/_test/delay":
                STATE.delay_ms = int(body.get("ms", 0))
            elif path == "/_test/malformed":
                STATE.malformed = bool(body.get("on"))
            elif path == "/_test/status":
                STATE.status = int(body.get("code", 0))
            elif path == "/_test/generate":
                svcs = {}
                for s in range(int(body.get("services", 1))):
                    name = "svc-%04d" % s
                    svcs[name] = [entry("node-%04d-%02d" % (s, i), "10.%d.%d.%d" % (s // 250, s % 250, i + 1), name,
                                        8080, tags=["gen"]) for i in range(int(body.get("instances", 1)))]
                STATE.set_state({"services": svcs})
            elif path == "/_test/churn":
                all_entries = [(n, e) for n, es in STATE.services.items() for e in es]
                k = max(1, int(len(all_entries) * float(body.get("fraction", 0.01))))
                changed = set()
                for n, e in random.sample(all_entries, min(k, len(all_entries))):
                    c = e["Checks"][-1]
                    c["Status"] = "critical" if c["Status"] == "passing" else "passing"
                    changed.add(n)
                STATE.index += 1
                for n in changed:
                    STATE.svc_index[n] = STATE.index
                STATE.cv.notify_all()
            else:
                return self.reply(404, {"error": "not found"})
            idx = STATE.index
        self.reply(200, {"index": idx})

    def do_GET(self):
        u = urlsplit(self.path)
        q = parse_qs(u.query, keep_blank_values=True)
        path = u.path
        if path == "/_test/requests":
            with STATE.cv:
                return self.reply(200, STATE.requests[-2000:])
        if path == "/_test/stats":
            with STATE.cv:
                return self.reply(200, {"requests": STATE.count, "held": STATE.held, "index": STATE.index})
        with STATE.cv:
            STATE.count += 1
            STATE.requests.append({"path": path, "query": u.query, "token": self.headers.get("X-Consul-Token")})
            if len(STATE.requests) > 5000:
                del STATE.requests[:1000]
            token = STATE.token
        if token and self.headers.get("X-Consul-Token") != token:
            return self.reply(403, b"ACL not found", ctype="text/plain")

        if path == "/v1/agent/self":
            return self.answer(lambda: ({"Config": {"Datacenter": STATE.dc, "NodeName": STATE.node_name,
                                                    "Version": "1.15.2"},
                                         "Member": {"Name": STATE.node_name, "Addr": "127.0.0.1"}}, None), None, 0)
        node_meta = q.get("node-meta", [])
        if path == "/v1/catalog/services":
            return self.answer(lambda: (STATE.catalog(node_meta), STATE.catalog_index),
                               lambda: STATE.catalog_index, self.index_param(q), parse_wait((q.get("wait") or [""])[0]))
        m = re.fullmatch(r"/v1/health/service/(.+)", path)
        if m:
            name = unquote(m.group(1))
            tags = [t.lower() for t in q.get("tag", [])]

            def current():
                return STATE.svc_index.get(name, STATE.catalog_index)

            def data():
                out = []
                for e in STATE.services.get(name, []):
                    etags = [t.lower() for t in (e.get("Service", {}).get("Tags") or [])]
                    if all(t in etags for t in tags) and meta_match(e, node_meta):
                        out.append(e)
                return out, current()
            return self.answer(data, current, self.index_param(q), parse_wait((q.get("wait") or [""])[0]))
        return self.reply(404, b"Invalid URL path: not a recognized HTTP API endpoint", ctype="text/plain")

    @staticmethod
    def index_param(q):
        try:
            return int((q.get("index") or ["0"])[0])
        except ValueError:
            return 0

    def answer(self, data_fn, index_fn, wait_index, wait_s=300.0):
        with STATE.cv:
            if index_fn is not None and wait_index > 0:
                deadline = time.monotonic() + wait_s
                STATE.held += 1
                try:
                    while index_fn() == wait_index:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        STATE.cv.wait(left)
                finally:
                    STATE.held -= 1
            body, idx = data_fn()
            delay, malformed, status = STATE.delay_ms, STATE.malformed, STATE.status
        if delay:
            time.sleep(delay / 1000.0)
        if status:
            return self.reply(status, b"rpc error: injected failure", ctype="text/plain")
        if malformed:
            return self.reply(200, b'{"web": ["a", ', index=idx)
        self.reply(200, body, index=idx if idx is not None else None)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        # clients give up on held blocking queries (timeouts, restarts): not worth a traceback
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--fixture")
    a = ap.parse_args()
    if a.fixture:
        with open(a.fixture) as f:
            with STATE.cv:
                STATE.set_state(json.load(f))
    srv = Server(("127.0.0.1", a.port), Handler)
    port = srv.server_address[1]
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(str(port))
        import os
        os.rename(a.port_file + ".tmp", a.port_file)
    print(port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
