#!/usr/bin/env bash
# The overlay backup store of `isoboot serve` (--backup-dir), on loopback:
# `isoboot overlay backup` PUTs, curl as a second client. Checks the token
# (made on first start, mode 0600), per-node read and write keys (`isoboot
# overlay key`), versions kept and pruned, refusal of junk and of oversized
# uploads, an upload cut short that leaves the previous backup served, and
# that per-node boot entries (they carry a read key) are served to nobody
# without a boot network. Who gets which entry on a boot network, and what
# another node's key can do, is authorization_test.sh's.
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ISOBOOT_BIN:?set ISOBOOT_BIN to the isoboot binary}
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp store
fail_logs=("$tmp/serve.log")
pid=
curl_pid=
cleanup() {
  [[ -n $curl_pid ]] && kill "$curl_pid" 2>/dev/null || true
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
}

"$src/scripts/make-layout-iso.sh" kiwi "$tmp/live.iso" >/dev/null
store=$tmp/store
start_server() {
  rm -f "$tmp/serve.log"  # else the wait below may read the previous run's "ready:"
  "$bin" serve --http-only "$tmp/live.iso" --http-address 127.0.0.1 --http-port 0 \
    --backup-dir "$store" --backup-keep 2 --backup-max-size 1M \
    --node 52:54:00:00:00:77=hostname=n77 --node 52-54-00-12-34-56=hostname=n56 >"$tmp/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 50); do grep -q "ready:" "$tmp/serve.log" && break; sleep 0.2; done
  grep -q "ready:" "$tmp/serve.log" || fail "server did not start"
  port=$(sed -n 's/.*HTTP on \([0-9]*\);.*/\1/p' "$tmp/serve.log")
  base=http://127.0.0.1:$port
}
stop_server() {
  kill "$pid"
  wait "$pid" || fail "server exit status $?"
  pid=
}
start_server
[[ $(stat -c %a "$store/.token") == 600 ]] || fail "token file is not mode 0600"
token_file=$store/.token
token=$(cat "$token_file")

node=52-54-00-12-34-56
mkdir -p "$tmp/up/etc"
backup() {  # MOTD [NAME]: back up an upper dir whose /etc/motd says MOTD
  echo "$1" >"$tmp/up/etc/motd"
  "$bin" overlay backup --upper "$tmp/up" --token-file "$token_file" -o "$base/overlay/${2:-52:54:00:12:34:56}"
}
versions() { find "$store/$node" -name '*.isoboot-overlay' | wc -l; }
restored() {  # URL [curl-style extra env]: restore into a fresh dir, print its motd
  rm -rf "$tmp/r"
  mkdir "$tmp/r"
  "$bin" overlay restore --upper "$tmp/r" "$1" >/dev/null
  cat "$tmp/r/etc/motd"
}
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

