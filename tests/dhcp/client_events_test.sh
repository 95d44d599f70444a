#!/usr/bin/env bash
# The on_client hook (server.h) is not a flood amplifier: 300 DHCPINFORMs
# from one MAC, each with another ciaddr, and 300 DHCPREQUESTs naming
# another address each, reach it at most a bounded number of times (never for
# INFORM; per MAC at most 4 reports per 10 s), in ProxyDHCP and full mode.
# Needs root, iproute2, python3. Every wait is bounded.
#   DHCP_TEST_SERVER  the dhcp_test_server binary (default: next to isoboot's build)
set -Eeuo pipefail
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND" >&2' ERR
here=$(cd "$(dirname "$0")" && pwd)
server_bin=${DHCP_TEST_SERVER:-$(dirname "${ISOBOOT_BIN:?ISOBOOT_BIN must name the isoboot binary}")/../dhcp/dhcp_test_server}
[[ -x $server_bin ]] || { echo "no dhcp_test_server at $server_bin" >&2; exit 1; }

test_tmp dhcp-events
fail_logs=("$tmp/server.log")
S=isoboot-evs-$$
C=isoboot-evc-$$
server_pid=""
cleanup() {
  trap - ERR
  [[ -n $server_pid ]] && kill -KILL "$server_pid" 2>/dev/null
  for ns in "$S" "$C"; do ip netns del "$ns" 2>/dev/null || true; done
}
for ns in "$S" "$C"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip link add s0 netns "$S" type veth peer name c0 netns "$C"
ip -n "$S" addr add 10.77.0.1/24 dev s0
ip -n "$C" addr add 10.77.0.250/24 dev c0
ip -n "$S" link set s0 up
ip -n "$C" link set c0 up
ip -n "$C" route add default dev c0 # for 255.255.255.255

for mode in proxy full; do
  : >"$tmp/events"
  : >"$tmp/server.out"
  ip netns exec "$S" "$server_bin" --mode "$mode" --interface s0 --server-ip 10.77.0.1 \
    --range 10.77.0.100,10.77.0.120 --events "$tmp/events" \
    >"$tmp/server.out" 2>>"$tmp/server.log" &
  server_pid=$!
  for _ in $(seq 100); do grep -q ready "$tmp/server.out" && break; sleep 0.1; done
  grep -q ready "$tmp/server.out" || fail "server did not start"
  ip netns exec "$C" python3 "$here/dhcp_client.py" inform 10.77.0.1 300 >/dev/null
  ip netns exec "$C" python3 "$here/dhcp_client.py" request 10.77.0.1 300 >/dev/null
  # Until the server has logged no packet from that MAC for 0.3 s (bounded);
  # a few may be lost to a full socket buffer, which does not matter here.
  seen=-1
  for _ in $(seq 100); do
    now=$(grep -c "02:ee:00:00:00:01" "$tmp/server.log" || true)
    ((now == seen)) && break
    seen=$now
    sleep 0.3
  done
  kill -TERM "$server_pid"
  wait "$server_pid" || fail "server exited with an error"
  server_pid=""
  cat "$tmp/server.out"
  received=$(sed -n 's/^received \([0-9]*\) .*/\1/p' "$tmp/server.out")
  ((received >= 300)) || fail "$mode: server received only $received of 600 packets"
  reports=$(grep -c "^02:ee:00:00:00:01 " "$tmp/events" || true)
  echo "$mode: $reports reports for $received packets"
  ((reports <= 8)) || fail "$mode: on_client ran $reports times for one MAC"
done
echo "PASS"
