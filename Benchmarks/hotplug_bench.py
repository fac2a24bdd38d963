#!/usr/bin/python3
"""Hotplug figures: from a udev add event to tilld saying so on its socket, beside a bare libudev
monitor in the same testbed (the floor), and tilld's idle wake-ups with its monitor running.

    umockdev-wrapper /usr/bin/python3 Benchmarks/hotplug_bench.py --tilld .build/release/tilld [--cycles 50]

(`swift build -c release --static-swift-stdlib --product tilld` first.) A umockdev testbed
plugs a serial scanner in and out: tilld, with an entry naming it by usb, reports
`device.state online` when it is back (the driver woke, opened the new node and is reading);
a known scanner never seen before is taken on with zero config (`device.added`). Each plug's
uevent reaches tilld and the floor (Benchmarks/udev_floor.c) at once, so both are timed from the
same send. Then 10 s idle: context switches of each tilld thread (its udev monitor thread by name).
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "Tests", "IntegrationTests", "Fixtures"))
from hotplug_testbed import Testbed  # noqa: E402


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Client:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("r")
        self.file.readline()  # hello
        self.sock.sendall(b'{"id":1,"op":"subscribe","topics":["device.*"]}\n')
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.file:
            now = time.monotonic()
            with self.cond:
                self.lines.append((now, json.loads(line)))
                self.cond.notify_all()

    def wait(self, predicate, timeout=10):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for index, (at, message) in enumerate(self.lines):
                    if predicate(message):
                        del self.lines[: index + 1]
                        return at
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no matching event")
                self.cond.wait(left)


class Floor:
    def __init__(self, binary, environment):
        self.process = subprocess.Popen([binary], stdout=subprocess.PIPE, text=True, env=environment)
        assert self.process.stdout.readline().strip() == "ready"
        self.seen = []
        self.cond = threading.Condition()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.process.stdout:
            at, action, path = line.split(" ", 2)
            with self.cond:
                self.seen.append((float(at), action, path.strip()))
                self.cond.notify_all()

    def wait(self, action, after, timeout=10):
        """The first `action` event received after `after` (umockdev may deliver one twice)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for index, (at, seen_action, path) in enumerate(self.seen):
                    if seen_action == action and at >= after:
                        del self.seen[: index + 1]
                        return at
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("floor saw no %s" % action)
                self.cond.wait(left)


def threads(pid):
    result = {}
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            name = open("/proc/%d/task/%s/comm" % (pid, task)).read().strip()
            fields = dict(line.split(":", 1) for line in open("/proc/%d/task/%s/status" % (pid, task)) if ":" in line)
            result[task] = (name, int(fields["voluntary_ctxt_switches"]) + int(fields["nonvoluntary_ctxt_switches"]))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tilld", required=True)
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--idle", type=float, default=10)
    options = parser.parse_args()
    work = tempfile.mkdtemp(prefix="hotplug-bench-")
    floor_binary = os.path.join(work, "udev_floor")
    subprocess.run(["gcc", "-O2", os.path.join(HERE, "udev_floor.c"), "-o", floor_binary, "-ludev"], check=True)
    config = os.path.join(work, "tilld.toml")
    with open(config, "w") as f:
        f.write('[[device]]\nname = "front-scanner"\nrole = "scanner"\ndriver = "serial-scanner"\n'
                'usb = { vendor = "0c2e", product = "0720", serial = "S-1" }\n')
    bed = Testbed()
    bed.command("plug front serial 0c2e 0720 S-1 1")
    environment = dict(os.environ, UMOCKDEV_DIR=bed.bed.get_root_dir())
    sock = os.path.join(work, "tilld.sock")
    tilld = subprocess.Popen([options.tilld, "--socket", sock, "--state-dir", os.path.join(work, "state"), "--config", config, "--log-level", "error"], env=environment)
    floor = Floor(floor_binary, environment)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        client = Client(sock)
        replug, replug_floor, added, added_floor = [], [], [], []
        for cycle in range(options.cycles):
            bed.command("unplug front")
            client.wait(lambda m: m.get("topic") == "device.state" and m.get("device") == "front-scanner" and m["data"]["state"] == "offline")
            time.sleep(0.05)
            sent = time.monotonic()
            bed.command("plug front serial 0c2e 0720 S-1 1")
            at = client.wait(lambda m: m.get("topic") == "device.state" and m.get("device") == "front-scanner" and m["data"]["state"] == "online")
            replug.append(at - sent)
            replug_floor.append(floor.wait("add", sent) - sent)
            # A scanner never seen before: zero config.
            time.sleep(0.05)
            sent = time.monotonic()
            bed.command("plug new%d serial 0c2e 0720 Z-%d %d" % (cycle, cycle, 2 + cycle % 6))
            at = client.wait(lambda m: m.get("topic") == "device.added")
            added.append(at - sent)
            added_floor.append(floor.wait("add", sent) - sent)
            bed.command("unplug new%d" % cycle)
        before = threads(tilld.pid)
        time.sleep(options.idle)
        after = threads(tilld.pid)
    finally:
        tilld.terminate()
        tilld.wait()
        floor.process.terminate()

    def row(name, values, floor_values):
        ms = [v * 1000 for v in values]
        floor_ms = [v * 1000 for v in floor_values]
        return "| %s | %.2f | %.2f | %.2f | %.2f | x%.1f |" % (
            name, statistics.median(floor_ms), percentile(floor_ms, 99), statistics.median(ms), percentile(ms, 99), statistics.median(ms) / statistics.median(floor_ms))
    print("hotplug under a umockdev testbed, %d cycles (ms; the floor is a bare libudev monitor receiving the same uevent)" % options.cycles)
    print("| figure | floor p50 | floor p99 | tilld p50 | tilld p99 | p50 ratio |")
    print("|---|---|---|---|---|---|")
    print(row("replug a configured scanner: add uevent -> device.state online (reopened, reading)", replug, replug_floor))
    print(row("plug a known scanner never seen: add uevent -> device.added (zero config)", added, added_floor))
    idle = {task: (name, after[task][1] - count) for task, (name, count) in before.items() if task in after}
    monitor = [switches for name, switches in idle.values() if name == "tilld-udev"]
    print("idle %.0f s, %d offline zero-config scanners retrying: %d context switches over %d threads; the udev monitor thread: %s" % (
        options.idle, options.cycles, sum(s for _, s in idle.values()), len(idle), monitor[0] if monitor else "not found"))
    by_name = {}
    for name, switches in idle.values():
        by_name[name] = by_name.get(name, 0) + switches
    print("  by thread: " + ", ".join("%s %d" % item for item in sorted(by_name.items(), key=lambda item: -item[1])))


if __name__ == "__main__":
    main()
