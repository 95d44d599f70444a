#!/usr/bin/env bash
# Nobody on the boot network reads, overwrites or learns another node's
# backup (issue 12, findings 1 and 2), attacked as hostile hosts would from
# network namespaces on one bridge with `isoboot serve`:
#   - node A (52:54:00:00:00:0a) and node B (…:0b) have backups; a stranger
#     has none. B's boot entries (TFTP pxelinux.cfg/01-<mac>, HTTP
#     nodes/<mac>.ipxe) carry its read key and reach B alone: the stranger
#     and A get "not found" for them, and a stranger that takes B's IP
#     address with its own MAC gets nothing either;
#   - without B's key nobody reads B's backup (401/403); A's write key
#     writes A's name and is refused on B's (403), B's backup unchanged;
#   - HTTP and TFTP listen on the boot network's address only.
# The previous binary fails at the first check (HTTP on every address), and
# it served B's entry, key included, to anyone who asked.
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${ISOBOOT_BIN:?set ISOBOOT_BIN to the isoboot binary}
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp authz
fail_logs=("$tmp/serve.log")
fail_lines=40
srv=isb-az-srv-$$
nss=(isb-az-a-$$ isb-az-b-$$ isb-az-x-$$)
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  local ns
  for ns in "$srv" "${nss[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
}

a_mac=52:54:00:00:00:0a b_mac=52:54:00:00:00:0b x_mac=52:54:00:00:00:99
a=52-54-00-00-00-0a b=52-54-00-00-00-0b
"$src/scripts/make-layout-iso.sh" kiwi "$tmp/live.iso" >/dev/null

ip netns add "$srv"
ip -n "$srv" link set lo up
ip -n "$srv" link add br0 type bridge
ip -n "$srv" addr add 10.66.0.1/24 dev br0
ip -n "$srv" link set br0 up
i=0
for spec in "${nss[0]} $a_mac 10.66.0.10" "${nss[1]} $b_mac 10.66.0.11" "${nss[2]} $x_mac 10.66.0.20"; do
  read -r ns mac ip <<<"$spec"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip link add "veth$i" netns "$ns" address "$mac" type veth peer name "port$i" netns "$srv"
  ip -n "$srv" link set "port$i" master br0 up
  ip -n "$ns" addr add "$ip/24" dev "veth$i"
  ip -n "$ns" link set "veth$i" up
  i=$((i + 1))
done
in_a() { ip netns exec "${nss[0]}" "$@"; }
in_b() { ip netns exec "${nss[1]}" "$@"; }
in_x() { ip netns exec "${nss[2]}" "$@"; }
in_srv() { ip netns exec "$srv" "$@"; }

ip netns exec "$srv" "$bin" serve "$tmp/live.iso" --interface br0 --dhcp off --announce 0 --ipv6-ra off \
  --backup-dir "$tmp/store" --node "$a_mac=hostname=node-a" --node "$b_mac=hostname=node-b" \
  >"$tmp/serve.log" 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q "ready:" "$tmp/serve.log" && break; sleep 0.2; done
grep -q "ready:" "$tmp/serve.log" || fail "server did not start"
base=http://10.66.0.1:8080
x_status() { in_x curl -s -o /dev/null -w "%{http_code}" "$@"; }
# tftp_get NS-RUNNER NAME OUT: fetch NAME over TFTP; prints tftp's complaint.
tftp_get() {
  local run=$1 name=$2 out=$3
  rm -f "$out"
  (cd "$tmp" && $run timeout 20 tftp -m binary 10.66.0.1 -c get "$name" "$out" 2>&1) || true
}

# 1. Listening on the boot network only: not on the server's loopback.
[[ $(in_srv curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/boot.ipxe || true) == 000 ]] ||
  fail "HTTP answers on 127.0.0.1: it should listen on the boot network's address only"
in_srv ss -lun | grep -q '10.66.0.1:69 ' || fail "TFTP is not bound to 10.66.0.1: $(in_srv ss -lun)"

# Each node backs up with the key an admin gave it (`isoboot overlay key`),
# not the store's token.
"$bin" overlay key "$a_mac" --backup-dir "$tmp/store" >"$tmp/a.key"
"$bin" overlay key "$b_mac" --backup-dir "$tmp/store" >"$tmp/b.key"
mkdir -p "$tmp/up-a/etc" "$tmp/up-b/etc"
echo "node a" >"$tmp/up-a/etc/motd"
echo "node b secret" >"$tmp/up-b/etc/shadow"
in_a "$bin" overlay backup --upper "$tmp/up-a" --token-file "$tmp/a.key" -o "$base/overlay/$a_mac" \
  >/dev/null || fail "node A could not back up with its own key"
in_b "$bin" overlay backup --upper "$tmp/up-b" --token-file "$tmp/b.key" -o "$base/overlay/$b_mac" \
  >/dev/null || fail "node B could not back up with its own key"
b_version=$(ls "$tmp/store/$b")

