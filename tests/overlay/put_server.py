#!/usr/bin/env python3
"""A minimal backup store for the HTTP destination test, on Python's
http.server: PUT stores the body (chunked or with Content-Length) under DIR
only once it has arrived completely, GET returns it; both need
"Authorization: Bearer TOKEN". Writes its port to PORTFILE.
Usage: put_server.py DIR TOKEN PORTFILE"""
import http.server
import os
import sys

root, token, portfile = sys.argv[1], sys.argv[2], sys.argv[3]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def authorized(self):
        if self.headers.get("Authorization") == f"Bearer {token}":
            return True
        self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def target(self):
        return os.path.join(root, os.path.basename(self.path))

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                line = self.rfile.readline()
                if not line:
                    return None  # connection closed mid-upload
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                chunk = self.rfile.read(size)
                if len(chunk) < size:
                    return None
                parts.append(chunk)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        return body if len(body) == length else None

    def do_PUT(self):
        if not self.authorized():
            return
        body = self.read_body()
        if body is None:
            self.close_connection = True
            return
        with open(self.target() + ".part", "wb") as f:
            f.write(body)
        os.rename(self.target() + ".part", self.target())
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        if not self.authorized():
            return
        try:
            body = open(self.target(), "rb").read()
        except OSError:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(portfile + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(portfile + ".tmp", portfile)
server.serve_forever()
