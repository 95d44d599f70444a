#!/usr/bin/env bash
# `isoboot serve` with every server on (AoE, TFTP, DHCP full, IPv6 RA, HTTP)
# stops cleanly on SIGTERM every time, and fails loudly otherwise: a server
# that cannot start is a one-line error and exit 1; a server that dies while
# serving (the boot interface removed under the AoE target) stops the
# daemon with exit 3 and a one-line reason in the log.
#   LIFECYCLE_RUNS  SIGTERM rounds (default 100)
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ISOBOOT_BIN:?set ISOBOOT_BIN to the isoboot binary}
runs=${LIFECYCLE_RUNS:-100}
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp lifecycle
fail_logs=("$tmp/serve.log")
ns=isb-life-$$
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  ip netns del "$ns" 2>/dev/null || true
}

"$src/scripts/make-layout-iso.sh" kiwi "$tmp/live.iso" >/dev/null
ip netns add "$ns"
ip -n "$ns" link set lo up
add_veth() {
  ip -n "$ns" link add veth-s type veth peer name veth-c
  ip -n "$ns" addr add 10.78.0.1/24 dev veth-s
  ip -n "$ns" link set veth-s up
  ip -n "$ns" link set veth-c up
}
add_veth
serve() {  # extra args...: starts the daemon in the background, all servers on
  rm -f "$tmp/serve.log"  # the background shell truncates it only when it gets to run
  ip netns exec "$ns" "$bin" serve "$tmp/live.iso" --interface veth-s --dhcp full \
    --dhcp-range 10.78.0.100,10.78.0.120 --lease-file "$tmp/leases" --ipv6-ra on \
    --http-port 0 "$@" >"$tmp/serve.log" 2>&1 &
  pid=$!
}
wait_ready() {
  for _ in $(seq 100); do
    grep -q "ready:" "$tmp/serve.log" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# 1. SIGTERM, every time: exit 0, and the log says why it stopped.
for i in $(seq "$runs"); do
  serve
  wait_ready || fail "round $i: not ready"
  grep -q "ready: HTTP, AoE e0.1, TFTP, DHCP (full)" "$tmp/serve.log" || fail "round $i: not every server is on"
  kill -TERM "$pid"
  status=0
  wait "$pid" || status=$?
  pid=
  [[ $status == 0 ]] || fail "round $i: SIGTERM gave exit status $status"
  grep -q "signal 15: shutting down" "$tmp/serve.log" || fail "round $i: no shutdown line"
done
echo "lifecycle: $runs of $runs SIGTERMs exited 0"

# 2. A server that cannot start: its port is taken. Exit 1, one line.
ip netns exec "$ns" python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 69))
sys.stdout.write("bound\n"); sys.stdout.flush()
time.sleep(30)' >"$tmp/holder.out" &
holder=$!
for _ in $(seq 50); do grep -q bound "$tmp/holder.out" && break; sleep 0.1; done
status=0
ip netns exec "$ns" "$bin" serve "$tmp/live.iso" --interface veth-s --http-port 0 \
  >"$tmp/serve.log" 2>"$tmp/err" || status=$?
kill "$holder"
wait "$holder" 2>/dev/null || true
[[ $status == 1 ]] || fail "a taken TFTP port gave exit status $status"
[[ $(wc -l <"$tmp/err") == 1 ]] || fail "not one line: $(cat "$tmp/err")"
grep -q "^isoboot: error: .*69.*in use" "$tmp/err" || fail "no reason: $(cat "$tmp/err")"
echo "lifecycle: a server that cannot start: $(cat "$tmp/err")"

# 3. A server that dies while serving: the interface goes away under the
# AoE target. Exit 3, the reason in the log.
serve
wait_ready || fail "not ready before the interface goes"
ip -n "$ns" link del veth-s
status=0
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
wait "$pid" || status=$?
pid=
[[ $status == 3 ]] || fail "a dead server gave exit status $status"
reason=$(grep "shutting down" "$tmp/serve.log" || true)
grep -q "aoe: interface veth-s is gone" <<<"$reason" || fail "no reason in the log: $reason"
echo "lifecycle: a server that dies: exit 3, $reason"
