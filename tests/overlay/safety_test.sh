#!/usr/bin/env bash
# What must never happen to a backup or an upper dir: an interrupted backup
# (killed by SIGXFSZ mid-write via `ulimit -f`) or a failing destination (a
# full filesystem) replaces the previous backup; a corrupted or truncated
# archive writes anything; an archive with entries escaping the target
# (crafted with Python's tarfile by tests/overlay/craft.py: "..", absolute
# paths, writes through a symlink, hard links out) writes anything. Also the
# HTTP destination against a small store on Python's http.server (PUT,
# bearer token, GET for restore). Runs in a private mount namespace. Root.
set -euo pipefail
if [[ -z ${OVERLAY_TEST_NS:-} ]]; then
  exec unshare --mount --propagation private env OVERLAY_TEST_NS=1 bash "$0" "$@"
fi
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ISOBOOT_BIN:?set ISOBOOT_BIN to the isoboot binary}
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp overlay-safety
server_pid=""
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  umount -l "$tmp/small" 2>/dev/null || true
}
empty() { [[ -z $(ls -A "$1") ]]; }

mkdir -p "$tmp/upper/etc" "$tmp/big"
echo one >"$tmp/upper/etc/hostname"
head -c $((4 << 20)) /dev/urandom >"$tmp/big/random"   # incompressible

# A good backup, then a backup killed half-way: the good one stays.
"$bin" overlay backup --upper "$tmp/upper" -o "$tmp/backup.tzst" >/dev/null
good=$(sha256sum <"$tmp/backup.tzst")
set +e
(ulimit -f 1024 && exec "$bin" overlay backup --upper "$tmp/big" -o "$tmp/backup.tzst") 2>/dev/null
rc=$?
set -e
((rc > 128)) || fail "the size-limited backup was not killed by a signal (exit $rc)"
[[ $(sha256sum <"$tmp/backup.tzst") == "$good" ]] || fail "killed backup replaced the previous one"
ls -a "$tmp" | grep -q 'isoboot-partial' || fail "expected the killed backup's partial temp file"
echo "killed backup (exit $rc): previous backup intact, partial left under a temp name"
rm -f "$tmp"/.backup.tzst.isoboot-partial-*

# A destination that fills up: error, previous backup intact, no temp file left.
mkdir "$tmp/small" && mount -t tmpfs -o size=1m tmpfs "$tmp/small"
"$bin" overlay backup --upper "$tmp/upper" -o "$tmp/small/backup.tzst" >/dev/null
small_good=$(sha256sum <"$tmp/small/backup.tzst")
if "$bin" overlay backup --upper "$tmp/big" -o "$tmp/small/backup.tzst" 2>"$tmp/enospc.log"; then
  fail "backup onto a full filesystem succeeded"
fi
grep -q 'No space left' "$tmp/enospc.log" || { cat "$tmp/enospc.log"; fail "ENOSPC not reported"; }
[[ $(sha256sum <"$tmp/small/backup.tzst") == "$small_good" ]] || fail "failed backup replaced the previous one"
[[ $(ls -A "$tmp/small") == backup.tzst ]] || fail "failed backup left files behind: $(ls -A "$tmp/small")"
"$bin" overlay restore --upper "$tmp/upper" "$tmp/small/backup.tzst" --dry-run >/dev/null
echo "full destination: $(cat "$tmp/enospc.log")"

# Corruption: one flipped byte anywhere, truncation, appended bytes.
size=$(stat -c %s "$tmp/backup.tzst")
for where in 20 $((size / 2)) $((size - 40)); do
  cp "$tmp/backup.tzst" "$tmp/bad.tzst"
  python3 -c "import sys; f=open(sys.argv[1],'r+b'); f.seek(int(sys.argv[2])); b=f.read(1); f.seek(-1,1); f.write(bytes([b[0]^1]))" \
    "$tmp/bad.tzst" "$where"
  rm -rf "$tmp/target" && mkdir "$tmp/target"
  if "$bin" overlay restore --upper "$tmp/target" "$tmp/bad.tzst" 2>"$tmp/bad.log"; then
    fail "archive with byte $where flipped was restored"
  fi
  empty "$tmp/target" || fail "corrupted archive (byte $where) wrote files"
  echo "byte $where flipped: $(cat "$tmp/bad.log")"
