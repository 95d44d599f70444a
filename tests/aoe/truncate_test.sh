#!/usr/bin/env bash
# `isoboot aoe export` of a file that shrinks while a client reads it, on a
# veth pair in a private network namespace, with each way of reading it: the
# mapping (the default, where a read past the new end raises a SIGBUS that
# the export must catch) and --pread. Either way a read past the new end
# gets an error answer, the export keeps running, and reads within the new
# size get the right bytes.
set -euo pipefail
: "${ISOBOOT_BIN:?}" "${ISOBOOT_TEST_TMP:=/tmp}"
ns="isoboot-aoetrunc-$$"
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp aoe-truncate
dir=$tmp
fail_logs=("$dir/export.log")
pid=
reader=
cleanup() {
  if [[ -n $reader ]]; then kill "$reader" 2>/dev/null || true; wait "$reader" 2>/dev/null || true; fi
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  ip netns del "$ns" 2>/dev/null || true
}

ip netns add "$ns"
ip -n "$ns" link add name aoet type veth peer name aoei
ip -n "$ns" link set aoet up
ip -n "$ns" link set aoei up
run_case() {  # extra export flags
  head -c $((8 * 1024 * 1024)) /dev/urandom >"$dir/image"
  cp "$dir/image" "$dir/orig"

  ip netns exec "$ns" "$ISOBOOT_BIN" aoe export 0 1 aoet "$dir/image" --announce 0 "$@" \
    2>"$dir/export.log" &
  pid=$!
  for _ in $(seq 50); do
    ip netns exec "$ns" "$ISOBOOT_BIN" aoe discover -i aoei --wait 200 2>/dev/null | grep -q '^e0.1' &&
      break
  done

  # A client reading the whole disk over and over while the file shrinks.
  ip netns exec "$ns" bash -c 'for _ in $(seq 20); do
    timeout 20 "$1" aoe read e0.1 -i aoei -o "$2" 2>/dev/null || true; done' _ \
    "$ISOBOOT_BIN" "$dir/reader.img" &
  reader=$!
  sleep 0.5
  truncate -s $((1024 * 1024)) "$dir/image"
  sleep 1

  target_mac=$(ip netns exec "$ns" cat /sys/class/net/aoet/address)
  ip netns exec "$ns" python3 - "$target_mac" "$dir/orig" <<'PY' || fail "${1:-mmap}: wrong answers after the truncation"
import socket, struct, sys, time
target = bytes.fromhex(sys.argv[1].replace(":", ""))
orig = open(sys.argv[2], "rb").read()
me = bytes.fromhex("02cafe000001")
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88A2))
s.bind(("aoei", 0x88A2))
mreq = struct.pack("iHH8s", socket.if_nametoindex("aoei"), 1, 0, b"")
s.setsockopt(263, 1, mreq)  # promiscuous: answers go to the invented MAC
s.settimeout(0.2)

def read(lba, tag):
    s.send(target + me + b"\x88\xa2" + struct.pack(">BBHBBI", 0x10, 0, 0, 1, 0, tag) +
           struct.pack("<BBBB", 0x40, 0, 2, 0x24) + lba.to_bytes(6, "little") + b"\0\0")
    deadline = time.time() + 2
    while time.time() < deadline:
        try:
            r = s.recv(9100)
        except socket.timeout:
            continue
        if r[:6] == me and r[6:12] == target and struct.unpack(">I", r[20:24])[0] == tag:
            return r
    return None

bad = 0
tag = 1
for lba in (2048, 4096, 8000, 16382):     # past the new end (2048 sectors)
    r = read(lba, tag); tag += 1
    if r is None:
        print("no answer for LBA", lba); bad += 1
    elif not (r[14] & 0x04) and not (r[27] & 0x01):
        print("LBA %d past the new end answered without an error" % lba); bad += 1
    else:
        print("LBA %d: error answer (AoE flags %#x, ATA status %#x error %#x)" % (lba, r[14] & 15, r[27], r[25]))
for lba in (0, 100, 2046):                # within the new size
    r = read(lba, tag); tag += 1
    if r is None or r[14] & 0x04 or r[27] & 0x01:
        print("LBA %d within the new size failed" % lba); bad += 1
    elif r[36:36 + 1024] != orig[lba * 512:lba * 512 + 1024]:
        print("LBA %d: wrong bytes" % lba); bad += 1
sys.exit(1 if bad else 0)
PY
  kill -0 "$pid" 2>/dev/null || fail "${1:-mmap}: the export died: $(tail -5 "$dir/export.log")"
  kill "$reader" 2>/dev/null || true
  wait "$reader" 2>/dev/null || true
  reader=
  kill "$pid"
  wait "$pid" || fail "${1:-mmap}: export did not exit cleanly"
  pid=
}

run_case
run_case --pread
echo PASS
