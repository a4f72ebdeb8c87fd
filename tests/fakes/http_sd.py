#!/usr/bin/env python3
"""A controllable HTTP SD endpoint (python3 stdlib): GET /targets answers with the configured status,
Content-Type and body; POST /_test/set {"status": 200, "content_type": "application/json", "body": "...",
"delay_ms": 0} changes them; GET /_test/headers returns the request headers of the last GET /targets.
Usage: http_sd.py [--port N] [--port-file FILE]"""
import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
CONF = {"status": 200, "content_type": "application/json", "body": "[]", "delay_ms": 0}
LAST = {}


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, status, ctype, body):
        data = body.encode()
        self.send_response(status)
        if ctype is not None:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_test/headers":
            with LOCK:
                return self.send(200, "application/json", json.dumps(LAST))
        with LOCK:
            c = dict(CONF)
            LAST.clear()
            LAST.update({k: v for k, v in self.headers.items()})
        if c["delay_ms"]:
            time.sleep(c["delay_ms"] / 1000.0)
        self.send(c["status"], c["content_type"], c["body"])

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n) or b"{}")
        with LOCK:
            CONF.update(body)
        self.send(200, "application/json", "{}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    a = ap.parse_args()
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), H)
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(str(srv.server_address[1]))
        os.rename(a.port_file + ".tmp", a.port_file)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
