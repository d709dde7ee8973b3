#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A small HTTP file server for the artifact tests, with faults on demand.

usage: httpd.py ROOT PORT_FILE LOG_FILE

Serves the files under ROOT on 127.0.0.1 at a port the kernel picks (written
to PORT_FILE once listening), answering GET and HEAD with range requests
("Range: bytes=N-" and "bytes=N-M"). A path's first component picks a
fault, the rest names the file:
  /FILE          served whole (or the range asked for)
  /cut/FILE      the first GET sends half the file, then closes the
                 connection although Content-Length promised all of it;
                 later GETs are served normally
  /stall/FILE    every GET sends half the file, then sends nothing more and
                 holds the connection open
  /norange/FILE  ranges are ignored: always 200 and the whole file
  /slow/FILE     sent 32 KiB at a time, 100 ms apart
Every request is one line in LOG_FILE:
  METHOD PATH range=RANGE status=STATUS bytes=BYTES
"""
import http.server
import os
import re
import sys
import threading
import time

ROOT, PORT_FILE, LOG_FILE = sys.argv[1:4]
lock = threading.Lock()
cut_done = set()


def log(line):
    with lock:
        with open(LOG_FILE, "a") as f:
            f.write(line + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.serve(body=False)

    def do_GET(self):
        self.serve(body=True)

    def serve(self, body):
        parts = self.path.lstrip("/").split("/", 1)
        fault = parts[0] if len(parts) == 2 and parts[0] in (
            "cut", "stall", "norange", "slow") else ""
        name = parts[1] if fault else self.path.lstrip("/")
        rng = self.headers.get("Range", "")
        path = os.path.realpath(os.path.join(ROOT, name))
        if not path.startswith(os.path.realpath(ROOT) + "/") or \
                not os.path.isfile(path):
            self.send_error(404)
            log("%s %s range=%s status=404 bytes=0" %
                (self.command, self.path, rng or "-"))
            return
        with open(path, "rb") as f:
            data = f.read()
        size = len(data)
        start, end, status = 0, size - 1, 200
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng)
        if m and fault != "norange":
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else size - 1
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % size)
                self.send_header("Content-Length", "0")
                self.end_headers()
                log("%s %s range=%s status=416 bytes=0" %
                    (self.command, self.path, rng))
                return
            status = 206
        part = data[start:end + 1]
        self.send_response(status)
        self.send_header("Content-Length", str(len(part)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range",
                             "bytes %d-%d/%d" % (start, end, size))
        self.end_headers()
        sent = 0
        if body:
            first_cut = False
            if fault == "cut":
                with lock:
                    first_cut = self.path not in cut_done
                    cut_done.add(self.path)
            if fault == "stall" or first_cut:
                half = part[:len(part) // 2]
                self.wfile.write(half)
                self.wfile.flush()
                sent = len(half)
                log("%s %s range=%s status=%d bytes=%d fault=%s" %
                    (self.command, self.path, rng or "-", status, sent,
                     fault))
                if fault == "stall":
                    time.sleep(600)
                self.close_connection = True
                return
            if fault == "slow":
                for i in range(0, len(part), 32768):
                    self.wfile.write(part[i:i + 32768])
                    self.wfile.flush()
                    time.sleep(0.1)
            else:
                self.wfile.write(part)
            sent = len(part)
        log("%s %s range=%s status=%d bytes=%d" %
            (self.command, self.path, rng or "-", status, sent))


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(PORT_FILE + ".tmp", "w") as f:
    f.write("%d\n" % server.server_address[1])
os.rename(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
