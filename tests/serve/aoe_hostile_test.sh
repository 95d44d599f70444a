#!/usr/bin/env bash
# A hostile MAC on the boot network against `isoboot serve`'s AoE export,
# over a veth pair between two network namespaces this test creates. From a
# spoofed MAC: Reserve/Release set and force set, a MAC Mask List add, Query
# Config set and force set; each must get an error answer and change nothing
# (the reservation, mask and config string still read as before), and a
# booted client on another MAC (aoe-load, an initiator written from the spec,
# or `isoboot aoe read`) reads the whole image before and after. Then reads
# from broadcast and multicast source MACs and a read for another target's
# MAC must get no answer at all; the exit log counts all of it.
#   AOE_LOAD_SRC  aoe-load.c to build the client from (default
#                 /work/shared/tools/aoe-load/aoe-load.c; without it the
#                 client is `isoboot aoe read`)
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
: "${ISOBOOT_BIN:?}"
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp aoe-hostile
fail_logs=("$tmp/serve.log")
srv=isb-hsrv-$$
cli=isb-hcli-$$
pid=
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
}

"$src/scripts/make-layout-iso.sh" kiwi "$tmp/live.iso" >/dev/null
veth_pair "$srv" "$cli"
ip -n "$srv" addr add 10.78.0.1/24 dev veth-s

aoe_load_src=${AOE_LOAD_SRC:-/work/shared/tools/aoe-load/aoe-load.c}
client=()
if [[ -f $aoe_load_src ]] && cc -O2 -o "$tmp/aoe-load" "$aoe_load_src" 2>/dev/null; then
  client=(aoe-load)
fi
# booted_read: the booted client reads the whole export and checks every byte.
booted_read() {
  if [[ ${client[0]:-} == aoe-load ]]; then
    ip netns exec "$cli" timeout 60 "$tmp/aoe-load" -i veth-c -d 0.1 -f "$tmp/live.iso" -w 4 \
      -r 5 -T 50 -q >"$tmp/client.out" 2>&1 || return 1
    grep -q "errors=0 .*verified=yes complete=yes" "$tmp/client.out"
  else
    ip netns exec "$cli" timeout 60 "$ISOBOOT_BIN" aoe read e0.1 -i veth-c -o "$tmp/read.img" \
      >"$tmp/client.out" 2>&1 && cmp -s "$tmp/read.img" "$tmp/live.iso"
  fi
}

ip netns exec "$srv" "$ISOBOOT_BIN" serve "$tmp/live.iso" --interface veth-s --dhcp off \
  --announce 1 >"$tmp/serve.log" 2>&1 &
pid=$!
wait_ready "$tmp/serve.log"

booted_read || fail "the booted client could not read before the attack: $(cat "$tmp/client.out")"
echo "client (${client[0]:-isoboot aoe read}) read the image"

target_mac=$(ip netns exec "$srv" cat /sys/class/net/veth-s/address)
client_mac=$(ip netns exec "$cli" cat /sys/class/net/veth-c/address)
hostile_ok=1
ip netns exec "$cli" python3 - "$target_mac" "$client_mac" >"$tmp/hostile.out" 2>&1 <<'PY' ||
import socket, struct, sys, time

target = bytes.fromhex(sys.argv[1].replace(":", ""))
client = bytes.fromhex(sys.argv[2].replace(":", ""))
hostile = bytes.fromhex("026666000001")
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88A2))
s.bind(("veth-c", 0x88A2))
# Answers to the spoofed MAC arrive only in promiscuous mode.
mreq = struct.pack("iHH8s", socket.if_nametoindex("veth-c"), 1, 0, b"")
s.setsockopt(263, 1, mreq)  # SOL_PACKET, PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC
failures = []

def header(dst, src, cmd, tag):
    return dst + src + b"\x88\xa2" + struct.pack(">BBHBBI", 0x10, 0, 0, 1, cmd, tag)

