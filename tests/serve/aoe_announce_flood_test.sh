#!/usr/bin/env bash
# A flood of spoofed PXE DHCPDISCOVERs (each from a new MAC) against
# `isoboot serve --dhcp proxy`, over a veth pair between two network
# namespaces this test creates. Each PXE DHCP packet used to make the AoE
# server send an announcement (DHCPINFORMs too: those are no longer reported
# by the DHCP server at all, dhcp/client_events_test.sh); now announcements
# are rate limited (one per MAC per second, 100/s overall, bursts of 200), so
# the AoE frames the segment sees stay far below the DHCP packets sent. A
# real PXE client still gets its one announcement afterwards (the limit is
# per MAC, with room left).
#   AOE_ANNOUNCE_FLOOD  DHCPDISCOVERs sent (default 3000)
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
: "${ISOBOOT_BIN:?}"
flood=${AOE_ANNOUNCE_FLOOD:-3000}
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp aoe-announce
fail_logs=("$tmp/serve.log")
srv=isb-asrv-$$
cli=isb-acli-$$
pid=
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
}

"$src/scripts/make-layout-iso.sh" kiwi "$tmp/live.iso" >/dev/null
veth_pair "$srv" "$cli"
ip -n "$srv" addr add 10.81.0.1/24 dev veth-s
ip -n "$cli" addr add 10.81.0.2/24 dev veth-c

ip netns exec "$srv" "$ISOBOOT_BIN" serve "$tmp/live.iso" --interface veth-s --dhcp proxy \
  --announce 0 >"$tmp/serve.log" 2>&1 &
pid=$!
wait_ready "$tmp/serve.log"

ip netns exec "$cli" timeout 120 python3 - "$flood" >"$tmp/flood.out" 2>&1 <<'PY' || { cat "$tmp/flood.out"; fail "flood script failed"; }
import os, socket, struct, sys, time
flood = int(sys.argv[1])
cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88A2))
cap.bind(("veth-c", 0x88A2))
mreq = struct.pack("iHH8s", socket.if_nametoindex("veth-c"), 1, 0, b"")
cap.setsockopt(263, 1, mreq)  # promiscuous: the announcements go to the invented MACs
cap.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
cap.setblocking(False)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("10.81.0.2", 68))

def discover(mac, xid):
    vc = b"PXEClient:Arch:00000:UNDI:002001"
    bootp = struct.pack(">BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000,
                        b"\0" * 4, b"\0" * 4, b"\0" * 4, b"\0" * 4,
                        mac + b"\0" * 10, b"", b"")
    opts = b"\x63\x82\x53\x63" + bytes([53, 1, 1, 60, len(vc)]) + vc + b"\xff"
    return bootp + opts

def drain(counts):
    while True:
        try:
            r = cap.recv(9100)
        except BlockingIOError:
            return
        # Query Config responses (R flag, command 1) sent to one MAC.
        if len(r) >= 24 and r[14] & 0x08 and r[19] == 1 and r[0:6] != b"\xff" * 6:
            counts[r[0:6]] = counts.get(r[0:6], 0) + 1

counts = {}
start = time.time()
for i in range(flood):
    mac = bytes([0x02]) + os.urandom(5)
    u.sendto(discover(mac, i), ("10.81.0.1", 67))
    if i % 100 == 99:
        drain(counts)
        time.sleep(0.002)
secs = time.time() - start
deadline = time.time() + 2
while time.time() < deadline:
    drain(counts)
    time.sleep(0.05)
total = sum(counts.values())
# A real client now: its own announcement must still arrive.
me = bytes.fromhex(open("/sys/class/net/veth-c/address").read().strip().replace(":", ""))
time.sleep(1.1)
mine = {}
u.sendto(discover(me, 99999), ("10.81.0.1", 67))
deadline = time.time() + 2
while time.time() < deadline and me not in mine:
    drain(mine)
    time.sleep(0.05)
print("sent %d PXE DHCPDISCOVERs in %.1f s; %d announcements to %d MACs; real client announced: %s"
      % (flood, secs, total, len(counts), me in mine))
# Burst 200 plus 100/s while the flood and the 2 s after it lasted.
limit = 200 + 100 * (secs + 3) + 50
ok = total <= limit and me in mine and max(counts.values(), default=0) <= 1 + secs
print("limit %d: %s" % (limit, "ok" if ok else "EXCEEDED or client missed"))
sys.exit(0 if ok else 1)
PY
cat "$tmp/flood.out"
kill -TERM "$pid"
wait "$pid" || fail "serve exited with $?"
pid=
grep -Eq "[1-9][0-9]* announcements suppressed" "$tmp/serve.log" || fail "suppressed announcements not counted"
echo PASS
