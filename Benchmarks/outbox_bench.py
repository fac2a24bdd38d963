#!/usr/bin/env python3
"""till-crm's outbox, end to end: tilld, till-crm serve with a [[webhook]], and a local
Standard Webhooks receiver in its own process (Tests/IntegrationTests/Fixtures/webhook_receiver.py,
which checks every signature).

  1. lag: identified sales published one at a time (--rate per second); for each, the time
     from publishing its sale.completed on tilld's socket to the receiver getting the
     purchase's timeline.added (p50, p99);
  2. catch-up: the receiver gone while --backlog entries pile up (the shop offline), then back:
     the time from till-crm's start to the last entry delivered, i.e. delivery throughput
     (entries/s), with till-crm's CPU time per entry (what does not depend on the receiver).

    swift build -c release && python3 Benchmarks/outbox_bench.py [--sales N] [--rate R] [--backlog N] [--bin DIR]
"""
import argparse
import base64
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import connect, percentile  # noqa: E402

RECEIVER = os.path.join(HERE, "..", "Tests", "IntegrationTests", "Fixtures", "webhook_receiver.py")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Rig:
    def __init__(self, work, bin_dir):
        self.work, self.bin = work, bin_dir
        self.sock = os.path.join(work, "tilld.sock")
        self.crm_dir = os.path.join(work, "crm")
        self.secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        self.log = os.path.join(work, "receiver.log")
        open(os.path.join(work, "empty.toml"), "w").close()
        self.tilld = subprocess.Popen([os.path.join(bin_dir, "tilld"), "--socket", self.sock, "--state-dir", os.path.join(work, "state"),
                                       "--config", os.path.join(work, "empty.toml"), "--log-level", "warning"],
                                      stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "tilld.log"), "w"))
        connect(self.sock).close()
        self.receiver = None
        self.crm = None
        self.port = None

    def start_receiver(self):
        port_file = os.path.join(self.work, "receiver.port")
        if os.path.exists(port_file):
            os.remove(port_file)
        self.receiver = subprocess.Popen([sys.executable, RECEIVER, port_file, self.log, self.secret, "--port", str(self.port or 0)],
                                         stdout=subprocess.DEVNULL)
        while not os.path.exists(port_file):
            time.sleep(0.01)
        port = int(open(port_file).read())
        if self.port is None:
            self.port = port
            with open(os.path.join(self.work, "till-crm.toml"), "w") as config:
                config.write('[[webhook]]\nurl = "http://127.0.0.1:%d/till"\nsecret = "%s"\n' % (port, self.secret))
        return port

    def start_crm(self):
        self.crm = subprocess.Popen([os.path.join(self.bin, "till-crm"), "serve", "--socket", self.sock, "--data-dir", self.crm_dir,
                                     "--config", os.path.join(self.work, "till-crm.toml"), "--log-level", os.environ.get("CRM_LOG", "warning")],
                                    stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.work, "crm.log"), "a"))
        while not os.path.exists(os.path.join(self.crm_dir, "crm.sqlite")):
            time.sleep(0.01)

    def db(self):
        return sqlite3.connect("file:%s?mode=ro" % os.path.join(self.crm_dir, "crm.sqlite"), uri=True, timeout=30)

    def received(self):
        with open(self.log) as log:
            return [json.loads(line) for line in log if line.strip()]

    def stop(self):
        for process in (self.crm, self.receiver, self.tilld):
            if process and process.poll() is None:
                process.terminate()
                process.wait()


def sale_lines(sid, customer):
    return [
        {"topic": "sale.started", "data": {"sale": sid, "till": "T1"}},
        {"topic": "sale.line", "data": {"sale": sid, "name": "Item", "qty": 1, "unit_price": "12.50", "amount": "12.50"}},
        {"topic": "customer.identified", "data": {"sale": sid, "email": "c%d@example.com" % customer}},
        {"topic": "sale.completed", "data": {"sale": sid, "total": "12.50", "currency": "EUR", "receipt": "R" + sid}},
    ]


LAST_SEQ = [0]


