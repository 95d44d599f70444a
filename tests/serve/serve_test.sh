#!/usr/bin/env bash
# `isoboot serve` end to end with real clients, over a veth pair between two
# network namespaces this test creates: DHCP (busybox udhcpc, full mode),
# TFTP (tftp-hpa), HTTP (curl, ranges), AoE (isoboot's initiator: discover
# and read the whole export); then a rebuilt image is picked up for new
# requests, and SIGTERM stops the server cleanly.
set -euo pipefail
src=${ISOBOOT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=tests/lib.sh
source "$(dirname "$0")/../lib.sh"
test_tmp serve
fail_logs=("$tmp/serve.log")
fail_lines=40
srv=isb-srv-$$
cli=isb-cli-$$
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
}

"$src/scripts/make-layout-iso.sh" kiwi "$tmp/live.iso" >/dev/null
veth_pair "$srv" "$cli"
ip -n "$srv" addr add 10.77.0.1/24 dev veth-s

ip netns exec "$srv" "$ISOBOOT_BIN" serve "$tmp/live.iso" --interface veth-s --dhcp full \
  --dhcp-range 10.77.0.100,10.77.0.120 --lease-file "$tmp/leases" --append console=ttyS0 \
  --announce 1 >"$tmp/serve.log" 2>&1 &
pid=$!
wait_ready "$tmp/serve.log"

# DHCP: a client without PXE vendor class gets an address from the range.
lease=$(dhcp_lease "$cli" veth-c)
echo "dhcp: $lease"
[[ $lease == ip=10.77.0.1[0-2][0-9]* ]] || fail "no lease from the range: $lease"
# The same client as a PXE ROM (vendor class PXEClient, BIOS): it is told its
# loader, and serve takes this as the start of its boot (its AoE reads stay
# on the image it booted from, below).
pxe=$(dhcp_lease "$cli" veth-c "${pxe_bios[@]}")
echo "dhcp (pxe): $pxe"
[[ $pxe == *"boot_file=undionly.kpxe siaddr=10.77.0.1"* ]] || fail "a PXE client got no loader: $pxe"
ip -n "$cli" addr add 10.77.0.2/24 dev veth-c

# IPv6: a router solicitation (ndisc6's rdisc6) gets isoboot's empty router
# advertisement (lifetime 0, no prefix), which ends iPXE's wait for IPv6.
for _ in $(seq 50); do  # until the link-local address has passed DAD
  ip -n "$cli" -6 addr show dev veth-c scope link | grep -q tentative || break
  sleep 0.2
done
ra=$(ip netns exec "$cli" timeout 30 rdisc6 -1 -r 5 -w 2000 veth-c 2>&1 || true)
grep -Eq "Router lifetime +: +0 " <<<"$ra" || fail "no empty router advertisement: $ra"
grep -q "Prefix" <<<"$ra" && fail "the router advertisement offered a prefix: $ra"
echo "ipv6 ra: ok"

# HTTP: the generated iPXE script, a file inside the image, a range of the image.
ip netns exec "$cli" curl -sf http://10.77.0.1:8080/boot.ipxe >"$tmp/boot.ipxe" || fail "boot.ipxe"
grep -q "kernel http://10.77.0.1:8080/boot/x86_64/loader/linux initrd=initrd rd.kiwi.live.pxe root=live:AOEINTERFACE=e0.1 console=ttyS0" "$tmp/boot.ipxe" \
  || fail "boot.ipxe content: $(cat "$tmp/boot.ipxe")"
"$ISOBOOT_BIN" iso cat "$tmp/live.iso" /boot/x86_64/loader/initrd >"$tmp/initrd.want"
ip netns exec "$cli" curl -sf http://10.77.0.1:8080/boot/x86_64/loader/initrd -o "$tmp/initrd.http"
cmp "$tmp/initrd.want" "$tmp/initrd.http" || fail "initrd over HTTP differs"
ip netns exec "$cli" curl -sf -r 40000-1000000 http://10.77.0.1:8080/live.iso -o "$tmp/range"
cmp "$tmp/range" <(tail -c +40001 "$tmp/live.iso" | head -c 960001) || fail "live.iso range differs"
echo "http: ok"

# TFTP: pxelinux's config and the kernel, and an immediate error for a miss.
(cd "$tmp" && ip netns exec "$cli" timeout 30 tftp -m binary 10.77.0.1 -c get pxelinux.cfg/default pxe.cfg)
grep -q "APPEND rd.kiwi.live.pxe root=live:AOEINTERFACE=e0.1 console=ttyS0" "$tmp/pxe.cfg" || fail "pxelinux.cfg/default"
(cd "$tmp" && ip netns exec "$cli" timeout 30 tftp -m binary 10.77.0.1 -c get boot/x86_64/loader/linux linux.tftp)
"$ISOBOOT_BIN" iso cat "$tmp/live.iso" /boot/x86_64/loader/linux | cmp - "$tmp/linux.tftp" || fail "kernel over TFTP differs"
out=$(cd "$tmp" && ip netns exec "$cli" timeout 10 tftp -m binary 10.77.0.1 -c get pxelinux.cfg/01-aa-bb-cc-dd-ee-ff miss 2>&1 || true)
[[ $out == *"not found"* || $out == *"Error"* ]] || fail "no error for a missing file: $out"
echo "tftp: ok"

