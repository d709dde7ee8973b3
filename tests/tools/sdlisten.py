#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Plays systemd's side of two sockets for the tests, one JSON line per
datagram into OUT (flushed at once):

  sdlisten.py notify SOCKET OUT [--probe tcp:HOST:PORT | unix:PATH]...
      the sd_notify socket (NOTIFY_SOCKET): {"t": monotonic seconds,
      "fields": {"READY": "1", ...}}. On the first READY=1 each probe is
      tried at once and written as {"probe": TARGET, "ok": true|false}:
      what a client would have found when systemd called the unit started.
  sdlisten.py journal SOCKET OUT
      the journal's native socket (/run/systemd/journal/socket): one
      {"fields": {...}} per entry, binary-safe values decoded.
"""
import json
import os
import socket
import struct
import sys
import time


def parse_notify(data):
    fields = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        if "=" in line:
            k, v = line.split("=", 1)
            fields[k] = v
    return fields


def parse_journal(data):
    """KEY=VALUE\\n, or KEY\\n + little-endian u64 length + VALUE + \\n."""
    fields = {}
    i = 0
    while i < len(data):
        nl = data.find(b"\n", i)
        if nl < 0:
            break
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            (n,) = struct.unpack_from("<Q", data, nl + 1)
            v = data[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        fields[k.decode()] = v.decode("utf-8", "replace")
    return fields


def probe(target):
    kind, _, where = target.partition(":")
    try:
        if kind == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(1)
            s.connect(where)
        else:
            host, _, port = where.rpartition(":")
            s = socket.create_connection((host, int(port)), timeout=1)
        s.close()
        return True
    except OSError:
        return False


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("notify", "journal"):
        sys.stderr.write(__doc__)
        return 2
    mode, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    probes = []
    args = sys.argv[4:]
    while args:
        if args[0] != "--probe" or len(args) < 2:
            sys.stderr.write("sdlisten: unexpected argument %s\n" % args[0])
            return 2
        probes.append(args[1])
        args = args[2:]

    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    ready_seen = False
    with open(out, "a", buffering=1) as f:
        while True:
            data = s.recv(1 << 17)
            t = time.monotonic()
            if mode == "journal":
                f.write(json.dumps({"t": t, "fields": parse_journal(data)}) + "\n")
                continue
            fields = parse_notify(data)
            f.write(json.dumps({"t": t, "fields": fields}) + "\n")
            if fields.get("READY") == "1" and not ready_seen:
                ready_seen = True
                for p in probes:
                    f.write(json.dumps({"probe": p, "ok": probe(p)}) + "\n")


if __name__ == "__main__":
    sys.exit(main())