# 2. B's entries reach B, with its key; the stranger and A get "not found".
b_ipxe=$(in_b curl -sf "$base/nodes/$b.ipxe") || fail "node B got no nodes/$b.ipxe"
grep -q "hostname=node-b isoboot.overlay=$base/overlay/$b?key=" <<<"$b_ipxe" || fail "B's entry: $b_ipxe"
b_url=$(grep -o 'isoboot.overlay=[^ ]*' <<<"$b_ipxe" | cut -d= -f2-)
tftp_get in_b "pxelinux.cfg/01-$b" b.pxe
grep -qF "isoboot.overlay=$b_url" "$tmp/b.pxe" || fail "B's pxelinux entry over TFTP lacks its key"
for who in in_x in_a; do
  [[ $($who curl -s -o "$tmp/got" -w '%{http_code}' "$base/nodes/$b.ipxe") == 404 ]] ||
    fail "$who fetched B's iPXE entry: $(cat "$tmp/got")"
  [[ $($who curl -s -o "$tmp/got" -w '%{http_code}' "$base/pxelinux.cfg/01-$b") == 404 ]] ||
    fail "$who fetched B's pxelinux entry over HTTP: $(cat "$tmp/got")"
  out=$(tftp_get "$who" "pxelinux.cfg/01-$b" got)
  [[ ! -s $tmp/got ]] || fail "$who fetched B's pxelinux entry over TFTP: $(cat "$tmp/got")"
  [[ $out == *"not found"* ]] || fail "$who: no 'not found' over TFTP: $out"
done
# A gets its own entry (its arguments and key), and the common one still works.
a_ipxe=$(in_a curl -sf "$base/nodes/$a.ipxe") || fail "node A got no entry of its own"
grep -q "hostname=node-a isoboot.overlay=$base/overlay/$a?key=" <<<"$a_ipxe" || fail "A's entry: $a_ipxe"
grep -q "hostname=node-b" <<<"$a_ipxe" && fail "A's entry has B's arguments"
in_x curl -sf "$base/boot.ipxe" >/dev/null || fail "the stranger cannot fetch the common boot.ipxe"
tftp_get in_x pxelinux.cfg/default x.default
grep -q rd.kiwi.live.pxe "$tmp/x.default" || fail "the stranger gets no common pxelinux entry"

# 3. B's backup: its key reads it; nothing the others can have does.
mkdir "$tmp/r"
in_b "$bin" overlay restore --upper "$tmp/r" "$b_url" >/dev/null || fail "B cannot restore with its key"
[[ $(cat "$tmp/r/etc/shadow") == "node b secret" ]] || fail "B's restore has the wrong contents"
a_read=$("$bin" overlay key "$a_mac" --backup-dir "$tmp/store" --read)
[[ $(x_status "$base/overlay/$b") == 401 ]] || fail "the stranger read B's backup without a key"
[[ $(x_status "$base/overlay/$b?key=00112233445566778899aabbccddeeff") == 403 ]] || fail "a guessed key"
[[ $(x_status "$base/overlay/$b?key=$a_read") == 403 ]] || fail "A's read key read B's backup"
[[ $(x_status "$base/overlay/$b?key=$(cat "$tmp/a.key")") == 403 ]] || fail "A's write key read B's backup"
[[ $(x_status -H "Authorization: Bearer $(cat "$tmp/a.key")" "$base/overlay/$b") == 403 ]] ||
  fail "A's write key as a bearer token read B's backup"

# 4. A's key cannot write B's name; B's newest backup is still B's.
echo planted >"$tmp/up-a/etc/shadow"
if in_a "$bin" overlay backup --upper "$tmp/up-a" --token-file "$tmp/a.key" -o "$base/overlay/$b_mac" \
  >/dev/null 2>"$tmp/err"; then
  fail "node A wrote node B's backup"
fi
grep -q "HTTP 403" "$tmp/err" || fail "A's PUT to B: $(cat "$tmp/err")"
"$bin" overlay backup --upper "$tmp/up-a" -o "$tmp/planted.ibo" >/dev/null
[[ $(in_a curl -s -o /dev/null -w '%{http_code}' -T "$tmp/planted.ibo" \
  "$base/overlay/$b?key=$(cat "$tmp/a.key")") == 403 ]] || fail "A's key in the query wrote B"
[[ $(ls "$tmp/store/$b") == "$b_version" ]] || fail "B's versions changed: $(ls "$tmp/store/$b")"
grep -q "backup $b: upload from 10.66.0.10 refused" "$tmp/serve.log" || fail "the refusal is not logged"

# 5. The stranger takes B's address (B is gone from the network) with its own
#    MAC: the server's neighbour table follows the address to the stranger's
#    MAC, and B's entry is still not served.
ip -n "${nss[1]}" link set veth1 down
ip -n "${nss[2]}" addr del 10.66.0.20/24 dev veth2
ip -n "${nss[2]}" addr add 10.66.0.11/24 dev veth2
# The stranger forgets the server's MAC, so its next packet starts with an
# ARP request from 10.66.0.11, which the server's kernel learns from.
ip -n "${nss[2]}" neigh flush dev veth2
for _ in $(seq 50); do  # until the server's table has the stranger's MAC for .11
  in_x curl -s -m 2 -o /dev/null "$base/boot.ipxe" || true
  in_srv ip neigh show 10.66.0.11 dev br0 | grep -q "$x_mac" && break
  ip -n "${nss[2]}" neigh flush dev veth2
  sleep 0.2
done
in_srv ip neigh show 10.66.0.11 dev br0 | grep -q "$x_mac" ||
  fail "the server never saw the stranger at 10.66.0.11: $(in_srv ip neigh)"
[[ $(in_x curl -s -o "$tmp/got" -w '%{http_code}' "$base/nodes/$b.ipxe") == 404 ]] ||
  fail "the stranger at B's address fetched B's entry: $(cat "$tmp/got")"
out=$(tftp_get in_x "pxelinux.cfg/01-$b" got)
[[ ! -s $tmp/got ]] || fail "the stranger at B's address fetched B's entry over TFTP"

kill "$pid"
wait "$pid" || fail "server exit status $?"
pid=
echo PASS
