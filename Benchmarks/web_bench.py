#!/usr/bin/env python3
"""till-web figures (docs/web.md, issue 17), in one run:

  python3 Benchmarks/web_bench.py [--bin DIR] [--scans N] [--prints N] [--idle SECONDS]

- scan -> browser latency: tilld --demo's sim-scanner is fed `simulate` scans one at a time;
  one subscriber reads them on tilld's Unix socket, one on till-web's WebSocket (a paired
  client in Python) and one is a real page in headless Chromium (Debian's, when installed:
  paired, subscribed over the WebSocket, stamping each scan with performance.timeOrigin +
  performance.now(), which Chromium gives to 0.1 ms), all timed from the same moment the scan
  was sent, p50/p99 side by side;
- print_receipt -> last byte: Odoo's `default_printer_action` with a 512-pixel-wide JPEG
  receipt, timed to the moment its cut arrives at a loopback TCP printer (escpos_bench.py's),
  each picture different (print_retry_seconds = 0) so none is taken for a retry;
- till-web idle: resident memory, CPU and context switches of its threads over N seconds.

Release builds from DIR (default .build/release: `swift build -c release --product tilld`,
`--product till-web`, `--product tillctl`). Pillow draws the JPEGs, in escpos_bench.py's
virtualenv, never in the project.
"""
import argparse
import base64
import http.client
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import Lines, connect, percentile, proc_stat  # noqa: E402
from escpos_bench import LoopbackPrinter, venv_python  # noqa: E402

ORIGIN = "https://pos.example.com"


