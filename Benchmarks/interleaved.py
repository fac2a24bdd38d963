#!/usr/bin/env python3
"""Two (or more) tilld builds compared in interleaved rounds, beside the durable floor.

    python3 Benchmarks/interleaved.py --rounds 10 OLD_TILLD NEW_TILLD

Why: on this shared two-core machine one `bench.py` run moves by ±20 % from the next, more
than most changes. Here every round measures each build and the durable relay (bench.py's
floor) once, in a shuffled order, so a slow minute hits all of them; the figure for a build is
the median over the rounds of its p50 ÷ the same round's floor p50. Two floors: the durable
relay as bench.py defines it, and the same relay acknowledging each line to its publisher, who
waits for it (`relay --ack`), as a POS waits for tilld's reply.

Cases: publish -> subscriber latency with 1 and 32 subscribers (200 publishes each, one every
2 ms, each waiting for its acknowledgement), and fan-out to 32 subscribers (events/s, every
event to every subscriber checked). Same client code as bench.py.
"""
import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

RELAY = "durable relay"
RELAY_ACK = "durable relay + ack"
FLOORS = (RELAY, RELAY_ACK)


def latency_round(name, relay_bin, subscribers, events):
    with tempfile.TemporaryDirectory() as work:
        if name in FLOORS:
            sock = os.path.join(work, "relay.sock")
            ack = ["--ack"] if name == RELAY_ACK else []
            relay = subprocess.Popen([relay_bin] + ack + [sock, os.path.join(work, "relay.log")])
            bench.connect(sock).close()
            time.sleep(0.2)
            try:
                return bench.measure_latency(sock, "relay-ack" if ack else "relay", subscribers, events, 0.002)
            finally:
                relay.terminate()
                relay.wait()
        proc, sock = bench.start_tilld(name, work, sync="full")
        bench.connect(sock).close()
        time.sleep(0.2)
        try:
            return bench.measure_latency(sock, "tilld", subscribers, events, 0.002)
        finally:
            bench.stop(proc)


def fanout_round(name, events, window):
    with tempfile.TemporaryDirectory() as work:
        proc, sock = bench.start_tilld(name, work, sync="full")
        bench.connect(sock).close()
        time.sleep(0.2)
        try:
            return bench.measure_fanout(sock, 32, events, server_pid=proc.pid, window=window)
        finally:
            bench.stop(proc)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("tilld", nargs="+", help="tilld binaries to compare")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--events", type=int, default=200, help="publishes per latency measurement")
    parser.add_argument("--fan-events", type=int, default=20000)
    parser.add_argument("--fan-window", type=int, default=256, help="the fan-out publisher's requests in flight")
    parser.add_argument("--only", default="latency,fanout")
    args = parser.parse_args()
    phases = set(args.only.split(","))
    names = args.tilld
    with tempfile.TemporaryDirectory() as work:
        relay_bin = os.path.join(work, "relay")
        subprocess.check_call(["cc", "-O2", "-o", relay_bin, os.path.join(os.path.dirname(os.path.abspath(__file__)), "relay.c")])
        if "latency" in phases:
            for subscribers in (1, 32):
                p50 = {n: [] for n in names + list(FLOORS)}
                p99 = {n: [] for n in names + list(FLOORS)}
                for _ in range(args.rounds):
                    order = names + list(FLOORS)
                    random.shuffle(order)
                    for name in order:
                        result = latency_round(name, relay_bin, subscribers, args.events)
                        if result["samples"] != result["expected"]:
                            sys.exit("%s lost events: %d of %d delivered" % (name, result["samples"], result["expected"]))
                        p50[name].append(result["median_us"])
                        p99[name].append(result["p99_us"])
                print("publish -> subscriber, %d subscriber%s, %d rounds: p50 (µs, median of rounds); p50 ÷ durable floor, p99 ÷ durable floor, p50 ÷ acked floor (medians of the rounds' ratios)" % (
                    subscribers, "" if subscribers == 1 else "s", args.rounds))
                for name in names + list(FLOORS):
                    ratios = [a / b for a, b in zip(p50[name], p50[RELAY])]
                    tail = [a / b for a, b in zip(p99[name], p99[RELAY])]
                    acked = [a / b for a, b in zip(p50[name], p50[RELAY_ACK])]
                    print("  %-28s %7.0f   x%.2f   x%.2f   x%.2f   (p50 ÷ durable floor by round: %s)" % (
                        name[-28:], statistics.median(p50[name]), statistics.median(ratios), statistics.median(tail),
                        statistics.median(acked), " ".join("%.2f" % r for r in ratios)))
        if "fanout" in phases:
            rates = {n: [] for n in names}
            cpu = {n: [] for n in names}
            for _ in range(args.rounds):
                order = list(names)
                random.shuffle(order)
                for name in order:
                    result = fanout_round(name, args.fan_events, args.fan_window)
                    if not result["all_received"]:
                        sys.exit("%s: a subscriber missed events in the fan-out" % name)
                    rates[name].append(result["events_per_s"])
                    cpu[name].append(result)
            print("fan-out to 32 subscribers, %d events, %d in flight, %d rounds: events/s (median; every event to every subscriber); "
                  "CPU µs per event, medians: tilld, its 32 subscribers, the publisher; events per write" % (args.fan_events, args.fan_window, args.rounds))
            for name in names:
                def med(key):
                    return statistics.median(r[key] or 0 for r in cpu[name])
                print("  %-28s %7.0f   tilld %.1f, subscribers %.1f, publisher %.1f; %.0f per write   (rounds: %s)" % (
                    name[-28:], statistics.median(rates[name]), med("server_cpu_us_per_event"), med("subscribers_cpu_us_per_event"),
                    med("publisher_cpu_us_per_event"), med("events_per_write"), " ".join("%.0f" % r for r in rates[name])))


if __name__ == "__main__":
    main()
