#!/usr/bin/env python3
"""ESC/POS figures for the printer issue, side by side with python-escpos in the same run.

  python3 Benchmarks/escpos_bench.py [--tilld BIN] [--bench BIN] [--prints N]

- encoding a 40-line receipt with a QR code: tilld's encoder (till-escpos-bench) vs
  python-escpos building the same receipt on its Dummy printer;
- rasterising a 576-pixel-wide logo (PNG decode, dither, GS v 0): tilld vs python-escpos + Pillow;
- bytes per receipt, both;
- time from `print` on tilld's socket to the job's last byte arriving at a loopback TCP printer
  (a listener in this script), median and p90 over N prints.

python-escpos and Pillow are installed here only, in a virtualenv (/tmp/escpos-bench-venv),
never into the project. The machine is shared and noisy: each figure is a median, and the
ratios are what to compare.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOGO = os.path.join(ROOT, "Tests/TillESCPOSTests/Fixtures/logo-576x160.png")
VENV = "/tmp/escpos-bench-venv"

PYTHON_SIDE = r'''
import json, sys, timeit
from escpos.printer import Dummy
from PIL import Image

def receipt():
    p = Dummy(profile="TM-T20II")
    p.set(align="center", double_height=True, double_width=True, bold=True)
    p.text("M&M Coffee\n")
    p.set(align="center", normal_textsize=True, bold=False)
    p.text("12 Market Street, Springfield\n")
    p.set(align="left")
    p.text("-" * 48 + "\n")
    for n in range(1, 35):
        name, price = "Item number %d oat flat white" % n, "%d.50" % n
        p.text(name.ljust(48 - len(price) - 1) + " " + price + "\n")
    p.text("-" * 48 + "\n")
    p.set(bold=True)
    p.text("TOTAL".ljust(48 - 11) + " 612.00 EUR\n")
    p.set(align="center", bold=False)
    p.text("Thank you, see you soon!\n")
    p.qr("https://example.com/r/2026-11-27/0001", native=True, size=6)
    p.cut(mode="PART")
    return p.output

def logo():
    p = Dummy(profile="TM-T20II")
    p.image(Image.open(sys.argv[1]), impl="bitImageRaster", center=True)
    return p.output

def median_time(f, number):
    return sorted(t / number for t in timeit.repeat(f, number=number, repeat=15))[7]

print(json.dumps({"encode_seconds": median_time(receipt, 20), "receipt_bytes": len(receipt()),
                  "raster_seconds": median_time(logo, 5), "logo_bytes": len(logo())}))
'''


def venv_python():
    python = os.path.join(VENV, "bin/python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "python-escpos", "pillow"], check=True)
    return python


def build(product):
    subprocess.run(["swift", "build", "-c", "release", "--product", product], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return os.path.join(ROOT, ".build/release", product)


def medians(runs):
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def encoding(bench, processes=5):
    """Each side in several processes, alternating (one process's figure depends on where its
    memory landed: runs of the same binary differ by up to 2x here), the median of their medians."""
    ours, theirs = [], []
    python = venv_python()
    for _ in range(processes):
        ours.append(json.loads(subprocess.run([bench, LOGO], check=True, capture_output=True, text=True).stdout))
        run = subprocess.run([python, "-c", PYTHON_SIDE, LOGO], capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit("python-escpos side failed:\n" + run.stderr)
        theirs.append(json.loads(run.stdout))
    return medians(ours), medians(theirs)


class LoopbackPrinter(threading.Thread):
    """A network printer on 127.0.0.1: notes when each job's last bytes (the cut) arrive, and
    answers DLE EOT with 'all clear'."""

    def __init__(self):
        super().__init__(daemon=True)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.arrivals = []
        self.cond = threading.Condition()

    def run(self):
        connection, _ = self.listener.accept()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tail = b""
        while True:
            data = connection.recv(1 << 16)
            if not data:
                return
            now = time.perf_counter()
            tail = (tail + data)[-64:]
            queries = data.count(b"\x10\x04")
            if queries:
                connection.sendall(b"\x12" * queries)
            if tail.endswith(b"\x1d\x56\x42\x00"):
                with self.cond:
                    self.arrivals.append(now)
                    self.cond.notify_all()
                tail = b""


def print_latency(tilld, prints):
    printer = LoopbackPrinter()
    printer.start()
    with tempfile.TemporaryDirectory() as work:
        config = os.path.join(work, "tilld.toml")
        with open(config, "w") as f:
            f.write('[[device]]\nname = "net"\nrole = "printer"\ndriver = "escpos"\nhost = "127.0.0.1"\nport = %d\n' % printer.port)
        sock_path = os.path.join(work, "tilld.sock")
        proc = subprocess.Popen([tilld, "--socket", sock_path, "--state-dir", os.path.join(work, "state"), "--config", config,
                                 "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 20
            while True:
                try:
                    client = socket.socket(socket.AF_UNIX)
                    client.connect(sock_path)
                    break
                except OSError:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.05)
            reader = client.makefile("rb")
            reader.readline()  # hello
            lines = [{"columns": [{"text": "Item number %d oat flat white" % n}, {"text": "%d.50" % n, "align": "right"}]} for n in range(1, 35)]
            receipt = {"lines": [{"text": "M&M Coffee", "align": "center", "size": "double", "bold": True}] + lines +
                       [{"qr": {"data": "https://example.com/r/0001", "size": 6}}, {"cut": "partial"}]}
            time.sleep(1.0)  # connected and status answered
            latencies = []
            for i in range(prints):
                with printer.cond:
                    before = len(printer.arrivals)
                start = time.perf_counter()
                client.sendall((json.dumps({"id": i + 1, "op": "print", "receipt": receipt}) + "\n").encode())
                with printer.cond:
                    if not printer.cond.wait_for(lambda: len(printer.arrivals) > before, timeout=10):
                        raise RuntimeError("print %d never reached the loopback printer" % i)
                    latencies.append(printer.arrivals[-1] - start)
                time.sleep(0.02)
            return latencies
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tilld")
    parser.add_argument("--bench")
    parser.add_argument("--prints", type=int, default=50)
    args = parser.parse_args()
    bench = args.bench or build("till-escpos-bench")
    tilld = args.tilld or build("tilld")
    ours, theirs = encoding(bench)
    print("| figure | tilld | python-escpos | ratio |")
    print("|---|---|---|---|")
    print("| encode a 40-line receipt with a QR code (median of 5 processes' medians) | %.1f µs | %.1f µs | **%.0f× faster** |" % (
        ours["encode_seconds"] * 1e6, theirs["encode_seconds"] * 1e6, theirs["encode_seconds"] / ours["encode_seconds"]))
    print("| rasterise a 576-pixel-wide logo: PNG decode, Floyd-Steinberg, GS v 0 (same) | %.2f ms | %.2f ms | **%.0f× faster** |" % (
        ours["raster_seconds"] * 1e3, theirs["raster_seconds"] * 1e3, theirs["raster_seconds"] / ours["raster_seconds"]))
    print("| bytes per receipt | %d | %d | |" % (ours["receipt_bytes"], theirs["receipt_bytes"]))
    print("| bytes for the logo | %d | %d | |" % (ours["logo_bytes"], theirs["logo_bytes"]))
    latencies = print_latency(tilld, args.prints)
    print("| `print` → last byte at a loopback TCP printer (%d prints) | median %.2f ms, p90 %.2f ms | | |" % (
        len(latencies), statistics.median(latencies) * 1e3, sorted(latencies)[int(0.9 * (len(latencies) - 1))] * 1e3))


if __name__ == "__main__":
    main()
