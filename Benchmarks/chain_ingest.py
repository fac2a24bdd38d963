#!/usr/bin/env python3
"""A chain's ingest: N tills, each a tilld with its own till-crm serve, all writing to one
customer store, every till publishing sales of 5 lines (half identified by email, the same
1,000 people at every till) as fast as its tilld acknowledges them. The figure is sales/s
for the whole chain, from the first publish until every till-crm's cursor reached its till's
last event. Run side by side in one go: SQLite with one till (the single-shop baseline),
PostgreSQL with one till, PostgreSQL with 4.

With --backlog, every till's sales are journaled first and the till-crms started after (a
till that was cut off from the database for a day catching up): the figure is the catch-up.

    swift build -c release && eval "$(scripts/postgres-test-server.sh)" && \\
        python3 Benchmarks/chain_ingest.py [--sales 1500] [--runs sqlite:1,postgres:1,postgres:4] [--backlog]

PostgreSQL comes from TILL_TEST_POSTGRES_URL and TILL_TEST_POSTGRES_PASSWORD (a new schema
per run, left behind in that test database).
"""
import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import connect  # noqa: E402


def sale_lines(till, sales):
    lines = []
    for sale in range(sales):
        sid = "T%d-S%d" % (till, sale)
        lines.append({"topic": "sale.started", "data": {"sale": sid, "till": "T%d" % till, "store": "Store %d" % (till % 2)}})
        for n in range(5):
            lines.append({"topic": "sale.line", "data": {"sale": sid, "name": "Item %d" % n, "qty": 1, "unit_price": "2.50", "amount": "2.50"}})
        if sale % 2 == 0:
            lines.append({"topic": "customer.identified", "data": {"sale": sid, "email": "c%d@example.com" % ((sale * 7 + till) % 1000)}})
        lines.append({"topic": "sale.completed", "data": {"sale": sid, "total": "12.50", "currency": "EUR"}})
    return [(json.dumps(dict(id=i, op="publish", **line)) + "\n").encode() for i, line in enumerate(lines)]


def publish(sock, payload, result, index):
    pub = connect(sock)
    reader = pub.makefile("rb")
    hello = json.loads(reader.readline())
    window, sent, acked, last = 256, 0, 0, 0
    while acked < len(payload):
        while sent < len(payload) and sent - acked < window:
            pub.sendall(payload[sent])
            sent += 1
        reply = json.loads(reader.readline())
        if reply.get("type") == "reply":
            acked += 1
            last = max(last, reply["result"]["seq"])
    result[index] = (hello.get("stream"), last)
    pub.close()


