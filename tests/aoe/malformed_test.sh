#!/usr/bin/env bash
# Bad input against `isoboot aoe export` over a veth pair in a private
# network namespace: thousands of truncated frames, wrong versions, bad
# sub-commands and garbage (which must be dropped and counted), then unknown
# commands, out-of-range LBAs, oversized reads and writes to the read-only
# export (which must each get an error answer). Afterwards the target must
# still serve the right bytes, and its per-client counters must match what
# was sent.
set -euo pipefail
: "${ISOBOOT_BIN:?}" "${ISOBOOT_TEST_TMP:=/tmp}"
ns="isoboot-aoebad-$$"
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp aoe-malformed
dir=$tmp
pid=
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  ip netns del "$ns" 2>/dev/null || true
}

ip netns add "$ns"
ip -n "$ns" link add name aoet type veth peer name aoei
ip -n "$ns" link set aoet up
ip -n "$ns" link set aoei up
head -c $((1024 * 1024)) /dev/urandom >"$dir/image"
want=$(sha256sum <"$dir/image" | cut -d' ' -f1)

# `ip netns exec` execs the target, so $! is its PID.
ip netns exec "$ns" "$ISOBOOT_BIN" aoe export 0 1 aoet "$dir/image" --announce 0 \
  --stats-file "$dir/stats" 2>"$dir/export.log" &
pid=$!
for _ in $(seq 50); do
  ip netns exec "$ns" "$ISOBOOT_BIN" aoe discover -i aoei --wait 200 2>/dev/null | grep -q '^e0.1' &&
    break
done

target_mac=$(ip netns exec "$ns" cat /sys/class/net/aoet/address)
ip netns exec "$ns" python3 - "$target_mac" "$dir/sent" <<'PY'
import os, random, socket, struct, sys, time

target = bytes.fromhex(sys.argv[1].replace(":", ""))
bad_mac = bytes.fromhex("02bad0000001")
err_mac = bytes.fromhex("02e770000001")
rng = random.Random(1234)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88A2))
s.bind(("aoei", 0x88A2))
s.settimeout(2.0)

def header(src, cmd, ver=1, shelf=0, slot=1, tag=0):
    return target + src + b"\x88\xa2" + struct.pack(">BBHBBI", ver << 4, 0, shelf, slot, cmd, tag)

def ata(src, cmd, lba, count, aflags=0x40, tag=0, data=b""):
    return header(src, 0, tag=tag) + struct.pack("<BBBB", aflags, 0, count, cmd) + \
        lba.to_bytes(6, "little") + b"\0\0" + data

# Frames the codec must reject; none gets an answer.
malformed = []
full = ata(bad_mac, 0x24, 0, 1)
for n in range(15, len(full)):                 # every truncation of an ATA request
    malformed += [full[:n]] * 20
for v in list(range(0, 1)) + list(range(2, 16)):  # every wrong version
    malformed += [ata(bad_mac, 0x24, 0, 1)[:14] + bytes([v << 4]) + full[15:]] * 20
for ccmd in range(5, 16):                      # unknown Query Config sub-commands
    malformed.append(header(bad_mac, 1) + struct.pack(">HHBBH", 0, 0, 0, 0x10 | ccmd, 0))
for _ in range(300):                           # config string longer than the frame
    malformed.append(header(bad_mac, 1) + struct.pack(">HHBBH", 0, 0, 0, 0x10, rng.randint(1, 1024)))
malformed.append(header(bad_mac, 1) + struct.pack(">HHBBH", 0, 0, 0, 0x13, 1025) + b"x" * 1025)
for mcmd in range(2, 256, 16):                 # bad MAC mask commands / truncated lists
    malformed.append(header(bad_mac, 2) + bytes([0, mcmd, 0, 0]))
for _ in range(200):
    malformed.append(header(bad_mac, 2) + bytes([0, 1, 0, rng.randint(1, 255)]) + b"\0" * 7)
for rcmd in range(3, 256, 16):                 # bad reserve commands / truncated lists
    malformed.append(header(bad_mac, 3) + bytes([rcmd, 0]))
for _ in range(200):
    malformed.append(header(bad_mac, 3) + bytes([1, rng.randint(1, 255)]) + b"\0" * 5)
for _ in range(2000):                          # garbage with a wrong version nibble
    ver = rng.choice([v for v in range(16) if v != 1])
    body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 60)))
    malformed.append(target + bad_mac + b"\x88\xa2" + bytes([ver << 4 | rng.randint(0, 15)]) + body)
for f in malformed:
    s.send(f)

# Requests that are well formed but wrong; each must get an error answer.
errors = 0
def expect_error(frame, tag):
    global errors
    s.send(frame)
    deadline = time.time() + 2
    while time.time() < deadline:
        r = s.recv(9100)
        if r[:6] != err_mac or r[6:12] != target or struct.unpack(">I", r[20:24])[0] != tag:
            continue
        flags, aoe_err = r[14] & 0x0F, r[15]
        status = r[27] if len(r) >= 28 else 0
        assert flags & 0x8, "answer without the response flag"
        assert (flags & 0x4) or (status & 0x01), "expected an error answer: %r" % r[:40]
        errors += 1
        return
    raise SystemExit("no answer to tag %d" % tag)

tag = 1
for cmd in range(4, 256, 2):                   # unknown AoE commands
    expect_error(header(err_mac, cmd, tag=tag), tag); tag += 1
sectors = 1024 * 1024 // 512
for i in range(500):                           # reads past the end, LBA28 and LBA48
    lba = sectors - rng.randint(0, 1) + rng.randint(0, 1 << 40)
    expect_error(ata(err_mac, rng.choice([0x24, 0x20]), lba if lba >= sectors else sectors, 2, tag=tag), tag); tag += 1
for i in range(300):                           # writes to the read-only export
    expect_error(ata(err_mac, 0x34, i, 1, aflags=0x41, tag=tag, data=b"\xee" * 512), tag); tag += 1
for i in range(100):                           # more sectors than a frame holds
    expect_error(ata(err_mac, 0x24, 0, rng.randint(3, 255), tag=tag), tag); tag += 1
for i in range(50):                            # commands a disk does not implement
    expect_error(ata(err_mac, 0xB0 + (i % 16), 0, 0, tag=tag), tag); tag += 1
open(sys.argv[2], "w").write("%d %d\n" % (len(malformed), errors))
PY
read -r sent_malformed sent_errors <"$dir/sent"
echo "sent $sent_malformed malformed frames and $sent_errors erroneous requests"

ip netns exec "$ns" "$ISOBOOT_BIN" aoe read e0.1 -i aoei -o "$dir/out" 2>/dev/null ||
  fail "read after the bad frames failed"
[[ $(sha256sum <"$dir/out" | cut -d' ' -f1) == "$want" ]] || fail "wrong bytes after bad frames"
cmp -s "$dir/out" "$dir/image" || fail "image changed"

kill "$pid"
wait "$pid" || fail "export did not exit cleanly: $(cat "$dir/export.log")"
pid=
grep -q "02:ba:d0:00:00:01 frames=$sent_malformed .* dropped=$sent_malformed" "$dir/stats" ||
  fail "malformed frames not all counted: $(cat "$dir/stats")"
grep -q "02:e7:70:00:00:01 frames=$sent_errors .* ata_errors=$sent_errors dropped=0" "$dir/stats" ||
  fail "error answers not all counted: $(cat "$dir/stats")"
echo PASS
