#!/usr/bin/env python3
"""Scan-to-subscriber latency for a serial scanner on a pty, through the running daemon, beside
two floors in the same run: a C relay that reads the pty and writes each line to a Unix socket
(Benchmarks/pty_relay.c), and the same relay with an fdatasync per line (tilld journals a scan
before it delivers it).

    python3 Benchmarks/scan_latency.py [--tilld .build/release/tilld] [--baseline OLD/tilld] [--scans 10000]

Each scan is a 13-digit EAN written to the pty's controller side with CR; the latency is from
that write to the subscriber reading the line (or the scanner.data event). Scans are paced
(one every 2 ms) so each is measured alone, as a cashier scans. The three run at once, each
on its own pty, and take turns in blocks of --block scans, so a drift in the shared machine's
load falls on all three alike. With --baseline, a second tilld (an older build) takes its turns
too, so before and after are measured in the same run.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (connect, start_tilld, percentile, stop)


def codes(count):
    out = []
    for n in range(count):
        body = "400638%06d" % (n % 1000000)
        total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
        out.append(body + str((10 - total % 10) % 10))
    return out


def measure(controller, receive, items):
    latencies = []
    for code in items:
        start = time.perf_counter_ns()
        os.write(controller, code.encode() + b"\r")
        receive(code)
        latencies.append((time.perf_counter_ns() - start) / 1000)
        time.sleep(0.002)
    return latencies


def summary(latencies):
    return {"median_us": statistics.median(latencies), "p99_us": bench.percentile(latencies, 99), "scans": len(latencies)}


def line_reader(sock):
    buffer = bytearray()

    def receive(code):
        nonlocal buffer
        while b"\n" not in buffer:
            buffer += sock.recv(65536)
        line, _, rest = bytes(buffer).partition(b"\n")
        buffer = bytearray(rest)
        if code.encode() not in line:
            raise SystemExit("relay sent %r for %s" % (line, code))
    return receive


class Floor:
    """The C relay on its own pty: reads a line, (appends and fdatasyncs it,) forwards it."""

    def __init__(self, work, relay, durable):
        self.controller, self.device = os.openpty()
        name = "durable" if durable else "bare"
        sock_path = os.path.join(work, name + ".sock")
        extra = [os.path.join(work, name + ".log")] if durable else []
        self.proc = subprocess.Popen([relay, os.ttyname(self.device), sock_path] + extra)
        self.receive = line_reader(bench.connect(sock_path))

    def close(self):
        self.proc.terminate()
        self.proc.wait()
        os.close(self.controller)
        os.close(self.device)


class Tilld:
    """The daemon with a serial-scanner on its own pty, and one subscriber."""

    def __init__(self, work, binary):
        work = tempfile.mkdtemp(dir=work)
        self.controller, self.device = os.openpty()
        config = os.path.join(work, "scan.toml")
        with open(config, "w") as f:
            f.write('[journal]\nsync = "full"\n[[device]]\nname = "bench-scanner"\nrole = "scanner"\ndriver = "serial-scanner"\npath = "%s"\n' % os.ttyname(self.device))
        sock = os.path.join(work, "tilld.sock")
        self.proc = subprocess.Popen([binary, "--socket", sock, "--state-dir", os.path.join(work, "state"), "--config", config, "--log-level", "warning"])
        client = bench.connect(sock)
        lines = bench.Lines(client)
        lines.next()  # hello
        client.sendall(b'{"id":1,"op":"subscribe","topics":["scanner.*"]}\n')
        while b'"type":"reply"' not in lines.next():
            pass

        def receive(code):
            while True:
                line = lines.next()
                if b'"scanner.data"' in line:
                    if code.encode() not in line:
                        raise SystemExit("tilld sent %r for %s" % (line[:120], code))
                    return
        self.receive = receive

    def close(self):
        bench.stop(self.proc)
        os.close(self.controller)
        os.close(self.device)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tilld", default=os.path.join(HERE, "..", ".build", "release", "tilld"))
    parser.add_argument("--baseline", help="another tilld to measure in the same run (before a change)")
    parser.add_argument("--scans", type=int, default=10000)
    parser.add_argument("--block", type=int, default=250, help="scans per turn of each target")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as work:
        relay = os.path.join(work, "pty_relay")
        subprocess.check_call(["cc", "-O2", "-o", relay, os.path.join(HERE, "pty_relay.c")])
        targets = {"floor": Floor(work, relay, False), "durable_floor": Floor(work, relay, True), "tilld": Tilld(work, args.tilld)}
        if args.baseline:
            targets["baseline"] = Tilld(work, args.baseline)
        time.sleep(0.3)
        latencies = {name: [] for name in targets}
        try:
            # The three take turns, a block each, so all see the same machine (it is shared
            # and its load drifts); each block is a warm-up's worth too short to matter.
            all_codes = codes(args.scans)
            for start in range(0, args.scans, args.block):
                for name, target in targets.items():
                    latencies[name] += measure(target.controller, target.receive, all_codes[start:start + args.block])
        finally:
            for target in targets.values():
                target.close()
        results = {name: summary(values) for name, values in latencies.items()}
    print(json.dumps(results, indent=1))
    floor = results["durable_floor"]
    print("scan -> subscriber (µs)       median      p99")
    for name in [n for n in ("floor", "durable_floor", "baseline", "tilld") if n in results]:
        r = results[name]
        print("  %-24s %8.1f %8.1f%s" % (name, r["median_us"], r["p99_us"],
              "   x%.2f / x%.2f of the durable floor" % (r["median_us"] / floor["median_us"], r["p99_us"] / floor["p99_us"]) if "tilld" in name or name == "baseline" else ""))


if __name__ == "__main__":
    main()