def publish(pub, reader, lines, ident):
    for line in lines:
        ident += 1
        pub.sendall((json.dumps(dict(id=ident, op="publish", **line)) + "\n").encode())
    for _ in lines:
        while True:
            reply = json.loads(reader.readline())
            if reply.get("type") == "reply":
                LAST_SEQ[0] = max(LAST_SEQ[0], reply.get("result", {}).get("seq", 0))
                break
    return ident


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sales", type=int, default=400, help="sales for the lag figure")
    parser.add_argument("--rate", type=float, default=10, help="sales per second for the lag figure")
    parser.add_argument("--backlog", type=int, default=10000, help="entries waiting when the receiver comes back")
    parser.add_argument("--bin", default=os.path.join(HERE, "..", ".build", "release"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        rig = Rig(work, args.bin)
        try:
            rig.start_receiver()
            rig.start_crm()
            time.sleep(1)
            pub = connect(rig.sock)
            reader = pub.makefile("rb")
            reader.readline()
            ident = 0
            sent = {}
            for n in range(args.sales):
                sid = "L%d" % n
                lines = sale_lines(sid, n % 200)
                ident = publish(pub, reader, lines[:-1], ident)
                sent["purchase:" + sid] = time.time() * 1000
                ident = publish(pub, reader, lines[-1:], ident)
                time.sleep(1 / args.rate)
            deadline = time.time() + 120
            while True:
                arrived = {r["source"]: r["at_ms"] for r in rig.received() if r.get("source") in sent and r["status"] == 204}
                if len(arrived) == len(sent) or time.time() > deadline:
                    break
                time.sleep(0.2)
            lags = [arrived[s] - sent[s] for s in sent if s in arrived]
            print("1. lag, sale.completed on the socket to its webhook at the receiver (%d sales at %g/s): "
                  "p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d of %d arrived)" % (
                      args.sales, args.rate, statistics.median(lags), percentile(lags, 99), max(lags), len(lags), len(sent)))

            # The receiver goes away; the shop sells on until the backlog is there.
            rig.receiver.send_signal(signal.SIGKILL)
            rig.receiver.wait()
            db = rig.db()
            base = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()[0]
            n = 0
            while True:
                lines = []
                for _ in range(100):
                    lines += sale_lines("B%d" % n, n % 3000)
                    n += 1
                ident = publish(pub, reader, lines, ident)
                # Wait for till-crm to apply them, so the backlog is what was asked, not tilld's queue.
                while db.execute("SELECT seq FROM cursor WHERE name = 'tilld'").fetchone()[0] < LAST_SEQ[0]:
                    time.sleep(0.01)
                written = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()[0] - base
                if written >= args.backlog:
                    break
            pending = lambda: db.execute("SELECT COUNT(*) FROM delivery WHERE state = 'pending'").fetchone()[0]
            waiting = lambda: db.execute("SELECT COUNT(*) FROM outbox o, outbox_target t WHERE o.seq > t.taken_seq").fetchone()[0]
            backlog = pending() + waiting()
            # Back after the outage: the receiver up, till-crm (re)started, as after a night offline.
            rig.crm.terminate()
            try:
                rig.crm.wait(timeout=20)
            except subprocess.TimeoutExpired:
                print("till-crm did not stop within 20 s of SIGTERM (pid %d)" % rig.crm.pid)
                raise
            open(rig.log, "w").close()
            rig.start_receiver()
            start = time.perf_counter()
            rig.start_crm()
            cpu0 = 0.0
            while pending() + waiting() > 0:
                cpu0 = cpu_seconds(rig.crm.pid)
                time.sleep(0.05)
            elapsed = time.perf_counter() - start
            cpu = cpu_seconds(rig.crm.pid)
            received = rig.received()
            valid = all(r["valid"] for r in received)
            ids = {r["id"] for r in received if r["status"] == 204}
            print("2. catch-up: %d entries waiting when the receiver came back; delivered in %.2f s from till-crm's start: "
                  "%.0f entries/s; till-crm CPU %.2f s (%.0f us per entry); %d requests, %d distinct ids, signatures %s" % (
                      backlog, elapsed, backlog / elapsed, cpu, cpu / backlog * 1e6, len(received), len(ids),
                      "all valid" if valid else "SOME INVALID"))
        finally:
            rig.stop()


if __name__ == "__main__":
    main()