def answer(tag, to, wait=1.5):
    deadline = time.time() + wait
    s.settimeout(0.2)
    while time.time() < deadline:
        try:
            r = s.recv(9100)
        except socket.timeout:
            continue
        if len(r) >= 24 and r[6:12] == target and struct.unpack(">I", r[20:24])[0] == tag \
                and r[0:6] == to:
            return r
    return None

def request(cmd, body, tag, src=hostile):
    s.send(header(target, src, cmd, tag) + body)
    return answer(tag, src)

def expect_refused(what, cmd, body, tag):
    r = request(cmd, body, tag)
    if r is None:
        failures.append(what + ": no answer")
    elif not (r[14] & 0x04):
        failures.append("%s: accepted (flags %#x error %d)" % (what, r[14] & 0x0f, r[15]))
    else:
        print("%s: refused with AoE error %d" % (what, r[15]))

tag = 0x1000
# First (while the export is as it started), reads that must get no answer
# at all: a broadcast source would get a broadcast answer (amplification).
def ata_read(dst, src, tag):
    return header(dst, src, 0, tag) + struct.pack("<BBBB", 0x40, 0, 2, 0x24) + b"\0" * 8

for name, dst, src in (("broadcast source", target, b"\xff" * 6),
                       ("multicast source", target, bytes.fromhex("01005e000001")),
                       ("other target's MAC", bytes.fromhex("02aaaaaaaaaa"), client)):
    s.send(ata_read(dst, src, tag))
    deadline = time.time() + 1.0
    got = None
    s.settimeout(0.2)
    while time.time() < deadline and got is None:
        try:
            r = s.recv(9100)
        except socket.timeout:
            continue
        if len(r) >= 24 and r[6:12] == target and struct.unpack(">I", r[20:24])[0] == tag:
            got = r
    if got is not None:
        failures.append("%s: answered (to %s)" % (name, got[0:6].hex(":")))
    else:
        print("%s: dropped" % name)
    tag += 1

expect_refused("reserve force set", 3, bytes([2, 1]) + hostile, tag); tag += 1
expect_refused("reserve set", 3, bytes([1, 1]) + hostile, tag); tag += 1
expect_refused("mac mask add", 2, bytes([0, 1, 0, 1, 0, 1]) + hostile, tag); tag += 1
for ccmd, name in ((3, "config set"), (4, "config force set")):
    expect_refused(name, 1, struct.pack(">HHBBH", 0, 0, 0, 0x10 | ccmd, 5) + b"pwned", tag); tag += 1

# The state reads as before.
r = request(3, bytes([0, 0]), tag); tag += 1
if r is None or r[14] & 0x04 or r[25] != 0:
    failures.append("reserve read: %r" % (r[:28] if r else None))
r = request(2, bytes([0, 0, 0, 0]), tag); tag += 1
if r is None or r[14] & 0x04 or r[27] != 0:
    failures.append("mac mask read: %r" % (r[:28] if r else None))
r = request(1, struct.pack(">HHBBH", 0, 0, 0, 0x10, 0), tag); tag += 1
if r is None or r[14] & 0x04:
    failures.append("config read: no answer")
else:
    n = struct.unpack(">H", r[30:32])[0]
    if r[32:32 + n] != b"isoboot":
        failures.append("config string changed to %r" % r[32:32 + n])

for f in failures:
    print("FAIL: " + f)
sys.exit(1 if failures else 0)
PY
  hostile_ok=0
cat "$tmp/hostile.out"
booted_read || fail "the booted client could not read after the attack: $(cat "$tmp/client.out")"
echo "client read the image after the attack"
((hostile_ok)) || fail "hostile frames were obeyed or answered"

kill -TERM "$pid"
wait "$pid" || fail "serve exited with $?"
pid=
grep -q "client 02:66:66:00:00:01: .* 5 refused" "$tmp/serve.log" ||
  fail "refusals not counted"
grep -Eq "dropped 2 from group source MACs, 1 for other MACs" "$tmp/serve.log" ||
  fail "dropped frames not counted"
echo PASS
