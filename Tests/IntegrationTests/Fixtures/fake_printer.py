#!/usr/bin/env python3
"""A receipt printer at the other end of a TCP connection (raw port 9100 style) or a
pseudo-terminal (a serial printer), for tilld's end-to-end printer tests.

  fake_printer.py tcp|pty STATE_DIR

It writes where it listens to STATE_DIR/address (a port number, or the pty's slave path),
appends every byte it is sent, status queries left out, to STATE_DIR/received, and answers
DLE EOT n from its condition, read from STATE_DIR/condition ("ok", "paper-out", "cover-open",
"silent" for no answers). It stops when STATE_DIR/stop exists.
"""
import os
import select
import socket
import sys
import time

mode, state = sys.argv[1], sys.argv[2]


def condition():
    try:
        with open(os.path.join(state, "condition")) as f:
            return f.read().strip() or "ok"
    except FileNotFoundError:
        return "ok"


def reply(n, cond):
    byte = 0x12
    if n == 1 and cond in ("paper-out", "cover-open"):
        byte |= 0x08
    if n == 2 and cond == "cover-open":
        byte |= 0x04
    if n == 2 and cond == "paper-out":
        byte |= 0x20
    if n == 4 and cond == "paper-out":
        byte |= 0x60
    return bytes([byte])


def serve(read, write, wait):
    pending = b""
    with open(os.path.join(state, "received"), "ab") as out:
        while not os.path.exists(os.path.join(state, "stop")):
            if not wait(0.05):
                continue
            data = read()
            if not data:
                return
            pending += data
            printable = b""
            i = 0
            while i < len(pending):
                if pending[i] == 0x10:
                    if i + 2 >= len(pending):
                        break
                    if pending[i + 1] == 0x04:
                        cond = condition()
                        if cond != "silent":
                            write(reply(pending[i + 2], cond))
                        i += 3
                        continue
                printable += pending[i:i + 1]
                i += 1
            pending = pending[i:]
            out.write(printable)
            out.flush()


if mode == "tcp":
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    with open(os.path.join(state, "address.tmp"), "w") as f:
        f.write(str(listener.getsockname()[1]))
    os.rename(os.path.join(state, "address.tmp"), os.path.join(state, "address"))
    while not os.path.exists(os.path.join(state, "stop")):
        ready, _, _ = select.select([listener], [], [], 0.1)
        if not ready:
            continue
        connection, _ = listener.accept()
        serve(lambda: connection.recv(65536), connection.sendall,
              lambda t: bool(select.select([connection], [], [], t)[0]))
        connection.close()
else:
    master, slave = os.openpty()
    import tty
    tty.setraw(slave)
    with open(os.path.join(state, "address.tmp"), "w") as f:
        f.write(os.ttyname(slave))
    os.rename(os.path.join(state, "address.tmp"), os.path.join(state, "address"))
    serve(lambda: os.read(master, 65536), lambda b: os.write(master, b),
          lambda t: bool(select.select([master], [], [], t)[0]))