# AoE: the whole image is the export e0.1.
ip netns exec "$cli" timeout 20 "$ISOBOOT_BIN" aoe discover --interface veth-c >"$tmp/discover" || fail "aoe discover"
grep -q "e0.1" "$tmp/discover" || fail "e0.1 not discovered: $(cat "$tmp/discover")"
ip netns exec "$cli" timeout 60 "$ISOBOOT_BIN" aoe read e0.1 --interface veth-c -o "$tmp/aoe.img" || fail "aoe read"
cmp "$tmp/aoe.img" "$tmp/live.iso" || fail "AoE export differs from the image"
echo "aoe: ok"
grep -q "first AoE reads" "$tmp/serve.log" || fail "no AoE milestone in the log"

# A rebuilt image (new inode) is served to new requests.
"$src/scripts/make-layout-iso.sh" kiwi "$tmp/rebuilt.iso" >/dev/null
mv "$tmp/rebuilt.iso" "$tmp/live.iso"
for _ in $(seq 50); do grep -q "image rebuilt" "$tmp/serve.log" && break; sleep 0.2; done
grep -q "image rebuilt" "$tmp/serve.log" || fail "rebuilt image not noticed"
"$ISOBOOT_BIN" iso cat "$tmp/live.iso" /boot/x86_64/loader/initrd >"$tmp/initrd.want2"
ip netns exec "$cli" curl -sf http://10.77.0.1:8080/boot/x86_64/loader/initrd -o "$tmp/initrd.http2"
cmp "$tmp/initrd.want2" "$tmp/initrd.http2" || fail "rebuilt initrd not served"
# Over AoE the client that already read keeps its image; a new client (another
# MAC, on a macvlan) gets the rebuilt one.
ip netns exec "$cli" timeout 60 "$ISOBOOT_BIN" aoe read e0.1 --interface veth-c -o "$tmp/aoe.old" || fail "aoe read (old client)"
cmp -s "$tmp/aoe.old" "$tmp/live.iso" && fail "a running AoE client was switched to the rebuilt image"
cmp "$tmp/aoe.old" "$tmp/aoe.img" || fail "the running AoE client's image changed"
ip -n "$cli" link add link veth-c name mv0 type macvlan mode bridge
ip -n "$cli" link set mv0 up
ip netns exec "$cli" timeout 60 "$ISOBOOT_BIN" aoe read e0.1 --interface mv0 -o "$tmp/aoe.new" || fail "aoe read (new client)"
cmp "$tmp/aoe.new" "$tmp/live.iso" || fail "a new AoE client did not get the rebuilt image"
echo "rebuild: ok"

# An image rewritten in place (same inode) is not served as if nothing
# happened: serve says clients got mixed bytes, and serves the new contents.
"$src/scripts/make-layout-iso.sh" kiwi "$tmp/rewrite.iso" >/dev/null
echo "rewritten" | dd of="$tmp/rewrite.iso" bs=1 seek=40000 conv=notrunc status=none  # differs for sure
ino=$(stat -c %i "$tmp/live.iso")
cat "$tmp/rewrite.iso" >"$tmp/live.iso"
[[ $(stat -c %i "$tmp/live.iso") == "$ino" ]] || fail "the rewrite made a new file"
for _ in $(seq 50); do grep -q "image rewritten (inode $ino)" "$tmp/serve.log" && break; sleep 0.2; done
grep -q "was rewritten in place (same inode $ino" "$tmp/serve.log" || fail "the in-place rewrite was not reported"
grep -q "image rewritten (inode $ino)" "$tmp/serve.log" || fail "the rewritten image is not served"
ip netns exec "$cli" curl -sf -r 40000-40009 http://10.77.0.1:8080/live.iso -o "$tmp/rewritten.http"
[[ $(cat "$tmp/rewritten.http") == rewritten ]] || fail "live.iso is not the rewritten one"
echo "in-place rewrite: ok"

kill -TERM "$pid"
wait "$pid" || fail "serve exited with $?"
pid=

# --http-only serves any ISO (BMC virtual media), even one isoboot cannot netboot.
"$src/scripts/make-layout-iso.sh" unknown "$tmp/other.iso" >/dev/null
# (options from a TOML file this time; the command line's --http-port wins)
printf 'http-only = true\nhttp-address = "127.0.0.1"\nhttp-port = 9\n' >"$tmp/isoboot.toml"
printf 'http-only = true\nno-such-option = 1\n' >"$tmp/bad.toml"
if "$ISOBOOT_BIN" serve "$tmp/other.iso" --config "$tmp/bad.toml" >"$tmp/bad.out" 2>&1; then
  fail "an unknown key in --config was accepted"
fi
grep -q 'unknown option "no-such-option"' "$tmp/bad.out" || fail "unclear --config error: $(cat "$tmp/bad.out")"
rm -f "$tmp/serve.log"  # else the wait below may read the first server's "ready:"
ip netns exec "$srv" "$ISOBOOT_BIN" serve "$tmp/other.iso" --config "$tmp/isoboot.toml" \
  --http-port 18080 >"$tmp/serve.log" 2>&1 &
pid=$!
wait_ready "$tmp/serve.log"
grep -q "serving its files only" "$tmp/serve.log" || fail "no warning about the unknown layout"
ip netns exec "$srv" curl -sf http://127.0.0.1:18080/live.iso -o "$tmp/other.http" || fail "http-only live.iso"
cmp "$tmp/other.http" "$tmp/other.iso" || fail "http-only live.iso differs"
kill -TERM "$pid"
wait "$pid" || fail "serve --http-only exited with $?"
pid=
echo "http-only: ok"
echo "1 passed, 0 failed"
