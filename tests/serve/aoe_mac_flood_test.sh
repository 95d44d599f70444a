#!/usr/bin/env bash
# Memory under a flood of invented source MACs: 600k AoE reads, each from a
# new random unicast MAC, against `isoboot serve` (over a veth pair between
# two network namespaces this test creates). Before, each MAC became a
# binding that held an image open (RSS 21 -> 57 MB); now a MAC that never
# PXE-booted is not remembered, and the per-client tables are fixed. The
# serve process's VmRSS may grow by at most AOE_FLOOD_MAX_KB (20 MB) and it
# must still answer a real client afterwards.
#   AOE_FLOOD_FRAMES  reads sent (default 600000)
#   AOE_FLOOD_MAX_KB  allowed RSS growth in KiB (default 20480)
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
: "${ISOBOOT_BIN:?}"
frames=${AOE_FLOOD_FRAMES:-600000}
max_kb=${AOE_FLOOD_MAX_KB:-20480}
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp aoe-flood
fail_logs=("$tmp/serve.log")
srv=isb-fsrv-$$
cli=isb-fcli-$$
pid=
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
}

"$src/scripts/make-layout-iso.sh" kiwi "$tmp/live.iso" >/dev/null
veth_pair "$srv" "$cli"
ip -n "$srv" addr add 10.79.0.1/24 dev veth-s

ip netns exec "$srv" "$ISOBOOT_BIN" serve "$tmp/live.iso" --interface veth-s --dhcp off \
  --announce 0 >"$tmp/serve.log" 2>&1 &
pid=$!
wait_ready "$tmp/serve.log"
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }

# Warm up with a real client, so the baseline includes the served pages.
ip netns exec "$cli" timeout 60 "$ISOBOOT_BIN" aoe read e0.1 -i veth-c -o "$tmp/before.img" \
  2>/dev/null || fail "aoe read before the flood"
before=$(rss)

target_mac=$(ip netns exec "$srv" cat /sys/class/net/veth-s/address)
sectors=$(($(stat -c %s "$tmp/live.iso") / 512))
# Send-only raw socket (protocol 0: the answers are not received). Paced in
# bursts so the target's socket buffers, not the veth, take the load.
ip netns exec "$cli" timeout 300 python3 - "$target_mac" "$frames" "$sectors" <<'PY' >"$tmp/sent"
import os, socket, struct, sys, time
target = bytes.fromhex(sys.argv[1].replace(":", ""))
frames, sectors = int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
s.bind(("veth-c", 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
rnd = os.urandom(frames * 8)
sent = 0
start = time.time()
for i in range(frames):
    r = rnd[i * 8:i * 8 + 8]
    src = bytes([(r[0] & 0xfc) | 0x02]) + r[1:6]  # unicast, locally administered
    lba = int.from_bytes(r[6:8], "little") % sectors
    f = (target + src + b"\x88\xa2" + struct.pack(">BBHBBI", 0x10, 0, 0, 1, 0, i) +
         struct.pack("<BBBB", 0x40, 0, 1, 0x24) + lba.to_bytes(6, "little") + b"\0\0")
    while True:
        try:
            s.send(f)
            break
        except OSError:
            time.sleep(0.001)
    sent += 1
    if i % 2000 == 1999:
        time.sleep(0.004)
print(sent, "%.1f" % (time.time() - start))
PY
read -r sent secs <"$tmp/sent"
sleep 2
after=$(rss)
growth=$((after - before))
echo "sent $sent reads from random MACs in $secs s; VmRSS $before -> $after KiB (growth $growth KiB, limit $max_kb)"

ip netns exec "$cli" timeout 60 "$ISOBOOT_BIN" aoe read e0.1 -i veth-c -o "$tmp/after.img" \
  2>/dev/null || fail "aoe read after the flood"
cmp -s "$tmp/after.img" "$tmp/live.iso" || fail "wrong bytes after the flood"
kill -TERM "$pid"
wait "$pid" || fail "serve exited with $?"
pid=
served=$(sed -n 's/.*served \([0-9]*\) frames.*/\1/p' "$tmp/serve.log" | tail -1)
echo "serve answered $served frames in all"
((served >= sent / 2)) || fail "only $served of $sent frames reached the server: the flood proves little"
((growth < max_kb)) || fail "VmRSS grew by $growth KiB (limit $max_kb) after $sent MACs"
echo PASS