done
head -c $((size - 10)) "$tmp/backup.tzst" >"$tmp/bad.tzst"
if "$bin" overlay restore --upper "$tmp/target" "$tmp/bad.tzst" 2>"$tmp/bad.log"; then fail "truncated archive restored"; fi
empty "$tmp/target" || fail "truncated archive wrote files"
echo "truncated: $(cat "$tmp/bad.log")"
{ cat "$tmp/backup.tzst"; echo extra; } >"$tmp/bad.tzst"
if "$bin" overlay restore --upper "$tmp/target" "$tmp/bad.tzst" 2>/dev/null; then fail "archive with appended bytes restored"; fi

# Crafted archives: the control passes, every escape is refused and writes nothing.
python3 "$src/tests/overlay/craft.py" ok "$tmp/ok.tzst"
mkdir "$tmp/ok-target"
"$bin" overlay restore --upper "$tmp/ok-target" "$tmp/ok.tzst" >/dev/null
[[ -f "$tmp/ok-target/fine" ]] || fail "the crafted control archive was not restored"
mkdir "$tmp/outside"
for kind in dotdot absolute symlink-escape hardlink-escape hardlink-absolute dotdot-link; do
  python3 "$src/tests/overlay/craft.py" "$kind" "$tmp/$kind.tzst" "$tmp/outside"
  rm -rf "$tmp/target" && mkdir -p "$tmp/target/sub"
  if "$bin" overlay restore --upper "$tmp/target/sub" "$tmp/$kind.tzst" 2>"$tmp/craft.log"; then
    fail "$kind archive was restored"
  fi
  grep -q 'refused, nothing was written' "$tmp/craft.log" || { cat "$tmp/craft.log"; fail "$kind: message"; }
  empty "$tmp/target/sub" && empty "$tmp/outside" && [[ $(ls -A "$tmp/target") == sub ]] ||
    fail "$kind archive wrote something"
  [[ ! -e /tmp/isoboot-overlay-absolute-escape ]] || fail "absolute path escaped"
  echo "$kind: $(cat "$tmp/craft.log")"
done

# HTTP: PUT with a bearer token to a store, GET back for restore.
mkdir "$tmp/store"
python3 "$src/tests/overlay/put_server.py" "$tmp/store" s3cret "$tmp/port" &
server_pid=$!
for _ in $(seq 100); do [[ -f "$tmp/port" ]] && break; sleep 0.1; done
[[ -f "$tmp/port" ]] || fail "test HTTP store did not start"
url="http://127.0.0.1:$(cat "$tmp/port")/node1"
if ISOBOOT_TOKEN=wrong "$bin" overlay backup --upper "$tmp/upper" -o "$url" 2>"$tmp/http.log"; then
  fail "upload with a wrong token succeeded"
fi
grep -q 'HTTP 401' "$tmp/http.log" || { cat "$tmp/http.log"; fail "401 not reported"; }
[[ ! -e "$tmp/store/node1" ]] || fail "rejected upload was stored"
echo s3cret >"$tmp/token"
"$bin" overlay backup --upper "$tmp/big" -o "$url" --token-file "$tmp/token" --json >/dev/null
rm -rf "$tmp/target" && mkdir "$tmp/target"
ISOBOOT_TOKEN=s3cret "$bin" overlay restore --upper "$tmp/target" "$url" >/dev/null
cmp "$tmp/big/random" "$tmp/target/random" || fail "HTTP round trip"
echo "HTTP PUT/GET round trip with bearer token: ok"
echo PASS
