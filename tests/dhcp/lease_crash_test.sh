#!/usr/bin/env bash
# Group commit of the lease file, checked with a crash: a raw DHCP client
# (dhcp_client.py) leases addresses for 600 made-up MACs, 32 at a time, from
# dhcp_test_server in full mode; the server is SIGKILLed while ACKs are
# flowing and restarted on the same lease file. Every lease the client got an
# ACK for must be in the file, no address may belong to two MACs, and the
# restarted server must give each ACKed MAC the same address again.
# Needs root, iproute2, python3. Every wait is bounded.
#   DHCP_TEST_SERVER  the dhcp_test_server binary (default: next to isoboot's build)
set -Eeuo pipefail
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND" >&2' ERR
here=$(cd "$(dirname "$0")" && pwd)
server_bin=${DHCP_TEST_SERVER:-$(dirname "${ISOBOOT_BIN:?ISOBOOT_BIN must name the isoboot binary}")/../dhcp/dhcp_test_server}
[[ -x $server_bin ]] || { echo "no dhcp_test_server at $server_bin" >&2; exit 1; }

test_tmp dhcp-crash
fail_logs=("$tmp/server.log" "$tmp/client.log")
S=isoboot-crashs-$$
C=isoboot-crashc-$$
server_pid=""
client_pid=""
cleanup() {
  trap - ERR
  for p in $server_pid $client_pid; do kill -KILL "$p" 2>/dev/null || true; done
  for ns in "$S" "$C"; do ip netns del "$ns" 2>/dev/null || true; done
}
for ns in "$S" "$C"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip link add s0 netns "$S" type veth peer name c0 netns "$C"
ip -n "$S" addr add 10.77.0.1/16 dev s0
ip -n "$C" addr add 10.77.255.250/16 dev c0
ip -n "$S" link set s0 up
ip -n "$C" link set c0 up
ip -n "$C" route add default dev c0 # for 255.255.255.255

start_server() {
  : >"$tmp/server.out"
  ip netns exec "$S" "$server_bin" --mode full --interface s0 --server-ip 10.77.0.1 \
    --range 10.77.1.1,10.77.4.250,255.255.0.0 --lease-file "$tmp/leases" \
    >"$tmp/server.out" 2>>"$tmp/server.log" &
  server_pid=$!
  for _ in $(seq 100); do grep -q ready "$tmp/server.out" && return; sleep 0.1; done
  fail "server did not start"
}
# lease OUT N: the client, in the background; its PID in client_pid.
lease() {
  ip netns exec "$C" python3 "$here/dhcp_client.py" lease "$1" "$2" --window 32 --deadline 60 \
    >>"$tmp/client.log" 2>&1 &
  client_pid=$!
}
lines() { [[ -f $1 ]] && wc -l <"$1" || echo 0; }

start_server
: >"$tmp/acked"
lease "$tmp/acked" 600
for _ in $(seq 600); do (($(lines "$tmp/acked") >= 150)) && break; sleep 0.05; done
(($(lines "$tmp/acked") >= 150)) || fail "only $(lines "$tmp/acked") ACKs before the crash"
kill -KILL "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=""
kill "$client_pid"
wait "$client_pid" 2>/dev/null || true
client_pid=""
acked=$(lines "$tmp/acked")
echo "crashed after $acked ACKs; $(grep -c '^[0-9a-f]' "$tmp/leases") leases in the file"

# Every ACKed lease is in the file, once; no address has two owners.
while read -r mac ip; do
  grep -q "^$mac $ip " "$tmp/leases" || fail "ACKed lease $mac $ip is not in the lease file"
done <"$tmp/acked"
dups=$(grep '^[0-9a-f]' "$tmp/leases" | awk '{print $2}' | sort | uniq -d)
[[ -z $dups ]] || fail "addresses given to two MACs in the lease file: $dups"
dups=$(sort -u "$tmp/acked" | awk '{print $2}' | sort | uniq -d)
[[ -z $dups ]] || fail "addresses ACKed to two MACs: $dups"

# The restarted server gives every ACKed MAC its address again.
start_server
: >"$tmp/again"
lease "$tmp/again" 600
wait "$client_pid" || fail "client failed"
client_pid=""
kill -TERM "$server_pid"
wait "$server_pid" || fail "server exited with an error"
server_pid=""
cat "$tmp/server.out"
while read -r mac ip; do
  got=$(awk -v m="$mac" '$1 == m {print $2; exit}' "$tmp/again")
  [[ $got == "$ip" ]] || fail "$mac had $ip before the crash, got '${got:-nothing}' after"
done <"$tmp/acked"
dups=$(sort -u "$tmp/again" | awk '{print $2}' | sort | uniq -d)
[[ -z $dups ]] || fail "addresses ACKed to two MACs after the restart: $dups"
(($(lines "$tmp/again") == 600)) || fail "only $(lines "$tmp/again") of 600 MACs got a lease after the restart"
echo "PASS"
