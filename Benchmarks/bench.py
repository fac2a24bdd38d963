#!/usr/bin/env python3
"""tilld benchmarks, measured side by side with their baselines in one run.

    python3 Benchmarks/bench.py [--tilld .build/release/tilld] [--quick]

Figures (medians and p99; this machine is shared and noisy, so compare ratios):
  1. publish-to-subscriber latency, 1 and 32 subscribers: tilld (sync=full and sync=normal)
     against two floors driven by the same client code: a bare C relay (Benchmarks/relay.c)
     and a durable one (the same relay given a file: it appends each chunk to it and
     fdatasyncs it before forwarding, the least a durable relay can do); also shown, the
     durable relay acknowledging each line to its publisher, who waits for it as tilld's does
  2. sustained fan-out to 32 subscribers: events/s with every subscriber receiving every event,
     beside the durable relay's fan-out; and where the CPU went, per event: the server's, the
     32 subscribers' and the publisher's, with how many events one write to a subscriber
     carried (on two cores the clients' share bounds the rate as much as the server's)
  2b. syncs (fsync + fdatasync) per acknowledged publish, at low load (one publish at a time)
     and high load (the fan-out run), counted by strace (--seccomp-bpf, so only those calls stop)
  3. idle tilld: RSS and CPU over 60 s with no events, and its context switches (wake-ups),
     beside a minimal idle Swift program (the floor the Swift runtime and Foundation set)
  4. start to READY=1 (sd_notify), fresh state directory
Subscribers are separate processes so the 32-subscriber case is not serialised in one interpreter.
"""
import argparse
import json
import multiprocessing as mp
import os
import resource
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def connect(path, timeout=10):
    deadline = time.time() + timeout
    while True:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            return s
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.02)


class Lines:
    """Lines from a socket. The buffer is read from an offset, not split: splitting copied
    the rest of the buffer at every line, and a publisher reading 256 replies from one chunk
    spent more CPU on that than on anything it measured."""

    def __init__(self, sock, wait_with_poll=False):
        self.sock = sock
        self.buffer = bytearray()
        self.start = 0  # where the next line begins in buffer
        # A client that writes and then waits for the answer in a blocking recv is woken by
        # the kernel as soon as the server reads what it wrote (the freed send buffer wakes
        # every sleeper on the socket, whatever it waits for), runs for nothing, and on two
        # cores preempts the server mid-request. Waiting in poll() is woken only for data,
        # as an event-loop client (asyncio, Node, NIO) is.
        self.poller = None
        if wait_with_poll:
            self.poller = select.poll()
            self.poller.register(sock, select.POLLIN)

    def next(self):
        while True:
            end = self.buffer.find(b"\n", self.start)
            if end >= 0:
                line = bytes(self.buffer[self.start:end])
                self.start = end + 1
                return line
            del self.buffer[:self.start]
            self.start = 0
            if self.poller:
                self.poller.poll()
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                return None
            self.buffer += chunk

    def pending_lines(self):
        """Whole lines received and not yet read."""
        return self.buffer.count(b"\n", self.start)


# ---------------------------------------------------------------- latency

def subscriber(path, kind, expected, ready, results):
    sock = connect(path)
    lines = Lines(sock)
    if kind == "tilld":
        lines.next()  # hello
        sock.sendall(b'{"id":1,"op":"subscribe","topics":["bench.*"]}\n')
        while json.loads(lines.next()).get("type") != "reply":
            pass
    ready.put(1)
    latencies = []
    while len(latencies) < expected:
        line = lines.next()
        received = time.perf_counter_ns()
        if line is None:
            break
        message = json.loads(line)
        if kind == "tilld":
            if message.get("type") != "event":
                continue
            sent = message["data"]["t"]
        else:
            sent = message["t"]
        latencies.append(received - sent)
    results.put(latencies)


def start_subscribers(count, target, *args):
    """Starts `count` subscriber processes and returns once each has subscribed."""
    ready, results = mp.Queue(), mp.Queue()
    procs = [mp.Process(target=target, args=args + (ready, results)) for _ in range(count)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=30)
    return procs, results


# The publisher waits for each reply in poll() (see Lines); False: in a blocking recv, as the
# benchmarks did before 2026-12-06 (kept to measure what that cost).
PUBLISHER_WAITS_IN_POLL = True


