#!/usr/bin/env python3
"""Block requests the disk sees per acknowledged publish, for each tilld build given.

Runs the latency benchmark's workload (one publisher, one publish every 2 ms, each waiting for
its reply; one subscriber) against each build in turn, alternating, while `perf stat -a`
counts `block:block_rq_issue`. A commit's sync writes the WAL frame and the disk's cache
flush at least; when the WAL's inode is dirty it writes the inode block too. Needs root and
perf. The count is system-wide: run it on an otherwise idle machine.

    python3 Benchmarks/block_requests.py [--rounds 2] [--publishes 500] TILLD [TILLD ...]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def one_round(binary, publishes):
    with tempfile.TemporaryDirectory() as work:
        proc, sock = bench.start_tilld(binary, work, sync="full")
        bench.connect(sock).close()
        time.sleep(0.3)
        counts = os.path.join(work, "perf.txt")
        perf = subprocess.Popen(["perf", "stat", "-a", "-x", ",", "-e", "block:block_rq_issue", "-o", counts])
        time.sleep(0.5)
        try:
            result = bench.measure_latency(sock, "tilld", 1, publishes, 0.002)
        finally:
            perf.send_signal(2)
            perf.wait()
            bench.stop(proc)
        requests = int(re.search(r"^(\d+),", open(counts).read(), re.M).group(1))
        return requests / publishes, result["median_us"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("tilld", nargs="+")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--publishes", type=int, default=500)
    args = parser.parse_args()
    per = {name: [] for name in args.tilld}
    for _ in range(args.rounds):
        for name in args.tilld:
            per[name].append(one_round(name, args.publishes))
    for name, rounds in per.items():
        print("%-32s %.2f block requests per publish (rounds: %s)" % (
            name[-32:], statistics.median(r[0] for r in rounds), " ".join("%.2f" % r[0] for r in rounds)))


if __name__ == "__main__":
    main()
