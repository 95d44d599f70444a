#!/usr/bin/env bash
# RFC 4861 6.2.6 for `isoboot serve --dhcp full`'s empty router
# advertisements: a client floods 1000 router solicitations over ~4 s and
# counts the advertisements it receives until 4 s after the last one. A
# router sends a multicast advertisement at most every MIN_DELAY_BETWEEN_RAS
# (3 s), so over the D seconds from the first solicitation to the end of the
# count there can be at most D/3 + 2 (one at the start, one for rounding).
# The count is of packets; only the bound uses the clock.
# Needs root, iproute2, python3, xorriso (scripts/make-layout-iso.sh).
set -Eeuo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND" >&2' ERR
test_tmp ra-flood
fail_logs=("$tmp/serve.log")
srv=isb-ras-$$
cli=isb-rac-$$
pid=
cleanup() {
  trap - ERR
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  ip netns del "$srv" 2>/dev/null || true
  ip netns del "$cli" 2>/dev/null || true
}

"$src/scripts/make-layout-iso.sh" kiwi "$tmp/live.iso" >/dev/null
for ns in "$srv" "$cli"; do
  ip netns add "$ns"
  # No duplicate address detection: link-local addresses are usable at once.
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
  ip -n "$ns" link set lo up
done
ip link add veth-s netns "$srv" type veth peer name veth-c netns "$cli"
ip -n "$srv" addr add 10.77.0.1/24 dev veth-s
ip -n "$srv" link set veth-s up
ip -n "$cli" link set veth-c up

ip netns exec "$srv" "$ISOBOOT_BIN" serve "$tmp/live.iso" --interface veth-s --dhcp full \
  --dhcp-range 10.77.0.100,10.77.0.120 --lease-file "$tmp/leases" >"$tmp/serve.log" 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q "ready:" "$tmp/serve.log" && break; sleep 0.2; done
grep -q "ready:" "$tmp/serve.log" || fail "server did not start"
for _ in $(seq 50); do # until the client has a link-local address to send from
  ip -n "$cli" -6 addr show dev veth-c scope link | grep -q inet6 && break
  sleep 0.1
done

cat >"$tmp/flood.py" <<'EOF_PY'
import select, socket, sys, time
ifindex = socket.if_nametoindex("veth-c")
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
rs = bytes([133, 0, 0, 0, 0, 0, 0, 0])  # type, code, checksum (kernel), reserved
ras = 0
def drain(timeout):
    global ras
    r, _, _ = select.select([s], [], [], timeout)
    while r:
        data = s.recv(2048)
        if data and data[0] == 134:
            ras += 1
        r, _, _ = select.select([s], [], [], 0)
for _ in range(50):  # the link may still be coming up: bounded retries
    try:
        s.sendto(rs, ("ff02::2", 0, 0, ifindex))
        break
    except OSError:
        time.sleep(0.1)
start = time.monotonic()
for i in range(1000):  # ~4 s of solicitations, over more than one 3 s period
    s.sendto(rs, ("ff02::2", 0, 0, ifindex))
    drain(0.004)
last = time.monotonic()
while time.monotonic() - last < 4.0:  # an answer is due at most 3.5 s after the last one
    drain(0.1)
print(f"{ras} {time.monotonic() - start:.3f}")
EOF_PY
read -r ras duration < <(ip netns exec "$cli" python3 "$tmp/flood.py")
bound=$(python3 -c "import math; print(math.floor($duration / 3) + 2)")
echo "1000 solicitations: $ras advertisements in $duration s (bound $bound)"
((ras >= 1)) || fail "no router advertisement at all"
((ras <= bound)) || fail "$ras advertisements in $duration s: more than one per 3 s"
kill -TERM "$pid"
wait "$pid" || fail "serve exited with an error"
pid=
echo "PASS"
