#!/usr/bin/env python3
"""Crafts overlay archives the way an attacker would: a pax tar made with
Python's tarfile, compressed with the zstd CLI, with a correct manifest and
a correct checksum trailer (trailer.h), so that only the path checks can
refuse them. Usage: craft.py KIND OUT
KIND: ok, dotdot, absolute, symlink-escape, hardlink-escape, hardlink-absolute,
dotdot-link (a hard link whose target has ..), bomb (64 MiB of zeros: a
well-formed archive of a few KiB that unpacks 1000 times bigger)."""
import hashlib
import io
import struct
import subprocess
import sys
import tarfile

kind, out = sys.argv[1], sys.argv[2]
members = []  # (TarInfo, data or None)


def add_file(name, data=b"payload\n"):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = 0o644
    members.append((ti, data))


def add_link(name, target, type_):
    ti = tarfile.TarInfo(name)
    ti.type = type_
    ti.linkname = target
    members.append((ti, None))


add_file("fine")
if kind == "dotdot":
    add_file("sub/../../escaped")
elif kind == "absolute":
    add_file("/tmp/isoboot-overlay-absolute-escape")
elif kind == "symlink-escape":
    add_link("link", sys.argv[3] if len(sys.argv) > 3 else "/tmp", tarfile.SYMTYPE)
    add_file("link/escaped")
elif kind == "hardlink-escape":
    add_link("hard", "../outside-file", tarfile.LNKTYPE)
elif kind == "hardlink-absolute":
    add_link("hard", "/etc/passwd", tarfile.LNKTYPE)
elif kind == "dotdot-link":
    add_link("hard", "fine/../../x", tarfile.LNKTYPE)
elif kind == "bomb":
    add_file("zeros", bytes(64 << 20))
elif kind != "ok":
    sys.exit(f"unknown kind {kind}")

lines = ["isoboot-overlay-manifest 1"]
for ti, data in members:
    if ti.type == tarfile.LNKTYPE:
        lines.append(f"h 0 - {ti.name}")
    elif ti.type == tarfile.SYMTYPE:
        lines.append(f"l 0 - {ti.name}")
    else:
        lines.append(f"f {len(data)} {hashlib.sha256(data).hexdigest()} {ti.name}")
manifest = ("\n".join(lines) + "\n").encode()

raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
    for ti, data in members:
        tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    mi = tarfile.TarInfo(".isoboot-overlay-manifest")
    mi.size = len(manifest)
    mi.mode = 0o600
    tar.addfile(mi, io.BytesIO(manifest))
body = subprocess.run(["zstd", "-q", "-c"], input=raw.getvalue(), check=True, capture_output=True).stdout
payload = f"isoboot-overlay v1 sha256={hashlib.sha256(body).hexdigest()} size={len(body):020}\n".encode()
with open(out, "wb") as f:
    f.write(body + struct.pack("<II", 0x184D2A5E, len(payload)) + payload)
