#!/usr/bin/env python3
"""till-crm ingest throughput, end to end: a POS publishes sales of 5 lines (half of them
identified by email) on tilld's socket as fast as tilld acknowledges them (pipelined);
till-crm serve follows and applies them. The figure is sales/s from the first publish until
till-crm's cursor (read from its database) reaches the last event.

With --backlog, till-crm starts only after every sale is journaled (a first install on a
till that has run for weeks): the figures are the catch-up time from till-crm's start and
its peak memory (VmHWM) while replaying.

    swift build -c release && python3 Benchmarks/crm_ingest.py [SALES] [--backlog] [--bin DIR]
"""
import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import connect  # noqa: E402  (the same client helper as the tilld benchmarks)


def peak_rss_mb(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("sales", nargs="?", type=int, default=5000)
    parser.add_argument("--backlog", action="store_true", help="start till-crm after everything is journaled")
    parser.add_argument("--bin", default=os.path.join(HERE, "..", ".build", "release"), help="where tilld and till-crm are")
    args = parser.parse_args()
    sales = args.sales
    BIN = args.bin
    with tempfile.TemporaryDirectory() as work:
        sock = os.path.join(work, "tilld.sock")
        open(os.path.join(work, "empty.toml"), "w").close()
        tilld = subprocess.Popen([os.path.join(BIN, "tilld"), "--socket", sock, "--state-dir", os.path.join(work, "state"),
                                  "--config", os.path.join(work, "empty.toml"), "--log-level", "warning"],
                                 stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "tilld.log"), "w"))
        connect(sock).close()
        crm_dir = os.path.join(work, "crm")

        def start_crm():
            return subprocess.Popen([os.path.join(BIN, "till-crm"), "serve", "--socket", sock, "--data-dir", crm_dir,
                                     "--log-level", "warning"], stdout=subprocess.DEVNULL,
                                    stderr=open(os.path.join(work, "crm.log"), "w"))
        crm = None
        if not args.backlog:
            crm = start_crm()
            time.sleep(1)
        pub = connect(sock)
        reader = pub.makefile("rb")
        reader.readline()
        lines = []
        for sale in range(sales):
            sid = "S%d" % sale
            lines.append({"topic": "sale.started", "data": {"sale": sid, "till": "T1"}})
            for n in range(5):
                lines.append({"topic": "sale.line", "data": {"sale": sid, "name": "Item %d" % n, "qty": 1,
                                                            "unit_price": "2.50", "amount": "2.50", "gtin": "4006381333931"}})
            if sale % 2 == 0:
                lines.append({"topic": "customer.identified", "data": {"sale": sid, "email": "c%d@example.com" % (sale % 1000)}})
            lines.append({"topic": "sale.completed", "data": {"sale": sid, "total": "12.50", "currency": "EUR", "receipt": "R%d" % sale}})
        payload = [(json.dumps(dict(id=i, op="publish", **line)) + "\n").encode() for i, line in enumerate(lines)]
        start = time.perf_counter()
        window = 256
        sent = acked = 0
        last_seq = 0
        while acked < len(payload):
            while sent < len(payload) and sent - acked < window:
                pub.sendall(payload[sent])
                sent += 1
            reply = json.loads(reader.readline())
            if reply.get("type") == "reply":
                acked += 1
                last_seq = max(last_seq, reply["result"]["seq"])
        published = time.perf_counter() - start
        if args.backlog:
            start = time.perf_counter()
            crm = start_crm()
            while not os.path.exists(os.path.join(crm_dir, "crm.sqlite")):
                time.sleep(0.01)
            time.sleep(0.2)
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(crm_dir, "crm.sqlite"), uri=True, timeout=30)
        deadline = time.time() + 600
        while True:
            row = db.execute("SELECT seq FROM cursor WHERE name = 'tilld'").fetchone()
            if row and row[0] >= last_seq:
                break
            if time.time() > deadline or tilld.poll() is not None or crm.poll() is not None:
                print("stalled at cursor %s of %d; tilld exit %s, till-crm exit %s" % (row, last_seq, tilld.poll(), crm.poll()))
                for name in ("tilld.log", "crm.log"):
                    print("--- " + name + "\n" + open(os.path.join(work, name)).read()[-3000:])
                sys.exit(1)
            time.sleep(0.01)
        total = time.perf_counter() - start
        peak = peak_rss_mb(crm.pid)
        purchases = db.execute("SELECT COUNT(*) FROM timeline WHERE type = 'purchase'").fetchone()[0]
        crm.terminate()
        tilld.terminate()
        crm.wait()
        tilld.wait()
        if args.backlog:
            print("%d sales (%d events) journaled in %.2f s; till-crm started afterwards caught up in %.2f s "
                  "(%.0f sales/s); till-crm peak RSS %.1f MB; %d purchases recorded (expected %d)" % (
                      sales, len(payload), published, total, sales / total, peak, purchases, (sales + 1) // 2))
        else:
            print("%d sales (%d events): published and journaled in %.2f s (%.0f sales/s); "
                  "applied by till-crm in %.2f s end to end: %.0f sales/s; till-crm peak RSS %.1f MB; "
                  "%d purchases recorded (expected %d)" % (
                      sales, len(payload), published, sales / published, total, sales / total, peak, purchases,
                      (sales + 1) // 2))


if __name__ == "__main__":
    main()
