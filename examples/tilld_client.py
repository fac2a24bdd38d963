#!/usr/bin/env python3
"""A complete tilld client in plain Python (standard library only).

Subscribes to topics and prints each event, resuming after a disconnect or a
`lagged` notice from the last seq it saw, so it never misses or repeats one.

    python3 examples/tilld_client.py --socket /run/tilld/tilld.sock 'scanner.*' 'sale.*'
    python3 examples/tilld_client.py --publish sale.voided '{"sale": "S1"}'
"""
import argparse
import json
import os
import socket
import sys
import time


class TilldClient:
    """One connection: a line reader, requests matched to replies by id."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        self.next_id = 0
        self.pending_events = []
        self.hello = self._read()
        if self.hello.get("type") != "hello" or self.hello.get("protocol") != 1:
            raise RuntimeError("not a protocol 1 tilld socket: %r" % self.hello)

    def _read(self):
        line = self.file.readline()
        if not line:
            raise ConnectionError("tilld closed the connection")
        return json.loads(line)

    def request(self, op, **params):
        """Send a request and return its result; events that arrive meanwhile are kept."""
        self.next_id += 1
        message = dict(params, id=self.next_id, op=op)
        self.sock.sendall((json.dumps(message) + "\n").encode())
        while True:
            line = self._read()
            if line.get("type") == "reply" and line.get("id") == self.next_id:
                if not line["ok"]:
                    error = line["error"]
                    raise RuntimeError("%s: %s" % (error["code"], error["message"]))
                return line["result"]
            self.pending_events.append(line)

    def lines(self):
        """Yields events and lag notices, in order."""
        while self.pending_events:
            yield self.pending_events.pop(0)
        while True:
            yield self._read()

    def close(self):
        self.sock.close()


def watch(path, topics, count):
    last_seq = None
    shown = 0
    while True:
        try:
            client = TilldClient(path)
        except OSError as error:
            print("cannot connect to %s: %s; retrying" % (path, error), file=sys.stderr)
            time.sleep(1)
            continue
        params = {"topics": topics}
        if last_seq is not None:
            params["since"] = last_seq
        client.request("subscribe", **params)
        print("subscribed to %s" % ", ".join(topics), file=sys.stderr, flush=True)
        try:
            for line in client.lines():
                if line["type"] == "event":
                    last_seq = line["seq"]
                    print("%d %s %s %s" % (line["seq"], line["topic"], line["device"] or "-", json.dumps(line["data"], sort_keys=True)), flush=True)
                    shown += 1
                    if count and shown >= count:
                        return
                elif line["type"] == "lagged":
                    last_seq = line["seq"]
                    print("fell behind at %d; resuming" % last_seq, file=sys.stderr)
                    break
        except ConnectionError:
            print("connection lost; resuming from %s" % last_seq, file=sys.stderr)
        finally:
            client.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", default=os.environ.get("TILLD_SOCKET", "/run/tilld/tilld.sock"))
    parser.add_argument("--count", type=int, default=0, help="stop after this many events")
    parser.add_argument("--publish", nargs=2, metavar=("TOPIC", "JSON"), help="publish one event and exit")
    parser.add_argument("topics", nargs="*", default=["*"])
    args = parser.parse_args()
    if args.publish:
        client = TilldClient(args.socket)
        result = client.request("publish", topic=args.publish[0], data=json.loads(args.publish[1]))
        print("published as seq %d" % result["seq"])
        return
    watch(args.socket, args.topics or ["*"], args.count)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
