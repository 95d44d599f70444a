#!/usr/bin/env bash
# Bad input for `isoboot nbd export`, in a private network namespace:
# handshakes cut short, a client that is not fixed newstyle, option lengths
# past the frame and over the limit, unknown options, reads past the end,
# a 2^32-1-byte read, unknown commands, bad magic, and 2000 half-open
# connections from 20 addresses. Each is refused and counted (the server's
# stats line), a well-behaved nbdcopy keeps getting the right bytes
# meanwhile, and the server's memory stays bounded (VmRSS/VmHWM printed).
set -euo pipefail
: "${ISOBOOT_BIN:?}" "${ISOBOOT_TEST_TMP:=/tmp}"
ns="isoboot-nbdh-$$"
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp nbd-hostile
dir=$tmp
here=$(cd "$(dirname "$0")" && pwd)
pid= holder=
cleanup() {
  [[ -n $holder ]] && kill "$holder" 2>/dev/null && wait "$holder" 2>/dev/null
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  ip netns del "$ns" 2>/dev/null || true
}
in_ns() { ip netns exec "$ns" "$@"; }
ip netns add "$ns"
ip -n "$ns" link set lo up
ulimit -n 8192

size=$((8 * 1024 * 1024))
head -c $size /dev/urandom >"$dir/disk.img"
want=$(sha256sum <"$dir/disk.img" | cut -d' ' -f1)
log=$dir/server.log
fail_logs=("$log")
port=10809
# Background processes start as `ip netns exec` (which execs), so $! is theirs.
ip netns exec "$ns" "$ISOBOOT_BIN" nbd export --handshake-timeout 2000 \
  --max-connections-per-client 16 "$dir/disk.img" >"$log" 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q "serving" "$log" && break; sleep 0.1; done
grep -q "serving" "$log" || fail "server did not start"
mem() { grep -E '^(VmRSS|VmHWM)' "/proc/$pid/status" | tr -s ' \t' ' ' | tr '\n' ' '; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
good_copy() {
  rm -f "$dir/copy"
  in_ns nbdcopy --connections=4 "nbd://127.0.0.1:$port/disk.img" "$dir/copy" || fail "nbdcopy: $1"
  [[ $(sha256sum <"$dir/copy" | cut -d' ' -f1) == "$want" ]] || fail "nbdcopy bytes: $1"
}
good_copy "before"
echo "memory before: $(mem)"
rss_before=$(rss_kb)

for c in cut-greeting oldstyle-client cut-option option-too-long name-past-frame \
  bad-magic-option; do
  in_ns python3 "$here/hostile.py" $port $c >/dev/null || fail "case $c"
done
in_ns python3 "$here/hostile.py" $port reads $size >/dev/null || fail "case reads"

# 2000 half-open connections from 127.0.0.2..21 (16 admitted per address,
# the rest refused at accept); the good client (127.0.0.1) still copies.
coproc HALF { ip netns exec "$ns" python3 "$here/hostile.py" $port half-open 2000; }
holder=$HALF_PID
read -r -t 60 line <&"${HALF[0]}" || fail "half-open client did not start"
[[ $line == "opened 2000" ]] || fail "half-open: $line"
good_copy "during the half-open flood"
echo "memory during 2000 half-open: $(mem)"
sleep 3  # past the 2 s handshake deadline: the admitted ones are dropped
good_copy "after the handshake deadline"
kill "$holder"
wait "$holder" 2>/dev/null || true
holder=
echo "memory after: $(mem)"
rss_after=$(rss_kb)
((rss_after < rss_before + 65536)) || fail "RSS grew from $rss_before to $rss_after kB"

kill -TERM "$pid"
wait "$pid" || fail "server exit status $?"
pid=
stats=$(grep -o "nbd: stats .*" "$log") || fail "no stats line"
echo "$stats"
num() { grep -o " $1=[0-9]*" <<<"$stats" | cut -d= -f2; }
(($(num handshake_failures) >= 3)) || fail "handshake failures not counted"
(($(num handshake_timeouts) >= 100)) || fail "half-open connections not timed out"
(($(num refused_per_client) >= 1000)) || fail "per-client refusals not counted"
(($(num bad_options) >= 7)) || fail "bad options not counted"
(($(num bad_requests) >= 12)) || fail "bad requests not counted"
(($(num protocol_errors) >= 4)) || fail "protocol errors not counted"
(($(num read_errors) == 0)) || fail "read errors"
echo "nbd hostile: ok"
