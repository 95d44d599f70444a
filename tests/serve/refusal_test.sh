#!/usr/bin/env bash
# Refused uploads reach the client: an oversized, an unauthorised and a
# malformed upload to the backup store each give the client the server's
# status and reason, every time, with curl and with `isoboot overlay
# backup`. The server answers while the body is still arriving; without a
# lingering close the client got a TCP reset instead of the answer ("Failed
# sending data to the peer") about one run in six.
#   REFUSAL_RUNS  rounds (default 100)
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ISOBOOT_BIN:?set ISOBOOT_BIN to the isoboot binary}
runs=${REFUSAL_RUNS:-100}
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp refusal
fail_logs=("$tmp/serve.log")
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
}

"$src/scripts/make-layout-iso.sh" kiwi "$tmp/live.iso" >/dev/null
"$bin" serve --http-only "$tmp/live.iso" --http-address 127.0.0.1 --http-port 0 \
  --backup-dir "$tmp/store" --backup-max-size 1M >"$tmp/serve.log" 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q "ready:" "$tmp/serve.log" && break; sleep 0.2; done
grep -q "ready:" "$tmp/serve.log" || fail "server did not start"
port=$(sed -n 's/.*HTTP on \([0-9]*\);.*/\1/p' "$tmp/serve.log")
url=http://127.0.0.1:$port/overlay/52-54-00-12-34-56
token_file=$tmp/store/.token
token=$(cat "$token_file")
echo wrong >"$tmp/wrong-token"

head -c 3M /dev/urandom >"$tmp/big"      # over the 1 MiB limit, streamed
head -c 200K /dev/urandom >"$tmp/junk"   # not an overlay archive
mkdir -p "$tmp/up/etc"
head -c 3M /dev/urandom >"$tmp/up/big"   # incompressible: a 3 MiB backup

# curl FILE EXPECTED-STATUS REASON-PATTERN [curl args]: the client must read
# the status and the reason, whatever its own send was doing.
check_curl() {
  local file=$1 want=$2 reason=$3
  shift 3
  local out code
  # --expect100-timeout 0 and no Expect header: the body is on its way
  # when the answer comes, the case that raced.
  out=$(curl -sS -H 'Expect:' -T "$file" -w '\n%{http_code}' "$@" "$url" 2>&1) ||
    fail "curl $want: $(tail -1 <<<"$out") (exit $?)"
  code=$(tail -1 <<<"$out")
  [[ $code == "$want" ]] || fail "curl: want $want, got $code: $out"
  grep -q "$reason" <<<"$out" || fail "curl $want: no reason in: $out"
}
# overlay backup TOKEN-FILE EXPECTED-STATUS REASON-PATTERN
check_backup() {
  local token_file=$1 want=$2 reason=$3
  if "$bin" overlay backup --upper "$tmp/up" --token-file "$token_file" -o "$url" \
    >/dev/null 2>"$tmp/err"; then
    fail "backup $want: was accepted"
  fi
  grep -q "the store refused the backup (HTTP $want): .*$reason" "$tmp/err" ||
    fail "backup $want: $(cat "$tmp/err")"
  [[ $(wc -l <"$tmp/err") == 1 ]] || fail "backup $want: not one line: $(cat "$tmp/err")"
}

for i in $(seq "$runs"); do
  check_curl "$tmp/big" 413 "over the store's limit of 1 MiB" -H "Authorization: Bearer $token"
  check_curl "$tmp/big" 401 "needs a bearer token"
  check_curl "$tmp/big" 403 "" -H "Authorization: Bearer wrong"
  check_curl "$tmp/junk" 422 "not a complete isoboot overlay backup" -H "Authorization: Bearer $token"
  check_backup "$token_file" 413 "over the store's limit of 1 MiB"
  check_backup "$tmp/wrong-token" 403 ""
done
[[ -z $(find "$tmp/store" -name '*.isoboot-overlay') ]] || fail "a refused upload was stored"
kill "$pid"
wait "$pid" || fail "server exit status $?"
pid=
echo "refusal_test: $runs rounds of 413/401/403/422 with curl and overlay backup: every client read the answer"
