#!/usr/bin/env python3
"""A Standard Webhooks receiver for till-crm's tests and benchmarks, written apart from
till-crm's own code so it checks the signatures independently.

    webhook_receiver.py PORT_FILE LOG_FILE SECRET [--delay-ms N] [--fail-first N] [--port N]

Listens on 127.0.0.1 (--port, else a free port; written to PORT_FILE), and for each POST appends one JSON
line to LOG_FILE: the webhook-id, whether the signature verified, the entry's type, the time it
arrived (ms) and the answer given. Answers 204 (after --delay-ms), or 503 to the first
--fail-first requests."""
import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port_file, log_file, secret = sys.argv[1], sys.argv[2], sys.argv[3]
delay = int(sys.argv[sys.argv.index("--delay-ms") + 1]) / 1000 if "--delay-ms" in sys.argv else 0
port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 0
fail_first = int(sys.argv[sys.argv.index("--fail-first") + 1]) if "--fail-first" in sys.argv else 0
key = base64.b64decode(secret.removeprefix("whsec_"))
lock = threading.Lock()
log = open(log_file, "a", buffering=1)
count = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        global count
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        entry_id = self.headers.get("webhook-id", "")
        stamp = self.headers.get("webhook-timestamp", "0")
        expected = base64.b64encode(hmac.new(key, f"{entry_id}.{stamp}.".encode() + body, hashlib.sha256).digest()).decode()
        signatures = [s.split(",", 1)[1] for s in self.headers.get("webhook-signature", "").split() if s.startswith("v1,")]
        valid = any(hmac.compare_digest(expected, s) for s in signatures) and abs(time.time() - int(stamp)) <= 300
        try:
            entry = json.loads(body)
        except ValueError:
            entry = {}
        with lock:
            count += 1
            status = 503 if count <= fail_first else (204 if valid else 401)
        if delay:
            time.sleep(delay)
        with lock:
            log.write(json.dumps({"id": entry_id, "valid": valid, "type": entry.get("type"), "at_ms": int(time.time() * 1000),
                                  "status": status, "customer": (entry.get("data") or {}).get("customer"),
                                  "source": (entry.get("data") or {}).get("source")}) + "\n")
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()


ThreadingHTTPServer.allow_reuse_address = True
server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
server.daemon_threads = True
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
