#!/usr/bin/env python3
"""A TCP proxy whose death is a network outage: every connection through it ends at once, and
nothing can connect until it is started again (on the same port).

    tcp_proxy.py PORT_FILE TARGET_PORT [--port N]

Listens on 127.0.0.1 (--port, else a free port, written to PORT_FILE) and relays each
connection to 127.0.0.1:TARGET_PORT."""
import os
import socket
import sys
import threading

port_file, target = sys.argv[1], int(sys.argv[2])
port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 0


def pipe(source, sink):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(64)
with open(port_file + ".tmp", "w") as f:
    f.write(str(listener.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)
while True:
    client, _ = listener.accept()
    try:
        upstream = socket.create_connection(("127.0.0.1", target))
    except OSError:
        client.close()
        continue
    threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
    threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
