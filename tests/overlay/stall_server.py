#!/usr/bin/env python3
"""HTTP servers that misbehave, on 127.0.0.1, for the restore download's
limits. Writes the port to PORTFILE once listening, then serves until killed.
Usage: stall_server.py MODE PORTFILE
MODE: silent    accepts, reads the request, never answers
      trickle   answers 200 with a Content-Length, sends 1000 bytes, stalls
      announce  answers 200 with a Content-Length of 20 GiB, sends nothing more
      flood     answers 200 chunked (no length) and sends 3 MiB of zeros
      backlog   listens with a full accept queue and never accepts, so that
                new connections are never established (SYNs are dropped)"""
import socket
import sys
import threading
import time

mode, portfile = sys.argv[1], sys.argv[2]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(0 if mode == "backlog" else 16)
port = srv.getsockname()[1]
held = []
if mode == "backlog":
    # Fill the accept queue (backlog 0 holds one) with connections of our own.
    for _ in range(2):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        held.append(c)
    time.sleep(0.5)
with open(portfile + ".tmp", "w") as f:
    f.write(str(port))
import os
os.rename(portfile + ".tmp", portfile)


def serve(conn):
    conn.recv(65536)  # the request
    if mode == "trickle":
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1000)
    elif mode == "announce":
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 21474836480\r\n\r\n")
    elif mode == "flood":
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"\0" * 65536
        try:
            for _ in range(48):
                conn.sendall(b"10000\r\n" + chunk + b"\r\n")
            conn.sendall(b"0\r\n\r\n")
        except OSError:
            return
    time.sleep(3600)  # then hold the connection open, silent


while True:
    if mode == "backlog":
        time.sleep(3600)
    conn, _ = srv.accept()
    held.append(conn)
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
