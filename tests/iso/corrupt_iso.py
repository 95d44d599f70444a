#!/usr/bin/env python3
"""Writes corrupted copies of a plain (Rock Ridge, no Joliet) ISO image, one
per kind of damage, for tests/iso/bad_input_test.sh.

Usage: corrupt_iso.py GOOD.iso OUTDIR
Walks the primary volume descriptor's directory tree (ECMA-119 9.1) to find
the records to damage."""
import os
import struct
import sys

BLOCK = 2048


def records(img, lba, length):
    """Yields (offset, record) for the directory extent at lba."""
    pos, end = lba * BLOCK, lba * BLOCK + length
    while pos < end:
        n = img[pos]
        if n == 0:  # records never span blocks: skip to the next block
            pos = (pos // BLOCK + 1) * BLOCK
            continue
        name_len = img[pos + 32]
        yield pos, img[pos + 33:pos + 33 + name_len], img[pos + 25]
        pos += n


def set_both(img, off, value):
    """Both-endian 32-bit field (ECMA-119 7.3.3)."""
    struct.pack_into("<I", img, off, value)
    struct.pack_into(">I", img, off + 4, value)


def main():
    good, out = sys.argv[1], sys.argv[2]
    data = open(good, "rb").read()
    pvd = 16 * BLOCK
    root_lba = struct.unpack_from("<I", data, pvd + 156 + 2)[0]
    root_len = struct.unpack_from("<I", data, pvd + 156 + 10)[0]
    subdir = file_rec = None
    for off, name, flags in records(data, root_lba, root_len):
        if name in (b"\x00", b"\x01"):
            continue
        if flags & 2 and subdir is None:
            subdir = off
        if not flags & 2 and file_rec is None:
            file_rec = off
    assert subdir is not None and file_rec is not None, "need a subdirectory and a file at the root"

    def write(name, img):
        with open(os.path.join(out, name + ".iso"), "wb") as f:
            f.write(img)

    write("empty", b"")
    write("random", os.urandom(1 << 20))
    write("truncated", data[: 18 * BLOCK + 100])
    file_lba = struct.unpack_from("<I", data, file_rec + 2)[0]
    write("truncated-content", data[: file_lba * BLOCK + 1000])
    img = bytearray(data)
    img[pvd] = 7  # volume descriptor type: neither primary nor terminator
    img[pvd + 1:pvd + 6] = b"XXXXX"
    write("no-pvd", img)
    img = bytearray(data)
    set_both(img, subdir + 2, 0x7FFFFFF0)
    write("dir-past-end", img)
    img = bytearray(data)
    set_both(img, subdir + 2, root_lba)
    write("dir-loop", img)
    img = bytearray(data)
    set_both(img, file_rec + 10, 0xFFFFFFF0)
    write("absurd-size", img)
    img = bytearray(data)
    set_both(img, pvd + 80, 0xFFFFFFF0)  # volume space size: 8 TiB
    write("absurd-volume-size", img)


if __name__ == "__main__":
    main()