def measure_latency(path, kind, subscribers, events, spacing):
    procs, results = start_subscribers(subscribers, subscriber, path, kind, events)
    pub = connect(path)
    lines = Lines(pub, wait_with_poll=PUBLISHER_WAITS_IN_POLL)
    if kind == "tilld":
        lines.next()
    for i in range(events):
        t = time.perf_counter_ns()
        if kind == "tilld":
            pub.sendall(b'{"id":%d,"op":"publish","topic":"bench.tick","data":{"t":%d}}\n' % (i, t))
            lines.next()  # the ack: publish is sequential, as a POS would do it
        else:
            pub.sendall(b'{"t":%d}\n' % t)
            if kind == "relay-ack":
                lines.next()  # the relay's acknowledgement (relay --ack), waited for as tilld's is
        time.sleep(spacing)
    all_latencies = []
    for _ in procs:
        all_latencies += results.get(timeout=60)
    for p in procs:
        p.join()
    pub.close()
    us = [v / 1000 for v in all_latencies]
    return {"median_us": statistics.median(us), "p99_us": percentile(us, 99), "samples": len(us),
            "expected": events * subscribers}


# ---------------------------------------------------------------- fan-out throughput

def counting_subscriber(path, expected, kind, ready, results):
    sock = connect(path)
    lines = Lines(sock)
    if kind == "tilld":
        lines.next()
        sock.sendall(b'{"id":1,"op":"subscribe","topics":["bench.*"]}\n')
        while b'"type":"reply"' not in lines.next():
            pass
    ready.put(1)
    cpu_start = time.process_time()  # this subscriber's CPU from here: counting, not starting up
    # After the subscribe reply every line is an event (a lagged notice would end the count short).
    # One buffer for every read: sock.recv(1 << 20) allocated a megabyte per call, and that was
    # most of the subscribers' CPU (they then needed two cores at 50,000 events/s).
    count = lines.pending_lines()
    buffer = bytearray(1 << 20)
    while count < expected:
        n = sock.recv_into(buffer)
        if not n:
            break
        count += buffer.count(b"\n", 0, n)
    results.put((count, time.perf_counter_ns(), time.process_time() - cpu_start))


def cpu_seconds(pid):
    """User + system CPU of a running process, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_calls(pid):
    """write-family system calls a process made (/proc/PID/io syscw: write, writev, pwrite)."""
    with open("/proc/%d/io" % pid) as f:
        return int(next(line for line in f if line.startswith("syscw:")).split()[1])


def measure_fanout(path, subscribers, events, kind="tilld", server_pid=None, window=256):
    """Events/s with every event to every subscriber, and where the CPU went: the server's
    (given its pid), the subscribers' (each counts its own from its subscription on) and the
    publisher's (this process), each per event, beside the server's
    writes per subscriber (how many events one write carries). On a two-core box the clients'
    share bounds the rate as much as the server's."""
    procs, results = start_subscribers(subscribers, counting_subscriber, path, events, kind)
    pub = connect(path)
    lines = Lines(pub)
    if kind == "tilld":
        lines.next()
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    server_before = (cpu_seconds(server_pid), write_calls(server_pid)) if server_pid else None
    start = time.perf_counter_ns()
    if kind == "tilld":
        sent = acked = 0  # window: requests in flight at most
        while acked < events:
            # Whatever the window has room for, in one write (a write per publish was most of
            # the publisher's CPU); then every reply that has arrived.
            room = min(events - sent, window - (sent - acked))
            if room > 0:
                pub.sendall(b"".join(b'{"id":%d,"op":"publish","topic":"bench.fan","data":{"n":%d}}\n' % (n, n)
                                     for n in range(sent, sent + room)))
                sent += room
            if b'"type":"reply"' in lines.next():
                acked += 1
            for _ in range(lines.pending_lines()):
                if b'"type":"reply"' in lines.next():
                    acked += 1
    else:
        # The relay has no acknowledgements: send in batches of the same window.
        for first in range(0, events, window):
            pub.sendall(b"".join(b'{"topic":"bench.fan","n":%d}\n' % n for n in range(first, min(events, first + window))))
    counts = [results.get(timeout=120) for _ in procs]
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    server_after = (cpu_seconds(server_pid), write_calls(server_pid)) if server_pid else None
    for p in procs:
        p.join()
    end = max(t for _, t, _ in counts)
    received = [c for c, _, _ in counts]
    seconds = (end - start) / 1e9

    def used(before, after):
        return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime

    result = {"events": events, "subscribers": subscribers, "all_received": all(c >= events for c in received),
              "events_per_s": events / seconds, "deliveries_per_s": events * subscribers / seconds,
              "subscribers_cpu_us_per_event": sum(c for _, _, c in counts) / events * 1e6,
              "publisher_cpu_us_per_event": used(self_before, self_after) / events * 1e6}
    if server_before:
        result["server_cpu_us_per_event"] = (server_after[0] - server_before[0]) / events * 1e6
        writes = server_after[1] - server_before[1]
        result["events_per_write"] = events * subscribers / writes if writes else None
    return result