class WebSocket:
    """The smallest client of RFC 6455 a measurement needs: text frames, masked as a client's."""

    def __init__(self, port, path, origin=ORIGIN):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
                           % (path, port, "Origin: %s\r\n" % origin if origin else "")).encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError("no WebSocket: %r" % head)

    def _take(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def receive(self):
        while True:
            first, second = self._take(2)
            length = second & 0x7F
            if length == 126:
                length = int.from_bytes(self._take(2), "big")
            elif length == 127:
                length = int.from_bytes(self._take(8), "big")
            payload = self._take(length)
            if first & 0x0F == 1:
                return payload
            if first & 0x0F == 8:
                raise EOFError

    def send(self, text):
        payload = text.encode()
        mask = b"\x01\x02\x03\x04"
        if len(payload) < 126:
            header = bytes([0x81, 0x80 | len(payload)])
        elif len(payload) < 1 << 16:
            header = bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big")
        else:
            header = bytes([0x81, 0x80 | 127]) + len(payload).to_bytes(8, "big")
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def post(port, path, body, origin=ORIGIN):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", path, body=json.dumps(body), headers={"Origin": origin, "Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data


def start(binaries, work, tilld_config="", web_config="", origins=(ORIGIN,)):
    with open(os.path.join(work, "tilld.toml"), "w") as f:
        f.write(tilld_config)
    with open(os.path.join(work, "till-web.toml"), "w") as f:
        f.write('[web]\nlisten = "127.0.0.1:0"\n' + web_config)
    sock = os.path.join(work, "tilld.sock")
    tilld = subprocess.Popen([os.path.join(binaries, "tilld"), "--socket", sock, "--state-dir", os.path.join(work, "state"),
                              "--config", os.path.join(work, "tilld.toml"), "--log-level", "warning"] + (["--demo"] if not tilld_config else []),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    connect(sock).close()
    port = free_port()
    web = subprocess.Popen([os.path.join(binaries, "till-web"), "--config", os.path.join(work, "till-web.toml"), "--listen", "127.0.0.1:%d" % port,
                            "--socket", sock, "--state-dir", os.path.join(work, "web"), "--log-level", "warning"]
                           + [argument for origin in origins for argument in ("--origin", origin)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)
    return tilld, web, sock, port


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def stop(*procs):
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=30)


BROWSER_PAGE = b"""<!doctype html><html><body><script>
const p = new URLSearchParams(location.search);
window.got = {}; window.ready = false; window.failure = null;
(async () => {
  try {
    const r = await fetch(p.get("bridge") + "/pair", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({code: p.get("code")})});
    const answer = await r.json();
    const ws = new WebSocket(p.get("bridge").replace(/^http/, "ws") + "/ws?token=" + answer.token);
    ws.onmessage = (m) => {
      const now = performance.timeOrigin + performance.now();
      const msg = JSON.parse(m.data);
      if (msg.type === "hello") ws.send(JSON.stringify({id: "s", op: "subscribe", topics: ["scanner.data"]}));
      else if (msg.type === "reply") window.ready = true;
      else if (msg.type === "event") window.got[msg.data.text] = now;
    };
  } catch (error) { window.failure = String(error); }
})();
</script></body></html>"""


class Browser:
    """Headless Chromium driven over its DevTools WebSocket: a page opened, expressions evaluated."""

    def __init__(self, work):
        executable = shutil.which("chromium") or shutil.which("chromium-browser")
        if not executable:
            raise FileNotFoundError("no chromium (scripts/setup.sh test installs it)")
        profile = os.path.join(work, "chromium")
        self.process = subprocess.Popen([executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                         "--no-first-run", "--disable-extensions", "--disable-background-networking",
                                         "--remote-debugging-port=0", "--user-data-dir=" + profile, "about:blank"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while True:
            try:
                with open(os.path.join(profile, "DevToolsActivePort")) as f:
                    port, path = f.read().split("\n")[:2]
                break
            except (OSError, ValueError):
                if time.time() > deadline:
                    raise RuntimeError("chromium did not open its DevTools port")
                time.sleep(0.05)
        self.devtools = WebSocket(int(port), path, origin=None)
        self.next_id = 0
        self.session = None

    def call(self, method, params=None, page=True):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if page and self.session:
            message["sessionId"] = self.session
        self.devtools.send(json.dumps(message))
        while True:
            reply = json.loads(self.devtools.receive())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError("%s: %s" % (method, reply["error"]))
                return reply.get("result", {})

    def open(self, url):
        target = self.call("Target.createTarget", {"url": url}, page=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True}, page=False)["sessionId"]

    def evaluate(self, expression):
        return self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}).get("result", {}).get("value")

    def close(self):
        self.process.kill()
        self.process.wait()


def serve_page(body):
    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def pairing_code(binaries, work, origin):
    out = subprocess.run([os.path.join(binaries, "tillctl"), "web", "pair", origin, "--state-dir", os.path.join(work, "web")],
                         capture_output=True, text=True, check=True).stdout
    return out.split("\n")[0].split()[-1]


def scan_latency(binaries, scans, browser=True):
    with tempfile.TemporaryDirectory() as work:
        pages = serve_page(BROWSER_PAGE)
        page_origin = "http://127.0.0.1:%d" % pages.server_address[1]
        tilld, web, sock, port = start(binaries, work, origins=(ORIGIN, page_origin))
        chromium = None
        try:
            if browser:
                try:
                    chromium = Browser(work)
                except FileNotFoundError as missing:
                    print("(no browser figure: %s)" % missing)
            if chromium:
                chromium.open("%s/?bridge=http://127.0.0.1:%d&code=%s" % (page_origin, port, pairing_code(binaries, work, page_origin)))
                deadline = time.time() + 60
                while chromium.evaluate("window.ready") is not True:
                    if time.time() > deadline:
                        raise RuntimeError("the page never subscribed: %s" % chromium.evaluate("window.failure"))
                    time.sleep(0.1)
            code = pairing_code(binaries, work, ORIGIN)
            status, body = post(port, "/pair", {"code": code})
            token = json.loads(body)["token"]
            page = WebSocket(port, "/ws?token=" + token)
            page.receive()  # hello
            page.send(json.dumps({"id": "s", "op": "subscribe", "topics": ["scanner.data"]}))
            page.receive()
            unix = connect(sock)
            unix_lines = Lines(unix)
            unix_lines.next()
            unix.sendall(b'{"id":"s","op":"subscribe","topics":["scanner.data"]}\n')
            unix_lines.next()
            arrivals = {"unix": {}, "websocket": {}}

            def read(kind, next_line):
                for _ in range(scans):
                    line = next_line()
                    now = time.perf_counter()
                    arrivals[kind][json.loads(line)["data"]["text"]] = now

            readers = [threading.Thread(target=read, args=("unix", unix_lines.next)), threading.Thread(target=read, args=("websocket", page.receive))]
            for r in readers:
                r.start()
            feeder = connect(sock)
            feeder_lines = Lines(feeder)
            feeder_lines.next()
            sent = {}
            sent_wall = {}
            for i in range(scans):
                text = "SCAN%06d" % i
                sent_wall[text] = time.time()
                sent[text] = time.perf_counter()
                feeder.sendall((json.dumps({"id": i, "op": "simulate", "device": "sim-scanner", "data": {"text": text}}) + "\n").encode())
                feeder_lines.next()
                time.sleep(0.005)
            for r in readers:
                r.join(timeout=60)
            result = {kind: [(arrivals[kind][t] - sent[t]) * 1e6 for t in sent if t in arrivals[kind]] for kind in arrivals}
            if chromium:
                time.sleep(0.5)
                got = json.loads(chromium.evaluate("JSON.stringify(window.got)"))
                result["chromium"] = [(got[t] / 1e3 - sent_wall[t]) * 1e6 for t in sent_wall if t in got]
            return result
        finally:
            if chromium:
                chromium.close()
            pages.shutdown()
            stop(web, tilld)


def receipt_jpegs(count):
    """`count` different 512-pixel-wide receipts as base64 JPEGs (Pillow, in the bench venv)."""
    script = r'''
import base64, io, json, sys
from PIL import Image, ImageDraw
out = []
for n in range(int(sys.argv[1])):
    image = Image.new("L", (512, 900), 255)
    draw = ImageDraw.Draw(image)
    for row in range(30):
        draw.text((20, 20 + row * 28), "Item %d of receipt %d ........ %d.50" % (row, n, row), fill=0)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    out.append(base64.b64encode(buffer.getvalue()).decode())
print(json.dumps(out))
'''
    return json.loads(subprocess.run([venv_python(), "-c", script, str(count)], capture_output=True, text=True, check=True).stdout)


def print_receipt_latency(binaries, prints):
    printer = LoopbackPrinter()
    printer.start()
    pictures = receipt_jpegs(prints)
    with tempfile.TemporaryDirectory() as work:
        config = '[[device]]\nname = "net"\nrole = "printer"\ndriver = "escpos"\nhost = "127.0.0.1"\nport = %d\n' % printer.port
        tilld, web, _, port = start(binaries, work, tilld_config=config, web_config="print_retry_seconds = 0\n")
        try:
            time.sleep(1.0)  # the printer connected and answered its status
            latencies = []
            for picture in pictures:
                with printer.cond:
                    before = len(printer.arrivals)
                begin = time.perf_counter()
                status, body = post(port, "/hw_proxy/default_printer_action",
                                     {"jsonrpc": "2.0", "method": "call", "id": 1, "params": {"data": {"action": "print_receipt", "receipt": picture}}})
                if status != 200 or json.loads(body).get("result") is not True:
                    raise RuntimeError("print_receipt failed: %s %r" % (status, body[:200]))
                with printer.cond:
                    if not printer.cond.wait_for(lambda: len(printer.arrivals) > before, timeout=20):
                        raise RuntimeError("a receipt never reached the loopback printer")
                    latencies.append((printer.arrivals[-1] - begin) * 1e3)
                time.sleep(0.05)
            return latencies, len(pictures[0]) * 3 // 4
        finally:
            stop(web, tilld)


def idle(binaries, seconds):
    with tempfile.TemporaryDirectory() as work:
        tilld, web, _, _ = start(binaries, work)
        try:
            time.sleep(3)
            cpu0, switches0, _ = proc_stat(web.pid)
            time.sleep(seconds)
            cpu1, switches1, memory = proc_stat(web.pid)
            return {"seconds": seconds, "rss_mb": memory["VmRSS"], "cpu_seconds": cpu1 - cpu0, "threads": len(switches1),
                    "context_switches": sum(switches1[t] - switches0[t] for t in switches1 if t in switches0)}
        finally:
            stop(web, tilld)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=os.path.join(os.path.dirname(HERE), ".build", "release"))
    parser.add_argument("--scans", type=int, default=1000)
    parser.add_argument("--prints", type=int, default=30)
    parser.add_argument("--idle", type=int, default=10)
    args = parser.parse_args()

    scans = scan_latency(args.bin, args.scans)
    print("scan -> subscriber latency (µs), %d scans        p50       p99" % args.scans)
    names = {"unix": "tilld's Unix socket", "websocket": "till-web's WebSocket", "chromium": "a page in Chromium (WebSocket)"}
    for kind in ("unix", "websocket", "chromium"):
        if kind in scans:
            values = scans[kind]
            print("  %-32s %9.1f %9.1f   (%d received)" % (names[kind], percentile(values, 50), percentile(values, 99), len(values)))
    latencies, size = print_receipt_latency(args.bin, args.prints)
    print("print_receipt (512-px JPEG, ~%d KB) -> last byte at a loopback printer (ms), %d prints: p50 %.2f  p90 %.2f  max %.2f"
          % (size // 1024, len(latencies), percentile(latencies, 50), percentile(latencies, 90), max(latencies)))
    quiet = idle(args.bin, args.idle)
    print("till-web idle %d s: RSS %.1f MB, CPU %.3f s, %d context switches over %d threads"
          % (quiet["seconds"], quiet["rss_mb"], quiet["cpu_seconds"], quiet["context_switches"], quiet["threads"]))


if __name__ == "__main__":
    main()
