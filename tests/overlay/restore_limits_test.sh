#!/usr/bin/env bash
# The limits of `overlay restore`: a download from a server that stalls
# (accepts and says nothing; sends headers and part of the body, then
# nothing), that cannot be connected to (a full accept queue drops the SYNs),
# or that sends more than --max-size (announced in Content-Length, or
# chunked without a length) fails with a one-line reason and writes nothing;
# so does an archive that unpacks to more than --max-content (a zstd bomb:
# 64 MiB of zeros in a few KiB, from tests/overlay/craft.py), and the same
# archive restores with the default limits. Servers are tests/overlay/
# stall_server.py on 127.0.0.1. The timeouts are small so the test is fast;
# it asserts exit status and messages, never elapsed time. Root (mknod).
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ISOBOOT_BIN:?set ISOBOOT_BIN to the isoboot binary}
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp overlay-limits
server_pid=""
stop_server() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  server_pid=""
}
cleanup() { stop_server; }
fail_logs=("$tmp/restore.log")
empty() { [[ -z $(ls -A "$1") ]]; }

start_server() {  # MODE
  stop_server
  rm -f "$tmp/port"
  python3 "$src/tests/overlay/stall_server.py" "$1" "$tmp/port" &
  server_pid=$!
  for _ in $(seq 100); do [[ -f "$tmp/port" ]] && break; sleep 0.1; done
  [[ -f "$tmp/port" ]] || fail "test server ($1) did not start"
  url="http://127.0.0.1:$(cat "$tmp/port")/overlay/node"
}

expect_refused() {  # WHAT PATTERN, then the restore's extra arguments
  local what=$1 pattern=$2
  shift 2
  rm -rf "$tmp/upper" && mkdir "$tmp/upper"
  local rc=0
  # timeout(1) only bounds a binary that would hang (the old one does); a
  # pass never comes near it.
  timeout 120 "$bin" overlay restore --upper "$tmp/upper" "$@" >/dev/null 2>"$tmp/restore.log" || rc=$?
  ((rc != 0)) || fail "$what: the restore succeeded"
  ((rc != 124)) || fail "$what: the restore hung (killed by timeout after 120 s)"
  [[ $(wc -l <"$tmp/restore.log") == 1 ]] || fail "$what: expected a one-line reason"
  grep -q -- "$pattern" "$tmp/restore.log" || fail "$what: the reason does not match '$pattern'"
  empty "$tmp/upper" || fail "$what: something was written"
  echo "$what: $(cat "$tmp/restore.log")"
}

fast=(--connect-timeout 2 --speed-limit 1000 --speed-time 2)
start_server silent
expect_refused "silent server" "the server sent nothing for 2 s" "${fast[@]}" "$url"
start_server trickle
expect_refused "stalled body" "stalled after 1000 bytes: fewer than 1000 bytes/s for 2 s" "${fast[@]}" "$url"
start_server backlog
expect_refused "no connection" "no connection to the server within 2 s" "${fast[@]}" "$url"
start_server announce
expect_refused "announced 20 GiB" "larger than the limit of 8 GiB" "${fast[@]}" "$url"
start_server flood
expect_refused "chunked 3 MiB" "larger than the limit of 1 MiB" "${fast[@]}" --max-size 1M "$url"
stop_server

# The same size limit on stdin.
head -c $((3 << 20)) /dev/urandom >"$tmp/random"
expect_refused "stdin 3 MiB" "stdin: the backup is larger than the limit of 1 MiB" --max-size 1M - <"$tmp/random"

# A decompression bomb: refused by the unpacked-size bound, accepted under the default.
python3 "$src/tests/overlay/craft.py" bomb "$tmp/bomb.tzst"
(($(stat -c %s "$tmp/bomb.tzst") < 65536)) || fail "the bomb is not small"
expect_refused "zstd bomb" "unpacks to more than the limit of 16 MiB\|more than the limit of 16 MiB" --max-content 16M "$tmp/bomb.tzst"
grep -q 'refused, nothing was written' "$tmp/restore.log" || fail "bomb: message"
rm -rf "$tmp/upper" && mkdir "$tmp/upper"
"$bin" overlay restore --upper "$tmp/upper" "$tmp/bomb.tzst" >/dev/null
[[ $(stat -c %s "$tmp/upper/zeros") == $((64 << 20)) ]] || fail "the bomb archive did not restore under the default limit"
echo PASS
