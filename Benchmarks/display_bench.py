#!/usr/bin/env python3
"""Customer display figures (issue 11), tilld in release:

  python3 Benchmarks/display_bench.py [--tilld BIN] [--lines N] [--idle SECONDS]

- time from a `sale.line` publish on tilld's socket to the last byte of the display's update
  written to its serial line (an `epson-display` with `sale_driven = true` on a pseudo-terminal
  this script holds): p50 and p99 over N sale lines, beside the publish's own acknowledgement
  (the journal's durable commit) as the baseline;
- CPU seconds and wake-ups (context switches) of tilld with only an idle display configured,
  over SECONDS, with the idle text's clock off and on.
"""
import argparse
import json
import os
import pty
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tty

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import proc_stat, connect, percentile  # noqa: E402

ROOT = os.path.dirname(HERE)


def build():
    subprocess.run(["swift", "build", "-c", "release", "--static-swift-stdlib", "--product", "tilld"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return os.path.join(ROOT, ".build/release/tilld")


class Glass(threading.Thread):
    """The display end of the line: notes when each full two-row update (US $ 1 2 + 20 bytes)
    has arrived."""

    def __init__(self):
        super().__init__(daemon=True)
        self.master, slave = pty.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self.slave = slave
        self.arrivals = []
        self.cond = threading.Condition()

    def run(self):
        buffer = b""
        while True:
            ready, _, _ = select.select([self.master], [], [], 1)
            if not ready:
                continue
            data = os.read(self.master, 4096)
            now = time.perf_counter()
            buffer += data
            # The second row's command and its 20 characters: the update is complete.
            while True:
                at = buffer.find(b"\x1f\x24\x01\x02")
                if at < 0 or len(buffer) < at + 24:
                    break
                buffer = buffer[at + 24:]
                with self.cond:
                    self.arrivals.append(now)
                    self.cond.notify_all()


def start(tilld, work, device):
    config = os.path.join(work, "tilld.toml")
    with open(config, "w") as f:
        f.write(device)
    sock = os.path.join(work, "tilld.sock")
    proc = subprocess.Popen([tilld, "--socket", sock, "--state-dir", os.path.join(work, "state"), "--config", config, "--log-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, sock


def latency(tilld, count):
    glass = Glass()
    glass.start()
    with tempfile.TemporaryDirectory() as work:
        proc, sock = start(tilld, work, '[[device]]\nname = "pole"\nrole = "display"\ndriver = "epson-display"\npath = "%s"\nsale_driven = true\n' % glass.path)
        try:
            client = connect(sock)
            reader = client.makefile("rb")
            reader.readline()
            time.sleep(1)
            acks, shown = [], []
            for i in range(count):
                with glass.cond:
                    before = len(glass.arrivals)
                line = {"sale": "S%d" % (i // 10), "name": "Item %d" % i, "qty": 1, "unit_price": "1.50", "amount": "1.50"}
                start_time = time.perf_counter()
                client.sendall((json.dumps({"id": i + 1, "op": "publish", "topic": "sale.line", "data": line}) + "\n").encode())
                reply = reader.readline()
                acks.append(time.perf_counter() - start_time)
                if b'"ok":true' not in reply:
                    raise RuntimeError("publish refused: %s" % reply)
                with glass.cond:
                    if not glass.cond.wait_for(lambda: len(glass.arrivals) > before, timeout=5):
                        raise RuntimeError("the display never showed sale line %d" % i)
                    shown.append(glass.arrivals[-1] - start_time)
                time.sleep(0.01)
            return acks, shown
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def idle(tilld, seconds, idle_text):
    """idle_text None: tilld with no device at all (the baseline)."""
    glass = Glass()
    glass.start()
    with tempfile.TemporaryDirectory() as work:
        device = "" if idle_text is None else '[[device]]\nname = "pole"\nrole = "display"\ndriver = "epson-display"\npath = "%s"\nidle_text = "%s"\nidle_after_seconds = 1\n' % (glass.path, idle_text)
        proc, sock = start(tilld, work, device)
        try:
            connect(sock).close()
            time.sleep(3)
            cpu0, sw0, _ = proc_stat(proc.pid)
            time.sleep(seconds)
            cpu1, sw1, _ = proc_stat(proc.pid)
            return cpu1 - cpu0, sum(sw1[t] - sw0[t] for t in sw1 if t in sw0)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tilld")
    parser.add_argument("--lines", type=int, default=300)
    parser.add_argument("--idle", type=float, default=60)
    args = parser.parse_args()
    tilld = args.tilld or build()
    acks, shown = latency(tilld, args.lines)
    print("| figure | p50 | p99 |")
    print("|---|---|---|")
    print("| `sale.line` publish → its acknowledgement (durable commit: the baseline) | %.2f ms | %.2f ms |" % (
        statistics.median(acks) * 1e3, percentile(acks, 99) * 1e3))
    print("| `sale.line` publish → last byte of the display's update on the line | %.2f ms | %.2f ms |" % (
        statistics.median(shown) * 1e3, percentile(shown, 99) * 1e3))
    for label, text in (("tilld with no device (baseline)", None), ("an idle display, no clock", "M&M Coffee"), ("an idle display with the clock", "M&M Coffee {time}")):
        cpu, switches = idle(tilld, args.idle, text)
        print("| %s, over %.0f s | CPU %.3f s | %d wake-ups |" % (label, args.idle, cpu, switches))


if __name__ == "__main__":
    main()