# 1. First backup of a node named by its MAC (colons: stored as hyphens).
backup one >/dev/null || fail "backup to the store failed"
[[ $(versions) == 1 ]] || fail "no version stored for $node"
[[ $(stat -c %a "$store/$node"/*.isoboot-overlay) == 600 ]] || fail "version file is not 0600"

# 2. Without a boot network nobody can be told apart: the per-node entries
#    (which carry the node's read key) are served to no one, the common
#    entries to everyone.
boot_ipxe=$(curl -sf "$base/boot.ipxe")
grep -q 'chain --autofree .*/nodes/${mac:hexhyp}.ipxe ||' <<<"$boot_ipxe" || fail "boot.ipxe does not chain per-node scripts"
[[ $(status "$base/pxelinux.cfg/01-$node") == 404 ]] || fail "a node's entry served on loopback"
[[ $(status "$base/nodes/$node.ipxe") == 404 ]] || fail "a node's iPXE entry served on loopback"
[[ $(status "$base/nodes/52-54-00-00-00-77.ipxe") == 404 ]] || fail "a --node entry served on loopback"
read_key=$("$bin" overlay key "$node" --backup-dir "$store" --read)
write_key=$("$bin" overlay key 52:54:00:12:34:56 --token-file "$token_file")
[[ $read_key =~ ^[0-9a-f]{32}$ && $write_key =~ ^[0-9a-f]{32}$ && $read_key != "$write_key" ]] ||
  fail "overlay key: read $read_key, write $write_key"
# The read key is HMAC-SHA256("isoboot-overlay-read:NAME") under the token,
# cut to 128 bits (what boot entries made before write keys carry).
[[ $read_key == $(printf '%s' "isoboot-overlay-read:$node" | openssl dgst -sha256 -hmac "$token" |
  awk '{print substr($NF, 1, 32)}') ]] || fail "the read key is not the documented HMAC"
url="$base/overlay/$node?key=$read_key"

# 3. Access: the read key reads this node's backup only; its write key also
#    writes it; the store's token does everything.
[[ $(restored "$url") == one ]] || fail "restore with the node's key"
[[ $(status "$base/overlay/$node") == 401 ]] || fail "read without key or token"
[[ $(status "$base/overlay/52-54-00-00-00-99?key=$read_key") == 403 ]] || fail "a node's key read another name"
[[ $(status "$base/overlay/$node/?key=$read_key") == 200 ]] || fail "the key does not list its own versions"
[[ $(status -T "$tmp/live.iso" "$base/overlay/$node?key=$read_key") == 403 ]] || fail "PUT with the read key"
echo "$write_key" >"$tmp/node.key"
echo by-node >"$tmp/up/etc/motd"
"$bin" overlay backup --upper "$tmp/up" --token-file "$tmp/node.key" -o "$base/overlay/$node" >/dev/null ||
  fail "the node's write key cannot write its own name"
[[ $(restored "$url") == by-node ]] || fail "the write key's backup is not the newest"
if "$bin" overlay backup --upper "$tmp/up" --token-file "$tmp/node.key" -o "$base/overlay/other" \
  >/dev/null 2>"$tmp/err"; then
  fail "a node's write key wrote another name"
fi
grep -q "HTTP 403" "$tmp/err" || fail "write key on another name: $(cat "$tmp/err")"
[[ $(status -T "$tmp/live.iso" -H 'Authorization: Bearer wrong' "$base/overlay/$node") == 403 ]] || fail "PUT with a wrong token"
[[ $(status -T "$tmp/live.iso" "$base/overlay/$node") == 401 ]] || fail "PUT without a token"
[[ $(status -T /dev/null -H "Authorization: Bearer $token" "$base/overlay/.hidden") == 400 ]] || fail "a name starting with ."

# 4. Versions: keep 2, newest wins, an older one by name.
backup two >/dev/null && backup three >/dev/null || fail "later backups failed"
[[ $(versions) == 2 ]] || fail "expected 2 kept versions, have $(versions)"
[[ $(restored "$url") == three ]] || fail "the key does not read the newest version"
list=$(curl -sf -H "Authorization: Bearer $token" "$base/overlay/$node/")
[[ $(wc -l <<<"$list") == 2 ]] || fail "listing: $list"
older=$(head -1 <<<"$list" | cut -d' ' -f1)
[[ $(ISOBOOT_TOKEN=$token restored "$base/overlay/$node/$older") == two ]] || fail "older version $older"

# 5. Junk, an oversized backup and a cut upload leave "three" as the newest.
head -c 5000 /dev/urandom >"$tmp/junk"
[[ $(status -T "$tmp/junk" -H "Authorization: Bearer $token" "$base/overlay/$node") == 422 ]] || fail "junk accepted"
head -c 3M /dev/urandom >"$tmp/up/big"
if backup four 2>"$tmp/err" >/dev/null; then fail "a backup over --backup-max-size was stored"; fi
grep -q 413 "$tmp/err" || fail "oversized backup: $(cat "$tmp/err")"
rm "$tmp/up/big"
head -c 900K /dev/urandom >"$tmp/up/fill"
echo five >"$tmp/up/etc/motd"
"$bin" overlay backup --upper "$tmp/up" -o "$tmp/five.tar.zst" >/dev/null
curl -s -T "$tmp/five.tar.zst" -H "Authorization: Bearer $token" --limit-rate 100K \
  "$base/overlay/$node" >/dev/null 2>&1 &
curl_pid=$!
for _ in $(seq 100); do
  compgen -G "$store/$node/.partial-*" >/dev/null && break
  sleep 0.1
done
compgen -G "$store/$node/.partial-*" >/dev/null || fail "the slow upload never started"
kill "$curl_pid"
wait "$curl_pid" 2>/dev/null || true
curl_pid=
for _ in $(seq 100); do
  compgen -G "$store/$node/.partial-*" >/dev/null || break
  sleep 0.1
done
compgen -G "$store/$node/.partial-*" >/dev/null && fail "a cut upload left its partial file"
[[ $(versions) == 2 ]] || fail "a refused or cut upload changed the versions"
[[ $(restored "$url") == three ]] || fail "after junk/oversize/cut uploads the newest is not three"

# 6. A restart keeps the backups and node entries and drops stale partials.
touch "$store/$node/.partial-stale1"
stop_server
start_server
[[ ! -e $store/$node/.partial-stale1 ]] || fail "stale partial upload kept at start"
grep -q "1 node(s) boot with theirs" "$tmp/serve.log" || fail "node not found at start"
url="$base/overlay/$node?key=$read_key"  # the same key: derived, not stored
[[ $(restored "$url") == three ]] || fail "restore after restart with the same key"
stop_server
echo PASS
