#!/usr/bin/env python3
"""Prints one line per entry of a directory tree: path, type, mode, owner,
size, mtime, content sha256, symlink target, device number, hard-link group,
whether the file is sparse, and every xattr (name=hex value), sorted by path.
Two trees are equal for the overlay tests when their listings are equal.
Usage: listing.py DIR [--no-trusted] [--dir-mtimes]  (--no-trusted: skip
trusted.* and the root's own line, for comparing upper dirs whose root the
kernel marks; --dir-mtimes: directories' mtimes too)."""
import hashlib
import os
import stat
import sys

root = sys.argv[1]
skip_trusted = "--no-trusted" in sys.argv
dir_mtimes = "--dir-mtimes" in sys.argv
inodes = {}
lines = []
for dirpath, dirnames, filenames in os.walk(root):
    dirnames.sort()
    for name in [None] + sorted(dirnames + filenames):
        path = dirpath if name is None else os.path.join(dirpath, name)
        if name is None and dirpath != root:
            continue  # directories are listed by their parent
        rel = os.path.relpath(path, root)
        if skip_trusted and rel == ".":
            continue
        st = os.lstat(path)
        fields = [rel, stat.filemode(st.st_mode), f"{st.st_uid}:{st.st_gid}"]
        if stat.S_ISREG(st.st_mode):
            with open(path, "rb") as f:
                fields.append(f"size={st.st_size} sha256={hashlib.sha256(f.read()).hexdigest()}")
            fields.append(f"mtime={st.st_mtime_ns}")
            if st.st_size > 65536 and st.st_blocks * 512 < st.st_size // 2:
                fields.append("sparse")
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                fields.append(f"linkgroup={inodes.setdefault(key, rel)}")
        elif stat.S_ISDIR(st.st_mode) and dir_mtimes:
            fields.append(f"mtime={st.st_mtime_ns}")
        elif stat.S_ISLNK(st.st_mode):
            fields.append("-> " + os.readlink(path))
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            fields.append(f"rdev={os.major(st.st_rdev)},{os.minor(st.st_rdev)}")
        try:
            names = sorted(os.listxattr(path, follow_symlinks=False))
        except OSError:
            names = []
        for x in names:
            if skip_trusted and x.startswith("trusted."):
                continue
            v = os.getxattr(path, x, follow_symlinks=False)
            fields.append(f"{x}={v.hex()}")
        lines.append(" ".join(fields))
print("\n".join(lines))