class Postgres:
    def __init__(self):
        self.url = os.environ.get("TILL_TEST_POSTGRES_URL")
        self.password = os.environ.get("TILL_TEST_POSTGRES_PASSWORD")
        if not self.url:
            sys.exit("set TILL_TEST_POSTGRES_URL and TILL_TEST_POSTGRES_PASSWORD: eval \"$(scripts/postgres-test-server.sh)\"")
        self.schema = "bench_" + uuid.uuid4().hex[:12]

    def config(self, work):
        password_file = os.path.join(work, "db.password")
        with open(password_file, "w") as f:
            f.write(self.password + "\n")
        os.chmod(password_file, 0o600)
        path = os.path.join(work, "crm.toml")
        with open(path, "w") as f:
            f.write('[store]\nurl = "%s"\npassword_file = "%s"\nschema = "%s"\n' % (self.url, password_file, self.schema))
        return path

    def query(self, sql):
        url = urllib.parse.urlparse(self.url)
        env = dict(os.environ, PGPASSWORD=self.password, PGOPTIONS="-c search_path=%s" % self.schema)
        out = subprocess.run(["psql", "-h", url.hostname, "-p", str(url.port or 5432), "-U", url.username, "-d", url.path.lstrip("/"),
                              "-tAX", "-c", sql], env=env, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else None

    def cursors(self):
        text = self.query("SELECT name, seq FROM cursor") or ""
        return {line.split("|")[0]: int(line.split("|")[1]) for line in text.splitlines() if "|" in line}


def run(store, tills, sales, backlog, bin_dir):
    with tempfile.TemporaryDirectory() as work:
        postgres = Postgres() if store == "postgres" else None
        config = postgres.config(work) if postgres else None
        open(os.path.join(work, "empty.toml"), "w").close()
        procs, socks, crms = [], [], []
        for till in range(tills):
            sock = os.path.join(work, "t%d.sock" % till)
            procs.append(subprocess.Popen([os.path.join(bin_dir, "tilld"), "--socket", sock, "--state-dir", os.path.join(work, "state%d" % till),
                                           "--config", os.path.join(work, "empty.toml"), "--log-level", "warning"],
                                          stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "tilld%d.log" % till), "w")))
            socks.append(sock)
            connect(sock).close()

        def start_crms():
            for till in range(tills):
                arguments = [os.path.join(bin_dir, "till-crm"), "serve", "--socket", socks[till], "--data-dir", os.path.join(work, "crm%d" % till),
                             "--log-level", "warning"] + (["--config", config] if config else [])
                crms.append(subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "crm%d.log" % till), "w")))
        if not backlog:
            start_crms()
            time.sleep(1.5)
        payloads = [sale_lines(till, sales) for till in range(tills)]
        result = [None] * tills
        start = time.perf_counter()
        threads = [threading.Thread(target=publish, args=(socks[t], payloads[t], result, t)) for t in range(tills)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        published = time.perf_counter() - start
        if backlog:
            start = time.perf_counter()
            start_crms()

        def done():
            if postgres:
                cursors = postgres.cursors()
                return all(cursors.get("tilld/%s" % stream, 0) >= last for stream, last in result)
            path = os.path.join(work, "crm0", "crm.sqlite")
            if not os.path.exists(path):
                return False
            try:
                row = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30).execute(
                    "SELECT seq FROM cursor WHERE name = ?", ("tilld/%s" % result[0][0],)).fetchone()
            except sqlite3.Error:
                return False
            return row is not None and row[0] >= result[0][1]
        deadline = time.time() + 900
        while not done():
            if time.time() > deadline or any(p.poll() is not None for p in procs + crms):
                for till in range(tills):
                    print("--- crm%d.log\n%s" % (till, open(os.path.join(work, "crm%d.log" % till)).read()[-2000:]))
                sys.exit("stalled")
            time.sleep(0.02)
        total = time.perf_counter() - start
        purchases = (postgres.query("SELECT COUNT(*) FROM timeline WHERE type = 'purchase'") if postgres else
                     sqlite3.connect(os.path.join(work, "crm0", "crm.sqlite")).execute("SELECT COUNT(*) FROM timeline WHERE type = 'purchase'").fetchone()[0])
        for p in crms + procs:
            p.terminate()
        for p in crms + procs:
            p.wait()
        return {"store": store, "tills": tills, "sales": tills * sales, "published_s": published, "applied_s": total,
                "sales_per_s": tills * sales / total, "purchases": int(purchases), "expected": tills * ((sales + 1) // 2)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sales", type=int, default=1500, help="per till")
    parser.add_argument("--runs", default="sqlite:1,postgres:1,postgres:4")
    parser.add_argument("--rounds", type=int, default=1, help="each run this many times, interleaved")
    parser.add_argument("--backlog", action="store_true")
    parser.add_argument("--bin", default=os.path.join(HERE, "..", ".build", "release"))
    args = parser.parse_args()
    runs = [(spec.split(":")[0], int(spec.split(":")[1])) for spec in args.runs.split(",")]
    for _ in range(args.rounds):
        for store, tills in runs:
            r = run(store, tills, args.sales, args.backlog, args.bin)
            what = "caught up (backlog)" if args.backlog else "applied end to end"
            print("%-8s %d till(s): %d sales %s in %.2f s = %.0f sales/s (published in %.2f s); %d purchases (expected %d)" % (
                r["store"], r["tills"], r["sales"], what, r["applied_s"], r["sales_per_s"], r["published_s"], r["purchases"], r["expected"]),
                flush=True)


if __name__ == "__main__":
    main()