# ---------------------------------------------------------------- helpers to run tilld

def start_tilld(binary, workdir, sync="full", notify=None, env_extra=None, wrapper=()):
    config = os.path.join(workdir, "tilld.toml")
    with open(config, "w") as f:
        f.write('[journal]\nsync = "%s"\n[socket]\nqueue_bytes = 67108864\n' % sync)
    sock = os.path.join(workdir, "tilld.sock")
    env = dict(os.environ)
    env.pop("LISTEN_FDS", None)
    env.pop("NOTIFY_SOCKET", None)
    if notify:
        env["NOTIFY_SOCKET"] = notify
    env.update(env_extra or {})
    proc = subprocess.Popen(list(wrapper) + [binary, "--socket", sock, "--state-dir", os.path.join(workdir, "state"),
                             "--config", config, "--log-level", "warning"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, sock


def stop(proc):
    proc.terminate()
    proc.wait(timeout=30)


def child_of(pid):
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return int(f.read().split()[0])


def count_syncs(binary, phase, quick):
    """Runs tilld under strace counting fsync and fdatasync; returns syncs per acknowledged publish."""
    with tempfile.TemporaryDirectory() as tw:
        summary = os.path.join(tw, "strace.txt")
        proc, sock = start_tilld(binary, tw, sync="full", wrapper=(
            "strace", "--seccomp-bpf", "-f", "-c", "-U", "calls", "-e", "trace=fsync,fdatasync", "-o", summary))
        connect(sock).close()
        time.sleep(0.3)
        if phase == "low":
            publishes = 300 if quick else 1000
            measure_latency(sock, "tilld", 1, publishes, 0.002)
        else:
            publishes = 5000 if quick else 20000
            measure_fanout(sock, 32, publishes)
        os.kill(child_of(proc.pid), 15)
        proc.wait(timeout=60)
        calls = 0
        with open(summary) as f:
            for line in f:
                words = line.split()
                if len(words) == 2 and words[1] in ("fsync", "fdatasync"):
                    calls += int(words[0])
        return {"publishes": publishes, "syncs": calls, "syncs_per_publish": calls / publishes}


def proc_stat(pid):
    cpu = cpu_seconds(pid)
    switches = {}
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/status" % (pid, task)) as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    switches[task] = switches.get(task, 0) + int(line.split()[1])
    memory = {}
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith(("VmRSS", "RssAnon", "RssFile")):
                memory[l.split(":")[0]] = int(l.split()[1]) / 1024
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for l in f:
            if l.startswith("Pss:"):
                memory["Pss"] = int(l.split()[1]) / 1024
    return cpu, switches, memory


def measure_idle(binary, seconds):
    """tilld idle beside the floor: a minimal idle Swift program (Benchmarks/idle_floor.swift),
    measured over the same window."""
    with tempfile.TemporaryDirectory() as work:
        floor_bin = os.path.join(work, "idle_floor")
        subprocess.check_call(["swiftc", "-O", "-parse-as-library", os.path.join(HERE, "idle_floor.swift"), "-o", floor_bin])
        floor = subprocess.Popen([floor_bin])
        proc, sock = start_tilld(binary, work)
        connect(sock).close()
        time.sleep(3)
        before = {name: proc_stat(p.pid) for name, p in (("tilld", proc), ("floor", floor))}
        time.sleep(seconds)
        after = {name: proc_stat(p.pid) for name, p in (("tilld", proc), ("floor", floor))}
        stop(proc)
        floor.kill()
        result = {}
        for name in ("tilld", "floor"):
            cpu0, sw0, _ = before[name]
            cpu1, sw1, memory = after[name]
            # Wake-ups: context switches of the threads that lived through the whole window.
            switches = sum(sw1[t] - sw0[t] for t in sw1 if t in sw0)
            result[name] = {"seconds": seconds, "rss_mb": memory["VmRSS"], "anon_mb": memory["RssAnon"],
                            "file_mb": memory["RssFile"], "pss_mb": memory.get("Pss"), "cpu_seconds": cpu1 - cpu0,
                            "cpu_percent": 100 * (cpu1 - cpu0) / seconds, "context_switches": switches}
        return result


def measure_ready(binary, runs):
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as work:
            notify_path = os.path.join(work, "notify")
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            listener.bind(notify_path)
            start = time.perf_counter()
            proc, _ = start_tilld(binary, work, notify=notify_path)
            while True:
                r, _, _ = select.select([listener], [], [], 30)
                if not r:
                    raise RuntimeError("no READY=1")
                if b"READY=1" in listener.recv(4096):
                    times.append((time.perf_counter() - start) * 1000)
                    break
            stop(proc)
            listener.close()
    return {"runs": runs, "median_ms": statistics.median(times), "p99_ms": percentile(times, 99)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tilld", default=os.path.join(HERE, "..", ".build", "release", "tilld"))
    parser.add_argument("--quick", action="store_true", help="fewer samples, 10 s idle")
    parser.add_argument("--only", default="latency,fanout,syncs,idle,ready",
                        help="comma-separated phases: latency, fanout, syncs, idle, ready")
    parser.add_argument("--fan-events", type=int, help="events in the fan-out (default 20,000; 5,000 with --quick)")
    parser.add_argument("--fan-window", type=int, default=256,
                        help="the fan-out publisher's requests in flight (the relay's: lines per write)")
    args = parser.parse_args()
    phases = set(args.only.split(","))
    events = 300 if args.quick else 1000
    fan_events = args.fan_events or (5000 if args.quick else 20000)
    idle_seconds = 10 if args.quick else 60
    results = {}

    with tempfile.TemporaryDirectory() as work:
        relay_bin = os.path.join(work, "relay")
        subprocess.check_call(["cc", "-O2", "-o", relay_bin, os.path.join(HERE, "relay.c")])

        def run_floor(name, measure):
            sock = os.path.join(work, name + ".sock")
            # The durable floor is the same relay given a file to append to and fdatasync;
            # "durable-ack" also acknowledges each line to its publisher, which waits for it.
            extra = [os.path.join(work, name + ".log")] if name.startswith("durable") else []
            relay = subprocess.Popen([relay_bin] + (["--ack"] if name == "durable-ack" else []) + [sock] + extra)
            connect(sock).close()
            time.sleep(0.2)  # the probe connection has gone before the measurement starts
            try:
                return measure(sock, relay.pid)
            finally:
                relay.terminate()
                relay.wait()

        if "latency" in phases:
            for name in ("relay", "durable", "durable-ack"):
                for subs in (1, 32):
                    kind = "relay-ack" if name == "durable-ack" else "relay"
                    results["%s_%d" % (name, subs)] = run_floor(name, lambda sock, _: measure_latency(sock, kind, subs, events, 0.002))
            for sync in ("full", "normal"):
                with tempfile.TemporaryDirectory() as tw:
                    proc, sock = start_tilld(args.tilld, tw, sync=sync)
                    connect(sock).close()
                    for subs in (1, 32):
                        results["tilld_%s_%d" % (sync, subs)] = measure_latency(sock, "tilld", subs, events, 0.002)
                    stop(proc)
        if "fanout" in phases:
            results["fanout_durable_32"] = run_floor("durable", lambda sock, pid: measure_fanout(sock, 32, fan_events, kind="relay", server_pid=pid, window=args.fan_window))
            with tempfile.TemporaryDirectory() as tw:
                proc, sock = start_tilld(args.tilld, tw, sync="full")
                connect(sock).close()
                results["fanout_32"] = measure_fanout(sock, 32, fan_events, server_pid=proc.pid, window=args.fan_window)
                stop(proc)
    if "syncs" in phases:
        results["syncs_low"] = count_syncs(args.tilld, "low", args.quick)
        results["syncs_high"] = count_syncs(args.tilld, "high", args.quick)
    if "idle" in phases:
        results["idle"] = measure_idle(args.tilld, idle_seconds)
    if "ready" in phases:
        results["ready"] = measure_ready(args.tilld, 5 if args.quick else 20)

    print(json.dumps(results, indent=2))
    if "latency" in phases:
        print("\npublish -> subscriber latency (µs)   median      p99   vs durable floor: median  p99   (vs acked floor; vs bare relay median)")
        for subs in (1, 32):
            bare = results["relay_%d" % subs]
            base = results["durable_%d" % subs]
            acked = results["durable-ack_%d" % subs]
            print("  bare relay,      %2d sub       %9.1f %9.1f" % (subs, bare["median_us"], bare["p99_us"]))
            print("  durable relay,   %2d sub       %9.1f %9.1f" % (subs, base["median_us"], base["p99_us"]))
            print("  durable + ack,   %2d sub       %9.1f %9.1f" % (subs, acked["median_us"], acked["p99_us"]))
            for sync in ("full", "normal"):
                r = results["tilld_%s_%d" % (sync, subs)]
                print("  tilld sync=%-6s %2d sub       %9.1f %9.1f          x%.2f  x%.2f   (x%.2f; x%.1f)  %d/%d delivered" % (
                    sync, subs, r["median_us"], r["p99_us"], r["median_us"] / base["median_us"], r["p99_us"] / base["p99_us"],
                    r["median_us"] / acked["median_us"], r["median_us"] / bare["median_us"], r["samples"], r["expected"]))
    if "fanout" in phases:
        for key, label in (("fanout_durable_32", "durable relay"), ("fanout_32", "tilld sync=full")):
            f = results[key]
            print("fan-out to 32 subscribers, %-15s %.0f events/s (%.0f deliveries/s), every event to every subscriber: %s; %d in flight" % (
                label + ":", f["events_per_s"], f["deliveries_per_s"], f["all_received"], args.fan_window))
            # /proc counts CPU in ticks: a server that used less than one shows as under one.
            tick_us = 1e6 / os.sysconf("SC_CLK_TCK") / f["events"]
            server = f["server_cpu_us_per_event"]
            print("  CPU per event: server %s µs, 32 subscribers %.1f µs, publisher %.1f µs; %.0f events per write" % (
                "%.1f" % server if server else "under %.1f" % tick_us, f["subscribers_cpu_us_per_event"],
                f["publisher_cpu_us_per_event"], f["events_per_write"] or 0))
            print("  at 100,000 events/s these costs would need %.1f cores (this machine has %d)" % (
                (f["server_cpu_us_per_event"] + f["subscribers_cpu_us_per_event"] + f["publisher_cpu_us_per_event"]) / 10, os.cpu_count()))
    if "syncs" in phases:
        for key, label in (("syncs_low", "low load (one publish at a time)"), ("syncs_high", "high load (256 in flight, 32 subscribers)")):
            r = results[key]
            print("syncs per acknowledged publish, %s: %.3f (%d syncs for %d publishes)" % (label, r["syncs_per_publish"], r["syncs"], r["publishes"]))
    if "idle" in phases:
        for name, label in (("tilld", "tilld"), ("floor", "idle Swift floor")):
            i = results["idle"][name]
            print("idle %d s, %-16s RSS %.1f MB (anonymous %.1f MB, library/file pages %.1f MB, PSS %.1f MB), CPU %.3f s, %d context switches" % (
                i["seconds"], label + ":", i["rss_mb"], i["anon_mb"], i["file_mb"], i["pss_mb"] or 0, i["cpu_seconds"], i["context_switches"]))
    if "ready" in phases:
        r = results["ready"]
        print("start to READY=1: median %.1f ms, p99 %.1f ms over %d runs" % (r["median_ms"], r["p99_ms"], r["runs"]))


if __name__ == "__main__":
    main()
